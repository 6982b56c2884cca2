/*
 * ptab.c - the interning pools' table (see ptab.h): tagged 8-byte slots,
 * linear probing, backward-shift deletion, resize from the items' hashes.
 *
 * Caller: intern.c. Owns its slot array only. Single-threaded.
 */
#include "aggr/ptab.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

void ptab_init(struct ptab *t)
{
	t->s = NULL;
	t->cap = 0;
	t->n = 0;
}

void ptab_done(struct ptab *t)
{
	if (!t)
		return;
	free(t->s);
	ptab_init(t);
}

static void place(struct ptab *t, uintptr_t slot)
{
	size_t i = ptab_start(t, ptab_item_hash((const void *)(slot & ~PTAB_TAG_MASK)));
	while (t->s[i])
		i = ptab_next(t, i);
	t->s[i] = slot;
}

static int resize(struct ptab *t, size_t cap)
{
	uintptr_t *old = t->s;
	size_t ocap = t->cap;
	uintptr_t *s = calloc(cap, sizeof(*s));
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

int ptab_insert(struct ptab *t, void *p)
{
	assert(p && ((uintptr_t)p & PTAB_TAG_MASK) == 0);
	if ((t->n + 1) * 4 > t->cap * 3) {
		int rc = resize(t, t->cap ? t->cap * 2 : PTAB_MIN);
		if (rc < 0)
			return rc;
	}
	place(t, (uintptr_t)p | ptab_tag(ptab_item_hash(p)));
	t->n++;
	return 0;
}

/* Pull later members of the cluster into the hole when their home slot does
 * not lie cyclically in (hole, j]. */
static void delete_at(struct ptab *t, size_t hole)
{
	size_t j = hole;
	for (;;) {
		j = ptab_next(t, j);
		if (!t->s[j])
			break;
		size_t home = ptab_start(t, ptab_item_hash(ptab_at(t, j)));
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		t->s[hole] = t->s[j];
		hole = j;
	}
	t->s[hole] = 0;
}

int ptab_remove(struct ptab *t, const void *p)
{
	if (!t->n)
		return -ENOENT;
	size_t i = ptab_start(t, ptab_item_hash(p));
	while (t->s[i] && ptab_at(t, i) != p)
		i = ptab_next(t, i);
	if (!t->s[i])
		return -ENOENT;
	delete_at(t, i);
	t->n--;
	if (t->cap > PTAB_MIN && t->n * 8 < t->cap)
		(void)resize(t, t->cap / 2); /* on ENOMEM the table just stays large */
	return 0;
}
