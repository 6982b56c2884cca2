/*
 * test_parse.c - unit tests for the DogStatsD parser (agent/parse).
 *
 * Every callback is rendered into one canonical text line (see render_*), so a
 * table row states the exact outputs (name, type, values, rate, tags,
 * timestamp, container id, event and check fields) and the exact counters.
 * Each row is also re-run with a valid metric appended on the next line, which
 * must still be parsed.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <ctype.h>

#include <locale.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/num.h"
#include "parse/keyhash.h"
#include "parse/parse.h"
#include "param_table.h"

/* ---- recorder ----------------------------------------------------------- */

struct rec {
	FILE *f;
	char *text;
	size_t text_len;
	const char *lo, *hi; /* the datagram: every view must lie inside */
	size_t nmetrics, nevents, nchecks;
};

static void check_view(const struct rec *r, struct sv v)
{
	if (v.n == 0)
		return;
	cr_assert(v.p >= r->lo && v.p + v.n <= r->hi, "view outside the datagram");
}

static void put_sv(FILE *f, const char *pre, struct sv v)
{
	fputs(pre, f);
	for (size_t i = 0; i < v.n; i++) {
		if (v.p[i] == '\n')
			fputs("<NL>", f);
		else
			fputc(v.p[i], f);
	}
}

static void put_num(FILE *f, double v)
{
	char b[64];
	snprintf(b, sizeof(b), "%.15g", v);
	if (strtod(b, NULL) != v || signbit(strtod(b, NULL)) != signbit(v))
		snprintf(b, sizeof(b), "%.17g", v);
	fputs(b, f);
}

static void put_tags(struct rec *r, const struct sv *tags, size_t n)
{
	if (n == 0)
		return;
	fputs(" #", r->f);
	for (size_t i = 0; i < n; i++) {
		check_view(r, tags[i]);
		cr_assert(tags[i].n > 0, "empty tag handed out");
		put_sv(r->f, i ? "," : "", tags[i]);
	}
}

static void on_metric(void *ctx, const struct dsd_metric *m)
{
	struct rec *r = ctx;
	r->nmetrics++;
	check_view(r, m->name);
	check_view(r, m->set_member);
	put_sv(r->f, "M ", m->name);
	fprintf(r->f, " %s", metric_type_name(m->type));
	cr_assert(m->nvalues >= 1);
	if (m->type == METRIC_SET) {
		cr_assert_eq(m->nvalues, 1);
		put_sv(r->f, " member=", m->set_member);
	} else {
		fputs(" v=", r->f);
		for (size_t i = 0; i < m->nvalues; i++) {
			if (i)
				fputc(',', r->f);
			put_num(r->f, m->values[i]);
		}
	}
	cr_assert(m->sample_rate > 0 && m->sample_rate <= 1);
	if (m->sample_rate != 1) {
		fputs(" @", r->f);
		put_num(r->f, m->sample_rate);
	}
	put_tags(r, m->tags, m->ntags);
	if (m->timestamp)
		fprintf(r->f, " T%lld", (long long)m->timestamp);
	if (m->container_id.p)
		put_sv(r->f, " c:", m->container_id);
	if (m->external_data.p)
		put_sv(r->f, " e:", m->external_data);
	if (m->cardinality.p)
		put_sv(r->f, " card:", m->cardinality);
	if (m->explicit_sign)
		fputs(" sign", r->f);
	fputc('\n', r->f);
}

static void on_event(void *ctx, const struct dsd_event *e)
{
	struct rec *r = ctx;
	r->nevents++;
	check_view(r, e->title);
	check_view(r, e->text);
	put_sv(r->f, "E title=", e->title);
	put_sv(r->f, " text=", e->text);
	if (e->timestamp)
		fprintf(r->f, " d:%lld", (long long)e->timestamp);
	if (e->has_hostname)
		put_sv(r->f, " h:", e->hostname);
	if (e->aggregation_key.p)
		put_sv(r->f, " k:", e->aggregation_key);
	if (e->source_type.p)
		put_sv(r->f, " s:", e->source_type);
	fprintf(r->f, " p:%s t:%s", event_priority_name(e->priority),
		event_alert_type_name(e->alert_type));
	put_tags(r, e->tags, e->ntags);
	if (e->container_id.p)
		put_sv(r->f, " c:", e->container_id);
	fputc('\n', r->f);
}

static void on_check(void *ctx, const struct dsd_service_check *sc)
{
	struct rec *r = ctx;
	r->nchecks++;
	check_view(r, sc->name);
	check_view(r, sc->message);
	put_sv(r->f, "S ", sc->name);
	fprintf(r->f, " %d", (int)sc->status);
	if (sc->timestamp)
		fprintf(r->f, " d:%lld", (long long)sc->timestamp);
	if (sc->has_hostname)
		put_sv(r->f, " h:", sc->hostname);
	put_tags(r, sc->tags, sc->ntags);
	if (sc->message.p)
		put_sv(r->f, " m:", sc->message);
	if (sc->container_id.p)
		put_sv(r->f, " c:", sc->container_id);
	fputc('\n', r->f);
}

static const struct dsd_sink sink = { on_metric, on_event, on_check };

/* Parses a copy of in[0..len) (exactly sized, so ASan sees over-reads) and
 * returns the rendered callbacks; *st receives the counters. Caller frees. */
static char *run_lim(const char *in, size_t len, const struct dsd_limits *lim, struct dsd_stats *st)
{
	struct dsd_parser *p = dsd_parser_new(lim);
	cr_assert_not_null(p);
	char *copy = malloc(len ? len : 1);
	cr_assert_not_null(copy);
	memcpy(copy, in, len);
	struct rec r = { .lo = copy, .hi = copy + len };
	r.f = open_memstream(&r.text, &r.text_len);
	cr_assert_not_null(r.f);
	dsd_parse(p, copy, len, &sink, &r);
	fclose(r.f);
	*st = *dsd_parser_stats(p);
	cr_assert_eq(st->metric_lines, r.nmetrics);
	cr_assert_eq(st->events, r.nevents);
	cr_assert_eq(st->service_checks, r.nchecks);
	dsd_parser_free(p);
	free(copy);
	return r.text;
}

static char *run(const char *in, size_t len, struct dsd_stats *st)
{
	return run_lim(in, len, NULL, st);
}

static uint64_t sum_errors(const struct dsd_stats *st)
{
	uint64_t n = 0;
	for (int i = 0; i < DSD_ERR_COUNT; i++)
		n += st->errors[i];
	return n;
}

/* lines == accepted + rejected, and the per-kind totals equal the reasons. */
static void assert_invariants(const struct dsd_stats *st)
{
	uint64_t acc = st->metric_lines + st->events + st->service_checks;
	uint64_t rej = st->metric_errors + st->event_errors + st->check_errors;
	cr_assert_eq(st->lines, acc + rej, "lines %llu != %llu + %llu", (unsigned long long)st->lines,
		     (unsigned long long)acc, (unsigned long long)rej);
	cr_assert_eq(sum_errors(st), rej);
	uint64_t samples = 0;
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		samples += st->samples[t];
	cr_assert_geq(samples, st->metric_lines);
}

/* ---- the table (tests/data/parse/cases.txt) ----------------------------- */

/* The cases in the data file: a cut or empty file fails the count. */
#define PARSE_CASES 266

struct pcase {
	char in[1024];
	size_t len;
	char out[1024]; /* rendered callbacks */
	int err;	/* -1: accepted; else the dsd_error reason */
	char kind;	/* rejected: 'm' metric, 'e' event, 's' service check */
	int oor;	/* expected rate_out_of_range */
	int line;	/* in the data file */
};

/* One C escape after the backslash at *p into *out; false if it is not one
 * the data file may use (\\ \" \r \n \t \0 \xNN). */
static bool unescape_one(const char **p, char *out)
{
	static const char from[] = "\\\"rnt0", to[] = "\\\"\r\n\t\0";
	const char *s = *p;
	if (*s == 'x') {
		char hex[3] = { s[1], 0, 0 };
		if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]))
			return false;
		hex[1] = s[2];
		*out = (char)strtol(hex, NULL, 16);
		*p = s + 3;
		return true;
	}
	const char *f = *s ? strchr(from, *s) : NULL;
	if (!f)
		return false;
	*out = to[f - from];
	*p = s + 1;
	return true;
}

/* The quoted string at *p (after blanks) into out (cap bytes, its length in
 * *len); *p moves past the closing quote. False if malformed or too long. */
static bool scan_str(const char **p, char *out, size_t cap, size_t *len)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = 0;
	if (*s++ != '"')
		return false;
	while (*s != '"') {
		if (!*s || *s == '\n' || n + 1 >= cap)
			return false;
		if (*s != '\\') {
			out[n++] = *s++;
			continue;
		}
		s++;
		if (!unescape_one(&s, &out[n++]))
			return false;
	}
	out[n] = '\0';
	*len = n;
	*p = s + 1;
	return true;
}

/* The blank-delimited word at *p into out (cap bytes); false if none. */
static bool scan_word(const char **p, char *out, size_t cap)
{
	const char *s = *p + strspn(*p, " \t");
	size_t n = strcspn(s, " \t\r\n");
	if (n == 0 || n >= cap)
		return false;
	memcpy(out, s, n);
	out[n] = '\0';
	*p = s + n;
	return true;
}

static int error_by_name(const char *name)
{
	for (int i = 0; i < DSD_ERR_COUNT; i++)
		if (strcmp(dsd_error_name(i), name) == 0)
			return i;
	return -1;
}

/* One case line ("ok", "oor" or "bad", see the data file) into c. */
static bool parse_case(const char *s, struct pcase *c)
{
	char verb[8], reason[32], kind[4];
	size_t out_len;
	if (!scan_word(&s, verb, sizeof(verb)) || !scan_str(&s, c->in, sizeof(c->in), &c->len))
		return false;
	c->oor = strcmp(verb, "oor") == 0;
	if (c->oor || strcmp(verb, "ok") == 0) {
		if (!scan_str(&s, c->out, sizeof(c->out) - 1, &out_len) || out_len == 0)
			return false;
		strcat(c->out, "\n");
		c->err = -1;
		c->kind = 0;
	} else if (strcmp(verb, "bad") == 0) {
		if (!scan_word(&s, reason, sizeof(reason)) || !scan_word(&s, kind, sizeof(kind)))
			return false;
		c->out[0] = '\0';
		c->err = error_by_name(reason);
		c->kind = kind[0];
		if (c->err < 0 || kind[1] || !strchr("mes", c->kind))
			return false;
	} else {
		return false;
	}
	return s[strspn(s, " \t\r\n")] == '\0';
}

/* The cases of $DDMA_TEST_DATA/parse/cases.txt; any line that is neither a
 * comment, blank nor a case fails the test. Caller frees *out. */
static size_t load_cases(struct pcase **out)
{
	const char *dir = getenv("DDMA_TEST_DATA");
	cr_assert_not_null(dir, "DDMA_TEST_DATA is not set (run through meson test)");
	char path[4096];
	snprintf(path, sizeof(path), "%s/parse/cases.txt", dir);
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f, "%s: cannot open", path);
	struct pcase *cases = NULL;
	size_t n = 0, cap = 0, lcap = 0;
	char *l = NULL;
	for (int line = 1; getline(&l, &lcap, f) >= 0; line++) {
		if (l[0] == '#' || l[strspn(l, " \t\r\n")] == '\0')
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			cases = realloc(cases, cap * sizeof(*cases));
			cr_assert_not_null(cases);
		}
		cr_assert(parse_case(l, &cases[n]), "%s:%d: not a case: %s", path, line, l);
		cases[n++].line = line;
	}
	cr_assert_not(ferror(f), "%s: read error", path);
	free(l);
	fclose(f);
	*out = cases;
	return n;
}

static void check_case(const struct pcase *c, const char *in, size_t len, const char *want_tail)
{
	struct dsd_stats st;
	char *out = run(in, len, &st);
	char want[4096];
	snprintf(want, sizeof(want), "%s%s", c->out, want_tail);
	cr_assert_str_eq(out, want, "cases.txt:%d \"%s\": got \"%s\" want \"%s\"", c->line, c->in,
			 out, want);
	free(out);
	uint64_t extra = *want_tail ? 1 : 0;
	cr_assert_eq(st.datagrams, 1);
	cr_assert_eq(st.bytes, len);
	cr_assert_eq(st.lines, 1 + extra, "cases.txt:%d \"%s\"", c->line, c->in);
	cr_assert_eq(st.rate_out_of_range, (uint64_t)c->oor, "cases.txt:%d \"%s\"", c->line, c->in);
	assert_invariants(&st);
	if (c->err < 0) {
		cr_assert_eq(sum_errors(&st), 0, "cases.txt:%d \"%s\" rejected", c->line, c->in);
		uint64_t acc = st.metric_lines + st.events + st.service_checks;
		cr_assert_eq(acc, 1 + extra);
		cr_assert_eq(st.metric_lines, (c->out[0] == 'M') + extra);
		cr_assert_eq(st.events, c->out[0] == 'E');
		cr_assert_eq(st.service_checks, c->out[0] == 'S');
		return;
	}
	cr_assert_eq(st.errors[c->err], 1, "cases.txt:%d \"%s\": expected %s", c->line, c->in,
		     dsd_error_name(c->err));
	cr_assert_eq(sum_errors(&st), 1, "cases.txt:%d \"%s\"", c->line, c->in);
	cr_assert_eq(st.metric_errors, c->kind == 'm', "cases.txt:%d \"%s\"", c->line, c->in);
	cr_assert_eq(st.event_errors, c->kind == 'e', "cases.txt:%d \"%s\"", c->line, c->in);
	cr_assert_eq(st.check_errors, c->kind == 's', "cases.txt:%d \"%s\"", c->line, c->in);
	cr_assert_eq(st.metric_lines, extra);
	cr_assert_eq(st.events + st.service_checks, 0);
}

/* Each case alone, then with a valid line after it. */
static void run_case(const struct pcase *c)
{
	check_case(c, c->in, c->len, "");

	/* the next line of the same datagram is still parsed */
	char buf[4096];
	cr_assert_lt(c->len + 16, sizeof(buf));
	memcpy(buf, c->in, c->len);
	memcpy(buf + c->len, "\nnext:7|c", 9);
	check_case(c, buf, c->len + 9, "M next count v=7\n");
}

Test(parse, table)
{
	struct pcase *cases = NULL;
	size_t n = load_cases(&cases);
	cr_assert_eq(n, PARSE_CASES, "cases.txt holds %zu cases, %d expected", n, PARSE_CASES);
	for (size_t i = 0; i < n; i++)
		run_case(&cases[i]);
	free(cases);
}

/* ---- datagram splitting ------------------------------------------------- */

Test(parse, multi_line_datagram)
{
	const char in[] = "a:1|c\n\n\r\nb:2:3|h|#x\r\n_sc|up|0\n_e{1,1}:t|x\nbad\n:1|c\n_e{0,1}:|x\n_sc|n|9\n";
	struct dsd_stats st;
	char *out = run(in, sizeof(in) - 1, &st);
	cr_assert_str_eq(out, "M a count v=1\nM b histogram v=2,3 #x\nS up 0\nE title=t text=x p:normal t:info\n");
	free(out);
	cr_assert_eq(st.datagrams, 1);
	cr_assert_eq(st.bytes, sizeof(in) - 1);
	cr_assert_eq(st.lines, 8);
	cr_assert_eq(st.metric_lines, 2);
	cr_assert_eq(st.samples[METRIC_COUNT], 1);
	cr_assert_eq(st.samples[METRIC_HISTOGRAM], 2);
	cr_assert_eq(st.events, 1);
	cr_assert_eq(st.service_checks, 1);
	cr_assert_eq(st.errors[DSD_ERR_NO_VALUE], 1);
	cr_assert_eq(st.errors[DSD_ERR_EMPTY_NAME], 1);
	cr_assert_eq(st.errors[DSD_ERR_EVENT_EMPTY_TITLE], 1);
	cr_assert_eq(st.errors[DSD_ERR_CHECK_STATUS], 1);
	cr_assert_eq(st.metric_errors, 2);
	cr_assert_eq(st.event_errors, 1);
	cr_assert_eq(st.check_errors, 1);
	assert_invariants(&st);
}

Test(parse, empty_and_blank_datagrams)
{
	static const char *const ins[] = { "", "\n", "\r\n", "\n\n\n", "\r", "\r\n\r\n" };
	for (size_t i = 0; i < sizeof(ins) / sizeof(ins[0]); i++) {
		struct dsd_stats st;
		char *out = run(ins[i], strlen(ins[i]), &st);
		cr_assert_str_eq(out, "");
		free(out);
		cr_assert_eq(st.datagrams, 1);
		cr_assert_eq(st.lines, 0);
		assert_invariants(&st);
	}
}

Test(parse, counters_accumulate_across_datagrams)
{
	struct dsd_parser *p = dsd_parser_new(NULL);
	char a[] = "a:1|c|@0.5\nb:1:2:3|d", b[] = "s:x|s\nbad|c\nc:2|c|@5";
	dsd_parse(p, a, sizeof(a) - 1, &(struct dsd_sink){ 0 }, NULL);
	dsd_parse(p, b, sizeof(b) - 1, NULL, NULL);
	const struct dsd_stats *st = dsd_parser_stats(p);
	cr_assert_eq(st->datagrams, 2);
	cr_assert_eq(st->bytes, sizeof(a) + sizeof(b) - 2);
	cr_assert_eq(st->lines, 5);
	cr_assert_eq(st->metric_lines, 4);
	cr_assert_eq(st->samples[METRIC_COUNT], 2);
	cr_assert_eq(st->samples[METRIC_DISTRIBUTION], 3);
	cr_assert_eq(st->samples[METRIC_SET], 1);
	cr_assert_eq(st->samples[METRIC_GAUGE], 0);
	cr_assert_eq(st->rate_out_of_range, 1);
	cr_assert_eq(st->metric_errors, 1);
	cr_assert_eq(st->errors[DSD_ERR_NO_VALUE], 1);
	assert_invariants(st);
	dsd_parser_free(p);
	dsd_parser_free(NULL);
}

Test(parse, event_text_unescaped_in_place)
{
	char buf[] = "_e{2,7}:hi|a\\nb\\nc|#t";
	struct rec r = { .lo = buf, .hi = buf + sizeof(buf) - 1 };
	struct dsd_parser *p = dsd_parser_new(NULL);
	r.f = open_memstream(&r.text, &r.text_len);
	dsd_parse(p, buf, sizeof(buf) - 1, &sink, &r);
	fclose(r.f);
	cr_assert_str_eq(r.text, "E title=hi text=a<NL>b<NL>c p:normal t:info #t\n");
	/* the text view was compacted inside the datagram; the tags were untouched */
	cr_assert_eq(memcmp(buf + 11, "a\nb\nc", 5), 0);
	cr_assert_eq(memcmp(buf + 19, "#t", 2), 0);
	free(r.text);
	dsd_parser_free(p);
}

/* ---- limits ------------------------------------------------------------- */

static struct dsd_limits small = { 8, 3, 5, 4 };

struct lcase {
	const char *in;
	const char *out;
	int err;
	char kind;
};

static struct lcase limit_cases[] = {
	{ "12345678:1|c", "M 12345678 count v=1\n", -1, 0 },
	{ "123456789:1|c", "", DSD_ERR_NAME_TOO_LONG, 'm' },
	{ "_sc|12345678|0", "S 12345678 0\n", -1, 0 },
	{ "_sc|123456789|0", "", DSD_ERR_NAME_TOO_LONG, 's' },
	{ "a:1|c|#a,b,c", "M a count v=1 #a,b,c\n", -1, 0 },
	{ "a:1|c|#a,,b,,c,,", "M a count v=1 #a,b,c\n", -1, 0 },
	{ "a:1|c|#a,b,c,d", "", DSD_ERR_TOO_MANY_TAGS, 'm' },
	{ "a:1|c|#a,b,c|#d", "M a count v=1 #d\n", -1, 0 },
	{ "_e{1,1}:t|x|#a,b,c,d", "", DSD_ERR_TOO_MANY_TAGS, 'e' },
	{ "_sc|n|0|#a,b,c,d", "", DSD_ERR_TOO_MANY_TAGS, 's' },
	{ "a:1|c|#12345", "M a count v=1 #12345\n", -1, 0 },
	{ "a:1|c|#123456", "", DSD_ERR_TAG_TOO_LONG, 'm' },
	{ "_e{1,1}:t|x|#123456", "", DSD_ERR_TAG_TOO_LONG, 'e' },
	{ "_sc|n|0|#123456", "", DSD_ERR_TAG_TOO_LONG, 's' },
	{ "a:1:2:3:4|h", "M a histogram v=1,2,3,4\n", -1, 0 },
	{ "a:1:2::3:4:|h", "M a histogram v=1,2,3,4\n", -1, 0 },
	{ "a:1:2:3:4:5|h", "", DSD_ERR_TOO_MANY_VALUES, 'm' },
	{ "a:1:2:3:4:5:6:7|s", "M a set member=1:2:3:4:5:6:7\n", -1, 0 },
};

PARAM_TABLE(parse, limits, limit_cases)

ParameterizedTest(size_t *idx, parse, limits)
{
	const struct lcase *c = &limit_cases[*idx];
	struct dsd_stats st;
	char *out = run_lim(c->in, strlen(c->in), &small, &st);
	cr_assert_str_eq(out, c->out, "input \"%s\"", c->in);
	free(out);
	cr_assert_eq(st.lines, 1);
	assert_invariants(&st);
	if (c->err < 0) {
		cr_assert_eq(sum_errors(&st), 0);
		return;
	}
	cr_assert_eq(st.errors[c->err], 1, "input \"%s\"", c->in);
	cr_assert_eq(st.metric_errors, c->kind == 'm');
	cr_assert_eq(st.event_errors, c->kind == 'e');
	cr_assert_eq(st.check_errors, c->kind == 's');
}

Test(parse, zero_limits_reject_everything_capped)
{
	struct dsd_limits z = { 0, 0, 0, 0 };
	struct dsd_stats st;
	char *out = run_lim("a:1|c\nb|c", 9, &z, &st);
	cr_assert_str_eq(out, "");
	free(out);
	cr_assert_eq(st.errors[DSD_ERR_NAME_TOO_LONG], 1);
	cr_assert_eq(st.errors[DSD_ERR_NO_VALUE], 1);
	assert_invariants(&st);
}

/* ---- hostile datagrams -------------------------------------------------- */

static char *filled(size_t n, char c)
{
	char *b = malloc(n);
	cr_assert_not_null(b);
	memset(b, c, n);
	return b;
}

/* Runs a hostile datagram (exactly sized heap copy) and checks one reason. */
static void hostile(const char *in, size_t len, int err, const char *want)
{
	struct dsd_stats st;
	char *out = run(in, len, &st);
	cr_assert_str_eq(out, want);
	free(out);
	assert_invariants(&st);
	if (err >= 0)
		cr_assert_eq(st.errors[err], 1, "expected %s", dsd_error_name(err));
	else
		cr_assert_eq(sum_errors(&st), 0);
}

Test(parse, hostile_64k_name)
{
	size_t n = 65536;
	char *b = filled(n + 4, 'a');
	memcpy(b + n, ":1|c", 4);
	hostile(b, n + 4, DSD_ERR_NAME_TOO_LONG, "");
	/* same, as a service check */
	memcpy(b, "_sc|", 4);
	memcpy(b + n, "|0|c", 4);
	hostile(b, n + 4, DSD_ERR_NAME_TOO_LONG, "");
	free(b);
}

Test(parse, hostile_10000_tags)
{
	size_t n = 7 + 10000 * 4;
	char *b = malloc(n);
	memcpy(b, "a:1|c|#", 7);
	for (size_t i = 0; i < 10000; i++)
		memcpy(b + 7 + i * 4, i == 9999 ? "t99" : "t99,", 4);
	hostile(b, n - 1, DSD_ERR_TOO_MANY_TAGS, "");
	free(b);
}

Test(parse, hostile_separators)
{
	size_t n = 100 * 1024;
	char *b = filled(n, '|');
	hostile(b, n, DSD_ERR_NO_VALUE, "");
	memset(b, ':', n);
	hostile(b, n, DSD_ERR_EMPTY_NAME, "");
	memset(b, ',', n);
	hostile(b, n, DSD_ERR_NO_VALUE, "");
	memcpy(b, "a:1|c|#", 7);
	hostile(b, n, -1, "M a count v=1\n");
	memset(b, '|', n);
	memcpy(b, "a:1|c", 5);
	hostile(b, n, -1, "M a count v=1\n");
	memcpy(b, "a:1||", 5);
	hostile(b, n, DSD_ERR_NO_TYPE, "");
	memset(b, ':', n);
	memcpy(b, "a:", 2);
	memcpy(b + n - 2, "|h", 2);
	hostile(b, n, DSD_ERR_NO_VALUE, "");
	memset(b, '\n', n);
	hostile(b, n, -1, "");
	free(b);
}

Test(parse, hostile_many_values_and_events)
{
	size_t n = 2 + 2000 * 2 + 2;
	char *b = malloc(n);
	memcpy(b, "a:", 2);
	for (size_t i = 0; i < 2000; i++)
		memcpy(b + 2 + i * 2, "1:", 2);
	memcpy(b + n - 2, "|h", 2);
	hostile(b, n, DSD_ERR_TOO_MANY_VALUES, "");
	free(b);

	size_t m = 100 * 1024;
	b = filled(m, 'x');
	memcpy(b, "_e{10,10}:", 10);
	hostile(b, m, DSD_ERR_EVENT_LENGTH, "");
	memcpy(b, "_e{200000,1}:", 13);
	hostile(b, m, DSD_ERR_EVENT_LENGTH, "");
	memset(b, '|', m);
	memcpy(b, "_e{0,99}:a", 10);
	hostile(b, m, DSD_ERR_EVENT_EMPTY_TITLE, "");
	memcpy(b, "_e{1,1}:a|", 10);
	hostile(b, m, -1, "E title=a text=| p:normal t:info\n");
	free(b);
}

Test(parse, hostile_numbers)
{
	size_t n = 50000;
	char *b = filled(n, '9');
	memcpy(b, "a:", 2);
	memcpy(b + n - 2, "|g", 2);
	hostile(b, n, DSD_ERR_NAN_INF, "");
	memset(b + 2, '0', n - 4);
	b[3] = '.';
	b[n - 3] = '1';
	hostile(b, n, -1, "M a gauge v=0\n");
	memset(b + 2, '0', n - 4);
	b[n - 3] = '7';
	hostile(b, n, -1, "M a gauge v=7\n");
	b[2] = '-';
	hostile(b, n, -1, "M a gauge v=-7 sign\n");
	free(b);
	hostile("a:1e400|g", 9, DSD_ERR_NAN_INF, "");
	hostile("a:-1e400|g", 10, DSD_ERR_NAN_INF, "");
	hostile("a:1e-99999999999999999999|g", 27, -1, "M a gauge v=0\n");
	hostile("a:1e99999999999999999999|g", 26, DSD_ERR_NAN_INF, "");
	hostile("a:-1.5|c", 8, -1, "M a count v=-1.5 sign\n");
}

Test(parse, hostile_random_bytes_keep_invariants)
{
	struct dsd_parser *p = dsd_parser_new(&small);
	uint64_t x = 0x9E3779B97F4A7C15u;
	static const char alphabet[] = "ab:|#,@T1e.-+\n\r_{}sc0\x80\xc3\xa9\0dhgms";
	char buf[256];
	for (int iter = 0; iter < 20000; iter++) {
		size_t n = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t len = x % sizeof(buf);
		for (; n < len; n++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[n] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		dsd_parse(p, buf, len, NULL, NULL);
	}
	assert_invariants(dsd_parser_stats(p));
	cr_assert_eq(dsd_parser_stats(p)->datagrams, 20000);
	dsd_parser_free(p);
}

/* ---- numbers and UTF-8 -------------------------------------------------- */

/* parse_double must agree bit for bit with glibc's strtod on its grammar. */
static void expect_same_as_strtod(locale_t loc, const char *s)
{
	double got = 0, want = strtod(s, NULL);
	int r = parse_double(loc, s, strlen(s), &got);
	if (isinf(want)) {
		cr_assert_eq(r, PARSE_NUM_NAN_INF, "\"%s\"", s);
		return;
	}
	cr_assert_eq(r, PARSE_NUM_OK, "\"%s\"", s);
	cr_assert(memcmp(&got, &want, sizeof(got)) == 0, "\"%s\": %.17g != %.17g", s, got, want);
}

Test(parse, numbers_match_strtod)
{
	static const char *const fixed[] = {
		"0", "1", "-1", "0.1", "0.2", "0.3", "1.1", "123.456", "9007199254740992",
		"9007199254740993", "18446744073709551615", "18446744073709551616", "1e22",
		"1e23", "1e-22", "1e-23", "4.35", "2.2250738585072011e-308", "2.2250738585072014e-308",
		"1.7976931348623157e308", "1.7976931348623159e308", "5e-324", "2.4703282292062327e-324",
		"2.4703282292062328e-324", "0.000001", "123456789012345678", "1234567890123456789",
		"12345678901234567890", "3.141592653589793238462643383279", ".5", "5.", "-.5e-1",
		"+7", "00000000000000000000000000001", "1.00000000000000011102230246251565404236316680908203125",
		"1.00000000000000011102230246251565404236316680908203124",
		"1.00000000000000011102230246251565404236316680908203126",
	};
	locale_t loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
		expect_same_as_strtod(loc, fixed[i]);

	uint64_t x = 88172645463325252u;
	char s[64];
	for (int iter = 0; iter < 200000; iter++) {
		size_t k = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (x & 1)
			s[k++] = '-';
		int digits = 1 + (int)((x >> 8) % 24), dot = (int)((x >> 16) % (unsigned)(digits + 2));
		for (int d = 0; d < digits; d++) {
			if (d == dot)
				s[k++] = '.';
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			s[k++] = (char)('0' + x % 10);
		}
		if (x & 2)
			k += (size_t)snprintf(s + k, sizeof(s) - k, "e%d", (int)((x >> 20) % 700) - 350);
		s[k] = '\0';
		expect_same_as_strtod(loc, s);
	}
	freelocale(loc);
}

Test(parse, numbers_are_locale_independent)
{
	/* A comma-decimal locale must not change anything (if one is installed). */
	setlocale(LC_NUMERIC, "de_DE.UTF-8");
	struct dsd_stats st;
	char *out = run("a:1.5:12345678901234567890.5|h", 30, &st);
	cr_assert_str_eq(out, "M a histogram v=1.5,1.2345678901234567e+19\n");
	free(out);
	setlocale(LC_NUMERIC, "C");
}

Test(parse, int64_parser)
{
	int64_t v = -1;
	cr_assert_eq(parse_int64("9223372036854775807", 19, &v), PARSE_NUM_OK);
	cr_assert_eq(v, INT64_MAX);
	cr_assert_eq(parse_int64("9223372036854775808", 19, &v), PARSE_NUM_BAD);
	cr_assert_eq(parse_int64("+0", 2, &v), PARSE_NUM_OK);
	cr_assert_eq(v, 0);
	cr_assert_eq(parse_int64("", 0, &v), PARSE_NUM_BAD);
	cr_assert_eq(parse_int64("+", 1, &v), PARSE_NUM_BAD);
	cr_assert_eq(parse_int64("-1", 2, &v), PARSE_NUM_BAD);
	cr_assert_eq(parse_int64("12a", 3, &v), PARSE_NUM_BAD);
	cr_assert_eq(parse_int64("123", 2, &v), PARSE_NUM_OK);
	cr_assert_eq(v, 12);
}

Test(parse, utf8_validation)
{
	static const struct {
		const char *s;
		bool ok;
	} t[] = {
		{ "", true }, { "plain ascii longer than eight bytes", true },
		{ "\xc3\xa9", true }, { "\xe2\x82\xac", true }, { "\xf0\x9f\x98\x80", true },
		{ "\xf4\x8f\xbf\xbf", true }, { "\xed\x9f\xbf", true }, { "\xee\x80\x80", true },
		{ "0123456789abcdef\xc3\xa9" "0123456789abcdef", true },
		{ "\x80", false }, { "\xbf", false }, { "\xc0\xaf", false }, { "\xc1\xbf", false },
		{ "\xc3", false }, { "\xc3(", false }, { "\xe2\x82", false }, { "\xe0\x9f\xbf", false },
		{ "\xed\xa0\x80", false }, { "\xf0\x8f\xbf\xbf", false }, { "\xf4\x90\x80\x80", false },
		{ "\xf5\x80\x80\x80", false }, { "\xff", false }, { "\xfe", false },
		{ "0123456789abcdef\xc3", false }, { "\xf0\x9f\x98", false },
	};
	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		cr_assert_eq(parse_utf8_valid(t[i].s, strlen(t[i].s)), t[i].ok, "case %zu", i);
}

Test(parse, error_names_are_stable_and_distinct)
{
	cr_assert_str_eq(dsd_error_name(DSD_ERR_NAN_INF), "nan_inf");
	cr_assert_str_eq(dsd_error_name(DSD_ERR_EVENT_LENGTH), "event_length");
	cr_assert_str_eq(dsd_error_name(DSD_ERR_COUNT), "unknown");
	cr_assert_str_eq(dsd_error_name((enum dsd_error)-1), "unknown");
	for (int i = 0; i < DSD_ERR_COUNT; i++) {
		cr_assert_str_neq(dsd_error_name(i), "unknown");
		for (int j = 0; j < i; j++)
			cr_assert_str_neq(dsd_error_name(i), dsd_error_name(j));
	}
}

Test(parse, default_limits)
{
	struct dsd_stats st;
	char *b = filled(1025 + 4, 'a');
	memcpy(b + 1024, ":1|c", 4);
	char *out = run(b, 1024 + 4, &st);
	cr_assert_eq(strlen(out), 2 + 1024 + 11);
	cr_assert_str_eq(out + 2 + 1024, " count v=1\n");
	free(out);
	cr_assert_eq(st.metric_lines, 1);
	memset(b, 'a', 1025);
	memcpy(b + 1025, ":1|c", 4);
	hostile(b, 1025 + 4, DSD_ERR_NAME_TOO_LONG, "");
	free(b);
}

/* ---- the split for the seen-line cache (dsd_split_next, dsd_line_metric) - */

/* The sink's ctx: struct rec first (on_metric and friends cast to it). */
struct seen_ctx {
	struct rec r;
	FILE *f;		/* what the stand-in cache was offered */
	char *text;
	size_t text_len;
	FILE *pf, *pf_seen;	/* what prefetch was given / the same fields from seen */
	char *pf_text, *pf_seen_text;
	size_t pf_len, pf_seen_len;
	bool answer;		/* what the stand-in cache answers */
};

/* A window's candidates' key lanes, as a prefetch gets them. */
static void window_rec(struct seen_ctx *s, const struct dsd_window *w)
{
	if (!w->nh)
		return;
	fputs("window\n", s->pf);
	for (size_t i = 0; i < w->nh; i++)
		fprintf(s->pf, "%016llx\n", (unsigned long long)w->h[i]);
}

/* A candidate's cache view, recorded; returns what the stand-in cache answers. */
static bool seen_rec(struct seen_ctx *s, const struct dsd_metric *m)
{
	cr_assert_neq(m->type, METRIC_SET);
	check_view(&s->r, m->name);
	check_view(&s->r, m->raw_suffix);
	put_sv(s->f, "seen ", m->name);
	fprintf(s->f, " %s v=", metric_type_name(m->type));
	for (size_t i = 0; i < m->nvalues; i++) {
		if (i)
			fputc(',', s->f);
		put_num(s->f, m->values[i]);
	}
	put_sv(s->f, " suffix=", m->raw_suffix);
	fprintf(s->f, "%s\n", m->explicit_sign ? " sign" : "");
	cr_assert(dsd_key_eq(m->key, dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p,
						   m->raw_suffix.n)));
	fprintf(s->pf_seen, "%016llx\n", (unsigned long long)m->key.a);
	return s->answer;
}

/* The ingest loop's use of the parser (ingest.c) with a stand-in cache that
 * takes every candidate whose values parse when s->answer, else none: taken
 * lines are counted with dsd_count_cached, the rest fully parsed into the
 * sink. Each window's h[] must list its candidates' key lanes in order. */
static void drive(struct dsd_parser *p, const struct dsd_datagram *d, size_t n, struct seen_ctx *s)
{
	dsd_split_begin(p, d, n, true);
	for (struct dsd_window *w; (w = dsd_split_next(p))->n;) {
		window_rec(s, w);
		size_t k = 0;
		for (size_t i = 0; i < w->n; i++) {
			struct dsd_metric q;
			if (w->line[i].kind != DSD_LINE_FULL) {
				cr_assert(k < w->nh && w->h[k++] == w->line[i].key.a);
				if (dsd_line_metric(p, w, i, &q) && seen_rec(s, &q)) {
					dsd_count_cached(p, &q);
					continue;
				}
			}
			union dsd_msg m;
			switch (dsd_parse_line(p, w, i, &m)) {
			case DSD_MSG_METRIC: on_metric(&s->r, &m.metric); break;
			case DSD_MSG_EVENT: on_event(&s->r, &m.event); break;
			case DSD_MSG_CHECK: on_check(&s->r, &m.check); break;
			case DSD_MSG_NONE: break;
			}
		}
		cr_assert_eq(k, w->nh);
	}
}

/* The memory streams a seen_ctx records into. */
static void seen_ctx_open(struct seen_ctx *s)
{
	s->r.f = open_memstream(&s->r.text, &s->r.text_len);
	s->f = open_memstream(&s->text, &s->text_len);
	s->pf = open_memstream(&s->pf_text, &s->pf_len);
	s->pf_seen = open_memstream(&s->pf_seen_text, &s->pf_seen_len);
	cr_assert(s->r.f && s->f && s->pf && s->pf_seen);
}

static void seen_ctx_close(struct seen_ctx *s)
{
	fclose(s->r.f);
	fclose(s->f);
	fclose(s->pf);
	fclose(s->pf_seen);
}

/* Parses a copy of in with drive, the stand-in cache answering `answer`;
 * returns the rendered messages, *seen what the cache was offered. */
static char *run_cached(const char *in, size_t len, bool answer, struct dsd_stats *st, char **seen)
{
	struct dsd_parser *p = dsd_parser_new(&small);
	char *copy = malloc(len ? len : 1);
	cr_assert(p && copy);
	memcpy(copy, in, len);
	struct seen_ctx s = { .r = { .lo = copy, .hi = copy + len }, .answer = answer };
	seen_ctx_open(&s);
	struct dsd_datagram d = { copy, len };
	drive(p, &d, 1, &s);
	seen_ctx_close(&s);
	/* every line offered to seen was prefetched first, in the same order
	 * (prefetch may also get lines whose values then fail) */
	const char *pp = s.pf_text;
	for (const char *q = s.pf_seen_text; *q;) {
		const char *qe = strchr(q, '\n') + 1;
		size_t ql = (size_t)(qe - q);
		while (*pp && !(strncmp(pp, q, ql) == 0))
			pp = strchr(pp, '\n') + 1;
		cr_assert(*pp, "not prefetched in order: %.*s", (int)ql, q);
		pp += ql;
		q = qe;
	}
	free(s.pf_text);
	free(s.pf_seen_text);
	*st = *dsd_parser_stats(p);
	*seen = s.text;
	dsd_parser_free(p);
	free(copy);
	return s.r.text;
}

static const char seen_input[] =
	"a.b:1|c|#x:1,y\na.b:-2.5:+3|ms|@0.5|#y\nset:v1|s|#t\nr:1|c|@2\nt:1|g|T5|#z\n"
	"bad:x|c\nbad:1|zz\nnul:1|c\n:1|c\nnov|c\nok:1|g\nok:1|g|\nr2:1|c|@abc\n"
	"hi:1|c|#host:h,a\nlong:1|c|#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\nm:1:2:3:4:5:6:7:8:9:10|c\n"
	"u\xff:1|c\nu:1|c|#\xff\nd:0.000001|d|c:cid|card:high\n";

/* The datagrams of dgs (NUL-separated, lens[i] bytes each) parsed into one
 * seen_ctx: in one batch when `batch`, else one batch per datagram. Returns
 * the rendered messages. */
static char *run_datagrams(const char *const *dgs, const size_t *lens, size_t n, bool answer,
			   bool batch, struct dsd_stats *st, char **seen, char **pf)
{
	struct dsd_parser *p = dsd_parser_new(&small);
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += lens[i];
	char *copy = malloc(total ? total : 1);
	struct dsd_datagram d[16];
	cr_assert(p && copy && n <= 16);
	for (size_t i = 0, at = 0; i < n; at += lens[i], i++) {
		memcpy(copy + at, dgs[i], lens[i]);
		d[i] = (struct dsd_datagram){ copy + at, lens[i] };
	}
	struct seen_ctx s = { .r = { .lo = copy, .hi = copy + total }, .answer = answer };
	seen_ctx_open(&s);
	if (batch)
		drive(p, d, n, &s);
	else
		for (size_t i = 0; i < n; i++)
			drive(p, &d[i], 1, &s);
	seen_ctx_close(&s);
	free(s.pf_seen_text);
	*st = *dsd_parser_stats(p);
	*seen = s.text;
	*pf = s.pf_text;
	dsd_parser_free(p);
	free(copy);
	return s.r.text;
}

/* A batch of datagrams is each datagram in turn: the same callbacks in the
 * same order, the same lines offered to seen and prefetched (a window never
 * mixes datagrams), the same counters; whatever seen answers. */
Test(parse, batch_is_each_datagram_in_turn)
{
	char longdg[64 * 150 + 1] = "";
	for (int i = 0; i < 150; i++)
		snprintf(longdg + strlen(longdg), sizeof(longdg) - strlen(longdg), "l.%d:%d|c|#k:%d\n",
			 i % 7, i, i % 3);
	static const char nul[] = "n:1|c\nn\0x:2|c\nm:3|g";
	const char *dgs[] = { seen_input, "", "_e{2,3}:ti|txt|#a\n_sc|chk|1|m:msg\nq:1|c", nul,
			      longdg, "\n\n\n", "z:1|c|#a:b", seen_input };
	size_t lens[] = { sizeof(seen_input) - 1, 0, strlen(dgs[2]), sizeof(nul) - 1,
			  strlen(longdg), 3, strlen(dgs[6]), sizeof(seen_input) - 1 };
	size_t n = sizeof(dgs) / sizeof(dgs[0]);
	for (int answer = 0; answer < 2; answer++) {
		struct dsd_stats one, all;
		char *seen1, *seen_all, *pf1, *pf_all;
		char *want = run_datagrams(dgs, lens, n, answer, false, &one, &seen1, &pf1);
		char *got = run_datagrams(dgs, lens, n, answer, true, &all, &seen_all, &pf_all);
		cr_assert_str_eq(got, want);
		cr_assert_str_eq(seen_all, seen1);
		cr_assert_str_eq(pf_all, pf1);
		cr_assert(memcmp(&one, &all, sizeof(one)) == 0);
		cr_assert_eq(all.datagrams, n);
		cr_assert_gt(all.lines, 150);
		free(want);
		free(got);
		free(seen1);
		free(seen_all);
		free(pf1);
		free(pf_all);
	}
}

/* A cache that never recognises a line changes nothing. */
Test(parse, cached_miss_is_identical_to_full_parse)
{
	struct dsd_stats full, cached;
	char *want = run_lim(seen_input, sizeof(seen_input) - 1, &small, &full);
	char *seen = NULL;
	char *got = run_cached(seen_input, sizeof(seen_input) - 1, false, &cached, &seen);
	cr_assert_str_eq(got, want);
	cr_assert(memcmp(&full, &cached, sizeof(full)) == 0);
	/* offered: every line with a name, known type and parsed values, but sets */
	cr_assert_str_eq(seen,
		"seen a.b count v=1 suffix=|#x:1,y\n"
		"seen a.b timing v=-2.5,3 suffix=|@0.5|#y sign\n"
		"seen r count v=1 suffix=|@2\n"
		"seen t gauge v=1 suffix=|T5|#z\n"
		"seen nul count v=1 suffix=\n"
		"seen ok gauge v=1 suffix=\n"
		"seen ok gauge v=1 suffix=|\n"
		"seen r2 count v=1 suffix=|@abc\n"
		"seen hi count v=1 suffix=|#host:h,a\n"
		"seen long count v=1 suffix=|#aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n"
		"seen u\xff count v=1 suffix=\n"
		"seen u count v=1 suffix=|#\xff\n"
		"seen d distribution v=1e-06 suffix=|c:cid|card:high\n");
	free(want);
	free(got);
	free(seen);
}

/* A recognised line is counted as the full parse counts an accepted line:
 * lines, metric_lines, samples by type; nothing else is called. */
Test(parse, cached_hit_counts_like_full_parse)
{
	static const char in[] = "a.b:1|c|#x:1,y\na.b:2:3|ms|#y\nok:4|g\nset:v|s\nbad:x|c\n";
	struct dsd_stats full, cached;
	char *want = run_lim(in, sizeof(in) - 1, &small, &full);
	char *seen = NULL;
	char *got = run_cached(in, sizeof(in) - 1, true, &cached, &seen);
	cr_assert_str_eq(got, "M set set member=v\n");
	cr_assert_eq(cached.lines, full.lines);
	cr_assert_eq(cached.metric_lines, full.metric_lines);
	cr_assert(memcmp(cached.samples, full.samples, sizeof(full.samples)) == 0);
	cr_assert(memcmp(cached.errors, full.errors, sizeof(full.errors)) == 0);
	cr_assert_eq(cached.metric_errors, full.metric_errors);
	assert_invariants(&cached);
	free(want);
	free(got);
	free(seen);
}

/* m->cacheable and m->raw_suffix as the full parse hands them out. */
struct cache_flags {
	char flags[16];
	size_t n;
	struct sv suffix[16];
};

static void on_metric_flags(void *ctx, const struct dsd_metric *m)
{
	struct cache_flags *c = ctx;
	c->suffix[c->n] = m->raw_suffix;
	c->flags[c->n++] = m->cacheable ? 'y' : 'n';
}

Test(parse, cacheable_flag)
{
	static const char in[] = "a:1|c|#t\nb:1|c|@0.5\nc:1|c|@2\nd:1|c|@0\ne:1|g|T5\nf:v|s\ng:1|ms";
	char copy[sizeof(in)];
	memcpy(copy, in, sizeof(in));
	struct dsd_parser *p = dsd_parser_new(NULL);
	struct cache_flags c = { .n = 0 };
	static const struct dsd_sink fs = { on_metric_flags, NULL, NULL };
	dsd_parse(p, copy, sizeof(in) - 1, &fs, &c);
	c.flags[c.n] = '\0';
	cr_assert_str_eq(c.flags, "yynnnny");
	cr_assert(sv_eq_cstr(c.suffix[0], "|#t") && sv_eq_cstr(c.suffix[1], "|@0.5"));
	cr_assert(sv_eq_cstr(c.suffix[6], ""));
	dsd_parser_free(p);
}

/* The one-pass reader of [+-]digits[.digits] values agrees with strtod bit
 * for bit (values of up to 15 digits; longer ones take parse_double). */
Test(parse, simple_values_match_strtod)
{
	struct dsd_parser *p = dsd_parser_new(NULL);
	uint64_t x = 0x243F6A8885A308D3u;
	char line[64], num[40];
	for (int iter = 0; iter < 20000; iter++) {
		size_t k = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		if (x & 1)
			num[k++] = (x & 2) ? '-' : '+';
		size_t nd = (x >> 2) % 17, dot = (x >> 8) % (nd + 2);
		for (size_t i = 0; i < nd; i++) {
			if (i == dot)
				num[k++] = '.';
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			num[k++] = (char)('0' + x % 10);
		}
		num[k] = '\0';
		if (!nd)
			continue;
		int n = snprintf(line, sizeof(line), "v:%s|g", num);
		struct rec r = { .lo = line, .hi = line + n };
		r.f = open_memstream(&r.text, &r.text_len);
		dsd_parse(p, line, (size_t)n, &sink, &r);
		fclose(r.f);
		char want[128];
		FILE *w = fmemopen(want, sizeof(want), "w");
		fputs("M v gauge v=", w);
		put_num(w, strtod(num, NULL));
		fputs((num[0] == '+' || num[0] == '-') ? " sign\n" : "\n", w);
		fputc('\0', w);
		fclose(w);
		cr_assert_str_eq(r.text, want, "%s", num);
		free(r.text);
	}
	dsd_parser_free(p);
}

/* Random datagrams: split with keys and a cache that never recognises a line
 * renders and counts exactly as dsd_parse; every view stays inside the
 * (exactly sized) copy. */
Test(parse, cached_miss_random_bytes_identical)
{
	uint64_t x = 0xD1B54A32D192ED03u;
	static const char alphabet[] = "ab:|#,@T1e.-+\n\r_{}sc0\x80\xc3\xa9\0dhgms";
	char buf[200];
	for (int iter = 0; iter < 3000; iter++) {
		size_t len = 0;
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		size_t want_len = x % sizeof(buf);
		for (; len < want_len; len++) {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			buf[len] = alphabet[x % (sizeof(alphabet) - 1)];
		}
		struct dsd_stats full, cached;
		char *want = run_lim(buf, len, &small, &full);
		char *seen = NULL;
		char *got = run_cached(buf, len, false, &cached, &seen);
		cr_assert_str_eq(got, want, "datagram %d", iter);
		cr_assert(memcmp(&full, &cached, sizeof(full)) == 0, "datagram %d", iter);
		free(want);
		free(got);
		free(seen);
	}
}

/* The walk's two encodings (dsd_parse_use_v3) give the same callbacks, the
 * same lines offered to seen with the same keys, and the same counters, on
 * the seen-path input and on random datagrams. */
Test(parse, walk_encodings_agree)
{
	if (!dsd_parse_use_v3(true))
		cr_skip_test("no AVX2/BMI2 here: one encoding only");
	uint64_t x = 0x9E3779B97F4A7C15u;
	static const char alphabet[] = "ab:|#,@T1e.-+\n\r_{}sc0\x80\xc3\xa9\0dhgms";
	char buf[300];
	for (int iter = 0; iter < 2001; iter++) {
		size_t len = 0;
		if (iter == 0) {
			len = sizeof(seen_input) - 1;
			memcpy(buf, seen_input, len);
		} else {
			x ^= x << 13, x ^= x >> 7, x ^= x << 17;
			size_t want_len = x % sizeof(buf);
			for (; len < want_len; len++) {
				x ^= x << 13, x ^= x >> 7, x ^= x << 17;
				buf[len] = alphabet[x % (sizeof(alphabet) - 1)];
			}
		}
		struct dsd_stats st[2];
		char *got[2], *seen[2];
		for (int v = 0; v < 2; v++) {
			dsd_parse_use_v3(v == 1);
			got[v] = run_cached(buf, len, iter & 1, &st[v], &seen[v]);
		}
		dsd_parse_use_v3(true);
		cr_assert_str_eq(got[1], got[0], "datagram %d", iter);
		cr_assert_str_eq(seen[1], seen[0], "datagram %d", iter);
		cr_assert(memcmp(&st[0], &st[1], sizeof(st[0])) == 0, "datagram %d", iter);
		for (int v = 0; v < 2; v++) {
			free(got[v]);
			free(seen[v]);
		}
	}
}
