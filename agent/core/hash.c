/*
 * hash.c - see hash.h.
 */
#include "core/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

uint64_t hash64(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

uint64_t hash64_seed(const void *p, size_t n, uint64_t seed)
{
	return XXH3_64bits_withSeed(p, n, seed);
}

uint64_t hash64_combine(uint64_t a, uint64_t b)
{
	/* boost::hash_combine widened to 64 bits, then a final avalanche. */
	a ^= b + 0x9e3779b97f4a7c15ULL + (a << 12) + (a >> 4);
	a ^= a >> 33;
	a *= 0xff51afd7ed558ccdULL;
	a ^= a >> 33;
	return a;
}
