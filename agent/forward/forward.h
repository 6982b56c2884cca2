/*
 * forward.h - the forwarder: flushed batches in, Datadog intake requests out.
 *
 * fwd_submit encodes a batch (encode.h: v1 JSON or v2 protobuf series,
 * protobuf sketches, JSON service checks and events), splits it under the
 * intake's limits, queues the payloads (retry.h) and sends them with the
 * asynchronous HTTP client (http.h) on the caller's libevent loop. Failed
 * payloads are retried with backoff until delivered or dropped with a counted
 * reason; queued payloads are sent newest first.
 *
 * With the disk queue on (storage_max_bytes > 0, diskq.h) every payload is
 * written and fsynced before fwd_submit returns, and its file is removed only
 * after a 2xx or a counted drop: a crash loses nothing that fwd_submit
 * accepted, and payloads in flight at a crash are sent again after the
 * restart (at-least-once). Memory holds at most the cap's worth of them (the
 * newest; the rest are read back from disk as memory empties). Without it,
 * the oldest payload over the memory cap is dropped and counted. Memory
 * always keeps at least one payload, so one larger than the cap is retried
 * too.
 *
 * Accounting ("points" = records: series points, sketches, events, checks):
 *   points_submitted + points_recovered
 *     == points_delivered + sum(points_dropped[]) + points_queued
 * holds after every call (points_queued = memory + in flight + disk).
 *
 * Owns: its copy of the config strings, the HTTP client, queues, timers.
 * Logs (rate-limited) at the edge; never logs the API key, at most
 * FWD_LOG_EXCERPT bytes of a response body.
 * Threading: loop thread only.
 */
#ifndef DDMA_FORWARD_FORWARD_H
#define DDMA_FORWARD_FORWARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "core/stats.h"
#include "forward/compress.h"
#include "forward/payload.h"

struct event_base;

/* ---- the forwarding part of agent.yaml (config/ fills it in;
 * conf.d/agent.yaml documents each key) ---- */
enum series_api { SERIES_API_V1, SERIES_API_V2 };
enum distribution_mode { DIST_SKETCHES, DIST_SERIES };

/* additional_endpoints: one entry per (URL, API key) pair, Datadog's format
 * {url: [key, ...]}. Each gets its own forwarder (queue, backoff, disk queue
 * <forwarder_storage_path>-<16 hex>, counters) with the main one's settings. */
struct dd_endpoint_config {
	char *url;
	char *api_key;		/* never logged */
};

/* remote_write: one Prometheus remote write target, in prometheus.yml's shape. */
struct remote_write_config {
	char *url;		/* url: the full write URL */
	char *name;		/* name, "" = none (status shows the URL without credentials) */
	int timeout_s;		/* remote_timeout, 30s */
	char *basic_user;	/* basic_auth.username */
	char *basic_password;	/* basic_auth.password or password_file (read at load) */
	char *auth_type;	/* authorization.type, Bearer */
	char *auth_credentials;	/* authorization.credentials(_file), or bearer_token(_file) */
	char **header_names;	/* headers: {name: value} */
	char **header_values;
	size_t nheaders;
	char *ca_file;		/* tls_config.ca_file, "" = system store */
	char *cert_file;	/* tls_config.cert_file / key_file: client certificate */
	char *key_file;
	bool insecure_skip_verify; /* tls_config.insecure_skip_verify, false */
	size_t max_samples;	/* queue_config.max_samples_per_send, 2000 */
};

enum rw_counter_mode { RW_COUNTERS_INTERVAL, RW_COUNTERS_CUMULATIVE };

struct fwd_config {
	char *api_key;		/* api_key, or api_key_file, or $DD_API_KEY; never logged */
	char *api_key_file;	/* api_key_file: path read at start (must not be group/other readable) */
	char *site;		/* site, datadoghq.com -> https://api.<site> */
	char *dd_url;		/* dd_url: overrides site; "" = no intake (JSON lines output) */
	bool intake_enabled;	/* computed: dd_url set, or api_key set (then site is used) */
	int timeout_s;		/* forwarder_timeout, 20 */
	size_t retry_queue_max_bytes;	/* forwarder_retry_queue_payloads_max_size, 15 MiB */
	size_t storage_max_bytes;	/* forwarder_storage_max_size_in_bytes, 0 = no disk spill */
	char *storage_path;		/* forwarder_storage_path, <run_path>/transactions_to_retry */
	double backoff_base;		/* forwarder_backoff_base, 2 */
	double backoff_factor;		/* forwarder_backoff_factor, 2 */
	double backoff_max;		/* forwarder_backoff_max, 64 */
	enum compressor_kind compressor;	/* serializer_compressor_kind: zlib|gzip|zstd|none */
	int zstd_level;			/* serializer_zstd_compressor_level, 1 (zstd only, as Datadog) */
	int zlib_level;			/* serializer_compressor_level, 6 (zlib and gzip; ours) */
	int compressor_level;		/* the level `compressor` uses: one of the two (derived) */
	enum series_api series_api;	/* use_v2_api.series: false -> v1 */
	enum distribution_mode distributions; /* forwarder_distributions: sketches|series, series */
	size_t max_points_per_payload;	/* serializer_max_series_points_per_payload, 10000 */
	char *proxy_http;		/* proxy: {http, https, no_proxy} */
	char *proxy_https;
	char *no_proxy;
	bool skip_ssl_validation;	/* skip_ssl_validation, false */
	char *ca_file;			/* tls_ca_file, "" = system store */
	double drain_timeout_s;		/* forwarder_stop_timeout, 2 */
	struct dd_endpoint_config *extra; /* additional_endpoints */
	size_t nextra;
	struct remote_write_config *rw;	/* remote_write */
	size_t nrw;
	enum rw_counter_mode rw_counters; /* remote_write_counters: interval|cumulative, interval */
};
/* Every scalar default; config/ adds the string defaults (site datadoghq.com,
 * forwarder_storage_path <run_path>/transactions_to_retry, ...). */
#define FWD_CONFIG_DEFAULT ((struct fwd_config){ \
	.timeout_s = 20, .retry_queue_max_bytes = 15u << 20, .backoff_base = 2, \
	.backoff_factor = 2, .backoff_max = 64, .compressor = COMPRESS_ZLIB, \
	.zstd_level = 1, .zlib_level = 6, .compressor_level = 6, \
	.series_api = SERIES_API_V1, .distributions = DIST_SERIES, \
	.max_points_per_payload = 10000, .drain_timeout_s = 2, \
})

#define FWD_LOG_EXCERPT 128

enum fwd_drop {
	FWD_DROP_HTTP_400,	/* intake refused the payload (bad request) */
	FWD_DROP_HTTP_403,	/* invalid API key */
	FWD_DROP_HTTP_413,	/* payload too large for the intake */
	FWD_DROP_QUEUE_FULL,	/* evicted from the full retry queue (no disk spill) */
	FWD_DROP_DISK_FULL,	/* left memory and the disk queue could not store it */
	FWD_DROP_DISK_EVICTED,	/* oldest file removed to keep the disk cap */
	FWD_DROP_CORRUPT,	/* disk file failed its checksum */
	FWD_DROP_TOO_LARGE,	/* one record alone over the payload limits */
	FWD_DROP_ENCODE,	/* out of memory while encoding */
	FWD_DROP_SHUTDOWN,	/* still queued at the drain deadline, no disk spill */
	FWD_DROP_NO_CONVERTER,	/* distributions to send as series, but the batch has no
				 * sketch_series (aggr_emit was not asked for it) */
	FWD_DROP_NON_FINITE,	/* a record with an inf/nan value (encode.h) */
	FWD_DROP_HTTP_4XX,	/* remote write: another 4xx (never retried) */
	FWD_DROP_COUNT
};

/* "http_400", "queue_full", ... */
const char *fwd_drop_name(enum fwd_drop d);

/* The forwarder's counters (core/stats.h), one set per endpoint; in the
 * status endpoint's "forwarder" section (and "forwarder_<n>" for each
 * additional endpoint) through stat_table_foreach. */
#define FWD_STATS_FIELDS(X)                                                              \
	X(payloads_submitted, , .help = "Payloads created by the encoders.")             \
	X(payloads_delivered, , .help = "Payloads answered 2xx.",                        \
	  .tele = "forwarder.payloads_delivered")                                        \
	X(payloads_retried, , .help = "Failed attempts that were requeued.",             \
	  .tele = "forwarder.payloads_retried")                                          \
	X(payloads_dropped, [FWD_DROP_COUNT], .help = "Payloads dropped, by reason.",    \
	  .label = "reason", .elem = fwd_stats_drop_name)                                \
	X(attempts, , .help = "Requests started.")                                       \
	X(transport_errors, , .help = "Connection errors and timeouts.")                 \
	X(responses_2xx, , .help = "Responses 2xx.")                                     \
	X(responses_4xx, , .help = "Responses 4xx.")                                     \
	X(responses_5xx, , .help = "Responses 5xx.")                                     \
	X(responses_other, , .help = "Other responses.")                                 \
	X(bytes_sent, , .help = "Compressed bodies of delivered payloads.",              \
	  .tele = "forwarder.bytes_sent")                                                \
	X(points_submitted, , .help = "Points handed to the forwarder.")                 \
	X(points_recovered, , .help = "Points found in the disk queue at start.")        \
	X(points_delivered, , .help = "Points delivered.", .tele = "forwarder.points_delivered") \
	X(points_dropped, [FWD_DROP_COUNT], .help = "Points dropped, by reason.",        \
	  .tele = "forwarder.points_dropped", .label = "reason", .elem = fwd_stats_drop_name) \
	X(points_queued, , .type = STAT_GAUGE, .help = "Points in memory, in flight and on disk.") \
	X(queue_bytes, , .type = STAT_GAUGE, .help = "Bytes in the in-memory retry queue.", \
	  .tele = "forwarder.queue_bytes")                                               \
	X(queue_payloads, , .type = STAT_GAUGE, .help = "Payloads in the in-memory retry queue.") \
	X(inflight, , .type = STAT_GAUGE, .help = "Requests in flight.")                 \
	X(disk_bytes, , .type = STAT_GAUGE, .help = "Bytes in the disk queue.",          \
	  .tele = "forwarder.disk_bytes")                                                \
	X(disk_files, , .type = STAT_GAUGE, .help = "Files in the disk queue.")          \
	X(disk_written, , .help = "Files written to the disk queue.")                    \
	X(disk_written_bytes, , .help = "Bytes written to the disk queue.")              \
	X(disk_syncs, , .help = "fsync calls of the disk queue.")                        \
	X(disk_write_us, , .key = "disk_write_seconds", .scale = 1e-6,                  \
	  .help = "Main thread's wall time writing and syncing the disk queue.")         \
	X(disk_read, , .help = "Files read back into memory.")                           \
	X(disk_write_errors, , .help = "Payloads kept in memory only (disk write failed).") \
	X(records_not_sent, , .help = "Remote write: events and service checks, which "  \
	  "it has no form for (outside the identity).")

struct fwd_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	FWD_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table fwd_stats_table;
/* fwd_drop_name by index, for the table */
const char *fwd_stats_drop_name(int d);

/* Creates the forwarder on `base`. cfg is copied. Opens (and recovers) the
 * disk queue when cfg->storage_max_bytes > 0. NULL on error with a message in
 * err (never containing the API key). */
struct fwd *fwd_new(struct event_base *base, const struct fwd_config *cfg, char *err, size_t errlen);
void fwd_free(struct fwd *f);	/* cancels in-flight requests; keeps disk files; accepts NULL */

/* Whether this forwarder sends distributions as series (DIST_SERIES, or
 * remote write): it then encodes a batch's sketch_series (made by aggr_emit)
 * instead of its sketches, and counts sketches without one as
 * FWD_DROP_NO_CONVERTER. */
bool fwd_wants_sketch_series(const struct fwd *f);
/* Optional: hostname for the events payload's internalHostname. Copied. */
void fwd_set_hostname(struct fwd *f, const char *hostname);

/* Encodes b and queues/sends the payloads; does not take the batch. `now` is
 * unix seconds (stamped on payloads). 0, or -ENOMEM (what could not be
 * encoded is counted as FWD_DROP_ENCODE). Never refuses a batch: while
 * draining it is sent like any other; after the drain finished it goes to
 * the disk queue, or is counted as FWD_DROP_SHUTDOWN without one. */
int fwd_submit(struct fwd *f, const struct batch *b, int64_t now);

void fwd_get_stats(const struct fwd *f, struct fwd_stats *out);

/* Shutdown: sends what it can for up to timeout_s (backoff is still
 * honoured), then leaves what remains on disk (if enabled) or counts it
 * dropped (FWD_DROP_SHUTDOWN), and calls done(arg) once from the loop.
 * Batches submitted meanwhile are accepted. Call fwd_free from done (or
 * after it ran), not before while the loop still runs. */
void fwd_drain(struct fwd *f, double timeout_s, void (*done)(void *arg), void *arg);

/* Applies a reloaded config: URL, API key, TLS, proxy, compression, limits,
 * backoff and queue caps take effect for new requests; queued payloads are
 * kept. The disk queue path cannot change at runtime (-EBUSY; rest applied).
 * -EAGAIN: requests of several earlier reloads are still in flight, nothing
 * was applied (try again later). 0 or -errno. */
int fwd_reconfigure(struct fwd *f, const struct fwd_config *cfg);

/* The intake base URL in use (dd_url, or https://api.<site>; the write URL
 * for remote write), for status. */
const char *fwd_base_url(const struct fwd *f);

/* Turns a new forwarder (before its first fwd_submit) into a Prometheus
 * remote write sender (promrw.h) for rw: posts snappy WriteRequests to
 * rw->url with its auth, headers, TLS and timeout; oldest payload first, one
 * request at a time (with the disk queue, memory holds the oldest payloads,
 * the disk queue is read oldest first, and a new payload waits on disk
 * while older ones do: every series is sent in time order); 2xx delivered, 5xx/429/transport errors retried
 * (Retry-After honoured), other statuses dropped (http_400, http_403,
 * http_413, http_4xx). Series and distributions (converted to series) are
 * sent; events and service checks are counted in records_not_sent. The
 * queue, backoff and disk queue settings stay those of fwd_new's config.
 * 0 or -ENOMEM. */
int fwd_set_remote_write(struct fwd *f, const struct fwd_config *cfg,
			 const struct remote_write_config *rw, enum rw_counter_mode m);
/* Applies a reloaded remote write entry (auth, headers, TLS, timeout; the URL
 * too) and counter mode. 0 or -errno as fwd_reconfigure. */
int fwd_reconfigure_remote_write(struct fwd *f, const struct fwd_config *cfg,
				 const struct remote_write_config *rw, enum rw_counter_mode m);
bool fwd_is_remote_write(const struct fwd *f);

#endif
