/*
 * agent.c - the composition root (see agent.h).
 *
 * Data flow:
 *   pipeline threads (pipeline.c), N = dogstatsd_pipeline_count:
 *     socket -> net -> ingest_batch (parse -> aggr)
 *   main thread (this file, one libevent loop):
 *     flush timer -> pipeline_collect on each pipeline (short, on its thread)
 *                -> aggr_emit(outs) (merges the pipelines; they keep receiving)
 *                -> batch -> alert_eval -> notify
 *                -> own metrics appended -> forwarder and/or JSON lines -> batch_free
 *     status HTTP, the forwarder's curl transfers, notifications
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "aggr/aggr.h"
#include "aggr/taglimit.h"
#include "alert/alert.h"
#include "clock.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/log.h"
#include "ddma_config.h"
#include "forward/forward.h"
#include "forward/group.h"
#include "forward/http.h"
#include "net/net.h"
#include "notify/notify.h"
#include "parse/parse.h"
#include "pipeline.h"
#include "sdnotify.h"
#include "status/status.h"
#include "status/summary.h"
#include "telemetry.h"

#define ALERT_LINES_MAX 64

struct agent {
	struct event_base *base;
	struct agent_config *cfg;
	struct pipeline **pipes;
	unsigned npipes;
	struct aggr_out **outs;		/* one per pipeline, during a flush */
	struct taglimit *taglimit;	/* shared by the pipelines' aggregators */
	struct status *status;
	struct fwd_group *fwd;		/* every intake; NULL when none is configured */
	struct http_client *http;	/* the notifiers' transport */
	struct alert_engine *alerts;
	struct notifier_set *notifiers;
	struct alert_transitions transitions;
	struct telemetry telemetry;
	struct event *flush_ev, *watchdog_ev;
	struct event *sig_ev[3];
	int out_fd;			/* JSON lines output, -1 = off */
	struct agent_clock clock;
	int64_t started;
	struct aggr_emit_stats emitted;	/* totals over every flush */
	uint64_t flushes;
	double last_flush_s;
	double last_flush_cpu_s;	/* the same span's CPU time of the main thread */
	uint64_t out_batches, out_records, out_write_errors;
	uint64_t reloads, reload_errors;
	struct status_summary summary;	/* systemd STATUS= line, after every flush */
	double no_intake_warned;	/* monotonic time of the last "nothing is forwarded" warning */
	bool stopping;
	int exit_code;
	char alert_lines[ALERT_LINES_MAX][160];
	const char *alert_line_ptrs[ALERT_LINES_MAX];
	size_t nalert_lines;
};

static int64_t wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME_COARSE, &ts);
	return ts.tv_sec;
}

static int64_t agent_now(struct agent *a)
{
	return agent_clock_now(&a->clock);
}

static void diag_log(void *ctx, bool is_error, const char *msg)
{
	(void)ctx;
	log_msg(is_error ? LOG_LVL_ERROR : LOG_LVL_WARN, "%s", msg);
}

/* ---- JSON lines output (the embedded default when no intake is set) ---- */

static int open_output(struct agent *a)
{
	const char *path = a->cfg->output.path;
	bool to_stdout = !path || !*path || strcmp(path, "-") == 0;
	if (path && strcmp(path, "none") == 0) {
		a->out_fd = -1;
		return 0;
	}
	if (to_stdout) {
		/* With an intake, stdout stays quiet; an explicit file still gets a copy. */
		a->out_fd = a->fwd ? -1 : STDOUT_FILENO;
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

static int out_sink(void *arg, const char *p, size_t n)
{
	write_all(arg, p, n);
	return 0;
}

static void output_batch(struct agent *a, const struct batch *b)
{
	size_t records = b->nseries + b->nsketches + b->nevents + b->nchecks;
	if (a->out_fd < 0 || !records)
		return;
	/* Streamed in ~1 MiB pieces: memory does not grow with the batch. */
	if (batch_write_jsonl_to(b, out_sink, a) < 0)
		a->out_write_errors++;
	a->out_batches++;
	a->out_records += records;
}

/* ---- flush ---- */

/* Every pipeline's published counters, summed; the agent's own flush totals
 * (series and sketches are counted by aggr_emit here, not by the pipelines). */
static void pipeline_totals(struct agent *a, struct pipeline_stats *sum)
{
	memset(sum, 0, sizeof(*sum));
	for (unsigned i = 0; i < a->npipes; i++) {
		struct pipeline_stats x;
		pipeline_get_stats(a->pipes[i], &x);
		pipeline_stats_add(sum, &x);
	}
	sum->aggr.series_flushed = a->emitted.series;
	sum->aggr.sketches_flushed = a->emitted.sketches;
	sum->aggr.dropped[AGGR_DROP_NOMEM] += a->emitted.nomem;
	sum->aggr.dropped[AGGR_DROP_NON_FINITE] += a->emitted.nonfinite;
}

/* " key=total" for every non-zero field of table t (core/stats.h). */
static void put_nonzero(struct buf *b, const struct stat_table *t, const void *st)
{
	for (size_t k = 0; k < t->n; k++) {
		uint64_t v = stat_total(&t->f[k], st);
		if (v)
			buf_printf(b, " %s=%llu", stat_key(&t->f[k]), (unsigned long long)v);
	}
}

/* At debug level: the per-flush summary an operator needs is the STATUS= line
 * (report_status); at info this would add a journal line every flush. */
static void log_counters(const struct pipeline_stats *st)
{
	if (log_get_level() > LOG_LVL_DEBUG)
		return;
	struct buf b;
	buf_init(&b);
	put_nonzero(&b, &net_stats_table, &st->net);
	put_nonzero(&b, &dsd_stats_table, &st->parse);
	put_nonzero(&b, &aggr_stats_table, &st->aggr);
	log_debug("counters:%s", b.p ? b.p : " none");
	buf_done(&b);
}

static void evaluate_alerts(struct agent *a, struct batch *b, int64_t now)
{
	if (!a->alerts)
		return;
	alert_transitions_reset(&a->transitions);
	if (alert_eval(a->alerts, b, now, &a->transitions) < 0)
		log_limited(LOG_LVL_ERROR, "alerts: out of memory during evaluation");
	for (size_t i = 0; i < a->transitions.n; i++) {
		const struct alert_transition *t = &a->transitions.v[i];
		log_info("alert %s%s%s: %s -> %s (value %g)", t->rule_name, t->ngroup_tags ? " " : "",
			 t->ngroup_tags ? t->group_tags[0] : "", alert_state_name(t->from),
			 alert_state_name(t->to), t->value);
		if (a->notifiers)
			notify_transition(a->notifiers, t, now);
	}
	alert_engine_append_metrics(a->alerts, b, now);
}

/* Each pipeline hands over its closed buckets (aggr_collect, on its own
 * thread: the only part of a flush that holds up receiving), then the batch
 * is built here while the pipelines go on receiving. */
static struct batch *collect_and_emit(struct agent *a, int64_t now, bool final)
{
	size_t n = 0;
	for (unsigned i = 0; i < a->npipes; i++) {
		struct aggr_out *o = pipeline_collect(a->pipes[i], now, final);
		if (o)
			a->outs[n++] = o;
		else
			log_limited(LOG_LVL_ERROR, "flush: pipeline %u out of memory; its buckets wait for the next flush", i);
	}
	struct aggr_emit_stats es = { 0 };
	bool sketch_series = a->fwd && fwd_group_wants_sketch_series(a->fwd);
	struct batch *b = n ? aggr_emit(&a->cfg->aggr, a->outs, n, now, sketch_series, &es) : batch_new();
	for (size_t i = 0; i < n; i++)
		aggr_out_free(a->outs[i]);
	a->emitted.series += es.series;
	a->emitted.sketches += es.sketches;
	a->emitted.merged += es.merged;
	a->emitted.nomem += es.nomem;
	a->emitted.nonfinite += es.nonfinite;
	if (b)
		b->flush_time = now;
	return b;
}

/* ---- what an operator sees: systemd's STATUS= line, the no-intake warning ---- */

static void count_firing(void *ctx, const struct alert_instance_info *i)
{
	if (i->state == ALERT_WARNING || i->state == ALERT_CRITICAL)
		(*(size_t *)ctx)++;
}

/* fwd is the forwarder's state before this flush's batch was submitted: what
 * is still queued then is waiting from earlier flushes. */
static void report_status(struct agent *a, const struct pipeline_stats *st, const struct fwd_stats *fwd)
{
	struct status_summary_in in = { .lines = st->parse.lines, .mono_s = mono_now(),
					.contexts = st->aggr.contexts };
	if (fwd) {
		in.queued_points = fwd->points_queued;
		in.waiting_payloads = fwd->queue_payloads + fwd->disk_files;
		for (int d = 0; d < FWD_DROP_COUNT; d++)
			in.dropped_points += fwd->points_dropped[d];
	} else {
		in.intake = a->out_fd >= 0 ? STATUS_INTAKE_OFF_JSON : STATUS_INTAKE_OFF_LOCAL;
	}
	if (a->alerts)
		alert_engine_states(a->alerts, count_firing, &in.alerts_firing);
	char line[256] = "STATUS=";
	status_summary_line(&a->summary, &in, line + 7, sizeof(line) - 7);
	sdnotify_send(line);
}

/* Without an intake and without JSON lines output nothing leaves the host:
 * said at start and then once an hour, not at every flush. */
static void warn_no_intake(struct agent *a)
{
	double now = mono_now();
	if (a->fwd || a->out_fd >= 0 || (a->no_intake_warned > 0 && now - a->no_intake_warned < 3600))
		return;
	a->no_intake_warned = now;
	log_warn("no intake configured (no api_key, no dd_url) and dogstatsd_output_file is none: metrics are "
		 "aggregated and alerts evaluated locally, nothing is forwarded. Set api_key (or the systemd "
		 "credential api_key) or dd_url in %s and restart. Repeated hourly.", a->cfg->path);
}

/* One WARN per metric and tag key when dogstatsd_tag_value_limit first bites
 * it, at most WARN_LIMITED_MAX per flush (the rest in the next flushes). */
#define WARN_LIMITED_MAX 5
static void warn_limited(struct agent *a)
{
	struct taglimit_row r[WARN_LIMITED_MAX];
	size_t n = taglimit_report(a->taglimit, r, WARN_LIMITED_MAX, true);
	for (size_t i = 0; i < n; i++)
		log_warn("tag limit: metric %s has more than %zu values of tag %s: new values %s "
			 "(%llu samples so far; dogstatsd_tag_value_limit, dogstatsd_tags_exclude)",
			 r[i].metric, a->cfg->aggr.tag_value_limit, r[i].key,
			 a->cfg->aggr.tag_limit_drop ? "are dropped" : "lose the tag",
			 (unsigned long long)(r[i].stripped + r[i].dropped));
}

static double thread_cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void flush(struct agent *a, bool final)
{
	double t0 = mono_now(), c0 = thread_cpu_now();
	int64_t now = agent_now(a);
	struct batch *b = collect_and_emit(a, now, final);
	if (!b) {
		log_limited(LOG_LVL_ERROR, "flush: out of memory");
		return;
	}
	evaluate_alerts(a, b, now);
	struct pipeline_stats st;
	pipeline_totals(a, &st);
	struct telemetry_input ti = { .parse = &st.parse, .hostname = a->cfg->aggr.hostname,
				      .interval_s = (uint32_t)a->cfg->flush_interval_s,
				      .net = st.net, .aggr = st.aggr };
	if (a->fwd) {
		fwd_group_get_stats(a->fwd, &ti.fwd);
		ti.has_fwd = true;
	}
	struct taglimit_row limited[STATUS_LIMITED_MAX];
	ti.limited = limited;
	ti.nlimited = taglimit_report(a->taglimit, limited, STATUS_LIMITED_MAX, false);
	if (a->cfg->telemetry_enabled && telemetry_append(&a->telemetry, &ti, b, now) < 0)
		log_limited(LOG_LVL_ERROR, "telemetry: out of memory");
	if (a->fwd && fwd_group_submit(a->fwd, b, now) < 0)
		log_limited(LOG_LVL_ERROR, "forwarder: out of memory encoding the batch (counted: points_dropped_encode)");
	output_batch(a, b);
	batch_free(b);
	a->flushes++;
	a->last_flush_s = mono_now() - t0;
	a->last_flush_cpu_s = thread_cpu_now() - c0;
	log_counters(&st);
	warn_limited(a);
	if (!final) {
		report_status(a, &st, ti.has_fwd ? &ti.fwd : NULL);
		warn_no_intake(a);
	}
}

/* Time from `now_ms` (wall clock, ms) to the next flush: the next multiple
 * of the flush interval since the epoch (a bucket boundary for 10 s) plus the
 * grace, so a flush closes the bucket that has just ended whatever the
 * start-up time. A boundary closer than 20 ms counts as passed (a timer that
 * fires a few ms early under clock slewing must not flush twice). */
static struct timeval next_flush_delay(int64_t now_ms, int interval_s, int grace_ms)
{
	int64_t period = (int64_t)interval_s * 1000;
	int64_t next = ((now_ms - grace_ms) / period + 1) * period + grace_ms;
	if (next - now_ms < 20)
		next += period;
	int64_t d = next - now_ms;
	return (struct timeval){ (time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000 };
}

static void arm_flush(struct agent *a)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	int64_t now_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	struct timeval tv = next_flush_delay(now_ms, a->cfg->flush_interval_s, a->cfg->flush_grace_ms);
	if (event_add(a->flush_ev, &tv) < 0)
		log_limited(LOG_LVL_ERROR, "flush: cannot arm the flush timer");
}

static void on_flush(evutil_socket_t fd, short what, void *arg)
{
	struct agent *a = arg;
	flush(a, false);
	if (!a->stopping)
		arm_flush(a);
}

/* ---- status ---- */

/* A module's stats table into a status section (stat_table_foreach). */
struct stat_ctx {
	struct status_snapshot *s;
	const char *section;
};

static void add_stat(void *arg, const char *name, double v)
{
	struct stat_ctx *c = arg;
	status_section_add(c->s, c->section, name, v);
}

/* One section per intake endpoint: "forwarder", "forwarder_1", ... */
static void snapshot_forwarders(struct agent *a, struct status_snapshot *s)
{
	for (size_t i = 0; a->fwd && i < fwd_group_count(a->fwd); i++) {
		struct fwd *f = fwd_group_at(a->fwd, i);
		struct fwd_stats fs;
		struct stat_ctx c = { s, fwd_group_section(a->fwd, i) };
		fwd_get_stats(f, &fs);
		stat_table_foreach(&fwd_stats_table, &fs, add_stat, &c);
		status_section_add(s, c.section, "remote_write", fwd_is_remote_write(f) ? 1 : 0);
	}
}

static void add_alert_line(void *ctx, const struct alert_instance_info *i)
{
	struct agent *a = ctx;
	if (a->nalert_lines == ALERT_LINES_MAX)
		return;
	char *line = a->alert_lines[a->nalert_lines];
	int n = snprintf(line, sizeof(a->alert_lines[0]), "%s", i->rule);
	for (size_t k = 0; k < i->ngroup_tags && n > 0 && (size_t)n < sizeof(a->alert_lines[0]); k++)
		n += snprintf(line + n, sizeof(a->alert_lines[0]) - (size_t)n, "%s%s", k ? "," : " {",
			      i->group_tags[k]);
	if (i->ngroup_tags && n > 0 && (size_t)n < sizeof(a->alert_lines[0]))
		n += snprintf(line + n, sizeof(a->alert_lines[0]) - (size_t)n, "}");
	if (n > 0 && (size_t)n < sizeof(a->alert_lines[0]))
		snprintf(line + n, sizeof(a->alert_lines[0]) - (size_t)n, " %s value=%g",
			 alert_state_name(i->state), i->value);
	a->alert_line_ptrs[a->nalert_lines++] = line;
}

static void snapshot_alerts(struct agent *a, struct status_snapshot *s)
{
	struct alert_stats as;
	struct notify_stats ns;
	if (!a->alerts)
		return;
	alert_engine_get_stats(a->alerts, &as);
	stat_table_foreach(&alert_stats_table, &as, add_stat, &(struct stat_ctx){ s, "alerts" });
	if (a->notifiers) {
		notify_stats_total(a->notifiers, &ns);
		stat_table_foreach(&notify_stats_table, &ns, add_stat, &(struct stat_ctx){ s, "notifications" });
	}
	a->nalert_lines = 0;
	alert_engine_states(a->alerts, add_alert_line, a);
	s->alert_lines = a->alert_line_ptrs;
	s->nalert_lines = a->nalert_lines;
}

static int top_cmp(const void *x, const void *y)
{
	const struct aggr_top_entry *a = x, *b = y;
	return a->contexts < b->contexts ? 1 : a->contexts > b->contexts ? -1 : strcmp(a->name, b->name);
}

/* The cardinality report over every pipeline: each pipeline's top rows
 * (asked for 4n), rows of the same metric added up (contexts of one metric
 * that reached two pipelines count in both), the offending tag key taken from
 * the pipeline holding most of the metric's contexts. Exact with one pipeline;
 * with several, a metric outside a pipeline's top 4n misses that share. */
static size_t agent_top(struct agent *a, struct aggr_top_entry *out, size_t n)
{
	if (a->npipes == 1)
		return pipeline_top(a->pipes[0], out, n);
	size_t per = 4 * n, cap = per * a->npipes, m = 0;
	struct aggr_top_entry *all = calloc(cap, sizeof(*all)), *part = calloc(per, sizeof(*part));
	for (unsigned i = 0; all && part && i < a->npipes; i++) {
		size_t got = pipeline_top(a->pipes[i], part, per);
		for (size_t k = 0; k < got; k++) {
			size_t j = 0;
			while (j < m && strcmp(all[j].name, part[k].name) != 0)
				j++;
			if (j == m) {
				all[m++] = part[k];
				continue;
			}
			if (part[k].contexts > all[j].contexts) {
				memcpy(all[j].top_tag_key, part[k].top_tag_key, sizeof(all[j].top_tag_key));
				all[j].top_tag_values = part[k].top_tag_values;
			}
			all[j].contexts += part[k].contexts;
			all[j].refused += part[k].refused;
		}
	}
	size_t r = 0;
	if (all && part) {
		qsort(all, m, sizeof(*all), top_cmp);
		r = m < n ? m : n;
		memcpy(out, all, r * sizeof(*out));
	}
	free(all);
	free(part);
	return r;
}

static void snapshot(void *ctx, struct status_snapshot *s)
{
	struct agent *a = ctx;
	s->version = DDMA_VERSION;
	s->hostname = a->cfg->aggr.hostname;
	s->now = wall_now();
	s->started = a->started;
	s->flushes = a->flushes;
	s->last_flush_duration_s = a->last_flush_s;
	s->last_flush_cpu_s = a->last_flush_cpu_s;
	struct pipeline_stats st;
	pipeline_totals(a, &st);
	s->parse = st.parse;
	s->net = st.net;
	s->aggr = st.aggr;
	s->ntop = agent_top(a, s->top, STATUS_TOP_MAX);
	s->nlimited = taglimit_report(a->taglimit, s->limited, STATUS_LIMITED_MAX, false);
	s->limited_keys = taglimit_limited_keys(a->taglimit);
	snapshot_forwarders(a, s);
	snapshot_alerts(a, s);
	status_section_add(s, "output", "batches", (double)a->out_batches);
	status_section_add(s, "output", "records", (double)a->out_records);
	status_section_add(s, "output", "write_errors", (double)a->out_write_errors);
	status_section_add(s, "agent", "reloads", (double)a->reloads);
	status_section_add(s, "agent", "reload_errors", (double)a->reload_errors);
	status_section_add(s, "pipelines", "count", (double)a->npipes);
	status_section_add(s, "pipelines", "collects", (double)st.collects);
	status_section_add(s, "pipelines", "last_collect_s", st.last_collect_s);
	status_section_add(s, "pipelines", "records_merged", (double)a->emitted.merged);
	for (unsigned i = 0; i < a->npipes && i < 16; i++) {
		struct pipeline_stats x;
		char name[32];
		pipeline_get_stats(a->pipes[i], &x);
		snprintf(name, sizeof(name), "p%u_lines", i);
		status_section_add(s, "pipelines", name, (double)x.parse.lines);
	}
}

/* ---- alerts: rules + notifiers, loaded together so a reload swaps both ---- */

struct alert_setup {
	struct alert_rules *rules;
	struct notifier_set *notifiers;
};

void agent_notify_sources(const struct agent_config *cfg, struct notify_sources *src)
{
	*src = (struct notify_sources){
		.alerts_dir = cfg->alerts_dir,
		.notifiers_file = cfg->notifiers_file,
		.config_doc = cfg->doc,
		.config_path = cfg->path,
	};
}

static int load_alerts(struct agent *a, const struct agent_config *cfg, struct alert_setup *out)
{
	struct config_diag diag = { diag_log, NULL, 0, 0 };
	struct notify_sources src;
	agent_notify_sources(cfg, &src);
	if (notify_load(&src, a->base, a->http, &out->rules, &out->notifiers, &diag) < 0)
		return -EINVAL;
	struct notify_options o;
	notify_get_options(out->notifiers, &o);
	o.max_age_s = cfg->notify_max_age_s;
	notify_set_options(out->notifiers, &o);
	log_info("alerts: %zu rule(s) from %s, %zu notifier(s) from %s", out->rules->n, cfg->alerts_dir,
		 notify_count(out->notifiers), notify_source(&src));
	return 0;
}

static int start_alerts(struct agent *a)
{
	struct alert_setup as;
	char state_path[4096];
	if (load_alerts(a, a->cfg, &as) < 0)
		return -EINVAL;
	snprintf(state_path, sizeof(state_path), "%s/alerts.state", a->cfg->run_path);
	struct alert_engine_config ac = {
		.state_path = state_path, .hostname = a->cfg->aggr.hostname, .resolution_s = 10,
	};
	a->alerts = alert_engine_new(as.rules, &ac, wall_now());
	a->notifiers = as.notifiers;
	char spool[4096];
	snprintf(spool, sizeof(spool), "%s/notifications", a->cfg->run_path);
	int rc = notify_spool_open(a->notifiers, spool);
	if (rc < 0)
		log_warn("notify: spool %s: %s; undelivered notifications are kept in memory only (lost on stop)",
			 spool, strerror(-rc));
	return a->alerts ? 0 : -ENOMEM;
}

/* ---- signals: stop and reload ---- */

static void on_notify_drained(void *arg)
{
	struct agent *a = arg;
	event_base_loopexit(a->base, NULL);
}

/* The forwarder is drained: wait for the notifications in flight, so that
 * one the receiver accepted is not sent again at the next start. */
static void on_drained(void *arg)
{
	struct agent *a = arg;
	if (a->notifiers)
		notify_drain(a->notifiers, on_notify_drained, a);
	else
		on_notify_drained(a);
}

static void stop(struct agent *a)
{
	if (a->stopping)
		return;
	a->stopping = true;
	sdnotify_send("STOPPING=1");
	log_info("stopping: final flush");
	/* what the kernel already queued was accepted: each pipeline parses it */
	for (unsigned i = 0; i < a->npipes; i++)
		pipeline_stop_receiving(a->pipes[i]);
	flush(a, true);
	if (a->fwd)
		fwd_group_drain(a->fwd, a->cfg->fwd.drain_timeout_s, on_drained, a);
	else
		on_drained(a);
}

static void reload_fail(struct agent *a, struct agent_config *nc, const char *why)
{
	if (nc) {
		config_free(nc);
		free(nc);
	}
	a->reload_errors++;
	log_error("reload: %s; keeping the running configuration", why);
	sdnotify_send("READY=1");
}

static void reconfigure_forwarder(struct agent *a, const struct agent_config *nc)
{
	int rc = fwd_group_reconfigure(a->fwd, &nc->fwd);
	if (rc == -EBUSY)
		log_warn("reload: adding, removing or reordering intake endpoints, or the disk queue location or "
			 "on/off, needs a restart; the rest applied");
	else if (rc == -EAGAIN)
		log_error("reload: forwarder: requests of earlier reloads still in flight; intake settings "
			  "NOT applied, reload again later");
	else if (rc < 0)
		log_error("reload: forwarder: %s; intake settings not applied", strerror(-rc));
}

/* What a reload cannot change while running: said, not silently ignored. */
static void warn_restart_needed(struct agent_config *old, struct agent_config *nc)
{
	if (nc->net.port != old->net.port || nc->flush_interval_s != old->flush_interval_s ||
	    nc->net.buffer_size != old->net.buffer_size || nc->net.non_local != old->net.non_local)
		log_warn("reload: listener and flush interval changes need a restart; kept the old ones");
	if (memcmp(&nc->limits, &old->limits, sizeof(nc->limits)) != 0)
		log_warn("reload: dogstatsd_max_* parser limits need a restart; kept the old ones");
	if (strcmp(nc->output.path, old->output.path) != 0) {
		log_warn("reload: dogstatsd_output_file changes need a restart; kept %s", old->output.path);
		char *keep = old->output.path;
		old->output.path = nc->output.path;
		nc->output.path = keep;
	}
	nc->limits = old->limits;
}

static void reload(struct agent *a)
{
	struct alert_setup as;
	sdnotify_send("RELOADING=1");
	struct agent_config *nc = calloc(1, sizeof(*nc));
	if (!nc || config_load(a->cfg->path, nc, NULL) < 0) {
		free(nc);
		reload_fail(a, NULL, "the configuration file is invalid");
		return;
	}
	if (load_alerts(a, nc, &as) < 0) {
		reload_fail(a, nc, "alert rules or notifiers are invalid");
		return;
	}
	int lvl = log_level_parse(nc->log_level);
	if (lvl >= 0)
		log_set_level((enum log_level)lvl);
	for (unsigned i = 0; i < a->npipes; i++)
		pipeline_reconfigure(a->pipes[i], &nc->aggr);
	if (a->fwd) {
		if (!fwd_group_wanted(&nc->fwd))
			log_warn("reload: turning the intake off needs a restart; still forwarding");
		else
			reconfigure_forwarder(a, nc);
		fwd_group_set_hostname(a->fwd, nc->aggr.hostname);
	} else if (fwd_group_wanted(&nc->fwd)) {
		log_warn("reload: turning the intake on needs a restart");
	}
	alert_engine_swap_rules(a->alerts, as.rules);
	notify_adopt(as.notifiers, a->notifiers); /* queue, spool and counters carry over */
	notify_free(a->notifiers);
	a->notifiers = as.notifiers;
	warn_restart_needed(a->cfg, nc);
	/* The sockets stay open: keep what they were built from. */
	struct net_config keep = a->cfg->net;
	a->cfg->net = nc->net;
	nc->net = keep;
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
	a->flush_ev = evtimer_new(a->base, on_flush, a);
	if (!a->flush_ev)
		return -ENOMEM;
	arm_flush(a);
	uint64_t wd_usec = sdnotify_watchdog_usec();
	if (wd_usec) {
		struct timeval wv = { (time_t)(wd_usec / 2000000), (suseconds_t)((wd_usec / 2) % 1000000) };
		a->watchdog_ev = event_new(a->base, -1, EV_PERSIST, on_watchdog, a);
		if (!a->watchdog_ev || event_add(a->watchdog_ev, &wv) < 0)
			return -ENOMEM;
	}
	return 0;
}

static int start_forwarder(struct agent *a)
{
	char err[512] = "";
	const struct fwd_config *fc = &a->cfg->fwd;
	struct http_client_config hc = {
		.ca_file = fc->ca_file, .skip_ssl_validation = fc->skip_ssl_validation,
		.proxy_http = fc->proxy_http, .proxy_https = fc->proxy_https, .no_proxy = fc->no_proxy,
	};
	a->http = http_client_new(a->base, &hc);
	if (!a->http) {
		log_error("cannot create the HTTP client");
		return -ENOMEM;
	}
	/* run_path holds the disk queue and the alert state; systemd's
	 * StateDirectory= creates it for the service, we do for a manual run. */
	if (mkdir(a->cfg->run_path, 0700) < 0 && errno != EEXIST)
		log_warn("run_path %s: %s (alert state and the disk queue cannot be kept)",
			 a->cfg->run_path, strerror(errno));
	if (!fwd_group_wanted(fc))
		return 0;
	a->fwd = fwd_group_new(a->base, fc, err, sizeof(err));
	if (!a->fwd) {
		log_error("forwarder: %s", err);
		return -EINVAL;
	}
	fwd_group_set_hostname(a->fwd, a->cfg->aggr.hostname);
	return 0;
}

struct agent *agent_new(struct agent_config *cfg, int *exit_code)
{
	char err[512] = "";
	struct agent *a = calloc(1, sizeof(*a));
	*exit_code = 1;
	if (!a) {
		config_free(cfg);
		free(cfg);
		return NULL;
	}
	a->cfg = cfg;
	a->out_fd = -1;
	a->started = wall_now();
	alert_transitions_init(&a->transitions);
	signal(SIGPIPE, SIG_IGN);
	a->base = event_base_new();
	a->npipes = cfg->net.pipeline_count ? cfg->net.pipeline_count : 1;
	a->pipes = calloc(a->npipes, sizeof(*a->pipes));
	a->outs = calloc(a->npipes, sizeof(*a->outs));
	a->taglimit = taglimit_new();
	if (!a->base || !a->pipes || !a->outs || !a->taglimit) {
		log_error("out of memory while starting");
		goto fail;
	}
	int frc = start_forwarder(a);
	if (frc < 0 || open_output(a) < 0) {
		if (frc == -EINVAL)
			*exit_code = 78; /* e.g. the disk queue directory cannot be used */
		goto fail;
	}
	if (start_alerts(a) < 0) {
		log_error("alert rules or notifiers are invalid (alerts_dir %s); not starting", cfg->alerts_dir);
		*exit_code = 78;
		goto fail;
	}
	for (unsigned i = 0; i < a->npipes; i++) {
		a->pipes[i] = pipeline_new(i, &cfg->net, &cfg->limits, &cfg->aggr, a->taglimit, err,
					   sizeof(err));
		if (!a->pipes[i]) {
			log_error("%s", err);
			goto fail;
		}
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
	*exit_code = 0;
	return a;
fail:
	agent_free(a);
	return NULL;
}

int agent_run(struct agent *a)
{
	log_info("dd-mini-agent %s running: hostname=%s udp=%d uds=%s pipelines=%u status=%d flush=%ds intake=%s",
		 DDMA_VERSION, a->cfg->aggr.hostname, a->cfg->net.port,
		 a->cfg->net.socket_path && *a->cfg->net.socket_path ? a->cfg->net.socket_path : "off",
		 a->npipes, status_port(a->status), a->cfg->flush_interval_s,
		 a->fwd ? fwd_group_base_url(a->fwd) : a->out_fd >= 0 ? "off (JSON lines)" : "off (nothing forwarded)");
	warn_no_intake(a);
	a->summary = (struct status_summary){ .have_prev = true, .mono_s = mono_now() };
	sdnotify_send("READY=1\nSTATUS=started, waiting for the first flush");
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
	for (unsigned i = 0; a->pipes && i < a->npipes; i++)
		pipeline_free(a->pipes[i]);
	free(a->pipes);
	free(a->outs);
	http_client_free(a->http); /* first: it cancels the notifiers' requests without callbacks */
	taglimit_unref(a->taglimit);
	notify_free(a->notifiers);
	fwd_group_free(a->fwd);
	alert_engine_free(a->alerts);
	alert_transitions_done(&a->transitions);
	if (a->out_fd > STDOUT_FILENO)
		close(a->out_fd);
	if (a->base)
		event_base_free(a->base);
	config_free(a->cfg);
	free(a->cfg);
	free(a);
}
