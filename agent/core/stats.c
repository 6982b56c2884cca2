/*
 * stats.c - see stats.h.
 */
#include "core/stats.h"

uint64_t stat_total(const struct stat_field *f, const void *s)
{
	uint64_t t = 0;
	for (size_t i = 0; i < f->n; i++)
		t += stat_get(f, s, i);
	return t;
}

void stat_table_add(const struct stat_table *t, void *sum, const void *x)
{
	for (size_t k = 0; k < t->n; k++) {
		uint64_t *d = (uint64_t *)((char *)sum + t->f[k].offset);
		for (size_t i = 0; i < t->f[k].n; i++)
			d[i] += stat_get(&t->f[k], x, i);
	}
}
