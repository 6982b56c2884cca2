/*
 * ddsketch.c - see ddsketch.h.
 */
#include "aggr/ddsketch.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/search.h"

/* bias = 1 - floor(ln(1e-9) / ln(gamma)); floor(-1336.6...) = -1337. */
#define DDSKETCH_BIAS 1338
/* gamma^(1 - bias), the value of key 1 (Datadog's norm.min), cut a little
 * low so that key(value(1)) == 1 despite rounding. */
#define DDSKETCH_NORM_MIN 9.941854089121e-10

static double log_gamma(double v)
{
	return log(v) / log1p(2.0 * DDSKETCH_EPS);
}

int32_t ddsketch_key(double v)
{
	if (v < 0)
		return -ddsketch_key(-v);
	if (!(v >= DDSKETCH_NORM_MIN))
		return 0;
	double k = rint(log_gamma(v)) + DDSKETCH_BIAS; /* default rounding: half to even */
	if (k > DDSKETCH_MAX_KEY)
		return DDSKETCH_INF_KEY;
	if (k < 1)
		return 1;
	return (int32_t)k;
}

double ddsketch_value(int32_t key)
{
	if (key < 0)
		return -ddsketch_value(-key);
	if (key == 0)
		return 0;
	if (key >= DDSKETCH_INF_KEY)
		return INFINITY;
	return pow(DDSKETCH_GAMMA, (double)(key - DDSKETCH_BIAS));
}

void ddsketch_init(struct ddsketch *s)
{
	memset(s, 0, sizeof(*s));
}

void ddsketch_done(struct ddsketch *s)
{
	if (!s)
		return;
	free(s->bins);
	ddsketch_init(s);
}

void ddsketch_reset(struct ddsketch *s)
{
	s->cnt = 0;
	s->min = s->max = s->sum = 0;
	s->nbins = 0;
}

static uint32_t sat_add(uint32_t a, uint64_t b)
{
	uint64_t r = (uint64_t)a + b;
	return r > UINT32_MAX ? UINT32_MAX : (uint32_t)r;
}

/* Folds the lowest bins into the next one until nbins <= limit. */
static void collapse(struct ddsketch_bin *b, uint32_t *nbins)
{
	if (*nbins <= DDSKETCH_BIN_LIMIT)
		return;
	uint32_t extra = *nbins - DDSKETCH_BIN_LIMIT;
	uint64_t folded = 0;
	for (uint32_t i = 0; i < extra; i++)
		folded += b[i].n;
	b[extra].n = sat_add(b[extra].n, folded);
	memmove(b, b + extra, DDSKETCH_BIN_LIMIT * sizeof(*b));
	*nbins = DDSKETCH_BIN_LIMIT;
}

static void note_value(struct ddsketch *s, double v, uint32_t n)
{
	if (s->cnt == 0 || v < s->min)
		s->min = v;
	if (s->cnt == 0 || v > s->max)
		s->max = v;
	s->cnt += n;
	s->sum += v * n;
}

DEFINE_LOWER_BOUND(bin_lower_bound, struct ddsketch_bin, int32_t, key)

int ddsketch_add(struct ddsketch *s, double v, uint32_t n)
{
	if (n == 0)
		n = 1;
	int32_t k = ddsketch_key(v);
	uint32_t lo = (uint32_t)bin_lower_bound(s->bins, s->nbins, k);
	if (lo < s->nbins && s->bins[lo].key == k) {
		s->bins[lo].n = sat_add(s->bins[lo].n, n);
		note_value(s, v, n);
		return 0;
	}
	if (s->nbins == s->cap) {
		uint32_t nc = s->cap ? s->cap * 2 : 8;
		if (nc > DDSKETCH_BIN_LIMIT + 1)
			nc = DDSKETCH_BIN_LIMIT + 1;
		struct ddsketch_bin *nb = realloc(s->bins, nc * sizeof(*nb));
		if (!nb)
			return -ENOMEM;
		s->bins = nb;
		s->cap = nc;
	}
	memmove(s->bins + lo + 1, s->bins + lo, (s->nbins - lo) * sizeof(*s->bins));
	s->bins[lo].key = k;
	s->bins[lo].n = n;
	s->nbins++;
	collapse(s->bins, &s->nbins);
	note_value(s, v, n);
	return 0;
}

int ddsketch_merge(struct ddsketch *dst, const struct ddsketch *src)
{
	if (src->cnt == 0)
		return 0;
	size_t cap = (size_t)dst->nbins + src->nbins;
	struct ddsketch_bin *m = malloc((cap ? cap : 1) * sizeof(*m));
	if (!m)
		return -ENOMEM;
	uint32_t i = 0, j = 0, n = 0;
	while (i < dst->nbins || j < src->nbins) {
		if (j >= src->nbins || (i < dst->nbins && dst->bins[i].key < src->bins[j].key)) {
			m[n++] = dst->bins[i++];
		} else if (i >= dst->nbins || src->bins[j].key < dst->bins[i].key) {
			m[n++] = src->bins[j++];
		} else {
			m[n] = dst->bins[i++];
			m[n].n = sat_add(m[n].n, src->bins[j++].n);
			n++;
		}
	}
	collapse(m, &n);
	free(dst->bins);
	dst->bins = m;
	dst->nbins = n;
	dst->cap = (uint32_t)(cap ? cap : 1);
	if (dst->cnt == 0 || src->min < dst->min)
		dst->min = src->min;
	if (dst->cnt == 0 || src->max > dst->max)
		dst->max = src->max;
	dst->cnt += src->cnt;
	dst->sum += src->sum;
	return 0;
}

static double clamp(double v, double min, double max)
{
	return v < min ? min : v > max ? max : v;
}

double ddsketch_quantile_bins(const int32_t *keys, const uint32_t *counts, size_t nbins,
			      double min, double max, double q)
{
	uint64_t total = 0;
	for (size_t i = 0; i < nbins; i++)
		total += counts[i];
	if (total == 0)
		return 0;
	if (q <= 0)
		return min;
	if (q >= 1)
		return max;
	double rank = rint(q * (double)(total - 1));
	double cum = 0;
	for (size_t i = 0; i < nbins; i++) {
		cum += counts[i];
		if (cum > rank)
			return clamp(ddsketch_value(keys[i]), min, max);
	}
	return max;
}

double ddsketch_quantile(const struct ddsketch *s, double q)
{
	uint64_t total = 0;
	for (uint32_t i = 0; i < s->nbins; i++)
		total += s->bins[i].n;
	if (total == 0)
		return 0;
	if (q <= 0)
		return s->min;
	if (q >= 1)
		return s->max;
	double rank = rint(q * (double)(total - 1));
	double cum = 0;
	for (uint32_t i = 0; i < s->nbins; i++) {
		cum += s->bins[i].n;
		if (cum > rank)
			return clamp(ddsketch_value(s->bins[i].key), s->min, s->max);
	}
	return s->max;
}

size_t ddsketch_bytes(const struct ddsketch *s)
{
	return sizeof(*s) + (size_t)s->cap * sizeof(*s->bins);
}
