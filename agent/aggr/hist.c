/*
 * hist.c - see hist.h.
 */
#include "aggr/hist.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct hist *hist_new(uint32_t exact_max)
{
	struct hist *h = calloc(1, sizeof(*h));
	if (h)
		h->exact_max = exact_max ? exact_max : HIST_EXACT_MAX_DEFAULT;
	return h;
}

void hist_free(struct hist *h)
{
	if (!h)
		return;
	free(h->s);
	if (h->sk) {
		ddsketch_done(h->sk);
		free(h->sk);
	}
	free(h);
}

static uint32_t weight_n(double w)
{
	double r = floor(w + 0.5);
	return r < 1 ? 1 : r > (double)UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

static int fold(struct hist *h)
{
	h->sk = malloc(sizeof(*h->sk));
	if (!h->sk)
		return -ENOMEM;
	ddsketch_init(h->sk);
	for (uint32_t i = 0; i < h->n; i++) {
		if (ddsketch_add(h->sk, h->s[i].v, weight_n(h->s[i].w)) < 0) {
			ddsketch_done(h->sk);
			free(h->sk);
			h->sk = NULL;
			return -ENOMEM;
		}
	}
	free(h->s);
	h->s = NULL;
	h->n = h->cap = 0;
	return 0;
}

/* Adds one sample of weight w whose share of the sum is v * inv. */
static void note(struct hist *h, double v, double w, double inv)
{
	bool first = h->count == 0 && h->n == 0 && !h->sk;
	if (first || v < h->min)
		h->min = v;
	if (first || v > h->max)
		h->max = v;
	h->count += w;
	h->sum += v * inv;
}

int hist_add(struct hist *h, double v, double rate)
{
	double inv = 1.0 / rate, w = trunc(inv);
	if (!h->sk && h->n >= h->exact_max) {
		int rc = fold(h);
		if (rc < 0)
			return rc;
	}
	if (h->sk) {
		int rc = ddsketch_add(h->sk, v, weight_n(w));
		if (rc < 0)
			return rc;
		note(h, v, w, inv);
		return 0;
	}
	if (h->n == h->cap) {
		uint32_t nc = h->cap ? h->cap * 2 : 4;
		if (nc > h->exact_max)
			nc = h->exact_max;
		struct hist_sample *ns = realloc(h->s, nc * sizeof(*ns));
		if (!ns)
			return -ENOMEM;
		h->s = ns;
		h->cap = nc;
	}
	note(h, v, w, inv);
	h->s[h->n].v = v;
	h->s[h->n].w = w;
	h->n++;
	return 0;
}

static bool empty(const struct hist *h)
{
	return h->count == 0 && h->n == 0 && !h->sk;
}

/* src's exact samples into dst's sketch, all or nothing. */
static int add_to_sketch(struct hist *dst, const struct hist *src)
{
	if (src->sk)
		return ddsketch_merge(dst->sk, src->sk);
	struct ddsketch tmp;
	ddsketch_init(&tmp);
	int rc = 0;
	for (uint32_t i = 0; i < src->n && rc == 0; i++)
		rc = ddsketch_add(&tmp, src->s[i].v, weight_n(src->s[i].w));
	if (rc == 0)
		rc = ddsketch_merge(dst->sk, &tmp);
	ddsketch_done(&tmp);
	return rc;
}

int hist_merge(struct hist *dst, const struct hist *src)
{
	if (empty(src))
		return 0;
	bool first = empty(dst);
	if (!dst->sk && !src->sk && (size_t)dst->n + src->n <= dst->exact_max) {
		uint32_t need = dst->n + src->n;
		if (need > dst->cap) {
			struct hist_sample *ns = realloc(dst->s, need * sizeof(*ns));
			if (!ns)
				return -ENOMEM;
			dst->s = ns;
			dst->cap = need;
		}
		if (src->n)
			memcpy(dst->s + dst->n, src->s, src->n * sizeof(*src->s));
		dst->n = need;
	} else {
		int rc = dst->sk ? 0 : fold(dst);
		if (rc == 0)
			rc = add_to_sketch(dst, src);
		if (rc < 0)
			return rc;
	}
	if (first || src->min < dst->min)
		dst->min = src->min;
	if (first || src->max > dst->max)
		dst->max = src->max;
	dst->count += src->count;
	dst->sum += src->sum;
	return 0;
}

size_t hist_bytes(const struct hist *h)
{
	return sizeof(*h) + (size_t)h->cap * sizeof(*h->s) + (h->sk ? ddsketch_bytes(h->sk) : 0);
}

size_t hist_percentiles(const struct aggr_config *cfg, int *out)
{
	size_t n = 0;
	for (size_t i = 0; i < cfg->nhistogram_percentiles && n < HIST_MAX_PCT; i++) {
		double p = cfg->histogram_percentiles[i];
		if (!(p >= 0 && p <= 1))
			continue;
		int P = (int)(p * 100 + 0.5);
		if (P >= 1 && P <= 100)
			out[n++] = P;
	}
	return n;
}

static int sample_cmp(const void *a, const void *b)
{
	double x = ((const struct hist_sample *)a)->v, y = ((const struct hist_sample *)b)->v;
	return (x > y) - (x < y);
}

/* First sorted sample whose cumulative weight exceeds target. */
static double rank_value(const struct hist *h, double target)
{
	double cum = 0;
	for (uint32_t i = 0; i < h->n; i++) {
		cum += h->s[i].w;
		if (cum > target)
			return h->s[i].v;
	}
	return h->n ? h->s[h->n - 1].v : 0;
}

void hist_summarise(struct hist *h, struct hist_summary *out)
{
	out->count = h->count;
	out->sum = h->sum;
	out->min = h->min;
	out->max = h->max;
	if (h->sk) {
		out->median = ddsketch_quantile(h->sk, 0.5);
		for (size_t i = 0; i < out->npct; i++)
			out->pct_value[i] = ddsketch_quantile(h->sk, out->pct[i] / 100.0);
		return;
	}
	qsort(h->s, h->n, sizeof(*h->s), sample_cmp);
	out->median = rank_value(h, (h->count - 1) / 2);
	for (size_t i = 0; i < out->npct; i++)
		out->pct_value[i] = rank_value(h, (out->pct[i] * h->count - 1) / 100);
}

static int emit_one(struct batch *b, const struct series *tmpl, const char *suffix,
		    enum series_kind kind, double value)
{
	size_t bl = strlen(tmpl->name), sl = strlen(suffix);
	char *name = arena_alloc(&b->arena, bl + sl + 1);
	if (!name)
		return -ENOMEM;
	memcpy(name, tmpl->name, bl);
	memcpy(name + bl, suffix, sl + 1);
	struct series s = *tmpl;
	s.name = name;
	s.stem_len = (uint32_t)bl;
	s.kind = kind;
	s.interval = kind == SERIES_RATE ? 10 : 0;
	s.value = value;
	return batch_add_series(b, &s);
}

int hist_emit(struct batch *b, const struct aggr_config *cfg, const struct series *tmpl,
	      const struct hist_summary *sum, size_t *added, size_t *nonfinite)
{
	static const struct {
		unsigned bit;
		const char *suffix;
	} aggs[] = {
		{ HIST_AGG_MAX, ".max" }, { HIST_AGG_MEDIAN, ".median" }, { HIST_AGG_AVG, ".avg" },
		{ HIST_AGG_COUNT, ".count" }, { HIST_AGG_MIN, ".min" }, { HIST_AGG_SUM, ".sum" },
	};
	double vals[] = { sum->max, sum->median, sum->count ? sum->sum / sum->count : 0,
			  sum->count / 10.0, sum->min, sum->sum };
	size_t n = 0, bad = 0;
	int rc = 0;
	for (size_t i = 0; i < sizeof(aggs) / sizeof(aggs[0]) && rc == 0; i++) {
		if (!(cfg->histogram_aggregates & aggs[i].bit))
			continue;
		if (!isfinite(vals[i])) {
			bad++;
			continue;
		}
		enum series_kind k = aggs[i].bit == HIST_AGG_COUNT ? SERIES_RATE : SERIES_GAUGE;
		rc = emit_one(b, tmpl, aggs[i].suffix, k, vals[i]);
		n += rc == 0;
	}
	for (size_t i = 0; i < sum->npct && rc == 0; i++) {
		char suffix[32];
		if (!isfinite(sum->pct_value[i])) {
			bad++;
			continue;
		}
		snprintf(suffix, sizeof(suffix), ".%dpercentile", sum->pct[i]);
		rc = emit_one(b, tmpl, suffix, SERIES_GAUGE, sum->pct_value[i]);
		n += rc == 0;
	}
	if (added)
		*added = n;
	if (nonfinite)
		*nonfinite = bad;
	return rc;
}
