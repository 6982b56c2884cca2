/*
 * retry.h - the in-memory retry queue and the per-endpoint backoff state,
 * following Datadog's forwarder (docs/ARCHITECTURE.md "Forwarding", docs/RELIABILITY.md F1-F3).
 *
 * - retry_classify: 2xx delivered; 400/403/413 dropped without retry;
 *   everything else >= 300 (404, 408, 429, 5xx), transport errors and
 *   timeouts are retried.
 * - Backoff after the n-th consecutive failure of an endpoint: uniform in
 *   [d/2, d], d = base * factor^(n-1), capped at max. A Retry-After from the
 *   intake replaces the drawn wait (capped at RETRY_AFTER_MAX seconds).
 * - A failure reported while the endpoint is already blocked (a request
 *   started before that round) requeues without another backoff step.
 * - While an endpoint is backing off at most one request is in flight for it;
 *   when healthy up to max_inflight.
 * - Payloads are queued per endpoint in creation order; retry_next hands out
 *   the newest sendable one first; retry_pop_oldest gives the overall oldest
 *   (for eviction when retry_bytes() is over the cap).
 *
 * Pure: time is passed in (seconds, any monotonic origin), randomness comes
 * from a seeded generator. No I/O, no logging. Owns the queued payloads.
 * Not thread-safe (loop thread).
 */
#ifndef DDMA_FORWARD_RETRY_H
#define DDMA_FORWARD_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward/payload.h"

#define RETRY_AFTER_MAX 3600.0

struct retry_config {
	double backoff_base;	/* 2 */
	double backoff_factor;	/* 2 */
	double backoff_max;	/* 64 */
	size_t max_bytes;	/* queue cap (compressed bytes); eviction is the caller's */
	unsigned max_inflight;	/* per healthy endpoint; 0 = 4 */
	bool oldest_first;	/* retry_next hands out the oldest payload (remote write:
				 * Prometheus refuses samples older than those it has) */
};

enum retry_verdict { RETRY_DELIVERED, RETRY_DROP, RETRY_AGAIN };

/* status: HTTP status (0 when no response); transport_error: nonzero on a
 * connection error or timeout. */
enum retry_verdict retry_classify(long status, int transport_error);
/* Prometheus remote write's rules: 2xx delivered; 5xx, 429 and transport
 * errors retried; every other status dropped. */
enum retry_verdict retry_classify_promrw(long status, int transport_error);

/* The wait after the n-th (n >= 1) consecutive failure for a uniform draw u
 * in [0, 1): d/2 + u * d/2. */
double retry_backoff_wait(const struct retry_config *c, unsigned n, double u);

struct retry *retry_new(const struct retry_config *cfg, uint64_t seed);
void retry_free(struct retry *r); /* frees queued payloads; accepts NULL */
void retry_reconfigure(struct retry *r, const struct retry_config *cfg);

/* Queues p (consumes it) in creation (seq) order within its endpoint. */
void retry_push(struct retry *r, struct payload *p);
/* Removes and returns the oldest queued payload of any endpoint, NULL if empty. */
struct payload *retry_pop_oldest(struct retry *r);
/* Removes and returns the newest queued payload of any endpoint, NULL if empty. */
struct payload *retry_pop_newest(struct retry *r);

/* Newest queued payload whose endpoint may send at `now`; it is removed from
 * the queue and counted in flight until retry_done. NULL when none. */
struct payload *retry_next(struct retry *r, double now);
/* Records the outcome of a payload returned by retry_next. On RETRY_AGAIN the
 * payload is queued again (consumed) and the endpoint backs off; otherwise
 * ownership of p stays with the caller. retry_after_s < 0 = none.
 * Returns the wait chosen (0 when not backing off). */
double retry_done(struct retry *r, struct payload *p, enum retry_verdict v,
		  double retry_after_s, double now);
/* Forgets an in-flight payload without an outcome (shutdown). */
void retry_abandon(struct retry *r, struct payload *p);

/* Earliest time > now when a blocked endpoint with queued payloads may send;
 * -1 when nothing waits on a backoff. */
double retry_next_wakeup(const struct retry *r, double now);

size_t retry_bytes(const struct retry *r);	/* queued, excluding in flight */
size_t retry_count(const struct retry *r);
uint64_t retry_points(const struct retry *r);
unsigned retry_inflight(const struct retry *r, enum fwd_endpoint ep);
unsigned retry_failures(const struct retry *r, enum fwd_endpoint ep); /* consecutive */
double retry_blocked_until(const struct retry *r, enum fwd_endpoint ep);

#endif
