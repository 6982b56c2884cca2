/*
 * json.c - see json.h.
 */
#include "core/json.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jw_init(struct jw *w, struct buf *b)
{
	w->b = b;
	w->depth = 0;
	w->need_comma[0] = false;
	w->after_key = false;
}

static void pre_value(struct jw *w)
{
	if (w->after_key) {
		w->after_key = false;
		return;
	}
	if (w->need_comma[w->depth])
		buf_putc(w->b, ',');
	w->need_comma[w->depth] = true;
}

static void open(struct jw *w, char c)
{
	pre_value(w);
	buf_putc(w->b, c);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

static void close_(struct jw *w, char c)
{
	buf_putc(w->b, c);
	if (w->depth > 0)
		w->depth--;
}

void jw_obj_begin(struct jw *w) { open(w, '{'); }
void jw_obj_end(struct jw *w) { close_(w, '}'); }
void jw_arr_begin(struct jw *w) { open(w, '['); }
void jw_arr_end(struct jw *w) { close_(w, ']'); }

void jw_key(struct jw *w, const char *key)
{
	pre_value(w);
	json_escape(w->b, key, strlen(key));
	buf_putc(w->b, ':');
	w->after_key = true;
}

void jw_str(struct jw *w, const char *s)
{
	if (!s) {
		jw_null(w);
		return;
	}
	jw_strn(w, s, strlen(s));
}

void jw_strn(struct jw *w, const char *s, size_t n)
{
	pre_value(w);
	json_escape(w->b, s, n);
}

void jw_int(struct jw *w, int64_t v)
{
	pre_value(w);
	json_put_int(w->b, v);
}

void jw_uint(struct jw *w, uint64_t v)
{
	pre_value(w);
	json_put_uint(w->b, v);
}

void jw_double(struct jw *w, double v)
{
	pre_value(w);
	json_put_double(w->b, v);
}

void jw_bool(struct jw *w, bool v)
{
	pre_value(w);
	buf_puts(w->b, v ? "true" : "false");
}

void jw_null(struct jw *w)
{
	pre_value(w);
	buf_puts(w->b, "null");
}

void jw_raw(struct jw *w, const char *json, size_t n)
{
	pre_value(w);
	buf_append(w->b, json, n);
}

static const char digits2[] =
	"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
	"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
	"8081828384858687888990919293949596979899";

/* Writes v in decimal ending just before end; returns the first byte. */
static char *fmt_u64_rev(char *end, uint64_t v)
{
	char *p = end;
	while (v >= 100) {
		unsigned d = (unsigned)(v % 100) * 2;
		v /= 100;
		*--p = digits2[d + 1];
		*--p = digits2[d];
	}
	if (v >= 10) {
		*--p = digits2[v * 2 + 1];
		*--p = digits2[v * 2];
	} else {
		*--p = (char)('0' + v);
	}
	return p;
}

int json_format_uint(char *out, uint64_t v)
{
	char tmp[20];
	char *p = fmt_u64_rev(tmp + sizeof(tmp), v);
	size_t n = (size_t)(tmp + sizeof(tmp) - p);
	memcpy(out, p, n);
	return (int)n;
}

int json_format_int(char *out, int64_t v)
{
	if (v >= 0)
		return json_format_uint(out, (uint64_t)v);
	out[0] = '-';
	return 1 + json_format_uint(out + 1, 0 - (uint64_t)v);
}

/*
 * Fast path of json_format_double for values that are the nearest double of a
 * decimal m / 10^k with at most 15 significant digits and 1e-4 <= |v| < 1e15:
 * "%.15g" prints exactly that decimal in fixed notation (DBL_DIG is 15, so the
 * 15-digit rounding of v gives the decimal back) and it reads back to v, so it
 * is what the slow path picks. Returns the length, or 0 when v does not fit.
 */
static int format_decimal(char *out, double v)
{
	static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
				      1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
				      1e17, 1e18, 1e19 };
	double a = fabs(v);
	if (!(a >= 1e-4 && a < 1e15))
		return 0;
	for (int k = 1; k <= 19; k++) {
		double x = a * p10[k];
		if (x >= 1e15)
			return 0;
		double m = nearbyint(x);
		if (m / p10[k] != a)
			continue;
		/* k is the smallest that fits, so the fraction has no trailing zero */
		uint64_t u = (uint64_t)m, pk = 1;
		for (int i = 0; i < k; i++)
			pk *= 10;
		uint64_t ip = u / pk, fp = u % pk;
		char tmp[40], *end = tmp + sizeof(tmp), *p = end;
		for (int i = 0; i < k; i++) {
			*--p = (char)('0' + fp % 10);
			fp /= 10;
		}
		*--p = '.';
		p = fmt_u64_rev(p, ip);
		if (v < 0)
			*--p = '-';
		memcpy(out, p, (size_t)(end - p));
		return (int)(end - p);
	}
	return 0;
}

int json_format_double(char *out, size_t outlen, double v)
{
	if (v == 0)
		v = 0; /* turns -0 into 0 */
	if (outlen >= 32) {
		if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
			int n = json_format_int(out, (int64_t)v);
			out[n] = '\0';
			return n;
		}
		int n = format_decimal(out, v);
		if (n > 0) {
			out[n] = '\0';
			return n;
		}
	} else if (fabs(v) < 1e15 && v == (double)(int64_t)v) {
		return snprintf(out, outlen, "%lld", (long long)v);
	}
	int n = snprintf(out, outlen, "%.15g", v);
	if (strtod(out, NULL) != v)
		n = snprintf(out, outlen, "%.17g", v);
	return n;
}

void json_put_int(struct buf *b, int64_t v)
{
	if (buf_reserve(b, 20) < 0)
		return;
	b->len += (size_t)json_format_int(b->p + b->len, v);
	b->p[b->len] = '\0';
}

void json_put_uint(struct buf *b, uint64_t v)
{
	if (buf_reserve(b, 20) < 0)
		return;
	b->len += (size_t)json_format_uint(b->p + b->len, v);
	b->p[b->len] = '\0';
}

void json_put_double(struct buf *b, double v)
{
	if (!isfinite(v)) {
		buf_append(b, "null", 4);
		return;
	}
	if (buf_reserve(b, 40) < 0)
		return;
	b->len += (size_t)json_format_double(b->p + b->len, 40, v);
}

/* Length of the valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		cp = c & 0x1f;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		cp = c & 0x0f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		cp = c & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

void json_put_str(struct buf *b, const char *s)
{
	if (s)
		json_escape(b, s, strlen(s));
	else
		buf_append(b, "null", 4);
}

/* Bytes that leave json_escape's plain-copy run. */
static inline bool special(unsigned char c)
{
	return c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
}

/* Escapes one special byte (or UTF-8 sequence) at p[0] into o; *adv is the
 * number of input bytes consumed. Returns the output length (at most 6). */
static size_t escape_one(char *o, const unsigned char *p, size_t n, size_t *adv)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char c = p[0];
	*adv = 1;
	if (c == '"' || c == '\\') {
		o[0] = '\\';
		o[1] = (char)c;
		return 2;
	}
	if (c < 0x20) {
		const char *e = c == '\n' ? "n" : c == '\t' ? "t" : c == '\r' ? "r" : NULL;
		o[0] = '\\';
		if (e) {
			o[1] = e[0];
			return 2;
		}
		memcpy(o + 1, "u00", 3);
		o[4] = hex[c >> 4];
		o[5] = hex[c & 15];
		return 6;
	}
	size_t l = utf8_seq(p, n);
	if (l == 0) {
		memcpy(o, "\\ufffd", 6);
		return 6;
	}
	memcpy(o, p, l);
	*adv = l;
	return l;
}

/* Whether s[0..n) has no special byte, for n >= 8: whole words, then the
 * last 8 bytes (overlapping), all within s. */
static bool plain_long(const unsigned char *s, size_t n)
{
	uint64_t x;
	size_t i = 0;
	for (; i + 8 <= n; i += 8) {
		memcpy(&x, s + i, 8);
		if (json_special8(x))
			return false;
	}
	if (i == n)
		return true;
	memcpy(&x, s + n - 8, 8);
	return !json_special8(x);
}

/* The general case: plain runs 8 bytes at a time, specials one by one. */
static char *escape_slow(char *o, const unsigned char *p, const unsigned char *end)
{
	while (p < end) {
		while (end - p >= 8) {
			uint64_t x;
			memcpy(&x, p, 8);
			if (json_special8(x))
				break;
			memcpy(o, &x, 8);
			o += 8;
			p += 8;
		}
		if (p == end)
			break;
		if (!special(*p)) {
			*o++ = (char)*p++;
			continue;
		}
		size_t adv;
		o += escape_one(o, p, (size_t)(end - p), &adv);
		p += adv;
	}
	return o;
}

char *json_escape_to_general(char *o, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	*o++ = '"';
	size_t i = 0;
	if (n >= 8) {
		if (plain_long(p, n)) { /* the usual name or tag: one copy */
			memcpy(o, p, n);
			i = n;
		}
	} else {
		while (i < n && !special(p[i])) {
			o[i] = (char)p[i];
			i++;
		}
	}
	o += i;
	if (i < n)
		o = escape_slow(o, p + i, p + n);
	*o++ = '"';
	return o;
}

void json_escape(struct buf *b, const char *s, size_t n)
{
	/* worst case: every byte becomes 6 (\u00XX or \ufffd) */
	if (n > (SIZE_MAX - 2) / 6 || buf_reserve(b, JSON_ESCAPE_MAX(n)) < 0) {
		b->failed = true;
		return;
	}
	char *o = json_escape_to(b->p + b->len, s, n);
	*o = '\0';
	b->len = (size_t)(o - b->p);
}
