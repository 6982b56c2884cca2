/*
 * hll.h - set accumulator: exact distinct members, then HyperLogLog.
 *
 * Used by the aggregator for sets (`s`). A set keeps the 64-bit XXH3 hashes of
 * its members in an open-addressing table (exact; two distinct members collide
 * with probability ~n^2/2^65, 3e-12 at 10,000 members) until it holds more
 * than set_exact_max members; then every hash moves into a HyperLogLog and the
 * exact table is freed, so memory per set is bounded by 16 KiB.
 *
 * HyperLogLog: precision 14 (m = 16384 one-byte registers; the top 14 hash
 * bits pick the register, the rank is 1 + leading zeros of the other 50 bits).
 * Standard error 1.04/sqrt(16384) = 0.81%. The estimate uses Ertl's improved
 * raw estimator ("New cardinality estimation algorithms for HyperLogLog
 * sketches", 2017), unbiased over the whole range without correction tables.
 *
 * Owns its memory. Not thread-safe.
 */
#ifndef DDMA_AGGR_HLL_H
#define DDMA_AGGR_HLL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HLL_P 14
#define HLL_M (1u << HLL_P)
#define HLL_Q (64 - HLL_P)
#define HLL_STDERR 0.008125 /* 1.04 / sqrt(16384) */

struct hll {
	uint8_t reg[HLL_M];
};

void hll_init(struct hll *h);
void hll_add(struct hll *h, uint64_t hash);
void hll_merge(struct hll *dst, const struct hll *src);
double hll_estimate(const struct hll *h);

struct setacc;

struct setacc *setacc_new(void);
void setacc_free(struct setacc *s); /* accepts NULL */
/* Adds a member hash; switches to HyperLogLog past exact_max members.
 * 0 or -ENOMEM (the member is then not counted). */
int setacc_add(struct setacc *s, uint64_t hash, size_t exact_max);
/* dst = dst union src: exact while the union has at most exact_max members,
 * HyperLogLog when either side is one or the union grows past exact_max (the
 * same registers as adding every member to one set). src is not changed.
 * 0 or -ENOMEM (dst then holds part of src). */
int setacc_merge(struct setacc *dst, const struct setacc *src, size_t exact_max);
/* Distinct members: exact, or the HyperLogLog estimate rounded. */
double setacc_count(const struct setacc *s);
bool setacc_is_hll(const struct setacc *s);
size_t setacc_bytes(const struct setacc *s);

#endif
