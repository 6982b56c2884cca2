/*
 * slots.h - open addressing over an array of 8-byte slots (0 = empty):
 * linear probing, backward-shift deletion, growth to double at 3/4 load and
 * shrinking to half under 1/8 (never below a minimum). The table's owner
 * says where a slot value's probe starts (its home), so the same code serves
 * the context table (ctab.h: home from the value's upper half) and the
 * interning pools' table (ptab.h: home from the hash of the item the value
 * points to). Static inline, so each owner gets a copy with its home
 * function inlined. Owns nothing; not thread-safe.
 */
#ifndef DDMA_AGGR_SLOTS_H
#define DDMA_AGGR_SLOTS_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The owner's view of its table: the slot array, its power-of-two capacity
 * (0 before the first insert) and the number of values in it. */
struct slots_ref {
	uint64_t **s;
	size_t *cap;
	size_t *n;
	size_t min;					 /* smallest capacity */
	size_t (*home)(size_t cap, uint64_t v);	 /* first slot probed for v */
};

static inline void slots_place(const struct slots_ref *r, uint64_t v)
{
	size_t mask = *r->cap - 1, i = r->home(*r->cap, v);
	while ((*r->s)[i])
		i = (i + 1) & mask;
	(*r->s)[i] = v;
}

static inline int slots_resize(const struct slots_ref *r, size_t cap)
{
	uint64_t *old = *r->s;
	size_t ocap = *r->cap;
	uint64_t *s = calloc(cap, sizeof(*s));
	if (!s)
		return -ENOMEM;
	*r->s = s;
	*r->cap = cap;
	for (size_t i = 0; i < ocap; i++)
		if (old[i])
			slots_place(r, old[i]);
	free(old);
	return 0;
}

/* Adds v (not 0) without checking for duplicates. 0 or -ENOMEM. */
static inline int slots_insert(const struct slots_ref *r, uint64_t v)
{
	if ((*r->n + 1) * 4 > *r->cap * 3) {
		int rc = slots_resize(r, *r->cap ? *r->cap * 2 : r->min);
		if (rc < 0)
			return rc;
	}
	slots_place(r, v);
	(*r->n)++;
	return 0;
}

/* Empties slot hole, pulling later members of its cluster into it when their
 * home does not lie cyclically in (hole, j]; may shrink the table. */
static inline void slots_remove_at(const struct slots_ref *r, size_t hole)
{
	uint64_t *s = *r->s;
	size_t mask = *r->cap - 1, j = hole;
	for (;;) {
		j = (j + 1) & mask;
		if (!s[j])
			break;
		size_t home = r->home(*r->cap, s[j]);
		bool stays = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
		if (stays)
			continue;
		s[hole] = s[j];
		hole = j;
	}
	s[hole] = 0;
	(*r->n)--;
	if (*r->cap > r->min && *r->n * 8 < *r->cap)
		(void)slots_resize(r, *r->cap / 2); /* on ENOMEM the table just stays large */
}

#endif
