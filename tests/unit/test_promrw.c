/*
 * test_promrw.c - the Prometheus remote write encoder (forward/promrw.h):
 * bodies snappy-decompressed and unpacked with the generated WriteRequest
 * unpacker; names, labels, sample order, counter modes, histogram labels,
 * request splitting.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "forward/compress.h"
#include "forward/promrw.h"
#include "remote_write.pb-c.h"
#include "payload_sink.h"

static Prometheus__WriteRequest *unpack(const struct payload *p)
{
	uint8_t *raw = NULL;
	size_t n = 0;
	cr_assert_eq(p->ep, FWD_EP_PROMRW);
	cr_assert_eq(p->enc, COMPRESS_SNAPPY);
	cr_assert_str_eq(compress_encoding_name(p->enc), "snappy");
	cr_assert_eq(decompress_buf(p->enc, p->data, p->len, 1 << 24, &raw, &n), 0);
	cr_assert_eq(n, p->raw_len);
	Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, raw);
	free(raw);
	cr_assert_not_null(wr);
	return wr;
}

/* "name=value,name=value" of one series, for exact comparison. */
static void labels_str(const Prometheus__TimeSeries *t, char *out, size_t len)
{
	size_t k = 0;
	out[0] = 0;
	for (size_t i = 0; i < t->n_labels; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%s=%s", i ? "," : "", t->labels[i]->name,
				      t->labels[i]->value);
}

static int encode(struct promrw *st, const struct series *s, size_t n, bool cumulative,
		  size_t max, struct sink *out, struct enc_result *res)
{
	uint64_t seq = 7;
	struct promrw_opts o = { .cumulative = cumulative, .max_samples = max, .created = 1700000000,
				 .seq = &seq };
	return promrw_encode(st, s, n, &o, sink_collect, out, res);
}

Test(promrw, metric_and_label_names)
{
	struct { const char *in, *metric, *label; } t[] = {
		{ "http.req-time", "http_req_time", "http_req_time" },
		{ "9lives", "_9lives", "_9lives" },
		{ "a:b", "a:b", "a_b" },
		{ "__meta", "__meta", "tag__meta" },
		{ "", "tag", "tag" },
		{ "caf\xc3\xa9", "caf__", "caf__" },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		char *m = promrw_metric_name(t[i].in, strlen(t[i].in));
		char *l = promrw_label_name(t[i].in, strlen(t[i].in));
		cr_expect_str_eq(m, t[i].metric, "metric %s", t[i].in);
		cr_expect_str_eq(l, t[i].label, "label %s", t[i].in);
		free(m);
		free(l);
	}
}

Test(promrw, labels_sorted_joined_and_samples_ordered)
{
	static const char *const tags[] = { "env:a", "env:b", "env:a", "k.x:1", "k_x:2", "solo", "zz:" };
	struct series s[3] = {
		{ .name = "app.temp", .host = "h1", .tags = tags, .ntags = 7, .kind = SERIES_GAUGE,
		  .ts = 1700000020, .value = 3 },
		{ .name = "app.temp", .host = "h1", .tags = tags, .ntags = 7, .kind = SERIES_GAUGE,
		  .ts = 1700000010, .value = 2.5 },
		{ .name = "app.temp", .host = "", .tags = NULL, .ntags = 0, .kind = SERIES_GAUGE,
		  .ts = 1700000010, .value = -1 },
	};
	struct sink out = { 0 };
	struct enc_result res;
	cr_assert_eq(encode(NULL, s, 3, false, 0, &out, &res), 0);
	cr_assert_eq(out.n, 1);
	cr_assert_eq(res.records, 3);
	cr_assert_eq(out.p[0]->npoints, 3);
	cr_assert_eq(out.p[0]->seq, 7);
	Prometheus__WriteRequest *wr = unpack(out.p[0]);
	cr_assert_eq(wr->n_timeseries, 2);
	char buf[512];
	labels_str(wr->timeseries[0], buf, sizeof(buf));
	cr_expect_str_eq(buf, "__name__=app_temp");
	cr_assert_eq(wr->timeseries[0]->n_samples, 1);
	cr_expect_eq(wr->timeseries[0]->samples[0]->value, -1);
	labels_str(wr->timeseries[1], buf, sizeof(buf));
	cr_expect_str_eq(buf, "__name__=app_temp,env=a,b,host=h1,k_x=1,2,solo=true,zz=");
	cr_assert_eq(wr->timeseries[1]->n_samples, 2);
	cr_expect_eq(wr->timeseries[1]->samples[0]->timestamp, 1700000010000LL);
	cr_expect_eq(wr->timeseries[1]->samples[0]->value, 2.5);
	cr_expect_eq(wr->timeseries[1]->samples[1]->timestamp, 1700000020000LL);
	cr_expect_eq(wr->timeseries[1]->samples[1]->value, 3);
	prometheus__write_request__free_unpacked(wr, NULL);
	sink_free(&out);
}

static double only_value(const struct payload *p, char *labels, size_t len)
{
	Prometheus__WriteRequest *wr = unpack(p);
	cr_assert_eq(wr->n_timeseries, 1);
	cr_assert_eq(wr->timeseries[0]->n_samples, 1);
	labels_str(wr->timeseries[0], labels, len);
	double v = wr->timeseries[0]->samples[0]->value;
	prometheus__write_request__free_unpacked(wr, NULL);
	return v;
}

Test(promrw, counters_per_interval_and_cumulative)
{
	struct series s = { .name = "jobs.done", .host = "h", .kind = SERIES_RATE, .interval = 10,
			    .ts = 1700000000, .value = 0.5 };
	struct sink out = { 0 };
	struct enc_result res;
	char lb[256];
	cr_assert_eq(encode(NULL, &s, 1, false, 0, &out, &res), 0);
	cr_expect_eq(only_value(out.p[0], lb, sizeof(lb)), 5);
	cr_expect_str_eq(lb, "__name__=jobs_done,host=h");
	sink_free(&out);

	struct promrw *st = promrw_new();
	cr_assert_not_null(st);
	cr_assert_eq(encode(st, &s, 1, true, 0, &out, &res), 0);
	cr_expect_eq(only_value(out.p[0], lb, sizeof(lb)), 5);
	cr_expect_str_eq(lb, "__name__=jobs_done_total,host=h");
	sink_free(&out);
	s.ts += 10;
	s.value = 0.25;
	cr_assert_eq(encode(st, &s, 1, true, 0, &out, &res), 0);
	cr_expect_eq(only_value(out.p[0], lb, sizeof(lb)), 7.5);
	cr_expect_eq(promrw_totals(st), 1);
	sink_free(&out);
	/* a gauge is never accumulated */
	struct series g = { .name = "q", .kind = SERIES_GAUGE, .ts = 1700000000, .value = 4 };
	cr_assert_eq(encode(st, &g, 1, true, 0, &out, &res), 0);
	cr_expect_eq(only_value(out.p[0], lb, sizeof(lb)), 4);
	cr_expect_str_eq(lb, "__name__=q");
	sink_free(&out);
	promrw_free(st);
}

Test(promrw, histogram_aggregates_are_labelled)
{
	struct series s[3] = {
		{ .name = "lat.95percentile", .stem_len = 3, .kind = SERIES_GAUGE, .ts = 1700000000, .value = 9 },
		{ .name = "lat.max", .stem_len = 3, .kind = SERIES_GAUGE, .ts = 1700000000, .value = 12 },
		{ .name = "lat.max", .kind = SERIES_GAUGE, .ts = 1700000000, .value = 1 },
	};
	struct sink out = { 0 };
	struct enc_result res;
	cr_assert_eq(encode(NULL, s, 3, false, 1, &out, &res), 0);
	cr_assert_eq(out.n, 3);
	char lb[3][256];
	double v[3];
	for (int i = 0; i < 3; i++)
		v[i] = only_value(out.p[i], lb[i], sizeof(lb[i]));
	/* sorted by label set: lat{quantile}, lat{stat}, lat_max */
	cr_expect_str_eq(lb[0], "__name__=lat,quantile=0.95");
	cr_expect_eq(v[0], 9);
	cr_expect_str_eq(lb[1], "__name__=lat,stat=max");
	cr_expect_eq(v[1], 12);
	cr_expect_str_eq(lb[2], "__name__=lat_max");
	cr_expect_eq(v[2], 1);
	sink_free(&out);
}

Test(promrw, split_by_samples_and_non_finite_skipped)
{
	struct series s[6];
	char names[6][8];
	for (int i = 0; i < 6; i++) {
		snprintf(names[i], sizeof(names[i]), "m%d", i);
		s[i] = (struct series){ .name = names[i], .kind = SERIES_GAUGE, .ts = 1700000000, .value = i };
	}
	s[3].value = NAN;
	struct sink out = { 0 };
	struct enc_result res;
	cr_assert_eq(encode(NULL, s, 6, false, 2, &out, &res), 0);
	cr_expect_eq(out.n, 3);
	cr_expect_eq(res.records, 5);
	cr_expect_eq(res.non_finite, 1);
	cr_expect_eq(res.payloads, 3);
	uint32_t pts = 0;
	for (size_t i = 0; i < out.n; i++) {
		pts += out.p[i]->npoints;
		cr_expect_eq(out.p[i]->seq, 7 + i);
	}
	cr_expect_eq(pts, 5);
	sink_free(&out);
	cr_assert_eq(encode(NULL, s, 0, false, 2, &out, &res), 0);
	cr_expect_eq(out.n, 0);
}

Test(promrw, colliding_names_merge_into_one_sample)
{
	struct series s[4] = {
		{ .name = "a.b", .kind = SERIES_RATE, .interval = 10, .ts = 1700000000, .value = 0.3 },
		{ .name = "a_b", .kind = SERIES_RATE, .interval = 10, .ts = 1700000000, .value = 0.4 },
		{ .name = "g.x", .kind = SERIES_GAUGE, .ts = 1700000000, .value = 1 },
		{ .name = "g-x", .kind = SERIES_GAUGE, .ts = 1700000000, .value = 2 },
	};
	struct sink out = { 0 };
	struct enc_result res;
	cr_assert_eq(encode(NULL, s, 4, false, 1, &out, &res), 0);
	cr_assert_eq(res.records, 4, "every record is in a payload");
	cr_assert_eq(out.n, 2, "one sample per series and timestamp");
	char lb[64];
	cr_expect_eq(only_value(out.p[0], lb, sizeof(lb)), 7);
	cr_expect_str_eq(lb, "__name__=a_b");
	cr_expect_eq(out.p[0]->npoints, 2);
	cr_expect_eq(only_value(out.p[1], lb, sizeof(lb)), 2, "a gauge keeps the last value");
	cr_expect_eq(out.p[1]->npoints, 2);
	sink_free(&out);
}
