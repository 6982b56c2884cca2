/*
 * ptab.c - the interning pools' table (see ptab.h): tagged 8-byte slots,
 * the probe starts from the item's hash (slots.h does the rest).
 *
 * Callers: intern.c, aggr.c (aggr.more, aggr.refused). Owns its slot array only.
 * Single-threaded.
 */
#include "aggr/ptab.h"
#include "aggr/slots.h"

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

static size_t home(size_t cap, uint64_t slot)
{
	struct ptab t = { .cap = cap };
	return ptab_start(&t, ptab_item_hash((const void *)(uintptr_t)(slot & ~PTAB_TAG_MASK)));
}

#define REF(t) (&(struct slots_ref){ &(t)->s, &(t)->cap, &(t)->n, PTAB_MIN, home })

int ptab_insert(struct ptab *t, void *p)
{
	assert(p && ((uintptr_t)p & PTAB_TAG_MASK) == 0);
	return slots_insert(REF(t), (uintptr_t)p | ptab_tag(ptab_item_hash(p)));
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
	slots_remove_at(REF(t), i);
	return 0;
}
