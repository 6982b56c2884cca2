/*
 * keyhash.h - the hash of a metric line's cache key (name, type, raw suffix):
 * computed once per line when the parser splits a window of lines (parse.c) and used by
 * the aggregator's seen-line cache (aggr/seen.c) for its table, so the two
 * must agree, hence one inline definition here.
 *
 * A multiply-xorshift round per 8 bytes, tails read as overlapping words:
 * short keys (most are 20 to 100 bytes) cost a few instructions per word.
 * Only a table hash, unseeded: the cache compares keys in full and
 * bounds its probes (seen.c), so colliding lines cost time, not correctness.
 */
#ifndef DDMA_PARSE_KEYHASH_H
#define DDMA_PARSE_KEYHASH_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

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

/* One word into h: multiply, then fold the high bits down (a multiply-
 * xorshift round; every input bit reaches the low bits the table uses). */
static inline uint64_t kh_mix(uint64_t h, uint64_t w)
{
	h = (h ^ w) * 0x9e3779b97f4a7c15ull;
	return h ^ (h >> 32);
}

/* n bytes into h, 8 at a time; the tail as one overlapping word (n >= 8) or
 * two overlapping 4-byte halves or three single bytes. The length goes in
 * first, so a key's pieces cannot shift into each other. */
static inline uint64_t kh_bytes(uint64_t h, const char *p, size_t n)
{
	h = kh_mix(h, n);
	if (n >= 8) {
		const char *last = p + n - 8;
		for (; p < last; p += 8)
			h = kh_mix(h, kh_rd64(p));
		return kh_mix(h, kh_rd64(last));
	}
	if (n >= 4)
		return kh_mix(h, kh_rd32(p) << 32 | kh_rd32(p + n - 4));
	if (n)
		return kh_mix(h, (uint64_t)(unsigned char)p[0] << 16 |
				 (uint64_t)(unsigned char)p[n >> 1] << 8 | (unsigned char)p[n - 1]);
	return h;
}

/* The cache key's hash: type (enum metric_type as parsed), name, raw suffix. */
static inline uint64_t dsd_key_hash(unsigned type, const char *name, size_t nn, const char *suf,
				    size_t sn)
{
	uint64_t h = kh_bytes(kh_bytes((uint64_t)type + 1, name, nn), suf, sn);
	h *= 0xff51afd7ed558ccdull;
	return h ^ (h >> 33);
}

#endif
