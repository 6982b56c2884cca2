/*
 * keyhash.h - the hash of a metric line's cache key (name, type, raw suffix):
 * computed once per line by the parser's prefetch walk (parse.c) and used by
 * the aggregator's seen-line cache (aggr/seen.c) for its table, so the two
 * must agree, hence one inline definition here.
 *
 * wyhash-style mixing, 16 bytes per multiplication, tails read as overlapping
 * words. Only a table hash, unseeded: the cache compares keys in full and
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

static inline uint64_t kh_mum(uint64_t x, uint64_t y)
{
	__uint128_t r = (__uint128_t)x * y;
	return (uint64_t)(r >> 64) ^ (uint64_t)r;
}

static inline uint64_t kh_bytes(uint64_t h, const char *p, size_t n)
{
	const uint64_t k1 = 0xa0761d6478bd642full, k2 = 0xe7037ed1a0b428dbull;
	uint64_t a, b;
	h ^= n * k1;
	while (n > 16) {
		h = kh_mum(kh_rd64(p) ^ k2 ^ h, kh_rd64(p + 8) ^ k1);
		p += 16;
		n -= 16;
	}
	if (n >= 8) {
		a = kh_rd64(p);
		b = kh_rd64(p + n - 8);
	} else if (n >= 4) {
		a = kh_rd32(p);
		b = kh_rd32(p + n - 4);
	} else if (n) {
		a = ((uint64_t)(unsigned char)p[0] << 16) | ((uint64_t)(unsigned char)p[n >> 1] << 8) |
		    (unsigned char)p[n - 1];
		b = 0;
	} else {
		a = b = 0;
	}
	return kh_mum(a ^ k2 ^ h, b ^ k1);
}

/* The cache key's hash: type (enum metric_type as parsed), name, raw suffix. */
static inline uint64_t dsd_key_hash(unsigned type, const char *name, size_t nn, const char *suf,
				    size_t sn)
{
	return kh_bytes(kh_bytes((uint64_t)type + 1, name, nn), suf, sn);
}

#endif
