/*
 * ctab.c - the aggregator's context table (see ctab.h): 8-byte slots,
 * linear probing, backward-shift deletion, resize from the stored tags.
 *
 * Caller: aggr.c (find, insert), flush.c (expiry removal), top.c (walk).
 * Owns its slot array only. Single-threaded.
 */
#include "aggr/ctab.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

void ctab_init(struct ctab *t)
{
	t->s = NULL;
	t->cap = 0;
	t->n = 0;
}

void ctab_done(struct ctab *t)
{
	if (!t)
		return;
	free(t->s);
	ctab_init(t);
}

static void place(struct ctab *t, uint64_t slot)
{
	size_t i = ctab_start(t, slot);
	while (t->s[i])
		i = ctab_next(t, i);
	t->s[i] = slot;
}

static int resize(struct ctab *t, size_t cap)
{
	uint64_t *old = t->s;
	size_t ocap = t->cap;
	uint64_t *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	t->s = s;
	t->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			place(t, old[i]);
	free(old);
	return 0;
}

int ctab_insert(struct ctab *t, uint64_t slot)
{
	if ((t->n + 1) * 4 > t->cap * 3) {
		int rc = resize(t, t->cap ? t->cap * 2 : CTAB_MIN);
		if (rc < 0)
			return rc;
	}
	place(t, slot);
	t->n++;
	return 0;
}

/* Pull later members of the cluster into the hole when their home slot does
 * not lie cyclically in (hole, j]. */
static void delete_at(struct ctab *t, size_t hole)
{
	size_t j = hole;
	for (;;) {
		j = ctab_next(t, j);
		if (!t->s[j])
			break;
		size_t home = ctab_start(t, t->s[j]);
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		t->s[hole] = t->s[j];
		hole = j;
	}
	t->s[hole] = 0;
}

int ctab_remove(struct ctab *t, uint64_t slot)
{
	if (!t->n)
		return -ENOENT;
	size_t i = ctab_start(t, slot);
	while (t->s[i] && t->s[i] != slot)
		i = ctab_next(t, i);
	if (!t->s[i])
		return -ENOENT;
	delete_at(t, i);
	t->n--;
	if (t->cap > CTAB_MIN && t->n * 8 < t->cap)
		(void)resize(t, t->cap / 2); /* on ENOMEM the table just stays large */
	return 0;
}
