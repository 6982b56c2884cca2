/*
 * parse.c - the DogStatsD parser: splits datagrams into windows of lines
 * and turns a line into a metric, event or service check (docs/DOGSTATSD.md).
 *
 * Caller: the ingest loop (ingest.c: net -> dsd_split_next / dsd_parse_line
 * -> aggr). Owns: its limits, the tag and value scratch arrays (allocated once
 * in dsd_parser_new, sized by max_tags / max_values), a "C" locale for the
 * strtod_l fallback, two windows of lines, and its counters. Views in a
 * message point into the datagram or into the scratch arrays.
 * Threading: one parser per receive thread; no logging; the only globals it
 * reads are the cache key's secrets and implementation (keyhash.h), fixed
 * before the receive threads start.
 *
 * Cost: linear in the datagram. Lines are split in windows of 64 with SSE2
 * scans (find2), fields with memchr; each byte of a message is looked at a
 * small constant number of times (split, key, field scan, UTF-8 check of
 * name and tags). Nothing is allocated per datagram or line.
 */
#include "parse/parse.h"

#include <stdlib.h>
#include <string.h>

#include "parse/keyhash.h"
#include "parse/num.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define WALK_MAX DSD_WINDOW_MAX

struct dsd_parser {
	struct dsd_limits lim;
	locale_t c_locale;
	struct sv *tags;	/* lim.max_tags entries (at least 1) */
	double *values;		/* lim.max_values entries (at least 1) */
	/* Two windows of lines (dsd_split_next hands them out in turn): the
	 * caller's current one and the one split ahead of it. */
	struct window {
		struct dsd_window pub; /* first: dsd_split_next returns &pub */
		struct walk_line {
			const char *s, *le; /* the line, without its '\n' and a trailing '\r' */
			const char *bar, *colon; /* first '|', first ':' before it (NULL: none) */
			size_t nv;	/* vals: values parsed into p->values */
			uint8_t tn;	/* candidate: the length of its type field */
			bool vals, sign; /* dsd_line_metric parsed its several values (nv, explicit sign) */
		} l[WALK_MAX];
		bool nul;	/* its datagram has a NUL byte */
	} win[2];
	unsigned nextwin;	/* the window dsd_split_next fills next */
	bool keys;		/* dsd_split_begin's keys */
	/* The walk's place: datagram dg[next - 1] (of ndg), whose next line
	 * starts at `at` (NULL: no line left); lo/end bound it, nul: it has a
	 * NUL byte, cache: its lines may be candidates. */
	const struct dsd_datagram *dg;
	size_t ndg, next;
	const char *at, *lo, *end;
	bool nul, cache;
	struct dsd_stats st;
};

enum kind { KIND_METRIC, KIND_EVENT, KIND_CHECK };



/* "No error": the message was accepted. */
#define ACCEPT DSD_ERR_COUNT

static const char *const error_names[DSD_ERR_COUNT] = {
	[DSD_ERR_EMPTY_NAME] = "empty_name",
	[DSD_ERR_NO_VALUE] = "no_value",
	[DSD_ERR_BAD_VALUE] = "bad_value",
	[DSD_ERR_NAN_INF] = "nan_inf",
	[DSD_ERR_NO_TYPE] = "no_type",
	[DSD_ERR_BAD_TYPE] = "bad_type",
	[DSD_ERR_BAD_SAMPLE_RATE] = "bad_sample_rate",
	[DSD_ERR_BAD_TIMESTAMP] = "bad_timestamp",
	[DSD_ERR_NAME_TOO_LONG] = "name_too_long",
	[DSD_ERR_TOO_MANY_TAGS] = "too_many_tags",
	[DSD_ERR_TAG_TOO_LONG] = "tag_too_long",
	[DSD_ERR_TOO_MANY_VALUES] = "too_many_values",
	[DSD_ERR_NUL_BYTE] = "nul_byte",
	[DSD_ERR_INVALID_UTF8] = "invalid_utf8",
	[DSD_ERR_EVENT_HEADER] = "event_header",
	[DSD_ERR_EVENT_LENGTH] = "event_length",
	[DSD_ERR_EVENT_EMPTY_TITLE] = "event_empty_title",
	[DSD_ERR_CHECK_FORMAT] = "check_format",
	[DSD_ERR_CHECK_EMPTY_NAME] = "check_empty_name",
	[DSD_ERR_CHECK_STATUS] = "check_status",
};

const char *dsd_error_name(enum dsd_error e)
{
	if ((unsigned)e >= DSD_ERR_COUNT || !error_names[e])
		return "unknown";
	return error_names[e];
}

struct dsd_parser *dsd_parser_new(const struct dsd_limits *lim)
{
	struct dsd_parser *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->lim = lim ? *lim : DSD_LIMITS_DEFAULT;
	p->c_locale = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	p->tags = calloc(p->lim.max_tags ? p->lim.max_tags : 1, sizeof(*p->tags));
	p->values = calloc(p->lim.max_values ? p->lim.max_values : 1, sizeof(*p->values));
	if (p->c_locale == (locale_t)0 || !p->tags || !p->values) {
		dsd_parser_free(p);
		return NULL;
	}
	return p;
}

void dsd_parser_free(struct dsd_parser *p)
{
	if (!p)
		return;
	if (p->c_locale != (locale_t)0)
		freelocale(p->c_locale);
	free(p->tags);
	free(p->values);
	free(p);
}

const struct dsd_stats *dsd_parser_stats(const struct dsd_parser *p)
{
	return &p->st;
}

/* ---- shared field helpers ---------------------------------------------- */

static inline bool has_prefix(const char *s, size_t n, const char *pre, size_t pn)
{
	return n >= pn && memcmp(s, pre, pn) == 0;
}

/*
 * Splits the next '|'-separated field off *pos (NULL = none left); the last
 * field runs to end. A trailing '|' yields one final empty field.
 */
static inline bool next_field(const char **pos, const char *end, struct sv *f)
{
	const char *s = *pos;
	if (!s)
		return false;
	const char *bar = memchr(s, '|', (size_t)(end - s));
	f->p = s;
	f->n = (size_t)((bar ? bar : end) - s);
	*pos = bar ? bar + 1 : NULL;
	return true;
}

/*
 * Splits a tags field on ',' into p->tags (empty tags skipped), enforcing
 * max_tags and max_tag_len, then checks the whole field is UTF-8 (a ',' can
 * never sit inside a multi-byte sequence, so this equals a per-tag check).
 */
static enum dsd_error parse_tags(struct dsd_parser *p, const char *s, size_t n, size_t *ntags)
{
	const char *start = s, *end = s + n;
	size_t count = 0;
	while (s < end) {
		const char *comma = memchr(s, ',', (size_t)(end - s));
		size_t len = (size_t)((comma ? comma : end) - s);
		if (len) {
			if (len > p->lim.max_tag_len)
				return DSD_ERR_TAG_TOO_LONG;
			if (count == p->lim.max_tags)
				return DSD_ERR_TOO_MANY_TAGS;
			p->tags[count++] = (struct sv){ s, len };
		}
		if (!comma)
			break;
		s = comma + 1;
	}
	if (!parse_utf8_valid(start, n))
		return DSD_ERR_INVALID_UTF8;
	*ntags = count;
	return ACCEPT;
}

static enum dsd_error check_name(const struct dsd_parser *p, const char *s, size_t n)
{
	if (n > p->lim.max_name_len)
		return DSD_ERR_NAME_TOO_LONG;
	if (!parse_utf8_valid(s, n))
		return DSD_ERR_INVALID_UTF8;
	return ACCEPT;
}

/* ---- metrics ------------------------------------------------------------ */

static enum dsd_error metric_type(const char *s, size_t n, enum metric_type *t)
{
	if (n == 0)
		return DSD_ERR_NO_TYPE;
	if (n == 1) {
		switch (s[0]) {
		case 'c': *t = METRIC_COUNT; return ACCEPT;
		case 'g': *t = METRIC_GAUGE; return ACCEPT;
		case 'h': *t = METRIC_HISTOGRAM; return ACCEPT;
		case 's': *t = METRIC_SET; return ACCEPT;
		case 'd': *t = METRIC_DISTRIBUTION; return ACCEPT;
		default: return DSD_ERR_BAD_TYPE;
		}
	}
	if (n == 2 && s[0] == 'm' && s[1] == 's') {
		*t = METRIC_TIMING;
		return ACCEPT;
	}
	return DSD_ERR_BAD_TYPE;
}

/*
 * The common value shape, [+-]digits[.digits] with at most 15 digits, read
 * in one pass: the mantissa is exact, so one division by an exact power of
 * ten is correctly rounded, the same double parse_double returns (Clinger's
 * fast path, num.c). Returns the end of the value when it ends at `end` or at
 * a ':'; NULL (anything else) sends the value to parse_double.
 */
static inline const char *simple_value(const char *s, const char *end, double *out)
{
	static const double pow10[16] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8,
					  1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15 };
	const char *q = s;
	bool neg = false;
	uint64_t mant = 0;
	unsigned nd = 0, fd = 0;

	if (q < end && (*q == '+' || *q == '-'))
		neg = *q++ == '-';
	for (; q < end && (unsigned char)(*q - '0') < 10; q++, nd++)
		mant = mant * 10 + (uint64_t)(*q - '0');
	if (q < end && *q == '.')
		for (q++; q < end && (unsigned char)(*q - '0') < 10; q++, fd++)
			mant = mant * 10 + (uint64_t)(*q - '0');
	if (nd + fd == 0 || nd + fd > 15 || (q < end && *q != ':'))
		return NULL;
	double v = fd ? (double)mant / pow10[fd] : (double)mant;
	*out = neg ? -v : v;
	return q;
}

/* Values between the name's ':' and the type's '|': one set member, or
 * ':'-separated numbers with empty pieces skipped. */
static enum dsd_error metric_values(struct dsd_parser *p, const char *s, size_t n,
				    struct dsd_metric *m)
{
	const char *end = s + n;
	size_t count = 0;
	bool sign = false;

	m->values = p->values;
	if (m->type == METRIC_SET) {
		p->values[0] = 0;
		m->set_member = (struct sv){ s, n };
		m->nvalues = 1;
		return ACCEPT;
	}
	for (;;) {
		double v = 0;
		const char *colon = s < end && *s != ':' ? simple_value(s, end, &v) : NULL;
		size_t len;
		bool simple = colon != NULL;
		if (simple) {
			len = (size_t)(colon - s);
			colon = colon < end ? colon : NULL;
		} else {
			colon = memchr(s, ':', (size_t)(end - s));
			len = (size_t)((colon ? colon : end) - s);
		}
		if (len) {
			if (count == p->lim.max_values)
				return DSD_ERR_TOO_MANY_VALUES;
			int r = simple ? PARSE_NUM_OK : parse_double(p->c_locale, s, len, &v);
			if (r == PARSE_NUM_NAN_INF)
				return DSD_ERR_NAN_INF;
			if (r != PARSE_NUM_OK)
				return DSD_ERR_BAD_VALUE;
			p->values[count++] = v;
			sign |= s[0] == '+' || s[0] == '-';
		}
		if (!colon)
			break;
		s = colon + 1;
	}
	if (count == 0)
		return DSD_ERR_NO_VALUE;
	m->nvalues = count;
	m->explicit_sign = sign;
	return ACCEPT;
}

/* One optional metric field; unknown ones are ignored. */
static enum dsd_error metric_field(struct dsd_parser *p, struct sv f, struct dsd_metric *m,
				   bool *rate_oor)
{
	double rate;
	int64_t ts;

	if (f.n == 0)
		return ACCEPT;
	switch (f.p[0]) {
	case '@':
		if (parse_double(p->c_locale, f.p + 1, f.n - 1, &rate) != PARSE_NUM_OK)
			return DSD_ERR_BAD_SAMPLE_RATE;
		*rate_oor = !(rate > 0 && rate <= 1);
		m->sample_rate = *rate_oor ? 1.0 : rate;
		return ACCEPT;
	case '#':
		return parse_tags(p, f.p + 1, f.n - 1, &m->ntags);
	case 'T':
		if (parse_int64(f.p + 1, f.n - 1, &ts) != PARSE_NUM_OK || ts <= 0)
			return DSD_ERR_BAD_TIMESTAMP;
		m->timestamp = ts;
		return ACCEPT;
	case 'c':
		if (has_prefix(f.p, f.n, "c:", 2))
			m->container_id = (struct sv){ f.p + 2, f.n - 2 };
		else if (has_prefix(f.p, f.n, "card:", 5))
			m->cardinality = (struct sv){ f.p + 5, f.n - 5 };
		return ACCEPT;
	case 'e':
		if (has_prefix(f.p, f.n, "e:", 2))
			m->external_data = (struct sv){ f.p + 2, f.n - 2 };
		return ACCEPT;
	default:
		return ACCEPT;
	}
}

/* The type field at t when it is a known type ended by '|' or the end of the
 * line: its length (1 or 2), else 0. The same answer as metric_type on the
 * field, without splitting it. */
static inline size_t quick_type(const char *t, const char *end, enum metric_type *type)
{
	size_t n = (size_t)(end - t);
	if (n >= 2 && t[0] == 'm' && t[1] == 's' && (n == 2 || t[2] == '|')) {
		*type = METRIC_TIMING;
		return 2;
	}
	if (n == 0 || (n > 1 && t[1] != '|'))
		return 0;
	return metric_type(t, 1, type) == ACCEPT ? 1 : 0;
}

/* After the name, type and values: the fields from pos (NULL: none). */
static enum dsd_error metric_rest(struct dsd_parser *p, struct dsd_metric *m, const char *pos,
				  const char *end)
{
	struct sv f = SV_NULL;
	bool rate_oor = false;
	enum dsd_error e;

	while (next_field(&pos, end, &f)) {
		if ((e = metric_field(p, f, m, &rate_oor)) != ACCEPT)
			return e;
	}
	m->cacheable = !rate_oor && m->timestamp == 0 && m->type != METRIC_SET;
	p->st.metric_lines++;
	p->st.samples[m->type] += m->nvalues;
	p->st.rate_out_of_range += rate_oor;
	return ACCEPT;
}

/* name:value[:value...]|type[|field...] into *out; w and r: the window's
 * split of the line */
static enum dsd_error parse_metric(struct dsd_parser *p, const char *s, size_t n,
				   const struct walk_line *w, const struct dsd_seen_line *r,
				   struct dsd_metric *out)
{
	const char *end = s + n;
	const char *bar = w->bar;
	const char *nv_end = bar ? bar : end;
	const char *colon = w->colon;
	enum dsd_error e;
	struct sv f = SV_NULL;

	if (!colon)
		return DSD_ERR_NO_VALUE;
	if (colon == s)
		return DSD_ERR_EMPTY_NAME;
	/* The full parse, errors in their documented order. */
	struct dsd_metric *m = out;
	*m = (struct dsd_metric){ .sample_rate = 1.0, .tags = p->tags };
	if (r->kind != DSD_LINE_FULL)
		m->key = r->key;
	m->name = (struct sv){ s, (size_t)(colon - s) };
	if ((e = check_name(p, m->name.p, m->name.n)) != ACCEPT)
		return e;
	if (colon + 1 == nv_end)
		return DSD_ERR_NO_VALUE;
	if (!bar)
		return DSD_ERR_NO_TYPE;
	const char *pos = bar + 1;
	if (!next_field(&pos, end, &f))
		return DSD_ERR_NO_TYPE;
	if ((e = metric_type(f.p, f.n, &m->type)) != ACCEPT)
		return e;
	m->raw_suffix = (struct sv){ f.p + f.n, (size_t)(end - f.p - f.n) };
	if (r->kind == DSD_LINE_SIMPLE) { /* the split read its one value */
		p->values[0] = r->value;
		m->values = p->values;
		m->nvalues = 1;
		m->explicit_sign = r->explicit_sign;
	} else if (w->vals) {
		m->values = p->values;
		m->nvalues = w->nv;
		m->explicit_sign = w->sign;
	} else if ((e = metric_values(p, colon + 1, (size_t)(nv_end - colon - 1), m)) != ACCEPT) {
		return e;
	}
	return metric_rest(p, m, pos, end);
}

/* ---- events ------------------------------------------------------------- */

/* Reads a decimal length ended by `term`; saturates far above any datagram size. */
static bool read_len(const char *s, size_t n, size_t *i, char term, size_t *out)
{
	size_t v = 0, start = *i;
	while (*i < n && s[*i] >= '0' && s[*i] <= '9') {
		if (v < ((size_t)1 << 40))
			v = v * 10 + (size_t)(s[*i] - '0');
		(*i)++;
	}
	if (*i == start || *i >= n || s[*i] != term)
		return false;
	(*i)++;
	*out = v;
	return true;
}

static enum dsd_error event_field(struct dsd_parser *p, struct sv f, struct dsd_event *ev)
{
	struct sv v;
	int64_t ts;

	if (f.n >= 1 && f.p[0] == '#')
		return parse_tags(p, f.p + 1, f.n - 1, &ev->ntags);
	if (f.n < 2 || f.p[1] != ':')
		return ACCEPT;
	v = (struct sv){ f.p + 2, f.n - 2 };
	switch (f.p[0]) {
	case 'd':
		if (parse_int64(v.p, v.n, &ts) == PARSE_NUM_OK)
			ev->timestamp = ts;
		break;
	case 'h': ev->hostname = v; ev->has_hostname = true; break;
	case 'k': ev->aggregation_key = v; break;
	case 's': ev->source_type = v; break;
	case 'c': ev->container_id = v; break;
	case 'p':
		if (sv_eq_cstr(v, "normal"))
			ev->priority = EVENT_PRIORITY_NORMAL;
		else if (sv_eq_cstr(v, "low"))
			ev->priority = EVENT_PRIORITY_LOW;
		break;
	case 't':
		if (sv_eq_cstr(v, "info"))
			ev->alert_type = EVENT_ALERT_INFO;
		else if (sv_eq_cstr(v, "error"))
			ev->alert_type = EVENT_ALERT_ERROR;
		else if (sv_eq_cstr(v, "warning"))
			ev->alert_type = EVENT_ALERT_WARNING;
		else if (sv_eq_cstr(v, "success"))
			ev->alert_type = EVENT_ALERT_SUCCESS;
		break;
	default:
		break;
	}
	return ACCEPT;
}

/* Turns each "\\n" (backslash, 'n') into '\n' in place; returns the new length. */
static size_t unescape_newlines(char *s, size_t n)
{
	char *r = memchr(s, '\\', n), *end = s + n, *w;
	if (!r)
		return n;
	w = r;
	while (r < end) {
		if (r[0] == '\\' && r + 1 < end && r[1] == 'n') {
			*w++ = '\n';
			r += 2;
		} else {
			*w++ = *r++;
		}
	}
	return (size_t)(w - s);
}

/* _e{<title_len>,<text_len>}:<title>|<text>[|field...] into *out */
static enum dsd_error parse_event(struct dsd_parser *p, char *s, size_t n, struct dsd_event *out)
{
	struct dsd_event ev = { .tags = p->tags };
	size_t i = 3, tl, xl;
	enum dsd_error e;
	struct sv f = SV_NULL;

	if (!read_len(s, n, &i, ',', &tl) || !read_len(s, n, &i, '}', &xl) || i >= n || s[i] != ':')
		return DSD_ERR_EVENT_HEADER;
	if (tl == 0)
		return DSD_ERR_EVENT_EMPTY_TITLE;
	char *body = s + i + 1;
	size_t bn = n - i - 1, tend = tl + 1 + xl;
	if (tend > bn || body[tl] != '|' || (tend < bn && body[tend] != '|'))
		return DSD_ERR_EVENT_LENGTH;
	ev.title = (struct sv){ body, unescape_newlines(body, tl) }; /* both, as Datadog's cleanEventText */
	const char *pos = tend < bn ? body + tend + 1 : NULL;
	const char *end = s + n;
	while (next_field(&pos, end, &f)) {
		if ((e = event_field(p, f, &ev)) != ACCEPT)
			return e;
	}
	ev.text = (struct sv){ body + tl + 1, unescape_newlines(body + tl + 1, xl) };
	p->st.events++;
	*out = ev;
	return ACCEPT;
}

/* ---- service checks ----------------------------------------------------- */

static enum dsd_error check_field(struct dsd_parser *p, struct sv f, struct dsd_service_check *sc)
{
	int64_t ts;

	if (f.n >= 1 && f.p[0] == '#')
		return parse_tags(p, f.p + 1, f.n - 1, &sc->ntags);
	if (f.n < 2 || f.p[1] != ':')
		return ACCEPT;
	switch (f.p[0]) {
	case 'd':
		if (parse_int64(f.p + 2, f.n - 2, &ts) == PARSE_NUM_OK)
			sc->timestamp = ts;
		break;
	case 'h':
		sc->hostname = (struct sv){ f.p + 2, f.n - 2 };
		sc->has_hostname = true;
		break;
	case 'c':
		sc->container_id = (struct sv){ f.p + 2, f.n - 2 };
		break;
	case 'm': /* a field like any other: it ends at the next '|' (Datadog's parser) */
		sc->message = (struct sv){ f.p + 2, f.n - 2 };
		break;
	default:
		break;
	}
	return ACCEPT;
}

/* _sc|<name>|<status>[|field...] into *out */
static enum dsd_error parse_check(struct dsd_parser *p, const char *s, size_t n,
				  struct dsd_service_check *out)
{
	struct dsd_service_check sc = { .tags = p->tags };
	const char *end = s + n, *name = s + 4;
	const char *bar = memchr(name, '|', (size_t)(end - name));
	enum dsd_error e;
	struct sv f = SV_NULL;

	if (!bar)
		return DSD_ERR_CHECK_FORMAT;
	if (bar == name)
		return DSD_ERR_CHECK_EMPTY_NAME;
	sc.name = (struct sv){ name, (size_t)(bar - name) };
	if ((e = check_name(p, sc.name.p, sc.name.n)) != ACCEPT)
		return e;
	const char *pos = bar + 1;
	if (!next_field(&pos, end, &f) || f.n != 1 || f.p[0] < '0' || f.p[0] > '3')
		return DSD_ERR_CHECK_STATUS;
	sc.status = (enum check_status)(f.p[0] - '0');
	while (next_field(&pos, end, &f)) {
		if ((e = check_field(p, f, &sc)) != ACCEPT)
			return e;
	}
	p->st.service_checks++;
	*out = sc;
	return ACCEPT;
}

/* ---- datagrams ---------------------------------------------------------- */

static void reject(struct dsd_parser *p, enum kind k, enum dsd_error e)
{
	p->st.errors[e]++;
	if (k == KIND_EVENT)
		p->st.event_errors++;
	else if (k == KIND_CHECK)
		p->st.check_errors++;
	else
		p->st.metric_errors++;
}

static inline struct window *window_of(struct dsd_window *w)
{
	return (struct window *)(void *)w; /* pub is the first member */
}

/* Line i of w, the full parse (events unescape their text in place). */
enum dsd_msg_kind dsd_parse_line(struct dsd_parser *p, struct dsd_window *pw, size_t i,
				 union dsd_msg *out)
{
	const struct window *win = window_of(pw);
	const struct walk_line *w = &win->l[i];
	char *s = (char *)(uintptr_t)w->s;
	size_t n = (size_t)(w->le - w->s);
	enum kind k = KIND_METRIC;
	enum dsd_error e;

	p->st.lines++;
	if (n >= 3 && s[0] == '_' && s[1] == 'e' && s[2] == '{')
		k = KIND_EVENT;
	else if (n >= 4 && s[0] == '_' && s[1] == 's' && s[2] == 'c' && s[3] == '|')
		k = KIND_CHECK;
	if (win->nul && memchr(s, '\0', n)) {
		reject(p, k, DSD_ERR_NUL_BYTE);
		return DSD_MSG_NONE;
	}
	if (k == KIND_EVENT)
		e = parse_event(p, s, n, &out->event);
	else if (k == KIND_CHECK)
		e = parse_check(p, s, n, &out->check);
	else
		e = parse_metric(p, s, n, w, &pw->line[i], &out->metric);
	if (e != ACCEPT) {
		reject(p, k, e);
		return DSD_MSG_NONE;
	}
	return k == KIND_EVENT ? DSD_MSG_EVENT : k == KIND_CHECK ? DSD_MSG_CHECK : DSD_MSG_METRIC;
}

/* ---- splitting a window of lines ---------------------------------------- */

/*
 * Byte searches in [s, end) inside a datagram that starts at lo: 16 bytes per
 * step with SSE2; the last partial step reloads the 16 bytes ending at `end`
 * (never reading outside [lo, end)) or, in a datagram under 16 bytes (or
 * without SSE2), goes byte by byte. First byte equal to a or b, or NULL.
 */
#ifdef __SSE2__
/* Bit i set: q[i] is a or b (16 bytes from q). */
static inline unsigned eq2_mask(const char *q, __m128i va, __m128i vb)
{
	__m128i x = _mm_loadu_si128((const __m128i *)(const void *)q);
	return (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(x, va), _mm_cmpeq_epi8(x, vb)));
}
#endif

static inline const char *find2(const char *lo, const char *s, const char *end, char a, char b)
{
#ifdef __SSE2__
	const __m128i va = _mm_set1_epi8(a), vb = _mm_set1_epi8(b);
	for (; end - s >= 16; s += 16) {
		unsigned m = eq2_mask(s, va, vb);
		if (m)
			return s + __builtin_ctz(m);
	}
	if (s == end)
		return NULL;
	if (end - lo >= 16) {
		const char *q = end - 16;
		unsigned m = eq2_mask(q, va, vb) >> (unsigned)(s - q);
		return m ? s + __builtin_ctz(m) : NULL;
	}
#else
	(void)lo;
#endif
	for (; s < end; s++)
		if (*s == a || *s == b)
			return s;
	return NULL;
}

static inline const char *find1(const char *lo, const char *s, const char *end, char c)
{
	return find2(lo, s, end, c, c);
}

/* Splits w's line as parse_metric needs it; true when it is a cache
 * candidate (*type, w->tn set; the caller hashes its key). */
static inline __attribute__((always_inline)) bool split_line(struct walk_line *w, const char *lo,
							      bool cache, enum metric_type *typep)
{
	const char *s = w->s, *le = w->le, *c;
	size_t n = (size_t)(le - s);
	enum metric_type type;

	w->vals = false;
	w->bar = w->colon = NULL;
	if (!n || (n >= 3 && s[0] == '_' &&
		   ((s[1] == 'e' && s[2] == '{') || (n >= 4 && s[1] == 's' && s[2] == 'c' && s[3] == '|'))))
		return false; /* empty, an event or a service check */
	if (!(c = find2(lo, s, le, ':', '|')))
		return false;
	if (*c == '|') {
		w->bar = c;
		return false;
	}
	w->colon = c;
	w->bar = find1(lo, c + 1, le, '|');
	if (!cache || c == s || !w->bar || c + 1 == w->bar)
		return false;
	size_t tn = quick_type(w->bar + 1, le, &type);
	size_t nn = (size_t)(c - s), sn = (size_t)(le - w->bar - 1) - tn;
	if (!tn || type == METRIC_SET || nn + sn > DSD_CACHE_KEY_MAX)
		return false;
	*typep = type;
	w->tn = (uint8_t)tn;
	return true;
}

/*
 * Splits the datagram's next lines into win (at most WALK_MAX; lines end at
 * '\n', a trailing '\r' is dropped, empty lines are skipped); win->n = 0
 * when none is left. Candidates get their key from HASH (keyhash.h): one
 * copy of the walk per implementation, so that each inlines its hash (the
 * AES one needs its target attribute on the whole function).
 */
#define DEFINE_WALK(NAME, ATTR, HASH)                                                            \
	ATTR static void NAME(struct dsd_parser *p, struct window *win, bool cache)              \
	{                                                                                      \
		struct dsd_window *pw = &win->pub;                                             \
		size_t n = 0, nh = 0;                                                          \
		while (n < WALK_MAX && p->at) {                                                \
			const char *s = p->at;                                                 \
			const char *nl = find1(p->lo, s, p->end, '\n'), *le = nl ? nl : p->end; \
			p->at = nl && nl + 1 < p->end ? nl + 1 : NULL;                         \
			if (le > s && le[-1] == '\r')                                          \
				le--;                                                          \
			if (le == s)                                                           \
				continue;                                                      \
			struct walk_line *w = &win->l[n];                                      \
			struct dsd_seen_line *r = &pw->line[n++];                              \
			enum metric_type type;                                                 \
			w->s = s;                                                              \
			w->le = le;                                                            \
			if (!split_line(w, p->lo, cache, &type)) {                             \
				r->kind = DSD_LINE_FULL;                                       \
				continue;                                                      \
			}                                                                      \
			const char *suf = w->bar + 1 + w->tn;                                  \
			r->key = HASH(type, s, (size_t)(w->colon - s), suf, (size_t)(le - suf)); \
			r->type = (uint8_t)type;                                               \
			pw->h[nh++] = r->key.a;                                                \
			r->kind = simple_value(w->colon + 1, w->bar, &r->value) == w->bar      \
					  ? DSD_LINE_SIMPLE                                    \
					  : DSD_LINE_CAND;                                     \
			r->explicit_sign = w->colon[1] == '+' || w->colon[1] == '-';           \
		}                                                                              \
		pw->n = n;                                                                     \
		pw->nh = nh;                                                                   \
	}

DEFINE_WALK(walk_plain, , dsd_key_hash_plain)
#ifdef DSD_KEY_HAVE_AES
DEFINE_WALK(walk_aes, __attribute__((target("aes,sse2"))), dsd_key_hash_aes)
/* The same walk where the CPU has AVX2 and BMI2 (x86-64-v3, nearly every
 * x86-64 server since 2013): the compiler may then use VEX three-operand
 * forms, tzcnt and shifts without flags: fewer instructions per line
 * (tests/perf measures both), the same results. */
DEFINE_WALK(walk_aes_v3, __attribute__((target("aes,sse2,avx,avx2,bmi,bmi2,popcnt"))),
	    dsd_key_hash_aes)

static bool walk_v3;

bool dsd_parse_use_v3(bool on)
{
	__builtin_cpu_init();
	walk_v3 = on && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi") &&
		  __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("popcnt");
	return walk_v3;
}

/* Before main(), like keyhash.c's choice of key (read-only afterwards). */
__attribute__((constructor)) static void walk_impl_init(void)
{
	dsd_parse_use_v3(true);
}
#else
bool dsd_parse_use_v3(bool on)
{
	(void)on;
	return false;
}
#endif

static void walk(struct dsd_parser *p, struct window *win, bool cache)
{
#ifdef DSD_KEY_HAVE_AES
	if (dsd_key_aes) {
		if (walk_v3)
			walk_aes_v3(p, win, cache);
		else
			walk_aes(p, win, cache);
		return;
	}
#endif
	walk_plain(p, win, cache);
}

bool dsd_line_metric(struct dsd_parser *p, struct dsd_window *pw, size_t i, struct dsd_metric *q)
{
	struct walk_line *w = &window_of(pw)->l[i];
	const struct dsd_seen_line *r = &pw->line[i];
	const char *colon = w->colon, *bar = w->bar;

	q->type = (enum metric_type)r->type;
	q->name = (struct sv){ w->s, (size_t)(colon - w->s) };
	q->raw_suffix = (struct sv){ bar + 1 + w->tn, (size_t)(w->le - bar - 1 - w->tn) };
	q->key = r->key;
	if (r->kind == DSD_LINE_SIMPLE) {
		p->values[0] = r->value;
		q->values = p->values;
		q->nvalues = 1;
		q->explicit_sign = r->explicit_sign;
		return true;
	}
	if (metric_values(p, colon + 1, (size_t)(bar - colon - 1), q) != ACCEPT)
		return false; /* the full parse reports it */
	w->vals = true; /* kept for the full parse, if the cache declines */
	w->nv = q->nvalues;
	w->sign = q->explicit_sign;
	return true;
}

void dsd_count_cached_run(struct dsd_parser *p, const struct dsd_window *w, size_t i, size_t n)
{
	p->st.lines += n;
	p->st.metric_lines += n;
	for (size_t j = i; j < i + n; j++)
		p->st.samples[w->line[j].type]++;
}

void dsd_count_cached(struct dsd_parser *p, const struct dsd_metric *m)
{
	p->st.lines++;
	p->st.metric_lines++;
	p->st.samples[m->type] += m->nvalues;
}

void dsd_split_begin(struct dsd_parser *p, const struct dsd_datagram *d, size_t n, bool keys)
{
	p->keys = keys;
	p->dg = d;
	p->ndg = n;
	p->next = 0;
	p->at = NULL;
}

/*
 * The next window of lines (n = 0 when every datagram is done). A window
 * holds lines of one datagram; when a datagram has no line left, the walk
 * goes on with the next one, so the window after a datagram's last one is
 * the next datagram's first: the caller splits (and prefetches) it before
 * taking the current window, across datagrams as within a long one.
 */
struct dsd_window *dsd_split_next(struct dsd_parser *p)
{
	struct window *win = &p->win[p->nextwin];
	p->nextwin ^= 1;
	for (;;) {
		if (p->at) {
			walk(p, win, p->cache);
			win->nul = p->nul;
			if (win->pub.n)
				return &win->pub;
		}
		if (p->next == p->ndg) {
			win->pub.n = win->pub.nh = 0;
			return &win->pub;
		}
		const struct dsd_datagram *d = &p->dg[p->next++];
		p->st.datagrams++;
		p->st.bytes += d->len;
		if (d->len == 0)
			continue;
		p->at = p->lo = d->buf;
		p->end = d->buf + d->len;
		p->nul = memchr(d->buf, '\0', d->len) != NULL;
		p->cache = p->keys && !p->nul;
	}
}

void dsd_parse(struct dsd_parser *p, char *buf, size_t len, const struct dsd_sink *sink, void *ctx)
{
	struct dsd_datagram d = { buf, len };
	static const struct dsd_sink none = { NULL, NULL, NULL };
	union dsd_msg m;
	if (!sink)
		sink = &none;
	dsd_split_begin(p, &d, 1, false);
	for (struct dsd_window *w; (w = dsd_split_next(p))->n;) {
		for (size_t i = 0; i < w->n; i++) {
			switch (dsd_parse_line(p, w, i, &m)) {
			case DSD_MSG_METRIC:
				if (sink->metric)
					sink->metric(ctx, &m.metric);
				break;
			case DSD_MSG_EVENT:
				if (sink->event)
					sink->event(ctx, &m.event);
				break;
			case DSD_MSG_CHECK:
				if (sink->service_check)
					sink->service_check(ctx, &m.check);
				break;
			case DSD_MSG_NONE:
				break;
			}
		}
	}
	p->dg = NULL;
}
