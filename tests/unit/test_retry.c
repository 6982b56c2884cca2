/*
 * test_retry.c - the pure retry queue (forward/retry.h): status
 * classification, backoff ranges, one request in flight while backing off,
 * Retry-After, ordering (newest first, oldest evicted), byte accounting.
 */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "forward/retry.h"

static const struct retry_config cfg = { 2, 2, 64, 1000, 4, false };

static struct payload *mk(enum fwd_endpoint ep, uint64_t seq, size_t len, uint32_t pts)
{
	struct payload *p = calloc(1, sizeof(*p));
	p->ep = ep;
	p->seq = seq;
	p->len = len;
	p->data = calloc(1, len ? len : 1);
	p->npoints = pts;
	return p;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A payload to push: endpoint, sequence number, bytes, points. */
struct pushed {
	enum fwd_endpoint ep;
	uint64_t seq;
	size_t len;
	uint32_t pts;
};

static void push_all(struct retry *r, const struct pushed *q, size_t n)
{
	for (size_t i = 0; i < n; i++)
		retry_push(r, mk(q[i].ep, q[i].seq, q[i].len, q[i].pts));
}

/* Takes n payloads out with pop, expecting the sequence numbers want. */
static void expect_popped(struct retry *r, struct payload *(*pop)(struct retry *), const uint64_t *want,
			  size_t n)
{
	for (size_t i = 0; i < n; i++) {
		struct payload *p = pop(r);
		cr_assert_not_null(p, "pop %zu", i);
		cr_assert_eq(p->seq, want[i], "pop %zu", i);
		payload_free(p);
	}
}

/* A classifier's verdict on an HTTP status or, status 0, a transport error. */
struct verdict_case {
	long status;
	int transport_error;
	enum retry_verdict want;
};

static void expect_verdicts(enum retry_verdict (*classify)(long, int), const struct verdict_case *c, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_expect_eq(classify(c[i].status, c[i].transport_error), c[i].want, "status %ld, error %d",
			     c[i].status, c[i].transport_error);
}

Test(retry, classify_statuses)
{
	static const struct verdict_case cases[] = {
		{ 200, 0, RETRY_DELIVERED }, { 202, 0, RETRY_DELIVERED },
		{ 400, 0, RETRY_DROP }, { 403, 0, RETRY_DROP }, { 413, 0, RETRY_DROP },
		{ 404, 0, RETRY_AGAIN }, { 408, 0, RETRY_AGAIN }, { 429, 0, RETRY_AGAIN },
		{ 500, 0, RETRY_AGAIN }, { 502, 0, RETRY_AGAIN }, { 503, 0, RETRY_AGAIN },
		{ 504, 0, RETRY_AGAIN }, { 401, 0, RETRY_AGAIN }, { 302, 0, RETRY_AGAIN },
		{ 0, 7, RETRY_AGAIN },	/* connection refused */
		{ 0, 28, RETRY_AGAIN },	/* timeout */
	};
	expect_verdicts(retry_classify, cases, N(cases));
}

Test(retry, backoff_wait_formula)
{
	cr_assert_float_eq(retry_backoff_wait(&cfg, 1, 0), 1.0, 1e-12);
	cr_assert_float_eq(retry_backoff_wait(&cfg, 1, 0.999999), 2.0, 1e-5);
	cr_assert_float_eq(retry_backoff_wait(&cfg, 3, 0.5), 6.0, 1e-12); /* d = 8 */
	cr_assert_float_eq(retry_backoff_wait(&cfg, 6, 0), 32.0, 1e-12); /* d = 64 */
	cr_assert_float_eq(retry_backoff_wait(&cfg, 7, 0), 32.0, 1e-12); /* capped */
	cr_assert_float_eq(retry_backoff_wait(&cfg, 40, 0.999999), 64.0, 1e-4);
	cr_assert_eq(retry_backoff_wait(&cfg, 0, 0.5), 0);
}

/* Through the queue: after the n-th consecutive failure the endpoint is
 * blocked for a wait in [d/2, d], and over many draws both ends are reached. */
Test(retry, backoff_ranges_over_many_draws)
{
	for (unsigned n = 1; n <= 9; n++) {
		double d = 2.0 * (double)(1u << (n - 1));
		if (d > 64)
			d = 64;
		double lo = 1e9, hi = 0;
		for (int draw = 0; draw < 2000; draw++) {
			struct retry *r = retry_new(&cfg, 1234 + (uint64_t)draw * 7919 + n);
			retry_push(r, mk(FWD_EP_SERIES_V1, 1, 10, 1));
			double now = 1000, w = 0;
			for (unsigned k = 0; k < n; k++) {
				struct payload *p = retry_next(r, now);
				cr_assert_not_null(p);
				w = retry_done(r, p, RETRY_AGAIN, -1, now);
				now = retry_blocked_until(r, FWD_EP_SERIES_V1);
			}
			cr_assert_geq(w, d / 2);
			cr_assert_leq(w, d);
			cr_assert_eq(retry_failures(r, FWD_EP_SERIES_V1), n);
			if (w < lo)
				lo = w;
			if (w > hi)
				hi = w;
			retry_free(r);
		}
		cr_assert_lt(lo, d / 2 + d * 0.01, "n=%u lo=%f", n, lo);
		cr_assert_gt(hi, d - d * 0.01, "n=%u hi=%f", n, hi);
	}
}

Test(retry, one_in_flight_while_backing_off)
{
	struct retry *r = retry_new(&cfg, 1);
	for (uint64_t s = 1; s <= 6; s++)
		retry_push(r, mk(FWD_EP_SERIES_V1, s, 10, 1));
	/* healthy: up to max_inflight (4) at once */
	struct payload *got[4];
	for (int i = 0; i < 4; i++)
		cr_assert_not_null(got[i] = retry_next(r, 0));
	cr_assert_null(retry_next(r, 0));
	cr_assert_eq(retry_inflight(r, FWD_EP_SERIES_V1), 4);
	/* one fails: endpoint backs off */
	double w = retry_done(r, got[0], RETRY_AGAIN, -1, 10);
	cr_assert(w >= 1 && w <= 2);
	cr_assert_null(retry_next(r, 10));
	cr_assert_null(retry_next(r, 10 + w - 0.001));
	/* the others finish (failures too): still backing off, one at a time */
	for (int i = 1; i < 4; i++)
		retry_done(r, got[i], RETRY_AGAIN, -1, 10);
	cr_assert_eq(retry_failures(r, FWD_EP_SERIES_V1), 1, "same round counts once");
	double until = retry_blocked_until(r, FWD_EP_SERIES_V1);
	cr_assert_eq(retry_next_wakeup(r, 10), until);
	struct payload *p = retry_next(r, until);
	cr_assert_not_null(p);
	cr_assert_null(retry_next(r, until + 1000), "second request while backing off");
	/* other endpoints are not blocked */
	retry_push(r, mk(FWD_EP_CHECKS, 50, 5, 1));
	struct payload *c = retry_next(r, until);
	cr_assert_not_null(c);
	cr_assert_eq(c->ep, FWD_EP_CHECKS);
	retry_done(r, c, RETRY_DELIVERED, -1, until);
	payload_free(c);
	/* success resets the endpoint */
	retry_done(r, p, RETRY_DELIVERED, -1, until);
	payload_free(p);
	cr_assert_eq(retry_failures(r, FWD_EP_SERIES_V1), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_not_null(got[i] = retry_next(r, until));
	for (int i = 0; i < 4; i++) {
		retry_done(r, got[i], RETRY_DELIVERED, -1, until);
		payload_free(got[i]);
	}
	cr_assert_not_null(p = retry_next(r, until));
	retry_done(r, p, RETRY_DROP, -1, until);
	payload_free(p);
	cr_assert_eq(retry_count(r), 0);
	retry_free(r);
}

Test(retry, retry_after_honoured_and_capped)
{
	struct retry *r = retry_new(&cfg, 3);
	retry_push(r, mk(FWD_EP_SERIES_V1, 1, 10, 1));
	struct payload *p = retry_next(r, 100);
	cr_assert_eq(retry_done(r, p, RETRY_AGAIN, 30, 100), 30);
	cr_assert_eq(retry_blocked_until(r, FWD_EP_SERIES_V1), 130);
	cr_assert_null(retry_next(r, 129.9));
	p = retry_next(r, 130);
	cr_assert_not_null(p);
	cr_assert_eq(p->attempts, 1);
	cr_assert_eq(retry_done(r, p, RETRY_AGAIN, 1e9, 130), RETRY_AFTER_MAX);
	p = retry_next(r, 130 + RETRY_AFTER_MAX);
	cr_assert_not_null(p);
	cr_assert_eq(retry_done(r, p, RETRY_AGAIN, 0, 5000), 0);
	cr_assert_not_null(p = retry_next(r, 5000));
	retry_done(r, p, RETRY_DELIVERED, 99, 5000);
	payload_free(p);
	cr_assert_eq(retry_blocked_until(r, FWD_EP_SERIES_V1), 0);
	retry_free(r);
}

Test(retry, newest_first_and_oldest_evicted)
{
	/* interleaved endpoints */
	static const struct pushed q[] = {
		{ FWD_EP_SERIES_V1, 1, 100, 10 }, { FWD_EP_CHECKS, 2, 100, 1 }, { FWD_EP_SERIES_V1, 3, 100, 10 },
		{ FWD_EP_EVENTS, 4, 100, 2 }, { FWD_EP_SERIES_V1, 5, 100, 10 },
	};
	static const uint64_t evicted[] = { 1 };
	struct retry *r = retry_new(&cfg, 5);
	push_all(r, q, N(q));
	cr_assert_eq(retry_bytes(r), 500);
	cr_assert_eq(retry_count(r), 5);
	cr_assert_eq(retry_points(r), 33);
	expect_popped(r, retry_pop_oldest, evicted, N(evicted));
	cr_assert_eq(retry_bytes(r), 400);
	cr_assert_eq(retry_points(r), 23);
	uint64_t want[] = { 5, 4, 3, 2 };
	for (int i = 0; i < 4; i++) {
		struct payload *p = retry_next(r, 0);
		cr_assert_eq(p->seq, want[i]);
		retry_done(r, p, RETRY_DELIVERED, -1, 0);
		payload_free(p);
	}
	cr_assert_null(retry_next(r, 0));
	cr_assert_eq(retry_bytes(r), 0);
	cr_assert_null(retry_pop_oldest(r));
	retry_free(r);
}

Test(retry, requeued_payload_keeps_its_age)
{
	static const struct pushed later[] = {
		{ FWD_EP_SERIES_V1, 11, 1, 1 }, { FWD_EP_SERIES_V1, 12, 1, 1 },
		{ FWD_EP_SERIES_V1, 5, 1, 1 }, /* back from disk: older */
	};
	static const uint64_t oldest[] = { 5, 10, 11, 12 };
	struct retry *r = retry_new(&cfg, 9);
	retry_push(r, mk(FWD_EP_SERIES_V1, 10, 1, 1));
	struct payload *p = retry_next(r, 0); /* seq 10 in flight */
	push_all(r, later, N(later));
	retry_done(r, p, RETRY_AGAIN, 0, 0);
	expect_popped(r, retry_pop_oldest, oldest, N(oldest));
	retry_free(r);
}

Test(retry, pop_newest_across_endpoints)
{
	static const struct pushed q[] = {
		{ FWD_EP_SKETCHES, 7, 1, 1 }, { FWD_EP_SERIES_V2, 3, 1, 1 }, { FWD_EP_CHECKS, 9, 1, 1 },
	};
	static const uint64_t newest[] = { 9, 7, 3 };
	struct retry *r = retry_new(&cfg, 11);
	push_all(r, q, N(q));
	expect_popped(r, retry_pop_newest, newest, N(newest));
	cr_assert_null(retry_pop_newest(r));
	retry_free(r);
}

Test(retry, classify_remote_write)
{
	static const struct verdict_case cases[] = {
		{ 200, 0, RETRY_DELIVERED }, { 204, 0, RETRY_DELIVERED },
		{ 0, 7, RETRY_AGAIN }, { 500, 0, RETRY_AGAIN }, { 503, 0, RETRY_AGAIN }, { 429, 0, RETRY_AGAIN },
		{ 400, 0, RETRY_DROP }, { 404, 0, RETRY_DROP }, { 408, 0, RETRY_DROP }, { 301, 0, RETRY_DROP },
	};
	expect_verdicts(retry_classify_promrw, cases, N(cases));
}

Test(retry, oldest_first_one_at_a_time)
{
	struct retry_config c = { 2, 2, 64, 1000, 1, true };
	struct retry *r = retry_new(&c, 1);
	for (uint64_t s = 1; s <= 3; s++)
		retry_push(r, mk(FWD_EP_PROMRW, s, 10, 1));
	struct payload *p = retry_next(r, 0);
	cr_assert_not_null(p);
	cr_expect_eq(p->seq, 1);
	cr_expect_null(retry_next(r, 0), "one request at a time");
	retry_done(r, p, RETRY_AGAIN, 5, 0);
	cr_expect_null(retry_next(r, 1), "backing off");
	p = retry_next(r, 6);
	cr_assert_not_null(p);
	cr_expect_eq(p->seq, 1, "the failed payload goes first again");
	retry_done(r, p, RETRY_DELIVERED, -1, 6);
	payload_free(p);
	p = retry_next(r, 6);
	cr_expect_eq(p->seq, 2);
	retry_done(r, p, RETRY_DELIVERED, -1, 6);
	payload_free(p);
	retry_free(r);
}
