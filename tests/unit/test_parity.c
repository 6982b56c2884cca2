/*
 * test_parity.c - raw DogStatsD lines through the parser and the aggregator
 * to the flushed batch, compared with what Datadog's agent produces for the
 * same input. The expected values are those of the reference agent's own
 * test tables (comp/dogstatsd/server parse_*_test.go, enrich_test.go,
 * pkg/metrics histogram/counter tests, the no-aggregation worker), restated
 * as a whole flushed record each; README "Differences from Datadog's agent"
 * lists where this agent deliberately differs.
 *
 * Every record of the flush is rendered as one line (render_*), the lines
 * sorted, and compared with the case's lines (any order). The agent's
 * hostname is "agent-host"; samples arrive at T0 + 1 and the flush runs at
 * T0 + 10 (one closed bucket, stamped T0).
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "parse/parse.h"
#include "fixture.h"
#include "fixture_feed.h"
#include "param_table.h"

#define T0 1700000000 /* a bucket boundary */


static void cfg_init(struct aggr_config *c)
{
	fixture_aggr_config(c);
	c->hostname = "agent-host";
	c->histogram_aggregates = HIST_AGG_DEFAULT | HIST_AGG_SUM | HIST_AGG_MIN;
	c->max_contexts = 1000000;
	c->max_contexts_per_metric = 100000;
}

/* ---- rendering a batch ---- */

static void put_num(FILE *f, double v)
{
	char b[64];
	snprintf(b, sizeof(b), "%.15g", v);
	fputs(b, f);
}

static void put_tags(FILE *f, const char *const *t, uint32_t n)
{
	fputs(" [", f);
	for (uint32_t i = 0; i < n; i++)
		fprintf(f, "%s%s", i ? "," : "", t[i]);
	fputc(']', f);
}

static int line_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The batch as sorted lines joined by '\n' (each line ends with '\n'). Tags
 * of events and checks are sorted too: their order is not part of the
 * contract. */
static char *render(const struct batch *b)
{
	size_t n = b->nseries + b->nsketches + b->nevents + b->nchecks, k = 0;
	char **lines = calloc(n + 1, sizeof(*lines));
	cr_assert_not_null(lines);
	for (size_t i = 0; i < n; i++) {
		size_t len;
		FILE *f = open_memstream(&lines[i], &len);
		cr_assert_not_null(f);
		if (i < b->nseries) {
			const struct series *s = &b->series[i];
			fprintf(f, "%s %s host=%s", series_kind_name(s->kind), s->name, s->host);
			put_tags(f, s->tags, s->ntags);
			fprintf(f, " ts=%lld i=%u v=", (long long)s->ts, s->interval);
			put_num(f, s->value);
		} else if ((k = i - b->nseries) < b->nsketches) {
			const struct sketch_point *p = &b->sketches[k];
			fprintf(f, "sketch %s host=%s", p->name, p->host);
			put_tags(f, p->tags, p->ntags);
			fprintf(f, " ts=%lld cnt=%lld min=", (long long)p->ts, (long long)p->cnt);
			put_num(f, p->min);
			fputs(" max=", f);
			put_num(f, p->max);
			fputs(" sum=", f);
			put_num(f, p->sum);
			fputs(" avg=", f);
			put_num(f, p->avg);
		} else if ((k = i - b->nseries - b->nsketches) < b->nevents) {
			const struct event_rec *e = &b->events[k];
			const char **t = (const char **)e->tags;
			qsort(t, e->ntags, sizeof(*t), line_cmp);
			fprintf(f, "event %s host=%s", e->title, e->host);
			put_tags(f, e->tags, e->ntags);
			fprintf(f, " ts=%lld text=%s", (long long)e->ts, e->text);
			fprintf(f, " p=%s t=%s", event_priority_name(e->priority),
				event_alert_type_name(e->alert_type));
			if (e->aggregation_key[0])
				fprintf(f, " k=%s", e->aggregation_key);
			if (e->source_type[0])
				fprintf(f, " s=%s", e->source_type);
		} else {
			const struct check_rec *c = &b->checks[k - b->nevents];
			const char **t = (const char **)c->tags;
			qsort(t, c->ntags, sizeof(*t), line_cmp);
			fprintf(f, "check %s %d host=%s", c->name, c->status, c->host);
			put_tags(f, c->tags, c->ntags);
			fprintf(f, " ts=%lld m=%s", (long long)c->ts, c->message);
		}
		fclose(f);
	}
	qsort(lines, n, sizeof(*lines), line_cmp);
	char *out;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	for (size_t i = 0; i < n; i++) {
		fprintf(f, "%s\n", lines[i]);
		free(lines[i]);
	}
	fclose(f);
	free(lines);
	return out;
}

/* The expected lines, sorted the same way. */
static char *sorted_lines(const char *text)
{
	char *copy = strdup(text), *save = NULL;
	char *lines[256];
	size_t n = 0;
	for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cr_assert_lt(n, 256);
		lines[n++] = l;
	}
	qsort(lines, n, sizeof(*lines), line_cmp);
	char *out;
	size_t len;
	FILE *f = open_memstream(&out, &len);
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", lines[i]);
	fclose(f);
	free(copy);
	return out;
}

/* ---- the table ---- */

enum opt {
	OPT_NONE = 0,
	OPT_NO_AGG_OFF = 1 << 0,	/* dogstatsd_no_aggregation_pipeline: false */
	OPT_CACHED = 1 << 1,		/* through the seen-line cache, the datagram 3 times */
	OPT_COPY = 1 << 2,		/* histogram_copy_to_distribution, prefix "dist." */
	OPT_COPY_NOPREFIX = 1 << 3,	/* histogram_copy_to_distribution, prefix "" */
	OPT_PCTS = 1 << 4,		/* histogram_percentiles [0.20, 0.80, 0.95] */
};

struct pcase {
	const char *in;		/* one datagram */
	const char *out;	/* the flushed records, one line each, any order */
	int drop;		/* -1, or an aggr_drop reason expected ... */
	uint64_t ndrop;		/* ... this many times */
	unsigned opt;
};

#define C(i, o) { (i), (o), -1, 0, OPT_NONE }
#define CD(i, o, d, n) { (i), (o), (d), (n), OPT_NONE }
#define CO(i, o, opt) { (i), (o), -1, 0, (opt) }

/* What the lines below restate, theme by theme (issue 19). */
static const struct pcase cases[] = {
	/* Service check m: ends at the next field (parse_service_checks_test.go) */
	C("_sc|agent.up|0|d:12345|h:localhost|m:this is fine|#a:b,c:d",
	  "check agent.up 0 host=localhost [a:b,c:d] ts=12345 m=this is fine\n"),
	C("_sc|agent.up|0|d:21|h:localhost|#tag1:test,tag2|m:this is fine",
	  "check agent.up 0 host=localhost [tag1:test,tag2] ts=21 m=this is fine\n"),
	C("_sc|agent.up|0|d:21|h:localhost|h:localhost2|d:22",
	  "check agent.up 0 host=localhost2 [] ts=22 m=\n"),
	C("_sc|agent.up|0|m:this is fine", "check agent.up 0 host=agent-host [] ts=1700000001 m=this is fine\n"),
	C("_sc|agent.up|0|d:some_time", "check agent.up 0 host=agent-host [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|u:unknown", "check agent.up 0 host=agent-host [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|#tag1,tag2:test,tag3",
	  "check agent.up 0 host=agent-host [tag1,tag2:test,tag3] ts=1700000001 m=\n"),

	/* host: tag on events and service checks (enrich_test.go) */
	C("_sc|agent.up|0|#host:localhost", "check agent.up 0 host=localhost [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|#host:", "check agent.up 0 host= [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|#a,host:h1,b,host:h2", "check agent.up 0 host=h2 [a,b] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|h:field|#host:tag", "check agent.up 0 host=field [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|h:|#host:tag", "check agent.up 0 host=tag [] ts=1700000001 m=\n"),
	C("_sc|agent.up|0|h:", "check agent.up 0 host=agent-host [] ts=1700000001 m=\n"),
	C("_e{10,9}:test title|test text|#host:localhost",
	  "event test title host=localhost [] ts=1700000001 text=test text p=normal t=info\n"),
	C("_e{10,9}:test title|test text|#host:",
	  "event test title host= [] ts=1700000001 text=test text p=normal t=info\n"),
	C("_e{10,9}:test title|test text|h:field|#host:tag,x",
	  "event test title host=field [x] ts=1700000001 text=test text p=normal t=info\n"),
	C("_e{10,9}:test title|test text|h:",
	  "event test title host=agent-host [] ts=1700000001 text=test text p=normal t=info\n"),
	C("daemon:666|g|#sometag1:somevalue1,host:my-hostname,sometag2:somevalue2",
	  "gauge daemon host=my-hostname [sometag1:somevalue1,sometag2:somevalue2] ts=1700000000 i=0 v=666\n"),
	C("daemon:666|g|#sometag1:somevalue1,host:,sometag2:somevalue2",
	  "gauge daemon host= [sometag1:somevalue1,sometag2:somevalue2] ts=1700000000 i=0 v=666\n"),

	/* dd.internal.entity_id: and dd.internal.card: are metadata, not tags
	 * (enrich_test.go extractTagsMetadata) */
	C("daemon:666|g|#sometag1:somevalue1,dd.internal.entity_id:foo,sometag2:somevalue2",
	  "gauge daemon host=agent-host [sometag1:somevalue1,sometag2:somevalue2] ts=1700000000 i=0 v=666\n"),
	C("daemon:666|g|#sometag1:somevalue1,dd.internal.entity_id:none,sometag2:somevalue2",
	  "gauge daemon host=agent-host [sometag1:somevalue1,sometag2:somevalue2] ts=1700000000 i=0 v=666\n"),
	C("daemon:666|g|#sometag1:somevalue1,dd.internal.card:high,host:h,dd.internal.entity_id:x",
	  "gauge daemon host=h [sometag1:somevalue1] ts=1700000000 i=0 v=666\n"),
	C("daemon:666|g|#dd.internal.other:kept,dd.internal.entity_id",
	  "gauge daemon host=agent-host [dd.internal.entity_id,dd.internal.other:kept] ts=1700000000 i=0 v=666\n"),
	C("_e{10,9}:test title|test text|#dd.internal.entity_id:pod,dd.internal.card:low,a",
	  "event test title host=agent-host [a] ts=1700000001 text=test text p=normal t=info\n"),
	C("_sc|agent.up|0|#dd.internal.entity_id:pod,dd.internal.card:orchestrator,b",
	  "check agent.up 0 host=agent-host [b] ts=1700000001 m=\n"),
	C("daemon:666|g|#sometag1:somevalue1,host:my-hostname,dd.internal.entity_id:foo,sometag2:somevalue2",
	  "gauge daemon host=my-hostname [sometag1:somevalue1,sometag2:somevalue2] ts=1700000000 i=0 v=666\n"),
	/* the first non-empty cardinality is taken, a later dd.internal.card: stays a tag */
	C("daemon:1|g|#env:prod,dd.internal.card:high,dd.internal.card:low",
	  "gauge daemon host=agent-host [dd.internal.card:low,env:prod] ts=1700000000 i=0 v=1\n"),
	C("daemon:1|g|#env:prod,dd.internal.card:,dd.internal.card:low",
	  "gauge daemon host=agent-host [env:prod] ts=1700000000 i=0 v=1\n"),
	C("daemon:1|g|#env:prod,dd.internal.entity_id:42,dd.internal.card:orchestrator|card:none",
	  "gauge daemon host=agent-host [env:prod] ts=1700000000 i=0 v=1\n"),
	C("jmx.test:1|g|#foo,jmx_domain:testdomain,dd.internal.jmx_check_name:tomcat",
	  "gauge jmx.test host=agent-host [foo,jmx_domain:testdomain] ts=1700000000 i=0 v=1\n"),
	C("_sc|agent.up|0|d:21|h:localhost|#tag1:test,tag2,dd.internal.entity_id:testID|m:this is fine",
	  "check agent.up 0 host=localhost [tag1:test,tag2] ts=21 m=this is fine\n"),
	C("_e{10,9}:test title|test text|t:warning|d:12345|p:low|h:some.host|k:aggKey|s:source test|"
	  "#tag1,tag2:test,dd.internal.entity_id:testID",
	  "event test title host=some.host [tag1,tag2:test] ts=12345 text=test text p=low t=warning "
	  "k=aggKey s=source test\n"),
	C("_sc|agent.up|0|#host:,other:tag", "check agent.up 0 host= [other:tag] ts=1700000001 m=\n"),
	C("_e{10,9}:test title|test text|#host:,other:tag",
	  "event test title host= [other:tag] ts=1700000001 text=test text p=normal t=info\n"),
	CO("daemon:1|c|#a,dd.internal.entity_id:foo,dd.internal.card:high",
	   "rate daemon host=agent-host [a] ts=1700000000 i=10 v=0.3\n", OPT_CACHED),

	/* histogram and timer sample rates (pkg/metrics/histogram.go addSample):
	 * weight int64(1/rate), sum += value * (1/rate) */
	C("daemon:666|h|@0.21",
	  "gauge daemon.max host=agent-host [] ts=1700000000 i=0 v=666\n"
	  "gauge daemon.median host=agent-host [] ts=1700000000 i=0 v=666\n"
	  "gauge daemon.avg host=agent-host [] ts=1700000000 i=0 v=792.857142857143\n"
	  "rate daemon.count host=agent-host [] ts=1700000000 i=10 v=0.4\n"
	  "gauge daemon.min host=agent-host [] ts=1700000000 i=0 v=666\n"
	  "gauge daemon.sum host=agent-host [] ts=1700000000 i=0 v=3171.42857142857\n"
	  "gauge daemon.95percentile host=agent-host [] ts=1700000000 i=0 v=666\n"),
	C("daemon:500|ms|@0.5\ndaemon:100|ms",
	  "gauge daemon.max host=agent-host [] ts=1700000000 i=0 v=500\n"
	  "gauge daemon.median host=agent-host [] ts=1700000000 i=0 v=500\n"
	  "gauge daemon.avg host=agent-host [] ts=1700000000 i=0 v=366.666666666667\n"
	  "rate daemon.count host=agent-host [] ts=1700000000 i=10 v=0.3\n"
	  "gauge daemon.min host=agent-host [] ts=1700000000 i=0 v=100\n"
	  "gauge daemon.sum host=agent-host [] ts=1700000000 i=0 v=1100\n"
	  "gauge daemon.95percentile host=agent-host [] ts=1700000000 i=0 v=500\n"),
	C("daemon:1:2:3|h|@0.4",
	  "gauge daemon.max host=agent-host [] ts=1700000000 i=0 v=3\n"
	  "gauge daemon.median host=agent-host [] ts=1700000000 i=0 v=2\n"
	  "gauge daemon.avg host=agent-host [] ts=1700000000 i=0 v=2.5\n"
	  "rate daemon.count host=agent-host [] ts=1700000000 i=10 v=0.6\n"
	  "gauge daemon.min host=agent-host [] ts=1700000000 i=0 v=1\n"
	  "gauge daemon.sum host=agent-host [] ts=1700000000 i=0 v=15\n"
	  "gauge daemon.95percentile host=agent-host [] ts=1700000000 i=0 v=3\n"),

	/* pkg/metrics histogram_test.go: TestDefaultHistogramSampling,
	 * TestCustomHistogramSampling, TestHistogramSampleRate */
	C("h:1|h\nh:10|h\nh:4|h\nh:5|h\nh:2|h\nh:2|h",
	  "gauge h.max host=agent-host [] ts=1700000000 i=0 v=10\n"
	  "gauge h.median host=agent-host [] ts=1700000000 i=0 v=2\n"
	  "gauge h.avg host=agent-host [] ts=1700000000 i=0 v=4\n"
	  "rate h.count host=agent-host [] ts=1700000000 i=10 v=0.6\n"
	  "gauge h.min host=agent-host [] ts=1700000000 i=0 v=1\n"
	  "gauge h.sum host=agent-host [] ts=1700000000 i=0 v=24\n"
	  "gauge h.95percentile host=agent-host [] ts=1700000000 i=0 v=10\n"),
	CO("h:1|h\nh:2|h|@0.5\nh:3|h|@0.2\nh:10|h|@0.5",
	   "gauge h.max host=agent-host [] ts=1700000000 i=0 v=10\n"
	   "gauge h.median host=agent-host [] ts=1700000000 i=0 v=3\n"
	   "gauge h.avg host=agent-host [] ts=1700000000 i=0 v=4\n"
	   "rate h.count host=agent-host [] ts=1700000000 i=10 v=1\n"
	   "gauge h.min host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "gauge h.sum host=agent-host [] ts=1700000000 i=0 v=40\n"
	   "gauge h.20percentile host=agent-host [] ts=1700000000 i=0 v=2\n"
	   "gauge h.80percentile host=agent-host [] ts=1700000000 i=0 v=3\n"
	   "gauge h.95percentile host=agent-host [] ts=1700000000 i=0 v=10\n", OPT_PCTS),
	/* pkg/metrics counter_test.go: value * (1/rate), sent as value/10 */
	C("c:2|c|@0.5\nc:1|c\nc:2|c\nc:5|c\nc:0|c\nc:8|c\nc:3|c",
	  "rate c host=agent-host [] ts=1700000000 i=10 v=2.3\n"),
	C("c:5|c|@0.5\nc:3|c|@0.5", "rate c host=agent-host [] ts=1700000000 i=10 v=1.6\n"),
	C("c:666|c|@0.21", "rate c host=agent-host [] ts=1700000000 i=10 v=317.142857142857\n"),
	/* pkg/metrics set_test.go, gauge_test.go */
	C("s:a|s\ns:b|s\ns:c|s\ns:c|s\ns:b|s", "gauge s host=agent-host [] ts=1700000000 i=0 v=3\n"),
	C("s:b|s\ns:b|s", "gauge s host=agent-host [] ts=1700000000 i=0 v=1\n"),
	C("g:1|g\ng:2|g\ng:5|g\ng:0|g\ng:8|g\ng:3|g", "gauge g host=agent-host [] ts=1700000000 i=0 v=3\n"),
	C("g:10|g\ng:-5|g|@0.5", "gauge g host=agent-host [] ts=1700000000 i=0 v=-5\n"),

	/* non-finite aggregation results are dropped and counted */
	CD("x:1e308|c\nx:1e308|c", "", AGGR_DROP_NON_FINITE, 1),
	CD("x:1|c|@1e-320", "", AGGR_DROP_NON_FINITE, 1),
	CD("x:1e308|c\nx:1e308|c\ny:1|c", "rate y host=agent-host [] ts=1700000000 i=10 v=0.1\n",
	   AGGR_DROP_NON_FINITE, 1),
	CD("h:1e308|h\nh:1e308|h",
	   "gauge h.max host=agent-host [] ts=1700000000 i=0 v=1e+308\n"
	   "gauge h.median host=agent-host [] ts=1700000000 i=0 v=1e+308\n"
	   "rate h.count host=agent-host [] ts=1700000000 i=10 v=0.2\n"
	   "gauge h.min host=agent-host [] ts=1700000000 i=0 v=1e+308\n"
	   "gauge h.95percentile host=agent-host [] ts=1700000000 i=0 v=1e+308\n",
	   AGGR_DROP_NON_FINITE, 2), /* .avg and .sum */
	CD("d:1e308|d\nd:1e308|d", "", AGGR_DROP_NON_FINITE, 1),
	CD("d:1e308:1e308|d|T1658328888", "", AGGR_DROP_NON_FINITE, 1),

	/* |T: Datadog's no-aggregation pipeline (no_aggregation_stream_worker.go):
	 * gauges and counters (value/10, the sample rate ignored) at their own
	 * timestamp with interval 10, distributions as a sketch point,
	 * histograms, timers and sets discarded */
	C("daemon:666|c|@0.5|T1658328888",
	  "rate daemon host=agent-host [] ts=1658328888 i=10 v=66.6\n"),
	C("daemon:666|g|T1658328888", "gauge daemon host=agent-host [] ts=1658328888 i=10 v=666\n"),
	C("daemon:666|g|#sometag1:somevalue1,host:h,dd.internal.card:low|T1658328888",
	  "gauge daemon host=h [sometag1:somevalue1] ts=1658328888 i=10 v=666\n"),
	C("daemon:1:2|c|T1658328888",
	  "rate daemon host=agent-host [] ts=1658328888 i=10 v=0.1\n"
	  "rate daemon host=agent-host [] ts=1658328888 i=10 v=0.2\n"),
	C("daemon:666|d|T1658328888",
	  "sketch daemon host=agent-host [] ts=1658328888 cnt=1 min=666 max=666 sum=666 avg=666\n"),
	C("daemon:1:2:3|d|@0.5|T1658328888",
	  "sketch daemon host=agent-host [] ts=1658328888 cnt=6 min=1 max=3 sum=12 avg=2\n"),
	C("daemon:5|d|T1658328888\ndaemon:5|d|T1658328888",
	  "sketch daemon host=agent-host [] ts=1658328888 cnt=1 min=5 max=5 sum=5 avg=5\n"
	  "sketch daemon host=agent-host [] ts=1658328888 cnt=1 min=5 max=5 sum=5 avg=5\n"),
	CD("daemon:666|h|T1658328888", "", AGGR_DROP_TIMESTAMPED_TYPE, 1),
	CD("daemon:1:2|h|T1658328888", "", AGGR_DROP_TIMESTAMPED_TYPE, 2),
	CD("daemon:666|ms|T1658328888", "", AGGR_DROP_TIMESTAMPED_TYPE, 1),
	CD("daemon:abc|s|T1658328888", "", AGGR_DROP_TIMESTAMPED_TYPE, 1),
	CO("daemon:666|c|@0.5|T1658328888",
	   "rate daemon host=agent-host [] ts=1700000000 i=10 v=133.2\n", OPT_NO_AGG_OFF),

	/* histogram_copy_to_distribution(_prefix) */
	CO("daemon:666|h|#a",
	   "gauge daemon.max host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "gauge daemon.median host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "gauge daemon.avg host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "rate daemon.count host=agent-host [a] ts=1700000000 i=10 v=0.1\n"
	   "gauge daemon.min host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "gauge daemon.sum host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "gauge daemon.95percentile host=agent-host [a] ts=1700000000 i=0 v=666\n"
	   "sketch dist.daemon host=agent-host [a] ts=1700000000 cnt=1 min=666 max=666 sum=666 avg=666\n",
	   OPT_COPY),
	CO("daemon:5|ms|#host:h",
	   "gauge daemon.max host=h [] ts=1700000000 i=0 v=5\n"
	   "gauge daemon.median host=h [] ts=1700000000 i=0 v=5\n"
	   "gauge daemon.avg host=h [] ts=1700000000 i=0 v=5\n"
	   "rate daemon.count host=h [] ts=1700000000 i=10 v=0.1\n"
	   "gauge daemon.min host=h [] ts=1700000000 i=0 v=5\n"
	   "gauge daemon.sum host=h [] ts=1700000000 i=0 v=5\n"
	   "gauge daemon.95percentile host=h [] ts=1700000000 i=0 v=5\n"
	   "sketch daemon host=h [] ts=1700000000 cnt=1 min=5 max=5 sum=5 avg=5\n",
	   OPT_COPY_NOPREFIX),
	CO("daemon:1|h",
	   "gauge daemon.max host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "gauge daemon.median host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "gauge daemon.avg host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "rate daemon.count host=agent-host [] ts=1700000000 i=10 v=0.3\n"
	   "gauge daemon.min host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "gauge daemon.sum host=agent-host [] ts=1700000000 i=0 v=3\n"
	   "gauge daemon.95percentile host=agent-host [] ts=1700000000 i=0 v=1\n"
	   "sketch dist.daemon host=agent-host [] ts=1700000000 cnt=3 min=1 max=1 sum=3 avg=1\n",
	   OPT_COPY | OPT_CACHED),
	CO("daemon:7|d", "sketch daemon host=agent-host [] ts=1700000000 cnt=1 min=7 max=7 sum=7 avg=7\n",
	   OPT_COPY),
	CO("daemon:7|c", "rate daemon host=agent-host [] ts=1700000000 i=10 v=0.7\n", OPT_COPY),
	{ "daemon:7|h|T1658328888",
	  "sketch dist.daemon host=agent-host [] ts=1658328888 cnt=1 min=7 max=7 sum=7 avg=7\n",
	  AGGR_DROP_TIMESTAMPED_TYPE, 1, OPT_COPY },
};

PARAM_TABLE(parity, table, cases)

ParameterizedTest(size_t *idx, parity, table)
{
	const struct pcase *c = &cases[*idx];
	struct aggr_config cfg;
	cfg_init(&cfg);
	if (c->opt & OPT_NO_AGG_OFF)
		cfg.no_aggregation_pipeline = false;
	static double pcts[] = { 0.20, 0.80, 0.95 };
	if (c->opt & OPT_PCTS) {
		cfg.histogram_percentiles = pcts;
		cfg.nhistogram_percentiles = 3;
	}
	if (c->opt & (OPT_COPY | OPT_COPY_NOPREFIX)) {
		cfg.hist_copy_to_dist = true;
		cfg.hist_copy_to_dist_prefix = c->opt & OPT_COPY ? "dist." : "";
	}
	struct aggr *a = aggr_new(&cfg);
	struct dsd_parser *p = dsd_parser_new(NULL);
	cr_assert(a && p);
	int rounds = c->opt & OPT_CACHED ? 3 : 1;
	for (int r = 0; r < rounds; r++) {
		size_t len = strlen(c->in);
		char *buf = malloc(len + 1);
		memcpy(buf, c->in, len);
		fixture_feed(p, a, buf, len, T0 + 1, c->opt & OPT_CACHED);
		free(buf);
	}
	const struct dsd_stats *ps = dsd_parser_stats(p);
	uint64_t errs = ps->metric_errors + ps->event_errors + ps->check_errors;
	cr_assert_eq(errs, 0, "input \"%s\": %llu lines rejected", c->in, (unsigned long long)errs);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_not_null(b);
	char *got = render(b), *want = sorted_lines(c->out);
	cr_assert_str_eq(got, want, "input \"%s\":\ngot:\n%swant:\n%s", c->in, got, want);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	for (int d = 0; d < AGGR_DROP_COUNT; d++)
		cr_assert_eq(st.dropped[d], d == c->drop ? c->ndrop : 0, "input \"%s\": drop %d", c->in, d);
	if ((c->opt & OPT_CACHED) && !cfg.hist_copy_to_dist)
		cr_assert_gt(st.seen_hits, 0, "input \"%s\": never taken by the seen-line cache", c->in);
	free(got);
	free(want);
	batch_free(b);
	dsd_parser_free(p);
	aggr_free(a);
}

/* |T distributions of two pipelines: aggr_emit copies the second out's
 * pending sketch points (strings, tags and bins) into the batch. */
Test(parity, timestamped_sketches_of_two_pipelines)
{
	struct aggr_config cfg;
	cfg_init(&cfg);
	struct aggr *a[2] = { aggr_new(&cfg), aggr_new(&cfg) };
	struct dsd_parser *p = dsd_parser_new(NULL);
	static const char *const in[2] = { "d:5|d|#x|T1658328888", "d:7:9|d|#y|T1658328889" };
	struct aggr_out *outs[2];
	for (int i = 0; i < 2; i++) {
		char buf[64];
		size_t len = strlen(in[i]);
		memcpy(buf, in[i], len);
		fixture_feed(p, a[i], buf, len, T0 + 1, false);
		outs[i] = aggr_collect(a[i], T0 + 10, false);
		cr_assert_not_null(outs[i]);
	}
	struct aggr_emit_stats es;
	struct batch *b = aggr_emit(&cfg, outs, 2, T0 + 10, false, &es);
	cr_assert_not_null(b);
	aggr_out_free(outs[0]);
	aggr_out_free(outs[1]);
	aggr_free(a[0]);
	aggr_free(a[1]);
	char *got = render(b);
	cr_assert_str_eq(got,
			 "sketch d host=agent-host [x] ts=1658328888 cnt=1 min=5 max=5 sum=5 avg=5\n"
			 "sketch d host=agent-host [y] ts=1658328889 cnt=2 min=7 max=9 sum=16 avg=8\n");
	cr_assert_eq(es.sketches, 2);
	cr_assert_eq(es.nomem, 0);
	uint64_t n = 0;
	for (uint32_t i = 0; i < b->sketches[1].nbins; i++)
		n += b->sketches[1].counts[i];
	cr_assert_eq(n, 2);
	free(got);
	batch_free(b);
	dsd_parser_free(p);
}

/* enrich_test.go's TestConvertParse* rows, for every type but sets (g, c,
 * h, ms, d): the host and the tags every flushed record carries. */
Test(parity, enrich_host_and_tags_every_type)
{
	static const char *const types[] = { "g", "c", "h", "ms", "d" };
	static const struct {
		const char *suffix, *host, *tags;
	} rows[] = {
		{ "", "default-hostname", "[]" },
		{ "|#protocol:http,bench", "default-hostname", "[bench,protocol:http]" },
		{ "|#protocol:http,host:custom-host,bench", "custom-host", "[bench,protocol:http]" },
		{ "|#protocol:http,host:,bench", "", "[bench,protocol:http]" },
		{ "|@0.21", "default-hostname", "[]" },
	};
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]); t++) {
		for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++) {
			struct aggr_config cfg;
			cfg_init(&cfg);
			cfg.hostname = "default-hostname";
			struct aggr *a = aggr_new(&cfg);
			struct dsd_parser *p = dsd_parser_new(NULL);
			char line[128];
			int n = snprintf(line, sizeof(line), "daemon:666:777.5|%s%s", types[t], rows[r].suffix);
			fixture_feed(p, a, line, (size_t)n, T0 + 1, false);
			struct batch *b = aggr_flush(a, T0 + 10, false);
			char want[128];
			snprintf(want, sizeof(want), "host=%s %s ts=", rows[r].host, rows[r].tags);
			char *got = render(b);
			size_t lines = 0;
			for (char *l = got; *l; l = strchr(l, '\n') + 1, lines++)
				cr_assert(strstr(l, want) && strstr(l, want) < strchr(l, '\n'),
					  "%s: %.*s lacks \"%s\"", line, (int)(strchr(l, '\n') - l), l, want);
			cr_assert_geq(lines, 1, "%s: nothing flushed", line);
			free(got);
			batch_free(b);
			dsd_parser_free(p);
			aggr_free(a);
		}
	}
}

/* pkg/metrics histogram_test.go TestHistogramPercentiles: every value
 * 1..100 twenty times (in a shuffled order), percentiles 80 and 95. */
Test(parity, histogram_percentiles_1_to_100_twenty_times)
{
	struct aggr_config cfg;
	cfg_init(&cfg);
	static double pcts[] = { 0.95, 0.80 };
	cfg.histogram_percentiles = pcts;
	cfg.nhistogram_percentiles = 2;
	struct aggr *a = aggr_new(&cfg);
	struct dsd_parser *p = dsd_parser_new(NULL);
	for (int k = 0; k < 100; k++) {
		int v = (k * 37) % 100 + 1; /* 37 is prime to 100: each value once */
		char line[256];
		int n = snprintf(line, sizeof(line), "h:%d", v);
		for (int j = 1; j < 20; j++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, ":%d", v);
		n += snprintf(line + n, sizeof(line) - (size_t)n, "|h");
		fixture_feed(p, a, line, (size_t)n, T0 + 1, false);
	}
	struct batch *b = aggr_flush(a, T0 + 10, false);
	char *got = render(b), *want = sorted_lines(
		"gauge h.max host=agent-host [] ts=1700000000 i=0 v=100\n"
		"gauge h.median host=agent-host [] ts=1700000000 i=0 v=50\n"
		"gauge h.avg host=agent-host [] ts=1700000000 i=0 v=50.5\n"
		"rate h.count host=agent-host [] ts=1700000000 i=10 v=200\n"
		"gauge h.min host=agent-host [] ts=1700000000 i=0 v=1\n"
		"gauge h.sum host=agent-host [] ts=1700000000 i=0 v=101000\n"
		"gauge h.80percentile host=agent-host [] ts=1700000000 i=0 v=80\n"
		"gauge h.95percentile host=agent-host [] ts=1700000000 i=0 v=95\n");
	cr_assert_str_eq(got, want, "got:\n%swant:\n%s", got, want);
	free(got);
	free(want);
	batch_free(b);
	dsd_parser_free(p);
	aggr_free(a);
}
