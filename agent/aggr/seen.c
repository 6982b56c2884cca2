/*
 * seen.c - the seen-line cache: a line whose exact (name, type, raw suffix)
 * reached a context before is applied to that context directly, without
 * tag parsing, enrichment (mapper, namespace, global tags, host: override)
 * or the context lookup. All of those depend only on the name and the suffix
 * (and the config, which clears the cache), so the result is exactly the
 * full path's. See aggr_int.h (struct seen) for the bounds and invalidation.
 *
 * Caller: pipeline.c's parser callbacks (parse.h dsd_cache_ops) through
 * aggr_seen_prefetch and aggr_ingest_seen; aggr_ingest remembers a line when
 * it reaches an existing context; flush.c and aggr_reconfigure clear it.
 * Owns the entry table. Single-threaded, like the rest of the aggregator.
 *
 * A line is identified by its key alone (keyhash.h: seeded, 128 bits, the
 * parser computed it while splitting the line); no key bytes are stored or
 * compared. That is what makes a hit cheap: one probe (usually one 32-byte
 * entry holding both key lanes, the context and the rate), then the
 * accumulator update. Comparing bytes cost a load of the kept key, a third
 * cache line per line that missed more often than the other two
 * (bench/RESULTS.md, fifth pass). What remains costs memory latency, not
 * instructions: the parser hands each window of lines' key lanes to
 * aggr_seen_prefetch, which loads their entries, then their contexts, ahead
 * of the lines.
 *
 * Probes stop after SEEN_PROBE_MAX slots (a miss takes the full path) and a
 * line that would sit further from home is not cached, so a lookup stays
 * bounded even if many keys shared their low bits.
 */
#include "aggr/aggr_int.h"
#include "parse/keyhash.h"

#include <stdlib.h>
#include <string.h>

#define SEEN_MIN_CAP 1024

static inline struct dsd_key key_of(const struct dsd_metric *m)
{
	if (m->key.a | m->key.b)
		return m->key;
	return dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p, m->raw_suffix.n);
}

static inline struct seen_ent *seen_find(const struct seen *sc, struct dsd_key k)
{
	if (!sc->n)
		return NULL;
	size_t mask = sc->cap - 1;
	size_t i = (size_t)k.a & mask;
	for (unsigned probes = 0; sc->t[i].c && probes < SEEN_PROBE_MAX; probes++) {
		struct seen_ent *e = &sc->t[i];
		if (dsd_key_eq(e->k, k))
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

/* What every sample received at `now` shares: its bucket and its time
 * relative to the epoch (ctx.last_seen), computed once per call. */
struct seen_clock {
	int64_t bucket;
	int32_t rel;
};

static inline struct seen_clock seen_clock(struct aggr *a, int64_t now)
{
	if (now != a->seen.last_now) {
		a->seen.last_now = now;
		a->seen.last_bucket = bucket_of(now);
	}
	int64_t rel = now - a->epoch;
	return (struct seen_clock){ a->seen.last_bucket,
				    rel > INT32_MAX ? INT32_MAX : rel < INT32_MIN ? INT32_MIN : (int32_t)rel };
}

/* aggr_accumulate for a counter or gauge whose bucket is already open in one
 * of the two inline slots (the usual case); false: take the general path. */
static inline bool accumulate_inline(struct aggr *a, struct ctx *c, const double *v, size_t nv,
				     bool explicit_sign, double rate, struct seen_clock t)
{
	if (c->type != METRIC_COUNT && c->type != METRIC_GAUGE)
		return false;
	struct slot *s = c->slot[0].bucket == t.bucket ? &c->slot[0] :
			 c->slot[1].bucket == t.bucket ? &c->slot[1] : NULL;
	if (!s)
		return false;
	if (t.rel > c->last_seen)
		c->last_seen = t.rel;
	if (c->type == METRIC_COUNT) {
		for (size_t i = 0; i < nv; i++) /* v / 1 == v: skip the division */
			s->u.d += rate == 1.0 ? v[i] : v[i] / rate;
		return true;
	}
	bool delta = a->cfg->gauge_deltas && explicit_sign;
	for (size_t i = 0; i < nv; i++)
		s->u.d = delta ? s->u.d + v[i] : v[i];
	c->x.last = s->u.d;
	c->has_last = 1;
	return true;
}

void aggr_seen_prefetch(struct aggr *a, const uint64_t *h, size_t n, bool lines_next)
{
	const struct seen *sc = &a->seen;
	if (!sc->n)
		return;
	size_t mask = sc->cap - 1;
	if (!lines_next) {
		/* a window ahead: the entries */
		for (size_t i = 0; i < n; i++)
			__builtin_prefetch(&sc->t[h[i] & mask]);
		return;
	}
	/* the entries have arrived: the contexts they point to */
	for (size_t i = 0; i < n; i++) {
		const struct seen_ent *e = &sc->t[h[i] & mask];
		if (e->c && e->k.a == h[i]) {
			__builtin_prefetch(e->c); /* the sample's fields: bytes 0..47 */
			__builtin_prefetch((const char *)e->c + 47);
		}
	}
}

bool aggr_ingest_seen(struct aggr *a, const struct dsd_metric *m, int64_t now)
{
	AGGR_INCR_CHECK(a, now);
	if (m->name.n + m->raw_suffix.n > SEEN_KEY_MAX)
		return false;
	struct seen_ent *e = seen_find(&a->seen, key_of(m));
	if (!e)
		return false;
	a->st.samples_in += m->nvalues;
	a->st.seen_hits++;
	if (!accumulate_inline(a, e->c, m->values, m->nvalues, m->explicit_sign, e->rate,
			       seen_clock(a, now)))
		aggr_accumulate(a, e->c, m, e->rate, now);
	return true;
}

size_t aggr_ingest_seen_run(struct aggr *a, const struct dsd_seen_line *l, size_t n, int64_t now)
{
	AGGR_INCR_CHECK(a, now);
	const struct seen *sc = &a->seen;
	if (!sc->n)
		return 0;
	struct seen_clock t = seen_clock(a, now);
	size_t i = 0;
	for (; i < n; i++) {
		struct seen_ent *e = seen_find(sc, l[i].key);
		if (!e)
			break;
		if (accumulate_inline(a, e->c, &l[i].value, 1, l[i].explicit_sign, e->rate, t))
			continue;
		struct dsd_metric m = { .type = (enum metric_type)l[i].type, .values = &l[i].value,
					.nvalues = 1, .explicit_sign = l[i].explicit_sign };
		aggr_accumulate(a, e->c, &m, e->rate, now);
	}
	a->st.samples_in += i;
	a->st.seen_hits += i;
	return i;
}

/* The free slot for key lane a; with `bounded`, NULL when it lies
 * SEEN_PROBE_MAX or more slots from home (seen_find would not look there). */
static struct seen_ent *slot_for(struct seen *sc, uint64_t ka, bool bounded)
{
	size_t mask = sc->cap - 1, i = (size_t)ka & mask;
	for (unsigned probes = 0; sc->t[i].c; probes++) {
		if (bounded && probes + 1 >= SEEN_PROBE_MAX)
			return NULL;
		i = (i + 1) & mask;
	}
	return &sc->t[i];
}

/* Room for one more entry; false when full or ENOMEM. */
static bool seen_room(struct seen *sc)
{
	if (sc->n >= SEEN_MAX)
		return false;
	if ((sc->n + 1) * 2 > sc->cap) {
		struct seen old = *sc;
		sc->cap = sc->cap ? sc->cap * 2 : SEEN_MIN_CAP;
		sc->t = calloc(sc->cap, sizeof(*sc->t));
		if (!sc->t) {
			sc->t = old.t;
			sc->cap = old.cap;
			return false;
		}
		for (size_t i = 0; i < old.cap; i++) {
			if (!old.t[i].c)
				continue;
			/* in the new order an entry can land further from
			 * home than seen_find looks: dropped (its line takes
			 * the full path and may be remembered again) */
			struct seen_ent *e = slot_for(sc, old.t[i].k.a, true);
			if (e)
				*e = old.t[i];
			else
				sc->n--;
		}
		free(old.t);
	}
	return true;
}

void seen_remember(struct seen *sc, const struct dsd_metric *m, struct ctx *c, double rate)
{
	if (!m->cacheable || m->name.n + m->raw_suffix.n > SEEN_KEY_MAX || sc->n >= SEEN_MAX)
		return;
	struct dsd_key k = key_of(m);
	if (seen_find(sc, k))
		return;
	if (!seen_room(sc))
		return;
	struct seen_ent *e = slot_for(sc, k.a, true);
	if (!e)
		return; /* a crowded cluster: not cached */
	*e = (struct seen_ent){ .k = k, .c = c, .rate = rate };
	sc->n++;
}

void seen_clear(struct seen *sc)
{
	if (!sc->n)
		return;
	memset(sc->t, 0, sc->cap * sizeof(*sc->t));
	sc->n = 0;
}

void seen_done(struct seen *sc)
{
	free(sc->t);
	memset(sc, 0, sizeof(*sc));
}

size_t seen_bytes(const struct seen *sc)
{
	return sc->cap * sizeof(*sc->t);
}
