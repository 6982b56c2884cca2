/*
 * json.c - see json.h.
 */
#include "core/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

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
	buf_printf(w->b, "%lld", (long long)v);
}

void jw_uint(struct jw *w, uint64_t v)
{
	pre_value(w);
	buf_printf(w->b, "%llu", (unsigned long long)v);
}

void jw_double(struct jw *w, double v)
{
	char tmp[40];
	pre_value(w);
	if (!isfinite(v)) {
		buf_puts(w->b, "null");
		return;
	}
	int n = json_format_double(tmp, sizeof(tmp), v);
	buf_append(w->b, tmp, (size_t)n);
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

int json_format_double(char *out, size_t outlen, double v)
{
	if (v == 0)
		v = 0; /* turns -0 into 0 */
	if (fabs(v) < 1e15 && v == (double)(int64_t)v)
		return snprintf(out, outlen, "%lld", (long long)v);
	int n = snprintf(out, outlen, "%.15g", v);
	if (strtod(out, NULL) != v)
		n = snprintf(out, outlen, "%.17g", v);
	return n;
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

void json_escape(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	buf_reserve(b, n + 2);
	buf_putc(b, '"');
	size_t i = 0;
	while (i < n) {
		size_t run = i;
		/* Fast path: copy a run of plain printable ASCII. */
		while (run < n && p[run] >= 0x20 && p[run] < 0x80 && p[run] != '"' && p[run] != '\\')
			run++;
		if (run > i) {
			buf_append(b, p + i, run - i);
			i = run;
			continue;
		}
		unsigned char c = p[i];
		if (c == '"' || c == '\\') {
			char e[2] = { '\\', (char)c };
			buf_append(b, e, 2);
			i++;
		} else if (c < 0x20) {
			char e[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			if (c == '\n')
				buf_append(b, "\\n", 2);
			else if (c == '\t')
				buf_append(b, "\\t", 2);
			else if (c == '\r')
				buf_append(b, "\\r", 2);
			else
				buf_append(b, e, 6);
			i++;
		} else {
			size_t l = utf8_seq(p + i, n - i);
			if (l == 0) {
				buf_append(b, "\\ufffd", 6);
				i++;
			} else {
				buf_append(b, p + i, l);
				i += l;
			}
		}
	}
	buf_putc(b, '"');
}
