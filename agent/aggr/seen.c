/*
 * seen.c - the seen-line cache: a line whose exact (name, type, raw suffix)
 * reached a context before is applied to that context directly, without
 * tag parsing, enrichment (mapper, namespace, global tags, host: override)
 * or the context lookup. All of those depend only on the name and the suffix
 * (and the config, which clears the cache), so the result is exactly the
 * full path's. See aggr_int.h (struct seen) for the bounds and invalidation.
 *
 * Caller: the ingest loop (ingest.c) through aggr_seen_prefetch_entries/
 * _contexts, aggr_ingest_seen_run and aggr_ingest_seen; aggr_ingest
 * remembers a line when it reaches an existing context; flush.c and
 * aggr_reconfigure clear it.
 * Owns the entry table. Single-threaded, like the rest of the aggregator.
 *
 * A line is identified by its key alone (keyhash.h: seeded, 128 bits, the
 * parser computed it while splitting the line; the entry keeps 96 of them,
 * aggr_int.h); no key bytes are stored or compared. That is what makes a hit
 * cheap: one probe (usually one 32-byte entry holding the key, the context
 * and the sum it owns), then the accumulator update. Comparing bytes would
 * load a kept copy of the key: a third cache line per line, and the one most
 * likely to miss.
 *
 * Owned slots: a counter's hit would still load its context (a 64-byte
 * context: one more cache line) to add to the bucket's slot. Instead the
 * entry takes the slot over: it keeps the slot's sum and adds to it there,
 * so that a counter hit touches the entry's cache line only. Only an entry
 * whose line has no sample rate (rate 1) owns; a rated line's entry keeps
 * its rate instead.
 * The context records which inline slot is owned (ctx.own) and the slot
 * which entry owns it (u.owner), and every other writer of that slot (the
 * full path, another spelling of the line with its own entry,
 * aggr_ingest_seen) adds to the owner's sum (count_sum): each sample still
 * lands in one sum, in arrival order, so the result is the full path's to the
 * last bit. The sum goes back to the slot
 * (seen_fold) when the entry meets another bucket, before a collect reads
 * the slots (aggr_collect_begin: seen_release), before the table forgets
 * (seen_clear) or drops the entry (growth), never later: ingest between
 * the steps of a collect owns open buckets only, which collect does not take,
 * and a context with an open bucket does not expire.
 *
 * What remains costs memory latency, not instructions: the ingest loop hands
 * each window of lines' key lanes to aggr_seen_prefetch_entries a window
 * ahead, then to aggr_seen_prefetch_contexts (the contexts of the entries
 * that do not own the current bucket) right before the lines.
 *
 * Probes stop after SEEN_PROBE_MAX slots (a miss takes the full path) and a
 * line that would sit further from home is not cached, so a lookup stays
 * bounded even if many keys shared their low bits. The table is kept at most
 * a quarter full: a key away from home costs an unpredictable branch and
 * another entry's cache line.
 */
#include "aggr/aggr_int.h"
#include "parse/keyhash.h"
#include "core/mem.h"

#include <assert.h>
#include <stdalign.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

/* The first table: 2 MiB, one huge page (table_alloc), room for 16,384 lines
 * at a quarter full. A smaller first table would double several times during
 * the first burst into a fresh agent, each doubling faulting in fresh pages
 * while the socket queue fills (core/mem.h). */
#define SEEN_MIN_CAP 65536

static inline struct dsd_key key_of(const struct dsd_metric *m)
{
	if (m->key.a | m->key.b)
		return m->key;
	return dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p, m->raw_suffix.n);
}

/* 0 when e holds key k (the 96 bits it keeps), else nonzero. */
static inline uint64_t key_diff(const struct seen_ent *e, struct dsd_key k)
{
	return (e->ka ^ k.a) | (uint64_t)(e->kb ^ (uint32_t)k.b);
}

/*
 * The entry for k, or NULL. The slot after home is picked by arithmetic when
 * home holds another key (the branch on it is unpredictable), then checked
 * once; further out, the probe goes on from home while slots are taken.
 */
static inline struct seen_ent *seen_find(const struct seen *sc, struct dsd_key k)
{
	if (!sc->n)
		return NULL;
	size_t mask = sc->cap - 1;
	size_t i = (size_t)k.a & mask;
	size_t j = (i + (size_t)(sc->t[i].ka != k.a)) & mask;
	if (__builtin_expect((key_diff(&sc->t[j], k) == 0) & (sc->t[j].c != NULL), 1))
		return &sc->t[j];
	for (unsigned probes = 0; sc->t[i].c && probes < SEEN_PROBE_MAX; probes++) {
		struct seen_ent *e = &sc->t[i];
		if (key_diff(e, k) == 0)
			return e;
		i = (i + 1) & mask;
	}
	return NULL;
}

/* The entry's sample rate. */
static inline double ent_rate(const struct seen_ent *e)
{
	return e->rel == SEEN_RATED ? e->sum : 1.0;
}

/* Whether e owns a slot (of some bucket). */
static inline bool ent_owns(const struct seen_ent *e)
{
	return e->rel > SEEN_RATED;
}

/* Whether e owns the slot of the bucket brel (bucket - epoch) names: its
 * latest time lies in that bucket. False for SEEN_NO_OWN and for an entry
 * that owns nothing (its rel is far below any bucket that can own). */
static inline bool ent_owns_bucket(const struct seen_ent *e, int64_t brel)
{
	return (uint64_t)((int64_t)e->rel - brel) < AGGR_BUCKET;
}

/* What every sample received at `now` shares: its bucket relative to the
 * epoch (brel: SEEN_NO_OWN when an entry cannot own it) and its time
 * relative to the epoch (ctx.last_seen), computed once per call. */
struct seen_clock {
	int64_t brel;
	int32_t rel;
};

/* No entry owns this bucket: its times do not fit an entry's rel exactly
 * (far from the epoch), so none takes it over. */
#define SEEN_NO_OWN (INT64_MAX / 4)

static inline struct seen_clock seen_clock(struct aggr *a, int64_t now)
{
	struct seen *sc = &a->seen;
	if (now != sc->last_now) {
		sc->last_now = now;
		int64_t b = bucket_of(now) - a->epoch;
		sc->last_brel = b > SEEN_RATED + AGGR_BUCKET && b < INT32_MAX - 2 * AGGR_BUCKET
					? b
					: SEEN_NO_OWN;
	}
	int64_t rel = now - a->epoch;
	return (struct seen_clock){ sc->last_brel,
				    rel > INT32_MAX ? INT32_MAX : rel < INT32_MIN ? INT32_MIN : (int32_t)rel };
}

/* The inline slot of c open for the bucket t.brel names, or NULL (also
 * when that bucket cannot be owned: SEEN_NO_OWN, or it would not fit a
 * slot, aggr_accumulate refuses it). */
static inline union acc *inline_slot(struct ctx *c, struct seen_clock t)
{
	if (t.brel == SEEN_NO_OWN)
		return NULL;
	int32_t b = (int32_t)t.brel;
	return c->bucket[0] == b ? &c->u[0] : c->bucket[1] == b ? &c->u[1] : NULL;
}

/* A counter sample added to a sum, as add_value does (v * (1/1) == v: the
 * division is skipped). */
static inline void count_add(double *sum, double v, double rate)
{
	*sum += rate == 1.0 ? v : v * (1.0 / rate); /* as add_value */
}

/* aggr_accumulate for a counter or gauge whose bucket is already open in one
 * of the two inline slots (the usual case); false: take the general path. */
static inline bool accumulate_inline(struct aggr *a, struct ctx *c, const double *v, size_t nv,
				     bool explicit_sign, double rate, struct seen_clock t)
{
	if (c->type != METRIC_COUNT && c->type != METRIC_GAUGE)
		return false;
	union acc *u = inline_slot(c, t);
	if (!u)
		return false;
	if (t.rel > c->last_seen)
		c->last_seen = t.rel;
	if (c->type == METRIC_COUNT) {
		double *sum = count_sum(a, c, u);
		for (size_t i = 0; i < nv; i++)
			count_add(sum, v[i], rate);
		return true;
	}
	bool delta = a->cfg->gauge_deltas && explicit_sign;
	for (size_t i = 0; i < nv; i++)
		u->d = delta ? u->d + v[i] : v[i];
	c->x.last = u->d;
	c->has_last = 1;
	return true;
}

void aggr_seen_prefetch_entries(struct aggr *a, const uint64_t *h, size_t n)
{
	const struct seen *sc = &a->seen;
	if (!sc->n)
		return;
	size_t mask = sc->cap - 1;
	for (size_t i = 0; i < n; i++)
		__builtin_prefetch(&sc->t[h[i] & mask]);
}

/* The entries have arrived: the contexts they point to, unless the entry
 * holds the sum of the bucket samples are going to (likely). Home, or the
 * slot after it when home holds another key (picked by arithmetic, as in
 * seen_find). */
void aggr_seen_prefetch_contexts(struct aggr *a, const uint64_t *h, size_t n)
{
	const struct seen *sc = &a->seen;
	if (!sc->n)
		return;
	size_t mask = sc->cap - 1;
	for (size_t i = 0; i < n; i++) {
		size_t j = (size_t)h[i] & mask;
		j = (j + (size_t)(sc->t[j].ka != h[i])) & mask;
		const struct seen_ent *e = &sc->t[j];
		if (e->c && e->ka == h[i] && !ent_owns_bucket(e, sc->last_brel)) {
			__builtin_prefetch(e->c); /* the context: one cache line */
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
	if (!accumulate_inline(a, e->c, m->values, m->nvalues, m->explicit_sign, ent_rate(e),
			       seen_clock(a, now)))
		aggr_accumulate(a, e->c, m, ent_rate(e), now);
	return true;
}

/* Entry e gives the slot it owns its sum back. */
static void seen_fold(struct seen *sc, struct seen_ent *e)
{
	struct ctx *c = e->c;
	union acc *u = &c->u[c->own - 1];
	assert(ent_owns(e) && c->own && u->owner == (uint32_t)(e - sc->t));
	u->d = e->sum;
	c->own = 0;
	if (e->rel > c->last_seen)
		c->last_seen = e->rel;
	e->rel = SEEN_FREE;
	e->sum = 0;
	sc->owning--;
}

void seen_release(struct seen *sc)
{
	for (size_t i = 0; sc->owning && i < sc->cap; i++)
		if (sc->t[i].c && ent_owns(&sc->t[i]))
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
	if (ent_owns(e))
		seen_fold(sc, e);
	union acc *u = c->type == METRIC_COUNT && !c->own && e->rel == SEEN_FREE
			       ? inline_slot(c, t)
			       : NULL;
	if (u) {
		e->sum = u->d;
		e->rel = t.rel;
		u->owner = (uint32_t)(e - sc->t);
		c->own = (uint8_t)(u - c->u + 1);
		sc->owning++;
		if (t.rel > c->last_seen)
			c->last_seen = t.rel;
		count_add(&e->sum, l->value, 1.0);
		return;
	}
	double rate = ent_rate(e);
	if (accumulate_inline(a, c, &l->value, 1, l->explicit_sign, rate, t))
		return;
	struct dsd_metric m = { .type = (enum metric_type)l->type, .values = &l->value, .nvalues = 1,
				.explicit_sign = l->explicit_sign };
	aggr_accumulate(a, c, &m, rate, now);
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
		if (ent_owns_bucket(e, t.brel)) {
			/* the usual case: a counter whose sum is here (an
			 * owner's rate is 1) */
			count_add(&e->sum, l[i].value, 1.0);
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
 * A zeroed table of `bytes`. From 2 MiB on (every table since SEEN_MIN_CAP is
 * 2 MiB; the small-table branch stays for a smaller first size) it is
 * 2 MiB-aligned and asked for transparent huge pages: lines hit entries at
 * random, and 512 pages of 4 KiB are far more than a first-level data TLB
 * holds (a miss is a nested page walk in a VM); one huge page covers 65536
 * entries. Where THP is off, madvise fails
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
	mem_prefault(t, bytes);
	memset(t, 0, bytes);
	return t;
}

/* Room for one more entry; false when full or ENOMEM. */
static bool seen_room(struct seen *sc)
{
	if (sc->n >= SEEN_MAX)
		return false;
	if ((sc->n + 1) * 4 > sc->cap) {
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
			struct seen_ent *e = slot_for(sc, o->ka, true);
			if (e) {
				*e = *o;
				if (ent_owns(e))
					e->c->u[e->c->own - 1].owner = (uint32_t)(e - sc->t);
			} else {
				if (ent_owns(o))
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
	*e = (struct seen_ent){ .ka = k.a, .kb = (uint32_t)k.b, .c = c,
				.rel = rate == 1.0 ? SEEN_FREE : SEEN_RATED, .sum = rate == 1.0 ? 0 : rate };
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

void seen_reserve(struct seen *sc)
{
	if (sc->cap)
		return;
	struct seen_ent *t = table_alloc(SEEN_MIN_CAP * sizeof(*t));
	if (!t)
		return; /* allocated on first use instead */
	sc->t = t;
	sc->cap = SEEN_MIN_CAP;
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
