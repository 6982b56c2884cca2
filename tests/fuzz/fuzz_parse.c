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
 * dsd_parse_cached (the seen-line fast path) runs on the same input twice:
 *  - "alternate": seen returns true on every other call, whatever the line
 *    (so past its contract: only the bookkeeping is checked). Counters add up
 *    as above with metric_lines == sink callbacks + seen hits and samples ==
 *    sink values + seen values; every line offered to seen has a non-empty
 *    name, 1..max_values finite values, is not a set, and its views lie in
 *    the datagram; prefetch starts with NULL, then offers lines (views in the
 *    datagram, not sets) and, within the walk (the first 64 lines), every
 *    line offered to seen was prefetched first, in order, with the same views;
 *  - "contract": the datagram is received twice; seen returns true on every
 *    other call for lines it earlier got through sink->metric with
 *    m->cacheable (as aggr does), and the parser stats must equal those of
 *    plain dsd_parse over the same two receptions, field by field.
 * Both modes run twice: lines offered one by one (seen), and runs of
 * single-value lines offered together (seen_run, as pipeline.c), each run
 * line judged as seen would judge it (contract: by its key, kept for every
 * cacheable line sink->metric got), with the same prefetch-order check.
 * The contract mode with runs also receives its two copies as one batch
 * (dsd_parse_batch, as pipeline.c's on_batch): the same stats as plain
 * dsd_parse of each copy, the prefetch order checked across the two.
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
	uint64_t reasons = 0, samples = 0;
	for (int i = 0; i < DSD_ERR_COUNT; i++)
		reasons += st->errors[i];
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		samples += st->samples[t];
	uint64_t rejected = st->metric_errors + st->event_errors + st->check_errors;
	CHECK(st->datagrams == 1 && st->bytes == size);
	CHECK(reasons == rejected);
	CHECK(st->lines == st->metric_lines + st->events + st->service_checks + rejected);
	CHECK(st->metric_lines == c.metrics && st->events == c.events && st->service_checks == c.checks);
	CHECK(samples == c.samples);
	CHECK(st->rate_out_of_range <= st->metric_lines);
	CHECK(st->lines <= size);
	free(buf);
	dsd_parser_free(p);
}

/* ---- dsd_parse_cached ---- */

#define PF_MAX 64
#define KEYS_MAX 64

struct cctx {
	struct fctx f;
	bool contract;
	unsigned calls;
	uint64_t seen_true, seen_samples;
	uint64_t pf[PF_MAX];	/* the current window's prefetched key hashes */
	size_t npf, pfcur;
	uint64_t ahead[2][PF_MAX]; /* windows announced ahead, oldest first */
	size_t nahead_h[2], nahead;
	bool pf_started;
	char *keys[KEYS_MAX];	/* contract: type byte, name length (8 bytes), name, suffix */
	size_t klen[KEYS_MAX], nkeys;
	struct dsd_key kk[KEYS_MAX]; /* contract: keys[i]'s cache key (for seen_run) */
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

static void on_metric_cached(void *ctx, const struct dsd_metric *m)
{
	struct cctx *c = ctx;
	on_metric(&c->f, m);
	view_in(&c->f, m->raw_suffix);
	if (!c->contract || !m->cacheable || c->nkeys == KEYS_MAX)
		return;
	char *k = malloc(1 + sizeof(size_t) + m->name.n + m->raw_suffix.n);
	CHECK(k);
	if (key_known(c, m, k)) {
		free(k);
		return;
	}
	c->klen[c->nkeys] = key_make(k, m);
	c->kk[c->nkeys] = dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p, m->raw_suffix.n);
	c->keys[c->nkeys++] = k;
}

static void on_event_cached(void *ctx, const struct dsd_event *e)
{
	on_event(&((struct cctx *)ctx)->f, e);
}

static void on_check_cached(void *ctx, const struct dsd_service_check *sc)
{
	on_check(&((struct cctx *)ctx)->f, sc);
}

/* Every line offered to seen (or in a run) was in the window's prefetch, in
 * order. */
static void key_was_prefetched(struct cctx *c, struct dsd_key k)
{
	CHECK(c->pf_started);
	for (size_t i = c->pfcur; i < c->npf; i++) {
		if (c->pf[i] != k.a)
			continue;
		c->pfcur = i + 1;
		return;
	}
	CHECK(!"offered to seen without a prefetch");
}

/* ... and carries its key. */
static void seen_was_prefetched(struct cctx *c, const struct dsd_metric *m)
{
	CHECK(dsd_key_eq(m->key, dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p,
					       m->raw_suffix.n)));
	key_was_prefetched(c, m->key);
}

/* seen_run: each line as on_seen would judge it (contract: a key seen
 * through sink->metric, every other call), up to the first not taken. */
static size_t on_seen_run(void *ctx, const struct dsd_seen_line *l, size_t n)
{
	struct cctx *c = ctx;
	CHECK(n >= 1 && n <= PF_MAX);
	for (size_t i = 0; i < n; i++) {
		CHECK(l[i].type < METRIC_TYPE_COUNT && l[i].type != METRIC_SET);
		CHECK(isfinite(l[i].value));
		key_was_prefetched(c, l[i].key);
		bool known = !c->contract;
		for (size_t j = 0; j < c->nkeys && !known; j++)
			known = dsd_key_eq(c->kk[j], l[i].key);
		if (!(known && (c->calls++ & 1)))
			return i;
		c->seen_true++;
		c->seen_samples++;
	}
	return n;
}

static bool on_seen(void *ctx, const struct dsd_metric *m)
{
	struct cctx *c = ctx;
	CHECK(m->name.n > 0 && memchr(m->name.p, ':', m->name.n) == NULL);
	view_in(&c->f, m->name);
	view_in(&c->f, m->raw_suffix);
	CHECK((unsigned)m->type < METRIC_TYPE_COUNT && m->type != METRIC_SET);
	CHECK(m->nvalues >= 1 && m->nvalues <= c->f.lim.max_values);
	for (size_t i = 0; i < m->nvalues; i++)
		CHECK(isfinite(m->values[i]));
	seen_was_prefetched(c, m);
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

/* Each window's hashes come first a window ahead (lines_next false), then
 * right before its lines (true), in the same order: at most two windows are
 * ahead at any time. */
static void on_prefetch(void *ctx, const uint64_t *h, size_t n, bool lines_next)
{
	struct cctx *c = ctx;
	CHECK(n >= 1 && n <= PF_MAX);
	if (!lines_next) {
		CHECK(c->nahead < 2);
		memcpy(c->ahead[c->nahead], h, n * sizeof(*h));
		c->nahead_h[c->nahead++] = n;
		return;
	}
	CHECK(c->nahead >= 1 && c->nahead_h[0] == n);
	CHECK(memcmp(c->ahead[0], h, n * sizeof(*h)) == 0);
	memmove(c->ahead[0], c->ahead[1], sizeof(c->ahead[0]));
	c->nahead_h[0] = c->nahead_h[1];
	c->nahead--;
	c->pf_started = true;
	memcpy(c->pf, h, n * sizeof(*h));
	c->npf = n;
	c->pfcur = 0;
}

static void check_counts(const struct dsd_stats *st, uint64_t metrics, uint64_t samples_cb)
{
	uint64_t reasons = 0, samples = 0;
	for (int i = 0; i < DSD_ERR_COUNT; i++)
		reasons += st->errors[i];
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		samples += st->samples[t];
	uint64_t rejected = st->metric_errors + st->event_errors + st->check_errors;
	CHECK(reasons == rejected);
	CHECK(st->lines == st->metric_lines + st->events + st->service_checks + rejected);
	CHECK(st->metric_lines == metrics);
	CHECK(samples == samples_cb);
	CHECK(st->rate_out_of_range <= st->metric_lines);
}

static void run_cached(const uint8_t *data, size_t size, const struct dsd_limits *lim,
		       bool contract, bool runs, bool batch)
{
	static const struct dsd_sink sink = { on_metric_cached, on_event_cached, on_check_cached };
	static const struct dsd_cache_ops ops_one = { on_seen, on_prefetch, NULL };
	static const struct dsd_cache_ops ops_runs = { on_seen, on_prefetch, on_seen_run };
	const struct dsd_cache_ops *ops = runs ? &ops_runs : &ops_one;
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
		dsd_parse_batch(p, d, 2, &sink, ops, &c);
		CHECK(c.nahead == 0);
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
		c.pf_started = false;
		c.npf = c.pfcur = c.nahead = 0;
		dsd_parse_cached(p, buf, size, &sink, ops, &c);
		CHECK(c.nahead == 0);
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
	for (int runs = 0; runs < 2; runs++) {
		run_cached(data, size, &def, false, runs, false);
		run_cached(data, size, &tiny, false, runs, false);
		run_cached(data, size, &def, true, runs, false);
		run_cached(data, size, &tiny, true, runs, false);
	}
	run_cached(data, size, &def, true, true, true);
	run_cached(data, size, &tiny, true, true, true);
	check_number(data, size);
	return 0;
}
