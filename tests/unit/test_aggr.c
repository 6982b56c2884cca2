/*
 * test_aggr.c - the aggregator: buckets, every metric type, enrichment,
 * caps, expiry, timestamped samples, events. Time is passed in; every
 * expected value is exact unless the comment says otherwise.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "aggr/aggr_int.h" /* the overflow and refused tables */
#include "aggr/hist.h"
#include "fixture.h"

#define T0 1700000000 /* a bucket boundary */

static char *blacklist[] = { "datadog.agent", "datadog.dogstatsd" };

static struct aggr_config base_config(void)
{
	struct aggr_config c;
	fixture_aggr_config(&c);
	c.namespace_blacklist = blacklist;
	c.nnamespace_blacklist = 2;
	c.max_contexts = 1000000;
	c.max_contexts_per_metric = 100000;
	return c;
}

/* What a test changes in base_config(). */
typedef void config_tweak(struct aggr_config *c);

/* An aggr on base_config() changed by tweak (NULL: as it is), the config
 * kept in a static because the aggr borrows it (each test runs in a process
 * of its own; one such aggr at a time). */
static struct aggr *aggr_with(config_tweak *tweak)
{
	static struct aggr_config c;
	c = base_config();
	if (tweak)
		tweak(&c);
	return fixture_aggr_new(&c);
}

/* Sends one metric; tags is a comma-separated list ("" = none). */
static void send_full(struct aggr *a, const char *name, enum metric_type t, const double *v, size_t nv,
		      double rate, const char *tags, bool sign, int64_t ts, int64_t now)
{
	static char tagbuf[4096];
	struct sv tv[64];
	size_t nt = fixture_split_tags(tags, tagbuf, sizeof(tagbuf), tv, 64);
	struct dsd_metric m = {
		.name = sv_from_cstr(name), .type = t, .values = v, .nvalues = nv,
		.explicit_sign = sign, .sample_rate = rate, .tags = tv, .ntags = nt, .timestamp = ts,
	};
	aggr_ingest(a, &m, now);
}

static void send(struct aggr *a, const char *name, enum metric_type t, double v, double rate,
		 const char *tags, int64_t now)
{
	send_full(a, name, t, &v, 1, rate, tags, false, 0, now);
}

static void send_set(struct aggr *a, const char *name, const char *member, int64_t now)
{
	double dummy = 0;
	struct dsd_metric m = { .name = sv_from_cstr(name), .type = METRIC_SET, .values = &dummy,
				.nvalues = 1, .set_member = sv_from_cstr(member), .sample_rate = 1 };
	aggr_ingest(a, &m, now);
}

static const struct series *find(const struct batch *b, const char *name, const char *tags, int64_t ts)
{
	char j[4096];
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		fixture_join_tags(s->tags, s->ntags, j, sizeof(j));
		if (strcmp(s->name, name) == 0 && strcmp(j, tags) == 0 && s->ts == ts)
			return s;
	}
	return NULL;
}

static double value_of(const struct batch *b, const char *name, const char *tags, int64_t ts)
{
	const struct series *s = find(b, name, tags, ts);
	cr_assert(s, "no series %s{%s}@%lld", name, tags, (long long)ts);
	return s->value;
}

static struct aggr_stats stats_of(const struct aggr *a)
{
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	return st;
}

static uint64_t contexts(const struct aggr *a)
{
	return stats_of(a).contexts;
}

#define LEN(x) (sizeof(x) / sizeof((x)[0]))

/* A sample as send_full takes it, received at T0 + dt. */
struct smp {
	const char *name;
	enum metric_type t;
	double v, rate;
	const char *tags;
	int64_t dt;
	bool sign;
	int64_t ts; /* the sample's own timestamp; 0: none */
};

/* name, type, value, sample rate, tags, received at T0 + at */
#define IN(nm, ty, val, rt, tg, at)                                                   \
	{ .name = (nm), .t = (ty), .v = (val), .rate = (rt), .tags = (tg), .dt = (at) }
/* a gauge with an explicit sign, rate 1, no tags */
#define SIGNED(nm, val, at)                                                            \
	{ .name = (nm), .t = METRIC_GAUGE, .v = (val), .rate = 1, .tags = "", .dt = (at), \
	  .sign = true }
/* timestamped T0 + ts, received at T0 + 1, rate 1, no tags */
#define STAMPED(nm, ty, val, ts_)                                                      \
	{ .name = (nm), .t = (ty), .v = (val), .rate = 1, .tags = "", .dt = 1, .ts = T0 + (ts_) }

/* SAMPLES(IN(...), ...): an array and its length. */
#define SAMPLES(...) (const struct smp[]){ __VA_ARGS__ }, LEN(((const struct smp[]){ __VA_ARGS__ }))

static void feed(struct aggr *a, const struct smp *in, size_t n)
{
	for (size_t i = 0; i < n; i++)
		send_full(a, in[i].name, in[i].t, &in[i].v, 1, in[i].rate, in[i].tags, in[i].sign,
			  in[i].ts, T0 + in[i].dt);
}

/* A series a batch must hold: name{tags} at T0 + dt, its value equal to
 * value (within tol when tol > 0; any value when value is NAN); when
 * check_kind, interval > 0 or host is set, those as well. */
struct want {
	const char *name, *tags;
	int64_t dt;
	double value, tol;
	bool check_kind;
	enum series_kind kind;
	uint32_t interval;
	const char *host;
};

/* Exactly the value / within 1e-12 of it / there, any value. After the
 * value, KIND(k), .interval = n and .host = "h" add those checks. */
#define EQ(nm, tg, at, ...) { .name = (nm), .tags = (tg), .dt = (at), .value = __VA_ARGS__ }
#define NEAR(nm, tg, at, ...)                                                     \
	{ .name = (nm), .tags = (tg), .dt = (at), .tol = 1e-12, .value = __VA_ARGS__ }
#define HAS(nm, tg, at) { .name = (nm), .tags = (tg), .dt = (at), .value = NAN }
#define KIND(k) .check_kind = true, .kind = (k)

/* WANT(EQ(...), NEAR(...), HAS(...), ...): an array and its length. */
#define WANT(...) (const struct want[]){ __VA_ARGS__ }, LEN(((const struct want[]){ __VA_ARGS__ }))

static void expect_series(const struct batch *b, const struct want *w, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const struct series *s = find(b, w[i].name, w[i].tags, T0 + w[i].dt);
		cr_assert(s, "no series %s{%s} at T0%+lld", w[i].name, w[i].tags,
			  (long long)w[i].dt);
		if (w[i].tol > 0)
			cr_assert_float_eq(s->value, w[i].value, w[i].tol, "%s{%s}: %.17g",
					   w[i].name, w[i].tags, s->value);
		else if (!isnan(w[i].value))
			cr_assert_eq(s->value, w[i].value, "%s{%s}: %.17g", w[i].name, w[i].tags,
				     s->value);
		if (w[i].check_kind)
			cr_assert_eq(s->kind, w[i].kind, "%s{%s}: kind %d", w[i].name, w[i].tags,
				     (int)s->kind);
		if (w[i].interval)
			cr_assert_eq(s->interval, w[i].interval, "%s{%s}", w[i].name, w[i].tags);
		if (w[i].host)
			cr_assert_str_eq(s->host, w[i].host, "%s{%s}", w[i].name, w[i].tags);
	}
}

/* A flush at T0 + dt, final or not: the batch holds exactly nseries series
 * and nsketches sketches, want[] among the series. */
struct flush_want {
	int64_t dt;
	bool final;
	size_t nseries, nsketches;
	const struct want *w;
	size_t nw;
};

/* FLUSH(dt, final, nseries, nsketches, EQ(...), ...); FLUSH_COUNTS without
 * series rows. FLUSHES(FLUSH(...), ...): an array and its length. */
#define FLUSH(at, fin, ns, nk, ...)                                                         \
	{ .dt = (at), .final = (fin), .nseries = (ns), .nsketches = (nk), WANT(__VA_ARGS__) }
#define FLUSH_COUNTS(at, fin, ns, nk)                                                \
	{ .dt = (at), .final = (fin), .nseries = (ns), .nsketches = (nk) }
#define FLUSHES(...)                                                                           \
	(const struct flush_want[]){ __VA_ARGS__ },                                            \
		LEN(((const struct flush_want[]){ __VA_ARGS__ }))

static void expect_flush(struct aggr *a, const struct flush_want *f)
{
	struct batch *b = aggr_flush(a, T0 + f->dt, f->final);
	cr_assert_eq(b->nseries, f->nseries, "flush at T0%+lld: %zu series", (long long)f->dt,
		     b->nseries);
	cr_assert_eq(b->nsketches, f->nsketches, "flush at T0%+lld: %zu sketches", (long long)f->dt,
		     b->nsketches);
	expect_series(b, f->w, f->nw);
	batch_free(b);
}

/* The aggr of check_buckets: aggr_with(tweak); after the samples it holds
 * `contexts` contexts (0: not checked). */
struct bucket {
	config_tweak *tweak;
	uint64_t contexts;
};

/* A fresh aggr fed in[], then flushed as f[] says. */
static void check_buckets(struct bucket k, const struct smp *in, size_t nin,
			  const struct flush_want *f, size_t nf)
{
	struct aggr *a = aggr_with(k.tweak);
	feed(a, in, nin);
	if (k.contexts)
		cr_assert_eq(contexts(a), k.contexts);
	for (size_t i = 0; i < nf; i++)
		expect_flush(a, &f[i]);
	aggr_free(a);
}

Test(aggr, counter_sample_rates_and_closed_buckets)
{
	check_buckets((struct bucket){ 0 },
		      SAMPLES(IN("req", METRIC_COUNT, 1, 0.5, "", 1),
			      IN("req", METRIC_COUNT, 2, 0.5, "", 9),
			      IN("low", METRIC_COUNT, 1, 0.1, "", 3)),
		      FLUSHES(FLUSH_COUNTS(9, false, 0, 0), /* the open bucket stays */
			      FLUSH(10, false, 2, 0,
				    NEAR("req", "", 0, 0.6, KIND(SERIES_RATE), .interval = 10,
					 .host = "myhost"),		/* (1/0.5 + 2/0.5) / 10 */
				    NEAR("low", "", 0, 1.0))));	/* 1/0.1/10 */
}

Test(aggr, samples_bucketed_by_receive_time)
{
	check_buckets((struct bucket){ 0 },
		      SAMPLES(IN("g", METRIC_GAUGE, 1, 1, "", 5),
			      IN("g", METRIC_GAUGE, 2, 1, "", 12),
			      IN("g", METRIC_GAUGE, 3, 1, "", 25)),
		      FLUSHES(FLUSH(27, false, 2, 0, EQ("g", "", 0, 1),
				    EQ("g", "", 10, 2, KIND(SERIES_GAUGE))),
			      FLUSH(30, true, 1, 0, EQ("g", "", 20, 3))));
}

Test(aggr, gauge_last_value_and_signs_absolute_by_default)
{
	struct aggr *a = aggr_with(NULL);
	double v[] = { 10, 5 };
	send(a, "g", METRIC_GAUGE, 7, 1, "", T0);
	send_full(a, "g", METRIC_GAUGE, v, 2, 1, "", true, 0, T0 + 1);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(value_of(b, "g", "", T0), 5);
	batch_free(b);
	aggr_free(a);
}

static void gauge_deltas(struct aggr_config *c)
{
	c->gauge_deltas = true;
}

Test(aggr, gauge_deltas_option)
{
	check_buckets((struct bucket){ .tweak = gauge_deltas },
		      SAMPLES(IN("g", METRIC_GAUGE, 10, 1, "", 0),
			      SIGNED("g", 5, 1),
			      SIGNED("g", -3, 2),
			      SIGNED("g", 1, 11), /* next bucket: from 12 */
			      SIGNED("d", 5, 3)), /* no previous value */
		      FLUSHES(FLUSH(20, false, 3, 0, EQ("g", "", 0, 12), EQ("g", "", 10, 13),
				    EQ("d", "", 0, 5))));
}

/* min and sum too; the median and the 95th and 99th percentiles */
static void all_aggregates(struct aggr_config *c)
{
	static double pcts[] = { 0.5, 0.95, 0.99 };
	c->histogram_percentiles = pcts;
	c->nhistogram_percentiles = 3;
	c->histogram_aggregates = HIST_AGG_DEFAULT | HIST_AGG_MIN | HIST_AGG_SUM;
}

Test(aggr, histogram_1_to_100)
{
	struct aggr *a = aggr_with(all_aggregates);
	for (int i = 100; i >= 1; i--) /* out of order on purpose */
		send(a, "lat", i % 2 ? METRIC_HISTOGRAM : METRIC_TIMING, i, 1, "x:y", T0 + 2);
	expect_flush(a, &(const struct flush_want)FLUSH(
		10, false, 9, 0, EQ("lat.max", "x:y", 0, 100, KIND(SERIES_GAUGE)),
		EQ("lat.min", "x:y", 0, 1), EQ("lat.median", "x:y", 0, 50), /* lower middle */
		NEAR("lat.avg", "x:y", 0, 50.5), EQ("lat.sum", "x:y", 0, 5050),
		NEAR("lat.count", "x:y", 0, 10.0, KIND(SERIES_RATE), .interval = 10),
		EQ("lat.50percentile", "x:y", 0, 50), EQ("lat.95percentile", "x:y", 0, 95),
		EQ("lat.99percentile", "x:y", 0, 99)));
	aggr_free(a);
}

Test(aggr, histogram_small_counts_nearest_rank)
{
	struct aggr *a = aggr_with(NULL);
	for (int i = 1; i <= 10; i++)
		send(a, "h", METRIC_HISTOGRAM, i * 10, 1, "", T0);
	send(a, "one", METRIC_HISTOGRAM, 42, 1, "", T0);
	expect_flush(a, &(const struct flush_want)FLUSH(
		10, false, 10, 0, EQ("h.95percentile", "", 0, 100), /* ceil(9.5) = 10th */
		EQ("h.median", "", 0, 50),			     /* 5th of 10 */
		EQ("one.median", "", 0, 42), EQ("one.95percentile", "", 0, 42)));
	aggr_free(a);
}

static void with_sum(struct aggr_config *c)
{
	c->histogram_aggregates |= HIST_AGG_SUM;
}

Test(aggr, histogram_weighted_samples)
{
	/* W = 4, sum = 7: median target 1.5 -> cum 2 at value 1; p95 target 3.79 -> 3 */
	check_buckets((struct bucket){ .tweak = with_sum },
		      SAMPLES(IN("w", METRIC_HISTOGRAM, 1, 0.5, "", 0), /* weight 2 */
			      IN("w", METRIC_HISTOGRAM, 2, 1, "", 0),
			      IN("w", METRIC_HISTOGRAM, 3, 1, "", 0)),
		      FLUSHES(FLUSH(10, false, 6, 0, NEAR("w.count", "", 0, 0.4),
				    NEAR("w.sum", "", 0, 7), NEAR("w.avg", "", 0, 1.75),
				    EQ("w.median", "", 0, 1), EQ("w.95percentile", "", 0, 3))));
}

Test(aggr, histogram_folds_into_sketch_past_cap)
{
	struct hist *h = hist_new(100);
	for (int i = 1; i <= 1000; i++)
		cr_assert_eq(hist_add(h, i, 1), 0);
	cr_assert(h->sk != NULL, "not folded");
	struct hist_summary s = { .npct = 1, .pct = { 95 } };
	hist_summarise(h, &s);
	cr_assert_eq(s.count, 1000);
	cr_assert_eq(s.sum, 500500);
	cr_assert_eq(s.min, 1);
	cr_assert_eq(s.max, 1000);
	/* sketch rank round(q*(n-1)): median is sample 500 (index 500 -> 501) */
	cr_assert(fabs(s.median - 501) / 501 <= 0.01, "median %g", s.median);
	cr_assert(fabs(s.pct_value[0] - 950) / 950 <= 0.01, "p95 %g", s.pct_value[0]);
	hist_free(h);
}

static void exact_to_1000(struct aggr_config *c)
{
	c->set_exact_max = 1000;
}

Test(aggr, sets_exact_and_hll)
{
	struct aggr *a = aggr_with(exact_to_1000);
	send_set(a, "users", "alice", T0);
	send_set(a, "users", "bob", T0);
	send_set(a, "users", "alice", T0 + 1);
	send_set(a, "users", "a:b", T0 + 2);
	char m[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(m, sizeof(m), "m%d", i);
		send_set(a, "exact", m, T0);
	}
	for (int i = 0; i < 100000; i++) {
		snprintf(m, sizeof(m), "member-%d", i);
		send_set(a, "big", m, T0);
		if (i % 3 == 0)
			send_set(a, "big", m, T0); /* repeats do not count */
	}
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(value_of(b, "users", "", T0), 3);
	cr_assert_eq(find(b, "users", "", T0)->kind, SERIES_GAUGE);
	cr_assert_eq(value_of(b, "exact", "", T0), 1000);
	double est = value_of(b, "big", "", T0);
	cr_assert(fabs(est - 100000) / 100000 <= 3 * 0.008125, "HLL estimate %g", est);
	batch_free(b);
	aggr_free(a);
}

static void expiry_30s(struct aggr_config *c)
{
	c->expiry_seconds = 30;
}

Test(aggr, counter_zero_fill_then_expiry)
{
	struct aggr *a = aggr_with(expiry_30s);
	send(a, "c", METRIC_COUNT, 5, 1, "", T0 + 5);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_float_eq(value_of(b, "c", "", T0), 0.5, 1e-12);
	batch_free(b);
	/* Buckets T0+10, +20, +30 start before last sample + 30 = T0+35: zero. */
	for (int k = 1; k <= 3; k++) {
		b = aggr_flush(a, T0 + 10 * (k + 1), false);
		cr_assert_eq(b->nseries, 1, "flush %d", k);
		cr_assert_eq(value_of(b, "c", "", T0 + 10 * k), 0);
		cr_assert_eq(b->series[0].kind, SERIES_RATE);
		batch_free(b);
	}
	cr_assert_eq(contexts(a), 0, "counter not expired");
	b = aggr_flush(a, T0 + 50, false);
	cr_assert_eq(b->nseries, 0);
	batch_free(b);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts_expired, 1);
	aggr_free(a);
}

Test(aggr, counter_gap_zero_filled_and_flush_catch_up)
{
	/* the flush at T0 + 30 closes three buckets at once */
	check_buckets((struct bucket){ 0 },
		      SAMPLES(IN("c", METRIC_COUNT, 1, 1, "", 1),
			      IN("c", METRIC_COUNT, 3, 1, "", 21)),
		      FLUSHES(FLUSH(30, false, 3, 0, NEAR("c", "", 0, 0.1), EQ("c", "", 10, 0),
				    NEAR("c", "", 20, 0.3))));
}

Test(aggr, context_expiry_returns_memory)
{
	struct aggr *a = aggr_with(NULL);
	struct aggr_stats st0, st1, st2;
	aggr_get_stats(a, &st0);
	char tags[64];
	for (int i = 0; i < 5000; i++) {
		snprintf(tags, sizeof(tags), "id:%d,env:prod", i);
		send(a, "g", METRIC_GAUGE, i, 1, tags, T0 + 1);
		send(a, "h", METRIC_HISTOGRAM, i, 1, tags, T0 + 1);
	}
	aggr_get_stats(a, &st1);
	cr_assert_eq(st1.contexts, 10000);
	cr_assert_gt(st1.memory_bytes, st0.memory_bytes + 10000 * 64);
	batch_free(aggr_flush(a, T0 + 10, false));
	cr_assert_eq(contexts(a), 10000, "expired too early");
	batch_free(aggr_flush(a, T0 + 20, false));
	cr_assert_eq(contexts(a), 10000, "expired before 20 s");
	batch_free(aggr_flush(a, T0 + 21, false));
	aggr_get_stats(a, &st2);
	cr_assert_eq(st2.contexts, 0);
	cr_assert_eq(st2.contexts_expired, 10000);
	cr_assert_lt(st2.memory_bytes, st0.memory_bytes + 4096,
		     "memory not returned: %zu vs %zu", st2.memory_bytes, st0.memory_bytes);
	aggr_free(a);
}

Test(aggr, tag_order_and_duplicates_do_not_matter)
{
	check_buckets((struct bucket){ .contexts = 2 },
		      SAMPLES(IN("c", METRIC_COUNT, 1, 1, "a,b,a", 0),
			      IN("c", METRIC_COUNT, 1, 1, "b,a", 0),
			      IN("c", METRIC_COUNT, 1, 1, "b,b,a,a,b", 0),
			      IN("c", METRIC_COUNT, 1, 1, "a", 0)),
		      FLUSHES(FLUSH(10, false, 2, 0, NEAR("c", "a,b", 0, 0.3),
				    NEAR("c", "a", 0, 0.1))));
}

Test(aggr, many_tags_sorted_output)
{
	check_buckets((struct bucket){ .contexts = 1 },
		      SAMPLES(IN("c", METRIC_COUNT, 1, 1, "k,j,i,h,g,f,e,d,c,b,a,a,k", 0),
			      IN("c", METRIC_COUNT, 1, 1, "a,b,c,d,e,f,g,h,i,j,k", 0)),
		      FLUSHES(FLUSH(10, false, 1, 0, NEAR("c", "a,b,c,d,e,f,g,h,i,j,k", 0, 0.2))));
}

Test(aggr, host_tag_overrides_host)
{
	struct aggr *a = aggr_with(NULL);
	feed(a, SAMPLES(IN("c", METRIC_COUNT, 1, 1, "x,host:web1", 0),
			IN("c", METRIC_COUNT, 1, 1, "host:,x", 0),
			IN("c", METRIC_COUNT, 1, 1, "x", 0)));
	cr_assert_eq(contexts(a), 3);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(b->nseries, 3);
	int seen = 0;
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		cr_assert_eq(s->ntags, 1);
		cr_assert_str_eq(s->tags[0], "x");
		if (strcmp(s->host, "web1") == 0)
			seen |= 1;
		else if (strcmp(s->host, "") == 0)
			seen |= 2;
		else if (strcmp(s->host, "myhost") == 0)
			seen |= 4;
	}
	cr_assert_eq(seen, 7);
	batch_free(b);
	aggr_free(a);
}

static void namespace_app(struct aggr_config *c)
{
	c->namespace = "app";
}

static void namespace_svc_dot(struct aggr_config *c)
{
	c->namespace = "svc.";
}

Test(aggr, namespace_and_blacklist)
{
	check_buckets((struct bucket){ .tweak = namespace_app },
		      SAMPLES(IN("req", METRIC_COUNT, 1, 1, "", 0),
			      IN("datadog.agent.up", METRIC_GAUGE, 1, 1, "", 0),
			      IN("datadog.dogstatsd.x", METRIC_GAUGE, 1, 1, "", 0)),
		      FLUSHES(FLUSH(10, false, 3, 0, HAS("app.req", "", 0),
				    HAS("datadog.agent.up", "", 0),
				    HAS("datadog.dogstatsd.x", "", 0))));
	/* the dot is neither doubled nor missing */
	check_buckets((struct bucket){ .tweak = namespace_svc_dot },
		      SAMPLES(IN("req", METRIC_COUNT, 1, 1, "", 0)),
		      FLUSHES(FLUSH(10, false, 1, 0, HAS("svc.req", "", 0))));
}

static void tags_env_team(struct aggr_config *c)
{
	static char *gt[] = { "env:prod", "team:core" };
	c->tags = gt;
	c->ntags = 2;
}

Test(aggr, global_tags_added_and_deduplicated)
{
	check_buckets((struct bucket){ .tweak = tags_env_team, .contexts = 1 },
		      SAMPLES(IN("c", METRIC_COUNT, 1, 1, "env:prod,b", 0),
			      IN("c", METRIC_COUNT, 1, 1, "b", 0)),
		      FLUSHES(FLUSH(10, false, 1, 0, NEAR("c", "b,env:prod,team:core", 0, 0.2))));
}

Test(aggr, reconfigure_applies_to_new_samples)
{
	struct aggr_config c1 = base_config(), c2 = base_config();
	static char *gt[] = { "v:2" };
	c2.tags = gt;
	c2.ntags = 1;
	c2.namespace = "n";
	struct aggr *a = fixture_aggr_new(&c1);
	send(a, "c", METRIC_COUNT, 1, 1, "", T0);
	aggr_reconfigure(a, &c2);
	send(a, "c", METRIC_COUNT, 1, 1, "", T0);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert(find(b, "c", "", T0));
	cr_assert(find(b, "n.c", "v:2", T0));
	batch_free(b);
	aggr_free(a);
}

/* What aggr_top reports for a metric (key NULL: its top tag not checked). */
struct top_want {
	const char *name;
	uint64_t contexts, refused;
	const char *key;
	uint64_t values;
};

#define TOP(nm, n, r, k, v)                                                          \
	{ .name = (nm), .contexts = (n), .refused = (r), .key = (k), .values = (v) }

/* A capped aggr fed ten samples of one metric, the i-th tagged fmt
 * formatted with i and i % 2, then extra[]: it holds `contexts` contexts,
 * refused `dropped` samples for `why`, and aggr_top reports top[]. */
struct cap_case {
	config_tweak *cap;
	const char *name;
	enum metric_type t;
	const char *fmt;
	struct smp extra[2];
	size_t nextra;
	uint64_t contexts;
	enum aggr_drop why;
	uint64_t dropped;
	struct top_want top[2];
	size_t ntop;
};

/* Runs k; returns the aggr for the test's own checks. */
static struct aggr *check_cap(const struct cap_case *k)
{
	struct aggr *a = aggr_with(k->cap);
	char tags[64];
	for (int i = 0; i < 10; i++) {
		snprintf(tags, sizeof(tags), k->fmt, i, i % 2);
		send(a, k->name, k->t, 1, 1, tags, T0);
	}
	feed(a, k->extra, k->nextra);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.contexts, k->contexts);
	cr_assert_eq(st.dropped[k->why], k->dropped);
	struct aggr_top_entry top[4];
	cr_assert_eq(aggr_top(a, top, 4), k->ntop);
	for (size_t i = 0; i < k->ntop; i++) {
		const struct top_want *w = &k->top[i];
		cr_assert_str_eq(top[i].name, w->name);
		cr_assert_eq(top[i].contexts, w->contexts, "%s", w->name);
		cr_assert_eq(top[i].refused, w->refused, "%s", w->name);
		if (!w->key)
			continue;
		cr_assert_str_eq(top[i].top_tag_key, w->key, "%s", w->name);
		cr_assert_eq(top[i].top_tag_values, w->values, "%s", w->name);
	}
	return a;
}

static void cap_contexts_5(struct aggr_config *c)
{
	c->max_contexts = 5;
}

Test(aggr, overall_context_cap)
{
	struct aggr *a = check_cap(&(const struct cap_case){
		.cap = cap_contexts_5, .name = "m", .t = METRIC_COUNT, .fmt = "id:%d",
		/* an existing context: accepted */
		.extra = { IN("m", METRIC_COUNT, 1, 1, "id:0", 0) },
		.nextra = 1, .contexts = 5, .why = AGGR_DROP_CONTEXT_CAP, .dropped = 5,
		.top = { TOP("m", 5, 5, NULL, 0) }, .ntop = 1 });
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.samples_in, 11);
	expect_flush(a, &(const struct flush_want)FLUSH(10, false, 5, 0,
							NEAR("m", "id:0", 0, 0.2)));
	aggr_free(a);
}

static void cap_per_metric_3(struct aggr_config *c)
{
	c->max_contexts_per_metric = 3;
}

Test(aggr, per_metric_cap_and_top_names_offending_tag)
{
	struct aggr *a = check_cap(&(const struct cap_case){
		.cap = cap_per_metric_3, .name = "cpu", .t = METRIC_GAUGE,
		.fmt = "instance_id:i-%d,region:eu,az:%d",
		.extra = { IN("mem", METRIC_GAUGE, 1, 1, "region:eu", 0),
			   IN("mem", METRIC_GAUGE, 1, 1, "region:us", 0) },
		.nextra = 2, .contexts = 5, .why = AGGR_DROP_METRIC_CAP, .dropped = 7,
		.top = { TOP("cpu", 3, 7, "instance_id", 3), TOP("mem", 2, 0, "region", 2) },
		.ntop = 2 });
	struct aggr_top_entry top[4];
	cr_assert_eq(aggr_top(a, top, 1), 1);
	cr_assert_str_eq(top[0].name, "cpu");
	aggr_free(a);
}

/* The one item of table t. */
static void *only_item(const struct ptab *t)
{
	cr_assert_eq(t->n, 1);
	for (size_t i = 0; i < t->cap; i++)
		if (ptab_at(t, i))
			return ptab_at(t, i);
	cr_assert_fail("no item in a table of 1");
	return NULL;
}

/* A name's refused count is an entry of the aggregator's side table while
 * the name is in the pool (memory_bytes counts the table and the entry) and
 * goes when the name's last context expires: the name made again, even in
 * the block it had (the allocator reuses it: its size class is its own),
 * starts at 0 refused. */
Test(aggr, refused_count_goes_with_its_name)
{
	static const char nm[] = "a.metric.name.of.a.size.class.of.its.own.0123456789";
	struct aggr *a = aggr_with(cap_per_metric_3);
	for (int i = 0; i < 3; i++) {
		char tags[16];
		snprintf(tags, sizeof(tags), "id:%d", i);
		send(a, nm, METRIC_GAUGE, 1, 1, tags, T0);
	}
	const struct istr *old = only_item(&a->names.t);
	uint64_t before = stats_of(a).memory_bytes;
	cr_assert_eq(a->refused.n, 0);
	send(a, nm, METRIC_GAUGE, 1, 1, "id:3", T0);
	send(a, nm, METRIC_GAUGE, 1, 1, "id:4", T0);
	cr_assert_eq(stats_of(a).dropped[AGGR_DROP_METRIC_CAP], 2);
	const struct refusal *r = only_item(&a->refused);
	cr_assert_eq(r->k.key, old);
	cr_assert_eq(aggr_refused(a, old), 2);
	cr_assert_eq(stats_of(a).memory_bytes - before,
		     PTAB_MIN * sizeof(uint64_t) + sizeof(struct refusal) + AGGR_MALLOC_OVERHEAD);
	struct aggr_top_entry top[2];
	cr_assert_eq(aggr_top(a, top, 2), 1);
	cr_assert_eq(top[0].refused, 2);

	batch_free(aggr_flush(a, T0 + 21, false)); /* expired: the name is unlinked */
	cr_assert_eq(contexts(a), 0);
	cr_assert_eq(a->refused.n, 0);
	cr_assert_eq(a->refused.cap, 0, "the table not given back");
	cr_assert_eq(aggr_refused(a, old), 0);

	send(a, nm, METRIC_GAUGE, 1, 1, "id:0", T0 + 30);
	const struct istr *again = only_item(&a->names.t);
	cr_assert_eq(aggr_refused(a, again), 0);
	cr_assert_eq(aggr_top(a, top, 2), 1);
	cr_assert_str_eq(top[0].name, nm);
	cr_assert_eq(top[0].contexts, 1);
	cr_assert_eq(top[0].refused, 0, "the name %s its old block inherited a count",
		     again == old ? "in" : "outside");
	aggr_free(a);
}

/* The report in steps (what a receive pipeline runs, reading its sockets
 * between steps) gives the one-shot report's rows, also with contexts freed
 * (reused slab slots are skipped while dead) and samples ingested between
 * steps: a context created behind the walk is not counted, one ahead is. */
Test(aggr, top_in_steps_matches_one_walk)
{
	struct aggr *a = aggr_with(NULL);
	char tags[64];
	for (int i = 0; i < 9000; i++) {
		snprintf(tags, sizeof(tags), "host_id:h%d,az:%d", i, i % 3);
		send(a, i % 3 ? "cpu" : "mem", METRIC_GAUGE, 1, 1, tags, T0);
	}
	struct aggr_top_entry one[3], step[3];
	size_t n1 = aggr_top(a, one, 3);
	cr_assert_eq(n1, 2);
	struct aggr_top_walk *w = aggr_top_begin(a, 3);
	cr_assert_not_null(w);
	int steps = 1;
	while (!aggr_top_step(a, w, 1000))
		steps++;
	cr_assert_eq(steps, 9, "9000 contexts in steps of 1000: %d steps", steps);
	cr_assert_eq(aggr_top_end(w, step), n1);
	cr_assert(memcmp(one, step, sizeof(one[0]) * n1) == 0);
	cr_assert_str_eq(step[0].name, "cpu");
	cr_assert_eq(step[0].contexts, 6000);
	cr_assert_str_eq(step[0].top_tag_key, "host_id");
	cr_assert_eq(step[0].top_tag_values, 6000);

	/* new contexts between steps: the ones past the walk are counted */
	w = aggr_top_begin(a, 3);
	cr_assert_not_null(w);
	cr_assert_not(aggr_top_step(a, w, 4500));
	for (int i = 0; i < 30; i++) {
		snprintf(tags, sizeof(tags), "host_id:new%d", i);
		send(a, "cpu", METRIC_GAUGE, 1, 1, tags, T0);
	}
	while (!aggr_top_step(a, w, 1000))
		;
	cr_assert_eq(aggr_top_end(w, step), 2);
	cr_assert_eq(step[0].contexts, 6030, "rows are chosen at begin, counted at end");
	cr_assert_eq(step[0].top_tag_values, 6030);

	/* a walk given up (the pipeline freed with a report in progress) */
	w = aggr_top_begin(a, 3);
	cr_assert_not(aggr_top_step(a, w, 10));
	cr_assert_eq(aggr_top_end(w, NULL), 0);
	cr_assert_eq(aggr_top_end(NULL, step), 0);
	aggr_free(a);
}

/* a web. profile that maps web.*.req.* to web.requests; namespace "ns" */
static void web_profile(struct aggr_config *c)
{
	static char *tk[] = { "service", "route" };
	static char *tv[] = { "$1", "${2}" };
	static struct mapper_mapping mm[] = {
		{ .match = "web.*.req.*", .match_type = MAPPER_MATCH_WILDCARD, .name = "web.requests",
		  .tag_keys = tk, .tag_values = tv, .ntags = 2 },
	};
	static struct mapper_profile mp[] = { { .name = "web", .prefix = "web.", .mappings = mm, .nmappings = 1 } };
	c->mapper_profiles = mp;
	c->nmapper_profiles = 1;
	c->namespace = "ns";
}

Test(aggr, mapper_profiles_applied_before_namespace)
{
	check_buckets((struct bucket){ .tweak = web_profile },
		      SAMPLES(IN("web.shop.req.home", METRIC_COUNT, 1, 1, "x", 0),
			      IN("web.shop.other", METRIC_COUNT, 1, 1, "", 0)),
		      FLUSHES(FLUSH(10, false, 2, 0,
				    HAS("ns.web.requests", "route:home,service:shop,x", 0),
				    HAS("ns.web.shop.other", "", 0))));
}

Test(aggr, timestamped_samples_bypass_buckets)
{
	struct aggr *a = aggr_with(NULL);
	double v = 42, v2[] = { 20, 30 };
	send_full(a, "tg", METRIC_GAUGE, &v, 1, 1, "b,a,b", false, T0 - 3600, T0 + 1);
	send_full(a, "tc", METRIC_COUNT, v2, 2, 1, "", false, T0 - 7, T0 + 1);
	send_full(a, "th", METRIC_HISTOGRAM, &v, 1, 1, "", false, T0 - 7, T0 + 1);
	send_full(a, "td", METRIC_DISTRIBUTION, &v, 1, 1, "", false, T0 - 7, T0 + 1);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	cr_assert_eq(st.dropped[AGGR_DROP_TIMESTAMPED_TYPE], 1); /* th; td is a sketch point */
	cr_assert_eq(st.contexts, 0);
	struct batch *b = aggr_flush(a, T0 + 2, false); /* not waiting for the bucket */
	cr_assert_eq(b->nseries, 3);
	cr_assert_eq(b->nsketches, 1);
	cr_assert_eq(b->sketches[0].ts, T0 - 7);
	cr_assert_eq(b->sketches[0].cnt, 1);
	cr_assert_eq(b->sketches[0].sum, 42);
	const struct series *s = find(b, "tg", "a,b", T0 - 3600);
	cr_assert(s);
	cr_assert_eq(s->kind, SERIES_GAUGE);
	cr_assert_eq(s->value, 42);
	cr_assert_str_eq(s->host, "myhost");
	for (size_t i = 0; i < b->nseries; i++) {
		s = &b->series[i];
		if (strcmp(s->name, "tc") != 0)
			continue;
		cr_assert_eq(s->kind, SERIES_RATE);
		cr_assert_eq(s->interval, 10);
		cr_assert_eq(s->ts, T0 - 7);
		cr_assert(s->value == 2 || s->value == 3);
	}
	batch_free(b);
	aggr_free(a);
}

static void aggregation_pipeline(struct aggr_config *c)
{
	c->no_aggregation_pipeline = false;
}

Test(aggr, timestamp_ignored_without_no_aggregation_pipeline)
{
	check_buckets((struct bucket){ .tweak = aggregation_pipeline },
		      SAMPLES(STAMPED("tc", METRIC_COUNT, 4, -3600),
			      STAMPED("th", METRIC_HISTOGRAM, 4, -3600)),
		      FLUSHES(FLUSH(10, false, 6, 0, NEAR("tc", "", 0, 0.4),
				    EQ("th.max", "", 0, 4))));
}

Test(aggr, distributions_flushed_as_sketches)
{
	struct aggr_config c = base_config();
	struct aggr *a = fixture_aggr_new(&c);
	for (int i = 1; i <= 100; i++)
		send(a, "dist", METRIC_DISTRIBUTION, i, 1, "t:1", T0 + 3);
	send(a, "dist", METRIC_DISTRIBUTION, 1000, 0.5, "t:1", T0 + 3); /* weight 2 */
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(b->nseries, 0);
	cr_assert_eq(b->nsketches, 1);
	const struct sketch_point *p = &b->sketches[0];
	cr_assert_str_eq(p->name, "dist");
	cr_assert_eq(p->ts, T0);
	cr_assert_eq(p->cnt, 102);
	cr_assert_eq(p->min, 1);
	cr_assert_eq(p->max, 1000);
	cr_assert_eq(p->sum, 5050 + 2000);
	cr_assert_float_eq(p->avg, 7050.0 / 102, 1e-9);
	cr_assert_eq(p->ntags, 1);
	cr_assert_str_eq(p->tags[0], "t:1");
	uint64_t tot = 0;
	for (uint32_t i = 0; i < p->nbins; i++) {
		tot += p->counts[i];
		if (i)
			cr_assert_lt(p->keys[i - 1], p->keys[i]);
	}
	cr_assert_eq(tot, 102);
	cr_assert_eq(p->keys[p->nbins - 1], 1338 + 446); /* round(ln 1000 / ln 1.015625 = 445.54) */
	cr_assert_eq(p->counts[p->nbins - 1], 2);

	struct batch *out = batch_new();
	cr_assert_eq(aggr_sketch_to_series(&c, p, out), 0);
	cr_assert_eq(out->nseries, 5);
	cr_assert_eq(value_of(out, "dist.max", "t:1", T0), 1000);
	cr_assert_float_eq(value_of(out, "dist.count", "t:1", T0), 10.2, 1e-12);
	cr_assert_float_eq(value_of(out, "dist.avg", "t:1", T0), 7050.0 / 102, 1e-9);
	double med = value_of(out, "dist.median", "t:1", T0); /* rank round(0.5*101) = 50 -> 51 */
	cr_assert(fabs(med - 51) / 51 <= 0.01, "median %g", med);
	double p95 = value_of(out, "dist.95percentile", "t:1", T0); /* rank 96 -> 97 */
	cr_assert(fabs(p95 - 97) / 97 <= 0.01, "p95 %g", p95);
	cr_assert_str_eq(find(out, "dist.max", "t:1", T0)->host, "myhost");
	batch_free(out);
	batch_free(b);
	aggr_free(a);
}

static void tag_env_prod(struct aggr_config *c)
{
	static char *gt[] = { "env:prod" };
	c->tags = gt;
	c->ntags = 1;
}

Test(aggr, events_and_service_checks_copied)
{
	struct aggr *a = aggr_with(tag_env_prod);
	struct sv et[] = { SV_LIT("k:v") };
	struct dsd_event e = { .title = SV_LIT("deploy"), .text = SV_LIT("line1\nline2"),
			       .tags = et, .ntags = 1, .priority = EVENT_PRIORITY_LOW,
			       .alert_type = EVENT_ALERT_ERROR };
	aggr_event(a, &e, T0 + 4);
	e.timestamp = T0 - 100;
	e.has_hostname = true;
	e.hostname = SV_LIT("h2");
	aggr_event(a, &e, T0 + 4);
	struct dsd_service_check sc = { .name = SV_LIT("db.up"), .status = CHECK_CRITICAL,
					.message = SV_LIT("down") };
	aggr_service_check(a, &sc, T0 + 5);
	struct batch *b = aggr_flush(a, T0 + 6, false); /* not bucketed */
	cr_assert_eq(b->nevents, 2);
	cr_assert_eq(b->nchecks, 1);
	cr_assert_str_eq(b->events[0].title, "deploy");
	cr_assert_str_eq(b->events[0].text, "line1\nline2");
	cr_assert_eq(b->events[0].ts, T0 + 4);
	cr_assert_str_eq(b->events[0].host, "myhost");
	cr_assert_eq(b->events[0].priority, EVENT_PRIORITY_LOW);
	cr_assert_eq(b->events[0].ntags, 2);
	cr_assert_str_eq(b->events[0].tags[0], "k:v");
	cr_assert_str_eq(b->events[0].tags[1], "env:prod");
	cr_assert_eq(b->events[1].ts, T0 - 100);
	cr_assert_str_eq(b->events[1].host, "h2");
	cr_assert_str_eq(b->checks[0].name, "db.up");
	cr_assert_eq(b->checks[0].status, 2);
	cr_assert_eq(b->checks[0].ts, T0 + 5);
	cr_assert_str_eq(b->checks[0].host, "myhost");
	cr_assert_str_eq(b->checks[0].message, "down");
	cr_assert_eq(b->checks[0].ntags, 1);
	batch_free(b);
	b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(b->nevents + b->nchecks, 0, "events delivered twice");
	batch_free(b);
	aggr_free(a);
}

Test(aggr, same_name_different_types_are_separate_contexts)
{
	check_buckets((struct bucket){ .contexts = 2 },
		      SAMPLES(IN("x", METRIC_COUNT, 10, 1, "", 0),
			      IN("x", METRIC_GAUGE, 3, 1, "", 0)),
		      FLUSHES(FLUSH_COUNTS(10, false, 2, 0)));
}

Test(aggr, final_flush_includes_open_bucket)
{
	check_buckets((struct bucket){ 0 },
		      SAMPLES(IN("c", METRIC_COUNT, 1, 1, "", 3),
			      IN("d", METRIC_DISTRIBUTION, 1, 1, "", 3)),
		      FLUSHES(FLUSH_COUNTS(4, true, 1, 1)));
}

Test(aggr, hundred_thousand_contexts_each_flushed_once)
{
	struct aggr *a = aggr_with(NULL);
	enum { N = 100000 };
	char tags[64];
	for (int round = 0; round < 2; round++)
		for (int i = 0; i < N; i++) {
			snprintf(tags, sizeof(tags), "id:%d,shard:%d", i, i % 7);
			send(a, "c", METRIC_COUNT, 1, 1, tags, T0 + 1);
		}
	cr_assert_eq(contexts(a), N);
	struct batch *b = aggr_flush(a, T0 + 10, false);
	cr_assert_eq(b->nseries, N);
	unsigned char *seen = calloc(N, 1);
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		cr_assert_eq(s->ntags, 2);
		int id = atoi(s->tags[0] + 3);
		cr_assert(strncmp(s->tags[0], "id:", 3) == 0 && id >= 0 && id < N);
		cr_assert_eq(seen[id], 0, "id %d twice", id);
		seen[id] = 1;
		cr_assert_float_eq(s->value, 0.2, 1e-12);
		char want[16];
		snprintf(want, sizeof(want), "shard:%d", id % 7);
		cr_assert_str_eq(s->tags[1], want);
	}
	free(seen);
	batch_free(b);
	aggr_free(a);
}

/* ---- overflow slots and the clock range (aggr_int.h: struct ctx keeps two
 * inline slots, more go to the aggregator's overflow table; bucket starts
 * are 32-bit, relative to the first sample's time) ---- */

static const struct sketch_point *sketch_at(const struct batch *b, int64_t ts)
{
	for (size_t i = 0; i < b->nsketches; i++)
		if (b->sketches[i].ts == ts)
			return &b->sketches[i];
	return NULL;
}

/* One sample of each family at `now`, v the value (k: the set member's tag). */
static void send_each(struct aggr *a, double v, char k, int64_t now)
{
	char member[32];
	snprintf(member, sizeof(member), "%c%g", k, v);
	send(a, "c", METRIC_COUNT, v, 1, "", now);
	send(a, "g", METRIC_GAUGE, v, 1, "", now);
	send(a, "h", METRIC_HISTOGRAM, v, 1, "", now);
	send(a, "d", METRIC_DISTRIBUTION, v, 1, "", now);
	send_set(a, "s", member, now);
}

/* Bucket T0 + 10 * k of every family received the values w * (k + 1), w in
 * ws[0..n): checks its series and sketch in b. */
static void expect_bucket(const struct batch *b, int k, const double *ws, int n)
{
	int64_t ts = T0 + 10 * k;
	double x = k + 1, sum = 0, last = ws[n - 1] * x;
	for (int i = 0; i < n; i++)
		sum += ws[i] * x;
	cr_assert_float_eq(value_of(b, "c", "", ts), sum / 10, 1e-12, "bucket %d", k);
	cr_assert_eq(value_of(b, "g", "", ts), last, "bucket %d", k);
	cr_assert_eq(value_of(b, "h.max", "", ts), last, "bucket %d", k);
	cr_assert_float_eq(value_of(b, "h.count", "", ts), n / 10.0, 1e-12, "bucket %d", k);
	cr_assert_eq(value_of(b, "s", "", ts), n, "bucket %d", k);
	const struct sketch_point *p = sketch_at(b, ts);
	cr_assert(p, "no sketch for bucket %d", k);
	cr_assert_eq(p->cnt, (int64_t)n);
	cr_assert_eq(p->min, x);
	cr_assert_eq(p->max, last);
	cr_assert_eq(p->sum, sum);
}

/* The series and sketches of bucket T0 + 10 * k: none in b. */
static void expect_no_bucket(const struct batch *b, int k)
{
	int64_t ts = T0 + 10 * k;
	cr_assert_null(find(b, "c", "", ts), "bucket %d flushed while open", k);
	cr_assert_null(find(b, "g", "", ts), "bucket %d flushed while open", k);
	cr_assert_null(find(b, "h.max", "", ts), "bucket %d flushed while open", k);
	cr_assert_null(find(b, "s", "", ts), "bucket %d flushed while open", k);
	cr_assert_null(sketch_at(b, ts), "bucket %d flushed while open", k);
}

/* Five open buckets per context (flush stalled, then the clock jumps back
 * over all of them): three live in overflow slots, samples find them, a
 * flush takes the closed ones and keeps the open ones where later samples
 * find them again, and the overflow memory is all given back. */
Test(aggr, stalled_flush_overflow_slots_flushed_in_order)
{
	struct aggr *a = aggr_with(NULL);
	send_each(a, 1, 'z', T0 - 9);
	batch_free(aggr_flush(a, T0, false));
	uint64_t idle = stats_of(a).memory_bytes;
	static const double w1[] = { 1, 10 }, w2[] = { 1, 10, 100 };
	for (int pass = 0; pass < 2; pass++)
		for (int k = 0; k < 5; k++)
			send_each(a, w1[pass] * (k + 1), pass ? 'b' : 'a', T0 + 10 * k + 1 + pass);
	cr_assert_gt(stats_of(a).memory_bytes, idle);

	struct batch *b = aggr_flush(a, T0 + 30, false);
	for (int k = 0; k < 3; k++)
		expect_bucket(b, k, w1, 2);
	expect_no_bucket(b, 3);
	expect_no_bucket(b, 4);
	cr_assert_eq(b->nsketches, 3);
	batch_free(b);

	/* the two open buckets are both overflow slots now; the clock goes
	 * back to the older one last */
	send_each(a, 100 * 5, 'c', T0 + 43);
	send_each(a, 100 * 4, 'c', T0 + 33);
	b = aggr_flush(a, T0 + 50, false);
	for (int k = 0; k < 3; k++)
		expect_no_bucket(b, k);
	expect_bucket(b, 3, w2, 3);
	expect_bucket(b, 4, w2, 3);
	cr_assert_eq(b->nsketches, 2);
	batch_free(b);
	cr_assert_eq(stats_of(a).memory_bytes, idle, "overflow memory not given back");
	cr_assert_eq(contexts(a), 5);
	aggr_free(a);
}

/* aggregator.memory_bytes counts a context's overflow slots whole: the
 * overflow table (its first PTAB_MIN slots), the context's struct more and
 * its slot array (room for two); all of it goes with the last overflow slot. */
Test(aggr, overflow_table_counted_in_memory_bytes)
{
	struct aggr *a = aggr_with(NULL);
	send(a, "c", METRIC_COUNT, 1, 1, "", T0);
	send(a, "c", METRIC_COUNT, 1, 1, "", T0 + 10);
	uint64_t inline_only = stats_of(a).memory_bytes;
	send(a, "c", METRIC_COUNT, 1, 1, "", T0 + 20); /* a third open bucket */
	cr_assert_eq(stats_of(a).memory_bytes - inline_only,
		     PTAB_MIN * sizeof(uint64_t) + sizeof(struct more) + 2 * sizeof(struct slot));
	batch_free(aggr_flush(a, T0 + 30, false));
	cr_assert_eq(stats_of(a).memory_bytes, inline_only);
	aggr_free(a);
}

/* Slots keep bucket starts as 32-bit offsets from the first sample's time:
 * a receive time too far from it is refused and counted, whether its
 * context exists or not (no empty context is made); the times at the ends
 * of the range are kept exactly. */
Test(aggr, receive_time_beyond_32_bits_from_first_sample_refused)
{
	struct aggr *a = aggr_with(NULL);
	const int64_t e = T0 + 1; /* the epoch: the first sample's time */
	const int64_t hi = e + INT32_MAX, lo = e + INT32_MIN + 11;
	send(a, "c", METRIC_COUNT, 1, 1, "", e);
	send(a, "c", METRIC_COUNT, 2, 1, "", hi);
	send(a, "c", METRIC_COUNT, 4, 1, "", hi + 1);
	send(a, "c", METRIC_COUNT, 8, 1, "", lo - 1);
	send(a, "c", METRIC_COUNT, 16, 1, "", lo);
	send(a, "new", METRIC_GAUGE, 1, 1, "", hi + 1);
	send(a, "new", METRIC_GAUGE, 1, 1, "", lo - 1);
	struct aggr_stats st = stats_of(a);
	cr_assert_eq(st.dropped[AGGR_DROP_CLOCK_RANGE], 4);
	cr_assert_eq(st.contexts, 1, "a refused sample made a context");
	cr_assert_str_eq(aggr_drop_name(AGGR_DROP_CLOCK_RANGE), "clock_range");

	struct batch *b = aggr_flush(a, hi + 10, true);
	cr_assert_float_eq(value_of(b, "c", "", T0), 0.1, 1e-12);
	cr_assert_float_eq(value_of(b, "c", "", hi - hi % 10), 0.2, 1e-12);
	cr_assert_lt(lo, 0);
	cr_assert_float_eq(value_of(b, "c", "", lo - (lo % 10 + 10) % 10), 1.6, 1e-12);
	size_t nonzero = 0;
	for (size_t i = 0; i < b->nseries; i++)
		nonzero += b->series[i].value != 0;
	cr_assert_eq(nonzero, 3);
	batch_free(b);
	aggr_free(a);
}

/* The last bucket of the range (its start + 10 no longer fits 32 bits from
 * the epoch) stays open until a flush at or after its end, as any other. */
Test(aggr, last_bucket_of_the_clock_range_closes_on_time)
{
	struct aggr *a = aggr_with(NULL);
	const int64_t e = T0 + 1, hi = e + INT32_MAX, b_hi = hi - hi % 10;
	send(a, "g", METRIC_GAUGE, 1, 1, "", e);
	send(a, "g", METRIC_GAUGE, 7, 1, "", hi);
	cr_assert_eq(stats_of(a).dropped[AGGR_DROP_CLOCK_RANGE], 0);

	struct batch *b = aggr_flush(a, hi, false);
	cr_assert_eq(value_of(b, "g", "", T0), 1);
	cr_assert_null(find(b, "g", "", b_hi), "the open bucket was flushed");
	cr_assert_eq(b->nseries, 1);
	batch_free(b);

	b = aggr_flush(a, b_hi + 10, false);
	cr_assert_eq(value_of(b, "g", "", b_hi), 7);
	cr_assert_eq(b->nseries, 1);
	batch_free(b);
	aggr_free(a);
}
