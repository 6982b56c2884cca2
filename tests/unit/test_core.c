/*
 * test_core.c - core pieces: JSON writer and escaping, buffers, arena, batch
 * JSON lines, log levels.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "core/arena.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/hash.h"
#include "core/json.h"
#include "core/log.h"

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
