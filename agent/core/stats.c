/*
 * stats.c - see stats.h.
 */
#include "core/stats.h"

#include <stdio.h>

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

void stat_table_foreach(const struct stat_table *t, const void *s,
			void (*fn)(void *arg, const char *name, double v), void *arg)
{
	char name[96];
	for (size_t k = 0; k < t->n; k++) {
		const struct stat_field *f = &t->f[k];
		if (!f->elem) {
			fn(arg, stat_key(f), stat_value(f, s, 0));
			continue;
		}
		for (size_t i = 0; i < f->n; i++) {
			snprintf(name, sizeof(name), "%s_%s", stat_key(f), f->elem((int)i));
			fn(arg, name, stat_value(f, s, i));
		}
	}
}
