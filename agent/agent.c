/*
 * agent.c - the composition root (see agent.h).
 *
 * Data flow:
 *   socket -> net -> on_datagram -> dsd_parse -> on_metric -> aggr_ingest
 *   flush timer -> aggr_flush(now) -> batch -> [alerts] -> output (JSON lines
 *   or the forwarder) -> batch_free
 *   SIGHUP -> reload; SIGINT/SIGTERM -> stop receiving, final flush, drain, exit.
 */
#include "agent.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "aggr/aggr.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/log.h"
#include "ddma_config.h"
#include "net/net.h"
#include "parse/parse.h"
#include "status/status.h"
#include "sdnotify.h"

struct agent {
	struct event_base *base;
	struct agent_config *cfg;
	struct dsd_parser *parser;
	struct aggr *aggr;
	struct net *net;
	struct status *status;
	struct event *flush_ev, *watchdog_ev;
	struct event *sig_ev[3];
	int out_fd;
	int64_t now;		/* receive time of the datagram being parsed */
	int64_t started;
	uint64_t flushes;
	double last_flush_s;
	uint64_t out_batches, out_records, out_write_errors;
	uint64_t reloads, reload_errors;
	bool stopping;
	int exit_code;
};

static int64_t wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- receive path ---- */

static void on_metric(void *ctx, const struct dsd_metric *m)
{
	struct agent *a = ctx;
	aggr_ingest(a->aggr, m, a->now);
}

static void on_event(void *ctx, const struct dsd_event *e)
{
	struct agent *a = ctx;
	aggr_event(a->aggr, e, a->now);
}

static void on_service_check(void *ctx, const struct dsd_service_check *sc)
{
	struct agent *a = ctx;
	aggr_service_check(a->aggr, sc, a->now);
}

static const struct dsd_sink sink = { on_metric, on_event, on_service_check };

static void on_datagram(void *ctx, char *buf, size_t len, bool truncated)
{
	struct agent *a = ctx;
	if (truncated)
		return; /* counted by net; never half-parsed */
	a->now = wall_now();
	dsd_parse(a->parser, buf, len, &sink, a);
}

/* ---- output ---- */

static int open_output(struct agent *a)
{
	const char *path = a->cfg->output.path;
	if (!path || !*path || strcmp(path, "-") == 0) {
		a->out_fd = STDOUT_FILENO;
		return 0;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("dogstatsd_output_file %s: %s", path, strerror(errno));
		return -errno;
	}
	a->out_fd = fd;
	return 0;
}

static void write_all(struct agent *a, const char *p, size_t n)
{
	while (n) {
		ssize_t w = write(a->out_fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			a->out_write_errors++;
			log_limited(LOG_LVL_ERROR, "writing JSON lines output: %s", strerror(errno));
			return;
		}
		p += w;
		n -= (size_t)w;
	}
}

static void output_batch(struct agent *a, const struct batch *b)
{
	size_t records = b->nseries + b->nsketches + b->nevents + b->nchecks;
	if (!records)
		return;
	struct buf out;
	buf_init(&out);
	if (batch_write_jsonl(b, &out) == 0)
		write_all(a, out.p, out.len);
	else
		a->out_write_errors++;
	buf_done(&out);
	a->out_batches++;
	a->out_records += records;
}

/* ---- flush ---- */

static void log_counters(struct agent *a)
{
	const struct dsd_stats *p = dsd_parser_stats(a->parser);
	struct net_stats ns;
	struct aggr_stats as;
	net_get_stats(a->net, &ns);
	aggr_get_stats(a->aggr, &as);
	uint64_t samples = 0;
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		samples += p->samples[t];
	log_info("dogstatsd: packets=%llu bytes=%llu lines=%llu samples=%llu events=%llu "
		 "service_checks=%llu parse_errors=%llu/%llu/%llu truncated=%llu kernel_drops=%llu "
		 "contexts=%llu refused=%llu",
		 (unsigned long long)(ns.udp_packets + ns.uds_packets),
		 (unsigned long long)(ns.udp_bytes + ns.uds_bytes), (unsigned long long)p->lines,
		 (unsigned long long)samples, (unsigned long long)p->events,
		 (unsigned long long)p->service_checks, (unsigned long long)p->metric_errors,
		 (unsigned long long)p->event_errors, (unsigned long long)p->check_errors,
		 (unsigned long long)ns.truncated, (unsigned long long)ns.kernel_drops,
		 (unsigned long long)as.contexts,
		 (unsigned long long)(as.dropped[AGGR_DROP_CONTEXT_CAP] + as.dropped[AGGR_DROP_METRIC_CAP]));
}

static void flush(struct agent *a, bool final)
{
	double t0 = mono_now();
	struct batch *b = aggr_flush(a->aggr, wall_now(), final);
	if (!b) {
		log_limited(LOG_LVL_ERROR, "flush: out of memory");
		return;
	}
	output_batch(a, b);
	batch_free(b);
	a->flushes++;
	a->last_flush_s = mono_now() - t0;
	log_counters(a);
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	flush(arg, false);
}

/* ---- status ---- */

static void snapshot(void *ctx, struct status_snapshot *s)
{
	struct agent *a = ctx;
	s->version = DDMA_VERSION;
	s->hostname = a->cfg->aggr.hostname;
	s->now = wall_now();
	s->started = a->started;
	s->flushes = a->flushes;
	s->last_flush_duration_s = a->last_flush_s;
	s->parse = *dsd_parser_stats(a->parser);
	net_get_stats(a->net, &s->net);
	aggr_get_stats(a->aggr, &s->aggr);
	s->ntop = aggr_top(a->aggr, s->top, STATUS_TOP_MAX);
	status_section_add(s, "output", "batches", (double)a->out_batches);
	status_section_add(s, "output", "records", (double)a->out_records);
	status_section_add(s, "output", "write_errors", (double)a->out_write_errors);
	status_section_add(s, "agent", "reloads", (double)a->reloads);
	status_section_add(s, "agent", "reload_errors", (double)a->reload_errors);
}

/* ---- signals: stop and reload ---- */

static void stop(struct agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	sdnotify_send("STOPPING=1");
	log_info("stopping: final flush");
	net_pause(a->net);
	net_drain(a->net, 64); /* what the kernel already queued is accepted: parse it */
	flush(a, true);
	event_base_loopexit(a->base, NULL);
}

static void reload(struct agent *a)
{
	sdnotify_send("RELOADING=1");
	struct agent_config *nc = calloc(1, sizeof(*nc));
	if (!nc || config_load(a->cfg->path, nc, NULL) < 0) {
		free(nc);
		a->reload_errors++;
		log_error("reload: %s is invalid; keeping the running configuration", a->cfg->path);
		sdnotify_send("READY=1");
		return;
	}
	int lvl = log_level_parse(nc->log_level);
	if (lvl >= 0)
		log_set_level((enum log_level)lvl);
	aggr_reconfigure(a->aggr, &nc->aggr);
	if (nc->net.port != a->cfg->net.port || nc->flush_interval_s != a->cfg->flush_interval_s)
		log_warn("reload: listener and flush interval changes need a restart; kept the old ones");
	nc->net = a->cfg->net; /* the sockets stay open: keep what they were built from */
	memset(&a->cfg->net, 0, sizeof(a->cfg->net));
	nc->flush_interval_s = a->cfg->flush_interval_s;
	config_free(a->cfg);
	free(a->cfg);
	a->cfg = nc;
	a->reloads++;
	log_info("reload: configuration from %s applied", nc->path);
	sdnotify_send("READY=1");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	struct agent *a = arg;
	if (sig == SIGHUP)
		reload(a);
	else
		stop(a);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg)
{
	sdnotify_send("WATCHDOG=1");
}

/* ---- lifetime ---- */

static int setup_events(struct agent *a)
{
	static const int sigs[3] = { SIGINT, SIGTERM, SIGHUP };
	for (int i = 0; i < 3; i++) {
		a->sig_ev[i] = evsignal_new(a->base, sigs[i], on_signal, a);
		if (!a->sig_ev[i] || evsignal_add(a->sig_ev[i], NULL) < 0)
			return -ENOMEM;
	}
	struct timeval iv = { a->cfg->flush_interval_s, 0 };
	a->flush_ev = event_new(a->base, -1, EV_PERSIST, on_flush, a);
	if (!a->flush_ev || event_add(a->flush_ev, &iv) < 0)
		return -ENOMEM;
	uint64_t wd_usec = sdnotify_watchdog_usec();
	if (wd_usec) {
		struct timeval wv = { (time_t)(wd_usec / 2000000), (suseconds_t)((wd_usec / 2) % 1000000) };
		a->watchdog_ev = event_new(a->base, -1, EV_PERSIST, on_watchdog, a);
		if (!a->watchdog_ev || event_add(a->watchdog_ev, &wv) < 0)
			return -ENOMEM;
	}
	return 0;
}

struct agent *agent_new(struct agent_config *cfg)
{
	char err[512] = "";
	struct agent *a = calloc(1, sizeof(*a));
	if (!a) {
		config_free(cfg);
		free(cfg);
		return NULL;
	}
	a->cfg = cfg;
	a->out_fd = -1;
	a->started = wall_now();
	signal(SIGPIPE, SIG_IGN);
	a->base = event_base_new();
	a->parser = dsd_parser_new(&cfg->limits);
	a->aggr = aggr_new(&cfg->aggr);
	if (!a->base || !a->parser || !a->aggr) {
		log_error("out of memory while starting");
		goto fail;
	}
	if (open_output(a) < 0)
		goto fail;
	a->net = net_new(a->base, &cfg->net, on_datagram, a, err, sizeof(err));
	if (!a->net) {
		log_error("%s", err);
		goto fail;
	}
	if (cfg->status.port > 0) {
		a->status = status_new(a->base, &cfg->status, snapshot, a, err, sizeof(err));
		if (!a->status) {
			log_error("%s", err);
			goto fail;
		}
	}
	if (setup_events(a) < 0) {
		log_error("cannot set up timers and signals");
		goto fail;
	}
	return a;
fail:
	agent_free(a);
	return NULL;
}

int agent_run(struct agent *a)
{
	log_info("dd-mini-agent %s running: hostname=%s udp=%d uds=%s status=%d flush=%ds intake=%s",
		 DDMA_VERSION, a->cfg->aggr.hostname, a->cfg->net.port,
		 a->cfg->net.socket_path && *a->cfg->net.socket_path ? a->cfg->net.socket_path : "off",
		 status_port(a->status), a->cfg->flush_interval_s, "off (JSON lines)");
	sdnotify_send("READY=1");
	event_base_dispatch(a->base);
	log_info("stopped");
	return a->exit_code;
}

void agent_free(struct agent *a)
{
	if (!a)
		return;
	for (int i = 0; i < 3; i++)
		if (a->sig_ev[i])
			event_free(a->sig_ev[i]);
	if (a->flush_ev)
		event_free(a->flush_ev);
	if (a->watchdog_ev)
		event_free(a->watchdog_ev);
	status_free(a->status);
	net_free(a->net);
	aggr_free(a->aggr);
	dsd_parser_free(a->parser);
	if (a->out_fd > STDOUT_FILENO)
		close(a->out_fd);
	if (a->base)
		event_base_free(a->base);
	config_free(a->cfg);
	free(a->cfg);
	free(a);
}
