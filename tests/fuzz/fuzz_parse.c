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
 * Also built with replay_main.c to replay tests/fuzz/corpus/parse/ in `meson test`.
 */
#include <locale.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "parse/num.h"
#include "parse/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                  \
	do {                                                                         \
		if (!(cond)) {                                                       \
			fprintf(stderr, "fuzz_parse: invariant failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                          \
			abort();                                                     \
		}                                                                    \
	} while (0)

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
	check_number(data, size);
	return 0;
}
