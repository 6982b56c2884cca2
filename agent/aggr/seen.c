/*
 * seen.c - the seen-line cache: a line whose exact (name, type, raw suffix)
 * bytes reached a context before is applied to that context directly, without
 * tag parsing, enrichment (mapper, namespace, global tags, host: override)
 * or the context lookup. All of those depend only on the name and the suffix
 * (and the config, which clears the cache), so the result is exactly the
 * full path's. See aggr_int.h (struct seen) for the bounds and invalidation.
 *
 * Caller: pipeline.c's parser callbacks (parse.h dsd_cache_ops) through
 * aggr_seen_prefetch and aggr_ingest_seen; aggr_ingest remembers a line when
 * it reaches an existing context; flush.c and aggr_reconfigure clear it.
 * Owns the entry table and the key bytes. Single-threaded, like the rest of
 * the aggregator.
 *
 * Cost of a hit: the key hash comes with the line (the parser computed it,
 * keyhash.h), one probe (usually one 32-byte entry), two short compares, the
 * accumulator update. What costs is memory latency, not instructions: the
 * parser hands each window of lines' hashes to aggr_seen_prefetch, which loads
 * their entries, then their keys and contexts, ahead of the lines.
 *
 * The hash is unseeded, so a sender could craft colliding lines: probes stop
 * after SEEN_PROBE_MAX slots (a miss takes the full path) and a line that
 * would sit further from home is not cached, so a lookup stays bounded.
 */
#include "aggr/aggr_int.h"
#include "parse/keyhash.h"

#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#define SEEN_MIN_CAP 1024

#ifdef __SSE2__
static inline bool eq16(const char *x, const char *y)
{
	__m128i a = _mm_loadu_si128((const __m128i *)(const void *)x);
	__m128i b = _mm_loadu_si128((const __m128i *)(const void *)y);
	return _mm_movemask_epi8(_mm_cmpeq_epi8(a, b)) == 0xffff;
}
#endif

static inline uint64_t key_hash(const struct dsd_metric *m)
{
	if (m->key_hash)
		return m->key_hash;
	return dsd_key_hash(m->type, m->name.p, m->name.n, m->raw_suffix.p, m->raw_suffix.n);
}

/* Equal lengths known: n bytes equal; 16 at a time with SSE2 (the last
 * block overlapping), else 8 at a time. */
static inline bool bytes_eq(const char *x, const char *y, size_t n)
{
	if (n < 8) {
		if (n >= 4)
			return kh_rd32(x) == kh_rd32(y) && kh_rd32(x + n - 4) == kh_rd32(y + n - 4);
		for (size_t i = 0; i < n; i++)
			if (x[i] != y[i])
				return false;
		return true;
	}
#ifdef __SSE2__
	if (n >= 16) {
		for (size_t i = 0; i + 16 < n; i += 16)
			if (!eq16(x + i, y + i))
				return false;
		return eq16(x + n - 16, y + n - 16);
	}
	return kh_rd64(x) == kh_rd64(y) && kh_rd64(x + n - 8) == kh_rd64(y + n - 8);
#else
	for (size_t i = 0; i + 8 < n; i += 8)
		if (kh_rd64(x + i) != kh_rd64(y + i))
			return false;
	return kh_rd64(x + n - 8) == kh_rd64(y + n - 8);
#endif
}

/* Lengths are at most SEEN_KEY_MAX (checked before any lookup). */
static inline uint32_t key_shape(const struct dsd_metric *m)
{
	return (uint32_t)(uint8_t)m->type | (uint32_t)m->name.n << 3 | (uint32_t)m->raw_suffix.n << 13;
}

static struct seen_ent *seen_find(const struct seen *sc, uint64_t h, const struct dsd_metric *m)
{
	if (!sc->n)
		return NULL;
	uint32_t shape = key_shape(m);
	size_t mask = sc->cap - 1;
	size_t i = (size_t)h & mask;
	for (unsigned probes = 0; sc->t[i].c && probes < SEEN_PROBE_MAX; probes++) {
		struct seen_ent *e = &sc->t[i];
		i = (i + 1) & mask;
		if (e->h != h || e->shape != shape)
			continue;
		const char *k = sc->keys + e->off;
		if (bytes_eq(k, m->name.p, m->name.n) &&
		    bytes_eq(k + m->name.n, m->raw_suffix.p, m->raw_suffix.n))
			return e;
	}
	return NULL;
}

/* aggr_accumulate for a counter or gauge whose bucket is already open in one
 * of the two inline slots (the usual case); false: take the general path. */
static inline bool accumulate_inline(struct aggr *a, struct ctx *c, const struct dsd_metric *m,
				     double rate, int64_t now)
{
	if (c->type != METRIC_COUNT && c->type != METRIC_GAUGE)
		return false;
	if (now != a->seen.last_now) {
		a->seen.last_now = now;
		a->seen.last_bucket = bucket_of(now);
	}
	int64_t b = a->seen.last_bucket;
	struct slot *s = c->slot[0].bucket == b ? &c->slot[0] :
			 c->slot[1].bucket == b ? &c->slot[1] : NULL;
	if (!s)
		return false;
	int64_t rel = now - a->epoch;
	if (rel > c->last_seen)
		c->last_seen = rel > INT32_MAX ? INT32_MAX : (int32_t)rel;
	if (c->type == METRIC_COUNT) {
		for (size_t i = 0; i < m->nvalues; i++) /* v / 1 == v: skip the division */
			s->u.d += rate == 1.0 ? m->values[i] : m->values[i] / rate;
		return true;
	}
	bool delta = a->cfg->gauge_deltas && m->explicit_sign;
	for (size_t i = 0; i < m->nvalues; i++)
		s->u.d = delta ? s->u.d + m->values[i] : m->values[i];
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
	/* the entries have arrived: the key bytes and contexts they point to */
	for (size_t i = 0; i < n; i++) {
		const struct seen_ent *e = &sc->t[h[i] & mask];
		if (e->c && e->h == h[i]) {
			__builtin_prefetch(sc->keys + e->off);
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
	uint64_t h = key_hash(m);
	struct seen_ent *e = seen_find(&a->seen, h, m);
	if (!e)
		return false;
	a->st.samples_in += m->nvalues;
	a->st.seen_hits++;
	if (!accumulate_inline(a, e->c, m, e->rate, now))
		aggr_accumulate(a, e->c, m, e->rate, now);
	return true;
}

/* The free slot for h; with `bounded`, NULL when it lies SEEN_PROBE_MAX or
 * more slots from home (seen_find would not look there). */
static struct seen_ent *slot_for(struct seen *sc, uint64_t h, bool bounded)
{
	size_t mask = sc->cap - 1, i = (size_t)h & mask;
	for (unsigned probes = 0; sc->t[i].c; probes++) {
		if (bounded && probes + 1 >= SEEN_PROBE_MAX)
			return NULL;
		i = (i + 1) & mask;
	}
	return &sc->t[i];
}

/* Room for one more entry and klen more key bytes; false when full or ENOMEM. */
static bool seen_room(struct seen *sc, size_t klen)
{
	if (sc->n >= SEEN_MAX || sc->klen + klen > SEEN_KEY_BYTES)
		return false;
	if (sc->klen + klen > sc->kcap) {
		size_t nc = sc->kcap ? sc->kcap : 16384;
		while (nc < sc->klen + klen)
			nc *= 2;
		char *nk = realloc(sc->keys, nc);
		if (!nk)
			return false;
		sc->keys = nk;
		sc->kcap = nc;
	}
	if ((sc->n + 1) * 2 > sc->cap) {
		struct seen old = *sc;
		sc->cap = sc->cap ? sc->cap * 2 : SEEN_MIN_CAP;
		sc->t = calloc(sc->cap, sizeof(*sc->t));
		if (!sc->t) {
			sc->t = old.t;
			sc->cap = old.cap;
			return false;
		}
		for (size_t i = 0; i < old.cap; i++)
			if (old.t[i].c)
				*slot_for(sc, old.t[i].h, false) = old.t[i];
		free(old.t);
	}
	return true;
}

void seen_remember(struct seen *sc, const struct dsd_metric *m, struct ctx *c, double rate)
{
	size_t klen = m->name.n + m->raw_suffix.n;
	if (!m->cacheable || klen > SEEN_KEY_MAX || sc->n >= SEEN_MAX)
		return;
	uint64_t h = key_hash(m);
	if (seen_find(sc, h, m))
		return;
	if (!seen_room(sc, klen))
		return;
	struct seen_ent *e = slot_for(sc, h, true);
	if (!e)
		return; /* a crowded cluster (colliding lines): not cached */
	*e = (struct seen_ent){ .h = h, .c = c, .rate = rate, .off = (uint32_t)sc->klen,
				.shape = key_shape(m) };
	memcpy(sc->keys + sc->klen, m->name.p, m->name.n);
	if (m->raw_suffix.n)
		memcpy(sc->keys + sc->klen + m->name.n, m->raw_suffix.p, m->raw_suffix.n);
	sc->klen += klen;
	sc->n++;
}

void seen_clear(struct seen *sc)
{
	if (!sc->n)
		return;
	memset(sc->t, 0, sc->cap * sizeof(*sc->t));
	sc->n = 0;
	sc->klen = 0;
}

void seen_done(struct seen *sc)
{
	free(sc->t);
	free(sc->keys);
	memset(sc, 0, sizeof(*sc));
}

size_t seen_bytes(const struct seen *sc)
{
	return sc->cap * sizeof(*sc->t) + sc->kcap;
}
