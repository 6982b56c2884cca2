/*
 * fuzz_aggr.c - libFuzzer harness for parse + aggregate + flush through the
 * seen-line cache: the ingest loop (ingest.h ingest_batch) as pipeline.c's
 * on_batch runs it.
 *
 * Input: byte 0 picks the aggregator config (tiny context caps, gauge deltas,
 * |T pipeline, namespace with histogram_copy_to_distribution, a tag value
 * limit of 2 values, tags_exclude rules); the rest is split at 0xFE bytes into datagrams.
 * Each datagram's first byte b: the clock advances by (b & 0x1f) seconds,
 * the datagram is received ((b >> 6) + 1) times (a line is remembered at its
 * second sighting and taken by the cache from the third), and with b & 0x20
 * aggr_flush runs at the new time (contexts idle for 2 s expire, which clears
 * the cache). A datagram of only that byte instead reconfigures both
 * aggregators with config_from(b) (which also clears the cache). A final
 * flush ends every input.
 *
 * Every datagram goes, from its own exactly sized heap copy, to two
 * pipelines: A (ingest_batch: the cache, its prefetches and runs, as the
 * daemon) and B (dsd_parse + aggr_ingest through a sink, no cache).
 * Invariants, aborting on violation:
 *  - parser stats add up in both: lines == accepted + rejected, per-kind
 *    error totals == sum of reasons, and A's stats equal B's field by field;
 *  - B: metric_lines == sink callbacks, samples == the values handed to it;
 *  - aggr: samples_in == the parser's accepted samples in both; A's
 *    seen_hits <= its metric lines, B's 0; contexts, drops and every flushed
 *    batch (as JSON lines) identical in A and B;
 *  - the datagrams also go alternately to two more pipelines C0 and C1 (no
 *    cache), flushed as the agent flushes N pipelines: aggr_collect on each,
 *    aggr_emit(n = 2), aggr_out_free; their samples_in add up to B's, the
 *    merged batch holds the events and checks of both (no exact comparison
 *    with B: caps, gauge deltas and counter zero-fill act per pipeline);
 *  - incremental collect: when the config has no context caps, no tag limit and no gauge
 *    deltas, A's flushes are aggr_collect_begin, then one
 *    aggr_collect_step of 1, 3, 5 or 7 contexts ((b >> 6) * 2 + 1) before
 *    each following datagram is received (ingest between steps), then
 *    aggr_collect_end + aggr_emit once a step returns true (or before the
 *    next flush, reconfigure or the final flush, which finish it). The
 *    clock stands still while A collects (a real collect lasts ms). B
 *    flushes at once; A's batch must equal B's. (With caps, contexts a step
 *    has not expired yet still count, and with gauge deltas a context
 *    revived before its visit keeps its last value: documented
 *    differences.) Once A has collected in steps, contexts_created/expired
 *    may differ (such a revival is one context to A, two to B), live
 *    contexts may not;
 *  - no crash, no leak (ASan/LSan in the -Dfuzz build).
 * Also built with replay_main.c to replay tests/fuzz/corpus/aggr/ in `meson test`.
 * Single-threaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "core/batch.h"
#include "core/buf.h"
#include "ingest/ingest.h"
#include "parse/parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DATAGRAMS 256

struct pipe {
	struct dsd_parser *p;
	struct aggr *a;
	int64_t now;
	uint64_t sink_metrics, sink_samples; /* the sink's (not A's) */
	uint64_t pend_events, pend_checks; /* C pipelines: since the last flush */
	/* values dropped as not finite by emits the harness ran itself (aggr_flush
	 * counts its own in the aggr's stats, aggr_emit in its emit stats) */
	uint64_t emit_nonfinite;
};

static void on_metric(void *ctx, const struct dsd_metric *m)
{
	struct pipe *pp = ctx;
	pp->sink_metrics++;
	pp->sink_samples += m->nvalues;
	aggr_ingest(pp->a, m, pp->now);
}

static void on_event(void *ctx, const struct dsd_event *e)
{
	struct pipe *pp = ctx;
	struct aggr_stats st, st2;
	aggr_get_stats(pp->a, &st);
	aggr_event(pp->a, e, pp->now);
	aggr_get_stats(pp->a, &st2);
	pp->pend_events += st2.dropped[AGGR_DROP_PENDING_CAP] == st.dropped[AGGR_DROP_PENDING_CAP] &&
			   st2.dropped[AGGR_DROP_NOMEM] == st.dropped[AGGR_DROP_NOMEM];
}

static void on_check(void *ctx, const struct dsd_service_check *sc)
{
	struct pipe *pp = ctx;
	struct aggr_stats st, st2;
	aggr_get_stats(pp->a, &st);
	aggr_service_check(pp->a, sc, pp->now);
	aggr_get_stats(pp->a, &st2);
	pp->pend_checks += st2.dropped[AGGR_DROP_PENDING_CAP] == st.dropped[AGGR_DROP_PENDING_CAP] &&
			   st2.dropped[AGGR_DROP_NOMEM] == st.dropped[AGGR_DROP_NOMEM];
}

static const struct dsd_sink sink = { on_metric, on_event, on_check };

/* cached: through ingest_batch (pipeline A); else dsd_parse and the sink. */
static void receive(struct pipe *pp, const uint8_t *d, size_t n, bool cached)
{
	char *buf = malloc(n ? n : 1);
	CHECK(buf);
	memcpy(buf, d, n);
	if (cached) {
		struct dsd_datagram dg = { buf, n };
		ingest_batch(pp->p, pp->a, &dg, 1, pp->now);
	} else {
		dsd_parse(pp->p, buf, n, &sink, pp);
	}
	free(buf);
}

static void check_parser(const struct pipe *pp, bool cached)
{
	const struct dsd_stats *st = dsd_parser_stats(pp->p);
	uint64_t samples = fuzz_check_parser_stats(st);
	CHECK(cached || st->metric_lines == pp->sink_metrics);
	CHECK(cached || samples == pp->sink_samples);

	struct aggr_stats as;
	aggr_get_stats(pp->a, &as);
	CHECK(as.samples_in == samples);
	CHECK(as.seen_hits <= st->metric_lines);
	CHECK(cached || as.seen_hits == 0);
	CHECK(as.seen_entries <= 65536);
}

static void same_stats(const struct pipe *x, const struct pipe *y, bool relaxed)
{
	const struct dsd_stats *s1 = dsd_parser_stats(x->p), *s2 = dsd_parser_stats(y->p);
	CHECK(memcmp(s1, s2, sizeof(*s1)) == 0);
	struct aggr_stats a1, a2;
	aggr_get_stats(x->a, &a1);
	aggr_get_stats(y->a, &a2);
	CHECK(a1.samples_in == a2.samples_in);
	a1.dropped[AGGR_DROP_NON_FINITE] += x->emit_nonfinite;
	a2.dropped[AGGR_DROP_NON_FINITE] += y->emit_nonfinite;
	CHECK(memcmp(a1.dropped, a2.dropped, sizeof(a1.dropped)) == 0);
	CHECK(a1.contexts == a2.contexts);
	CHECK(relaxed || a1.contexts_created == a2.contexts_created);
	CHECK(relaxed || a1.contexts_expired == a2.contexts_expired);
	CHECK(a1.events == a2.events && a1.service_checks == a2.service_checks);
}

static int line_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The JSON lines of o, sorted (o's newlines become NULs). */
static char **sorted_lines(struct buf *o, size_t *n)
{
	size_t cnt = 0;
	for (size_t i = 0; i < o->len; i++)
		cnt += o->p[i] == '\n';
	char **l = malloc((cnt + 1) * sizeof(*l));
	CHECK(l);
	*n = 0;
	for (size_t i = 0, st = 0; i < o->len; i++) {
		if (o->p[i] != '\n')
			continue;
		o->p[i] = '\0';
		l[(*n)++] = o->p + st;
		st = i + 1;
	}
	qsort(l, *n, sizeof(*l), line_cmp);
	return l;
}

/* b1 (A) against b2 (B). loose (A collected in steps at least once): as
 * sorted sets of lines (slab orders may differ), and b1 may hold extra
 * counter zero-fills (a counter silent past expiry_seconds revived between
 * begin and its visit: aggr.h). */
static void same_json_mode(struct batch *b1, struct batch *b2, bool loose)
{
	CHECK(b1 && b2);
	struct buf o1, o2;
	buf_init(&o1);
	buf_init(&o2);
	CHECK(batch_write_jsonl(b1, &o1) == 0 && batch_write_jsonl(b2, &o2) == 0);
	if (!loose) {
		CHECK(o1.len == o2.len && (o1.len == 0 || memcmp(o1.p, o2.p, o1.len) == 0));
	} else {
		size_t n1, n2, j = 0;
		char **l1 = sorted_lines(&o1, &n1), **l2 = sorted_lines(&o2, &n2);
		for (size_t i = 0; i < n1; i++) {
			if (j < n2 && strcmp(l1[i], l2[j]) == 0) {
				j++;
				continue;
			}
			CHECK(strstr(l1[i], "\"type\":\"rate\"") &&
			      strstr(l1[i], "\"value\":0,"));
		}
		CHECK(j == n2);
		free(l1);
		free(l2);
	}
	buf_done(&o1);
	buf_done(&o2);
	batch_free(b1);
	batch_free(b2);
}

static bool loose_cmp; /* A collected in steps in this input */

static void same_json(struct batch *b1, struct batch *b2)
{
	same_json_mode(b1, b2, loose_cmp);
}

static void flush_both(struct pipe *x, struct pipe *y, bool final)
{
	struct batch *b1 = aggr_flush(x->a, x->now, final);
	same_json(b1, aggr_flush(y->a, y->now, final));
}

/* A's incremental collect in progress: B's batch of the same flush waits. */
struct incr {
	bool on, used;
	size_t step;
	int64_t now;
	struct batch *want;
};

static void incr_begin(struct incr *in, struct pipe *x, struct pipe *y, uint8_t b)
{
	CHECK(aggr_collect_begin(x->a, x->now, false) == 0);
	in->want = aggr_flush(y->a, y->now, false);
	CHECK(in->want);
	in->on = in->used = loose_cmp = true;
	in->step = (size_t)(b >> 6) * 2 + 1;
	in->now = x->now;
}

static void incr_end(struct incr *in, struct pipe *x, const struct aggr_config *cfg)
{
	if (!in->on)
		return;
	while (!aggr_collect_step(x->a, SIZE_MAX))
		;
	struct aggr_out *o = aggr_collect_end(x->a);
	CHECK(o);
	struct aggr_emit_stats st;
	struct batch *got = aggr_emit(cfg, &o, 1, in->now, false, &st);
	x->emit_nonfinite += st.nonfinite;
	aggr_out_free(o);
	same_json(got, in->want);
	in->on = false;
	in->want = NULL;
}

static void flush_split(struct pipe *c, const struct aggr_config *cfg, bool final)
{
	struct aggr_out *o[2] = { aggr_collect(c[0].a, c[0].now, final),
				  aggr_collect(c[1].a, c[1].now, final) };
	CHECK(o[0] && o[1]);
	struct aggr_emit_stats st;
	struct batch *b = aggr_emit(cfg, o, 2, c[0].now, false, &st);
	CHECK(b);
	CHECK(st.nomem == 0 && st.series == b->nseries && st.sketches == b->nsketches);
	aggr_out_free(o[0]);
	aggr_out_free(o[1]);
	CHECK(b->nevents == c[0].pend_events + c[1].pend_events);
	CHECK(b->nchecks == c[0].pend_checks + c[1].pend_checks);
	c[0].pend_events = c[1].pend_events = c[0].pend_checks = c[1].pend_checks = 0;
	batch_free(b);
}

static void config_from(uint8_t b, struct aggr_config *cfg)
{
	static char *tags[] = { "env:fz", "team:x" };
	static double pct[] = { 0.5, 0.95 };
	static char *blacklist[] = { "skip." };
	static char *exclude[] = { "t?|*", "x*" };
	*cfg = (struct aggr_config){
		.hostname = "h0", .tags = tags, .ntags = (b >> 7) & 1 ? 2 : 0,
		.namespace = (b & 0x40) ? "ns." : "", .namespace_blacklist = blacklist,
		.nnamespace_blacklist = 1, .bucket_seconds = 10, .expiry_seconds = 3,
		.context_expiry_seconds = 2, .histogram_aggregates = HIST_AGG_DEFAULT | HIST_AGG_SUM,
		.histogram_percentiles = pct, .nhistogram_percentiles = 2,
		.no_aggregation_pipeline = b & 0x20, .gauge_deltas = b & 0x10,
		/* b & 7 == 7: no context cap but a tag value limit of 2
		 * (strip, or drop with 0x08); == 6: exclude rules too */
		.max_contexts = (b & 7) == 7 ? 0 : b & 7,
		.max_contexts_per_metric = (b & 7) != 7 && (b >> 3) & 1 ? 2 : 0,
		.tag_value_limit = (b & 7) == 7 ? 2 : 0, .tag_limit_drop = (b & 0xf) == 0xf,
		.tags_exclude = exclude, .ntags_exclude = (b & 7) == 6 ? 2 : 0, .pipeline_count = 1,
		.set_exact_max = 2, .hist_copy_to_dist = b & 0x40, .hist_copy_to_dist_prefix = "dist.",
	};
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	static const struct dsd_limits lim = { 64, 6, 32, 8 };
	struct aggr_config cfg, recfg[2]; /* borrowed by the aggrs until aggr_free */
	unsigned nre = 0;
	config_from(data[0], &cfg);
	struct pipe A = { .p = dsd_parser_new(&lim), .a = aggr_new(&cfg), .now = 1700000000 };
	struct pipe B = { .p = dsd_parser_new(&lim), .a = aggr_new(&cfg), .now = 1700000000 };
	CHECK(A.p && A.a && B.p && B.a);
	struct pipe C[2];
	for (int i = 0; i < 2; i++) {
		C[i] = (struct pipe){ .p = dsd_parser_new(&lim), .a = aggr_new(&cfg),
				      .now = 1700000000 };
		CHECK(C[i].p && C[i].a);
	}
	const struct aggr_config *cur = &cfg;
	struct incr in = { .on = false };
	loose_cmp = false;

	size_t pos = 1, ndg = 0;
	while (pos < size && ndg++ < MAX_DATAGRAMS) {
		const uint8_t *end = memchr(data + pos, 0xFE, size - pos);
		size_t n = end ? (size_t)(end - (data + pos)) : size - pos;
		const uint8_t *d = data + pos;
		pos += n + 1;
		if (n == 0)
			continue;
		uint8_t b = d[0];
		if (n == 1) {
			incr_end(&in, &A, cur);
			struct aggr_config *rc = &recfg[nre++ & 1];
			config_from(b, rc);
			aggr_reconfigure(A.a, rc);
			aggr_reconfigure(B.a, rc);
			for (int i = 0; i < 2; i++)
				aggr_reconfigure(C[i].a, rc);
			cur = rc;
			continue;
		}
		if (in.on && aggr_collect_step(A.a, in.step)) {
			incr_end(&in, &A, cur); /* this datagram comes after the end */
		} else if (!in.on) {
			A.now = B.now += b & 0x1f; /* stands still while A collects */
			C[0].now = C[1].now = A.now;
		}
		for (int r = 0; r <= (b >> 6); r++) {
			receive(&A, d + 1, n - 1, true);
			receive(&B, d + 1, n - 1, false);
			receive(&C[ndg & 1], d + 1, n - 1, false);
		}
		check_parser(&A, true);
		check_parser(&B, false);
		if (!in.on)
			same_stats(&A, &B, in.used);
		if (b & 0x20) {
			incr_end(&in, &A, cur);
			if (!cur->max_contexts && !cur->max_contexts_per_metric &&
			    !cur->gauge_deltas && !cur->tag_value_limit)
				incr_begin(&in, &A, &B, b);
			else
				flush_both(&A, &B, false);
			flush_split(C, cur, false);
		}
	}
	incr_end(&in, &A, cur);
	A.now = B.now += 30;
	C[0].now = C[1].now = A.now;
	flush_both(&A, &B, true);
	flush_split(C, cur, true);
	same_stats(&A, &B, in.used);
	struct aggr_stats sb, s0, s1;
	aggr_get_stats(B.a, &sb);
	aggr_get_stats(C[0].a, &s0);
	aggr_get_stats(C[1].a, &s1);
	CHECK(s0.samples_in + s1.samples_in == sb.samples_in);
	for (int i = 0; i < 2; i++) {
		aggr_free(C[i].a);
		dsd_parser_free(C[i].p);
	}
	aggr_free(A.a);
	aggr_free(B.a);
	dsd_parser_free(A.p);
	dsd_parser_free(B.p);
	return 0;
}
