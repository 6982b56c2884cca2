/*
 * num.c - number parsing and UTF-8 validation for the DogStatsD parser.
 *
 * Caller: parse.c (per value, per @rate, per timestamp, per name and tag field).
 * Owns nothing; the C locale used by the strtod_l fallback is created and
 * owned by the dsd_parser. Pure and thread-safe.
 *
 * Cost: one pass over the digits. Values that are exactly representable as
 * mantissa * 10^e (mantissa <= 2^53, |e| <= 22) are computed with one IEEE
 * multiplication or division (Clinger's fast path), which is correctly
 * rounded because both operands are exact. Anything else is normalised into a
 * bounded stack buffer (at most SLOW_DIGITS significant digits plus a sticky
 * digit, which is enough for correct rounding) and handed to strtod_l.
 */
#include "parse/num.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* More significant digits than any double needs for correct rounding (767). */
#define SLOW_DIGITS 780
/* |exponent| beyond which every input is 0 or overflows; keeps ints small. */
#define EXP_CLAMP 100000

static const double pow10_exact[23] = {
	1e0,  1e1,  1e2,  1e3,	1e4,  1e5,  1e6,  1e7,	1e8,  1e9,  1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
};

static inline bool is_digit(char c)
{
	return (unsigned char)(c - '0') < 10;
}

/* "inf", "infinity", "nan" in any case: the caller already consumed a sign. */
static int special(const char *p, size_t n)
{
	static const char *const words[] = { "inf", "infinity", "nan" };
	for (size_t w = 0; w < sizeof(words) / sizeof(words[0]); w++) {
		if (strlen(words[w]) == n && strncasecmp(p, words[w], n) == 0)
			return PARSE_NUM_NAN_INF;
	}
	return PARSE_NUM_BAD;
}

/* Reads an already validated exponent ("e" consumed) with saturation. */
static int64_t read_exponent(const char *p, const char *end)
{
	bool neg = false;
	int64_t ex = 0;
	if (p < end && (*p == '+' || *p == '-')) {
		neg = *p == '-';
		p++;
	}
	for (; p < end; p++) {
		if (ex < EXP_CLAMP)
			ex = ex * 10 + (*p - '0');
	}
	return neg ? -ex : ex;
}

static size_t put_exponent(char *b, int64_t e)
{
	char tmp[24];
	size_t k = 0, n = 0;
	uint64_t u;
	b[k++] = 'e';
	if (e < 0)
		b[k++] = '-';
	u = e < 0 ? (uint64_t)-e : (uint64_t)e;
	do {
		tmp[n++] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	while (n)
		b[k++] = tmp[--n];
	b[k] = '\0';
	return k;
}

/* s[0..n) is known to match the grammar. Builds "[-]DDDD e<exp>" and calls strtod_l. */
static int slow_path(locale_t loc, const char *s, size_t n, double *out)
{
	char b[SLOW_DIGITS + 40];
	const char *p = s, *end = s + n;
	size_t k = 0, nd = 0;
	int64_t dexp = 0;
	bool frac = false, sticky = false;

	if (*p == '+' || *p == '-') {
		if (*p == '-')
			b[k++] = '-';
		p++;
	}
	for (; p < end && (*p | 0x20) != 'e'; p++) {
		if (*p == '.') {
			frac = true;
		} else if (nd == 0 && *p == '0') {
			dexp -= frac;
		} else if (nd < SLOW_DIGITS) {
			b[k++] = *p;
			nd++;
			dexp -= frac;
		} else {
			dexp += !frac;
			sticky |= *p != '0';
		}
	}
	if (nd == 0)
		b[k++] = '0';
	if (sticky) {
		b[k++] = '1';
		dexp--;
	}
	if (p < end)
		dexp += read_exponent(p + 1, end);
	if (dexp > EXP_CLAMP)
		dexp = EXP_CLAMP;
	if (dexp < -EXP_CLAMP)
		dexp = -EXP_CLAMP;
	put_exponent(b + k, dexp);

	double v = strtod_l(b, NULL, loc);
	if (isinf(v) || isnan(v))
		return PARSE_NUM_NAN_INF;
	*out = v;
	return PARSE_NUM_OK;
}

/* True when [p, end) is exactly [+-]D+ (the part after 'e'). */
static bool exponent_ok(const char *p, const char *end)
{
	if (p < end && (*p == '+' || *p == '-'))
		p++;
	if (p == end)
		return false;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return false;
	}
	return true;
}

int parse_double(locale_t loc, const char *s, size_t n, double *out)
{
	const char *p = s, *end = s + n;
	uint64_t mant = 0;
	int ndig = 0;
	int64_t e10 = 0, frac = 0;
	bool neg = false, big = false, any = false, dot = false;

	if (p < end && (*p == '+' || *p == '-')) {
		neg = *p == '-';
		p++;
	}
	if (p == end)
		return PARSE_NUM_BAD;
	if ((*p | 0x20) == 'i' || (*p | 0x20) == 'n')
		return special(p, (size_t)(end - p));
	/* mantissa: up to 19 significant digits accumulate, more go slow */
	for (; p < end; p++) {
		unsigned d = (unsigned char)(*p - '0');
		if (d < 10) {
			any = true;
			if (ndig < 19) {
				mant = mant * 10 + d;
				ndig += mant != 0;
				e10 -= frac;
			} else {
				big = true;
			}
		} else if (*p == '.' && !dot) {
			dot = true;
			frac = 1;
		} else {
			break;
		}
	}
	if (!any)
		return PARSE_NUM_BAD;
	if (p < end && (*p | 0x20) == 'e') {
		if (!exponent_ok(p + 1, end))
			return PARSE_NUM_BAD;
		if (!big && mant != 0)
			e10 += read_exponent(p + 1, end);
	} else if (p != end) {
		return PARSE_NUM_BAD;
	}
	if (!big && mant == 0) {
		*out = neg ? -0.0 : 0.0;
		return PARSE_NUM_OK;
	}
	if (!big && mant <= (UINT64_C(1) << 53) && e10 >= -22 && e10 <= 22) {
		double v = (double)mant;
		v = e10 < 0 ? v / pow10_exact[-e10] : v * pow10_exact[e10];
		*out = neg ? -v : v;
		return PARSE_NUM_OK;
	}
	return slow_path(loc, s, n, out);
}

int parse_int64(const char *s, size_t n, int64_t *out)
{
	const char *p = s, *end = s + n;
	uint64_t v = 0;
	if (p < end && *p == '+')
		p++;
	if (p == end)
		return PARSE_NUM_BAD;
	for (; p < end; p++) {
		if (!is_digit(*p))
			return PARSE_NUM_BAD;
		v = v * 10 + (uint64_t)(*p - '0');
		if (v > (uint64_t)INT64_MAX)
			return PARSE_NUM_BAD;
	}
	*out = (int64_t)v;
	return PARSE_NUM_OK;
}

/* Length of the well-formed multi-byte sequence at p (lead byte >= 0x80), 0 if bad. */
static size_t utf8_seq(const unsigned char *p, size_t left)
{
	unsigned char c = p[0];
	unsigned char lo = 0x80, hi = 0xBF;
	size_t len;

	if (c >= 0xC2 && c <= 0xDF)
		len = 2;
	else if (c >= 0xE0 && c <= 0xEF)
		len = 3;
	else if (c >= 0xF0 && c <= 0xF4)
		len = 4;
	else
		return 0;
	if (c == 0xE0)
		lo = 0xA0; /* overlong */
	else if (c == 0xED)
		hi = 0x9F; /* surrogates */
	else if (c == 0xF0)
		lo = 0x90; /* overlong */
	else if (c == 0xF4)
		hi = 0x8F; /* > U+10FFFF */
	if (left < len || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++) {
		if (p[i] < 0x80 || p[i] > 0xBF)
			return 0;
	}
	return len;
}

bool parse_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0;
	while (i < n) {
		while (i + 8 <= n) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			if (w & UINT64_C(0x8080808080808080))
				break;
			i += 8;
		}
		while (i < n && p[i] < 0x80)
			i++;
		if (i == n)
			break;
		size_t len = utf8_seq(p + i, n - i);
		if (len == 0)
			return false;
		i += len;
	}
	return true;
}
