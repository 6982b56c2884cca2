/*
 * forward.c - see forward.h. Glue between the pure pieces (encode, retry,
 * diskq) and the loop (http client, timers).
 *
 * All sending happens from one deferred event (`kick`), never from inside a
 * curl callback, so a finished request can requeue, spill or reconfigure
 * without re-entering curl.
 */
#include "forward/forward.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include "core/log.h"
#include "ddma_config.h"
#include "forward/compress.h"
#include "forward/diskq.h"
#include "forward/encode.h"
#include "forward/http.h"
#include "forward/promrw.h"
#include "forward/retry.h"

#define MAX_RETIRED 8
#define MAX_RW_HEADERS 66	/* headers: (64) + Authorization + spare */

struct inflight {
	struct fwd *f;
	struct payload *p;
	int abandoned;
	struct inflight *prev, *next;
};

struct fwd {
	struct event_base *base;
	char *base_url;
	char *api_key;
	char *hostname;
	enum compressor_kind compressor;
	int level;
	enum series_api series_api;
	enum distribution_mode distributions;
	size_t max_points;
	long timeout_ms;
	struct http_client *http;
	struct http_client *retired[MAX_RETIRED];
	struct retry *rq;
	size_t max_queue_bytes;
	struct diskq *dq;
	char *storage_path;
	struct diskq_stats dq_seen;	/* last diskq counters folded into st */
	struct event *kick, *wake;
	struct inflight *inflight;
	size_t ninflight;
	uint64_t inflight_points;
	uint64_t seq;
	struct fwd_stats st;
	/* Prometheus remote write (fwd_set_remote_write) */
	bool promrw;
	struct promrw *prw;
	enum rw_counter_mode rw_counters;
	size_t rw_max_samples;
	long rw_timeout_ms;
	char **rw_headers;		/* "Name: value" lines, Authorization included */
	size_t nrw_headers;
	/* shutdown */
	int draining, shut;
	struct event *drain_timer;
	void (*drain_done)(void *arg);
	void *drain_arg;
};

static void free_headers(char **h, size_t n);

static const char *const drop_names[FWD_DROP_COUNT] = {
	"http_400", "http_403", "http_413", "queue_full", "disk_full", "disk_evicted",
	"corrupt", "too_large", "encode", "shutdown", "no_converter", "non_finite", "http_4xx",
};

const char *fwd_drop_name(enum fwd_drop d)
{
	return (unsigned)d < FWD_DROP_COUNT ? drop_names[d] : "unknown";
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void schedule(struct fwd *f)
{
	event_active(f->kick, 0, 0);
}

static void drop(struct fwd *f, enum fwd_drop why, uint64_t payloads, uint64_t points)
{
	f->st.payloads_dropped[why] += payloads;
	f->st.points_dropped[why] += points;
}

/* Folds the disk queue's eviction and corruption counters into ours. */
static void sync_disk(struct fwd *f)
{
	if (!f->dq)
		return;
	struct diskq_stats s;
	diskq_get_stats(f->dq, &s);
	drop(f, FWD_DROP_DISK_EVICTED, s.evicted_files - f->dq_seen.evicted_files,
	     s.evicted_points - f->dq_seen.evicted_points);
	drop(f, FWD_DROP_CORRUPT, s.corrupted_files - f->dq_seen.corrupted_files,
	     s.corrupted_points - f->dq_seen.corrupted_points);
	if (s.evicted_files > f->dq_seen.evicted_files)
		log_limited(LOG_LVL_WARN, "forward: disk queue %s full, oldest payloads dropped",
			    f->storage_path);
	f->dq_seen = s;
}

static void on_disk_report(void *arg, const char *name, const char *what)
{
	struct fwd *f = arg;
	log_limited(LOG_LVL_WARN, "forward: disk queue %s/%s: %s", f->storage_path, name, what);
}

/* Writes p to the disk queue (file only; the directory is synced by the
 * caller through diskq_sync). Sets p->on_disk; 0 or -errno. */
static int persist(struct fwd *f, struct payload *p, bool loaded)
{
	int rc = diskq_put(f->dq, p, loaded);
	sync_disk(f);
	p->on_disk = rc == 0;
	if (rc < 0)
		log_limited(LOG_LVL_WARN, "forward: disk queue %s: cannot store a payload (%u points): %s",
			    f->storage_path, p->npoints, strerror(-rc));
	return rc;
}

/* p leaves memory for good: it stays queued on disk, is written there, or is
 * dropped and counted with `why` (disk_full when the disk queue refused it).
 * Consumes p. */
static void spill(struct fwd *f, struct payload *p, enum fwd_drop why)
{
	if (p->on_disk)
		diskq_unload(f->dq, p->seq);
	else if (!f->dq)
		drop(f, why, 1, p->npoints);
	else if (persist(f, p, false) < 0)
		drop(f, FWD_DROP_DISK_FULL, 1, p->npoints);
	payload_free(p);
}

/* p was delivered or dropped and counted: its file goes. Consumes p. */
static void settle(struct fwd *f, struct payload *p)
{
	if (p->on_disk)
		diskq_remove(f->dq, p->seq);
	payload_free(p);
}

/* Keeps memory under its cap, but always keeps one payload, so that a single
 * payload larger than the cap is still retried. Files it writes are made
 * durable by the caller's diskq_sync (once per flush for new payloads). */
static void enforce_cap(struct fwd *f)
{
	while (retry_bytes(f->rq) > f->max_queue_bytes && retry_count(f->rq) > 1) {
		/* remote write keeps the oldest in memory: they are sent first */
		struct payload *p = f->promrw && f->dq ? retry_pop_newest(f->rq) : retry_pop_oldest(f->rq);
		if (!p)
			break;
		if (!f->dq)
			log_limited(LOG_LVL_WARN, "forward: retry queue full (%zu bytes), dropping oldest payload",
				    f->max_queue_bytes);
		spill(f, p, FWD_DROP_QUEUE_FULL);
	}
}

static void enforce_cap_sync(struct fwd *f)
{
	enforce_cap(f);
	if (f->dq)
		diskq_sync(f->dq);
}

/* ---- sending ---- */

static void inflight_unlink(struct fwd *f, struct inflight *in)
{
	if (in->prev)
		in->prev->next = in->next;
	else
		f->inflight = in->next;
	if (in->next)
		in->next->prev = in->prev;
	f->ninflight--;
	f->inflight_points -= in->p ? in->p->npoints : 0;
}

/* A short printable excerpt of a response body, API key scrubbed. */
static void excerpt(const struct fwd *f, const char *body, size_t n, char *out, size_t outlen)
{
	size_t k = 0;
	for (size_t i = 0; i < n && k + 1 < outlen && i < FWD_LOG_EXCERPT; i++)
		out[k++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '.';
	out[k] = 0;
	size_t kl = f->api_key ? strlen(f->api_key) : 0;
	char *hit;
	while (kl && (hit = strstr(out, f->api_key)))
		memset(hit, '*', kl);
}

static void count_status(struct fwd *f, const struct http_response *r)
{
	if (r->transport_error)
		f->st.transport_errors++;
	else if (r->status >= 200 && r->status < 300)
		f->st.responses_2xx++;
	else if (r->status >= 400 && r->status < 500)
		f->st.responses_4xx++;
	else if (r->status >= 500 && r->status < 600)
		f->st.responses_5xx++;
	else
		f->st.responses_other++;
}

static void on_done(void *arg, const struct http_response *r)
{
	struct inflight *in = arg;
	struct fwd *f = in->f;
	struct payload *p = in->p;
	inflight_unlink(f, in);
	int abandoned = in->abandoned;
	free(in);
	if (abandoned)
		return;
	count_status(f, r);
	const char *path = fwd_endpoint_info(p->ep)->path;
	enum retry_verdict v = f->promrw ? retry_classify_promrw(r->status, r->transport_error)
				       : retry_classify(r->status, r->transport_error);
	char ex[FWD_LOG_EXCERPT + 1];
	excerpt(f, r->body ? r->body : "", r->body_len, ex, sizeof(ex));
	if (v == RETRY_DELIVERED) {
		f->st.payloads_delivered++;
		f->st.points_delivered += p->npoints;
		f->st.bytes_sent += p->len;
		retry_done(f->rq, p, v, -1, mono_now());
		settle(f, p);
	} else if (v == RETRY_DROP) {
		enum fwd_drop why = r->status == 403 ? FWD_DROP_HTTP_403
				  : r->status == 413 ? FWD_DROP_HTTP_413
				  : r->status == 400 || !f->promrw ? FWD_DROP_HTTP_400 : FWD_DROP_HTTP_4XX;
		log_limited(LOG_LVL_WARN, "forward: %s%s: HTTP %ld, payload dropped (%u points): %s",
			    f->promrw ? f->base_url : "", f->promrw ? "" : path, r->status, p->npoints, ex);
		drop(f, why, 1, p->npoints);
		retry_done(f->rq, p, v, -1, mono_now());
		settle(f, p);
	} else {
		f->st.payloads_retried++;
		double w = retry_done(f->rq, p, v, r->retry_after_s, mono_now());
		if (f->promrw)
			path = f->base_url;
		if (r->transport_error)
			log_limited(LOG_LVL_WARN, "forward: %s: %s, retrying in %.1fs", path,
				    r->error ? r->error : "transport error", w);
		else
			log_limited(LOG_LVL_WARN, "forward: %s: HTTP %ld, retrying in %.1fs: %s",
				    path, r->status, w, ex);
		enforce_cap_sync(f);
	}
	schedule(f);
}

/* Remote write: the URL as configured, Prometheus' headers and the user's. */
static size_t promrw_headers(const struct fwd *f, const char **hdrs)
{
	size_t nh = 0;
	hdrs[nh++] = "Content-Type: application/x-protobuf";
	hdrs[nh++] = "Content-Encoding: snappy";
	hdrs[nh++] = "X-Prometheus-Remote-Write-Version: 0.1.0";
	for (size_t i = 0; i < f->nrw_headers && nh < MAX_RW_HEADERS + 3; i++)
		hdrs[nh++] = f->rw_headers[i];
	return nh;
}

static int send_one(struct fwd *f, struct payload *p)
{
	const struct fwd_endpoint_info *info = fwd_endpoint_info(p->ep);
	char url[2048], key[512], ctype[96], cenc[64];
	const char *hdrs[MAX_RW_HEADERS + 3];
	size_t nh = 0;
	if (f->promrw)
		nh = promrw_headers(f, hdrs);
	if ((size_t)snprintf(url, sizeof(url), "%s%s", f->base_url, f->promrw ? "" : info->path) >= sizeof(url))
		return -ENAMETOOLONG;
	key[0] = 0;
	if (f->api_key && *f->api_key && !f->promrw) {
		snprintf(key, sizeof(key), "DD-API-KEY: %s", f->api_key);
		hdrs[nh++] = key;
	}
	const char *enc = compress_encoding_name(p->enc);
	if (!f->promrw) {
		snprintf(ctype, sizeof(ctype), "Content-Type: %s", info->content_type);
		hdrs[nh++] = ctype;
		if (enc) {
			snprintf(cenc, sizeof(cenc), "Content-Encoding: %s", enc);
			hdrs[nh++] = cenc;
		}
		hdrs[nh++] = "DD-Agent-Version: " DDMA_VERSION;
	}
	struct inflight *in = calloc(1, sizeof(*in));
	if (!in)
		return -ENOMEM;
	in->f = f;
	in->p = p;
	struct http_request req = {
		.method = "POST", .url = url, .headers = hdrs, .nheaders = nh,
		.body = p->data, .body_len = p->len,
		.timeout_ms = f->promrw ? f->rw_timeout_ms : f->timeout_ms,
	};
	int rc = http_client_send(f->http, &req, on_done, in);
	memset(key, 0, sizeof(key));
	if (rc < 0) {
		free(in);
		return rc;
	}
	in->next = f->inflight;
	if (f->inflight)
		f->inflight->prev = in;
	f->inflight = in;
	f->ninflight++;
	f->inflight_points += p->npoints;
	f->st.attempts++;
	return 0;
}

/* Loads payloads that are only on disk, newest first (remote write: oldest
 * first), while memory is below half its cap (at least one, whatever its
 * size). Their files stay until they are delivered or dropped. */
static void refill_from_disk(struct fwd *f)
{
	if (!f->dq || f->draining)
		return;
	struct payload *p;
	while ((retry_count(f->rq) == 0 || retry_bytes(f->rq) < f->max_queue_bytes / 2) &&
	       (f->promrw ? diskq_load_oldest(f->dq, &p) : diskq_load_newest(f->dq, &p)) == 0) {
		p->on_disk = true;
		retry_push(f->rq, p);
	}
	sync_disk(f);
}

static void free_retired(struct fwd *f)
{
	for (int i = 0; i < MAX_RETIRED; i++) {
		if (f->retired[i] && http_client_inflight(f->retired[i]) == 0) {
			http_client_free(f->retired[i]);
			f->retired[i] = NULL;
		}
	}
}

static void finish_drain(struct fwd *f);

static void pump(evutil_socket_t fd, short what, void *arg)
{
	struct fwd *f = arg;
	if (f->shut)
		return;
	free_retired(f);
	refill_from_disk(f);
	double now = mono_now();
	struct payload *p;
	while ((p = retry_next(f->rq, now))) {
		if (send_one(f, p) < 0) {
			log_limited(LOG_LVL_WARN, "forward: cannot start request, will retry");
			retry_done(f->rq, p, RETRY_AGAIN, -1, now);
		}
	}
	double wake = retry_next_wakeup(f->rq, now);
	if (wake > 0) {
		double d = wake - now + 0.001;
		struct timeval tv = { (time_t)d, (suseconds_t)((d - (double)(time_t)d) * 1e6) };
		evtimer_add(f->wake, &tv);
	}
	if (f->draining && retry_count(f->rq) == 0 && f->ninflight == 0)
		finish_drain(f);
}

/* ---- submit ---- */

struct emit_ctx {
	struct fwd *f;
};

/* Remote write: payloads wait on disk that are older than a new one, which
 * must then queue behind them. */
static bool behind_on_disk(const struct fwd *f)
{
	struct diskq_stats s;
	diskq_get_stats(f->dq, &s);
	return s.unloaded_points > 0;
}

/* A new payload: on disk first when the disk queue is on, then queued in
 * memory (after shutdown: kept on disk or dropped and counted). */
static int emit(void *arg, struct payload *p)
{
	struct fwd *f = ((struct emit_ctx *)arg)->f;
	f->st.payloads_submitted++;
	f->st.points_submitted += p->npoints;
	if (f->shut) {
		spill(f, p, FWD_DROP_SHUTDOWN);
		return 0;
	}
	if (f->promrw && f->dq && behind_on_disk(f) && persist(f, p, false) == 0) {
		payload_free(p);	/* queued on disk behind older payloads */
		return 0;
	}
	if (f->dq && !p->on_disk)
		persist(f, p, true);
	retry_push(f->rq, p);
	enforce_cap(f);
	return 0;
}

/* Accounts for records an encoder did not emit. */
static void account(struct fwd *f, size_t n, const struct enc_result *res)
{
	size_t lost = n - res->records - res->too_large - res->non_finite;
	f->st.points_submitted += res->too_large + res->non_finite + lost;
	drop(f, FWD_DROP_TOO_LARGE, res->too_large, res->too_large);
	drop(f, FWD_DROP_NON_FINITE, 0, res->non_finite);
	drop(f, FWD_DROP_ENCODE, lost ? 1 : 0, lost);
	if (res->too_large)
		log_limited(LOG_LVL_WARN, "forward: %zu records over the payload limits, dropped", res->too_large);
}

static int submit_series(struct fwd *f, const struct series *s, size_t n, const struct enc_opts *o)
{
	struct emit_ctx ec = { f };
	struct enc_result res;
	int rc = f->series_api == SERIES_API_V2 ? enc_series_v2(s, n, o, emit, &ec, &res)
						: enc_series_v1(s, n, o, emit, &ec, &res);
	account(f, n, &res);
	return rc;
}

static int submit_sketches(struct fwd *f, const struct batch *b, const struct enc_opts *o)
{
	struct emit_ctx ec = { f };
	struct enc_result res;
	if (f->distributions == DIST_SKETCHES) {
		int rc = enc_sketches(b->sketches, b->nsketches, o, emit, &ec, &res);
		account(f, b->nsketches, &res);
		return rc;
	}
	if (!b->sketch_series) {
		f->st.points_submitted += b->nsketches;
		drop(f, FWD_DROP_NO_CONVERTER, 1, b->nsketches);
		return 0;
	}
	return submit_series(f, b->sketch_series->series, b->sketch_series->nseries, o);
}

/* Remote write: series, and distributions as series; no form for events
 * and service checks. */
static int submit_promrw(struct fwd *f, const struct batch *b, int64_t now)
{
	struct emit_ctx ec = { f };
	struct enc_result res;
	struct promrw_opts o = { .cumulative = f->rw_counters == RW_COUNTERS_CUMULATIVE,
				 .max_samples = f->rw_max_samples, .created = now, .seq = &f->seq };
	int rc = 0, r;
	f->st.records_not_sent += b->nevents + b->nchecks;
	if (b->nseries) {
		rc = promrw_encode(f->prw, b->series, b->nseries, &o, emit, &ec, &res);
		account(f, b->nseries, &res);
	}
	const struct batch *ss = b->sketch_series;
	if (b->nsketches && ss) {
		if (ss->nseries) {
			r = promrw_encode(f->prw, ss->series, ss->nseries, &o, emit, &ec, &res);
			account(f, ss->nseries, &res);
			if (r < 0)
				rc = r;
		}
	} else if (b->nsketches) {
		f->st.points_submitted += b->nsketches;
		drop(f, FWD_DROP_NO_CONVERTER, 1, b->nsketches);
	}
	return rc;
}

int fwd_submit(struct fwd *f, const struct batch *b, int64_t now)
{
	if (f->promrw) {
		int rc = submit_promrw(f, b, now);
		if (f->dq && diskq_sync(f->dq) < 0)
			log_limited(LOG_LVL_WARN, "forward: disk queue %s: directory fsync failed", f->storage_path);
		if (!f->shut)
			schedule(f);
		return rc;
	}
	struct emit_ctx ec = { f };
	struct enc_result res;
	struct enc_opts o = {
		.compressor = f->compressor, .level = f->level, .max_points = f->max_points,
		.hostname = f->hostname, .created = now, .seq = &f->seq,
	};
	int rc = 0, r;
	if (b->nseries && (r = submit_series(f, b->series, b->nseries, &o)) < 0)
		rc = r;
	if (b->nsketches && (r = submit_sketches(f, b, &o)) < 0)
		rc = r;
	if (b->nchecks) {
		if ((r = enc_checks(b->checks, b->nchecks, &o, emit, &ec, &res)) < 0)
			rc = r;
		account(f, b->nchecks, &res);
	}
	if (b->nevents) {
		if ((r = enc_events(b->events, b->nevents, &o, emit, &ec, &res)) < 0)
			rc = r;
		account(f, b->nevents, &res);
	}
	if (f->dq && diskq_sync(f->dq) < 0)
		log_limited(LOG_LVL_WARN, "forward: disk queue %s: directory fsync failed", f->storage_path);
	if (!f->shut)
		schedule(f);
	return rc;
}

/* ---- stats ---- */

void fwd_get_stats(const struct fwd *f, struct fwd_stats *out)
{
	*out = f->st;
	out->queue_bytes = retry_bytes(f->rq);
	out->queue_payloads = retry_count(f->rq);
	out->inflight = f->ninflight;
	out->points_queued = retry_points(f->rq) + f->inflight_points;
	if (f->dq) {
		struct diskq_stats s;
		diskq_get_stats(f->dq, &s);
		out->points_queued += s.unloaded_points;
		out->disk_bytes = s.bytes;
		out->disk_files = s.files;
		out->disk_written = s.written;
		out->disk_written_bytes = s.written_bytes;
		out->disk_syncs = s.syncs;
		out->disk_write_us = (uint64_t)(s.write_seconds * 1e6);
		out->disk_read = s.read;
		out->disk_write_errors = s.write_errors;
	}
}

const char *fwd_stats_drop_name(int d)
{
	return fwd_drop_name((enum fwd_drop)d);
}

static const struct stat_field stat_fields[] = {
#define X(f, dim, ...) STATS_DESC(struct fwd_stats, f, __VA_ARGS__)
	FWD_STATS_FIELDS(X)
#undef X
};
const struct stat_table fwd_stats_table = STATS_TABLE(stat_fields);

const char *fwd_base_url(const struct fwd *f)
{
	return f->base_url;
}

/* ---- shutdown ---- */

static void call_done(evutil_socket_t fd, short what, void *arg)
{
	struct fwd *f = arg;
	void (*done)(void *) = f->drain_done;
	f->drain_done = NULL;
	if (done)
		done(f->drain_arg);
}

static void finish_drain(struct fwd *f)
{
	if (f->shut)
		return;
	f->shut = 1;
	evtimer_del(f->drain_timer);
	evtimer_del(f->wake);
	/* what is still in flight is persisted too: at-least-once */
	for (struct inflight *in = f->inflight; in; in = in->next) {
		if (in->abandoned)
			continue;
		in->abandoned = 1;
		retry_abandon(f->rq, in->p);
		spill(f, in->p, FWD_DROP_SHUTDOWN);
		in->p = NULL;
	}
	f->inflight_points = 0;
	struct payload *p;
	while ((p = retry_pop_newest(f->rq)))
		spill(f, p, FWD_DROP_SHUTDOWN);
	if (f->dq)
		diskq_sync(f->dq);
	event_base_once(f->base, -1, EV_TIMEOUT, call_done, f, NULL);
}

static void drain_deadline(evutil_socket_t fd, short what, void *arg)
{
	struct fwd *f = arg;
	struct fwd_stats s;
	fwd_get_stats(f, &s);
	if (s.queue_payloads || s.inflight)
		log_warn("forward: drain deadline reached with %zu queued and %zu in-flight payloads; %s",
			 s.queue_payloads, s.inflight, f->dq ? "they stay in the disk queue" : "dropping them");
	finish_drain(f);
}

void fwd_drain(struct fwd *f, double timeout_s, void (*done)(void *arg), void *arg)
{
	f->drain_done = done;
	f->drain_arg = arg;
	if (f->shut) {
		event_base_once(f->base, -1, EV_TIMEOUT, call_done, f, NULL);
		return;
	}
	f->draining = 1;
	if (timeout_s < 0)
		timeout_s = 0;
	struct timeval tv = { (time_t)timeout_s, (suseconds_t)((timeout_s - (double)(time_t)timeout_s) * 1e6) };
	evtimer_add(f->drain_timer, &tv);
	schedule(f);
}

/* ---- lifecycle ---- */

static char *make_base_url(const struct fwd_config *cfg)
{
	char *u;
	if (cfg->dd_url && *cfg->dd_url)
		u = strdup(cfg->dd_url);
	else if (asprintf(&u, "https://api.%s", cfg->site && *cfg->site ? cfg->site : "datadoghq.com") < 0)
		u = NULL;
	size_t n = u ? strlen(u) : 0;
	while (n && u[n - 1] == '/')
		u[--n] = 0;
	return u;
}

static struct http_client *make_client(struct event_base *base, const struct fwd_config *cfg)
{
	struct http_client_config hc = {
		.ca_file = cfg->ca_file, .skip_ssl_validation = cfg->skip_ssl_validation,
		.proxy_http = cfg->proxy_http, .proxy_https = cfg->proxy_https, .no_proxy = cfg->no_proxy,
		.max_response_bytes = 64 * 1024, .user_agent = "dd-mini-agent/" DDMA_VERSION,
	};
	return http_client_new(base, &hc);
}

/* Remote write: the entry's TLS settings, the agent's proxy settings. */
static struct http_client *make_rw_client(struct event_base *base, const struct fwd_config *cfg,
					  const struct remote_write_config *rw)
{
	struct http_client_config hc = {
		.ca_file = rw->ca_file, .cert_file = rw->cert_file, .key_file = rw->key_file,
		.skip_ssl_validation = rw->insecure_skip_verify,
		.proxy_http = cfg->proxy_http, .proxy_https = cfg->proxy_https, .no_proxy = cfg->no_proxy,
		.max_response_bytes = 64 * 1024, .user_agent = "dd-mini-agent/" DDMA_VERSION,
	};
	return http_client_new(base, &hc);
}

static void apply_simple(struct fwd *f, const struct fwd_config *cfg)
{
	f->compressor = cfg->compressor;
	f->level = cfg->compressor_level;
	f->series_api = cfg->series_api;
	f->distributions = cfg->distributions;
	f->max_points = cfg->max_points_per_payload;
	f->timeout_ms = (cfg->timeout_s > 0 ? cfg->timeout_s : 20) * 1000L;
	f->max_queue_bytes = cfg->retry_queue_max_bytes;
	struct retry_config rc = {
		.backoff_base = cfg->backoff_base > 0 ? cfg->backoff_base : 2,
		.backoff_factor = cfg->backoff_factor >= 1 ? cfg->backoff_factor : 2,
		.backoff_max = cfg->backoff_max > 0 ? cfg->backoff_max : 64,
		.max_bytes = cfg->retry_queue_max_bytes,
		.max_inflight = f->promrw ? 1 : 0, .oldest_first = f->promrw,
	};
	retry_reconfigure(f->rq, &rc);
}

static int open_disk(struct fwd *f, const struct fwd_config *cfg, char *err, size_t errlen)
{
	if (!cfg->storage_max_bytes)
		return 0;
	if (!cfg->storage_path || !*cfg->storage_path) {
		snprintf(err, errlen, "forwarder_storage_path is empty");
		return -EINVAL;
	}
	f->storage_path = strdup(cfg->storage_path);
	f->dq = f->storage_path ? diskq_open(cfg->storage_path, cfg->storage_max_bytes,
					     on_disk_report, f, err, errlen) : NULL;
	if (!f->dq)
		return -EIO;
	struct diskq_stats s;
	diskq_get_stats(f->dq, &s);
	f->st.points_recovered = s.recovered_points;
	f->seq = diskq_next_seq(f->dq);
	/* corrupted files found at open count as dropped payloads (points unknown) */
	sync_disk(f);
	if (s.recovered_files || s.corrupted_files)
		log_info("forward: disk queue %s: %llu payloads (%llu points) recovered, %llu corrupted files removed",
			 f->storage_path, (unsigned long long)s.recovered_files,
			 (unsigned long long)s.recovered_points, (unsigned long long)s.corrupted_files);
	return 0;
}

struct fwd *fwd_new(struct event_base *base, const struct fwd_config *cfg, char *err, size_t errlen)
{
	struct fwd *f = calloc(1, sizeof(*f));
	struct retry_config rc0 = { 2, 2, 64, 0, 0, false };
	if (!f)
		goto nomem;
	f->base = base;
	f->rq = retry_new(&rc0, (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)f);
	f->base_url = make_base_url(cfg);
	f->api_key = cfg->api_key ? strdup(cfg->api_key) : NULL;
	f->http = make_client(base, cfg);
	f->kick = event_new(base, -1, 0, pump, f);
	f->wake = evtimer_new(base, pump, f);
	f->drain_timer = evtimer_new(base, drain_deadline, f);
	if (!f->rq || !f->base_url || (cfg->api_key && !f->api_key) || !f->http || !f->kick ||
	    !f->wake || !f->drain_timer)
		goto nomem;
	apply_simple(f, cfg);
	if (open_disk(f, cfg, err, errlen) < 0) {
		fwd_free(f);
		return NULL;
	}
	return f;
nomem:
	snprintf(err, errlen, "forwarder: out of memory");
	fwd_free(f);
	return NULL;
}

bool fwd_wants_sketch_series(const struct fwd *f)
{
	return f->promrw || f->distributions == DIST_SERIES;
}

void fwd_set_hostname(struct fwd *f, const char *hostname)
{
	char *h = hostname ? strdup(hostname) : NULL;
	if (hostname && !h)
		return;
	free(f->hostname);
	f->hostname = h;
}

int fwd_reconfigure(struct fwd *f, const struct fwd_config *cfg)
{
	char *url = make_base_url(cfg);
	char *key = cfg->api_key ? strdup(cfg->api_key) : NULL;
	struct http_client *hc = make_client(f->base, cfg);
	int slot = -1;
	for (int i = 0; i < MAX_RETIRED && slot < 0; i++)
		if (!f->retired[i])
			slot = i;
	if (!url || (cfg->api_key && !key) || !hc || slot < 0) {
		free(url);
		free(key);
		http_client_free(hc);
		return slot < 0 ? -EAGAIN : -ENOMEM;
	}
	free(f->base_url);
	f->base_url = url;
	free(f->api_key);
	f->api_key = key;
	f->retired[slot] = f->http;
	f->http = hc;
	apply_simple(f, cfg);
	enforce_cap_sync(f);
	int rc = 0;
	if (f->dq)
		diskq_set_max_bytes(f->dq, cfg->storage_max_bytes ? cfg->storage_max_bytes : 1);
	if ((cfg->storage_max_bytes > 0) != (f->dq != NULL) ||
	    (f->dq && cfg->storage_path && strcmp(cfg->storage_path, f->storage_path) != 0)) {
		log_warn("forward: disk queue settings other than its size need a restart");
		rc = -EBUSY;
	}
	schedule(f);
	return rc;
}

void fwd_free(struct fwd *f)
{
	if (!f)
		return;
	/* http_client_free cancels without callbacks: free our records here */
	http_client_free(f->http);
	for (int i = 0; i < MAX_RETIRED; i++)
		http_client_free(f->retired[i]);
	while (f->inflight) {
		struct inflight *in = f->inflight;
		f->inflight = in->next;
		payload_free(in->p);
		free(in);
	}
	retry_free(f->rq);
	diskq_close(f->dq);
	if (f->kick)
		event_free(f->kick);
	if (f->wake)
		event_free(f->wake);
	if (f->drain_timer)
		event_free(f->drain_timer);
	if (f->api_key)
		memset(f->api_key, 0, strlen(f->api_key));
	free(f->api_key);
	free(f->base_url);
	free(f->hostname);
	promrw_free(f->prw);
	free_headers(f->rw_headers, f->nrw_headers);
	free(f->storage_path);
	free(f);
}

/* ---- Prometheus remote write ---- */

static void free_headers(char **h, size_t n)
{
	for (size_t i = 0; h && i < n; i++) {
		if (h[i])
			explicit_bzero(h[i], strlen(h[i]));
		free(h[i]);
	}
	free(h);
}

static char *base64(const char *in)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t n = strlen(in);
	char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)(unsigned char)in[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)(unsigned char)in[i + 1] << 8;
		if (i + 2 < n)
			v |= (unsigned char)in[i + 2];
		*o++ = tab[(v >> 18) & 63];
		*o++ = tab[(v >> 12) & 63];
		*o++ = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		*o++ = i + 2 < n ? tab[v & 63] : '=';
	}
	*o = 0;
	return out;
}

/* The Authorization line (basic_auth or authorization/bearer_token), or NULL
 * in *out when none; -ENOMEM. */
static int auth_header(const struct remote_write_config *rw, char **out)
{
	*out = NULL;
	if (rw->basic_user) {
		char *pair = NULL, *b64;
		if (asprintf(&pair, "%s:%s", rw->basic_user, rw->basic_password ? rw->basic_password : "") < 0)
			return -ENOMEM;
		b64 = base64(pair);
		explicit_bzero(pair, strlen(pair));
		free(pair);
		int rc = b64 ? asprintf(out, "Authorization: Basic %s", b64) : -1;
		if (b64)
			explicit_bzero(b64, strlen(b64));
		free(b64);
		return rc < 0 ? -ENOMEM : 0;
	}
	if (rw->auth_credentials && asprintf(out, "Authorization: %s %s",
					     rw->auth_type && *rw->auth_type ? rw->auth_type : "Bearer",
					     rw->auth_credentials) < 0)
		return -ENOMEM;
	return 0;
}

static int build_headers(const struct remote_write_config *rw, char ***out, size_t *nout)
{
	char **h = calloc(rw->nheaders + 1, sizeof(*h));
	size_t n = 0;
	int rc = h ? auth_header(rw, &h[0]) : -ENOMEM;
	if (rc == 0 && h[0])
		n++;
	for (size_t i = 0; rc == 0 && i < rw->nheaders && n < MAX_RW_HEADERS; i++) {
		if (asprintf(&h[n], "%s: %s", rw->header_names[i], rw->header_values[i]) < 0) {
			h[n] = NULL;
			rc = -ENOMEM;
		} else {
			n++;
		}
	}
	if (rc < 0) {
		free_headers(h, n);
		return rc;
	}
	*out = h;
	*nout = n;
	return 0;
}

/* Everything of rw that a reload may change; the client is replaced. */
static int apply_rw(struct fwd *f, const struct fwd_config *cfg, const struct remote_write_config *rw,
		    enum rw_counter_mode m)
{
	char *url = strdup(rw->url);
	char **h = NULL;
	size_t nh = 0;
	struct http_client *hc = make_rw_client(f->base, cfg, rw);
	int slot = -1;
	for (int i = 0; i < MAX_RETIRED && slot < 0; i++)
		if (!f->retired[i])
			slot = i;
	int rc = url && hc ? build_headers(rw, &h, &nh) : -ENOMEM;
	if (rc == 0 && slot < 0)
		rc = -EAGAIN;
	if (rc < 0) {
		free(url);
		http_client_free(hc);
		free_headers(h, nh);
		return rc;
	}
	size_t n = strlen(url);
	while (n && url[n - 1] == '/' && n > 8)
		url[--n] = 0;
	free(f->base_url);
	f->base_url = url;
	free_headers(f->rw_headers, f->nrw_headers);
	f->rw_headers = h;
	f->nrw_headers = nh;
	f->retired[slot] = f->http;
	f->http = hc;
	f->rw_counters = m;
	f->rw_max_samples = rw->max_samples;
	f->rw_timeout_ms = (rw->timeout_s > 0 ? rw->timeout_s : 30) * 1000L;
	return 0;
}

int fwd_set_remote_write(struct fwd *f, const struct fwd_config *cfg,
			 const struct remote_write_config *rw, enum rw_counter_mode m)
{
	if (!f->prw && !(f->prw = promrw_new()))
		return -ENOMEM;
	int rc = apply_rw(f, cfg, rw, m);
	if (rc < 0)
		return rc;
	f->promrw = true;
	apply_simple(f, cfg);
	return 0;
}

int fwd_reconfigure_remote_write(struct fwd *f, const struct fwd_config *cfg,
				 const struct remote_write_config *rw, enum rw_counter_mode m)
{
	int rc = apply_rw(f, cfg, rw, m);
	if (rc < 0)
		return rc;
	apply_simple(f, cfg);
	enforce_cap_sync(f);
	if (f->dq)
		diskq_set_max_bytes(f->dq, cfg->storage_max_bytes ? cfg->storage_max_bytes : 1);
	schedule(f);
	return 0;
}

bool fwd_is_remote_write(const struct fwd *f)
{
	return f->promrw;
}
