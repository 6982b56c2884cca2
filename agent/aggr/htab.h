/*
 * htab.h - open-addressing hash table of (64-bit hash, pointer) slots.
 *
 * Private to the aggregator (aggr/). Used for the context table and the
 * string / tag-set interning pools. Linear probing; the full 64-bit hash is
 * stored in the slot so a probe compares hashes without touching the item
 * (cache friendly); equal hashes are confirmed by the caller comparing full
 * keys. Deletion is by backward shift (no tombstones). The table grows at 3/4
 * load and shrinks to half when it falls under 1/8 (never below 16 slots).
 *
 * Owns only its slot array, never the items. Not thread-safe.
 */
#ifndef DDMA_AGGR_HTAB_H
#define DDMA_AGGR_HTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hslot {
	uint64_t h;
	void *p;	/* NULL = empty */
};

struct htab {
	struct hslot *s;
	size_t cap;	/* power of two, or 0 before the first insert */
	size_t n;
};

void htab_init(struct htab *t);
void htab_done(struct htab *t); /* frees the slots; accepts NULL */

/* Probe sequence: for (i = htab_start(t, h); t->s[i].p; i = htab_next(t, i)). */
static inline size_t htab_start(const struct htab *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 29)) & (t->cap - 1);
}

static inline size_t htab_next(const struct htab *t, size_t i)
{
	return (i + 1) & (t->cap - 1);
}

/* First item with hash h for which eq(item, key) is true, or NULL. */
void *htab_find(const struct htab *t, uint64_t h, bool (*eq)(const void *item, const void *key),
		const void *key);
/* Inserts without checking for duplicates. 0 or -ENOMEM. */
int htab_insert(struct htab *t, uint64_t h, void *p);
/* Removes the slot holding exactly p (found through h). Returns 0 or -ENOENT.
 * May shrink the table: never call it while iterating over the slots. */
int htab_remove(struct htab *t, uint64_t h, const void *p);
/* Bytes of the slot array. */
static inline size_t htab_bytes(const struct htab *t)
{
	return t->cap * sizeof(struct hslot);
}

#endif
