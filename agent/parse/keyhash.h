/*
 * keyhash.h - the key of a metric line in the seen-line cache: a seeded
 * 128-bit hash of (type, name, raw suffix), computed once per line when the
 * parser splits a window of lines (parse.c) and used by the aggregator's
 * seen-line cache (aggr/seen.c) as the line's identity: the cache keeps no
 * key bytes and does not compare them, so the two must agree, hence one
 * inline definition here and one process-wide seed (keyhash.c).
 *
 * Two implementations, one per process (dsd_key_aes, fixed at start-up by
 * the CPU). Both key the type and both lengths, so the pieces cannot shift
 * into each other and a piece's tail can be read as overlapping words, and
 * take name and suffix in 16-byte blocks, the last one overlapping the one
 * before.
 *  - AES (x86-64 with AES-NI, the usual case): two 128-bit chains (the
 *    name's blocks, starting from the type and lengths; the suffix's
 *    blocks), each block through four keyed AES rounds (CBC-MAC), xored
 *    together. Four rounds have no differential better than 2^-150, so a
 *    sender cannot make two lines collide blindly. ~30 instructions for a
 *    40-byte key.
 *  - portable: two 64-bit lanes, each a chain the CPU runs in parallel with
 *    the other; a round is wyhash's (both halves of a 64x64->128 multiply of
 *    the block's two words, each xored with a secret, folded together), the
 *    lanes with different secrets. ~120 instructions for a 40-byte key.
 * The secrets come from a process-wide seed, which main.c draws from
 * getrandom() before any thread starts: a sender sees no hash. Two
 * different keys match in the cache only if the 96 bits its entries keep
 * (lane a and half of lane b, aggr_int.h) collide: about 2^-96 per pair,
 * ~2^-91 per lookup at the cache's 32 probes (Datadog's agent identifies
 * contexts by a 64-bit hash alone). Lane a's low bits index the cache
 * table. Not cryptographic.
 */
#ifndef DDMA_PARSE_KEYHASH_H
#define DDMA_PARSE_KEYHASH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define DSD_KEY_HAVE_AES 1
#include <immintrin.h>
#endif

/* A line's cache key; {0, 0} means "not computed" (the aggregator then
 * computes it; were a real key {0, 0}, recomputing gives the same). */
struct dsd_key {
	uint64_t a, b;
};

/* The process-wide secrets, derived from a seed, and the implementation in
 * use (true: AES). Fixed defaults (tests and fuzzers reproduce; AES when the
 * CPU has it); written only by dsd_key_seed_set/dsd_key_seed_random/
 * dsd_key_use_aes before the receive threads start, read-only afterwards. */
extern uint64_t dsd_key_secret[4];
extern bool dsd_key_aes;
void dsd_key_seed_set(uint64_t a, uint64_t b);
/* AES on or off (tests); on only if the CPU has it. Returns dsd_key_aes. */
bool dsd_key_use_aes(bool on);
/* The key with the implementation in use (the parser inlines its own copy,
 * parse.c; this one is for everyone else). */
struct dsd_key dsd_key_hash(unsigned type, const char *name, size_t nn, const char *suf,
			    size_t sn);
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

/* The first word: type and lengths (below 2^28: the callers cap keys at
 * DSD_CACHE_KEY_MAX). */
static inline uint64_t kh_shape(unsigned type, size_t nn, size_t sn)
{
	return (uint64_t)type | (uint64_t)nn << 8 | (uint64_t)sn << 36;
}

/* The portable key: type (enum metric_type as parsed), name, raw suffix. */
static inline __attribute__((always_inline)) struct dsd_key
dsd_key_hash_plain(unsigned type, const char *name, size_t nn, const char *suf, size_t sn)
{
	struct kh_state h = { 0, 0, dsd_key_secret[0], dsd_key_secret[1], dsd_key_secret[2],
			      dsd_key_secret[3] };
	kh_round(&h, kh_shape(type, nn, sn), 0);
	kh_piece(&h, name, nn);
	kh_piece(&h, suf, sn);
	return (struct dsd_key){ h.a, h.b };
}

#ifdef DSD_KEY_HAVE_AES
#define KH_AES __attribute__((target("aes,sse2"), always_inline))

/* Four AES rounds of s ^ b, round keys from the secrets. */
static inline KH_AES __m128i kh_aes4(__m128i s, __m128i b, __m128i k0, __m128i k1)
{
	s = _mm_aesenc_si128(_mm_xor_si128(s, b), k0);
	s = _mm_aesenc_si128(s, k1);
	s = _mm_aesenc_si128(s, k0);
	return _mm_aesenc_si128(s, k1);
}

static inline KH_AES __m128i kh_aes_piece(__m128i s, const char *p, size_t n, __m128i k0,
					  __m128i k1)
{
	if (n > 16) {
		const char *last = p + n - 16;
		for (; p < last; p += 16)
			s = kh_aes4(s, _mm_loadu_si128((const __m128i *)(const void *)p), k0, k1);
		return kh_aes4(s, _mm_loadu_si128((const __m128i *)(const void *)last), k0, k1);
	}
	uint64_t lo, hi = 0;
	if (n >= 8) {
		lo = kh_rd64(p);
		hi = kh_rd64(p + n - 8);
	} else if (n >= 4) {
		lo = kh_rd32(p);
		hi = kh_rd32(p + n - 4);
	} else if (n) {
		lo = (uint64_t)(unsigned char)p[0] | (uint64_t)(unsigned char)p[n >> 1] << 8 |
		     (uint64_t)(unsigned char)p[n - 1] << 16;
	} else {
		return s;
	}
	return kh_aes4(s, _mm_set_epi64x((long long)hi, (long long)lo), k0, k1);
}

/* The AES key (same inputs as dsd_key_hash_plain); only where dsd_key_aes.
 * Two chains that do not wait on each other (AES rounds have a latency of
 * several cycles; one chain through shape, name and suffix was the walk's
 * largest stall): the name's blocks and the suffix's blocks, each from its
 * own start, xored at the end. The shape (type and both lengths) is xored
 * into the name chain's start, so it goes through the four rounds of the
 * name's first block (a name is never empty where the parser hashes; an
 * empty one gets four rounds of its own); it had a third chain of four
 * rounds until 2026-11-28. Each chain is keyed four-round AES, so a sender
 * can neither predict nor cancel a chain's difference. */
static inline KH_AES struct dsd_key dsd_key_hash_aes(unsigned type, const char *name, size_t nn,
						     const char *suf, size_t sn)
{
	const __m128i k0 = _mm_set_epi64x((long long)dsd_key_secret[1], (long long)dsd_key_secret[0]);
	const __m128i k1 = _mm_set_epi64x((long long)dsd_key_secret[3], (long long)dsd_key_secret[2]);
	__m128i a = _mm_xor_si128(k1, _mm_set_epi64x(0, (long long)kh_shape(type, nn, sn)));
	a = nn ? kh_aes_piece(a, name, nn, k0, k1) : kh_aes4(a, k0, k0, k1);
	__m128i b = kh_aes_piece(_mm_xor_si128(k0, k1), suf, sn, k0, k1);
	struct dsd_key k;
	_mm_storeu_si128((__m128i *)(void *)&k, _mm_xor_si128(a, b));
	return k;
}
#endif

static inline int dsd_key_eq(struct dsd_key x, struct dsd_key y)
{
	return x.a == y.a && x.b == y.b;
}

#endif
