/*
 * notify.h - turns alert transitions (alert/alert.h) into Slack, PagerDuty
 * Events API v2 and Alertmanager-webhook-v4 HTTP requests, sent
 * asynchronously through forward/http.h on the agent's libevent loop.
 *
 * Callers: agent.c (notify_new at start / reload, notify_transition after
 * alert_eval, stats for the status endpoint), main.c (notify_cli_check).
 * Delivery: retried with backoff (2^n s, capped at 60 s, at most 5 attempts),
 * Retry-After honoured on 429/503, per-destination token bucket (1/s, burst
 * 10) and a capped queue; every failure and refusal is counted. Resolved
 * notifications are sent unless `send_resolved: false`.
 * Secrets: URLs and routing keys are never logged in full (notify_redact_url).
 *
 * Ownership: a notifier_set owns its destinations and queued deliveries; it
 * borrows base and http. Free the set BEFORE the http client: requests still
 * in flight are orphaned and freed by their completion callback.
 * Threading: loop thread only.
 */
#ifndef DDMA_NOTIFY_NOTIFY_H
#define DDMA_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alert/alert.h"
#include "config/config.h"
#include "core/buf.h"

struct event_base;
struct http_client;
struct ynode;

#define NOTIFY_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"

enum notify_type { NOTIFY_SLACK, NOTIFY_PAGERDUTY, NOTIFY_WEBHOOK };

struct notify_stats {
	uint64_t sent;		/* accepted by the receiver (2xx) */
	uint64_t failed;	/* given up: non-retryable status or attempts exhausted */
	uint64_t retried;	/* retry attempts scheduled */
	uint64_t rate_limited;	/* refused by the token bucket */
	uint64_t dropped;	/* refused because the destination queue was full */
	uint64_t queued;	/* now waiting or in flight */
};

struct notify_options {
	double rate_per_s;	/* token bucket refill, 1 */
	double burst;		/* token bucket size, 10 */
	size_t queue_max;	/* deliveries waiting or in flight per destination, 100 */
	int max_attempts;	/* 5 */
	double backoff_unit_s;	/* retry n waits unit * 2^n s, 1 */
	double backoff_max_s;	/* 60 */
	double retry_after_max_s; /* cap on a receiver's Retry-After, 300 */
	long timeout_ms;	/* per request, 10000 */
};

/* notifiers_map is the value of a `notifiers:` key (a map name -> {type, url,
 * routing_key, send_resolved}); NULL = no notifiers. file names the YAML in
 * messages ("FILE:LINE: KEY: message" through diag). base and http may be NULL
 * for validation only (nothing is sent). Returns NULL on ENOMEM or when an
 * error was reported (diag->errors grew). */
struct notifier_set *notify_new(struct event_base *base, struct http_client *http,
				const struct ynode *notifiers_map, const char *file, struct config_diag *diag);
/* Loads notifiers.yaml (its top-level `notifiers:` map). A missing file is an
 * empty set (not an error). */
struct notifier_set *notify_new_from_file(struct event_base *base, struct http_client *http, const char *path,
					  struct config_diag *diag);
void notify_free(struct notifier_set *s); /* accepts NULL */
void notify_set_options(struct notifier_set *s, const struct notify_options *o);

bool notify_has(const struct notifier_set *s, const char *name);
size_t notify_count(const struct notifier_set *s);
/* Reports every rule notify entry that names no notifier as an error
 * "FILE:LINE: notify: rule R: unknown notifier 'x'". Returns the count. */
unsigned notify_check_rules(const struct notifier_set *s, const struct alert_rules *rules,
			    struct config_diag *diag);

/* Sends t to every notifier of its rule (t->rule->notify) when t->notify.
 * Returns the number of deliveries queued, or -errno. `now` feeds the rate
 * limiter. */
int notify_transition(struct notifier_set *s, const struct alert_transition *t, int64_t now);

/* Calls fn for each destination; returns the count. */
size_t notify_stats_each(const struct notifier_set *s,
			 void (*fn)(void *ctx, const char *name, enum notify_type type,
				    const struct notify_stats *st),
			 void *ctx);
void notify_stats_total(const struct notifier_set *s, struct notify_stats *out);
const char *notify_type_name(enum notify_type t);

/* ---- pure body builders (tested without network) ---- */
int notify_body_slack(const struct alert_transition *t, struct buf *out);
int notify_body_pagerduty(const struct alert_transition *t, const char *routing_key, struct buf *out);
int notify_body_webhook(const struct alert_transition *t, const char *receiver, struct buf *out);
/* "https://hooks.slack.com/services/T0/B0/secret" -> "https://hooks.slack.com/..." */
void notify_redact_url(const char *url, char *out, size_t n);
/* RFC 3339 UTC "2024-01-02T03:04:05Z"; ts <= 0 gives Alertmanager's zero time. */
void notify_format_time(int64_t ts, char *out, size_t n);

/* `check-config`: validates alerts_dir and notifiers_file together (unknown
 * notifier names are errors). Prints to out; returns 0 ok, 1 errors. */
int notify_cli_check(const char *alerts_dir, const char *notifiers_file, FILE *out);

#endif
