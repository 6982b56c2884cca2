/*
 * fuzz_parse.c - libFuzzer harness for the DogStatsD parser (agent/parse).
 *
 * The input is one datagram. It is parsed twice, with default limits and with
 * tiny ones, from an exactly sized heap copy (so ASan catches any read past
 * the view). Invariants checked, aborting on violation:
 *  - every view handed to a callback lies inside the datagram;
 *  - names are non-empty and within max_name_len, tags non-empty and within
 *    max_tag_len, ntags <= max_tags, 1 <= nvalues <= max_values, values finite,
 *    sample rate in (0,1], metric timestamps >= 0, statuses 0..3;
 *  - counters add up: lines == accepted + rejected, per-kind error totals ==
 *    sum of reasons, accepted counts == callback counts, bytes == size;
 *  - parse_double agrees with strtod_l on any input it accepts (and rejects
 *    nothing strtod would parse fully as a plain decimal).
 * The split for the seen-line cache (dsd_split_next, dsd_line_metric,
 * dsd_count_cached(_run), driven as ingest.c drives them, with a stand-in cache)
 * runs on the same input too:
 *  - "alternate": the cache takes every other candidate, whatever the line
 *    (so past its contract: only the bookkeeping is checked). Counters add
 *    up as above with metric_lines == full parses + cache hits and samples
 *    == parsed values + cached values; every candidate has a non-empty name,
 *    1..max_values finite values (a single plain value equal to its
 *    record's), is not a set, its views lie in the datagram, its key is
 *    dsd_key_hash of its type, name and suffix (also in the full parse's
 *    metric), and each window's h[] lists its candidates' key lanes in order;
 *  - "contract": the datagram is received twice; the cache takes every
 *    other candidate whose (type, name, suffix) was fully parsed earlier
 *    with m->cacheable (as aggr does), and the parser stats must equal those
 *    of plain dsd_parse over the same two receptions, field by field; also
 *    with the two copies as one batch (as pipeline.c's on_batch).
 * Also built with replay_main.c to replay tests/fuzz/corpus/parse/ in `meson test`.
 */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/keyhash.h"
#include "parse/num.h"
#include "parse/parse.h"
#include "fuzz_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fctx {
	const char *lo, *hi;
	struct dsd_limits lim;
	uint64_t metrics, events, checks, samples;
};

static void view_in(const struct fctx *c, struct sv v)
{
	if (v.n == 0)
		return;
	CHECK(v.p >= c->lo && v.p <= c->hi && v.n <= (size_t)(c->hi - v.p));
}

static void tags_ok(const struct fctx *c, const struct sv *tags, size_t n)
{
	CHECK(n <= c->lim.max_tags);
	for (size_t i = 0; i < n; i++) {
		CHECK(tags[i].n > 0 && tags[i].n <= c->lim.max_tag_len);
		view_in(c, tags[i]);
		CHECK(memchr(tags[i].p, ',', tags[i].n) == NULL);
		CHECK(memchr(tags[i].p, '|', tags[i].n) == NULL);
	}
}

static void on_metric(void *ctx, const struct dsd_metric *m)
{
	struct fctx *c = ctx;
	c->metrics++;
	c->samples += m->nvalues;
	CHECK(m->name.n > 0 && m->name.n <= c->lim.max_name_len);
	CHECK(memchr(m->name.p, ':', m->name.n) == NULL);
	view_in(c, m->name);
	view_in(c, m->set_member);
	view_in(c, m->container_id);
	view_in(c, m->external_data);
	view_in(c, m->cardinality);
	CHECK((unsigned)m->type < METRIC_TYPE_COUNT);
	CHECK(m->nvalues >= 1);
	if (m->type == METRIC_SET) {
		CHECK(m->nvalues == 1 && m->set_member.n > 0);
	} else {
		CHECK(m->nvalues <= c->lim.max_values);
		for (size_t i = 0; i < m->nvalues; i++)
			CHECK(isfinite(m->values[i]));
	}
	CHECK(m->sample_rate > 0 && m->sample_rate <= 1);
	CHECK(m->timestamp >= 0);
	tags_ok(c, m->tags, m->ntags);
}

static void on_event(void *ctx, const struct dsd_event *e)
{
	struct fctx *c = ctx;
	c->events++;
	CHECK(e->title.n > 0);
	view_in(c, e->title);
	view_in(c, e->text);
	view_in(c, e->hostname);
	view_in(c, e->aggregation_key);
	view_in(c, e->source_type);
	view_in(c, e->container_id);
	CHECK(e->priority == EVENT_PRIORITY_NORMAL || e->priority == EVENT_PRIORITY_LOW);
	CHECK((unsigned)e->alert_type <= EVENT_ALERT_SUCCESS);
	CHECK(e->timestamp >= 0);
	tags_ok(c, e->tags, e->ntags);
}

static void on_check(void *ctx, const struct dsd_service_check *sc)
{
	struct fctx *c = ctx;
	c->checks++;
	CHECK(sc->name.n > 0 && sc->name.n <= c->lim.max_name_len);
	view_in(c, sc->name);
	view_in(c, sc->hostname);
	view_in(c, sc->message);
	view_in(c, sc->container_id);
	CHECK((unsigned)sc->status <= CHECK_UNKNOWN);
	CHECK(sc->timestamp >= 0);
	tags_ok(c, sc->tags, sc->ntags);
}

static const struct dsd_sink sink_plain = { on_metric, on_event, on_check };

static void run_once(const uint8_t *data, size_t size, const struct dsd_limits *lim)
{
	static const struct dsd_sink sink = { on_metric, on_event, on_check };
	struct dsd_parser *p = dsd_parser_new(lim);
	char *buf = malloc(size ? size : 1);
	CHECK(p && buf);
	memcpy(buf, data, size);
	struct fctx c = { .lo = buf, .hi = buf + size, .lim = *lim };
	dsd_parse(p, buf, size, &sink, &c);

	const struct dsd_stats *st = dsd_parser_stats(p);
	uint64_t samples = fuzz_check_parser_stats(st);
	CHECK(st->datagrams == 1 && st->bytes == size);
	CHECK(st->metric_lines == c.metrics && st->events == c.events && st->service_checks == c.checks);
	CHECK(samples == c.samples);
	CHECK(st->rate_out_of_range <= st->metric_lines);
	CHECK(st->lines <= size);
	free(buf);
	dsd_parser_free(p);
}

/* ---- the split for the seen-line cache ---- */

#define KEYS_MAX 64

struct cctx {
	struct fctx f;
	bool contract;
	unsigned calls;
	uint64_t seen_true, seen_samples;
	char *keys[KEYS_MAX];	/* contract: type byte, name length (8 bytes), name, suffix */
	size_t klen[KEYS_MAX], nkeys;
};

static size_t key_make(char *out, const struct dsd_metric *m)
{
	out[0] = (char)m->type;
	memcpy(out + 1, &m->name.n, sizeof(size_t));
	memcpy(out + 1 + sizeof(size_t), m->name.p, m->name.n);
	if (m->raw_suffix.n)
		memcpy(out + 1 + sizeof(size_t) + m->name.n, m->raw_suffix.p, m->raw_suffix.n);
	return 1 + sizeof(size_t) + m->name.n + m->raw_suffix.n;
}

static bool key_known(const struct cctx *c, const struct dsd_metric *m, char *tmp)
{
	size_t n = key_make(tmp, m);
	for (size_t i = 0; i < c->nkeys; i++)
		if (c->klen[i] == n && memcmp(c->keys[i], tmp, n) == 0)
			return true;
	return false;
}

/* A fully parsed metric; contract: remembered when cacheable (as aggr does).
 * A candidate's carries the key of its name, type and suffix. */
static void full_metric(struct cctx *c, const struct dsd_metric *m, bool cand)
{
	on_metric(&c->f, m);
	view_in(&c->f, m->raw_suffix);
	if (cand)
		CHECK(dsd_key_eq(m->key, dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p,
						       m->raw_suffix.n)));
	if (!c->contract || !m->cacheable || c->nkeys == KEYS_MAX)
		return;
	char *k = malloc(1 + sizeof(size_t) + m->name.n + m->raw_suffix.n);
	CHECK(k);
	if (key_known(c, m, k)) {
		free(k);
		return;
	}
	c->klen[c->nkeys] = key_make(k, m);
	c->keys[c->nkeys++] = k;
}

/* The stand-in cache: alternate takes every other candidate, whatever it
 * is (past the contract: only the bookkeeping is checked); contract takes
 * every other candidate whose (type, name, suffix) was fully parsed and
 * cacheable before. */
static bool cache_takes(struct cctx *c, const struct dsd_window *w, size_t i,
			const struct dsd_metric *m)
{
	const struct dsd_seen_line *l = &w->line[i];
	CHECK(m->name.n > 0 && memchr(m->name.p, ':', m->name.n) == NULL);
	view_in(&c->f, m->name);
	view_in(&c->f, m->raw_suffix);
	CHECK((unsigned)m->type < METRIC_TYPE_COUNT && m->type != METRIC_SET);
	CHECK(m->type == l->type && dsd_key_eq(m->key, l->key));
	CHECK(dsd_key_eq(m->key, dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p,
					       m->raw_suffix.n)));
	CHECK(m->nvalues >= 1 && m->nvalues <= c->f.lim.max_values);
	CHECK(l->kind != DSD_LINE_SIMPLE || (m->nvalues == 1 && m->values[0] == l->value));
	for (size_t i2 = 0; i2 < m->nvalues; i2++)
		CHECK(isfinite(m->values[i2]));
	bool take;
	if (c->contract) {
		char *tmp = malloc(1 + sizeof(size_t) + m->name.n + m->raw_suffix.n);
		CHECK(tmp);
		take = key_known(c, m, tmp) && (c->calls++ & 1);
		free(tmp);
	} else {
		take = c->calls++ & 1;
	}
	if (take) {
		c->seen_true++;
		c->seen_samples += m->nvalues;
	}
	return take;
}

/* As ingest.c drives the parser, with the stand-in cache; each window's h[]
 * lists its candidates' key lanes in order, and a window stays intact while
 * the next one is split (the loop looks one window ahead). */
static void drive(struct dsd_parser *p, const struct dsd_datagram *d, size_t n, struct cctx *c)
{
	dsd_split_begin(p, d, n, true);
	struct dsd_window *cur = dsd_split_next(p);
	while (cur->n) {
		struct dsd_window *next = dsd_split_next(p);
		CHECK(next != cur && cur->n <= DSD_WINDOW_MAX && cur->nh <= cur->n);
		size_t k = 0;
		for (size_t i = 0; i < cur->n; i++) {
			struct dsd_metric q;
			bool cand = cur->line[i].kind != DSD_LINE_FULL;
			if (cand) {
				CHECK(k < cur->nh && cur->h[k++] == cur->line[i].key.a);
				CHECK(cur->line[i].type != METRIC_SET);
				if (dsd_line_metric(p, cur, i, &q) && cache_takes(c, cur, i, &q)) {
					if (cur->line[i].kind == DSD_LINE_SIMPLE)
						dsd_count_cached_run(p, cur, i, 1);
					else
						dsd_count_cached(p, &q);
					continue;
				}
			}
			union dsd_msg m;
			switch (dsd_parse_line(p, cur, i, &m)) {
			case DSD_MSG_METRIC: full_metric(c, &m.metric, cand); break;
			case DSD_MSG_EVENT: on_event(&c->f, &m.event); break;
			case DSD_MSG_CHECK: on_check(&c->f, &m.check); break;
			case DSD_MSG_NONE: break;
			}
		}
		CHECK(k == cur->nh);
		cur = next;
	}
}

static void check_counts(const struct dsd_stats *st, uint64_t metrics, uint64_t samples_cb)
{
	uint64_t samples = fuzz_check_parser_stats(st);
	CHECK(st->metric_lines == metrics);
	CHECK(samples == samples_cb);
	CHECK(st->rate_out_of_range <= st->metric_lines);
}

static void run_cached(const uint8_t *data, size_t size, const struct dsd_limits *lim,
		       bool contract, bool batch)
{
	struct dsd_parser *p = dsd_parser_new(lim), *plain = dsd_parser_new(lim);
	struct cctx c = { .f.lim = *lim, .contract = contract };
	struct fctx pc = { .lim = *lim };
	CHECK(p && plain);
	if (batch) {
		/* the two receptions as one batch of two datagrams */
		char *buf = malloc(size ? 2 * size : 1);
		CHECK(buf);
		memcpy(buf, data, size);
		memcpy(buf + size, data, size);
		struct dsd_datagram d[2] = { { buf, size }, { buf + size, size } };
		c.f.lo = buf;
		c.f.hi = buf + 2 * size;
		drive(p, d, 2, &c);
		for (int r = 0; r < 2; r++) {
			memcpy(buf, data, size);
			pc.lo = buf;
			pc.hi = buf + size;
			dsd_parse(plain, buf, size, &sink_plain, &pc);
		}
		free(buf);
	}
	for (int r = 0; !batch && r < (contract ? 2 : 1); r++) {
		char *buf = malloc(size ? size : 1);
		CHECK(buf);
		memcpy(buf, data, size);
		c.f.lo = buf;
		c.f.hi = buf + size;
		struct dsd_datagram d = { buf, size };
		drive(p, &d, 1, &c);
		memcpy(buf, data, size);
		pc.lo = buf;
		pc.hi = buf + size;
		dsd_parse(plain, buf, size, &sink_plain, &pc);
		free(buf);
	}
	const struct dsd_stats *st = dsd_parser_stats(p);
	CHECK(st->bytes == size * (contract ? 2 : 1));
	check_counts(st, c.f.metrics + c.seen_true, c.f.samples + c.seen_samples);
	CHECK(st->events == c.f.events && st->service_checks == c.f.checks);
	if (contract)
		CHECK(memcmp(st, dsd_parser_stats(plain), sizeof(*st)) == 0);
	for (size_t i = 0; i < c.nkeys; i++)
		free(c.keys[i]);
	dsd_parser_free(p);
	dsd_parser_free(plain);
}

/* Differential check of the number parser against glibc on short inputs. */
static void check_number(const uint8_t *data, size_t size)
{
	static locale_t loc;
	char s[128];
	if (size >= sizeof(s))
		return;
	if (!loc)
		loc = newlocale(LC_ALL_MASK, "C", (locale_t)0);
	CHECK(loc);
	memcpy(s, data, size);
	s[size] = '\0';
	double got = 0;
	int r = parse_double(loc, s, size, &got);
	if (r == PARSE_NUM_OK) {
		char *end;
		double want = strtod_l(s, &end, loc);
		CHECK(end == s + size);
		CHECK(memcmp(&got, &want, sizeof(got)) == 0);
	} else if (r == PARSE_NUM_BAD && size > 0 && !strpbrk(s, "xXpP \t\n\v\f\rnNiI")) {
		/* glibc accepts a superset (hex, leading space, "nan(...)"); other
		 * input we reject must not parse fully there either */
		char *end;
		strtod_l(s, &end, loc);
		CHECK(end != s + size);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const struct dsd_limits tiny = { 8, 3, 6, 4 };
	const struct dsd_limits def = DSD_LIMITS_DEFAULT;
	run_once(data, size, &def);
	run_once(data, size, &tiny);
	run_cached(data, size, &def, false, false);
	run_cached(data, size, &tiny, false, false);
	run_cached(data, size, &def, true, false);
	run_cached(data, size, &tiny, true, false);
	run_cached(data, size, &def, true, true);
	run_cached(data, size, &tiny, true, true);
	check_number(data, size);
	return 0;
}
