/*
 * num.h - locale-independent number parsing and UTF-8 validation for the
 * DogStatsD parser. This file is private to the parse module (parse.c, its
 * unit test and its fuzz harness include it; nothing else should).
 *
 * All functions take a view (pointer + length, not NUL-terminated) and never
 * read outside it. Pure: no allocation, no globals, no logging; thread-safe.
 */
#ifndef DDMA_PARSE_NUM_H
#define DDMA_PARSE_NUM_H

#include <locale.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum parse_num_result {
	PARSE_NUM_OK = 0,
	PARSE_NUM_BAD = -1,	/* not a number in the accepted grammar */
	PARSE_NUM_NAN_INF = -2, /* "nan", "inf", "infinity" (any case, signed) or overflow */
};

/*
 * Parses a decimal floating-point number: [+-] (D+ [. D*] | . D+) [(e|E) [+-] D+]
 * (what Go's strconv.ParseFloat accepts for decimal input, minus underscores).
 * Hex floats, spaces and trailing bytes are PARSE_NUM_BAD. Results are
 * correctly rounded: exact inputs (mantissa <= 2^53, |exp10| <= 22) take a
 * fast path without strtod; others go through strtod_l(c_locale).
 * Underflow yields 0 or a subnormal (accepted); overflow is PARSE_NUM_NAN_INF.
 * *out is set only on PARSE_NUM_OK.
 */
int parse_double(locale_t c_locale, const char *s, size_t n, double *out);

/* Parses [+]D+ into a non-negative int64 (no '-', no overflow). 0 or PARSE_NUM_BAD. */
int parse_int64(const char *s, size_t n, int64_t *out);

/* True when s[0..n) is well-formed UTF-8 (no overlongs, surrogates or > U+10FFFF).
 * ASCII runs are checked 8 bytes at a time. */
bool parse_utf8_valid(const char *s, size_t n);

#endif
