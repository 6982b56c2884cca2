/*
 * ctab.c - the aggregator's context table (see ctab.h): 8-byte slots,
 * the probe starts from the stored upper half (slots.h does the rest).
 *
 * Caller: aggr.c (find, insert), flush.c (expiry removal), top.c (walk).
 * Owns its slot array only. Single-threaded.
 */
#include "aggr/ctab.h"
#include "aggr/slots.h"

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

static size_t home(size_t cap, uint64_t slot)
{
	struct ctab t = { .cap = cap };
	return ctab_start(&t, slot);
}

#define REF(t) (&(struct slots_ref){ &(t)->s, &(t)->cap, &(t)->n, CTAB_MIN, home })

int ctab_insert(struct ctab *t, uint64_t slot)
{
	return slots_insert(REF(t), slot);
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
	slots_remove_at(REF(t), i);
	return 0;
}
