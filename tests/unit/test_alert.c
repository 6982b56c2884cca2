/*
 * test_alert.c - the alert engine: state machine transitions, hysteresis,
 * for, keep_firing_for, no_data actions, flapping, restart restore,
 * templates, transforms, time/space aggregation, group_by, group cap,
 * exported metrics, rule swap.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alert/alert.h"

#define T0 1700000000
#define STR_(x) #x
#define STR(x) STR_(x) /* a macro's value as a string literal */

static struct alert_rules *rules_from(const char *yaml)
{
	struct alert_rules *rs = NULL;
	struct config_diag d = { 0 };
	int rc = alert_rules_load_buffer("t.yaml", yaml, strlen(yaml), &rs, &d);
	cr_assert_eq(rc, 0, "rules did not load: %d (%u errors)", rc, d.errors);
	return rs;
}

struct pt {
	const char *name;
	const char *host;
	const char *tags; /* comma separated */
	double v;
};

/* One flush at `now` carrying pts (bucket start now - 10). */
static int flush(struct alert_engine *e, struct alert_transitions *tr, int64_t now, const struct pt *pts, size_t n)
{
	struct batch *b = batch_new();
	for (size_t i = 0; i < n; i++) {
		struct sv tags[8];
		size_t nt = 0;
		char *copy = strdup(pts[i].tags ? pts[i].tags : ""), *save = NULL;
		for (char *t = strtok_r(copy, ",", &save); t && nt < 8; t = strtok_r(NULL, ",", &save))
			tags[nt++] = sv_from_cstr(t);
		struct series s = {
			.name = batch_str(b, sv_from_cstr(pts[i].name)),
			.host = batch_str(b, sv_from_cstr(pts[i].host ? pts[i].host : "node")),
			.tags = batch_tags(b, tags, nt),
			.ntags = (uint32_t)nt,
			.kind = SERIES_GAUGE,
			.ts = now - 10,
			.value = pts[i].v,
		};
		cr_assert_eq(batch_add_series(b, &s), 0);
		free(copy);
	}
	alert_transitions_reset(tr);
	int rc = alert_eval(e, b, now, tr);
	batch_free(b);
	cr_assert_geq(rc, 0);
	return rc;
}

/* One value of metric "m" (NaN = the flush carries nothing). */
static int feed(struct alert_engine *e, struct alert_transitions *tr, int64_t now, double v)
{
	struct pt p = { "m", NULL, "svc:a", v };
	return flush(e, tr, now, &p, isnan(v) ? 0 : 1);
}

static struct alert_engine *engine(const char *yaml, const char *state_path)
{
	struct alert_engine_config cfg = { .state_path = state_path, .hostname = "node", .resolution_s = 10 };
	struct alert_engine *e = alert_engine_new(rules_from(yaml), &cfg, T0);
	cr_assert_not_null(e);
	return e;
}

static void expect_tr(const struct alert_transitions *tr, size_t i, enum alert_state from, enum alert_state to)
{
	cr_assert_gt(tr->n, i, "no transition %zu", i);
	cr_assert_eq(tr->v[i].from, from, "from %s", alert_state_name(tr->v[i].from));
	cr_assert_eq(tr->v[i].to, to, "to %s", alert_state_name(tr->v[i].to));
}

#define LAST10 "rules:\n  - name: r\n    metric: m\n    window: 10s\n    time_agg: last\n"

/* The transitions every test collects into, set up and released per test. */
static struct alert_transitions trs;

static void trs_init(void)
{
	alert_transitions_init(&trs);
}

static void trs_done(void)
{
	alert_transitions_done(&trs);
}

TestSuite(alert, .init = trs_init, .fini = trs_done);

/* One flush of a scripted sequence: value v at T0 + dt gives n transitions;
 * with chk, the first one goes from -> to. */
struct step {
	int64_t dt;
	double v;
	int n;
	bool chk;
	enum alert_state from, to;
};
#define STEP(dt, v, n) { (dt), (v), (n), false, ALERT_OK, ALERT_OK }
#define MOVE(dt, v, f, t) { (dt), (v), 1, true, (f), (t) }

static void steps_run(struct alert_engine *e, struct alert_transitions *tr, const struct step *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		int got = feed(e, tr, T0 + s[i].dt, s[i].v);
		cr_assert_eq(got, s[i].n, "step %zu (T0+%lld, value %g): %d transitions", i, (long long)s[i].dt,
			     s[i].v, got);
		if (s[i].chk)
			expect_tr(tr, 0, s[i].from, s[i].to);
	}
}

/* Feeds the steps given after (e, tr) in order. */
#define RUN(e, tr, ...)                                                        \
	do {                                                                   \
		static const struct step steps_[] = { __VA_ARGS__ };           \
		steps_run((e), (tr), steps_, sizeof(steps_) / sizeof(steps_[0])); \
	} while (0)

/* A fresh engine for LAST10 plus `rule`, fed the steps given after it. */
#define RULE_STEPS(rule, ...)                                                  \
	do {                                                                   \
		struct alert_engine *e_ = engine(LAST10 rule, NULL);           \
		struct alert_transitions tr_;                                  \
		alert_transitions_init(&tr_);                                  \
		RUN(e_, &tr_, __VA_ARGS__);                                    \
		alert_transitions_done(&tr_);                                  \
		alert_engine_free(e_);                                         \
	} while (0)

Test(alert, ok_critical_ok)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n", NULL);
	RUN(e, &trs, STEP(10, 5, 0), MOVE(20, 12, ALERT_OK, ALERT_CRITICAL));
	cr_assert_float_eq(trs.v[0].value, 12, 0);
	cr_assert_float_eq(trs.v[0].threshold, 10, 0);
	cr_assert(trs.v[0].notify && !trs.v[0].resolved);
	cr_assert_eq(trs.v[0].since, T0 + 20);
	cr_assert_str_eq(trs.v[0].message, "r on node: value 12 > 10");
	RUN(e, &trs, STEP(30, 11, 0), MOVE(40, 10, ALERT_CRITICAL, ALERT_OK)); /* > 10 is false at 10 */
	cr_assert(trs.v[0].resolved && trs.v[0].notify);
	cr_assert_eq(trs.v[0].since, T0 + 20);
	/* a recovery shows the direction it recovered in */
	cr_assert_str_eq(trs.v[0].message, "r on node: value 10 <= 10");
	alert_engine_free(e);
}

Test(alert, warning_critical_hysteresis)
{
	RULE_STEPS("    critical: 10\n    critical_recovery: 8\n    warning: 5\n    warning_recovery: 4\n",
		   MOVE(10, 6, ALERT_OK, ALERT_WARNING), MOVE(20, 11, ALERT_WARNING, ALERT_CRITICAL),
		   STEP(30, 9, 0), MOVE(40, 7, ALERT_CRITICAL, ALERT_WARNING),
		   STEP(50, 9.5, 0), /* below 10: no re-escalation */
		   STEP(60, 4.5, 0), MOVE(70, 3, ALERT_WARNING, ALERT_OK),
		   STEP(80, 4.5, 0)); /* below warning 5 */
}

Test(alert, for_pending_survives_a_missed_flush)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    for: 30s\n", NULL);
	RUN(e, &trs, MOVE(10, 12, ALERT_OK, ALERT_PENDING));
	cr_assert_not(trs.v[0].notify);
	RUN(e, &trs, STEP(20, 12, 0), STEP(30, NAN, 0), /* missed flush: still PENDING */
	    MOVE(40, 12, ALERT_PENDING, ALERT_CRITICAL));
	cr_assert(trs.v[0].notify);
	/* PENDING -> OK is silent */
	RUN(e, &trs, STEP(50, 1, 1), MOVE(60, 12, ALERT_OK, ALERT_PENDING), MOVE(70, 1, ALERT_PENDING, ALERT_OK));
	cr_assert_not(trs.v[0].notify);
	cr_assert_not(trs.v[0].resolved);
	alert_engine_free(e);
}

Test(alert, escalation_warning_to_critical_honours_for)
{
	RULE_STEPS("    critical: 10\n    warning: 5\n    for: 20s\n", MOVE(10, 6, ALERT_OK, ALERT_PENDING),
		   MOVE(30, 6, ALERT_PENDING, ALERT_WARNING), STEP(40, 12, 0), /* escalation pending */
		   STEP(50, 12, 0), MOVE(60, 12, ALERT_WARNING, ALERT_CRITICAL));
}

Test(alert, keep_firing_for)
{
	RULE_STEPS("    critical: 10\n    keep_firing_for: 20s\n", STEP(10, 12, 1), STEP(20, 1, 0), STEP(30, 1, 0),
		   STEP(40, 12, 0), /* back up: recovery timer resets */
		   STEP(50, 1, 0), STEP(60, 1, 0), MOVE(70, 1, ALERT_CRITICAL, ALERT_OK));
}

static void no_data_case(const char *action, enum alert_state first, enum alert_state expect_after)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml), LAST10 "    critical: 10\n    no_data: {after: 60s, action: %s}\n", action);
	struct alert_engine *e = engine(yaml, NULL);
	feed(e, &trs, T0 + 10, first == ALERT_CRITICAL ? 12 : 1);
	int total = 0;
	for (int64_t t = 20; t < 70; t += 10)
		total += feed(e, &trs, T0 + t, NAN);
	cr_assert_eq(total, 0, "%s: changed before no_data.after", action);
	int n = feed(e, &trs, T0 + 70, NAN);
	if (expect_after == first) {
		cr_assert_eq(n, 0, "%s", action);
	} else {
		cr_assert_eq(n, 1, "%s", action);
		expect_tr(&trs, 0, first, expect_after);
	}
	cr_assert_eq(feed(e, &trs, T0 + 80, NAN), 0, "%s: repeated", action);
	alert_engine_free(e);
}

Test(alert, no_data_actions)
{
	no_data_case("keep", ALERT_CRITICAL, ALERT_CRITICAL);
	no_data_case("ok", ALERT_CRITICAL, ALERT_OK);
	no_data_case("nodata", ALERT_CRITICAL, ALERT_NO_DATA);
	no_data_case("nodata", ALERT_OK, ALERT_NO_DATA);
	no_data_case("alert", ALERT_OK, ALERT_CRITICAL);
}

/* Every state shows the comparator and threshold that decided it. */
Test(alert, messages_show_the_deciding_threshold)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    warning: 5\n    critical_recovery: 8\n"
					"    warning_recovery: 3\n    for: 20s\n    no_data: {after: 30s, action: nodata}\n",
					NULL);
	RUN(e, &trs, MOVE(10, 6, ALERT_OK, ALERT_PENDING));
	cr_assert_str_eq(trs.v[0].message, "r on node: value 6 > 5"); /* pending on the warning */
	RUN(e, &trs, STEP(20, 12, 0), MOVE(30, 12, ALERT_PENDING, ALERT_CRITICAL));
	cr_assert_str_eq(trs.v[0].message, "r on node: value 12 > 10");
	RUN(e, &trs, MOVE(40, 7, ALERT_CRITICAL, ALERT_WARNING));
	cr_assert_str_eq(trs.v[0].message, "r on node: value 7 <= 8");
	RUN(e, &trs, MOVE(50, 2, ALERT_WARNING, ALERT_OK));
	cr_assert_str_eq(trs.v[0].message, "r on node: value 2 <= 3");
	cr_assert_str_eq(trs.v[0].comparator, "<=");
	int n = 0;
	for (int64_t t = T0 + 60; t <= T0 + 90 && !n; t += 10)
		n = feed(e, &trs, t, NAN);
	cr_assert_eq(n, 1);
	expect_tr(&trs, 0, ALERT_OK, ALERT_NO_DATA);
	cr_assert_str_eq(trs.v[0].message, "r on node: no data");
	alert_engine_free(e);
}

Test(alert, no_data_alert_for_a_series_that_never_arrives)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    no_data: {after: 30s, action: alert}\n", NULL);
	RUN(e, &trs, STEP(20, NAN, 0), MOVE(30, NAN, ALERT_OK, ALERT_CRITICAL));
	cr_assert(isnan(trs.v[0].value));
	/* data back below the threshold resolves it */
	RUN(e, &trs, MOVE(40, 1, ALERT_CRITICAL, ALERT_OK));
	alert_engine_free(e);
}

Test(alert, no_data_default_after_is_two_windows_and_data_returns)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    no_data: {action: nodata}\n", NULL);
	feed(e, &trs, T0 + 10, 1);
	RUN(e, &trs, STEP(20, NAN, 0), MOVE(30, NAN, ALERT_OK, ALERT_NO_DATA), /* 20 s = 2 x window */
	    MOVE(40, 1, ALERT_NO_DATA, ALERT_OK));
	cr_assert(trs.v[0].resolved);
	alert_engine_free(e);
}

/* Notifications sent while the value flaps across 10 for 50 flushes. */
static int notified_while_flapping(const char *rule)
{
	struct alert_engine *e = engine(rule, NULL);
	int notified = 0;
	for (int i = 0; i < 50; i++) {
		feed(e, &trs, T0 + 10 * (i + 1), i % 2 ? 9 : 11);
		for (size_t k = 0; k < trs.n; k++)
			notified += trs.v[k].notify;
	}
	alert_engine_free(e);
	return notified;
}

Test(alert, flapping_input_does_not_storm)
{
	cr_assert_eq(notified_while_flapping(LAST10 "    critical: 10\n    critical_recovery: 5\n"), 1);
	cr_assert_eq(notified_while_flapping(LAST10 "    critical: 10\n    for: 30s\n"), 0);
}

Test(alert, renotify)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    renotify: 30s\n", NULL);
	RUN(e, &trs, STEP(10, 12, 1), STEP(20, 12, 0), STEP(30, 12, 0), MOVE(40, 12, ALERT_CRITICAL, ALERT_CRITICAL));
	cr_assert(trs.v[0].renotify && trs.v[0].notify);
	RUN(e, &trs, STEP(50, 12, 0));
	alert_engine_free(e);
}

Test(alert, restart_restores_state_without_notifying)
{
	char dir[] = "/tmp/alert_state_XXXXXX", path[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/alerts.state", dir);
	const char *yaml = LAST10 "    critical: 10\n";
	struct alert_engine *e = engine(yaml, path);
	cr_assert_eq(feed(e, &trs, T0 + 10, 12), 1);
	alert_engine_free(e);
	struct stat st;
	cr_assert_eq(stat(path, &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);

	struct alert_engine_config cfg = { .state_path = path, .hostname = "node", .resolution_s = 10 };
	e = alert_engine_new(rules_from(yaml), &cfg, T0 + 600);
	struct alert_stats stats;
	alert_engine_get_stats(e, &stats);
	cr_assert_eq(stats.restored, 1);
	cr_assert_eq(feed(e, &trs, T0 + 610, 12), 0); /* unchanged: silent */
	cr_assert_eq(feed(e, &trs, T0 + 620, 1), 1);
	expect_tr(&trs, 0, ALERT_CRITICAL, ALERT_OK);
	cr_assert_eq(trs.v[0].since, T0 + 10);
	alert_engine_free(e);

	/* a file older than an hour is ignored */
	e = engine(yaml, path);
	feed(e, &trs, T0 + 10, 12);
	alert_engine_free(e);
	e = alert_engine_new(rules_from(yaml), &cfg, T0 + 10 + 3601);
	alert_engine_get_stats(e, &stats);
	cr_assert_eq(stats.restored, 0);
	cr_assert_eq(feed(e, &trs, T0 + 3621, 12), 1);
	expect_tr(&trs, 0, ALERT_OK, ALERT_CRITICAL);
	alert_engine_free(e);
	unlink(path);
	rmdir(dir);
}

struct collect {
	double value[8];
	enum alert_state state[8];
	char group[8][64];
	uint64_t fp[8];
	size_t n;
};

static void collect_fn(void *ctx, const struct alert_instance_info *i)
{
	struct collect *c = ctx;
	if (c->n == 8)
		return;
	c->value[c->n] = i->value;
	c->state[c->n] = i->state;
	snprintf(c->group[c->n], sizeof(c->group[0]), "%s", i->ngroup_tags ? i->group_tags[0] : "");
	c->fp[c->n] = i->fingerprint;
	c->n++;
}

/* A growth rule firing on a steady leak: a restart mid-incident (the
 * window's points come back with the state) neither resolves nor re-fires. */
Test(alert, restart_keeps_the_window)
{
	char dir[] = "/tmp/alert_win_XXXXXX", path[128];
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/alerts.state", dir);
	const char *yaml = "rules:\n  - name: g\n    metric: m\n    window: 60s\n    transform: growth\n"
			   "    critical: 500\n    critical_recovery: 400\n";
	struct alert_engine *e = engine(yaml, path);
	struct alert_transitions tr;
	alert_transitions_init(&tr);
	int fired = 0;
	for (int i = 1; i <= 9; i++)
		fired += feed(e, &tr, T0 + 10 * i, 100.0 * i); /* +100 per bucket: 600 a minute */
	cr_assert_eq(fired, 1);
	alert_engine_free(e);

	/* restarted 20 s later: two buckets were never flushed */
	struct alert_engine_config cfg = { .state_path = path, .hostname = "node", .resolution_s = 10 };
	e = alert_engine_new(rules_from(yaml), &cfg, T0 + 110);
	struct alert_stats stats;
	alert_engine_get_stats(e, &stats);
	cr_assert_eq(stats.restored, 1);
	cr_assert_eq(stats.points_restored, 8, "%llu", (unsigned long long)stats.points_restored);
	for (int i = 12; i <= 20; i++)
		cr_assert_eq(feed(e, &tr, T0 + 10 * i, 100.0 * i), 0, "transition at step %d", i);
	struct collect c = { 0 };
	alert_engine_states(e, collect_fn, &c);
	cr_assert_eq(c.state[0], ALERT_CRITICAL);
	cr_assert_float_eq(c.value[0], 600.0, 1e-9);
	alert_engine_free(e);

	/* a version 1 file (states only) is still read, and garbage is ignored,
	 * never a crash: either way the state comes back without points */
	static const char *const files[] = {
		"ddma-alert-state 1 " STR(T0) "\ng\t\tnode\tCRITICAL\tCRITICAL\t" STR(T0) "\t0\t0\t" STR(T0) "\t" STR(T0)
		"\t600\n",
		"ddma-alert-state 2 " STR(T0) " 10\ng\t\tnode\tCRITICAL\tCRITICAL\t1\t0\t0\t1\t1\t1\tOK\tCRITICAL\t5:x,,\n"
		"g\tbad\n\x01\x02",
	};
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		FILE *f = fopen(path, "w");
		cr_assert_not_null(f);
		fputs(files[i], f);
		fclose(f);
		e = alert_engine_new(rules_from(yaml), &cfg, T0 + 10);
		alert_engine_get_stats(e, &stats);
		cr_assert_eq(stats.restored, 1, "file %zu", i);
		cr_assert_eq(stats.points_restored, 0, "file %zu", i);
		alert_engine_free(e);
	}
	alert_transitions_done(&tr);
	unlink(path);
	rmdir(dir);
}

static double value_after(const char *body, const double *vals, size_t n)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml), "rules:\n  - name: r\n    metric: m\n    window: 40s\n    critical: 1e12\n%s", body);
	struct alert_engine *e = engine(yaml, NULL);
	struct alert_transitions tr;
	alert_transitions_init(&tr);
	for (size_t i = 0; i < n; i++)
		feed(e, &tr, T0 + 10 * (int64_t)(i + 1), vals[i]);
	struct collect c = { 0 };
	alert_engine_states(e, collect_fn, &c);
	alert_transitions_done(&tr);
	alert_engine_free(e);
	cr_assert_eq(c.n, 1);
	return c.value[0];
}

Test(alert, transforms_exact)
{
	const double v[] = { 100, 110, 130, 160 };
	cr_assert_float_eq(value_after("    transform: growth\n", v, 4), 60.0, 1e-9);
	cr_assert_float_eq(value_after("    transform: deriv\n", v, 4), 2.0, 1e-9);
	cr_assert_float_eq(value_after("    transform: rate\n    time_agg: avg\n", v, 4), 2.0, 1e-9);
	cr_assert_float_eq(value_after("    transform: rate\n    time_agg: max\n", v, 4), 3.0, 1e-9);
	cr_assert_float_eq(value_after("    transform: rate\n    time_agg: min\n", v, 4), 1.0, 1e-9);
	cr_assert_float_eq(value_after("    transform: pct_change\n", v, 4), 60.0, 1e-9);
	const double w[] = { 200, 150 };
	cr_assert_float_eq(value_after("    transform: pct_change\n", w, 2), -25.0, 1e-9);
	/* growth over 40 s starts from the value at the window's start: the
	 * point whose bucket ended there (0), not the first in-window one */
	const double x[] = { 0, 100, 110, 130, 160 };
	cr_assert_float_eq(value_after("    transform: growth\n", x, 5), 160.0, 1e-9);
	/* anything older than that drops out */
	const double y[] = { 7, 0, 100, 110, 130, 160 };
	cr_assert_float_eq(value_after("    transform: growth\n", y, 6), 160.0, 1e-9);
	/* rate is a counter rate: a reset (restart) interval is left out */
	const double z[] = { 100, 120, 5, 25 };
	cr_assert_float_eq(value_after("    transform: rate\n    time_agg: min\n", z, 4), 2.0, 1e-9);
}

Test(alert, time_aggregations)
{
	const double v[] = { 1, 5, 3, 2 };
	cr_assert_float_eq(value_after("    time_agg: avg\n", v, 4), 2.75, 1e-12);
	cr_assert_float_eq(value_after("    time_agg: min\n", v, 4), 1.0, 0);
	cr_assert_float_eq(value_after("    time_agg: max\n", v, 4), 5.0, 0);
	cr_assert_float_eq(value_after("    time_agg: sum\n", v, 4), 11.0, 0);
	cr_assert_float_eq(value_after("    time_agg: last\n", v, 4), 2.0, 0);
	cr_assert_float_eq(value_after("    time_agg: count\n", v, 4), 4.0, 0);
}

Test(alert, require_full_window)
{
	const double v[] = { 1, 5 };
	cr_assert(isnan(value_after("    require_full_window: true\n", v, 2)));
	const double w[] = { 1, 5, 3, 2 };
	cr_assert_float_eq(value_after("    require_full_window: true\n", w, 4), 2.75, 1e-12);
}

static double space_value(const char *agg)
{
	char yaml[512];
	snprintf(yaml, sizeof(yaml), LAST10 "    critical: 1e12\n    space_agg: %s\n", agg);
	struct alert_engine *e = engine(yaml, NULL);
	struct pt p[] = { { "m", "h1", "a:1", 2 }, { "m", "h2", "a:2", 4 }, { "m", "h3", "a:3", 9 },
			  { "other", "h1", "a:1", 100 } };
	flush(e, &trs, T0 + 10, p, 4);
	struct collect c = { 0 };
	alert_engine_states(e, collect_fn, &c);
	alert_engine_free(e);
	return c.value[0];
}

Test(alert, space_aggregations)
{
	cr_assert_float_eq(space_value("avg"), 5.0, 0);
	cr_assert_float_eq(space_value("sum"), 15.0, 0);
	cr_assert_float_eq(space_value("min"), 2.0, 0);
	cr_assert_float_eq(space_value("max"), 9.0, 0);
}

Test(alert, group_by_multi_alert_and_filters)
{
	struct alert_engine *e = engine("rules:\n  - name: r\n    query: \"last(last_10s):m{env:prod,!role:canary*} by {host} > 10\"\n",
					NULL);
	struct pt p[] = {
		{ "m", "web-1", "env:prod,role:web", 12 },  { "m", "web-2", "env:prod,role:web", 3 },
		{ "m", "web-3", "env:dev,role:web", 50 },   /* filtered: env */
		{ "m", "web-4", "env:prod,role:canary-a", 50 }, /* filtered: negated glob */
	};
	cr_assert_eq(flush(e, &trs, T0 + 10, p, 4), 1);
	expect_tr(&trs, 0, ALERT_OK, ALERT_CRITICAL);
	cr_assert_str_eq(trs.v[0].host, "web-1");
	cr_assert_eq(trs.v[0].ngroup_tags, 1);
	cr_assert_str_eq(trs.v[0].group_tags[0], "host:web-1");
	uint64_t fp1 = trs.v[0].fingerprint;
	p[1].v = 20;
	cr_assert_eq(flush(e, &trs, T0 + 20, p, 4), 1);
	cr_assert_str_eq(trs.v[0].host, "web-2");
	cr_assert_neq(trs.v[0].fingerprint, fp1);
	struct alert_stats st;
	alert_engine_get_stats(e, &st);
	cr_assert_eq(st.instances, 2);
	alert_engine_free(e);

	/* the fingerprint is stable: same rule, group and host in a new engine */
	e = engine("rules:\n  - name: r\n    query: \"last(last_10s):m{env:prod,!role:canary*} by {host} > 10\"\n", NULL);
	cr_assert_eq(flush(e, &trs, T0 + 10, p, 1), 1);
	cr_assert_eq(trs.v[0].fingerprint, fp1);
	alert_engine_free(e);
}

Test(alert, group_cap_counts_refusals)
{
	struct alert_engine *e = engine("rules:\n  - name: r\n    metric: m\n    window: 10s\n    critical: 10\n"
					"    group_by: [svc]\n    max_groups: 2\n", NULL);
	struct pt p[] = { { "m", NULL, "svc:a", 1 }, { "m", NULL, "svc:b", 1 }, { "m", NULL, "svc:c", 1 },
			  { "m", NULL, "svc:d", 1 } };
	flush(e, &trs, T0 + 10, p, 4);
	struct alert_stats st;
	alert_engine_get_stats(e, &st);
	cr_assert_eq(st.instances, 2);
	cr_assert_eq(st.groups_refused, 2);
	struct batch *b = batch_new();
	cr_assert_eq(alert_engine_append_metrics(e, b, T0 + 10), 0);
	bool found = false;
	for (size_t i = 0; i < b->nseries; i++)
		if (strcmp(b->series[i].name, "dd_mini_agent.alerts.groups_refused") == 0) {
			found = true;
			cr_assert_float_eq(b->series[i].value, 2.0, 0);
		}
	cr_assert(found);
	batch_free(b);
	alert_engine_free(e);
}

Test(alert, exported_state_metrics_and_checks)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n    group_by: [svc]\n", NULL);
	feed(e, &trs, T0 + 10, 12);
	struct batch *b = batch_new();
	cr_assert_eq(alert_engine_append_metrics(e, b, T0 + 10), 0);
	cr_assert_eq(b->nseries, 1);
	cr_assert_str_eq(b->series[0].name, "dd_mini_agent.alerts.state");
	cr_assert_float_eq(b->series[0].value, 1.0, 0);
	cr_assert_eq(b->series[0].ntags, 3);
	cr_assert_str_eq(b->series[0].tags[0], "rule:r");
	cr_assert_str_eq(b->series[0].tags[1], "state:critical");
	cr_assert_str_eq(b->series[0].tags[2], "svc:a");
	cr_assert_eq(b->nchecks, 1);
	cr_assert_str_eq(b->checks[0].name, "dd_mini_agent.alert");
	cr_assert_eq(b->checks[0].status, CHECK_CRITICAL);
	cr_assert_str_eq(b->checks[0].message, "r is CRITICAL: value 12 > 10");
	batch_free(b);
	alert_engine_free(e);
}

Test(alert, swap_rules_keeps_state_by_name)
{
	struct alert_engine *e = engine(LAST10 "    critical: 10\n", NULL);
	cr_assert_eq(feed(e, &trs, T0 + 10, 12), 1);
	cr_assert_eq(alert_engine_swap_rules(e, rules_from(LAST10 "    critical: 11\n"
							   "  - name: other\n    metric: m\n    window: 10s\n    critical: 100\n")),
		     0);
	cr_assert_eq(feed(e, &trs, T0 + 20, 12), 0); /* still CRITICAL, no repeat */
	cr_assert_eq(feed(e, &trs, T0 + 30, 10.5), 1);
	expect_tr(&trs, 0, ALERT_CRITICAL, ALERT_OK); /* the new threshold applies */
	alert_engine_free(e);
}

/* Renders tmpl for t and checks the text is want. */
static void expect_render(const char *tmpl, const struct alert_transition *t, const char *want)
{
	struct buf b;
	buf_init(&b);
	cr_assert_eq(alert_render(tmpl, t, &b), 0, "%s", tmpl);
	cr_assert_str_eq(b.p, want);
	buf_done(&b);
}

Test(alert, templates)
{
	struct alert_rule r = { 0 };
	char *lk[] = { "team" }, *lv[] = { "payments" };
	r.label_keys = lk;
	r.label_values = lv;
	r.nlabels = 1;
	const char *g[] = { "host:web-1", "service:pay" };
	struct alert_transition t = {
		.rule = &r, .rule_name = "heap", .host = "web-1", .group_tags = g, .ngroup_tags = 2,
		.from = ALERT_OK, .to = ALERT_CRITICAL, .value = 12582912, .threshold = 10485760,
		.comparator = ">", .fingerprint_hex = "00112233aabbccdd",
	};
	const char *tmpl = "{{rule}} on {{host}} ({{group.service}}, {{label.team}}): {{value}} {{comparator}} "
			   "{{threshold}}{{#is_alert}} ALERT{{/is_alert}}{{#is_warning}} WARN{{/is_warning}}"
			   "{{#is_recovery}} recovered{{/is_recovery}}{{^is_recovery}} !{{/is_recovery}}"
			   "{{#is_no_data}} nodata{{/is_no_data}} {{ unknown }}[{{group}}] {{fingerprint}}";
	expect_render(tmpl, &t, "heap on web-1 (pay, payments): 12582912 > 10485760 ALERT ! [host:web-1, service:pay] "
				"00112233aabbccdd");
	t.from = ALERT_CRITICAL;
	t.to = ALERT_OK;
	t.resolved = true;
	t.value = 0.25;
	expect_render(tmpl, &t, "heap on web-1 (pay, payments): 0.25 > 10485760 recovered [host:web-1, service:pay] "
				"00112233aabbccdd");
	t.to = ALERT_NO_DATA;
	t.resolved = false;
	t.value = NAN;
	expect_render("{{#is_no_data}}no data for {{rule}}: {{value}}{{/is_no_data}}{{#is_alert", &t,
		      "no data for heap: N/A{{#is_alert");
}

Test(alert, value_formatting)
{
	char s[64];
	alert_format_value(10485760, s, sizeof(s));
	cr_assert_str_eq(s, "10485760");
	alert_format_value(2.5, s, sizeof(s));
	cr_assert_str_eq(s, "2.5");
	alert_format_value(-0.001, s, sizeof(s));
	cr_assert_str_eq(s, "-0.001");
	alert_format_value(1e20, s, sizeof(s));
	cr_assert_str_eq(s, "1e+20");
}
