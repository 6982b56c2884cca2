/*
 * test_aggr_incr.c - the incremental collect (aggr_collect_begin/step/end)
 * with ingest between the steps.
 *
 * The rules checked: (1) equivalence: one aggr collected in one go and then
 * fed some traffic, and an identical aggr collected in steps of 1, 7 and
 * 1000 contexts with that same traffic fed between the steps (new contexts,
 * existing ones, seen-line cache hits, revivals of contexts expiring in this
 * collect, events, checks, timestamped points) give the same batch for this
 * collect (closed buckets, counter zero-fills, expiry) and for the next one;
 * (2) a context expired by a step is gone from the table and the seen-line
 * cache when the step returns: its key revived between steps gets a fresh
 * context with the new samples while its last records stay in the out;
 * (3) the slab is returned at end only if no context is left then; (4)
 * aggr_free in the middle of a collect frees everything (ASan).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "parse/keyhash.h"
#include "aggr/hist.h"
#include "batch_lines.h"
#include "fixture.h"

#define T0 1700000000 /* a bucket boundary */

static double pcts[] = { 0.5, 0.95 };

static struct aggr_config base_config(void)
{
	struct aggr_config c;
	fixture_aggr_config_collect(&c, pcts, 2);
	return c;
}

/* One line as the receive path feeds it: the seen-line cache first, then the
 * full path. raw_suffix "|#<tags>" determines the tags, as parse.h says. */
static bool put(struct aggr *a, const char *name, enum metric_type t, double v, const char *tags,
		int64_t now)
{
	char buf[512], suf[520];
	struct sv tv[16];
	size_t nt = fixture_split_tags(tags, buf, sizeof(buf), tv, 16);
	snprintf(suf, sizeof(suf), "%s%s", *tags ? "|#" : "", tags);
	char member[32];
	snprintf(member, sizeof(member), "m%g", v);
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = t, .values = &v, .nvalues = 1,
				.sample_rate = 1, .tags = tv, .ntags = nt,
				.raw_suffix = sv_from_cstr(suf), .cacheable = t != METRIC_SET,
				.set_member = sv_from_cstr(member) };
	if (m.cacheable) {
		uint64_t h = dsd_key_hash(m.type, m.name.p, m.name.n, m.raw_suffix.p, m.raw_suffix.n).a;
		aggr_seen_prefetch_entries(a, &h, 1);
		aggr_seen_prefetch_contexts(a, &h, 1);
		if (aggr_ingest_seen(a, &m, now))
			return true;
	}
	aggr_ingest(a, &m, now);
	return false;
}

static void put_ts(struct aggr *a, const char *name, double v, int64_t ts, int64_t now)
{
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = METRIC_GAUGE, .values = &v,
				.nvalues = 1, .sample_rate = 1, .timestamp = ts };
	aggr_ingest(a, &m, now);
}

static void put_event(struct aggr *a, int i, int64_t now)
{
	char title[32];
	snprintf(title, sizeof(title), "ev%d", i);
	struct dsd_event e = { .title = sv_from_cstr(title), .text = SV_LIT("x") };
	aggr_event(a, &e, now);
	struct dsd_service_check sc = { .name = sv_from_cstr(title), .status = 1,
					.message = SV_LIT("m") };
	aggr_service_check(a, &sc, now);
}

static struct lines emit_free(const struct aggr_config *cfg, struct aggr_out *o, int64_t now)
{
	cr_assert(o);
	struct batch *b = aggr_emit(cfg, &o, 1, now, false, NULL);
	cr_assert(b);
	struct lines ls = render(b);
	batch_free(b);
	aggr_out_free(o);
	return ls;
}

static void same_lines(const struct lines *want, const struct lines *got, const char *what)
{
	for (size_t i = 0; i < want->n && i < got->n; i++)
		cr_assert_str_eq(got->l[i], want->l[i], "%s: record %zu differs", what, i);
	cr_assert_eq(got->n, want->n, "%s: %zu records, one-shot collect %zu", what, got->n,
		     want->n);
}

/* ---- (1) equivalence ---- */

#define NC 500	/* counters */
#define NZX 50	/* counters whose zero-fill ends (and which expire) in the collect */
#define NOG 40	/* gauges expiring in the collect */

/* Before the collect under test: old contexts, one flush, then the traffic
 * of bucket T0 (closed at T0+15) and some of bucket T0+10 (open). */
static void history(struct aggr *a)
{
	char n[64], t[64];
	for (int j = 0; j < NZX; j++) {
		snprintf(n, sizeof(n), "zx.%d", j);
		put(a, n, METRIC_COUNT, 1, "k:zx", T0 - 295);
		put(a, n, METRIC_COUNT, 1, "k:zx", T0 - 294); /* cached */
	}
	for (int j = 0; j < NOG; j++) {
		snprintf(n, sizeof(n), "og.%d", j);
		put(a, n, METRIC_GAUGE, j, "k:og", T0 - 40);
		put(a, n, METRIC_GAUGE, j + 1, "k:og", T0 - 40);
		snprintf(n, sizeof(n), "zc.%d", j);
		put(a, n, METRIC_COUNT, 2, "", T0 - 40);
	}
	batch_free(aggr_flush(a, T0 - 25, false));
	for (int i = 0; i < NC; i++) {
		snprintf(n, sizeof(n), "c.%d", i % 50);
		snprintf(t, sizeof(t), "i:%d,env:x", i);
		put(a, n, METRIC_COUNT, i, t, T0 + 1 + i % 9);
		if (i < 300) {
			snprintf(n, sizeof(n), "g.%d", i);
			put(a, n, METRIC_GAUGE, i, "a:b", T0 + 2);
			put(a, n, METRIC_GAUGE, i * 2, "a:b", T0 + 11);
		}
		if (i < 100) {
			snprintf(n, sizeof(n), "h.%d", i);
			for (int k = 0; k < 5; k++)
				put(a, n, METRIC_HISTOGRAM, i + k, "", T0 + 3 + k);
			snprintf(n, sizeof(n), "s.%d", i);
			for (int k = 0; k < 3; k++)
				put(a, n, METRIC_SET, k, "", T0 + 4);
			snprintf(n, sizeof(n), "d.%d", i);
			put(a, n, METRIC_DISTRIBUTION, i * 1.5, "q:r", T0 + 5);
			put(a, n, METRIC_DISTRIBUTION, i * 2.5, "q:r", T0 + 12);
		}
	}
	put_ts(a, "ts.g", 7, T0 - 100, T0 + 3);
	put_event(a, 1000, T0 + 4);
}

/* Batch i of the traffic fed between steps (now >= the begin's now). */
static void between(struct aggr *a, int i)
{
	int64_t now = T0 + 15 + (i >= 40 ? 6 : 0);
	char n[64], t[64];
	snprintf(n, sizeof(n), "nw.%d", i % 700); /* new, then existing */
	snprintf(t, sizeof(t), "k:%d", i);
	put(a, n, METRIC_COUNT, 1, t, now);
	put(a, n, METRIC_COUNT, 1, t, now);
	snprintf(n, sizeof(n), "c.%d", i % 50);
	snprintf(t, sizeof(t), "i:%d,env:x", i % NC);
	put(a, n, METRIC_COUNT, 3, t, now);
	put(a, n, METRIC_COUNT, 3, t, now);
	snprintf(n, sizeof(n), "og.%d", i % NOG); /* revives an expiring gauge */
	put(a, n, METRIC_GAUGE, i, "k:og", now);
	put(a, n, METRIC_GAUGE, i + 0.5, "k:og", now);
	if (i % 3 == 0) {
		snprintf(n, sizeof(n), "zx.%d", i % NZX); /* an expiring counter */
		put(a, n, METRIC_COUNT, 1, "k:zx", now);
	}
	snprintf(n, sizeof(n), "h.%d", i % 100);
	put(a, n, METRIC_HISTOGRAM, i, "", now);
	snprintf(n, sizeof(n), "s.%d", i % 100);
	put(a, n, METRIC_SET, i, "", now);
	snprintf(n, sizeof(n), "g.%d", i % 300);
	put(a, n, METRIC_GAUGE, -i, "a:b", now);
	if (i % 50 == 0) {
		put_ts(a, "ts.b", i, T0 - 50, now);
		put_event(a, i, now);
	}
}

static void equivalence(size_t step)
{
	struct aggr_config cfg = base_config();
	struct aggr *one = fixture_aggr_new(&cfg), *inc = fixture_aggr_new(&cfg);
	cr_assert(one && inc);
	history(one);
	history(inc);

	cr_assert_eq(aggr_collect_begin(inc, T0 + 15, false), 0);
	int nb = 0;
	while (!aggr_collect_step(inc, step))
		between(inc, nb++);
	struct lines got = emit_free(&cfg, aggr_collect_end(inc), T0 + 15);
	cr_assert_gt(nb, 0);
	struct lines want = emit_free(&cfg, aggr_collect(one, T0 + 15, false), T0 + 15);
	for (int i = 0; i < nb; i++)
		between(one, i);
	same_lines(&want, &got, "this collect");
	cr_assert_eq(count_prefix(&want, "S zx.0|"), 4, "zx zero-fills then expires");
	cr_assert_eq(count_prefix(&want, "E ev1000|"), 1);
	cr_assert_eq(count_prefix(&want, "E ev0|"), 0, "pending swapped at begin");

	struct aggr_stats s1, s2;
	aggr_get_stats(one, &s1);
	aggr_get_stats(inc, &s2);
	cr_assert_gt(s1.contexts_expired, 0);
	lines_free(&want);
	lines_free(&got);

	/* the next collect: what came between the steps, and the zero-fills */
	want = emit_free(&cfg, aggr_collect(one, T0 + 35, false), T0 + 35);
	got = emit_free(&cfg, aggr_collect(inc, T0 + 35, false), T0 + 35);
	same_lines(&want, &got, "next collect");
	cr_assert_geq(count_prefix(&want, "S og.0|"), 1, "og.0 revived");
	cr_assert_eq(count_prefix(&want, "E ev0|"), 1);
	lines_free(&want);
	lines_free(&got);
	aggr_get_stats(one, &s1);
	aggr_get_stats(inc, &s2);
	cr_assert_eq(s2.contexts, s1.contexts);
	cr_assert_eq(s2.samples_in, s1.samples_in);
	aggr_free(one);
	aggr_free(inc);
}

Test(aggr_incr, equivalent_step_1) { equivalence(1); }
Test(aggr_incr, equivalent_step_7) { equivalence(7); }
Test(aggr_incr, equivalent_step_1000) { equivalence(1000); }

/* ---- (2) expiry in a step, revival between steps ---- */

static struct dsd_metric line(const char *name, double *v, struct sv *tag)
{
	*tag = SV_LIT("k:v");
	return (struct dsd_metric){ .name = sv_from_cstr(name), .type = METRIC_COUNT,
				    .values = v, .nvalues = 1, .sample_rate = 1, .tags = tag,
				    .ntags = 1, .raw_suffix = SV_LIT("|#k:v"), .cacheable = true };
}

Test(aggr_incr, expired_in_step_then_revived)
{
	struct aggr_config cfg = base_config();
	struct aggr *a = fixture_aggr_new(&cfg);
	char n[16];
	for (int j = 0; j < 10; j++) {
		snprintf(n, sizeof(n), "c.%d", j);
		put(a, n, METRIC_COUNT, 1, "k:v", T0 - 295);
		put(a, n, METRIC_COUNT, 1, "k:v", T0 - 295);
	}
	cr_assert(put(a, "c.0", METRIC_COUNT, 1, "k:v", T0 - 294), "cached before");
	batch_free(aggr_flush(a, T0 - 25, false));

	cr_assert_eq(aggr_collect_begin(a, T0 + 15, false), 0);
	cr_assert_not(aggr_collect_step(a, 1)); /* c.0: zero-fills T0-30..T0, expired */
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts_expired, 1);
	cr_assert_eq(st.contexts, 9);
	double v = 5;
	struct sv tag;
	struct dsd_metric m = line("c.0", &v, &tag);
	cr_assert_not(aggr_ingest_seen(a, &m, T0 + 15), "the cache must not hold the dead one");
	aggr_ingest(a, &m, T0 + 15); /* a fresh context (maybe in c.0's slot) */
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 10);
	cr_assert_eq(st.contexts_created, 11);
	put(a, "c.5", METRIC_COUNT, 7, "k:v", T0 + 16); /* before its visit: not expired */
	while (!aggr_collect_step(a, 2))
		put(a, "c.0", METRIC_COUNT, 1, "k:v", T0 + 16); /* full path, then cached */
	struct lines ls = emit_free(&cfg, aggr_collect_end(a), T0 + 15);
	cr_assert_eq(ls.n, 40, "10 counters x 4 zero-fills, got %zu", ls.n);
	cr_assert_eq(count_prefix(&ls, "S c.0|myhost|k:v,|1699999970|1|10|0"), 1);
	cr_assert_eq(count_prefix(&ls, "S c.0|myhost|k:v,|1700000000|1|10|0"), 1);
	lines_free(&ls);
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts_expired, 9);
	cr_assert_eq(st.contexts, 2);

	ls = emit_free(&cfg, aggr_collect(a, T0 + 25, false), T0 + 25);
	cr_assert_eq(ls.n, 2);
	cr_assert_eq(count_prefix(&ls, "S c.0|myhost|k:v,|1700000010|1|10|0.90000000000000002"), 1,
		     "%s", ls.l[0]);
	cr_assert_eq(count_prefix(&ls, "S c.5|myhost|k:v,|1700000010|1|10|0.69999999999999996"), 1,
		     "%s", ls.l[1]);
	lines_free(&ls);
	aggr_free(a);
}

/* ---- (3) memory returned at end only if still no context ---- */

Test(aggr_incr, slab_kept_for_context_created_during_collect)
{
	struct aggr_config cfg = base_config();
	cfg.expiry_seconds = 30;
	struct aggr *a = fixture_aggr_new(&cfg);
	put(a, "z", METRIC_COUNT, 1, "", T0 - 70); /* slab index 0 */
	put(a, "x", METRIC_GAUGE, 1, "", T0 - 70); /* 1 and 2: expire first */
	put(a, "y", METRIC_GAUGE, 1, "", T0 - 70);
	batch_free(aggr_flush(a, T0 - 45, false));
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 1);
	cr_assert_eq(aggr_collect_begin(a, T0 + 15, false), 0);
	cr_assert_not(aggr_collect_step(a, 1)); /* z expired: no context left */
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 0);
	put(a, "g.new", METRIC_GAUGE, 3, "", T0 + 15);
	cr_assert_not(aggr_collect_step(a, 1)); /* the freed slots of x and y: still there */
	cr_assert(aggr_collect_step(a, 1));
	aggr_out_free(aggr_collect_end(a));
	put(a, "g.new", METRIC_GAUGE, 4, "", T0 + 16); /* its slab must still exist */
	struct lines ls = emit_free(&cfg, aggr_collect(a, T0 + 20, false), T0 + 20);
	cr_assert_eq(ls.n, 1);
	cr_assert_str_eq(ls.l[0], "S g.new|myhost||1700000010|0|0|4");
	lines_free(&ls);
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, 1);
	aggr_free(a);
}

/* ---- (4) aggr_free in the middle of a collect ---- */

Test(aggr_incr, free_during_collect)
{
	struct aggr_config cfg = base_config();
	struct aggr *a = fixture_aggr_new(&cfg);
	history(a);
	cr_assert_eq(aggr_collect_begin(a, T0 + 15, false), 0);
	cr_assert_not(aggr_collect_step(a, 50));
	between(a, 0);
	aggr_free(a); /* ASan's leak check and use-after-free detection */
}
