/*
 * intern.h - refcounted string and tag-set interning for the aggregator.
 *
 * Private to aggr/. Each distinct string is stored once (struct istr, one
 * malloc each so it can be returned when its last user goes); each distinct
 * tag set is stored once (struct tagset, an array of istr pointers in the
 * canonical order below) and shared by every context with the same tags.
 * Lookups go through an htab keyed by the XXH3 hash; equal hashes are
 * confirmed by comparing full contents, so hash collisions are harmless.
 *
 * Canonical tag order: ascending (hash, bytes). It is cheap to produce on the
 * hot path (64-bit compares), makes equal sets compare element by element,
 * and the flush re-sorts by bytes for the output.
 *
 * The pools own the interned objects; users hold references (refcnt) and give
 * them back with *_put. Not thread-safe.
 */
#ifndef DDMA_AGGR_INTERN_H
#define DDMA_AGGR_INTERN_H

#include <stddef.h>
#include <stdint.h>

#include "aggr/htab.h"
#include "core/sv.h"

struct istr {
	uint64_t hash;		/* hash64 of the bytes */
	uint32_t refcnt;
	uint32_t len;
	uint64_t aux;		/* names pool: samples refused by the caps */
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
	uint64_t hash;		/* tagset_hash() of the canonical list */
	uint32_t refcnt;
	uint32_t n;
	struct istr *tags[];	/* canonical order */
};

struct strpool {
	struct htab t;
	size_t bytes;		/* malloc'ed bytes of live strings */
};

struct tagpool {
	struct htab t;
	size_t bytes;
};

void strpool_init(struct strpool *p);
void strpool_done(struct strpool *p); /* frees every string; accepts NULL */
/* Finds or creates s (h = hash64(s)) and takes a reference. NULL on ENOMEM. */
struct istr *strpool_get(struct strpool *p, struct sv s, uint64_t h);
/* Finds s without taking a reference, or NULL. */
struct istr *strpool_find(const struct strpool *p, struct sv s, uint64_t h);
void strpool_put(struct strpool *p, struct istr *s); /* accepts NULL */

/* Sorts refs into canonical order and removes duplicates; returns the new
 * count. Insertion sort up to 8 tags, qsort above. */
size_t tagref_canon(struct tagref *refs, size_t n);
/* Order-dependent hash of a canonical list. */
uint64_t tagset_hash(const struct tagref *refs, size_t n);
/* True when ts holds exactly the canonical list refs. */
bool tagset_eq(const struct tagset *ts, const struct tagref *refs, size_t n);

void tagpool_init(struct tagpool *p);
void tagpool_done(struct tagpool *p, struct strpool *sp); /* accepts NULL */
/* Finds or creates the set for a canonical list (h = tagset_hash) and takes a
 * reference; new sets take references on their strings in sp. NULL on ENOMEM. */
struct tagset *tagpool_get(struct tagpool *p, struct strpool *sp, const struct tagref *refs,
			   size_t n, uint64_t h);
void tagpool_put(struct tagpool *p, struct strpool *sp, struct tagset *ts); /* accepts NULL */

#endif
