/*
 * intern.h - refcounted string and tag-set interning for the aggregator.
 *
 * Private to aggr/. Each distinct string is stored once (struct istr, one
 * malloc each so it can be returned when its last user goes); each distinct
 * tag set is stored once (struct tagset, an array of istr pointers in the
 * canonical order below) and shared by every context with the same tags.
 * Lookups go through a ptab (8-byte slots: the object's pointer and a few
 * bits of its hash) keyed by the XXH3 hash; equal hashes are confirmed by
 * comparing full contents, so hash collisions are harmless.
 *
 * Canonical tag order: ascending (hash, bytes). It is cheap to produce on the
 * hot path (64-bit compares), makes equal sets compare element by element,
 * and the flush re-sorts by bytes for the output.
 *
 * The pools own the interned objects; users hold references (refcnt) and give
 * them back with *_put (or *_unref, which hands the object over instead of
 * freeing it). Objects never move once created (the tables hold pointers;
 * growing a table moves the slots, not the objects), and the bytes, len, hash
 * of a string and the n, hash and tags[] of a set never change after creation:
 * only refcnt does. Not thread-safe (aggr.h says what another thread may
 * read).
 */
#ifndef DDMA_AGGR_INTERN_H
#define DDMA_AGGR_INTERN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "aggr/ptab.h"
#include "core/sv.h"

struct istr {
	uint64_t hash;		/* hash64 of the bytes (first: ptab.h) */
	uint32_t refcnt;
	uint32_t len;
	char s[];		/* NUL-terminated */
};

static inline struct sv istr_sv(const struct istr *s)
{
	return (struct sv){ s->s, s->len };
}

/* A tag as seen on the hot path: its bytes and their hash. */
struct tagref {
	uint64_t h;
	struct sv s;
};

struct tagset {
	uint64_t hash;		/* tagset_hash() of the canonical list (first: ptab.h) */
	uint32_t refcnt;
	uint32_t n;
	struct istr *tags[];	/* canonical order */
};

_Static_assert(offsetof(struct istr, hash) == 0, "ptab reads an item's hash first");
_Static_assert(offsetof(struct tagset, hash) == 0, "ptab reads an item's hash first");

struct strpool {
	struct ptab t;
	size_t bytes;		/* malloc'ed bytes of live strings */
};

struct tagpool {
	struct ptab t;
	size_t bytes;
};

void strpool_init(struct strpool *p);
void strpool_done(struct strpool *p); /* frees every string; accepts NULL */
/* Finds or creates s (h = hash64(s)) and takes a reference. NULL on ENOMEM. */
struct istr *strpool_get(struct strpool *p, struct sv s, uint64_t h);
/* Finds s without taking a reference, or NULL. */
struct istr *strpool_find(const struct strpool *p, struct sv s, uint64_t h);
void strpool_put(struct strpool *p, struct istr *s); /* accepts NULL */
/* strpool_put that does not free: when the last reference goes, the string is
 * unlinked from the pool (a later get makes a new one), left unchanged, and
 * returned for the caller to free() later (aggr_collect hands it to the out,
 * whose records may still read it); otherwise NULL. */
void *strpool_unref(struct strpool *p, struct istr *s);

/* Sorts refs into canonical order and removes duplicates; returns the new
 * count. Insertion sort up to 8 tags, qsort above. */
size_t tagref_canon(struct tagref *refs, size_t n);
/* hash64_combine (core/hash.h), inlined for the hot path: same values. */
static inline uint64_t mix64(uint64_t a, uint64_t b)
{
	a ^= b + 0x9e3779b97f4a7c15ULL + (a << 12) + (a >> 4);
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	return a;
}

/* Order-dependent hash of a canonical list. */
static inline uint64_t tagset_hash(const struct tagref *r, size_t n)
{
	uint64_t h = 0x7a67736574ULL + n;
	for (size_t i = 0; i < n; i++)
		h = mix64(h, r[i].h);
	return h;
}

static inline uint64_t ld64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* p[0..len) == s, with word compares for the short strings of the hot path. */
static inline bool sv_same(const char *p, size_t len, struct sv s)
{
	if (len != s.n)
		return false;
	if (len >= 8 && len <= 64) {
		for (size_t i = 0; i + 8 < len; i += 8)
			if (ld64(p + i) != ld64(s.p + i))
				return false;
		return ld64(p + len - 8) == ld64(s.p + len - 8);
	}
	if (len >= 4 && len < 8) {
		uint32_t x, y, u, v;
		memcpy(&x, p, 4);
		memcpy(&y, s.p, 4);
		memcpy(&u, p + len - 4, 4);
		memcpy(&v, s.p + len - 4, 4);
		return x == y && u == v;
	}
	return len == 0 || memcmp(p, s.p, len) == 0;
}

/* True when ts holds exactly the canonical list refs. */
static inline bool tagset_eq(const struct tagset *ts, const struct tagref *r, size_t n)
{
	if (ts->n != n)
		return false;
	for (size_t i = 0; i < n; i++) {
		const struct istr *t = ts->tags[i];
		if (t->hash != r[i].h || !sv_same(t->s, t->len, r[i].s))
			return false;
	}
	return true;
}

void tagpool_init(struct tagpool *p);
void tagpool_done(struct tagpool *p, struct strpool *sp); /* accepts NULL */
/* Finds or creates the set for a canonical list (h = tagset_hash) and takes a
 * reference; new sets take references on their strings in sp. NULL on ENOMEM. */
struct tagset *tagpool_get(struct tagpool *p, struct strpool *sp, const struct tagref *refs,
			   size_t n, uint64_t h);
void tagpool_put(struct tagpool *p, struct strpool *sp, struct tagset *ts); /* accepts NULL */
/* tagpool_put that does not free: when the set's last reference goes, the set
 * and those of its strings whose last reference goes are unlinked, left
 * unchanged and stored in dead[] (room for 1 + ts->n entries) for the caller to
 * free() later. Returns the number stored. */
size_t tagpool_unref(struct tagpool *p, struct strpool *sp, struct tagset *ts, void **dead);

#endif
