/*
 * hash.h - the one non-cryptographic hash used across the agent: XXH3-64 from
 * Debian's libxxhash (fast on short keys, well-distributed, stable across runs
 * when the seed is fixed).
 */
#ifndef DDMA_CORE_HASH_H
#define DDMA_CORE_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *p, size_t n);
uint64_t hash64_seed(const void *p, size_t n, uint64_t seed);
/* Mixes two hashes, order-dependent. */
uint64_t hash64_combine(uint64_t a, uint64_t b);

#endif
