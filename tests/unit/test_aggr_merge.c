/*
 * test_aggr_merge.c - aggr_collect + aggr_emit over several pipelines.
 *
 * The rule checked: two aggrs fed disjoint halves of some traffic, collected
 * and emitted together (n = 2), give the same batch, as a set of records, as
 * one aggr fed all of it and flushed: every metric type, sample rates,
 * gauges received at different times, histograms below and above the exact
 * cap, sets exact and HyperLogLog, distributions, counter zero-fill against
 * samples, contexts present in one pipeline only, timestamped points, events
 * and service checks. And the lifetime rule: an out stays readable after its
 * aggr goes on receiving (new contexts, reconfigure, the strings of contexts
 * expired by that collect re-created).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "aggr/hist.h"
#include "batch_lines.h"
#include "fixture.h"

#define T0 1700000000 /* a bucket boundary */

static double pcts[] = { 0.5, 0.95, 0.99 };
static char *gtags_a[] = { "env:prod" };
static char *gtags_b[] = { "env:canary", "dc:x" };

static struct aggr_config base_config(void)
{
	struct aggr_config c;
	fixture_aggr_config_collect(&c, pcts, 3);
	c.tags = gtags_a;
	c.ntags = 1;
	return c;
}

/* one: fed everything; p[0], p[1]: each fed its half */
struct rig {
	struct aggr_config cfg;
	struct aggr *one, *p[2];
};

static void rig_init(struct rig *r)
{
	r->cfg = base_config();
	r->one = fixture_aggr_new(&r->cfg);
	r->p[0] = fixture_aggr_new(&r->cfg);
	r->p[1] = fixture_aggr_new(&r->cfg);
	cr_assert(r->one && r->p[0] && r->p[1]);
}

static void rig_done(struct rig *r)
{
	aggr_free(r->one);
	aggr_free(r->p[0]);
	aggr_free(r->p[1]);
}

static void sendv(struct rig *r, int pipe, const char *name, enum metric_type t, const double *v,
		  size_t nv, double rate, const char *tags, int64_t ts, int64_t now)
{
	char buf[1024];
	struct sv tv[32];
	size_t nt = fixture_split_tags(tags, buf, sizeof(buf), tv, 32);
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = t, .values = v, .nvalues = nv,
				.sample_rate = rate, .tags = tv, .ntags = nt, .timestamp = ts };
	aggr_ingest(r->one, &m, now);
	aggr_ingest(r->p[pipe], &m, now);
}

static void send1(struct rig *r, int pipe, const char *name, enum metric_type t, double v,
		  double rate, const char *tags, int64_t now)
{
	sendv(r, pipe, name, t, &v, 1, rate, tags, 0, now);
}

static void send_set(struct rig *r, int pipe, const char *name, const char *member, int64_t now)
{
	double dummy = 0;
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = METRIC_SET, .values = &dummy,
				.nvalues = 1, .set_member = sv_from_cstr(member), .sample_rate = 1 };
	aggr_ingest(r->one, &m, now);
	aggr_ingest(r->p[pipe], &m, now);
}


static void same_lines(const struct batch *want, const struct batch *got)
{
	struct lines w = render(want), g = render(got);
	for (size_t i = 0; i < w.n && i < g.n; i++)
		cr_assert_str_eq(g.l[i], w.l[i], "record %zu differs", i);
	cr_assert_eq(g.n, w.n, "%zu records emitted, one aggr flushed %zu", g.n, w.n);
	lines_free(&w);
	lines_free(&g);
}

/* Flushes `one`, collects both pipelines and emits them; asserts the same
 * records; returns the emit stats. want_nonempty: the round must produce
 * records (so an empty comparison cannot pass by accident). */
static struct aggr_emit_stats round_check(struct rig *r, int64_t now, bool final)
{
	struct batch *want = aggr_flush(r->one, now, final);
	struct aggr_out *o[2] = { aggr_collect(r->p[0], now, final),
				  aggr_collect(r->p[1], now, final) };
	cr_assert(want && o[0] && o[1]);
	struct aggr_emit_stats st;
	struct batch *got = aggr_emit(&r->cfg, o, 2, now, false, &st);
	cr_assert(got);
	cr_assert_eq(got->flush_time, now);
	cr_assert_eq(st.nomem, 0);
	cr_assert_eq(st.series, got->nseries);
	cr_assert_eq(st.sketches, got->nsketches);
	cr_assert(want->nseries + want->nsketches + want->nevents + want->nchecks > 0);
	same_lines(want, got);
	aggr_out_free(o[0]);
	aggr_out_free(o[1]);
	batch_free(want);
	batch_free(got);
	return st;
}

#define LEN(x) (sizeof(x) / sizeof((x)[0]))

/* A sample for pipeline `pipe` (and for one), received at T0 + dt. */
struct row {
	int pipe;
	const char *name;
	enum metric_type t;
	double v, rate;
	const char *tags;
	int64_t dt;
};

#define ROW(p, nm, ty, val, rt, tg, at)                                                   \
	{ .pipe = (p), .name = (nm), .t = (ty), .v = (val), .rate = (rt), .tags = (tg), \
	  .dt = (at) }

/* rows[] sent, then a round_check at T0 + dt; merged >= 0: the number of
 * records aggr_emit merged. */
struct round {
	int64_t dt;
	long merged;
	const struct row *rows;
	size_t nrows;
};

/* ROUND(dt, merged, ROW(...), ...); ROUNDS(ROUND(...), ...): an array and
 * its length. */
#define ROUND(at, mg, ...)                                                          \
	{ .dt = (at), .merged = (mg), .rows = (const struct row[]){ __VA_ARGS__ }, \
	  .nrows = LEN(((const struct row[]){ __VA_ARGS__ })) }
#define ROUNDS(...)                                                                  \
	(const struct round[]){ __VA_ARGS__ }, LEN(((const struct round[]){ __VA_ARGS__ }))

/* A fresh rig through rd[0..n) in order. */
static void check_rounds(const struct round *rd, size_t n)
{
	struct rig r;
	rig_init(&r);
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < rd[i].nrows; j++) {
			const struct row *w = &rd[i].rows[j];
			send1(&r, w->pipe, w->name, w->t, w->v, w->rate, w->tags, T0 + w->dt);
		}
		struct aggr_emit_stats st = round_check(&r, T0 + rd[i].dt, false);
		if (rd[i].merged >= 0)
			cr_assert_eq(st.merged, (uint64_t)rd[i].merged, "round %zu: merged %llu", i,
				     (unsigned long long)st.merged);
	}
	rig_done(&r);
}

Test(aggr_merge, counters_with_rates_and_contexts_in_one_pipeline)
{
	check_rounds(ROUNDS(ROUND(
		10, 2, ROW(0, "req", METRIC_COUNT, 1, 0.5, "a:1,b:2", 1),
		ROW(1, "req", METRIC_COUNT, 2, 0.25, "b:2,a:1", 2), /* same context */
		ROW(1, "req", METRIC_COUNT, 3, 1, "a:1,b:2,host:h9", 3),
		ROW(0, "req", METRIC_COUNT, 5, 1, "a:1,b:2,host:h9", 4),
		ROW(0, "only0", METRIC_COUNT, 7, 1, "", 5),
		ROW(1, "only1", METRIC_COUNT, 11, 0.5, "z:z", 5),
		ROW(1, "req", METRIC_GAUGE, 4, 1, "a:1,b:2", 5)))); /* other family */
}

Test(aggr_merge, gauge_latest_receive_time_wins)
{
	/* g1: pipeline 1 received last; g2: pipeline 0 received last */
	check_rounds(ROUNDS(ROUND(
		10, -1, ROW(0, "g1", METRIC_GAUGE, 5, 1, "", 2),
		ROW(0, "g1", METRIC_GAUGE, 9, 1, "", 4),
		ROW(1, "g1", METRIC_GAUGE, 7, 1, "", 6),
		ROW(1, "g2", METRIC_GAUGE, 1, 1, "k:v", 1),
		ROW(1, "g2", METRIC_GAUGE, 3, 1, "k:v", 3),
		ROW(0, "g2", METRIC_GAUGE, 2, 1, "k:v", 7),
		/* g3: same second on both: the higher pipeline index wins (time
		 * order of arrival within the second is not known) */
		ROW(0, "g3", METRIC_GAUGE, 8, 1, "", 5),
		ROW(1, "g3", METRIC_GAUGE, 6, 1, "", 5))));
}

Test(aggr_merge, histograms_and_timers_below_exact_cap)
{
	struct rig r;
	rig_init(&r);
	for (int i = 1; i <= 300; i++) {
		send1(&r, i % 2, "lat", METRIC_HISTOGRAM, i, i % 3 ? 1 : 0.5, "svc:a", T0 + i % 10);
		send1(&r, i % 5 == 0, "t", METRIC_TIMING, 1000 - i, 1, "", T0 + i % 10);
	}
	send1(&r, 1, "lat1", METRIC_HISTOGRAM, 42, 1, "", T0 + 1); /* one side only */
	round_check(&r, T0 + 10, false);
	rig_done(&r);
}

Test(aggr_merge, histogram_above_exact_cap)
{
	struct rig r;
	rig_init(&r);
	enum { N = 1000 };
	double v[N];
	for (int k = 0; k < 150; k++) { /* 75,000 per pipeline, 150,000 in one */
		for (int i = 0; i < N; i++)
			v[i] = (k * 7 + i) % 997 + 1;
		sendv(&r, k % 2, "big", METRIC_HISTOGRAM, v, N, 1, "", 0, T0 + 1);
	}
	/* and one already folded into its sketch on one side */
	for (int k = 0; k < 102; k++) {
		for (int i = 0; i < N; i++)
			v[i] = (k + i) % 50 + 1;
		sendv(&r, 0, "big2", METRIC_HISTOGRAM, v, N, 1, "", 0, T0 + 1);
	}
	sendv(&r, 1, "big2", METRIC_HISTOGRAM, v, 10, 1, "", 0, T0 + 2);
	round_check(&r, T0 + 10, false);
	rig_done(&r);
}

Test(aggr_merge, sets_exact_and_hyperloglog)
{
	struct rig r;
	rig_init(&r); /* set_exact_max 100 */
	char m[32];
	for (int i = 0; i < 60; i++) { /* exact: 40 + 40, overlapping, union 60 */
		snprintf(m, sizeof(m), "u%d", i);
		send_set(&r, i < 30 ? 0 : 1, "small", m, T0 + 1);
		if (i >= 20 && i < 40) {
			snprintf(m, sizeof(m), "u%d", 59 - i);
			send_set(&r, i < 30 ? 1 : 0, "small", m, T0 + 2);
		}
	}
	for (int i = 0; i < 150; i++) { /* each side exact (90), the union is HLL */
		snprintf(m, sizeof(m), "v%d", i);
		if (i < 90)
			send_set(&r, 0, "union", m, T0 + 1);
		if (i >= 60)
			send_set(&r, 1, "union", m, T0 + 1);
	}
	for (int i = 0; i < 500; i++) { /* HLL on one side already */
		snprintf(m, sizeof(m), "w%d", i);
		send_set(&r, i < 450 ? 0 : 1, "hll", m, T0 + 1);
	}
	for (int i = 0; i < 500; i++) { /* HLL on both sides */
		snprintf(m, sizeof(m), "x%d", i);
		send_set(&r, i % 2, "both", m, T0 + 1);
	}
	round_check(&r, T0 + 10, false);
	rig_done(&r);
}

Test(aggr_merge, distributions)
{
	struct rig r;
	rig_init(&r);
	for (int i = 0; i < 400; i++)
		send1(&r, i % 3 == 0, "d", METRIC_DISTRIBUTION, i * 1.5 - 100, i % 4 ? 1 : 0.25,
		      "p:q", T0 + i % 10);
	send1(&r, 0, "d0", METRIC_DISTRIBUTION, 3, 1, "", T0 + 2);
	round_check(&r, T0 + 10, true); /* final: the open bucket too */
	rig_done(&r);
}

Test(aggr_merge, counter_zero_fill_against_samples)
{
	check_rounds(ROUNDS(ROUND(10, -1,
				  ROW(0, "zc", METRIC_COUNT, 1, 1, "", 1),
				  ROW(1, "zc", METRIC_COUNT, 2, 1, "", 2),
				  ROW(1, "z1", METRIC_COUNT, 3, 1, "", 2)),
			    /* next bucket: zc has samples on pipeline 0 only (1
			     * zero-fills); z1 only zero-fills; zn is new on
			     * pipeline 1; merged: zc, pipeline 0's 4 + pipeline
			     * 1's zero */
			    ROUND(20, 1,
				  ROW(0, "zc", METRIC_COUNT, 4, 1, "", 12),
				  ROW(1, "zn", METRIC_COUNT, 6, 1, "", 13)),
			    { .dt = 30, .merged = -1 })); /* zero-fills only */
}

Test(aggr_merge, pending_points_events_and_checks_of_both)
{
	struct rig r;
	rig_init(&r);
	double v = 5;
	sendv(&r, 0, "ts.g", METRIC_GAUGE, &v, 1, 1, "b,a", T0 - 60, T0 + 1);
	sendv(&r, 1, "ts.c", METRIC_COUNT, &v, 1, 0.5, "", T0 - 30, T0 + 1);
	send1(&r, 1, "plain", METRIC_COUNT, 1, 1, "", T0 + 1);
	struct sv et[] = { SV_LIT("k:v") };
	struct dsd_event e = { .title = SV_LIT("deploy"), .text = SV_LIT("x"), .tags = et,
			       .ntags = 1, .aggregation_key = SV_LIT("ag") };
	for (int p = 0; p < 2; p++) {
		e.text = p ? SV_LIT("from 1") : SV_LIT("from 0");
		aggr_event(r.one, &e, T0 + 2);
		aggr_event(r.p[p], &e, T0 + 2);
	}
	struct dsd_service_check sc = { .name = SV_LIT("db.up"), .status = CHECK_WARNING,
					.message = SV_LIT("slow"), .tags = et, .ntags = 1 };
	aggr_service_check(r.one, &sc, T0 + 3);
	aggr_service_check(r.p[1], &sc, T0 + 3);
	round_check(&r, T0 + 10, false);
	rig_done(&r);
}

/* n = 1 is aggr_flush: same records in the same order. */
Test(aggr_merge, emit_of_one_out_is_the_flush)
{
	struct rig r;
	rig_init(&r);
	for (int i = 0; i < 50; i++) {
		char tags[32];
		snprintf(tags, sizeof(tags), "i:%d", i % 7);
		send1(&r, 0, i % 2 ? "c" : "g", i % 2 ? METRIC_COUNT : METRIC_GAUGE, i, 1, tags,
		      T0 + i % 10);
		send1(&r, 0, "h", METRIC_HISTOGRAM, i, 1, tags, T0 + i % 10);
	}
	struct batch *want = aggr_flush(r.one, T0 + 10, false);
	struct aggr_out *o = aggr_collect(r.p[0], T0 + 10, false);
	struct aggr_emit_stats st;
	struct batch *got = aggr_emit(&r.cfg, &o, 1, T0 + 10, false, &st);
	cr_assert(want && got);
	cr_assert_eq(st.merged, 0);
	cr_assert_eq(got->nseries, want->nseries);
	for (size_t i = 0; i < got->nseries; i++) {
		cr_assert_str_eq(got->series[i].name, want->series[i].name);
		cr_assert_eq(got->series[i].value, want->series[i].value);
	}
	aggr_out_free(o);
	batch_free(want);
	batch_free(got);
	rig_done(&r);
}

/* ---- lifetime ---- */

static void ingest(struct aggr *a, const char *name, enum metric_type t, const char *tags,
		   int64_t now)
{
	char buf[1024];
	struct sv tv[32];
	size_t nt = fixture_split_tags(tags, buf, sizeof(buf), tv, 32);
	double v = 1;
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = t, .values = &v, .nvalues = 1,
				.sample_rate = 1, .tags = tv, .ntags = nt };
	aggr_ingest(a, &m, now);
}

Test(aggr_merge, out_outlives_ingest_reconfigure_and_expiry)
{
	struct aggr_config c = base_config(), c2 = base_config();
	c.expiry_seconds = 10;

	c2.tags = gtags_b;
	c2.ntags = 2;
	c2.expiry_seconds = 10;
	struct aggr *a = fixture_aggr_new(&c);
	cr_assert(a);
	ingest(a, "gone.c", METRIC_COUNT, "uniq:tag-only-here,x:1", T0 + 1);
	ingest(a, "stays.g", METRIC_GAUGE, "x:1", T0 + 1);
	batch_free(aggr_flush(a, T0 + 10, false));
	ingest(a, "stays.g", METRIC_GAUGE, "x:1", T0 + 11);
	/* this collect emits gone.c's last zero-fill (bucket T0+10) and expires
	 * it: its name and unique tag lose their last reference here */
	struct aggr_out *o = aggr_collect(a, T0 + 20, false);
	cr_assert(o);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts_expired, 1);
	/* the aggr goes on: thousands of new strings (the pools grow), a
	 * reload, and the expired strings created again */
	char name[64], tags[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "new.%d", i);
		snprintf(tags, sizeof(tags), "n:%d,uniq:tag-only-here", i);
		ingest(a, name, METRIC_COUNT, tags, T0 + 21);
	}
	aggr_reconfigure(a, &c2);
	ingest(a, "gone.c", METRIC_COUNT, "uniq:tag-only-here,x:1", T0 + 22);
	ingest(a, "stays.g", METRIC_GAUGE, "x:1", T0 + 22);
	struct aggr_emit_stats es;
	struct batch *b = aggr_emit(&c, &o, 1, T0 + 20, false, &es);
	cr_assert(b);
	struct lines ls = render(b);
	cr_assert_eq(ls.n, 2, "%zu records", ls.n);
	cr_assert(count_prefix(&ls, "S gone.c|myhost|env:prod,uniq:tag-only-here,x:1,|1700000010|1|10|0"),
		  "%s", ls.l[0]);
	cr_assert(count_prefix(&ls, "S stays.g|myhost|env:prod,x:1,|1700000010|0|0|1"), "%s", ls.l[1]);
	lines_free(&ls);
	batch_free(b);
	/* the out may be freed after its aggr moved on, or after it is gone */
	aggr_free(a);
	aggr_out_free(o);
}

/* collect walks the context slab: freed (expired) contexts are skipped, the
 * reused ones are collected once, expiry finds every context in the table. */
Test(aggr_merge, collect_skips_freed_and_reused_contexts)
{
	struct aggr_config c = base_config();
	struct aggr *a = fixture_aggr_new(&c);
	char name[32];
	for (int i = 0; i < 200; i++) {
		snprintf(name, sizeof(name), "g.%d", i);
		ingest(a, name, METRIC_GAUGE, "", T0 + 1);
	}
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(b->nseries, 200);
	batch_free(b);
	for (int i = 0; i < 200; i += 2) {
		snprintf(name, sizeof(name), "g.%d", i);
		ingest(a, name, METRIC_GAUGE, "", T0 + 25);
	}
	b = aggr_flush(a, T0 + 30, false); /* the odd ones expire */
	cr_assert_eq(b->nseries, 100);
	batch_free(b);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 100);
	cr_assert_eq(st.contexts_expired, 100);
	b = aggr_flush(a, T0 + 31, false); /* a walk over the 100 freed ones */
	cr_assert_eq(b->nseries, 0);
	batch_free(b);
	for (int i = 0; i < 100; i++) { /* 60 reuse freed slots, 40 holes stay */
		if (i < 60) {
			snprintf(name, sizeof(name), "n.%d", i);
			ingest(a, name, METRIC_GAUGE, "", T0 + 31);
		}
		snprintf(name, sizeof(name), "g.%d", 2 * i);
		ingest(a, name, METRIC_GAUGE, "", T0 + 31);
	}
	b = aggr_flush(a, T0 + 40, false);
	struct lines ls = render(b);
	cr_assert_eq(ls.n, 160);
	for (size_t i = 0; i < ls.n; i++) {
		cr_assert(i == 0 || strcmp(ls.l[i - 1], ls.l[i]) != 0, "twice: %s", ls.l[i]);
		int k = -1;
		if (sscanf(ls.l[i], "S g.%d|", &k) == 1)
			cr_assert(k % 2 == 0, "expired context emitted: %s", ls.l[i]);
	}
	lines_free(&ls);
	batch_free(b);
	batch_free(aggr_flush(a, T0 + 100, false)); /* everything idle: all expire */
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 0);
	cr_assert_eq(st.contexts_expired, 260);
	aggr_free(a);
}

/* Asked for, aggr_emit adds the merged sketches as series (sketch_series):
 * the series aggr_sketch_to_series gives for each sketch, in sketch order. */
Test(aggr_merge, sketch_series_are_the_merged_sketches_as_series)
{
	struct aggr_config c = base_config();
	struct aggr *a[2] = { fixture_aggr_new(&c), fixture_aggr_new(&c) };
	ingest(a[0], "d.one", METRIC_DISTRIBUTION, "k:v", T0 + 1);
	ingest(a[1], "d.one", METRIC_DISTRIBUTION, "k:v", T0 + 2);
	ingest(a[1], "d.two", METRIC_DISTRIBUTION, "", T0 + 3);
	ingest(a[0], "g", METRIC_GAUGE, "", T0 + 3);
	struct aggr_out *o[2] = { aggr_collect(a[0], T0 + 10, false), aggr_collect(a[1], T0 + 10, false) };
	struct batch *b = aggr_emit(&c, o, 2, T0 + 10, true, NULL);
	cr_assert(b && b->sketch_series);
	cr_assert_eq(b->nsketches, 2);
	struct batch *want = batch_new();
	for (size_t i = 0; i < b->nsketches; i++)
		cr_assert_eq(aggr_sketch_to_series(&c, &b->sketches[i], want), 0);
	cr_assert_gt(want->nseries, 2 * 4 - 1);
	struct lines got_l = render(b->sketch_series), want_l = render(want);
	cr_assert_eq(got_l.n, want_l.n);
	for (size_t i = 0; i < got_l.n; i++)
		cr_expect_str_eq(got_l.l[i], want_l.l[i]);
	cr_assert(count_prefix(&got_l, "S d.one.count|myhost|env:prod,k:v,|1700000000|"));
	/* the gauge is in the batch's own series only */
	cr_assert_eq(count_prefix(&got_l, "S g|"), 0);
	lines_free(&got_l);
	lines_free(&want_l);
	batch_free(want);
	batch_free(b);
	for (int i = 0; i < 2; i++) {
		aggr_out_free(o[i]);
		aggr_free(a[i]);
	}
}

Test(aggr_merge, no_sketch_series_unless_asked)
{
	struct aggr_config c = base_config();
	struct aggr *a = fixture_aggr_new(&c);
	ingest(a, "d", METRIC_DISTRIBUTION, "", T0 + 1);
	struct aggr_out *o = aggr_collect(a, T0 + 10, false);
	struct batch *b = aggr_emit(&c, &o, 1, T0 + 10, false, NULL);
	cr_assert(b);
	cr_assert_eq(b->nsketches, 1);
	cr_assert_null(b->sketch_series);
	batch_free(b);
	aggr_out_free(o);
	aggr_free(a);
}
