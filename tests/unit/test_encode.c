/*
 * test_encode.c - encoders (forward/encode.h) and compression
 * (forward/compress.h): exact bodies, protobuf decoded back with the
 * generated unpackers, compression round trips, splitting under limits.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "agent_payload.pb-c.h"
#include "forward/compress.h"
#include "core/json.h"
#include "forward/encode.h"
#include "payload_sink.h"

/* The payload's uncompressed body, NUL-terminated (caller frees). */
static char *body_of(const struct payload *p, size_t *len)
{
	uint8_t *out = NULL;
	size_t n = 0;
	cr_assert_eq(decompress_buf(p->enc, p->data, p->len, 1 << 26, &out, &n), 0);
	cr_assert_eq(n, p->raw_len);
	if (len)
		*len = n;
	return (char *)out;
}

/* What the encoder under test emitted, and its counts: one test (one
 * process) at a time; the suite's fini frees what is left. */
static struct sink got;
static struct enc_result res;

static void free_got(void)
{
	sink_free(&got);
}

TestSuite(encode, .fini = free_got);

/* Runs encoder fn over n records with the options given (designated
 * initializers of struct enc_opts) into got and res; it must succeed. */
#define ENCODE(fn, recs, n, ...)                                                          \
	cr_assert_eq(fn((recs), (n), &(struct enc_opts){ __VA_ARGS__ }, sink_collect, &got, \
			&res), 0, #fn)

/* The one payload in got, which must go to ep. */
static const struct payload *only_payload(enum fwd_endpoint ep)
{
	cr_assert_eq(got.n, 1);
	cr_assert_eq(got.p[0]->ep, ep);
	return got.p[0];
}

/* The payload's body must be exactly want. */
static void expect_body(const struct payload *p, const char *want)
{
	char *b = body_of(p, NULL);
	cr_assert_str_eq(b, want);
	free(b);
}

/* The one payload in got, which must go to ep, decoded as the protobuf
 * message desc describes (the caller frees it with its free_unpacked). */
static void *unpack_only(enum fwd_endpoint ep, const ProtobufCMessageDescriptor *desc)
{
	size_t len;
	char *b = body_of(only_payload(ep), &len);
	ProtobufCMessage *m = protobuf_c_message_unpack(desc, NULL, len, (uint8_t *)b);

	free(b);
	cr_assert_not_null(m);
	return m;
}

static const char *const tags_ab[] = { "env:prod", "role" };

Test(encode, series_v1_exact_json)
{
	struct series s[2] = {
		{ .name = "app.hits", .host = "h1", .tags = tags_ab, .ntags = 2, .kind = SERIES_RATE,
		  .interval = 10, .ts = 1700000000, .value = 0.5 },
		{ .name = "app.temp", .host = "", .tags = NULL, .ntags = 0, .kind = SERIES_GAUGE,
		  .interval = 0, .ts = 1700000010, .value = -3.25 },
	};
	ENCODE(enc_series_v1, s, 2, .compressor = COMPRESS_NONE, .created = 5);
	const struct payload *p = only_payload(FWD_EP_SERIES_V1);
	cr_assert_eq(res.records, 2);
	cr_assert_eq(p->npoints, 2);
	cr_assert_eq(p->created, 5);
	expect_body(p,
		"{\"series\":[{\"metric\":\"app.hits\",\"points\":[[1700000000,0.5]],\"type\":\"rate\","
		"\"interval\":10,\"host\":\"h1\",\"tags\":[\"env:prod\",\"role\"]},"
		"{\"metric\":\"app.temp\",\"points\":[[1700000010,-3.25]],\"type\":\"gauge\","
		"\"interval\":0,\"host\":\"\",\"tags\":[]}]}");
}

Test(encode, json_escapes_any_bytes)
{
	static const char *const t[] = { "k:\"q\"\\" };
	struct series s = { .name = "a\nb\x01\xff", .host = "h", .tags = t, .ntags = 1,
			    .kind = SERIES_COUNT, .interval = 10, .ts = 1, .value = 2 };
	ENCODE(enc_series_v1, &s, 1, .compressor = COMPRESS_NONE);
	char *b = body_of(only_payload(FWD_EP_SERIES_V1), NULL);
	cr_assert(strstr(b, "\"metric\":\"a\\nb\\u0001\\ufffd\"") != NULL, "%s", b);
	cr_assert(strstr(b, "\"tags\":[\"k:\\\"q\\\"\\\\\"]") != NULL, "%s", b);
	cr_assert(strstr(b, "\"type\":\"count\"") != NULL);
	free(b);
}

static void roundtrip(enum compressor_kind k, const char *name)
{
	char raw[20000];
	for (size_t i = 0; i < sizeof(raw); i++)
		raw[i] = (char)("metric.name:1|c\n"[i % 16] + (i % 7 == 0));
	uint8_t *z = NULL, *back = NULL;
	size_t zl = 0, bl = 0;
	cr_assert_eq(compress_buf(k, 0, raw, sizeof(raw), &z, &zl), 0);
	cr_assert_lt(zl, sizeof(raw) / 4, "%s did not compress", name);
	cr_assert_eq(decompress_buf(k, z, zl, sizeof(raw), &back, &bl), 0);
	cr_assert_eq(bl, sizeof(raw));
	cr_assert_eq(memcmp(raw, back, bl), 0);
	free(back);
	/* output bound enforced, truncated input refused */
	cr_assert_eq(decompress_buf(k, z, zl, sizeof(raw) - 1, &back, &bl), -EFBIG);
	cr_assert_lt(decompress_buf(k, z, zl / 2, sizeof(raw), &back, &bl), 0);
	free(z);
	const char *cname = compress_encoding_name(k);
	cr_assert_str_eq(cname, name);
}

Test(encode, compression_round_trips)
{
	roundtrip(COMPRESS_ZLIB, "deflate");
	roundtrip(COMPRESS_GZIP, "gzip");
	roundtrip(COMPRESS_ZSTD, "zstd");
	cr_assert_null(compress_encoding_name(COMPRESS_NONE));
}

Test(encode, gzip_and_zlib_headers)
{
	uint8_t *z = NULL;
	size_t zl = 0;
	cr_assert_eq(compress_buf(COMPRESS_GZIP, 6, "abc", 3, &z, &zl), 0);
	cr_assert(z[0] == 0x1f && z[1] == 0x8b);
	free(z);
	cr_assert_eq(compress_buf(COMPRESS_ZLIB, 6, "abc", 3, &z, &zl), 0);
	cr_assert_eq(z[0], 0x78);
	cr_assert_eq(((z[0] << 8) | z[1]) % 31, 0);
	free(z);
	cr_assert_eq(compress_buf(COMPRESS_ZSTD, 3, "abc", 3, &z, &zl), 0);
	cr_assert(z[0] == 0x28 && z[1] == 0xb5 && z[2] == 0x2f && z[3] == 0xfd);
	free(z);
}

Test(encode, series_v2_protobuf_decodes)
{
	struct series s[3] = {
		{ .name = "a.count", .host = "h1", .tags = tags_ab, .ntags = 2, .kind = SERIES_COUNT,
		  .interval = 10, .ts = 100, .value = 7 },
		{ .name = "a.rate", .host = "h2", .kind = SERIES_RATE, .interval = 10, .ts = 110, .value = 0.25 },
		{ .name = "a.gauge", .host = "", .kind = SERIES_GAUGE, .ts = 120, .value = -1e300 },
	};
	ENCODE(enc_series_v2, s, 3, .compressor = COMPRESS_ZSTD);
	Datadog__Agentpayload__MetricPayload *mp =
		unpack_only(FWD_EP_SERIES_V2, &datadog__agentpayload__metric_payload__descriptor);
	cr_assert_eq(mp->n_series, 3);
	cr_assert_str_eq(mp->series[0]->metric, "a.count");
	cr_assert_eq(mp->series[0]->type, DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__COUNT);
	cr_assert_eq(mp->series[0]->type, 1);
	cr_assert_eq(mp->series[1]->type, 2);
	cr_assert_eq(mp->series[2]->type, 3);
	cr_assert_eq(mp->series[0]->n_tags, 2);
	cr_assert_str_eq(mp->series[0]->tags[1], "role");
	cr_assert_eq(mp->series[0]->n_resources, 1);
	cr_assert_str_eq(mp->series[0]->resources[0]->type, "host");
	cr_assert_str_eq(mp->series[0]->resources[0]->name, "h1");
	cr_assert_eq(mp->series[2]->n_resources, 0);
	cr_assert_eq(mp->series[0]->interval, 10);
	cr_assert_eq(mp->series[1]->n_points, 1);
	cr_assert_eq(mp->series[1]->points[0]->timestamp, 110);
	cr_assert_eq(mp->series[1]->points[0]->value, 0.25);
	cr_assert_eq(mp->series[2]->points[0]->value, -1e300);
	datadog__agentpayload__metric_payload__free_unpacked(mp, NULL);
}

Test(encode, sketches_protobuf_decodes)
{
	static const int32_t keys[] = { -5, 0, 1338 };
	static const uint32_t counts[] = { 1, 2, 300 };
	struct sketch_point sp = { .name = "lat", .host = "h", .tags = tags_ab, .ntags = 2, .ts = 50,
				   .cnt = 303, .min = -0.5, .max = 9000, .sum = 1234.5, .avg = 4.07,
				   .nbins = 3, .keys = keys, .counts = counts };
	ENCODE(enc_sketches, &sp, 1, .compressor = COMPRESS_ZLIB);
	Datadog__Agentpayload__SketchPayload *pl =
		unpack_only(FWD_EP_SKETCHES, &datadog__agentpayload__sketch_payload__descriptor);
	cr_assert_eq(pl->n_sketches, 1);
	Datadog__Agentpayload__SketchPayload__Sketch *s = pl->sketches[0];
	cr_assert_str_eq(s->metric, "lat");
	cr_assert_str_eq(s->host, "h");
	cr_assert_eq(s->n_tags, 2);
	cr_assert_eq(s->n_dogsketches, 1);
	Datadog__Agentpayload__SketchPayload__Sketch__Dogsketch *d = s->dogsketches[0];
	cr_assert_eq(d->ts, 50);
	cr_assert_eq(d->cnt, 303);
	cr_assert_eq(d->min, -0.5);
	cr_assert_eq(d->max, 9000);
	cr_assert_eq(d->sum, 1234.5);
	cr_assert_eq(d->avg, 4.07);
	cr_assert_eq(d->n_k, 3);
	cr_assert_eq(d->k[0], -5);
	cr_assert_eq(d->k[2], 1338);
	cr_assert_eq(d->n_n, 3);
	cr_assert_eq(d->n[2], 300);
	datadog__agentpayload__sketch_payload__free_unpacked(pl, NULL);
}

Test(encode, checks_exact_json)
{
	struct check_rec c = { .name = "app.up", .status = 2, .ts = 42, .host = "h",
			       .message = "down|x", .tags = tags_ab, .ntags = 2 };
	ENCODE(enc_checks, &c, 1, .compressor = COMPRESS_NONE);
	expect_body(only_payload(FWD_EP_CHECKS), "[{\"check\":\"app.up\",\"host_name\":\"h\",\"timestamp\":42,\"status\":2,"
			    "\"message\":\"down|x\",\"tags\":[\"env:prod\",\"role\"]}]");
}

Test(encode, events_grouped_by_source)
{
	struct event_rec e[3] = {
		{ .title = "t1", .text = "x\ny", .ts = 1, .host = "h", .aggregation_key = "",
		  .source_type = "", .priority = EVENT_PRIORITY_NORMAL, .alert_type = EVENT_ALERT_INFO },
		{ .title = "t2", .text = "", .ts = 2, .host = "h", .aggregation_key = "k",
		  .source_type = "jenkins", .priority = EVENT_PRIORITY_LOW, .alert_type = EVENT_ALERT_ERROR,
		  .tags = tags_ab, .ntags = 1 },
		{ .title = "t3", .text = "z", .ts = 3, .host = "", .aggregation_key = "",
		  .source_type = "", .priority = EVENT_PRIORITY_NORMAL, .alert_type = EVENT_ALERT_SUCCESS },
	};
	ENCODE(enc_events, e, 3, .compressor = COMPRESS_NONE, .hostname = "me");
	const struct payload *p = only_payload(FWD_EP_EVENTS);
	cr_assert_eq(p->npoints, 3);
	expect_body(p,
		"{\"apiKey\":\"\",\"events\":{\"api\":["
		"{\"msg_title\":\"t1\",\"msg_text\":\"x\\ny\",\"timestamp\":1,\"priority\":\"normal\","
		"\"host\":\"h\",\"tags\":[],\"alert_type\":\"info\"},"
		"{\"msg_title\":\"t3\",\"msg_text\":\"z\",\"timestamp\":3,\"priority\":\"normal\","
		"\"host\":\"\",\"tags\":[],\"alert_type\":\"success\"}],"
		"\"jenkins\":[{\"msg_title\":\"t2\",\"msg_text\":\"\",\"timestamp\":2,\"priority\":\"low\","
		"\"host\":\"h\",\"tags\":[\"env:prod\"],\"alert_type\":\"error\",\"aggregation_key\":\"k\","
		"\"source_type_name\":\"jenkins\"}]},\"internalHostname\":\"me\"}");
}

/* Builds n distinct series "m.<i>" with a few tags. */
/* Frees what many_series / varied_series returned. */
static void series_free(struct series *s, char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(s);
}

static struct series *many_series(size_t n, char ***names)
{
	struct series *s = calloc(n, sizeof(*s));
	*names = calloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char tmp[64];
		snprintf(tmp, sizeof(tmp), "m.%zu", i);
		(*names)[i] = strdup(tmp);
		s[i] = (struct series){ .name = (*names)[i], .host = "host-a", .tags = tags_ab,
					.ntags = 2, .kind = SERIES_GAUGE, .ts = 1000 + (int64_t)i,
					.value = (double)i };
	}
	return s;
}

/* Every series present exactly once across the payloads; each under limits. */
static void check_split(struct sink *sk, size_t n, size_t max_c, size_t max_u, size_t max_pts)
{
	unsigned *seen = calloc(n, sizeof(*seen));
	size_t total = 0;
	for (size_t i = 0; i < sk->n; i++) {
		struct payload *p = sk->p[i];
		cr_assert_leq(p->len, max_c);
		cr_assert_leq(p->raw_len, max_u);
		cr_assert_leq(p->npoints, max_pts);
		char *b = body_of(p, NULL);
		size_t in_payload = 0;
		for (char *q = b; (q = strstr(q, "\"metric\":\"m.")); q++) {
			size_t id = strtoul(q + 12, NULL, 10);
			cr_assert_lt(id, n);
			seen[id]++;
			in_payload++;
		}
		cr_assert_eq(in_payload, p->npoints);
		total += in_payload;
		free(b);
	}
	cr_assert_eq(total, n);
	for (size_t i = 0; i < n; i++)
		cr_assert_eq(seen[i], 1, "series %zu seen %u times", i, seen[i]);
	free(seen);
}

/* The n series of s encoded as v1 with compressor k under these limits. */
#define ENCODE_V1_LIMITED(s, n, k, max_c, max_u, max_pts)                                   \
	ENCODE(enc_series_v1, s, n, .compressor = k, .max_compressed = max_c,               \
	       .max_uncompressed = max_u, .max_points = max_pts)

static void split_case(enum compressor_kind k, size_t max_c, size_t max_u, size_t max_pts, size_t min_payloads)
{
	char **names;
	size_t n = 2000;
	struct series *s = many_series(n, &names);
	ENCODE_V1_LIMITED(s, n, k, max_c, max_u, max_pts);
	cr_assert_eq(res.records, n);
	cr_assert_eq(res.too_large, 0);
	cr_assert_geq(got.n, min_payloads);
	cr_assert_eq(res.payloads, got.n);
	check_split(&got, n, max_c, max_u, max_pts);
	sink_free(&got);
	series_free(s, names, n);
}

Test(encode, split_by_points)
{
	split_case(COMPRESS_ZLIB, 3200000, 62914560, 7, 2000 / 7);
}

Test(encode, split_by_uncompressed_bytes)
{
	split_case(COMPRESS_NONE, 1 << 20, 1500, 10000, 100);
}

Test(encode, split_by_compressed_bytes)
{
	split_case(COMPRESS_ZLIB, 400, 1 << 20, 10000, 20);
	split_case(COMPRESS_ZSTD, 400, 1 << 20, 10000, 20);
}

Test(encode, default_point_cap_is_10000)
{
	char **names;
	size_t n = 25000;
	struct series *s = many_series(n, &names);
	ENCODE(enc_series_v1, s, n, .compressor = COMPRESS_ZLIB);
	cr_assert_eq(got.n, 3);
	cr_assert_eq(got.p[0]->npoints, 10000);
	cr_assert_eq(got.p[2]->npoints, 5000);
	check_split(&got, n, 3200000, 62914560, 10000);
	series_free(s, names, n);
}

/* The packer renders records into a window it compacts once the packed
 * prefix is over 1 MiB: 60000 series (~6 MB rendered) in payloads of 1000
 * cross it several times; every series must come out once, in order, with
 * its own bytes. */
Test(encode, window_compaction_keeps_every_record_in_order)
{
	char **names;
	size_t n = 60000;
	struct series *s = many_series(n, &names);
	ENCODE(enc_series_v1, s, n, .compressor = COMPRESS_NONE, .max_points = 1000);
	cr_assert_eq(got.n, 60);
	check_split(&got, n, 3200000, 62914560, 1000);
	size_t next = 0;
	for (size_t i = 0; i < got.n; i++) {
		char *b = body_of(got.p[i], NULL);
		for (char *q = b; (q = strstr(q, "\"metric\":\"m.")); q++, next++) {
			char want[96];
			snprintf(want, sizeof(want), "\"metric\":\"m.%zu\",\"points\":[[%zu,%zu]]", next,
				 1000 + next, next);
			cr_assert_eq(strncmp(q, want, strlen(want)), 0, "record %zu: %.60s", next, q);
		}
		free(b);
	}
	cr_assert_eq(next, n);
	series_free(s, names, n);
}

Test(encode, record_over_limit_is_counted_not_sent)
{
	char *big = malloc(5000);
	memset(big, 'x', 4999);
	big[4999] = 0;
	struct series s[3] = {
		{ .name = "ok.1", .host = "h", .kind = SERIES_GAUGE, .ts = 1, .value = 1 },
		{ .name = big, .host = "h", .kind = SERIES_GAUGE, .ts = 1, .value = 2 },
		{ .name = "ok.2", .host = "h", .kind = SERIES_GAUGE, .ts = 1, .value = 3 },
	};
	ENCODE(enc_series_v1, s, 3, .compressor = COMPRESS_NONE, .max_uncompressed = 1000);
	cr_assert_eq(res.too_large, 1);
	cr_assert_eq(res.records, 2);
	size_t pts = 0;
	for (size_t i = 0; i < got.n; i++)
		pts += got.p[i]->npoints;
	cr_assert_eq(pts, 2);
	free(big);
}

Test(encode, sequence_numbers_increase)
{
	char **names;
	struct series *s = many_series(30, &names);
	uint64_t seq = 100;
	ENCODE(enc_series_v1, s, 30, .compressor = COMPRESS_NONE, .max_points = 10, .seq = &seq);
	cr_assert_eq(got.n, 3);
	cr_assert_eq(got.p[0]->seq, 100);
	cr_assert_eq(got.p[2]->seq, 102);
	cr_assert_eq(seq, 103);
	series_free(s, names, 30);
}

Test(encode, endpoint_table)
{
	cr_assert_str_eq(fwd_endpoint_info(FWD_EP_SERIES_V1)->path, "/api/v1/series");
	cr_assert_str_eq(fwd_endpoint_info(FWD_EP_SKETCHES)->path, "/api/beta/sketches");
	cr_assert_eq(fwd_endpoint_info(FWD_EP_SERIES_V2)->max_compressed, 512000);
	cr_assert_eq(fwd_endpoint_info(FWD_EP_SERIES_V2)->max_uncompressed, 5242880);
	cr_assert_eq(fwd_endpoint_info(FWD_EP_SERIES_V1)->max_compressed, 3200000);
	cr_assert_eq(fwd_endpoint_by_path("/intake/"), FWD_EP_EVENTS);
	cr_assert_eq(fwd_endpoint_by_path("/nope"), -1);
	cr_assert_null(fwd_endpoint_info(FWD_EP_COUNT));
}

/* Inflates z with zlib itself, accepting only one framing (windowBits 15:
 * zlib, 31: gzip), and checks the stream ends exactly at zl with want's
 * bytes (zlib checks the Adler-32 / CRC-32 and length trailers). */
static void inflate_is(int wbits, const uint8_t *z, size_t zl, const char *want, size_t n,
		       const char *what)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	cr_assert_eq(inflateInit2(&zs, wbits), Z_OK);
	uint8_t *back = malloc(n + 64);
	zs.next_in = (Bytef *)(uintptr_t)z;
	zs.avail_in = (uInt)zl;
	zs.next_out = back;
	zs.avail_out = (uInt)(n + 64);
	int rc = inflate(&zs, Z_FINISH);
	cr_assert_eq(rc, Z_STREAM_END, "%s: inflate %d", what, rc);
	cr_assert_eq(zs.avail_in, 0, "%s: bytes after the stream", what);
	cr_assert_eq(zs.total_out, n, "%s: %lu bytes, want %zu", what, zs.total_out, n);
	cr_assert_eq(memcmp(back, want, n), 0, "%s", what);
	inflateEnd(&zs);
	free(back);
}

/* deflate and gzip bodies, at levels 1, 6 and 9, inflate with zlib to the
 * exact raw body in the framing their Content-Encoding names (what
 * VictoriaMetrics and Datadog run): empty, small and > 1 MB bodies, whole
 * (compress_buf) and as prefix + slice + suffix (compress_parts, twice, so
 * the kept compressors and scratch buffer are reused); higher levels give
 * smaller bodies. */
Test(encode, deflate_and_gzip_inflate_with_zlib)
{
	size_t bign = 1300000;
	char *big = malloc(bign);
	uint32_t x = 12345;
	for (size_t i = 0; i < bign; i++) {
		x = x * 1103515245u + 12345u;
		big[i] = i % 40 < 28 ? "{\"metric\":\"flush.metric.42\",\"p\":["[i % 40]
				     : (char)('0' + (x >> 16) % 10);
	}
	struct { const char *p; size_t n; } bodies[] = { { "", 0 }, { "abc", 3 }, { big, bign } };
	static const int levels[] = { 1, 6, 9 };
	for (int gz = 0; gz <= 1; gz++) {
		enum compressor_kind k = gz ? COMPRESS_GZIP : COMPRESS_ZLIB;
		int wbits = gz ? 31 : 15;
		size_t prev = SIZE_MAX;
		for (size_t l = 0; l < 3; l++) {
			for (size_t b = 0; b < 3; b++) {
				char what[64];
				uint8_t *z = NULL;
				size_t zl = 0, n = bodies[b].n;
				snprintf(what, sizeof(what), "%s level %d body %zu", gz ? "gzip" : "deflate",
					 levels[l], n);
				cr_assert_eq(compress_buf(k, levels[l], bodies[b].p, n, &z, &zl), 0);
				inflate_is(wbits, z, zl, bodies[b].p, n, what);
				free(z);
				for (int again = 0; again < 2; again++) {
					struct compress_part parts[] = { { bodies[b].p, n / 3 },
									 { bodies[b].p + n / 3, n / 2 },
									 { bodies[b].p + n / 3 + n / 2, n - n / 3 - n / 2 } };
					cr_assert_eq(compress_parts(k, levels[l], parts, 3, &z, &zl), 0);
					inflate_is(wbits, z, zl, bodies[b].p, n, what);
					if (b == 2 && !again) {
						cr_assert_lt(zl, prev, "%s not smaller than the level below", what);
						prev = zl;
					}
					free(z);
				}
			}
		}
	}
	free(big);
}

/* compress_parts compresses the concatenation of its parts without building
 * it: empty parts anywhere, no parts at all, and parts bigger than zlib's and
 * zstd's internal blocks. */
Test(encode, compress_parts_is_the_concatenation)
{
	static const enum compressor_kind kinds[] = { COMPRESS_NONE, COMPRESS_ZLIB, COMPRESS_GZIP,
						      COMPRESS_ZSTD };
	size_t bign = 300000;
	char *big = malloc(bign);
	for (size_t i = 0; i < bign; i++)
		big[i] = (char)("{\"metric\":\"a.b\",\"tags\":[\"x:1\"]}"[i % 31] + (i % 13 == 0));
	struct compress_part parts[] = { { "", 0 }, { "{\"series\":[", 11 }, { "", 0 },
					 { big, bign }, { "]}", 2 }, { "", 0 } };
	size_t total = 11 + bign + 2;
	char *want = malloc(total);
	memcpy(want, "{\"series\":[", 11);
	memcpy(want + 11, big, bign);
	memcpy(want + 11 + bign, "]}", 2);
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		for (size_t np = 0; np <= 6; np++) {
			uint8_t *z = NULL, *back = NULL;
			size_t zl = 0, bl = 0, n = 0;
			for (size_t i = 0; i < np; i++)
				n += parts[i].n;
			cr_assert_eq(compress_parts(kinds[k], 6, parts, np, &z, &zl), 0, "kind %zu", k);
			cr_assert_eq(decompress_buf(kinds[k], z, zl, total, &back, &bl), 0);
			cr_assert_eq(bl, n, "kind %zu parts %zu", k, np);
			cr_assert_eq(memcmp(back, want, n > 11 ? n : 0), 0);
			if (np == 6 && kinds[k] != COMPRESS_NONE)
				cr_assert_lt(zl, total / 4);
			free(z);
			free(back);
		}
	}
	free(big);
	free(want);
}

/* The series_v1 renderer as it was written with the jw_* writer: the
 * reference the direct renderer must reproduce byte for byte. */
static void ref_series_v1(struct buf *b, const struct series *s)
{
	struct jw w;
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_key(&w, "metric");
	jw_str(&w, s->name);
	jw_key(&w, "points");
	jw_arr_begin(&w);
	jw_arr_begin(&w);
	jw_int(&w, s->ts);
	jw_double(&w, s->value);
	jw_arr_end(&w);
	jw_arr_end(&w);
	jw_key(&w, "type");
	jw_str(&w, series_kind_name(s->kind));
	jw_key(&w, "interval");
	jw_uint(&w, s->interval);
	jw_key(&w, "host");
	jw_str(&w, s->host ? s->host : "");
	jw_key(&w, "tags");
	jw_arr_begin(&w);
	for (uint32_t i = 0; i < s->ntags; i++)
		jw_str(&w, s->tags[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
}

static const double edge_values[] = {
	0.0, -0.0, 1e-7, 0.1, 1e21, 9007199254740993.0, 9007199254740992.0, 5e-324,
	2.2250738585072009e-308, 2.2250738585072014e-308, -1.5, -123456789.125, 1e15, 1e15 + 1,
	-9.2233720368547758e18, 1.8446744073709552e19, 1.7976931348623157e308, 1.0 / 3, 0.3,
	123456.789, 1e-4, 9.9999e-5, NAN, INFINITY, -INFINITY,
};
#define NEDGE (sizeof(edge_values) / sizeof(edge_values[0]))

static const char *const odd_tags[] = { "env:prod", "k:\"q\"\\", "caf\xc3\xa9:\xff", "", NULL,
					"long:abcdefghijklmnopqrstuvwxyz0123456789", "t\n\x01" };

/* n varied series: names with and without bytes to escape, NULL and empty
 * hosts, 0..5 tags among odd_tags, every kind, the edge values. */
static struct series *varied_series(size_t n, char ***names)
{
	struct series *s = calloc(n, sizeof(*s));
	*names = calloc(n, sizeof(char *));
	for (size_t i = 0; i < n; i++) {
		char nm[64];
		snprintf(nm, sizeof(nm), i % 7 == 3 ? "m\"%zu\\\t\x80" : "app.metric.number.%zu", i);
		(*names)[i] = strdup(nm);
		s[i] = (struct series){ .name = (*names)[i], .host = i % 5 == 0 ? NULL :
						i % 5 == 1 ? "" : "host-1",
					.tags = odd_tags + i % 3, .ntags = (uint32_t)(i % 5),
					.kind = (enum series_kind)(i % 3), .interval = (uint32_t)(i % 2 ? 10 : 0),
					.ts = (int64_t)(i % 4 == 0 ? -1 - (int64_t)i : 1700000000 + (int64_t)i),
					.value = edge_values[i % NEDGE] * (i % 11 == 0 ? -1 : 1) };
	}
	return s;
}

static void identical_case(enum compressor_kind k, size_t max_c, size_t max_u, size_t max_pts)
{
	char **names;
	size_t n = 3000;
	struct series *s = varied_series(n, &names);
	ENCODE_V1_LIMITED(s, n, k, max_c, max_u, max_pts);
	size_t bad = 0;
	for (size_t i = 0; i < n; i++)
		bad += !isfinite(s[i].value);
	cr_assert_gt(bad, 0);
	cr_assert_eq(res.non_finite, bad);
	cr_assert_eq(res.records, n - bad);
	size_t next = 0;
	struct buf want;
	buf_init(&want);
	for (size_t i = 0; i < got.n; i++) {
		buf_reset(&want);
		buf_puts(&want, "{\"series\":[");
		for (size_t j = 0; j < got.p[i]->npoints; j++, next++) {
			while (!isfinite(s[next].value))
				next++; /* not encoded: the non-finite guard */
			if (j)
				buf_putc(&want, ',');
			ref_series_v1(&want, &s[next]);
		}
		buf_puts(&want, "]}");
		size_t bl;
		char *b = body_of(got.p[i], &bl);
		cr_assert_eq(bl, want.len, "payload %zu", i);
		cr_assert_eq(memcmp(b, want.p, bl), 0, "payload %zu:\n%s\n%s", i, b, want.p);
		free(b);
	}
	while (next < n && !isfinite(s[next].value))
		next++;
	cr_assert_eq(next, n);
	buf_done(&want);
	sink_free(&got);
	series_free(s, names, n);
}

/* Same payload bodies as the jw_* rendering, whatever splits them: one
 * payload, the point cap, the uncompressed limit, and the compressed limit
 * (halving: bodies that are slices of slices of the window). */
Test(encode, series_v1_bodies_identical_to_writer_rendering)
{
	identical_case(COMPRESS_NONE, 0, 0, 0);
	identical_case(COMPRESS_GZIP, 0, 0, 0);
	identical_case(COMPRESS_ZLIB, 0, 0, 7);
	identical_case(COMPRESS_NONE, 0, 1500, 0);
	identical_case(COMPRESS_ZLIB, 700, 0, 0);
	identical_case(COMPRESS_ZSTD, 700, 0, 0);
}

/* Every finite edge value reads back to the same double (-0 as 0); NaN and
 * infinities, which the aggregator never emits, are not encoded at all
 * (counted in non_finite), so no payload carries a null point. */
Test(encode, series_v1_values_round_trip)
{
	struct series s[NEDGE];
	for (size_t i = 0; i < NEDGE; i++)
		s[i] = (struct series){ .name = "v", .host = "h", .kind = SERIES_GAUGE, .ts = 7,
					.value = edge_values[i] };
	ENCODE(enc_series_v1, s, NEDGE, .compressor = COMPRESS_NONE);
	const struct payload *p = only_payload(FWD_EP_SERIES_V1);
	size_t bad = 0;
	for (size_t i = 0; i < NEDGE; i++)
		bad += !isfinite(edge_values[i]);
	cr_assert_eq(res.non_finite, bad);
	cr_assert_eq(res.records, NEDGE - bad);
	char *b = body_of(p, NULL), *q = b;
	cr_assert_null(strstr(b, "null"));
	for (size_t i = 0; i < NEDGE; i++) {
		double v = edge_values[i];
		if (!isfinite(v))
			continue;
		q = strstr(q, "\"points\":[[7,");
		cr_assert_not_null(q, "value %zu", i);
		q += strlen("\"points\":[[7,");
		char *end;
		double back = strtod(q, &end);
		cr_assert_eq(strncmp(end, "]]", 2), 0, "value %zu: %.30s", i, q);
		cr_assert(back == v && (v != 0 || !signbit(back)), "%a -> %.30s", v, q);
	}
	free(b);
}
