/*
 * test_hll.c - HyperLogLog (p = 14, standard error 0.81%) and the set
 * accumulator's exact-then-HLL switch.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "aggr/hll.h"
#include "core/hash.h"

static uint64_t member(uint64_t i, uint64_t seed)
{
	char s[48];
	int n = snprintf(s, sizeof(s), "user-%llu-%llu", (unsigned long long)seed, (unsigned long long)i);
	return hash64(s, (size_t)n);
}

static double estimate(uint64_t n, uint64_t seed)
{
	static struct hll h;
	hll_init(&h);
	for (uint64_t i = 0; i < n; i++)
		hll_add(&h, member(i, seed));
	return hll_estimate(&h);
}

Test(hll, empty_is_zero)
{
	static struct hll h;
	hll_init(&h);
	cr_assert_float_eq(hll_estimate(&h), 0, 1e-9);
}

Test(hll, error_within_three_standard_errors)
{
	static const uint64_t ns[] = { 100, 1000, 10000, 30000, 50000, 100000, 500000, 2000000 };
	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		double e = estimate(ns[i], i);
		double rel = fabs(e - (double)ns[i]) / (double)ns[i];
		cr_assert(rel <= 3 * HLL_STDERR, "n=%llu estimate %g (%.3f%%)",
			  (unsigned long long)ns[i], e, rel * 100);
	}
}

Test(hll, mean_error_is_unbiased)
{
	/* 20 independent runs at n = 40000 (the classic estimator's bias zone):
	 * the mean relative error must be well under one standard error. */
	double sum = 0;
	for (uint64_t r = 0; r < 20; r++)
		sum += (estimate(40000, 100 + r) - 40000) / 40000;
	cr_assert(fabs(sum / 20) <= HLL_STDERR / 2, "mean error %g", sum / 20);
}

Test(hll, duplicates_and_merge)
{
	static struct hll a, b, u;
	hll_init(&a);
	hll_init(&b);
	hll_init(&u);
	for (uint64_t i = 0; i < 60000; i++) {
		hll_add(i < 40000 ? &a : &b, member(i, 7));
		hll_add(&b, member(i % 100, 7)); /* overlap */
		hll_add(&u, member(i, 7));
	}
	hll_merge(&a, &b);
	cr_assert_eq(memcmp(a.reg, u.reg, sizeof(a.reg)), 0);
	double e = hll_estimate(&a);
	cr_assert(fabs(e - 60000) / 60000 <= 3 * HLL_STDERR, "estimate %g", e);
}

Test(hll, setacc_exact_then_hll)
{
	struct setacc *s = setacc_new();
	for (uint64_t i = 0; i < 500; i++) {
		cr_assert_eq(setacc_add(s, member(i, 1), 500), 0);
		cr_assert_eq(setacc_add(s, member(i, 1), 500), 0);
	}
	cr_assert_eq(setacc_add(s, 0, 500), 0); /* hash 0 is an ordinary member... */
	cr_assert(setacc_is_hll(s), "501 members must switch");
	setacc_free(s);

	s = setacc_new();
	cr_assert_eq(setacc_add(s, 0, 10), 0);
	cr_assert_eq(setacc_add(s, 0, 10), 0);
	cr_assert_eq(setacc_add(s, 5, 10), 0);
	cr_assert_eq(setacc_count(s), 2); /* ...counted once */
	cr_assert(!setacc_is_hll(s));
	setacc_free(s);

	s = setacc_new();
	for (uint64_t i = 0; i < 10000; i++)
		setacc_add(s, member(i, 2), 10000);
	cr_assert(!setacc_is_hll(s));
	cr_assert_eq(setacc_count(s), 10000);
	for (uint64_t i = 0; i < 200000; i++)
		setacc_add(s, member(i, 2), 10000);
	cr_assert(setacc_is_hll(s));
	double e = setacc_count(s);
	cr_assert(fabs(e - 200000) / 200000 <= 3 * HLL_STDERR, "estimate %g", e);
	cr_assert_lt(setacc_bytes(s), 20000, "exact table not freed");
	setacc_free(s);
}
