/*
 * htab.c - see htab.h.
 */
#include "aggr/htab.h"

#include <errno.h>
#include <stdlib.h>

#define HTAB_MIN 16

void htab_init(struct htab *t)
{
	t->s = NULL;
	t->cap = 0;
	t->n = 0;
}

void htab_done(struct htab *t)
{
	if (!t)
		return;
	free(t->s);
	htab_init(t);
}

void *htab_find(const struct htab *t, uint64_t h, bool (*eq)(const void *item, const void *key),
		const void *key)
{
	if (!t->n)
		return NULL;
	for (size_t i = htab_start(t, h); t->s[i].p; i = htab_next(t, i))
		if (t->s[i].h == h && eq(t->s[i].p, key))
			return t->s[i].p;
	return NULL;
}

static void place(struct htab *t, uint64_t h, void *p)
{
	size_t i = htab_start(t, h);
	while (t->s[i].p)
		i = htab_next(t, i);
	t->s[i].h = h;
	t->s[i].p = p;
}

static int resize(struct htab *t, size_t cap)
{
	struct hslot *old = t->s;
	size_t ocap = t->cap;
	struct hslot *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	t->s = s;
	t->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i].p)
			place(t, old[i].h, old[i].p);
	free(old);
	return 0;
}

int htab_insert(struct htab *t, uint64_t h, void *p)
{
	if ((t->n + 1) * 4 > t->cap * 3) {
		int rc = resize(t, t->cap ? t->cap * 2 : HTAB_MIN);
		if (rc < 0)
			return rc;
	}
	place(t, h, p);
	t->n++;
	return 0;
}

/* Backward-shift deletion: pull later members of the cluster into the hole
 * when their home slot does not lie cyclically in (hole, j]. */
static void delete_at(struct htab *t, size_t hole)
{
	size_t j = hole;
	for (;;) {
		j = htab_next(t, j);
		if (!t->s[j].p)
			break;
		size_t home = htab_start(t, t->s[j].h);
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		t->s[hole] = t->s[j];
		hole = j;
	}
	t->s[hole].p = NULL;
	t->s[hole].h = 0;
}

int htab_remove(struct htab *t, uint64_t h, const void *p)
{
	if (!t->n)
		return -ENOENT;
	size_t i = htab_start(t, h);
	while (t->s[i].p && t->s[i].p != p)
		i = htab_next(t, i);
	if (!t->s[i].p)
		return -ENOENT;
	delete_at(t, i);
	t->n--;
	if (t->cap > HTAB_MIN && t->n * 8 < t->cap)
		(void)resize(t, t->cap / 2); /* on ENOMEM the table just stays large */
	return 0;
}
