/*
 * ptab.h - the interning pools' table (intern.c), also the aggregator's
 * overflow slot and refused-sample tables (aggr.c: aggr.more, aggr.refused):
 * open addressing over 8-byte slots, each an item pointer with a few bits of
 * the item's hash in its low bits (0 = empty). Half the size of an htab slot
 * (hash + pointer): with a million unique names or tag sets, the pools'
 * tables were a third of what a context cost.
 *
 * Items are 8-byte aligned (malloc'ed: PTAB_TAG_MASK's low bits of their
 * address are zero) and their first member is their 64-bit hash (struct
 * istr, struct tagset, struct more, struct refusal): a probe compares the
 * slot's tag bits and touches the item only when they match (one in 8 of the
 * other items: PTAB_TAG_MASK's three bits); growing, shrinking and
 * backward-shift deletion read the hash from the item. Linear probing, grows
 * at 3/4 load, shrinks to half under 1/8 (never below PTAB_MIN). Owns only
 * its slot array. Not thread-safe.
 */
#ifndef DDMA_AGGR_PTAB_H
#define DDMA_AGGR_PTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PTAB_MIN 16
#define PTAB_TAG_MASK ((uintptr_t)7)

struct ptab {
	uint64_t *s;	/* item address | ptab_tag(hash) */
	size_t cap;	/* power of two, or 0 before the first insert */
	size_t n;
};

/* The hash an item starts with. */
static inline uint64_t ptab_item_hash(const void *item)
{
	return *(const uint64_t *)item;
}

static inline uintptr_t ptab_tag(uint64_t h)
{
	return (uintptr_t)(h >> 58) & PTAB_TAG_MASK;
}

static inline size_t ptab_start(const struct ptab *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (t->cap - 1);
}

static inline size_t ptab_next(const struct ptab *t, size_t i)
{
	return (i + 1) & (t->cap - 1);
}

/* The item in slot i, or NULL (a walk over 0..cap-1). */
static inline void *ptab_at(const struct ptab *t, size_t i)
{
	return (void *)(uintptr_t)(t->s[i] & ~(uint64_t)PTAB_TAG_MASK);
}

void ptab_init(struct ptab *t);
void ptab_done(struct ptab *t); /* frees the slots; accepts NULL */
/* First item with hash h for which eq(item, key) is true, or NULL. */
static inline void *ptab_find(const struct ptab *t, uint64_t h,
			      bool (*eq)(const void *item, const void *key), const void *key)
{
	if (!t->n)
		return NULL;
	uintptr_t tag = ptab_tag(h);
	for (size_t i = ptab_start(t, h); t->s[i]; i = ptab_next(t, i)) {
		if ((t->s[i] & PTAB_TAG_MASK) != tag)
			continue;
		void *p = ptab_at(t, i);
		if (ptab_item_hash(p) == h && eq(p, key))
			return p;
	}
	return NULL;
}
/* Inserts p (its hash: its first member) without checking for duplicates.
 * 0 or -ENOMEM. */
int ptab_insert(struct ptab *t, void *p);
/* Removes exactly p. 0 or -ENOENT. May shrink the table: never call it while
 * iterating over the slots. */
int ptab_remove(struct ptab *t, const void *p);
static inline size_t ptab_bytes(const struct ptab *t)
{
	return t->cap * sizeof(*t->s);
}

#endif
