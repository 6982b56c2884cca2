/*
 * query.c - numbers with unit suffixes, durations, and the Datadog-style
 * monitor query shorthand compiled into struct alert_rule fields.
 *
 * Called by rules.c (rule files), cli.c and the fuzz harness. Pure: no I/O,
 * no logging, no globals. Owns nothing beyond what it stores into the rule.
 */
#include "alert/alert.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

#define QUERY_MAX_LEN 4096
#define QUERY_MAX_FILTERS 64
#define QUERY_MAX_GROUPS 16

const char *alert_state_name(enum alert_state s)
{
	static const char *const n[] = { "OK", "PENDING", "WARNING", "CRITICAL", "NO_DATA" };
	return (unsigned)s < ALERT_STATE_COUNT ? n[s] : "UNKNOWN";
}

const char *alert_op_name(enum alert_op op)
{
	static const char *const n[] = { ">", ">=", "<", "<=" };
	return (unsigned)op <= ALERT_OP_LE ? n[op] : "?";
}

struct suffix {
	const char *s;
	double mul;
};

static const struct suffix number_suffixes[] = {
	{ "KiB", 1024.0 }, { "MiB", 1048576.0 }, { "GiB", 1073741824.0 },
	{ "k", 1e3 }, { "K", 1e3 }, { "M", 1e6 }, { "G", 1e9 },
	{ "ms", 1.0 }, { "s", 1e3 }, { "m", 60e3 }, { "h", 3600e3 },
	{ "%", 1.0 }, { "", 1.0 },
};

/* Length of a plain decimal number at s ([+-]digits[.digits][e[+-]digits]), 0 if none. */
static size_t number_span(const char *s)
{
	size_t i = 0, digits = 0;
	if (s[i] == '+' || s[i] == '-')
		i++;
	while (isdigit((unsigned char)s[i]))
		i++, digits++;
	if (s[i] == '.') {
		i++;
		while (isdigit((unsigned char)s[i]))
			i++, digits++;
	}
	if (!digits)
		return 0;
	if (s[i] == 'e' || s[i] == 'E') {
		size_t j = i + 1;
		if (s[j] == '+' || s[j] == '-')
			j++;
		if (isdigit((unsigned char)s[j])) {
			while (isdigit((unsigned char)s[j]))
				j++;
			i = j;
		}
	}
	return i;
}

int alert_parse_number(const char *s, double *out)
{
	if (!s)
		return -EINVAL;
	size_t n = number_span(s);
	if (!n || n > 64)
		return -EINVAL;
	char tmp[65];
	memcpy(tmp, s, n);
	tmp[n] = '\0';
	double v = strtod(tmp, NULL);
	for (size_t i = 0; i < sizeof(number_suffixes) / sizeof(number_suffixes[0]); i++) {
		if (strcmp(s + n, number_suffixes[i].s) == 0) {
			v *= number_suffixes[i].mul;
			if (!isfinite(v))
				return -EINVAL;
			*out = v;
			return 0;
		}
	}
	return -EINVAL;
}

int alert_parse_duration(const char *s, int64_t *out)
{
	if (!s || !isdigit((unsigned char)s[0]))
		return -EINVAL;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || v > 10ULL * 365 * 86400)
		return -EINVAL;
	int64_t mul;
	if (*end == '\0' || strcmp(end, "s") == 0)
		mul = 1;
	else if (strcmp(end, "m") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (strcmp(end, "d") == 0)
		mul = 86400;
	else if (strcmp(end, "w") == 0)
		mul = 7 * 86400;
	else
		return -EINVAL;
	if ((int64_t)v > INT64_C(10) * 365 * 86400 / mul)
		return -EINVAL;
	*out = (int64_t)v * mul;
	return 0;
}

/* The rule's filters and group-by keys (the selector a query sets). */
static void selector_free(struct alert_rule *r)
{
	for (size_t i = 0; i < r->nfilters; i++) {
		free(r->filters[i].key);
		free(r->filters[i].value);
	}
	free(r->filters);
	for (size_t i = 0; i < r->ngroup_by; i++)
		free(r->group_by[i]);
	free(r->group_by);
}

void alert_rule_done(struct alert_rule *r)
{
	if (!r)
		return;
	free(r->name);
	free(r->file);
	free(r->metric);
	selector_free(r);
	for (size_t i = 0; i < r->nnotify; i++)
		free(r->notify[i]);
	free(r->notify);
	free(r->notify_lines);
	for (size_t i = 0; i < r->nlabels; i++) {
		free(r->label_keys[i]);
		free(r->label_values[i]);
	}
	free(r->label_keys);
	free(r->label_values);
	free(r->message);
	memset(r, 0, sizeof(*r));
}

/* ---- query parser ---- */

struct qp {
	const char *s;
	size_t i;
	char *err;
	size_t errlen;
	unsigned *col;
	struct alert_rule *r;
	/* parsed pieces, committed to r only on success */
	struct alert_filter filters[QUERY_MAX_FILTERS];
	size_t nfilters;
	char *groups[QUERY_MAX_GROUPS];
	size_t ngroups;
	char *metric;
};

__attribute__((format(printf, 3, 4)))
static int fail(struct qp *p, size_t at, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (p->err && p->errlen)
		vsnprintf(p->err, p->errlen, fmt, ap);
	va_end(ap);
	if (p->col)
		*p->col = (unsigned)at + 1;
	return -EINVAL;
}

static void skip_ws(struct qp *p)
{
	while (p->s[p->i] == ' ' || p->s[p->i] == '\t')
		p->i++;
}

static bool ident_char(char c)
{
	return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-';
}

/* Reads an identifier; returns its length (0 if none). */
static size_t ident(struct qp *p)
{
	size_t st = p->i;
	while (ident_char(p->s[p->i]))
		p->i++;
	return p->i - st;
}

static bool word_is(const char *w, size_t n, const char *lit)
{
	return strlen(lit) == n && memcmp(w, lit, n) == 0;
}

static int lookup(const char *w, size_t n, const char *const *names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (word_is(w, n, names[i]))
			return (int)i;
	return -1;
}

static const char *const time_aggs[] = { "avg", "min", "max", "sum", "last", "count" };
static const char *const space_aggs[] = { "avg", "sum", "min", "max" };
static const char *const transforms[] = { "none", "growth", "deriv", "rate", "pct_change" };

static int transform_lookup(const char *w, size_t n)
{
	int t = lookup(w, n, transforms, 5);
	if (t >= 0)
		return t;
	if (word_is(w, n, "derivative"))
		return ALERT_TF_DERIV;
	if (word_is(w, n, "per_second"))
		return ALERT_TF_RATE;
	return -1;
}

static int parse_time_agg(struct qp *p)
{
	size_t st = p->i;
	size_t n = ident(p);
	int t = lookup(p->s + st, n, time_aggs, 6);
	if (t < 0)
		return fail(p, st, "expected a time aggregation (avg|min|max|sum|last|count)");
	p->r->time_agg = (enum alert_time_agg)t;
	if (p->s[p->i] != '(')
		return fail(p, p->i, "expected '(' after %.*s", (int)n, p->s + st);
	p->i++;
	if (strncmp(p->s + p->i, "last_", 5) != 0)
		return fail(p, p->i, "expected last_<duration>, e.g. last_5m");
	p->i += 5;
	size_t ds = p->i;
	while (isalnum((unsigned char)p->s[p->i]))
		p->i++;
	char tmp[32];
	size_t dn = p->i - ds;
	int64_t w;
	if (dn == 0 || dn >= sizeof(tmp))
		return fail(p, ds, "bad window duration");
	memcpy(tmp, p->s + ds, dn);
	tmp[dn] = '\0';
	if (alert_parse_duration(tmp, &w) < 0 || w <= 0 || w > ALERT_MAX_WINDOW_S)
		return fail(p, ds, "bad window duration '%s' (1s..24h)", tmp);
	p->r->window_s = w;
	if (p->s[p->i] != ')')
		return fail(p, p->i, "expected ')' after the window");
	p->i++;
	if (p->s[p->i] != ':')
		return fail(p, p->i, "expected ':' after %s(last_%s)", time_aggs[t], tmp);
	p->i++;
	return 0;
}

static char *dup_range(const char *s, size_t n)
{
	char *d = malloc(n + 1);
	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

static int parse_filter_item(struct qp *p, size_t st, size_t en)
{
	while (st < en && isspace((unsigned char)p->s[st]))
		st++;
	while (en > st && isspace((unsigned char)p->s[en - 1]))
		en--;
	if (en == st)
		return fail(p, st, "empty filter");
	if (en - st == 1 && p->s[st] == '*')
		return 0;
	if (p->nfilters == QUERY_MAX_FILTERS)
		return fail(p, st, "too many filters (max %d)", QUERY_MAX_FILTERS);
	struct alert_filter *f = &p->filters[p->nfilters];
	memset(f, 0, sizeof(*f));
	if (p->s[st] == '!') {
		f->negate = true;
		st++;
	}
	const char *colon = memchr(p->s + st, ':', en - st);
	size_t kend = colon ? (size_t)(colon - p->s) : en;
	if (kend == st)
		return fail(p, st, "filter without a tag key");
	for (size_t k = st; k < kend; k++)
		if (p->s[k] == '*' || p->s[k] == '!' || isspace((unsigned char)p->s[k]))
			return fail(p, k, "bad character '%c' in filter key", p->s[k]);
	f->key = dup_range(p->s + st, kend - st);
	if (!f->key)
		return fail(p, st, "out of memory");
	p->nfilters++;
	if (!colon)
		return 0;
	size_t vs = kend + 1;
	if (vs < en && p->s[vs] == '!') {
		if (f->negate)
			return fail(p, vs, "double negation");
		f->negate = true;
		vs++;
	}
	f->value = dup_range(p->s + vs, en - vs);
	if (!f->value)
		return fail(p, vs, "out of memory");
	f->glob = memchr(f->value, '*', en - vs) != NULL;
	return 0;
}

static int parse_filters(struct qp *p)
{
	size_t open = p->i;
	p->i++; /* '{' */
	if (p->s[p->i] == '}') {
		p->i++; /* {} = every series, like {*} */
		return 0;
	}
	size_t st = p->i;
	for (;;) {
		char c = p->s[p->i];
		if (c == '\0')
			return fail(p, open, "unterminated '{'");
		if (c == ',' || c == '}') {
			int rc = parse_filter_item(p, st, p->i);
			if (rc < 0)
				return rc;
			p->i++;
			if (c == '}')
				return 0;
			st = p->i;
			continue;
		}
		if (c == '{' || c == '(' || c == ')')
			return fail(p, p->i, "unexpected '%c' in filter", c);
		p->i++;
	}
}

static int parse_group(struct qp *p)
{
	skip_ws(p);
	if (p->s[p->i] != '{')
		return fail(p, p->i, "expected '{' after 'by'");
	p->i++;
	for (;;) {
		skip_ws(p);
		size_t st = p->i;
		size_t n = ident(p);
		if (!n)
			return fail(p, st, "expected a tag key in 'by {...}'");
		if (p->ngroups == QUERY_MAX_GROUPS)
			return fail(p, st, "too many group keys (max %d)", QUERY_MAX_GROUPS);
		for (size_t g = 0; g < p->ngroups; g++)
			if (word_is(p->s + st, n, p->groups[g]))
				return fail(p, st, "duplicate group key");
		p->groups[p->ngroups] = dup_range(p->s + st, n);
		if (!p->groups[p->ngroups])
			return fail(p, st, "out of memory");
		p->ngroups++;
		skip_ws(p);
		if (p->s[p->i] == ',') {
			p->i++;
			continue;
		}
		if (p->s[p->i] == '}') {
			p->i++;
			return 0;
		}
		return fail(p, p->i, "expected ',' or '}' in 'by {...}'");
	}
}

/* [transform:][space_agg:]metric{filters} */
static int parse_inner(struct qp *p, bool have_tf)
{
	bool have_sa = false;
	for (;;) {
		skip_ws(p);
		size_t st = p->i;
		size_t n = ident(p);
		if (!n)
			return fail(p, st, "expected a metric name");
		if (p->s[p->i] != ':') {
			p->metric = dup_range(p->s + st, n);
			if (!p->metric)
				return fail(p, st, "out of memory");
			break;
		}
		int sa = lookup(p->s + st, n, space_aggs, 4);
		int tf = transform_lookup(p->s + st, n);
		if (sa >= 0 && !have_sa) {
			p->r->space_agg = (enum alert_space_agg)sa;
			have_sa = true;
		} else if (tf >= 0 && !have_tf && !have_sa) {
			p->r->transform = (enum alert_transform)tf;
			have_tf = true;
		} else {
			return fail(p, st, "'%.*s' is not a %s", (int)n, p->s + st,
				    have_sa ? "metric name (a ':' follows it)" :
					      "space aggregation (avg|sum|min|max) or transform");
		}
		p->i++;
	}
	if (p->s[p->i] == '{')
		return parse_filters(p);
	return 0;
}

static int parse_expr(struct qp *p)
{
	skip_ws(p);
	size_t st = p->i;
	size_t n = ident(p);
	if (n && p->s[p->i] == '(') {
		int tf = transform_lookup(p->s + st, n);
		if (tf < 0)
			return fail(p, st, "unknown function '%.*s' (growth|deriv|rate|pct_change)",
				    (int)n, p->s + st);
		p->r->transform = (enum alert_transform)tf;
		p->i++;
		int rc = parse_inner(p, true);
		if (rc < 0)
			return rc;
		skip_ws(p);
		if (p->s[p->i] != ')')
			return fail(p, p->i, "expected ')'");
		p->i++;
		return 0;
	}
	p->i = st;
	return parse_inner(p, false);
}

static int parse_threshold(struct qp *p)
{
	skip_ws(p);
	size_t st = p->i;
	const char *s = p->s + p->i;
	if (s[0] == '>' || s[0] == '<') {
		bool eq = s[1] == '=';
		p->r->op = s[0] == '>' ? (eq ? ALERT_OP_GE : ALERT_OP_GT) : (eq ? ALERT_OP_LE : ALERT_OP_LT);
		p->i += eq ? 2 : 1;
	} else {
		return fail(p, st, "expected a comparator (> >= < <=)");
	}
	skip_ws(p);
	size_t ns = p->i;
	while (p->s[p->i] && !isspace((unsigned char)p->s[p->i]))
		p->i++;
	char tmp[80];
	size_t n = p->i - ns;
	if (n == 0)
		return fail(p, ns, "expected a threshold after the comparator");
	if (n >= sizeof(tmp))
		return fail(p, ns, "threshold too long");
	memcpy(tmp, p->s + ns, n);
	tmp[n] = '\0';
	double v;
	if (alert_parse_number(tmp, &v) < 0)
		return fail(p, ns, "bad threshold '%s' (number with optional k M G KiB MiB GiB ms s m h %%)", tmp);
	p->r->critical = v;
	p->r->has_critical = true;
	return 0;
}

static void qp_cleanup(struct qp *p)
{
	for (size_t i = 0; i < p->nfilters; i++) {
		free(p->filters[i].key);
		free(p->filters[i].value);
	}
	for (size_t i = 0; i < p->ngroups; i++)
		free(p->groups[i]);
	free(p->metric);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int commit(struct qp *p)
{
	struct alert_rule *r = p->r;
	struct alert_filter *f = p->nfilters ? calloc(p->nfilters, sizeof(*f)) : NULL;
	char **g = p->ngroups ? calloc(p->ngroups, sizeof(*g)) : NULL;
	if ((p->nfilters && !f) || (p->ngroups && !g)) {
		free(f);
		free(g);
		return fail(p, 0, "out of memory");
	}
	if (p->nfilters)
		memcpy(f, p->filters, p->nfilters * sizeof(*f));
	if (p->ngroups) {
		memcpy(g, p->groups, p->ngroups * sizeof(*g));
		qsort(g, p->ngroups, sizeof(*g), cmp_str);
	}
	selector_free(r);
	free(r->metric);
	r->filters = f;
	r->nfilters = p->nfilters;
	r->group_by = g;
	r->ngroup_by = p->ngroups;
	r->metric = p->metric;
	r->metric_hash = hash64(p->metric, strlen(p->metric));
	p->nfilters = p->ngroups = 0;
	p->metric = NULL;
	return 0;
}

int alert_query_parse(const char *q, struct alert_rule *r, char *err, size_t errlen, unsigned *col)
{
	struct qp p = { .s = q, .err = err, .errlen = errlen, .col = col, .r = r };
	int rc;
	if (!q)
		return fail(&p, 0, "empty query");
	if (strlen(q) > QUERY_MAX_LEN)
		return fail(&p, QUERY_MAX_LEN, "query longer than %d bytes", QUERY_MAX_LEN);
	r->space_agg = ALERT_SPACE_AVG;
	r->transform = ALERT_TF_NONE;
	skip_ws(&p);
	if ((rc = parse_time_agg(&p)) < 0 || (rc = parse_expr(&p)) < 0)
		goto out;
	skip_ws(&p);
	if (strncmp(q + p.i, "by", 2) == 0 && !ident_char(q[p.i + 2])) {
		p.i += 2;
		if ((rc = parse_group(&p)) < 0)
			goto out;
	}
	if ((rc = parse_threshold(&p)) < 0)
		goto out;
	skip_ws(&p);
	if (q[p.i] != '\0') {
		rc = fail(&p, p.i, "unexpected text after the threshold");
		goto out;
	}
	rc = commit(&p);
out:
	qp_cleanup(&p);
	return rc;
}
