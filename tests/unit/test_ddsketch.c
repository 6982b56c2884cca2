/*
 * test_ddsketch.c - DDSketch with Datadog's key mapping: constants, relative
 * error on several distributions, merge == sketch of the union, bin limit.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "aggr/ddsketch.h"

static uint64_t rng = 88172645463325252ULL;

static double uniform01(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static int dcmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* Checks every quantile against the exact sample at the sketch's rank. */
static void check_error(double *v, size_t n, double bound)
{
	struct ddsketch s;
	ddsketch_init(&s);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(ddsketch_add(&s, v[i], 1), 0);
	qsort(v, n, sizeof(*v), dcmp);
	cr_assert_eq(s.cnt, n);
	cr_assert_eq(s.min, v[0]);
	cr_assert_eq(s.max, v[n - 1]);
	static const double qs[] = { 0.01, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95, 0.99, 0.999 };
	for (size_t i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		size_t rank = (size_t)rint(qs[i] * (double)(n - 1));
		double want = v[rank], got = ddsketch_quantile(&s, qs[i]);
		double err = want == 0 ? fabs(got) : fabs(got - want) / fabs(want);
		cr_assert(err <= bound, "q=%g want %g got %g err %g", qs[i], want, got, err);
	}
	cr_assert_eq(ddsketch_quantile(&s, 0), v[0]);
	cr_assert_eq(ddsketch_quantile(&s, 1), v[n - 1]);
	ddsketch_done(&s);
}

Test(ddsketch, datadog_key_mapping)
{
	cr_assert_float_eq(DDSKETCH_GAMMA, 1.015625, 0);
	cr_assert_eq(ddsketch_key(1.0), 1338);
	cr_assert_eq(ddsketch_key(-1.0), -1338);
	cr_assert_eq(ddsketch_key(0.0), 0);
	cr_assert_eq(ddsketch_key(1e-10), 0);
	cr_assert_eq(ddsketch_key(DDSKETCH_GAMMA), 1339);
	cr_assert_eq(ddsketch_key(1000), 1338 + 446);
	cr_assert_eq(ddsketch_key(1e300), DDSKETCH_INF_KEY);
	cr_assert_float_eq(ddsketch_value(1338), 1.0, 1e-15);
	for (int32_t k = 1; k < 32000; k += 97)
		cr_assert_eq(ddsketch_key(ddsketch_value(k)), k, "key %d", k);
}

Test(ddsketch, relative_error_uniform)
{
	enum { N = 100000 };
	double *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++)
		v[i] = 1 + 999 * uniform01();
	check_error(v, N, 0.01);
	free(v);
}

Test(ddsketch, relative_error_exponential)
{
	enum { N = 100000 };
	double *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++)
		v[i] = -log(1 - uniform01()) * 50;
	check_error(v, N, 0.01);
	free(v);
}

Test(ddsketch, relative_error_wide_range_and_negative)
{
	enum { N = 50000 };
	double *v = malloc(N * sizeof(*v));
	for (size_t i = 0; i < N; i++) {
		double x = exp(uniform01() * 20 - 10); /* 4.5e-5 .. 2.2e4: ~2600 bins, under the limit */
		v[i] = i % 3 == 0 ? -x : x;
	}
	check_error(v, N, 0.01);
	free(v);
}

Test(ddsketch, constant_values_exact_bounds)
{
	enum { N = 1000 };
	double v[N];
	for (size_t i = 0; i < N; i++)
		v[i] = 123.456;
	check_error(v, N, 0); /* clamped to [min, max] = the value itself */
}

Test(ddsketch, weights)
{
	struct ddsketch s;
	ddsketch_init(&s);
	ddsketch_add(&s, 10, 3);
	ddsketch_add(&s, 20, 1);
	cr_assert_eq(s.cnt, 4);
	cr_assert_eq(s.sum, 50);
	cr_assert_eq(s.nbins, 2);
	/* rank round(0.5 * 3) = 2 -> the third unit, value 10 */
	cr_assert(fabs(ddsketch_quantile(&s, 0.5) - 10) <= 0.1);
	cr_assert(fabs(ddsketch_quantile(&s, 0.9) - 20) <= 0.2);
	ddsketch_done(&s);
}

Test(ddsketch, merge_equals_sketch_of_union)
{
	struct ddsketch a, b, u;
	ddsketch_init(&a);
	ddsketch_init(&b);
	ddsketch_init(&u);
	for (int i = 0; i < 20000; i++) {
		double x = -log(1 - uniform01()) * (i % 2 ? 10 : 1000);
		ddsketch_add(i % 3 ? &a : &b, x, 1);
		ddsketch_add(&u, x, 1);
	}
	cr_assert_eq(ddsketch_merge(&a, &b), 0);
	cr_assert_eq(a.cnt, u.cnt);
	cr_assert_eq(a.min, u.min);
	cr_assert_eq(a.max, u.max);
	cr_assert_float_eq(a.sum, u.sum, 1e-9 * u.sum);
	cr_assert_eq(a.nbins, u.nbins);
	for (uint32_t i = 0; i < a.nbins; i++) {
		cr_assert_eq(a.bins[i].key, u.bins[i].key);
		cr_assert_eq(a.bins[i].n, u.bins[i].n);
	}
	for (double q = 0.05; q < 1; q += 0.05)
		cr_assert_eq(ddsketch_quantile(&a, q), ddsketch_quantile(&u, q));
	struct ddsketch empty;
	ddsketch_init(&empty);
	cr_assert_eq(ddsketch_merge(&empty, &u), 0);
	cr_assert_eq(empty.min, u.min);
	cr_assert_eq(empty.nbins, u.nbins);
	ddsketch_done(&empty);
	ddsketch_done(&a);
	ddsketch_done(&b);
	ddsketch_done(&u);
}

Test(ddsketch, bin_limit_collapses_lowest)
{
	struct ddsketch s;
	ddsketch_init(&s);
	/* 5000 distinct keys: values gamma^k for k = 0..4999 */
	for (int k = 0; k < 5000; k++)
		ddsketch_add(&s, ddsketch_value(1338 + k), 1);
	cr_assert_eq(s.nbins, DDSKETCH_BIN_LIMIT);
	cr_assert_eq(s.cnt, 5000);
	cr_assert_eq(s.bins[0].key, 1338 + 5000 - DDSKETCH_BIN_LIMIT);
	cr_assert_eq(s.bins[0].n, 5000 - DDSKETCH_BIN_LIMIT + 1);
	uint64_t tot = 0;
	for (uint32_t i = 0; i < s.nbins; i++)
		tot += s.bins[i].n;
	cr_assert_eq(tot, 5000);
	/* high quantiles are unaffected */
	double want = ddsketch_value(1338 + (int)rint(0.99 * 4999));
	cr_assert_float_eq(ddsketch_quantile(&s, 0.99), want, want * 1e-12);
	ddsketch_done(&s);
}

Test(ddsketch, quantile_from_flushed_bins_matches)
{
	struct ddsketch s;
	ddsketch_init(&s);
	for (int i = 1; i <= 1000; i++)
		ddsketch_add(&s, i, 1);
	int32_t keys[DDSKETCH_BIN_LIMIT];
	uint32_t counts[DDSKETCH_BIN_LIMIT];
	for (uint32_t i = 0; i < s.nbins; i++) {
		keys[i] = s.bins[i].key;
		counts[i] = s.bins[i].n;
	}
	for (double q = 0; q <= 1; q += 0.01)
		cr_assert_eq(ddsketch_quantile_bins(keys, counts, s.nbins, s.min, s.max, q),
			     ddsketch_quantile(&s, q));
	ddsketch_done(&s);
}
