/*
 * json.h - a small streaming JSON writer into a struct buf.
 *
 * Commas are inserted automatically. Strings are escaped for any input bytes:
 * control characters as \u00hh escapes, invalid UTF-8 sequences replaced by U+FFFD,
 * so the output is always valid JSON. Non-finite doubles are written as null.
 * Numbers are formatted in the C locale (the agent never calls setlocale).
 */
#ifndef DDMA_CORE_JSON_H
#define DDMA_CORE_JSON_H

#include <stdbool.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/sv.h"

#define JSON_MAX_DEPTH 32

struct jw {
	struct buf *b;
	int depth;
	bool need_comma[JSON_MAX_DEPTH];
	bool after_key;
};

void jw_init(struct jw *w, struct buf *b);
void jw_obj_begin(struct jw *w);
void jw_obj_end(struct jw *w);
void jw_arr_begin(struct jw *w);
void jw_arr_end(struct jw *w);
void jw_key(struct jw *w, const char *key);
void jw_str(struct jw *w, const char *s);	/* NULL writes null */
void jw_strn(struct jw *w, const char *s, size_t n);
void jw_int(struct jw *w, int64_t v);
void jw_uint(struct jw *w, uint64_t v);
void jw_double(struct jw *w, double v);
void jw_bool(struct jw *w, bool v);
void jw_null(struct jw *w);
/* Appends pre-rendered JSON as one value. */
void jw_raw(struct jw *w, const char *json, size_t n);

/* Escapes s (n bytes) as a JSON string with quotes into b. */
void json_escape(struct buf *b, const char *s, size_t n);
/* The same bytes written at o, which must have room for JSON_ESCAPE_MAX(n)
 * bytes (every input byte can become 6); returns the end. No NUL written.
 * For callers rendering many strings into one reservation (encoders). Inline
 * for the usual short name or tag with nothing to escape (the encoders call
 * it several times per record, a million records per flush); any other
 * string goes to json_escape_to_general, which takes any input. */
#define JSON_ESCAPE_MAX(n) (6 * (n) + 2)
char *json_escape_to_general(char *o, const char *s, size_t n);

/* Whether one of the 8 bytes of x needs escaping (< 0x20, '"', '\\' or
 * >= 0x80): "Bit Twiddling Hacks" hasless/haszero, exact as yes/no. */
static inline bool json_special8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
	uint64_t q = x ^ (ones * '"'), bs = x ^ (ones * '\\');
	uint64_t ctl = (x - ones * 0x20) & ~x;
	uint64_t zq = (q - ones) & ~q, zb = (bs - ones) & ~bs;
	return ((x | ctl | zq | zb) & high) != 0;
}

static inline char *json_escape_to(char *o, const char *s, size_t n)
{
	if (n >= 8 && n <= 24) { /* three overlapping words cover it, all inside s */
		uint64_t a, b, c;
		__builtin_memcpy(&a, s, 8);
		__builtin_memcpy(&b, s + (n >= 16 ? 8 : 0), 8);
		__builtin_memcpy(&c, s + n - 8, 8);
		if (!json_special8(a) && !json_special8(b) && !json_special8(c)) {
			o[0] = '"';
			__builtin_memcpy(o + 1, &a, 8);
			__builtin_memcpy(o + 1 + (n >= 16 ? 8 : 0), &b, 8);
			__builtin_memcpy(o + 1 + n - 8, &c, 8);
			o[n + 1] = '"';
			return o + n + 2;
		}
	}
	if (n >= 4 && n < 8) { /* two overlapping halves */
		uint32_t a, b;
		__builtin_memcpy(&a, s, 4);
		__builtin_memcpy(&b, s + n - 4, 4);
		if (!json_special8(a | (uint64_t)b << 32)) {
			o[0] = '"';
			__builtin_memcpy(o + 1, &a, 4);
			__builtin_memcpy(o + 1 + n - 4, &b, 4);
			o[n + 1] = '"';
			return o + n + 2;
		}
	}
	return json_escape_to_general(o, s, n);
}
/* Shortest "%.15g"/"%.17g" form that reads back to the same double
 * (integral values below 1e15 as integers, -0 as 0). Returns the length
 * snprintf would. */
int json_format_double(char *out, size_t outlen, double v);
/* Decimal forms without printf; out needs 20 bytes. Not NUL-terminated;
 * return the length. */
int json_format_uint(char *out, uint64_t v);
int json_format_int(char *out, int64_t v);
/* Append a number as JSON to b (non-finite doubles as null); on ENOMEM b keeps
 * what it had and b->failed is set. */
void json_put_int(struct buf *b, int64_t v);
void json_put_uint(struct buf *b, uint64_t v);
void json_put_double(struct buf *b, double v);
/* Appends s as an escaped JSON string, NULL as null. */
void json_put_str(struct buf *b, const char *s);

#endif
