/*
 * test_seen.c - the seen-line cache (ingest_batch, aggr_ingest_seen(_run))
 * must not change anything observable: the same datagrams through the full
 * parse (ingest_batch_full) and through the cache give identical parser stats,
 * aggregator stats and flushed batches, field by field; datagrams longer
 * than the parser's 64-line window also match a line-by-line parse. Also:
 * the cache is bounded, cleared by expiry and by aggr_reconfigure, and hits
 * at all. And the context table (ctab.h) under colliding tags.
 *
 * Links ingest (parse + aggr).
 * Every scenario checks that the cache actually took lines, so a cache that
 * never hits cannot pass as "equivalent".
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "aggr/aggr_int.h" /* struct seen: the bound */
#include "aggr/hist.h"
#include "core/buf.h"
#include "ingest/ingest.h"
#include "parse/parse.h"
#include "fixture.h"

#define T0 1700000000

static char *blacklist[] = { "datadog.agent" };
static double pct[] = { 0.5, 0.95 };
static char *gtags[] = { "env:prod", "team:a" };
static char *gtags2[] = { "env:staging" };
static char *tk[] = { "service" };
static char *tv[] = { "$1" };
static struct mapper_mapping mm[] = {
	{ .match = "web.*.req", .match_type = MAPPER_MATCH_WILDCARD, .name = "web.requests",
	  .tag_keys = tk, .tag_values = tv, .ntags = 1 },
};
static struct mapper_profile mp[] = { { .name = "web", .prefix = "web.", .mappings = mm,
					.nmappings = 1 } };

static void cfg_init(struct aggr_config *c)
{
	fixture_aggr_config(c);
	c->namespace = "ns";
	c->namespace_blacklist = blacklist;
	c->nnamespace_blacklist = 1;
	c->tags = gtags;
	c->ntags = 2;
	c->expiry_seconds = 30;
	c->histogram_percentiles = pct;
	c->nhistogram_percentiles = 2;
	c->gauge_deltas = true;
	c->max_contexts = 1000;
	c->max_contexts_per_metric = 6;
	c->set_exact_max = 100;
	c->mapper_profiles = mp;
	c->nmapper_profiles = 1;
}

/* How a side takes its lines. */
enum side_mode {
	SIDE_FULL,	/* ingest_batch_full: the full parse only */
	SIDE_ONE,	/* every candidate through aggr_ingest_seen, one by one, no prefetch */
	SIDE_INGEST,	/* ingest_batch, as pipeline.c: runs, prefetches */
};

/* One side of the comparison: a parser and an aggregator, with or without the cache. */
struct side {
	struct dsd_parser *p;
	struct aggr *a;
	enum side_mode mode;
	uint64_t hits;		/* lines the cache took */
	struct buf out;	/* every flushed batch, as JSON lines */
	struct batch *batches[64];
	size_t nbatches;
};

static void side_init(struct side *s, const struct aggr_config *c, const struct dsd_limits *lim,
		      enum side_mode mode)
{
	memset(s, 0, sizeof(*s));
	s->p = dsd_parser_new(lim);
	s->a = aggr_new(c);
	s->mode = mode;
	buf_init(&s->out);
	cr_assert(s->p && s->a);
}

static void side_done(struct side *s)
{
	for (size_t i = 0; i < s->nbatches; i++)
		batch_free(s->batches[i]);
	buf_done(&s->out);
	aggr_free(s->a);
	dsd_parser_free(s->p);
}

/* SIDE_ONE: the parser's windows without runs or prefetches; hits counted
 * here, apart from the aggregator's own count. */
static void feed_one(struct side *s, const struct dsd_datagram *d, int64_t now)
{
	dsd_split_begin(s->p, d, 1, true);
	for (struct dsd_window *w; (w = dsd_split_next(s->p))->n;) {
		for (size_t i = 0; i < w->n; i++) {
			struct dsd_metric q;
			if (w->line[i].kind != DSD_LINE_FULL && dsd_line_metric(s->p, w, i, &q) &&
			    aggr_ingest_seen(s->a, &q, now)) {
				dsd_count_cached(s->p, &q);
				s->hits++;
				continue;
			}
			ingest_line_full(s->p, s->a, w, i, now);
		}
	}
}

/* n bytes from an exactly sized heap copy (ASan sees any read past it). */
static void side_sendn(struct side *s, const char *dgram, size_t n, int64_t now)
{
	char *copy = malloc(n ? n : 1);
	cr_assert(copy);
	memcpy(copy, dgram, n);
	struct dsd_datagram d = { copy, n };
	struct aggr_stats st;
	switch (s->mode) {
	case SIDE_FULL:
		ingest_batch_full(s->p, s->a, &d, 1, now);
		break;
	case SIDE_ONE:
		feed_one(s, &d, now);
		break;
	case SIDE_INGEST:
		ingest_batch(s->p, s->a, &d, 1, now);
		aggr_get_stats(s->a, &st);
		s->hits = st.seen_hits;
		break;
	}
	free(copy);
}

static void side_send(struct side *s, const char *dgram, int64_t now)
{
	side_sendn(s, dgram, strlen(dgram), now);
}

static void side_flush(struct side *s, int64_t now, bool final)
{
	struct batch *b = aggr_flush(s->a, now, final);
	cr_assert(b);
	cr_assert_eq(batch_write_jsonl(b, &s->out), 0);
	cr_assert(s->nbatches < 64);
	s->batches[s->nbatches++] = b;
}

static void same_tags(const char *const *x, const char *const *y, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		cr_assert_str_eq(x[i], y[i]);
}

static void same_series(const struct series *x, const struct series *y)
{
	cr_assert_str_eq(x->name, y->name);
	cr_assert_str_eq(x->host, y->host);
	cr_assert_eq(x->ntags, y->ntags, "%s", x->name);
	same_tags(x->tags, y->tags, x->ntags);
	cr_assert_eq(x->kind, y->kind);
	cr_assert_eq(x->interval, y->interval);
	cr_assert_eq(x->ts, y->ts);
	cr_assert(memcmp(&x->value, &y->value, sizeof(double)) == 0, "%s: %.17g vs %.17g",
		  x->name, x->value, y->value);
}

static void same_sketch(const struct sketch_point *x, const struct sketch_point *y)
{
	cr_assert_str_eq(x->name, y->name);
	cr_assert_str_eq(x->host, y->host);
	cr_assert_eq(x->ntags, y->ntags);
	same_tags(x->tags, y->tags, x->ntags);
	cr_assert_eq(x->ts, y->ts);
	cr_assert_eq(x->cnt, y->cnt);
	cr_assert(x->min == y->min && x->max == y->max && x->sum == y->sum && x->avg == y->avg);
	cr_assert_eq(x->nbins, y->nbins);
	cr_assert(memcmp(x->keys, y->keys, x->nbins * sizeof(*x->keys)) == 0);
	cr_assert(memcmp(x->counts, y->counts, x->nbins * sizeof(*x->counts)) == 0);
}

/* Everything observable is identical; per_line: y got the same lines one
 * datagram each (its datagrams and bytes differ, nothing else may). */
static void same_sides_mode(struct side *x, struct side *y, bool per_line)
{
	struct dsd_stats px = *dsd_parser_stats(x->p), py = *dsd_parser_stats(y->p);
	if (per_line)
		py.datagrams = px.datagrams, py.bytes = px.bytes;
	cr_assert(memcmp(&px, &py, sizeof(px)) == 0,
		  "parser stats differ (lines %llu vs %llu, metric lines %llu vs %llu)",
		  (unsigned long long)px.lines, (unsigned long long)py.lines,
		  (unsigned long long)px.metric_lines, (unsigned long long)py.metric_lines);
	struct aggr_stats ax, ay;
	aggr_get_stats(x->a, &ax);
	aggr_get_stats(y->a, &ay);
	cr_assert_eq(ax.samples_in, ay.samples_in);
	for (int i = 0; i < AGGR_DROP_COUNT; i++)
		cr_assert_eq(ax.dropped[i], ay.dropped[i], "dropped[%d]: %llu vs %llu", i,
			     (unsigned long long)ax.dropped[i], (unsigned long long)ay.dropped[i]);
	cr_assert_eq(ax.contexts, ay.contexts);
	cr_assert_eq(ax.contexts_created, ay.contexts_created);
	cr_assert_eq(ax.contexts_expired, ay.contexts_expired);
	cr_assert_eq(ax.series_flushed, ay.series_flushed);
	cr_assert_eq(ax.sketches_flushed, ay.sketches_flushed);
	cr_assert_eq(ax.events, ay.events);
	cr_assert_eq(ax.service_checks, ay.service_checks);
	struct aggr_top_entry tx[16], ty[16];
	size_t nt = aggr_top(x->a, tx, 16);
	cr_assert_eq(nt, aggr_top(y->a, ty, 16));
	for (size_t i = 0; i < nt; i++) {
		cr_assert_str_eq(tx[i].name, ty[i].name);
		cr_assert_eq(tx[i].contexts, ty[i].contexts);
		cr_assert_eq(tx[i].refused, ty[i].refused, "%s refused", tx[i].name);
	}
	cr_assert_eq(x->nbatches, y->nbatches);
	for (size_t i = 0; i < x->nbatches; i++) {
		const struct batch *bx = x->batches[i], *by = y->batches[i];
		cr_assert_eq(bx->nseries, by->nseries, "batch %zu", i);
		for (size_t j = 0; j < bx->nseries; j++)
			same_series(&bx->series[j], &by->series[j]);
		cr_assert_eq(bx->nsketches, by->nsketches);
		for (size_t j = 0; j < bx->nsketches; j++)
			same_sketch(&bx->sketches[j], &by->sketches[j]);
		cr_assert_eq(bx->nevents, by->nevents);
		cr_assert_eq(bx->nchecks, by->nchecks);
	}
	cr_assert_eq(x->out.len, y->out.len);
	cr_assert(memcmp(x->out.p, y->out.p, x->out.len) == 0);
}

static void same_sides(struct side *x, struct side *y)
{
	same_sides_mode(x, y, false);
}

/* Lines that exercise every branch the cache could get wrong: the same
 * bytes again and again, near-duplicates that differ only in the suffix,
 * rates in and out of range, |T, sets, multi-values, signed gauges, host:
 * tags, the mapper and the namespace blacklist, bad values after a cached
 * name, bad tags and names that must be rejected every time, caps. */
static const char *const dgrams[] = {
	"a.count:1|c|#x:1,y:2\na.count:2|c|#x:1,y:2\na.count:3|c|#y:2,x:1",
	"a.count:1|c|@0.5|#x:1,y:2\na.count:1|c|#x:1,y:2|@0.5\na.count:4|c|@0.25",
	"a.count:1|c|@2|#x:1\na.count:1|c|@2|#x:1\na.count:1|c|@0|#x:1\na.count:1|c|@abc",
	"a.gauge:5|g|#g\na.gauge:+3|g|#g\na.gauge:-1|g|#g\na.gauge:7|g|#g\na.gauge:+1:+1|g|#g",
	"a.gauge:+2|g|#g\na.gauge:1.5|g|#g|host:h1\na.gauge:2.5|g|#g,host:h2\na.gauge:3|g|#g,host:",
	"a.timer:10|ms|#t\na.timer:20:30:40|ms|#t\na.hist:1.25|h|#t\na.hist:2|h|@0.5|#t",
	"a.dist:3|d|#t\na.dist:4|d|@0.1|#t\na.dist:5:6|d|#t\na.dist:3|d|#t",
	"a.set:u1|s|#t\na.set:u2|s|#t\na.set:u1|s|#t\na.set:u3|s",
	"a.ts:5|g|T1699999000|#t\na.ts:5|g|T1699999000|#t\na.ts:2|c|T1699999000\na.ts:1|h|T1699999000",
	"web.shop.req:1|c|#k\nweb.shop.req:1|c|#k\nweb.cart.req:1|c|#k\ndatadog.agent.x:1|c\ndatadog.agent.x:1|c",
	"a.count:abc|c|#x:1,y:2\na.count:nan|c|#x:1,y:2\na.count:|c|#x:1,y:2\na.count:1|x|#x:1,y:2",
	"a.count:1|c|#x:1,y:2\na.count:1e3|c|#x:1,y:2\na.count:0x10|c|#x:1,y:2\na.count:-0|c|#x:1,y:2",
	"bad\xff:1|c\nbad\xff:1|c\nb:1|c|#t\xff\nb:1|c|#t\xff\nb:1|c|#ok\nb:1|c|#ok",
	"cap.m:1|c|#i:1\ncap.m:1|c|#i:2\ncap.m:1|c|#i:3\ncap.m:1|c|#i:4\ncap.m:1|c|#i:5\ncap.m:1|c|#i:6",
	"cap.m:1|c|#i:7\ncap.m:1|c|#i:7\ncap.m:2|c|#i:8\ncap.m:1|c|#i:1\ncap.m:1|c|#i:7",
	"a.count:1|c|c:abc|#x:1,y:2\na.count:1|c|c:abc|#x:1,y:2\na.count:1|c|card:low\na.count:1|c|",
	"a.count:1|c|#x:1,y:2\r\na.count:1|c|#x:1,y:2\r\nz:1.5:2.25:+3|ms\nz:1.5:2.25:+3|ms\nz:1:2|c",
	"_e{5,4}:title|text|#t\n_sc|check|0|#t\na.count:1|c|#x:1,y:2\n:1|c\nnoval|c\nx:1",
	"many:1:2:3:4:5|c|#t\nmany:1:2:3:4:5|c|#t\nmany:1:2:3:4:5:6:7:8:9|c|#t\nmany:1:2:3:4:5:6:7:8:9|c|#t",
	"tags:1|c|#a,b,c,d,e,f,g,h,i\ntags:1|c|#a,b,c,d,e,f,g,h,i\nlongtag:1|c|#0123456789012345678901234567890123456789",
	"longtag:1|c|#0123456789012345678901234567890123456789",
};

/* A schedule over several buckets: sends, flushes (some expire contexts),
 * a reconfigure, and the final flush. */
static void run(struct side *s, const struct aggr_config *c2)
{
	size_t nd = sizeof(dgrams) / sizeof(dgrams[0]);
	int64_t t = T0;
	for (int round = 0; round < 8; round++) {
		for (size_t r = 0; r < 3; r++)
			for (size_t i = 0; i < nd; i++)
				side_send(s, dgrams[(i + r + (size_t)round) % nd], t + (int64_t)r);
		if (round == 3)
			aggr_reconfigure(s->a, c2);
		if (round == 5)
			t += 60; /* a gap: every context expires at the next flush */
		t += 7;
		side_flush(s, t, false);
		/* lines of the current bucket between flushes */
		for (size_t i = 0; i < nd; i += 3)
			side_send(s, dgrams[i], t);
	}
	side_flush(s, t + 100, true);
}

static struct dsd_limits test_limits(void)
{
	struct dsd_limits lim = DSD_LIMITS_DEFAULT;
	lim.max_tags = 8;
	lim.max_tag_len = 32;
	lim.max_values = 6;
	return lim;
}

static void same_result_as_full_parse(void)
{
	struct aggr_config c, c2;
	cfg_init(&c);
	cfg_init(&c2);
	c2.tags = gtags2;
	c2.ntags = 1;
	c2.namespace = "";
	c2.nmapper_profiles = 0;
	struct dsd_limits lim = test_limits();
	struct side full, cached, runs;
	side_init(&full, &c, &lim, SIDE_FULL);
	side_init(&cached, &c, &lim, SIDE_ONE);
	side_init(&runs, &c, &lim, SIDE_INGEST);
	run(&full, &c2);
	run(&cached, &c2);
	run(&runs, &c2);
	cr_assert_eq(full.hits, 0);
	cr_assert_gt(cached.hits, 500, "the cache took only %llu lines",
		     (unsigned long long)cached.hits);
	struct aggr_stats st;
	aggr_get_stats(cached.a, &st);
	cr_assert_eq(st.seen_hits, cached.hits);
	cr_assert_eq(st.seen_entries, cached.a->seen.n);
	same_sides(&full, &cached);
	/* runs and prefetches take the same lines */
	cr_assert_eq(runs.hits, cached.hits);
	same_sides(&full, &runs);
	side_done(&full);
	side_done(&cached);
	side_done(&runs);
}

Test(seen, same_result_as_full_parse)
{
	same_result_as_full_parse();
}

/* The same with the portable cache key (parse/keyhash.h) where the CPU
 * would give the AES one: the parser's inlined key and the aggregator's
 * must agree in both implementations. */
Test(seen, same_result_with_the_portable_key)
{
	cr_assert(!dsd_key_use_aes(false));
	same_result_as_full_parse();
}

Test(seen, same_result_with_gauge_deltas_off_and_no_caps)
{
	struct aggr_config c;
	cfg_init(&c);
	c.gauge_deltas = false;
	c.max_contexts = 0;
	c.max_contexts_per_metric = 0;
	c.namespace = "";
	c.ntags = 0;
	struct side full, cached;
	side_init(&full, &c, NULL, SIDE_FULL);
	side_init(&cached, &c, NULL, SIDE_ONE);
	run(&full, &c);
	run(&cached, &c);
	cr_assert_gt(cached.hits, 500);
	same_sides(&full, &cached);
	side_done(&full);
	side_done(&cached);
}

/* A side with the prefetching cache and no context caps (c must outlive it). */
static void side_init_uncapped(struct side *s, struct aggr_config *c)
{
	cfg_init(c);
	c->max_contexts = 0;
	c->max_contexts_per_metric = 0;
	side_init(s, c, NULL, SIDE_INGEST);
}

/* aggr_reserve (what a pipeline calls at start): the seen table at its first
 * size and the first slab chunk exist before any traffic, and 16,384 lines
 * are remembered without the table growing, so a first burst writes no fresh
 * table pages; the lines still hit and aggregate as without it. */
Test(seen, reserve_before_traffic)
{
	struct aggr_config c;
	struct side s;
	side_init_uncapped(&s, &c);
	aggr_reserve(s.a);
	cr_assert_eq(s.a->seen.cap * sizeof(struct seen_ent), (size_t)2 << 20);
	cr_assert_eq(s.a->slab.nchunks, 1);
	const struct seen_ent *t = s.a->seen.t;
	aggr_reserve(s.a); /* twice: nothing new */
	cr_assert_eq(s.a->seen.t, t);
	cr_assert_eq(s.a->slab.nchunks, 1);
	char line[128];
	for (int pass = 0; pass < 3; pass++)
		for (int i = 0; i < 16384; i++) {
			snprintf(line, sizeof(line), "r:1|c|#i:%d", i);
			side_send(&s, line, T0);
		}
	cr_assert_eq(s.a->seen.t, t, "16,384 lines fit the reserved table");
	cr_assert_eq(s.a->seen.n, 16384);
	cr_assert_eq(s.hits, 16384);
	struct aggr_stats st;
	aggr_get_stats(s.a, &st);
	cr_assert_eq(st.contexts, 16384);
	cr_assert_eq(st.samples_in, 3 * 16384);
	side_done(&s);
}

Test(seen, bounded_entries)
{
	struct aggr_config c;
	struct side s;
	side_init_uncapped(&s, &c);
	char line[128];
	for (int i = 0; i < SEEN_MAX + 5000; i++) {
		snprintf(line, sizeof(line), "u:1|c|#i:%d", i);
		side_send(&s, line, T0);
	}
	cr_assert_eq(s.a->seen.n, 0, "a line is remembered on its second sighting");
	for (int i = 0; i < SEEN_MAX + 5000; i++) {
		snprintf(line, sizeof(line), "u:1|c|#i:%d", i);
		side_send(&s, line, T0);
	}
	cr_assert_eq(s.hits, 0);
	cr_assert_eq(s.a->seen.n, SEEN_MAX);
	/* at most a quarter full, and its memory bounded: 8 MiB at SEEN_MAX */
	cr_assert_leq(s.a->seen.cap, 4 * (size_t)SEEN_MAX);
	cr_assert_leq(s.a->seen.cap * sizeof(struct seen_ent), (size_t)8 << 20);
	/* every remembered line hits (growing the table may have dropped a
	 * few that landed too far from home; later lines took their place),
	 * and a new line is not remembered once the cache is full */
	for (int i = 0; i < SEEN_MAX + 5000; i++) {
		snprintf(line, sizeof(line), "u:1|c|#i:%d", i);
		side_send(&s, line, T0);
	}
	cr_assert_eq(s.hits, SEEN_MAX);
	for (int i = 0; i < 3; i++)
		side_send(&s, "u:1|c|#new:1", T0);
	cr_assert_eq(s.hits, SEEN_MAX);
	cr_assert_eq(s.a->seen.n, SEEN_MAX);
	/* a key over SEEN_KEY_MAX bytes is never cached */
	char big[SEEN_KEY_MAX + 64];
	memset(big, 'k', sizeof(big));
	memcpy(big, "bigname:1|c|#", 13);
	big[sizeof(big) - 1] = '\0';
	struct aggr_stats st;
	side_flush(&s, T0 + 1000, false); /* expires everything: clears the cache */
	cr_assert_eq(s.a->seen.n, 0);
	side_send(&s, big, T0 + 1000);
	side_send(&s, big, T0 + 1000);
	side_send(&s, big, T0 + 1000);
	cr_assert_eq(s.hits, SEEN_MAX);
	cr_assert_eq(s.a->seen.n, 0);
	aggr_get_stats(s.a, &st);
	cr_assert_eq(st.contexts, 1);
	side_done(&s);
}

/* After an expiry the cached context is gone (its slab slot reused by
 * another context): the line must create a new context, not feed the other. */
Test(seen, cleared_when_contexts_expire)
{
	struct aggr_config c;
	cfg_init(&c);
	c.ntags = 0;
	c.namespace = "";
	struct side s;
	side_init(&s, &c, NULL, SIDE_INGEST);
	side_send(&s, "g.one:1|g", T0);
	side_send(&s, "g.one:2|g", T0);
	side_send(&s, "g.one:3|g", T0);
	cr_assert_eq(s.hits, 1);
	side_flush(&s, T0 + 10, false);
	side_flush(&s, T0 + 100, false); /* g.one expires */
	cr_assert_eq(s.a->seen.n, 0);
	side_send(&s, "g.two:5|g", T0 + 100);	/* reuses the freed context */
	side_send(&s, "g.one:7|g", T0 + 100);
	cr_assert_eq(s.hits, 1);
	side_flush(&s, T0 + 110, false);
	const struct batch *b = s.batches[s.nbatches - 1];
	cr_assert_eq(b->nseries, 2);
	for (size_t i = 0; i < 2; i++)
		cr_assert_eq(b->series[i].value, strcmp(b->series[i].name, "g.one") == 0 ? 7 : 5);
	side_done(&s);
}

Test(seen, cleared_by_reconfigure)
{
	struct aggr_config c, c2;
	cfg_init(&c);
	cfg_init(&c2);
	c.namespace = "";
	c2.namespace = "new";
	struct side s;
	side_init(&s, &c, NULL, SIDE_INGEST);
	side_send(&s, "r.x:1|c|#t", T0);
	side_send(&s, "r.x:1|c|#t", T0);
	cr_assert_eq(s.hits, 0);
	side_send(&s, "r.x:1|c|#t", T0);
	cr_assert_eq(s.hits, 1);
	aggr_reconfigure(s.a, &c2);
	side_send(&s, "r.x:1|c|#t", T0);
	side_send(&s, "r.x:1|c|#t", T0);
	cr_assert_eq(s.hits, 1);
	side_send(&s, "r.x:1|c|#t", T0);
	cr_assert_eq(s.hits, 2);
	side_flush(&s, T0 + 10, false);
	const struct batch *b = s.batches[0];
	cr_assert_eq(b->nseries, 2);
	bool old = false, renamed = false;
	for (size_t i = 0; i < 2; i++) {
		old |= strcmp(b->series[i].name, "r.x") == 0 && b->series[i].value == 0.3;
		renamed |= strcmp(b->series[i].name, "new.r.x") == 0 && b->series[i].value == 0.3;
	}
	cr_assert(old && renamed);
	side_done(&s);
}

/* ---- owned slots (seen.c): a counter's sum kept in its seen entry ----
 * Every sample of a slot must still land in one sum in arrival order: the
 * values below (0.1, 0.2, ...) make a different order or grouping of the
 * additions visible in the last bits ((0.1 + 0.2) + 0.3 != 0.1 + (0.2 +
 * 0.3)), and the same context is reached by two spellings (two entries, one
 * owner; the other and the full path add to the owner's sum), with a rate,
 * across buckets without a flush, across a reconfigure, while the entry
 * table grows, and with lines between the steps of an incremental collect. */
static void owned_send(struct side *s, unsigned k, int64_t now)
{
	char d[512];
	int n = snprintf(d, sizeof(d),
			 "o.c:0.%u|c|#a:1,b:2\no.c:0.%u|c|#a:1,b:2\no.c:0.%u|c|#b:2,a:1\n"
			 "o.c:0.%u|c|@0.3|#a:1,b:2\no.r:1.%u|c|#z\no.c:0.%u|c|#a:1,b:2",
			 k % 9 + 1, (k + 3) % 9 + 1, (k + 5) % 9 + 1, (k + 1) % 9 + 1, k % 7, k % 5 + 1);
	cr_assert(n > 0 && n < (int)sizeof(d));
	side_sendn(s, d, (size_t)n, now);
}

static size_t owned_schedule(struct side *s, const struct aggr_config *c2)
{
	size_t owning_seen = 0;
	char line[64];
	int64_t t = T0;
	for (unsigned k = 0; k < 40; k++) {
		owned_send(s, k, t + k % 10);
		if (s->a->seen.owning > owning_seen)
			owning_seen = s->a->seen.owning;
		if (k == 12)
			t += 10; /* the next bucket, no flush in between */
		if (k == 20)
			aggr_reconfigure(s->a, c2);
		if (k == 25) /* grow the entry table (rehash) while entries own */
			for (int r = 0; r < 3; r++)
				for (int i = 0; i < 3000; i++) {
					snprintf(line, sizeof(line), "grow:0.%d|c|#i:%d", i % 9 + 1, i);
					side_send(s, line, t + 9);
				}
	}
	/* an incremental collect, lines of the next bucket between its steps */
	cr_assert_eq(aggr_collect_begin(s->a, t + 20, false), 0);
	int step = 0;
	while (!aggr_collect_step(s->a, 500))
		owned_send(s, (unsigned)step++, t + 21);
	struct aggr_out *o = aggr_collect_end(s->a);
	cr_assert(o);
	struct aggr_out *outs[] = { o };
	struct batch *b = aggr_emit(s->a->cfg, outs, 1, t + 20, false, NULL);
	cr_assert(b);
	cr_assert_eq(batch_write_jsonl(b, &s->out), 0);
	s->batches[s->nbatches++] = b;
	aggr_out_free(o);
	owned_send(s, 7, t + 22);
	side_flush(s, t + 40, false);
	side_flush(s, t + 100, true);
	return owning_seen;
}

Test(seen, owned_counter_sums_in_arrival_order)
{
	struct aggr_config c, c2;
	cfg_init(&c);
	cfg_init(&c2);
	c.max_contexts = c2.max_contexts = 0;
	c.max_contexts_per_metric = c2.max_contexts_per_metric = 0;
	c2.namespace = "n2";
	struct side full, runs, one;
	side_init(&full, &c, NULL, SIDE_FULL);
	side_init(&runs, &c, NULL, SIDE_INGEST);
	side_init(&one, &c, NULL, SIDE_ONE);
	owned_schedule(&full, &c2);
	cr_assert_gt(owned_schedule(&runs, &c2), 0, "no entry ever owned a slot");
	owned_schedule(&one, &c2);
	cr_assert_gt(runs.hits, 100);
	same_sides(&full, &runs);
	same_sides(&full, &one);
	cr_assert_eq(runs.a->seen.owning, 0, "the final flush gave every sum back");
	side_done(&full);
	side_done(&runs);
	side_done(&one);
}

/* ---- datagrams longer than one window (parse.c takes lines 64 at a time) ----
 * The full parse and the cached one both go through the windows, so a line
 * skipped or parsed twice at a window boundary would look the same on both
 * sides: a third side (per_line) receives every line as its own datagram
 * and must match too, and the line counts are checked against the
 * generator's own. */

struct ldgram {
	char p[12288];
	size_t len;
	unsigned lines; /* messages: non-empty once a trailing '\r' is dropped */
};

static const char *const ltypes[] = { "c", "g", "ms", "h", "s", "d" };
/* variants v and v + 2: the same tags in another order (another cache key,
 * the same context) */
static const char *const ltags[] = { "|#a:1,b:2", "|#c:3,a:1", "|#b:2,a:1", "|#a:1,c:3" };

/* Metric line i of datagram d; bad 1..4 corrupts it (value, type, empty
 * value, empty name), keeping the name and suffix of a cacheable line. */
static int metric_line(char *o, size_t cap, unsigned i, unsigned d, unsigned bad)
{
	unsigned k = (i * 7 + d * 3) % 23, t = k % 6;
	if (bad && t == 4)
		t = 0; /* "abc" is a valid set member */
	const char *tags = k % 5 == 4 ? "" : ltags[(k / 2) % 4];
	const char *rate = k % 5 == 1 ? "|@0.5" : k % 5 == 3 ? "|@0.25" : "";
	char v[32];
	if (t == 4)
		snprintf(v, sizeof(v), "u%u", i % 5);
	else if (t == 1)
		snprintf(v, sizeof(v), "%s%u", i % 4 == 1 ? "+" : i % 4 == 3 ? "-" : "", i % 9 + 1);
	else if (i % 11 == 0)
		snprintf(v, sizeof(v), "%u:%u.5:%u", i % 7, i % 5, i % 3);
	else
		snprintf(v, sizeof(v), "%u.%u", i % 13, (i % 3) * 25);
	char name[32] = "";
	if (bad != 4)
		snprintf(name, sizeof(name), "lw.%s.%u", ltypes[t], (k / 6) % 2);
	return snprintf(o, cap, "%s:%s|%s%s%s", name, bad == 1 ? "abc" : bad == 3 ? "" : v,
			bad == 2 ? "x" : ltypes[t], k % 2 ? rate : tags, k % 2 ? tags : rate);
}

/* n messages (datagram d): metrics of every type with rates, tags in two
 * orders and repeats; from 128 lines an event and a service check at the
 * middle; past 64 one invalid line in the second window; some lines end in
 * "\r", empty lines ("\n", "\r\n") in between; odd d ends without '\n'
 * on a line with a trailing '\r'. */
static void ldgram_make(struct ldgram *g, unsigned n, unsigned d)
{
	unsigned bad_at = n > 64 ? 64 + (d * 7) % (n - 64) : n;
	size_t cap = sizeof(g->p), len = 0;
	for (unsigned i = 0; i < n; i++) {
		int w;
		if (n >= 128 && i == n / 2 - 1)
			w = snprintf(g->p + len, cap - len, "_e{5,9}:title|text body|#t:%u", d);
		else if (n >= 128 && i == n / 2)
			w = snprintf(g->p + len, cap - len, "_sc|svc.check|%u|#t:1|m:msg", d % 3);
		else
			w = metric_line(g->p + len, cap - len, i, d, i == bad_at ? d % 4 + 1 : 0);
		cr_assert(w > 0 && (size_t)w < cap - len - 8);
		len += (size_t)w;
		if (i % 9 == 4 || (i == n - 1 && d % 2))
			g->p[len++] = '\r';
		if (i == n - 1 && d % 2)
			break;
		g->p[len++] = '\n';
		if (i % 13 == 6)
			g->p[len++] = '\n';
		if (i % 17 == 8)
			len += (size_t)snprintf(g->p + len, cap - len, "\r\n");
	}
	g->len = len;
	g->lines = n;
}

/* The datagram's lines, one datagram each; returns the messages sent. */
static unsigned send_per_line(struct side *s, const struct ldgram *g, int64_t now)
{
	const char *p = g->p, *end = g->p + g->len;
	unsigned sent = 0;
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = (size_t)((nl ? nl : end) - p);
		if (n && p[n - 1] == '\r')
			n--;
		if (n) {
			side_sendn(s, p, n, now);
			sent++;
		}
		p = nl ? nl + 1 : end;
	}
	return sent;
}

/* Every datagram three times per bucket (the third sighting of a line is
 * the cache's), a flush per bucket, a gap that expires every context
 * (clearing the cache), the final flush. Returns the messages sent. */
static uint64_t run_long(struct side *s, const struct ldgram *g, size_t ng, bool per_line)
{
	int64_t t = T0;
	uint64_t msgs = 0;
	for (size_t round = 0; round < 5; round++) {
		for (int64_t r = 0; r < 3; r++) {
			for (size_t i = 0; i < ng; i++) {
				const struct ldgram *d = &g[(i + round) % ng];
				if (per_line)
					msgs += send_per_line(s, d, t + r);
				else
					side_sendn(s, d->p, d->len, t + r);
				msgs += per_line ? 0 : d->lines;
			}
		}
		if (round == 2)
			t += 60;
		t += 10;
		side_flush(s, t, false);
	}
	side_flush(s, t + 100, true);
	return msgs;
}

Test(seen, long_datagrams_same_result_as_full_parse)
{
	static const unsigned sizes[] = { 64, 65, 128, 129, 200 };
	enum { NG = sizeof(sizes) / sizeof(sizes[0]) };
	static struct ldgram g[NG];
	uint64_t want = 0;
	for (unsigned d = 0; d < NG; d++) {
		ldgram_make(&g[d], sizes[d], d);
		want += sizes[d] * 15u;
	}
	struct aggr_config c;
	cfg_init(&c);
	struct dsd_limits lim = test_limits();
	struct side full, cached, nopf, ref;
	side_init(&full, &c, &lim, SIDE_FULL);
	side_init(&cached, &c, &lim, SIDE_INGEST);
	side_init(&nopf, &c, &lim, SIDE_ONE);
	side_init(&ref, &c, &lim, SIDE_FULL);
	cr_assert_eq(run_long(&full, g, NG, false), want);
	run_long(&cached, g, NG, false);
	run_long(&nopf, g, NG, false);
	cr_assert_eq(run_long(&ref, g, NG, true), want, "the generator's line count");

	const struct dsd_stats *st = dsd_parser_stats(ref.p);
	cr_assert_eq(st->lines, want);
	cr_assert_eq(st->events, 3 * 15); /* in the 128, 129 and 200 lines */
	cr_assert_eq(st->service_checks, 3 * 15);
	cr_assert_eq(st->metric_errors, 4 * 15); /* one per datagram over 64 lines */
	cr_assert_eq(dsd_parser_stats(full.p)->datagrams, NG * 15);
	cr_assert_eq(full.hits + ref.hits, 0);
	cr_assert_gt(cached.hits, want / 2, "the cache took only %llu of %llu lines",
		     (unsigned long long)cached.hits, (unsigned long long)want);
	cr_assert_eq(nopf.hits, cached.hits);
	struct aggr_stats as;
	aggr_get_stats(nopf.a, &as);
	cr_assert_eq(as.seen_hits, nopf.hits);
	same_sides(&full, &cached);
	same_sides(&full, &nopf);
	same_sides_mode(&full, &ref, true);
	side_done(&full);
	side_done(&cached);
	side_done(&nopf);
	side_done(&ref);
}

/* The context table (ctab.h): with clusters of colliding tags, every slot
 * stays findable through inserts, backward-shift removals and shrinking. */
static bool ctab_has(const struct ctab *t, uint64_t slot)
{
	if (!t->n)
		return false;
	for (size_t i = ctab_start(t, slot); t->s[i]; i = ctab_next(t, i))
		if (t->s[i] == slot)
			return true;
	return false;
}

Test(seen, ctab_collisions_and_removal)
{
	struct ctab t;
	ctab_init(&t);
	enum { N = 5000 };
	static uint64_t slots[N];
	for (uint32_t i = 0; i < N; i++) {
		/* 50 distinct tags: clusters of 100 equal tags */
		uint64_t h = ((uint64_t)(i % 50) * 0x9E3779B1u) << 32;
		slots[i] = ctab_slot(h, i);
		cr_assert_eq(ctab_insert(&t, slots[i]), 0);
		cr_assert_eq(ctab_idx(slots[i]), i);
	}
	cr_assert_eq(t.n, N);
	for (uint32_t i = 0; i < N; i += 3)
		cr_assert_eq(ctab_remove(&t, slots[i]), 0);
	cr_assert_eq(ctab_remove(&t, slots[0]), -ENOENT);
	for (uint32_t i = 0; i < N; i++)
		cr_assert_eq(ctab_has(&t, slots[i]), i % 3 != 0, "slot %u", i);
	size_t big = t.cap;
	for (uint32_t i = 0; i < N; i++)
		if (i % 3)
			cr_assert_eq(ctab_remove(&t, slots[i]), 0);
	cr_assert_eq(t.n, 0);
	cr_assert_lt(t.cap, big, "the table shrinks");
	ctab_done(&t);
}
