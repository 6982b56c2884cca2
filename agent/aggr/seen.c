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
 * compared. That is what makes a hit cheap: one probe (usually one 64-byte
 * entry holding both key lanes, the context and the rate), then the
 * accumulator update. Comparing bytes cost a load of the kept key, a third
 * cache line per line that missed more often than the other two
 * (bench/RESULTS.md, fifth pass).
 *
 * Owned slots: a counter's hit would still load its context (bytes 0..40 of
 * an 80-byte context: one or two more cache lines) to add to the bucket's
 * slot. Instead the entry takes the slot over: it keeps the slot's sum and
 * adds to it there, so that a counter hit touches the entry's cache line
 * only (bench/RESULTS.md, seventh pass). The context records which inline
 * slot is owned (ctx.own) and the slot which entry owns it (u.owner), and
 * every other writer of that slot (the full path, another spelling of the
 * line with its own entry, aggr_ingest_seen) adds to the owner's sum
 * (count_sum): each sample still lands in one sum, in arrival order, so the
 * result is the full path's to the last bit. The sum goes back to the slot
 * (seen_fold) when the entry meets another bucket, before a collect reads
 * the slots (aggr_collect_begin: seen_release), before the table forgets
 * (seen_clear) or drops the entry (growth), never later: ingest between
 * the steps of a collect owns open buckets only, which collect does not take,
 * and a context with an open bucket does not expire.
 *
 * What remains costs memory latency, not instructions: the parser hands each
 * window of lines' key lanes to aggr_seen_prefetch, which loads their
 * entries, then the contexts of those that do not own the current bucket,
 * ahead of the lines.
 *
 * Probes stop after SEEN_PROBE_MAX slots (a miss takes the full path) and a
 * line that would sit further from home is not cached, so a lookup stays
 * bounded even if many keys shared their low bits.
 */
#include "aggr/aggr_int.h"
#include "parse/keyhash.h"

#include <assert.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

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

/* The inline slot of c open for bucket b, or NULL. */
static inline struct slot *inline_slot(struct ctx *c, int64_t b)
{
	return c->slot[0].bucket == b ? &c->slot[0] : c->slot[1].bucket == b ? &c->slot[1] : NULL;
}

/* A counter sample added to a sum, as add_value does (v / 1 == v: the
 * division is skipped). */
static inline void count_add(double *sum, double v, double rate)
{
	*sum += rate == 1.0 ? v : v / rate;
}

/* aggr_accumulate for a counter or gauge whose bucket is already open in one
 * of the two inline slots (the usual case); false: take the general path. */
static inline bool accumulate_inline(struct aggr *a, struct ctx *c, const double *v, size_t nv,
				     bool explicit_sign, double rate, struct seen_clock t)
{
	if (c->type != METRIC_COUNT && c->type != METRIC_GAUGE)
		return false;
	struct slot *s = inline_slot(c, t.bucket);
	if (!s)
		return false;
	if (t.rel > c->last_seen)
		c->last_seen = t.rel;
	if (c->type == METRIC_COUNT) {
		double *sum = count_sum(a, c, s);
		for (size_t i = 0; i < nv; i++)
			count_add(sum, v[i], rate);
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
	/* the entries have arrived: the contexts they point to, unless the
	 * entry holds the sum of the bucket samples are going to (likely) */
	for (size_t i = 0; i < n; i++) {
		const struct seen_ent *e = &sc->t[h[i] & mask];
		if (e->c && e->k.a == h[i] && e->bucket != sc->last_bucket) {
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

/* Entry e gives the slot it owns its sum back. */
static void seen_fold(struct seen *sc, struct seen_ent *e)
{
	struct ctx *c = e->c;
	struct slot *s = &c->slot[c->own - 1];
	assert(c->own && s->bucket == e->bucket && s->u.owner == (uint32_t)(e - sc->t));
	s->u.d = e->sum;
	c->own = 0;
	if (e->rel > c->last_seen)
		c->last_seen = e->rel;
	e->bucket = SEEN_NO_BUCKET;
	sc->owning--;
}

void seen_release(struct seen *sc)
{
	for (size_t i = 0; sc->owning && i < sc->cap; i++)
		if (sc->t[i].c && sc->t[i].bucket != SEEN_NO_BUCKET)
			seen_fold(sc, &sc->t[i]);
}

/*
 * Line l through entry e when e does not own the slot of l's bucket: e gives
 * back what it owns; a counter whose slot for the bucket is open inline and
 * owned by nobody becomes e's (its sum moves into e, then l's value is added
 * there, the same addition in the same order as on the slot); anything else
 * takes accumulate_inline or aggr_accumulate (which add to an owned slot's
 * entry: every sample of a slot lands in one sum, in arrival order).
 */
static void seen_apply(struct aggr *a, struct seen_ent *e, const struct dsd_seen_line *l,
		       struct seen_clock t, int64_t now)
{
	struct seen *sc = &a->seen;
	struct ctx *c = e->c;
	if (e->bucket != SEEN_NO_BUCKET)
		seen_fold(sc, e);
	struct slot *s = c->type == METRIC_COUNT && !c->own ? inline_slot(c, t.bucket) : NULL;
	if (s) {
		e->sum = s->u.d;
		e->bucket = t.bucket;
		e->rel = t.rel;
		s->u.owner = (uint32_t)(e - sc->t);
		c->own = (uint8_t)(s - c->slot + 1);
		sc->owning++;
		if (t.rel > c->last_seen)
			c->last_seen = t.rel;
		count_add(&e->sum, l->value, e->rate);
		return;
	}
	if (accumulate_inline(a, c, &l->value, 1, l->explicit_sign, e->rate, t))
		return;
	struct dsd_metric m = { .type = (enum metric_type)l->type, .values = &l->value, .nvalues = 1,
				.explicit_sign = l->explicit_sign };
	aggr_accumulate(a, c, &m, e->rate, now);
}

size_t aggr_ingest_seen_run(struct aggr *a, const struct dsd_seen_line *l, size_t n, int64_t now)
{
	AGGR_INCR_CHECK(a, now);
	struct seen *sc = &a->seen;
	if (!sc->n)
		return 0;
	struct seen_clock t = seen_clock(a, now);
	size_t i = 0;
	for (; i < n; i++) {
		struct seen_ent *e = seen_find(sc, l[i].key);
		if (!e)
			break;
		if (e->bucket == t.bucket) {
			/* the usual case: a counter whose sum is here */
			count_add(&e->sum, l[i].value, e->rate);
			if (t.rel > e->rel)
				e->rel = t.rel;
			continue;
		}
		seen_apply(a, e, &l[i], t, now);
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

/*
 * A zeroed table of `bytes`. From 2 MiB on (10k cached lines and more) it is
 * 2 MiB-aligned and asked for transparent huge pages: lines hit entries at
 * random, and 512 pages of 4 KiB are far more than a first-level data TLB
 * holds (a miss is a nested page walk in a VM); one huge page covers 32768
 * entries (bench/RESULTS.md, eighth pass). Where THP is off, madvise fails
 * harmlessly. The table is written in full right away, so huge pages add no
 * RSS.
 */
static struct seen_ent *table_alloc(size_t bytes)
{
	const size_t huge = (size_t)2 << 20;
	struct seen_ent *t = aligned_alloc(bytes >= huge ? huge : alignof(struct seen_ent), bytes);
	if (!t)
		return NULL;
	if (bytes >= huge)
		(void)madvise(t, bytes, MADV_HUGEPAGE);
	memset(t, 0, bytes);
	return t;
}

/* Room for one more entry; false when full or ENOMEM. */
static bool seen_room(struct seen *sc)
{
	if (sc->n >= SEEN_MAX)
		return false;
	if ((sc->n + 1) * 2 > sc->cap) {
		struct seen old = *sc;
		sc->cap = sc->cap ? sc->cap * 2 : SEEN_MIN_CAP;
		sc->t = table_alloc(sc->cap * sizeof(*sc->t));
		if (!sc->t) {
			sc->t = old.t;
			sc->cap = old.cap;
			return false;
		}
		for (size_t i = 0; i < old.cap; i++) {
			struct seen_ent *o = &old.t[i];
			if (!o->c)
				continue;
			/* in the new order an entry can land further from
			 * home than seen_find looks: dropped (its line takes
			 * the full path and may be remembered again), after
			 * it gave back what it owns */
			struct seen_ent *e = slot_for(sc, o->k.a, true);
			if (e) {
				*e = *o;
				if (e->bucket != SEEN_NO_BUCKET)
					e->c->slot[e->c->own - 1].u.owner = (uint32_t)(e - sc->t);
			} else {
				if (o->bucket != SEEN_NO_BUCKET)
					seen_fold(&old, o);
				sc->n--;
			}
		}
		sc->owning = old.owning;
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
	*e = (struct seen_ent){ .k = k, .c = c, .rate = rate, .bucket = SEEN_NO_BUCKET };
	sc->n++;
}

void seen_clear(struct seen *sc)
{
	if (!sc->n)
		return;
	seen_release(sc);
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
