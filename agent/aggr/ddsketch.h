/*
 * ddsketch.h - DDSketch with Datadog agent's key mapping (pkg/quantile).
 *
 * Used by the aggregator for distributions (`d`) and for histograms that
 * exceed their exact-sample cap, and by the forwarder through
 * aggr_sketch_to_series. Parameters are Datadog's defaults, so the keys in a
 * struct sketch_point are understood by /api/beta/sketches:
 *   eps = 1/128, gamma = 1 + 2*eps = 1.015625, min value 1e-9,
 *   bias = 1 - floor(log_gamma(1e-9)) = 1338,
 *   key(v) = round_half_even(log_gamma(v)) + bias for v >= gamma^(1-bias)
 *   (~9.94e-10, the value of key 1), key(-v) = -key(v), 0 below that,
 *   keys are int16: beyond +-32766 a value maps to the +-Inf key +-32767,
 *   at most 4096 bins: the lowest keys are collapsed into the next one.
 * A bin's representative value is gamma^(key - bias): every value in the bin
 * is within a factor gamma^(1/2) of it, i.e. a relative error <= 0.78%
 * (the bound tested is 1%). Quantiles use Datadog's rank
 * rank(q) = round_half_even(q * (cnt - 1)) (0-based): the answer is the
 * representative value of the first bin whose cumulative count exceeds the
 * rank, clamped to [min, max]; q <= 0 gives min, q >= 1 gives max.
 *
 * Bins are a sorted array of unique keys (counts saturate at UINT32_MAX).
 * Mergeable: merge(a, b) has the same bins as the sketch of the union.
 * Owns its bin array. Not thread-safe.
 */
#ifndef DDMA_AGGR_DDSKETCH_H
#define DDMA_AGGR_DDSKETCH_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DDSKETCH_EPS (1.0 / 128.0)
#define DDSKETCH_GAMMA (1.0 + 2.0 * DDSKETCH_EPS)
#define DDSKETCH_MIN_VALUE 1e-9
#define DDSKETCH_BIN_LIMIT 4096
#define DDSKETCH_MAX_KEY 32766
#define DDSKETCH_INF_KEY 32767

struct ddsketch_bin {
	int32_t key;
	uint32_t n;
};

struct ddsketch {
	uint64_t cnt;		/* total weight inserted */
	double min, max, sum;
	uint32_t nbins, cap;
	struct ddsketch_bin *bins; /* ascending keys */
};

void ddsketch_init(struct ddsketch *s);
void ddsketch_done(struct ddsketch *s); /* frees the bins; accepts NULL */
void ddsketch_reset(struct ddsketch *s);

int32_t ddsketch_key(double v);
/* Representative value of a key: +-gamma^(|key| - bias), 0 for key 0. */
double ddsketch_value(int32_t key);

/* Adds v with weight n (>= 1). 0 or -ENOMEM. */
int ddsketch_add(struct ddsketch *s, double v, uint32_t n);
/* dst += src. 0 or -ENOMEM (dst unchanged). */
int ddsketch_merge(struct ddsketch *dst, const struct ddsketch *src);

double ddsketch_quantile(const struct ddsketch *s, double q);
/* Same on flushed bins (a struct sketch_point's keys/counts). */
double ddsketch_quantile_bins(const int32_t *keys, const uint32_t *counts, size_t nbins,
			      double min, double max, double q);

size_t ddsketch_bytes(const struct ddsketch *s);

/* Whether sum, min and max are finite (a sum of large values can overflow). */
static inline bool ddsketch_finite(const struct ddsketch *s)
{
	return isfinite(s->sum) && isfinite(s->min) && isfinite(s->max);
}

#endif
