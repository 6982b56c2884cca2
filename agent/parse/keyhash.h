/*
 * keyhash.h - the key of a metric line in the seen-line cache: a seeded
 * 128-bit hash of (type, name, raw suffix), computed once per line when the
 * parser splits a window of lines (parse.c) and used by the aggregator's
 * seen-line cache (aggr/seen.c) as the line's identity: the cache keeps no
 * key bytes and does not compare them, so the two must agree, hence one
 * inline definition here and one process-wide seed (keyhash.c).
 *
 * Two 64-bit lanes over the same 16-byte blocks, each a chain the CPU runs
 * in parallel with the other. A round is wyhash's: both halves of a 64x64->128
 * multiply of the block's two words, each xored with a secret, folded
 * together; the lanes use different secrets. Lane a's low bits index the
 * cache table. The type and both lengths go in first, as one round, so the
 * pieces cannot shift into each other and a piece's tail can be read as
 * overlapping words. The four secrets come from a process-wide seed, which
 * main.c draws from getrandom() before any thread starts: a sender sees no
 * hash and cannot aim at a collision. Two different keys match only if
 * both lanes collide: about 2^-128 per pair, so ~1e-28 per lookup at the
 * cache's 32 probes and 65536 entries (Datadog's agent identifies contexts
 * by a 64-bit hash alone). Not cryptographic.
 */
#ifndef DDMA_PARSE_KEYHASH_H
#define DDMA_PARSE_KEYHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A line's cache key; {0, 0} means "not computed" (the aggregator then
 * computes it; were a real key {0, 0}, recomputing gives the same). */
struct dsd_key {
	uint64_t a, b;
};

/* The process-wide secrets, derived from a seed. Fixed defaults (tests and
 * fuzzers reproduce); written only by dsd_key_seed_set/dsd_key_seed_random
 * before the receive threads start, read-only afterwards. */
extern uint64_t dsd_key_secret[4];
void dsd_key_seed_set(uint64_t a, uint64_t b);
/* Seeds from getrandom() (without blocking). Returns 0, or a negative errno
 * when the kernel's pool was not ready (then seeded from the clock and pid). */
int dsd_key_seed_random(void);

static inline uint64_t kh_rd64(const char *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

static inline uint64_t kh_rd32(const char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

__extension__ typedef unsigned __int128 kh_u128;
static inline uint64_t kh_fold(uint64_t x, uint64_t y)
{
	kh_u128 m = (kh_u128)x * y;
	return (uint64_t)m ^ (uint64_t)(m >> 64);
}

/* The hash being computed, with the secrets in locals (the compiler cannot
 * keep a global in a register across the caller's stores). */
struct kh_state {
	uint64_t a, b;
	uint64_t s0, s1, s2, s3;
};

/* One 16-byte block (two words) into both lanes. */
static inline __attribute__((always_inline)) void kh_round(struct kh_state *h, uint64_t w0,
							    uint64_t w1)
{
	h->a = kh_fold(w0 ^ h->s0 ^ h->a, w1 ^ h->s1);
	h->b = kh_fold(w0 ^ h->s2 ^ h->b, w1 ^ h->s3);
}

/* n bytes (n known to the hash already) in 16-byte blocks, the last one
 * overlapping the one before; a tail of 8..16 bytes as two overlapping
 * words, 4..7 as two overlapping halves, 1..3 as three single bytes. */
static inline __attribute__((always_inline)) void kh_piece(struct kh_state *h, const char *p,
							    size_t n)
{
	if (n > 16) {
		const char *last = p + n - 16;
		for (; p < last; p += 16)
			kh_round(h, kh_rd64(p), kh_rd64(p + 8));
		kh_round(h, kh_rd64(last), kh_rd64(last + 8));
	} else if (n >= 8) {
		kh_round(h, kh_rd64(p), kh_rd64(p + n - 8));
	} else if (n >= 4) {
		kh_round(h, kh_rd32(p), kh_rd32(p + n - 4));
	} else if (n) {
		kh_round(h, (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8 |
				    (uint64_t)(unsigned char)p[n - 1] << 16, 0);
	}
}

/* The cache key: type (enum metric_type as parsed), name, raw suffix. The
 * lengths are below 2^28 (the callers cap keys at DSD_CACHE_KEY_MAX). */
static inline struct dsd_key dsd_key_hash(unsigned type, const char *name, size_t nn,
					  const char *suf, size_t sn)
{
	struct kh_state h = { 0, 0, dsd_key_secret[0], dsd_key_secret[1], dsd_key_secret[2],
			      dsd_key_secret[3] };
	kh_round(&h, (uint64_t)type | (uint64_t)nn << 8 | (uint64_t)sn << 36, 0);
	kh_piece(&h, name, nn);
	kh_piece(&h, suf, sn);
	return (struct dsd_key){ h.a, h.b };
}

static inline int dsd_key_eq(struct dsd_key x, struct dsd_key y)
{
	return x.a == y.a && x.b == y.b;
}

#endif
