/*
 * hist.h - histogram/timing accumulator and the histogram-style summary.
 *
 * Private to aggr/. A struct hist keeps the exact weighted samples of one
 * context in one bucket up to exact_max samples; the next sample folds every
 * sample into a DDSketch, so nothing is dropped and memory stays bounded.
 * count, sum, min and max stay exact either way.
 *
 * Sample rates as in Datadog's agent (pkg/metrics/histogram.go addSample): a
 * sample sent with rate r weighs trunc(1/r) (an integer, at least 1: @0.21
 * weighs 4) in count, median and percentiles, and adds v * (1/r) to the sum
 * (@0.21: 4.76 v). So avg = sum / count is not a plain mean of the values
 * when 1/r is not an integer: "x:666|h|@0.21" gives .count 0.4, .avg 792.857.
 *
 * Rank formulas (Datadog's agent, pkg/metrics/histogram.go; with integer
 * weights its integer divisions give the same ranks). Samples sorted ascending, W = sum of weights, P = int(p*100 + 0.5):
 *   median     = first sample whose cumulative weight > (W - 1) / 2
 *                (the lower middle for an even count: 1..100 -> 50)
 *   percentile = first sample whose cumulative weight > (P * W - 1) / 100
 *                (for unit weights the nearest rank ceil(P*N/100): 1..100,
 *                P=95 -> 95; 1..10, P=95 -> 10)
 * Once folded into the sketch, median and percentiles come from the sketch
 * (ddsketch.h: relative error <= 1%).
 *
 * hist_emit writes the series named <name>.max/.median/.avg/.count/.min/.sum
 * (those enabled in cfg->histogram_aggregates) and <name>.<P>percentile for each
 * cfg->histogram_percentiles entry with 1 <= P <= 100; all gauges except .count,
 * a rate W/10 with interval 10.
 * Owns its memory. Not thread-safe.
 */
#ifndef DDMA_AGGR_HIST_H
#define DDMA_AGGR_HIST_H

#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr_config.h"
#include "aggr/ddsketch.h"
#include "core/batch.h"

#define HIST_EXACT_MAX_DEFAULT 100000
#define HIST_MAX_PCT 32

struct hist_sample {
	double v, w;
};

struct hist {
	struct hist_sample *s;
	uint32_t n, cap, exact_max;
	double count, sum, min, max;	/* count = sum of weights */
	struct ddsketch *sk;		/* non-NULL once past exact_max */
};

/* The numbers hist_emit publishes. */
struct hist_summary {
	double count, sum, min, max, median;
	size_t npct;
	int pct[HIST_MAX_PCT];		/* P in 1..100 */
	double pct_value[HIST_MAX_PCT];
};

struct hist *hist_new(uint32_t exact_max);
void hist_free(struct hist *h); /* accepts NULL */
/* One sample v sent with sample rate `rate` in (0,1] (see above). 0 or
 * -ENOMEM (the sample is then not counted). */
int hist_add(struct hist *h, double v, double rate);
size_t hist_bytes(const struct hist *h);
/* dst += src, as if src's samples had been added to dst one by one: exact
 * samples concatenated while the total stays within dst->exact_max, otherwise
 * everything in dst's sketch (src's sketch merged, or its exact samples added
 * with their rounded weights); count, sum, min and max combined. src is not
 * changed. 0 or -ENOMEM (dst unchanged, except that it may have been folded
 * into its sketch, which changes no count). */
int hist_merge(struct hist *dst, const struct hist *src);

/* Percentiles of cfg as integers P (1..100), at most HIST_MAX_PCT; returns count. */
size_t hist_percentiles(const struct aggr_config *cfg, int *out);
/* Sorts the samples in place and fills out (pct[] must be set by the caller). */
void hist_summarise(struct hist *h, struct hist_summary *out);
/* Appends the summary series; tmpl gives name (base), host, tags and ts.
 * A series whose value is not finite (a sum or count that overflowed) is
 * not appended: counted in *nonfinite (may be NULL). 0 or -ENOMEM. Returns
 * the number of series added through *added (may be NULL). */
int hist_emit(struct batch *b, const struct aggr_config *cfg, const struct series *tmpl,
	      const struct hist_summary *sum, size_t *added, size_t *nonfinite);

#endif
