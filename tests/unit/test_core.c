/*
 * test_core.c - core pieces: JSON writer and escaping, buffers, arena, batch
 * JSON lines, log levels.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"
#include "core/mem.h"

#include <sys/mman.h>
#include <unistd.h>

static char *escape(const char *s, size_t n)
{
	static struct buf b;
	buf_reset(&b);
	json_escape(&b, s, n);
	return b.p;
}

Test(core, json_escape_plain_and_specials)
{
	cr_assert_str_eq(escape("abc", 3), "\"abc\"");
	cr_assert_str_eq(escape("a\"b\\c", 5), "\"a\\\"b\\\\c\"");
	cr_assert_str_eq(escape("l1\nl2\t\r", 7), "\"l1\\nl2\\t\\r\"");
	cr_assert_str_eq(escape("\x01\x1f", 2), "\"\\u0001\\u001f\"");
	cr_assert_str_eq(escape("nul\0x", 5), "\"nul\\u0000x\"");
}

Test(core, json_escape_utf8_valid_kept_invalid_replaced)
{
	cr_assert_str_eq(escape("caf\xc3\xa9", 5), "\"caf\xc3\xa9\"");
	cr_assert_str_eq(escape("\xf0\x9f\x98\x80", 4), "\"\xf0\x9f\x98\x80\"");
	cr_assert_str_eq(escape("a\xff" "b", 3), "\"a\\ufffdb\"");
	cr_assert_str_eq(escape("\xc3", 1), "\"\\ufffd\"");		/* truncated */
	cr_assert_str_eq(escape("\xed\xa0\x80", 3), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	cr_assert_str_eq(escape("\xc0\xaf", 2), "\"\\ufffd\\ufffd\"");	/* overlong */
}

/* Byte-at-a-time oracle for json_escape_to's 8-byte fast path: the JSON
 * rules of json.h written the plain way. */
static size_t ref_utf8(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len = c >= 0xc2 && c <= 0xdf ? 2 : c >= 0xe0 && c <= 0xef ? 3 :
		     c >= 0xf0 && c <= 0xf4 ? 4 : 0;
	if (len == 0 || n < len)
		return 0;
	uint32_t cp = c & (len == 2 ? 0x1f : len == 3 ? 0x0f : 0x07);
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

static size_t ref_escape(char *o, const unsigned char *p, size_t n)
{
	size_t k = 0;
	o[k++] = '"';
	for (size_t i = 0; i < n;) {
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			k += (size_t)sprintf(o + k, "\\%c", c);
		} else if (c == '\n' || c == '\t' || c == '\r') {
			k += (size_t)sprintf(o + k, "\\%c", c == '\n' ? 'n' : c == '\t' ? 't' : 'r');
		} else if (c < 0x20) {
			k += (size_t)sprintf(o + k, "\\u%04x", c);
		} else if (c < 0x80) {
			o[k++] = (char)c;
		} else {
			size_t l = ref_utf8(p + i, n - i);
			if (l) {
				memcpy(o + k, p + i, l);
				k += l;
				i += l;
				continue;
			}
			k += (size_t)sprintf(o + k, "\\ufffd");
		}
		i++;
	}
	o[k++] = '"';
	return k;
}

static void check_escape(const unsigned char *in, size_t n)
{
	char want[6 * 64 + 8], got[6 * 64 + 16];
	size_t wn = ref_escape(want, in, n);
	memset(got, 0x5a, sizeof(got));
	char *end = json_escape_to(got, (const char *)in, n);
	cr_assert_eq((size_t)(end - got), wn, "length for n=%zu", n);
	cr_assert_eq(memcmp(got, want, wn), 0, "bytes for n=%zu: %.*s", n, (int)wn, got);
	for (size_t i = wn; i < sizeof(got); i++)
		cr_assert_eq(got[i], 0x5a, "wrote past the end");
	cr_assert_str_eq(escape((const char *)in, n), (want[wn] = 0, want));
}

Test(core, json_escape_fast_path_matches_bytewise_oracle)
{
	/* every special at every offset around the 8-byte words */
	static const unsigned char specials[] = { '"', '\\', 0x00, 0x01, '\n', 0x1f, 0x7f, 0x80,
						  0xc3, 0xe2, 0xf0, 0xff, 0x20, '!', '#', '[', ']' };
	unsigned char in[64];
	for (size_t len = 0; len <= 25; len++)
		for (size_t at = 0; at < len; at++)
			for (size_t s = 0; s < sizeof(specials); s++) {
				memset(in, 'a' + (int)(len % 26), len);
				in[at] = specials[s];
				check_escape(in, len);
			}
	/* random mixes, valid and broken UTF-8 included */
	static const unsigned char pool[] = { 'x', 'y', ':', '.', '"', '\\', 0x01, '\t', 0xc3,
					      0xa9, 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 0xff,
					      0xed, 0xa0 };
	uint64_t x = 0x9e3779b97f4a7c15ull;
	for (int it = 0; it < 20000; it++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = (size_t)(x % 64);
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			in[i] = x % 4 ? (unsigned char)('a' + x % 26) : pool[(x >> 8) % sizeof(pool)];
		}
		check_escape(in, len);
	}
}

Test(core, json_writer_structure_and_numbers)
{
	struct buf b;
	struct jw w;
	buf_init(&b);
	jw_init(&w, &b);
	jw_obj_begin(&w);
	jw_key(&w, "a");
	jw_arr_begin(&w);
	jw_int(&w, -3);
	jw_double(&w, 0.1);
	jw_double(&w, 1e300);
	jw_double(&w, NAN);
	jw_double(&w, -0.0);
	jw_double(&w, 42.0);
	jw_arr_end(&w);
	jw_key(&w, "b");
	jw_bool(&w, true);
	jw_key(&w, "c");
	jw_str(&w, NULL);
	jw_obj_end(&w);
	cr_assert_str_eq(b.p, "{\"a\":[-3,0.1,1e+300,null,0,42],\"b\":true,\"c\":null}");
	buf_done(&b);
}

Test(core, format_double_round_trips)
{
	const double vals[] = { 0.1, 1.0 / 3, 123456789.123, 5e-324, 1.7976931348623157e308, -2.5 };
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		char out[40];
		json_format_double(out, sizeof(out), vals[i]);
		cr_assert_eq(strtod(out, NULL), vals[i], "%s", out);
	}
}

/* The printf-based json_format_double the fast paths must reproduce byte for byte. */
static int ref_format_double(char *out, size_t outlen, double v)
{
	if (v == 0)
		v = 0;
	if (fabs(v) < 1e15 && v == (double)(int64_t)v)
		return snprintf(out, outlen, "%lld", (long long)v);
	int n = snprintf(out, outlen, "%.15g", v);
	if (strtod(out, NULL) != v)
		n = snprintf(out, outlen, "%.17g", v);
	return n;
}

static void check_double(double v)
{
	char got[40], want[40];
	int gn = json_format_double(got, sizeof(got), v);
	int wn = ref_format_double(want, sizeof(want), v);
	cr_assert_str_eq(got, want, "%a", v);
	cr_assert_eq(gn, wn, "%a", v);
}

Test(core, format_double_matches_printf_form)
{
	static const double edge[] = {
		0.1, 0.5, -0.5, 1e-4, 9.9999e-5, 1.5e-4, 0.00012345678901234, 1e14 + 0.5,
		999999999999999.9, 99999999999999.98, 123456789012345.6, 12345678901234.56,
		1e15, 1e15 + 2, -1e15, 1e16, 1e21, 1e22, 1e23, 0.3, 0.7, 2.675, 1.005, 100.25,
		-1234.5678, 1.0 / 3, 2.0 / 3, 5e-324, 1.7976931348623157e308, 4.35, 0.1 + 0.2,
		9007199254740993.0, 1e-5, 0.0001000000000001, INFINITY, -INFINITY, NAN,
	};
	for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
		check_double(edge[i]);
	uint64_t x = 88172645463325252ull;
	for (int i = 0; i < 200000; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		double v;
		int e = (int)(x % 23);
		if (i % 3 == 0) {
			memcpy(&v, &x, sizeof(v)); /* any bit pattern */
		} else if (i % 3 == 1) {
			v = (double)(int64_t)(x >> 20) / pow(10, e); /* short decimals */
		} else {
			v = (double)(x % 100000) / pow(10, e % 9) - 50; /* metric-like */
		}
		check_double(v);
	}
	char small[8];
	cr_assert_eq(json_format_double(small, sizeof(small), 0.125), 5);
	cr_assert_str_eq(small, "0.125");
	cr_assert_eq(json_format_double(small, 4, 0.125), 5); /* snprintf's truncation */
	cr_assert_str_eq(small, "0.1");
}

Test(core, format_int_uint_and_put)
{
	char t[24];
	static const struct { int64_t v; const char *s; } iv[] = {
		{ 0, "0" }, { 9, "9" }, { 10, "10" }, { -1, "-1" }, { 99, "99" }, { 100, "100" },
		{ 1700000000, "1700000000" }, { INT64_MAX, "9223372036854775807" },
		{ INT64_MIN, "-9223372036854775808" },
	};
	for (size_t i = 0; i < sizeof(iv) / sizeof(iv[0]); i++) {
		int n = json_format_int(t, iv[i].v);
		t[n] = '\0';
		cr_assert_str_eq(t, iv[i].s);
	}
	int n = json_format_uint(t, UINT64_MAX);
	t[n] = '\0';
	cr_assert_str_eq(t, "18446744073709551615");
	struct buf b;
	buf_init(&b);
	json_put_int(&b, -42);
	buf_putc(&b, ' ');
	json_put_uint(&b, 7);
	buf_putc(&b, ' ');
	json_put_double(&b, -0.25);
	buf_putc(&b, ' ');
	json_put_double(&b, NAN);
	buf_putc(&b, ' ');
	json_put_str(&b, NULL);
	buf_putc(&b, ' ');
	json_put_str(&b, "a\"\xff");
	cr_assert_str_eq(b.p, "-42 7 -0.25 null null \"a\\\"\\ufffd\"");
	cr_assert_eq(b.len, strlen(b.p));
	buf_done(&b);
}

Test(core, buf_printf_and_steal)
{
	struct buf b;
	buf_init(&b);
	for (int i = 0; i < 1000; i++)
		buf_printf(&b, "%d,", i);
	cr_assert_eq(strncmp(b.p, "0,1,2,", 6), 0);
	size_t n;
	char *p = buf_steal(&b, &n);
	cr_assert_eq(n, strlen(p));
	cr_assert_null(b.p);
	free(p);
}

Test(core, arena_alignment_and_big_blocks)
{
	struct arena a;
	arena_init(&a, 1024);
	for (int i = 0; i < 100; i++) {
		void *p = arena_alloc(&a, (size_t)(i * 7 + 1));
		cr_assert_not_null(p);
		cr_assert_eq((uintptr_t)p % 16, 0);
	}
	char *big = arena_alloc(&a, 100000);
	memset(big, 'x', 100000);
	char *s = arena_strndup(&a, "hello world", 5);
	cr_assert_str_eq(s, "hello");
	arena_done(&a);
	arena_done(NULL);
}

/* Strings are packed byte by byte, pointer arrays 8-aligned, and
 * arena_alloc stays 16-aligned whatever came before it. */
Test(core, arena_mixed_alignments)
{
	struct arena a;
	arena_init(&a, 4096);
	char *s1 = arena_strndup(&a, "abc", 3), *s2 = arena_strndup(&a, "de", 2);
	cr_assert_eq(s2, s1 + 4, "strings packed: %p then %p", (void *)s1, (void *)s2);
	for (int i = 0; i < 2000; i++) {
		char *t = arena_strndup(&a, "xyz", (size_t)(i % 4));
		cr_assert_not_null(t);
		cr_assert_eq(strlen(t), (size_t)(i % 4));
		void **v = arena_alloc_align(&a, (size_t)(i % 5 + 1) * sizeof(void *), sizeof(void *));
		cr_assert_eq((uintptr_t)v % sizeof(void *), 0);
		memset(v, 0xab, (size_t)(i % 5 + 1) * sizeof(void *));
		double *d = arena_alloc(&a, (size_t)(i % 3 + 1) * sizeof(double));
		cr_assert_eq((uintptr_t)d % 16, 0);
		memset(d, 0, (size_t)(i % 3 + 1) * sizeof(double));
	}
	cr_assert_str_eq(s1, "abc");
	cr_assert_str_eq(s2, "de");
	arena_done(&a);
}

Test(core, batch_reserve_series)
{
	struct batch *b = batch_new();
	cr_assert_eq(batch_reserve_series(b, 1000), 0);
	cr_assert_geq(b->series_cap, 1000);
	struct series *p = b->series;
	struct series s = { .name = "m", .host = "h", .kind = SERIES_GAUGE, .value = 1 };
	for (int i = 0; i < 1000; i++) {
		s.ts = i;
		cr_assert_eq(batch_add_series(b, &s), 0);
	}
	cr_assert_eq(b->series, p, "no reallocation within the reserve");
	cr_assert_eq(batch_reserve_series(b, 10), 0); /* never shrinks */
	cr_assert_eq(b->nseries, 1000);
	cr_assert_eq(b->series[999].ts, 999);
	cr_assert_eq(batch_reserve_series(b, SIZE_MAX), -ENOMEM);
	cr_assert_eq(b->nseries, 1000);
	batch_free(b);
}

Test(core, batch_jsonl)
{
	struct batch *b = batch_new();
	struct sv tags[] = { SV_LIT("env:prod"), SV_LIT("x") };
	struct series s = {
		.name = batch_str(b, SV_LIT("req")), .host = batch_str(b, SV_LIT("h1")),
		.tags = batch_tags(b, tags, 2), .ntags = 2, .kind = SERIES_RATE,
		.interval = 10, .ts = 1700000000, .value = 0.5,
	};
	cr_assert_eq(batch_add_series(b, &s), 0);
	struct check_rec c = { .name = "svc", .status = 2, .ts = 5, .host = "h", .message = "m\"q",
			       .tags = NULL, .ntags = 0 };
	cr_assert_eq(batch_add_check(b, &c), 0);
	struct buf out;
	buf_init(&out);
	cr_assert_eq(batch_write_jsonl(b, &out), 0);
	cr_assert_str_eq(out.p,
			 "{\"kind\":\"series\",\"metric\":\"req\",\"type\":\"rate\",\"ts\":1700000000,"
			 "\"value\":0.5,\"interval\":10,\"host\":\"h1\",\"tags\":[\"env:prod\",\"x\"]}\n"
			 "{\"kind\":\"service_check\",\"check\":\"svc\",\"status\":2,\"ts\":5,"
			 "\"message\":\"m\\\"q\",\"host\":\"h\",\"tags\":[]}\n");
	buf_done(&out);
	batch_free(b);
	batch_free(NULL);
}

/* Sink for batch_write_jsonl_to: collects the chunks, fails on call fail_at. */
struct sink {
	struct buf all;
	int calls, fail_at;
	size_t max_chunk;
	bool chunk_not_line_end;
};

static int sink_write(void *arg, const char *p, size_t n)
{
	struct sink *k = arg;
	if (++k->calls == k->fail_at)
		return -EPIPE;
	if (n > k->max_chunk)
		k->max_chunk = n;
	if (n == 0 || p[n - 1] != '\n')
		k->chunk_not_line_end = true;
	return buf_append(&k->all, p, n);
}

static struct batch *mixed_batch(int nseries)
{
	struct batch *b = batch_new();
	struct sv tags[] = { SV_LIT("env:prod"), SV_LIT("team:a\"b") };
	for (int i = 0; i < nseries; i++) {
		struct series s = { .name = "some.metric.name", .host = "host-1", .tags = batch_tags(b, tags, 2),
				    .ntags = 2, .kind = (enum series_kind)(i % 3), .interval = 10,
				    .ts = 1700000000 + i, .value = i * 0.25 };
		cr_assert_eq(batch_add_series(b, &s), 0);
	}
	int32_t keys[] = { 1 };
	uint32_t counts[] = { 3 };
	struct sketch_point p = { .name = "lat", .host = "h", .tags = NULL, .ntags = 0, .ts = 20, .cnt = 3,
				  .min = 0.5, .max = 1e300, .sum = -2, .avg = 1.0 / 3, .nbins = 1,
				  .keys = keys, .counts = counts };
	cr_assert_eq(batch_add_sketch(b, &p), 0);
	static const char *const et[] = { "a:1" };
	struct event_rec e = { .title = "T\n", .text = "x\x01y", .ts = -5, .host = "",
			       .aggregation_key = "", .source_type = "src", .priority = EVENT_PRIORITY_LOW,
			       .alert_type = EVENT_ALERT_ERROR, .tags = et, .ntags = 1 };
	cr_assert_eq(batch_add_event(b, &e), 0);
	struct check_rec c = { .name = "svc", .status = 1, .ts = 7, .host = "h", .message = NULL };
	cr_assert_eq(batch_add_check(b, &c), 0);
	return b;
}

Test(core, batch_jsonl_sketch_event_check_exact)
{
	struct batch *b = mixed_batch(1);
	struct buf out;
	buf_init(&out);
	cr_assert_eq(batch_write_jsonl(b, &out), 0);
	cr_assert_str_eq(out.p,
			 "{\"kind\":\"series\",\"metric\":\"some.metric.name\",\"type\":\"gauge\",\"ts\":1700000000,"
			 "\"value\":0,\"interval\":10,\"host\":\"host-1\",\"tags\":[\"env:prod\",\"team:a\\\"b\"]}\n"
			 "{\"kind\":\"sketch\",\"metric\":\"lat\",\"ts\":20,\"cnt\":3,\"min\":0.5,\"max\":1e+300,"
			 "\"sum\":-2,\"avg\":0.33333333333333331,\"bins\":1,\"host\":\"h\",\"tags\":[]}\n"
			 "{\"kind\":\"event\",\"title\":\"T\\n\",\"text\":\"x\\u0001y\",\"ts\":-5,\"priority\":\"low\","
			 "\"alert_type\":\"error\",\"aggregation_key\":\"\",\"source_type_name\":\"src\",\"host\":\"\","
			 "\"tags\":[\"a:1\"]}\n"
			 "{\"kind\":\"service_check\",\"check\":\"svc\",\"status\":1,\"ts\":7,\"message\":null,"
			 "\"host\":\"h\",\"tags\":[]}\n");
	struct sink k = { .fail_at = 0 };
	buf_init(&k.all);
	cr_assert_eq(batch_write_jsonl_to(b, sink_write, &k), 0);
	cr_assert_eq(k.calls, 1); /* small batch: one chunk at the end */
	cr_assert_eq(k.all.len, out.len);
	cr_assert_eq(memcmp(k.all.p, out.p, out.len), 0);
	buf_done(&k.all);
	buf_done(&out);
	batch_free(b);
}

Test(core, batch_jsonl_to_streams_in_chunks_same_bytes)
{
	struct batch *b = mixed_batch(40000); /* ~7 MB of JSON lines */
	struct buf out;
	buf_init(&out);
	cr_assert_eq(batch_write_jsonl(b, &out), 0);
	cr_assert_gt(out.len, 5 * (size_t)BATCH_JSONL_CHUNK);
	struct sink k = { .fail_at = 0 };
	buf_init(&k.all);
	cr_assert_eq(batch_write_jsonl_to(b, sink_write, &k), 0);
	cr_assert_eq(k.all.len, out.len);
	cr_assert_eq(memcmp(k.all.p, out.p, out.len), 0);
	cr_assert_geq(k.calls, 5);
	cr_assert_leq(k.max_chunk, BATCH_JSONL_CHUNK + 512, "chunk %zu", k.max_chunk);
	cr_assert_not(k.chunk_not_line_end);
	buf_done(&k.all);

	/* the sink's error stops the writing and is returned */
	struct sink f = { .fail_at = 2 };
	buf_init(&f.all);
	cr_assert_eq(batch_write_jsonl_to(b, sink_write, &f), -EPIPE);
	cr_assert_eq(f.calls, 2);
	buf_done(&f.all);

	struct batch *empty = batch_new();
	struct sink e = { .fail_at = 0 };
	buf_init(&e.all);
	cr_assert_eq(batch_write_jsonl_to(empty, sink_write, &e), 0);
	cr_assert_eq(e.calls, 0);
	buf_done(&e.all);
	batch_free(empty);
	buf_done(&out);
	batch_free(b);
}

Test(core, batch_many_records_grow)
{
	struct batch *b = batch_new();
	for (int i = 0; i < 10000; i++) {
		struct series s = { .name = "n", .host = "", .kind = SERIES_GAUGE, .value = i };
		cr_assert_eq(batch_add_series(b, &s), 0);
	}
	cr_assert_eq(b->nseries, 10000);
	cr_assert_eq(b->series[9999].value, 9999);
	batch_free(b);
}

Test(core, log_levels)
{
	cr_assert_eq(log_level_parse("warning"), LOG_LVL_WARN);
	cr_assert_eq(log_level_parse("DEBUG"), LOG_LVL_DEBUG);
	cr_assert_eq(log_level_parse("loud"), -1);
	cr_assert_str_eq(log_level_name(LOG_LVL_ERROR), "ERROR");
}

Test(core, hash_stable_and_combine_order_dependent)
{
	cr_assert_eq(hash64("abc", 3), hash64("abc", 3));
	cr_assert_neq(hash64("abc", 3), hash64("abd", 3));
	cr_assert_neq(hash64_combine(1, 2), hash64_combine(2, 1));
}

/* mem_prefault: the pages inside the range become resident, nothing in the
 * range changes, and ranges with no whole page (or NULL) are left alone. */
Test(core, mem_prefault_makes_pages_resident_and_keeps_contents)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), n = 64 * page;
	unsigned char *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	cr_assert(m != MAP_FAILED);
	unsigned char vec[64];
	cr_assert_eq(mincore(m, n, vec), 0);
	size_t before = 0;
	for (size_t i = 0; i < 64; i++)
		before += vec[i] & 1;
	cr_assert_eq(before, 0, "a fresh mapping has no resident pages");
	for (size_t i = 0; i < 5; i++)
		m[i * page + 7] = (unsigned char)(i + 1);
	/* from the middle of page 0 to the middle of page 63: pages 1..62 */
	mem_prefault(m + 100, n - 200);
	cr_assert_eq(mincore(m, n, vec), 0);
	for (size_t i = 1; i < 63; i++)
		cr_assert(vec[i] & 1, "page %zu resident", i);
	cr_assert(!(vec[63] & 1), "the partial page at the end is left alone");
	for (size_t i = 0; i < 5; i++)
		cr_assert_eq(m[i * page + 7], i + 1);
	for (size_t i = 5; i < 64; i++)
		cr_assert_eq(m[i * page + 7], 0);
	mem_prefault(m + 1, page - 2); /* no whole page: a no-op */
	mem_prefault(NULL, page);
	munmap(m, n);
}
