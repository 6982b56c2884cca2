/*
 * status.h - the local status endpoint (a small HTTP/1.x server on libevent,
 * bounded: see the STATUS_* limits below; one GET per connection):
 *   GET /health   -> 200 "ok"
 *   GET /status   -> JSON with every counter (see status_render_json)
 *   GET /status?format=text -> the human summary `dd-mini-agent status` prints
 *   GET /metrics  -> Prometheus text format
 * Binds status_host (127.0.0.1 by default) so it is local-only unless the
 * operator says otherwise.
 *
 * The module never reads other modules' state: on each request it asks the
 * agent for a snapshot through a callback, then renders it.
 * Threading: loop thread only.
 */
#ifndef DDMA_STATUS_STATUS_H
#define DDMA_STATUS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "aggr/taglimit.h"
#include "core/buf.h"
#include "net/net.h"
#include "parse/parse.h"

#define STATUS_TOP_MAX 10
#define STATUS_LIMITED_MAX 10
#define STATUS_KV_MAX 64
#define STATUS_SECTIONS_MAX 24	/* the agent's own 6 + one per extra forwarder endpoint */

/* A flat list of named counters for sections owned by modules the status
 * module does not know (forwarder, alerts, output). */
struct status_kv {
	char name[48];		/* snake_case, copied */
	double value;
};

struct status_section {
	const char *name;	/* "forwarder", "alerts", "output", ... */
	struct status_kv kv[STATUS_KV_MAX];
	size_t n;
};

struct status_snapshot {
	const char *version;
	const char *hostname;
	int64_t now;
	int64_t started;
	uint64_t flushes;
	double last_flush_duration_s;	/* wall (monotonic) seconds */
	double last_flush_cpu_s;	/* the main thread's CPU seconds in it */
	struct dsd_stats parse;
	struct net_stats net;
	struct aggr_stats aggr;
	struct aggr_top_entry top[STATUS_TOP_MAX];
	size_t ntop;
	/* the tags dogstatsd_tag_value_limit has bitten, most samples first */
	struct taglimit_row limited[STATUS_LIMITED_MAX];
	size_t nlimited;
	uint64_t limited_keys;	/* all of them (limited[] holds the first few) */
	struct status_section sections[STATUS_SECTIONS_MAX];
	size_t nsections;
	/* alert states: one line each, "rule{group} STATE" (owned by the agent) */
	const char *const *alert_lines;
	size_t nalert_lines;
};

typedef void (*status_snapshot_fn)(void *ctx, struct status_snapshot *out);

struct event_base;

/* Limits of the HTTP server (status.c): connections served at a time (more
 * wait in the kernel's backlog), seconds for a whole request and its answer, bytes of
 * a request head, seconds accepting pauses after EMFILE/ENFILE/ENOMEM. */
#define STATUS_MAX_CONNS 32
#define STATUS_DEADLINE_S 10
#define STATUS_MAX_HEAD 8192
#define STATUS_PAUSE_S 1

/* status_host and status_port in agent.yaml (config/ fills it in). */
struct status_config {
	char *host;		/* status_host, 127.0.0.1 */
	int port;		/* status_port, 5012; 0 = off */
};
#define STATUS_CONFIG_DEFAULT_PORT 5012

struct status *status_new(struct event_base *base, const struct status_config *cfg,
			  status_snapshot_fn fn, void *ctx, char *err, size_t errlen);
void status_free(struct status *s); /* accepts NULL */
int status_port(const struct status *s); /* bound port (useful with port 0? no: 0 = off) */

/* Adds a counter to a section (creating it); silently ignores overflow of the
 * fixed-size arrays (sizes are compile-time and checked in tests). */
void status_section_add(struct status_snapshot *s, const char *section, const char *name, double v);

void status_render_json(const struct status_snapshot *s, struct buf *out);
void status_render_prometheus(const struct status_snapshot *s, struct buf *out);
void status_render_text(const struct status_snapshot *s, struct buf *out);

/* `dd-mini-agent status`: GET http://host:port/status?format=text and print it.
 * Returns 0, or 1 when the agent cannot be reached (message on stderr). */
int status_cli(const char *host, int port, const char *path);

#endif
