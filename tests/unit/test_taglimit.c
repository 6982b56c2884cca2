/*
 * test_taglimit.c - the cardinality guard: tag value limits per metric
 * (aggr/taglimit.h), static tag rules (aggr/tagrules.h) and the memory limit,
 * driven through the ingest loop with the seen-line cache on (as
 * pipeline.c drives them), so that a line the cache knows is checked too.
 *
 * What is checked: a tag over the limit is removed and the sample lands in
 * the context without it (counter totals, gauge last values, histogram
 * counts exact); values already tracked keep their tag, also through the
 * cache; values expire with their contexts and room opens again; a reload
 * lowers or raises the limit; drop_sample refuses and counts per metric;
 * two pipelines sharing one tracker keep at most `limit` values together and
 * their outs merge exactly; glob rules; the memory limit refuses and counts.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "aggr/taglimit.h"
#include "aggr/tagrules.h"
#include "parse/parse.h"
#include "fixture.h"
#include "fixture_feed.h"

#define T0 1700000000 /* a bucket boundary */

static void cfg_init(struct aggr_config *c, size_t limit)
{
	fixture_aggr_config(c);
	c->hostname = "h";
	c->expiry_seconds = 30;
	c->histogram_aggregates = HIST_AGG_DEFAULT | HIST_AGG_SUM;
	c->set_exact_max = 1000;
	c->tag_value_limit = limit;
	c->pipeline_count = 1;
}

struct side {
	struct dsd_parser *p;
	struct aggr *a;
};

static const struct dsd_limits lim = { 1024, 256, 1024, 1024 };

static void side_init(struct side *s, const struct aggr_config *c, struct taglimit *shared)
{
	s->p = dsd_parser_new(&lim);
	s->a = shared ? aggr_new_shared(c, shared) : aggr_new(c);
	cr_assert(s->p && s->a);
}

static void side_done(struct side *s)
{
	aggr_free(s->a);
	dsd_parser_free(s->p);
}

static void sendf(struct side *s, int64_t now, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void sendf(struct side *s, int64_t now, const char *fmt, ...)
{
	char buf[4096];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fixture_feed(s->p, s->a, buf, (size_t)n, now, true);
}

/* ---- reading a batch ---- */

static const struct series *find(const struct batch *b, const char *name, const char *tags)
{
	char j[1024];
	for (size_t i = 0; i < b->nseries; i++) {
		fixture_join_tags(b->series[i].tags, b->series[i].ntags, j, sizeof(j));
		if (!strcmp(b->series[i].name, name) && !strcmp(j, tags))
			return &b->series[i];
	}
	return NULL;
}

static double value_of(const struct batch *b, const char *name, const char *tags)
{
	const struct series *s = find(b, name, tags);
	cr_assert(s, "no series %s{%s}", name, tags);
	return s->value;
}

/* Sum over the series called name (a counter's total: value * interval). */
static double total(const struct batch *b, const char *name, size_t *nseries)
{
	double t = 0;
	*nseries = 0;
	for (size_t i = 0; i < b->nseries; i++)
		if (!strcmp(b->series[i].name, name)) {
			t += b->series[i].value * (b->series[i].interval ? b->series[i].interval : 1);
			(*nseries)++;
		}
	return t;
}

static struct aggr_stats stats(const struct aggr *a)
{
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	return st;
}

/* ---- the test's pipeline ---- */

/* The test's one pipeline and the batch of its last flush_at(); the suites'
 * fini frees both. */
static struct side s;
static struct batch *flushed;

static void release(void)
{
	batch_free(flushed);
	side_done(&s);
}

TestSuite(taglimit, .fini = release);
TestSuite(tagrules, .fini = release);
TestSuite(memlimit, .fini = release);

/* A config with this tag value limit (see cfg_init). */
static struct aggr_config limit_config(size_t limit)
{
	struct aggr_config c;
	cfg_init(&c, limit);
	return c;
}

/* Flushes s at t: the batch stays valid until the next flush_at(). */
static const struct batch *flush_at(int64_t t)
{
	batch_free(flushed);
	flushed = aggr_flush(s.a, t, false);
	return flushed;
}

/* ---- tag value limits ---- */

/* Flushes far past every expiry and checks nothing is left: no context, and
 * no value of metric's "id" tag tracked in tl. */
static void expect_all_expired(struct taglimit *tl, const char *metric)
{
	flush_at(T0 + 200);
	cr_assert_eq(stats(s.a).contexts, 0);
	cr_assert_eq(taglimit_values(tl, sv_from_cstr(metric), SV_LIT("id")), 0, "%s", metric);
}

Test(taglimit, strips_over_limit_totals_exact)
{
	struct aggr_config c = limit_config(3);
	side_init(&s, &c, NULL);
	/* 10 ids, each twice (the second sighting goes through the cache),
	 * plus a second tag that stays */
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < 10; i++) {
			sendf(&s, T0 + 1, "req:%d|c|#id:%d,env:prod", i + 1, i);
			sendf(&s, T0 + 1, "temp:%d|g|#id:%d", i, i);
			sendf(&s, T0 + 1, "lat:%d|h|#id:%d", i, i);
		}
	const struct batch *b = flush_at(T0 + 10);
	cr_assert(b);
	size_t n;
	cr_assert_eq(total(b, "req", &n), 2 * 55.0);
	cr_assert_eq(n, 4); /* 3 tagged + 1 without id */
	cr_assert_eq(value_of(b, "req", "env:prod,id:0"), 2 * 1 / 10.0);
	cr_assert_eq(value_of(b, "req", "env:prod") * 10, 2 * (4 + 5 + 6 + 7 + 8 + 9 + 10));
	cr_assert_eq(value_of(b, "temp", "id:2"), 2);
	cr_assert_eq(value_of(b, "temp", ""), 9); /* the last value sent without its tag */
	/* every histogram sample counted once: .count is a rate over 10 s */
	cr_assert_eq(total(b, "lat.count", &n), 20);
	cr_assert_eq(n, 4);
	cr_assert_eq(value_of(b, "lat.max", ""), 9);
	struct aggr_stats st = stats(s.a);
	cr_assert_eq(st.tag_limited, 3 * 7 * 2);
	cr_assert_eq(taglimit_values(aggr_taglimit(s.a), SV_LIT("req"), SV_LIT("id")), 3);
	cr_assert_eq(taglimit_values(aggr_taglimit(s.a), SV_LIT("req"), SV_LIT("env")), 1);
	/* tracked values keep their tag (also after the limit bit) */
	sendf(&s, T0 + 11, "req:1|c|#id:1,env:prod");
	sendf(&s, T0 + 11, "req:1|c|#id:1,env:prod");
	b = flush_at(T0 + 20);
	cr_assert_eq(value_of(b, "req", "env:prod,id:1"), 0.2);
}

Test(taglimit, report_and_only_new)
{
	struct aggr_config c = limit_config(2);
	side_init(&s, &c, NULL);
	for (int i = 0; i < 5; i++) {
		sendf(&s, T0, "a:1|c|#id:%d", i);
		sendf(&s, T0, "b:1|c|#pod:%d,id:%d", i, i % 2);
	}
	struct taglimit_row r[4];
	struct taglimit *tl = aggr_taglimit(s.a);
	size_t n = taglimit_report(tl, r, 4, true);
	cr_assert_eq(n, 2);
	cr_assert_str_eq(r[0].metric, "a"); /* 3 samples affected; b's pod: 3 too, a first in order */
	cr_assert_str_eq(r[0].key, "id");
	cr_assert_eq(r[0].values, 2);
	cr_assert_eq(r[0].stripped, 3);
	cr_assert_str_eq(r[1].metric, "b");
	cr_assert_str_eq(r[1].key, "pod");
	cr_assert_eq(taglimit_report(tl, r, 4, true), 0, "one warning per metric and key");
	sendf(&s, T0, "a:1|c|#id:9");
	cr_assert_eq(taglimit_report(tl, r, 4, true), 0);
	cr_assert_eq(taglimit_report(tl, r, 4, false), 2);
	cr_assert_eq(r[0].stripped, 4);
	cr_assert_eq(taglimit_limited_keys(tl), 2);
}

Test(taglimit, values_expire_with_contexts)
{
	struct aggr_config c = limit_config(2);
	side_init(&s, &c, NULL);
	struct taglimit *tl = aggr_taglimit(s.a);
	for (int i = 0; i < 4; i++)
		sendf(&s, T0 + 1, "g:1|g|#id:%d", i);
	cr_assert_eq(taglimit_values(tl, SV_LIT("g"), SV_LIT("id")), 2);
	flush_at(T0 + 10);
	/* id:0 stays alive, id:1 falls silent; gauges expire 20 s after their last sample */
	for (int64_t t = T0 + 11; t < T0 + 40; t += 5) {
		sendf(&s, t, "g:1|g|#id:0");
		sendf(&s, t, "g:1|g|#id:0");
		flush_at(t + 4);
	}
	cr_assert_eq(taglimit_values(tl, SV_LIT("g"), SV_LIT("id")), 1, "id:1 expired with its context");
	/* room again: a new value keeps its tag; the cached id:0 line too */
	sendf(&s, T0 + 41, "g:7|g|#id:5");
	sendf(&s, T0 + 41, "g:8|g|#id:6");
	sendf(&s, T0 + 41, "g:3|g|#id:0");
	const struct batch *b = flush_at(T0 + 50);
	cr_assert_eq(value_of(b, "g", "id:5"), 7);
	cr_assert_eq(value_of(b, "g", "id:0"), 3);
	cr_assert_eq(value_of(b, "g", ""), 8);
	/* every context gone: nothing tracked */
	expect_all_expired(tl, "g");
}

Test(taglimit, cached_line_follows_the_stripped_context)
{
	struct aggr_config c = limit_config(1);
	side_init(&s, &c, NULL);
	sendf(&s, T0, "x:1|c|#id:a");
	/* id:b is stripped: its line is never cached (each sample counted,
	 * and the tag comes back when there is room) */
	for (int i = 0; i < 5; i++)
		sendf(&s, T0, "x:1|c|#id:b");
	sendf(&s, T0, "x:1|c|#id:a"); /* remembered on its second sighting */
	sendf(&s, T0, "x:1|c|#id:a");
	cr_assert_eq(stats(s.a).seen_hits, 1, "id:a's line is cached");
	cr_assert_eq(stats(s.a).tag_limited, 5);
	const struct batch *b = flush_at(T0 + 10);
	cr_assert_eq(value_of(b, "x", "id:a"), 0.3);
	cr_assert_eq(value_of(b, "x", ""), 0.5);
	/* id:a expires (no sample for expiry_seconds): id:b gets its tag */
	for (int64_t t = T0 + 20; t <= T0 + 60; t += 10)
		flush_at(t);
	sendf(&s, T0 + 61, "x:1|c|#id:b");
	sendf(&s, T0 + 61, "x:1|c|#id:c");
	b = flush_at(T0 + 70);
	cr_assert_eq(value_of(b, "x", "id:b"), 0.1);
	cr_assert_eq(value_of(b, "x", ""), 0.1);
}

Test(taglimit, reload_changes_the_limit)
{
	struct aggr_config c, c2;
	cfg_init(&c, 5);
	side_init(&s, &c, NULL);
	struct taglimit *tl = aggr_taglimit(s.a);
	for (int i = 0; i < 4; i++)
		sendf(&s, T0, "m:1|c|#id:%d", i);
	/* lower: the 4 tracked values stay, no new one until fewer than 2 */
	c2 = c;
	c2.tag_value_limit = 2;
	aggr_reconfigure(s.a, &c2);
	sendf(&s, T0, "m:1|c|#id:7");
	sendf(&s, T0, "m:1|c|#id:3");
	cr_assert_eq(taglimit_values(tl, SV_LIT("m"), SV_LIT("id")), 4);
	/* raise: new values again */
	c2.tag_value_limit = 6;
	aggr_reconfigure(s.a, &c2);
	sendf(&s, T0, "m:1|c|#id:8");
	sendf(&s, T0, "m:1|c|#id:9");
	sendf(&s, T0, "m:1|c|#id:10");
	cr_assert_eq(taglimit_values(tl, SV_LIT("m"), SV_LIT("id")), 6);
	const struct batch *b = flush_at(T0 + 10);
	size_t n;
	cr_assert_eq(total(b, "m", &n), 9);
	cr_assert_eq(n, 7);
	cr_assert_eq(value_of(b, "m", "") * 10, 2); /* id:7 and id:10 */
	/* 0: no limit, and no bookkeeping */
	c2.tag_value_limit = 0;
	aggr_reconfigure(s.a, &c2);
	cr_assert_eq(taglimit_values(tl, SV_LIT("m"), SV_LIT("id")), 0);
	for (int i = 100; i < 200; i++)
		sendf(&s, T0 + 10, "m:1|c|#id:%d", i);
	cr_assert_eq(taglimit_values(tl, SV_LIT("m"), SV_LIT("id")), 0);
	cr_assert_eq(stats(s.a).contexts, 107);
	/* a limit again: the live contexts are registered (106 ids, over
	 * the new limit: they stay), a new id loses its tag */
	c2.tag_value_limit = 50;
	aggr_reconfigure(s.a, &c2);
	cr_assert_eq(taglimit_values(tl, SV_LIT("m"), SV_LIT("id")), 106);
	sendf(&s, T0 + 10, "m:1|c|#id:500");
	sendf(&s, T0 + 10, "m:1|c|#id:150");
	cr_assert_eq(stats(s.a).contexts, 107);
	b = flush_at(T0 + 20);
	cr_assert_eq(value_of(b, "m", "") * 10, 1);
	cr_assert_eq(value_of(b, "m", "id:150") * 10, 2);
	/* everything expires: nothing left tracked */
	expect_all_expired(tl, "m");
}

Test(taglimit, drop_sample_counts_per_metric)
{
	struct aggr_config c = limit_config(2);
	c.tag_limit_drop = true;
	side_init(&s, &c, NULL);
	for (int i = 0; i < 6; i++)
		sendf(&s, T0, "d:1|c|#id:%d,k:v", i);
	struct aggr_stats st = stats(s.a);
	cr_assert_eq(st.dropped[AGGR_DROP_TAG_LIMIT], 4);
	cr_assert_eq(st.tag_limited, 0);
	struct aggr_top_entry top[2];
	cr_assert_eq(aggr_top(s.a, top, 2), 1);
	cr_assert_eq(top[0].refused, 4);
	cr_assert_eq(top[0].contexts, 2);
	/* the dropped samples took no reference (k:v counted once per context) */
	cr_assert_eq(taglimit_values(aggr_taglimit(s.a), SV_LIT("d"), SV_LIT("k")), 1);
	struct taglimit_row r;
	cr_assert_eq(taglimit_report(aggr_taglimit(s.a), &r, 1, false), 1);
	cr_assert_eq(r.dropped, 4);
}

Test(taglimit, shared_between_pipelines_merges_exactly)
{
	struct aggr_config c = limit_config(10);
	struct taglimit *tl = taglimit_new();
	struct side p[2];
	side_init(&p[0], &c, tl);
	side_init(&p[1], &c, tl);
	double sent = 0;
	for (int i = 0; i < 100; i++) {
		/* the same ids reach both pipelines, in different orders */
		sendf(&p[0], T0 + 1, "bomb:%d|c|#instance_id:%d", i + 1, i);
		sendf(&p[1], T0 + 1, "bomb:2|c|#instance_id:%d", 99 - i);
		sent += i + 1 + 2;
	}
	cr_assert_eq(taglimit_values(tl, SV_LIT("bomb"), SV_LIT("instance_id")), 10);
	struct aggr_out *outs[2] = { aggr_collect(p[0].a, T0 + 10, false),
				     aggr_collect(p[1].a, T0 + 10, false) };
	struct aggr_emit_stats es;
	struct batch *b = aggr_emit(&c, outs, 2, T0 + 10, false, &es);
	cr_assert(b);
	size_t n;
	cr_assert_eq(total(b, "bomb", &n), sent);
	cr_assert_leq(n, 11, "at most the limit plus the context without the tag: %zu", n);
	cr_assert_gt(es.merged, 0);
	batch_free(b);
	aggr_out_free(outs[0]);
	aggr_out_free(outs[1]);
	side_done(&p[0]);
	cr_assert_eq(taglimit_values(tl, SV_LIT("bomb"), SV_LIT("instance_id")), 10);
	side_done(&p[1]);
	cr_assert_eq(taglimit_values(tl, SV_LIT("bomb"), SV_LIT("instance_id")), 0);
	taglimit_unref(tl);
}

/* ---- static rules ---- */

Test(tagrules, globs)
{
	cr_assert(tagrules_glob(SV_LIT("*"), SV_LIT("")));
	cr_assert(tagrules_glob(SV_LIT("inst*"), SV_LIT("instance_id")));
	cr_assert(tagrules_glob(SV_LIT("*_id"), SV_LIT("instance_id")));
	cr_assert(tagrules_glob(SV_LIT("i?st*_*d"), SV_LIT("instance_id")));
	cr_assert(!tagrules_glob(SV_LIT("inst"), SV_LIT("instance_id")));
	cr_assert(!tagrules_glob(SV_LIT("*_idx"), SV_LIT("instance_id")));
	cr_assert(tagrules_glob(SV_LIT("a*b*c"), SV_LIT("aXbYbZc")));
	cr_assert(!tagrules_glob(SV_LIT("a*b*c"), SV_LIT("aXbYbZ")));
	cr_assert(tagrules_check("user_id|checkout.*") == NULL);
	cr_assert(tagrules_check("|x") != NULL);
	cr_assert(tagrules_check("a|") != NULL);
	cr_assert(tagrules_check("a|b|c") != NULL);
	cr_assert(tagrules_check("id:1") != NULL);
}

Test(tagrules, exclude_before_aggregation)
{
	static char *rules[] = { "instance_id", "req_*", "user_id|checkout.*", "*tmp?" };
	struct aggr_config c = limit_config(0);
	c.tags_exclude = rules;
	c.ntags_exclude = 4;
	side_init(&s, &c, NULL);
	for (int i = 0; i < 3; i++) {
		sendf(&s, T0, "checkout.ok:1|c|#instance_id:%d,user_id:%d,req_path:/x,env:a,xtmp1:z", i, i);
		sendf(&s, T0, "login.ok:1|c|#instance_id:%d,user_id:u,env:a,tmp:y", i);
	}
	const struct batch *b = flush_at(T0 + 10);
	size_t n;
	cr_assert_eq(value_of(b, "checkout.ok", "env:a"), 0.3);
	cr_assert_eq(value_of(b, "login.ok", "env:a,tmp:y,user_id:u"), 0.3);
	cr_assert_eq(total(b, "checkout.ok", &n), 3);
	cr_assert_eq(n, 1);
	cr_assert_eq(stats(s.a).tags_excluded, 3 * 4 + 3 * 1);
	/* a reload without rules keeps every tag (the cache is cleared) */
	struct aggr_config c2 = c;
	c2.ntags_exclude = 0;
	c2.tags_exclude = NULL;
	aggr_reconfigure(s.a, &c2);
	sendf(&s, T0 + 10, "login.ok:1|c|#instance_id:0,user_id:u,env:a,tmp:y");
	b = flush_at(T0 + 20);
	cr_assert_eq(value_of(b, "login.ok", "env:a,instance_id:0,tmp:y,user_id:u"), 0.1);
}

/* ---- memory limit ---- */

Test(memlimit, refuses_new_contexts_and_counts)
{
	struct aggr_config c = limit_config(0);
	c.memory_limit = 1; /* below what an empty aggregator holds */
	side_init(&s, &c, NULL);
	for (int i = 0; i < 10; i++)
		sendf(&s, T0, "mem:1|c|#id:%d", i);
	struct aggr_stats st = stats(s.a);
	cr_assert_eq(st.contexts, 0);
	cr_assert_eq(st.dropped[AGGR_DROP_MEMORY_LIMIT], 10);
	/* with room, contexts again up to the limit */
	struct aggr_config c2 = c;
	c2.memory_limit = st.memory_bytes + 2 * 4096 * 80;
	aggr_reconfigure(s.a, &c2);
	for (int i = 0; i < 50000; i++)
		sendf(&s, T0, "mem:1|c|#id:%d", i);
	st = stats(s.a);
	cr_assert_gt(st.contexts, 0);
	cr_assert_lt(st.contexts, 50000);
	cr_assert_gt(st.dropped[AGGR_DROP_MEMORY_LIMIT], 10);
	cr_assert_leq(st.memory_bytes, c2.memory_limit + 4096 * 80 + 4096,
		      "over by at most one slab chunk and one entry: %zu", st.memory_bytes);
	struct aggr_top_entry top;
	cr_assert_eq(aggr_top(s.a, &top, 1), 1);
	/* the first 10 came before the metric had a context to count them on */
	cr_assert_eq(top.refused, st.dropped[AGGR_DROP_MEMORY_LIMIT] - 10);
}
