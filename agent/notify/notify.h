/*
 * notify.h - turns alert transitions (alert/alert.h) into Slack, PagerDuty
 * Events API v2 and Alertmanager-webhook-v4 HTTP requests, sent
 * asynchronously through forward/http.h on the agent's libevent loop.
 *
 * Callers: agent.c (notify_load at start / reload, notify_spool_open at
 * start, notify_adopt on reload, notify_transition after alert_eval, stats
 * for the status endpoint), main.c (notify_cli_check).
 *
 * Delivery is durable and ordered. Each destination has a FIFO queue; only
 * its head is in flight, so a resolve never overtakes its trigger. With a
 * spool directory (notify_spool_open, <run_path>/notifications) every
 * notification is written there (tmp + fsync + rename) before it is sent and
 * removed once the receiver accepted it (2xx); the queue is reloaded at the
 * next start, so a stop, a crash or a restart does not lose it (a crash right
 * after the receiver accepted may send it again: receivers deduplicate by
 * dedup_key / fingerprint). A transport error, 408, 429 and 5xx are retried
 * with backoff (unit * 2^n s, capped at backoff_max_s, Retry-After honoured on
 * 429/503) until the receiver accepts or the notification is older than
 * max_age_s (notification_max_age, default 6 h): then it is dropped with a
 * log line and counted `expired`. Other statuses are given up at once
 * (`failed`, logged). When a trigger is given up or dropped, later resolves of
 * the same alert (fingerprint) to that destination are not sent
 * (`suppressed`, logged): a receiver never gets a resolve for a trigger it
 * never got. The token bucket (1/s, burst 10) delays sends, never drops them.
 * Resolved notifications are sent unless `send_resolved: false`.
 * Secrets: URLs and routing keys are never logged in full (notify_redact_url).
 *
 * A graceful stop calls notify_drain: no new attempt starts and the stop
 * waits for the requests in flight (each bounded by timeout_ms), so a
 * notification the receiver accepted is not sent again at the next start.
 *
 * Ownership: a notifier_set owns its destinations and queued deliveries; it
 * borrows base and http. At shutdown free the http client FIRST (it cancels
 * in-flight requests without calling back), then the set; what was not
 * delivered stays in the spool. Threading: loop thread only.
 */
#ifndef DDMA_NOTIFY_NOTIFY_H
#define DDMA_NOTIFY_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "alert/alert.h"
#include "core/buf.h"
#include "core/stats.h"
#include "yamldoc/diag.h"

struct event_base;
struct http_client;
struct ydoc;
struct ynode;

#define NOTIFY_PAGERDUTY_URL "https://events.pagerduty.com/v2/enqueue"

enum notify_type { NOTIFY_SLACK, NOTIFY_PAGERDUTY, NOTIFY_WEBHOOK };

/* The notifiers' counters (core/stats.h), per destination and summed
 * (notify_stats_total); the status endpoint's "notifications" section. */
#define NOTIFY_STATS_FIELDS(X)                                                           \
	X(sent, , .help = "Accepted by the receiver (2xx).")                             \
	X(failed, , .help = "Given up: a status that is not retried (4xx but 408/429).") \
	X(expired, , .help = "Still undelivered at max_age_s: dropped.")                 \
	X(suppressed, , .help = "Resolves not sent: their trigger was never delivered.") \
	X(retried, , .help = "Retry attempts scheduled.")                                \
	X(rate_limited, , .help = "Sends delayed by the token bucket.")                  \
	X(dropped, , .help = "Queue full, destination removed by a reload, bad spool file.") \
	X(queued, , .type = STAT_GAUGE, .help = "Waiting or in flight now.")

struct notify_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	NOTIFY_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table notify_stats_table;

struct notify_options {
	double rate_per_s;	/* token bucket refill, 1 */
	double burst;		/* token bucket size, 10 */
	size_t queue_max;	/* notifications waiting or in flight per destination, 1000 */
	int64_t max_age_s;	/* undelivered notifications are retried this long, 21600 */
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
void notify_get_options(const struct notifier_set *s, struct notify_options *o);

/* Makes dir (created 0700 when missing) the set's spool and queues every
 * notification found there, oldest first, for its destination (by name and
 * type; one that no longer exists is dropped, logged and counted). Returns
 * the number queued, or -errno when dir cannot be used (the set then keeps
 * its queue in memory only; logged by the caller). */
int notify_spool_open(struct notifier_set *s, const char *dir);
/* Reload hand-over: s takes old's spool, queued and in-flight notifications
 * (per destination name; a destination whose name or type is gone has its
 * queue dropped, logged and counted) and counters. old is left empty; free
 * it afterwards. */
void notify_adopt(struct notifier_set *s, struct notifier_set *old);

bool notify_has(const struct notifier_set *s, const char *name);
size_t notify_count(const struct notifier_set *s);
/* Reports every rule notify entry that names no notifier as an error
 * "FILE:LINE: notify: rule R: unknown notifier 'x'". Returns the count. */
unsigned notify_check_rules(const struct notifier_set *s, const struct alert_rules *rules,
			    struct config_diag *diag);

/* Queues t for every notifier of its rule (t->rule->notify) when t->notify.
 * Returns the number of deliveries queued, or -errno. `now` (unix seconds)
 * stamps the notification's age. */
int notify_transition(struct notifier_set *s, const struct alert_transition *t, int64_t now);

/* Starts no new attempt from now on and calls done(arg) once no request is in
 * flight (at once when none is). What is still queued stays in the spool. */
void notify_drain(struct notifier_set *s, void (*done)(void *), void *arg);

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

/* Where notify_load reads rules and notifiers, filled by the caller from the
 * agent config (the strings and the document are borrowed). */
struct notify_sources {
	const char *alerts_dir;		/* alerts_dir: the rule files */
	const char *notifiers_file;	/* notifiers_file: read when the config has no notifiers: section */
	const struct ydoc *config_doc;	/* the parsed agent config (its notifiers: section); may be NULL */
	const char *config_path;	/* the agent config's file name, for messages */
};

/* The one loader of alert rules and notifiers, used by start-up, SIGHUP and
 * --check-config alike so they accept and reject the same files: rules from
 * src->alerts_dir (a missing directory: no rules, a warning), notifiers from
 * the agent config's own `notifiers:` section when it has one, else from
 * src->notifiers_file (missing: none), and every notifier a rule names must
 * exist. Problems go to diag as "FILE:LINE: KEY: message". 0 with both set,
 * or -EINVAL (-errno when alerts_dir cannot be read) with both NULL. */
int notify_load(const struct notify_sources *src, struct event_base *base, struct http_client *http,
		struct alert_rules **rules, struct notifier_set **set, struct config_diag *diag);
/* Where notify_load reads the notifiers: the agent config or notifiers_file. */
const char *notify_source(const struct notify_sources *src);

/* `check-config`: notify_load without sending anything; prints problems and a
 * summary to out; returns 0 ok, 1 errors. */
int notify_cli_check(const struct notify_sources *src, FILE *out);

#endif
