/*
 * ctab.h - the context table: open addressing over 8-byte slots, each the
 * upper 32 bits of the context's 64-bit key hash and its slab index + 1
 * (0 = empty). Half the size of an htab slot (hash + pointer), which is most
 * of the memory a context costs beyond its own 64 bytes.
 *
 * Private to the aggregator (aggr.c, flush.c, top.c). The probe position is
 * derived from the stored 32 bits, so growing, shrinking and backward-shift
 * deletion never touch the contexts. Equal tags are confirmed by the caller
 * comparing the context's key. Grows at 3/4 load, shrinks to half under 1/8
 * (never below CTAB_MIN). Owns only its slot array. Not thread-safe.
 */
#ifndef DDMA_AGGR_CTAB_H
#define DDMA_AGGR_CTAB_H

#include <stddef.h>
#include <stdint.h>

#define CTAB_MIN 16

struct ctab {
	uint64_t *s;
	size_t cap;	/* power of two, or 0 before the first insert */
	size_t n;
};

static inline uint64_t ctab_slot(uint64_t h, uint32_t idx)
{
	return (h & 0xffffffff00000000ull) | ((uint64_t)idx + 1);
}

static inline uint32_t ctab_idx(uint64_t slot)
{
	return (uint32_t)(slot & 0xffffffffu) - 1;
}

/* Probe sequence for hash h: for (i = ctab_start(t, h); t->s[i]; i = ctab_next(t, i)),
 * candidates are the slots with (t->s[i] >> 32) == (h >> 32). */
static inline size_t ctab_start(const struct ctab *t, uint64_t h)
{
	uint32_t x = (uint32_t)(h >> 32);
	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return (size_t)x & (t->cap - 1);
}

static inline size_t ctab_next(const struct ctab *t, size_t i)
{
	return (i + 1) & (t->cap - 1);
}

void ctab_init(struct ctab *t);
void ctab_done(struct ctab *t);
/* Inserts the slot value ctab_slot(h, idx). 0 or -ENOMEM. */
int ctab_insert(struct ctab *t, uint64_t slot);
/* Removes exactly this slot value; may shrink the table (never call it
 * while iterating). 0 or -ENOENT. */
int ctab_remove(struct ctab *t, uint64_t slot);
static inline size_t ctab_bytes(const struct ctab *t)
{
	return t->cap * sizeof(*t->s);
}

#endif
