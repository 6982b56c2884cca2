/*
 * flush.c - aggr_collect (the pipeline side of a flush: closed buckets moved
 * out, counter zero-fill, expiry), aggr_emit (outs merged and turned into a
 * batch, any thread), aggr_out_free, aggr_flush (the three for one aggr) and
 * aggr_sketch_to_series. See aggr.h; data layout in aggr_int.h.
 *
 * Collect walks every context once, in slab (memory) order, in steps
 * (aggr_collect_begin/step/end; aggr_collect is the three with one step over
 * everything): closed bucket slots are moved into the out's record array
 * (the accumulator pointer, no copy), counters get a zero record for closed
 * buckets without samples until expiry_seconds after their last sample, and
 * idle contexts are destroyed as soon as they are visited (removed from the
 * table, seen-line cache cleared before the step returns); strings and tag
 * sets whose last reference goes then are handed to the out, not freed.
 * Cost O(contexts), no string copies; a step O(its max_contexts).
 */
#include "aggr/aggr_int.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct collector {
	struct aggr *a;
	struct aggr_out *o;
	int64_t now, lo, hi;	/* zero-fill range: buckets lo, lo+10, ... < hi */
	int64_t now_rel;	/* now - aggr.epoch: the slots' scale */
	int64_t upto;		/* flushed_upto after this collect */
	size_t zrecs;		/* buckets in the zero-fill range */
	bool final;
	bool full;		/* the record array could not grow: stop taking */
};

static struct aggr_rec *rec_add(struct collector *k, const struct ctx *c, int64_t bucket)
{
	struct aggr_rec *r = &k->o->r[k->o->n++];
	r->name = c->name;
	r->host = c->host;
	r->tags = c->tags;
	r->bucket = bucket;
	r->type = c->type;
	r->sec = 0;
	r->flags = 0;
	return r;
}

/* Moves the accumulator of the slot (bucket *b, u) into a record and frees
 * the slot. */
static void take(struct collector *k, const struct ctx *c, int32_t *b, union acc *u)
{
	struct aggr *a = k->a;
	/* begin gave every owned sum back; ingest since owns open buckets only */
	assert(!(c->type == METRIC_COUNT && c->own && u == &c->u[c->own - 1]));
	struct aggr_rec *r = rec_add(k, c, a->epoch + *b);
	r->u = *u;
	if (c->type == METRIC_GAUGE) {
		/* The context keeps one receive time (its last sample): exact when
		 * it falls in this bucket, else this bucket's last second. */
		int64_t t = (int64_t)c->last_seen - *b;
		r->sec = (uint8_t)(t >= 0 && t < AGGR_BUCKET ? t : AGGR_BUCKET - 1);
	}
	if (acc_on_heap(c->type))
		a->acc_bytes -= aggr_acc_bytes(c->type, u);
	*b = SLOT_FREE;
	u->d = 0;
}

/* Room for every record one context can produce. */
static bool reserve(struct collector *k, const struct ctx *c)
{
	struct aggr_out *o = k->o;
	size_t need = 2 + (size_t)c->nmore + (c->type == METRIC_COUNT ? k->zrecs : 0);
	if (o->cap - o->n >= need)
		return true;
	size_t nc = o->cap + o->cap / 2 + need;
	struct aggr_rec *nr = realloc(o->r, nc * sizeof(*nr));
	if (!nr)
		return false;
	o->r = nr;
	o->cap = nc;
	return true;
}

/* Counter buckets in the zero-fill range: the sum, or 0 while the counter
 * is young enough (bucket >= first bucket, bucket < last sample + expiry). */
static void counter_range(struct collector *k, struct ctx *c)
{
	int64_t exp = k->a->cfg->expiry_seconds;
	for (int64_t b = k->lo; b < k->hi; b += AGGR_BUCKET) {
		int32_t rb;
		union acc *u = bucket_rel(k->a, b, &rb) ? ctx_slot_find(k->a, c, rb) : NULL;
		if (u)
			take(k, c, slot_bucket(c, u), u);
		else if (b >= c->x.born && b < ctx_last_seen(k->a, c) + exp)
			rec_add(k, c, b)->u.d = 0;
	}
}

/* The context table key, as aggr_ingest computes it (the pools keep each
 * string's and tag set's hash). */
static uint64_t ctx_key_hash(const struct ctx *c)
{
	return mix64(mix64(mix64(c->name->hash, c->host->hash), c->tags->hash), c->type);
}

static bool any_slot(const struct ctx *c)
{
	return c->bucket[0] != SLOT_FREE || c->bucket[1] != SLOT_FREE || c->nmore;
}

/* Whether the slot of bucket rb is in use and closed (in 64 bits: the last
 * bucket's end, rb + 10, can be past INT32_MAX). */
static bool closed(const struct collector *k, int32_t rb)
{
	return rb != SLOT_FREE && (k->final || (int64_t)rb + AGGR_BUCKET <= k->now_rel);
}

/* Takes c's closed overflow slots, keeping the open ones in order. */
static void collect_more(struct collector *k, struct ctx *c)
{
	struct more *m = aggr_more(k->a, c);
	uint16_t keep = 0;
	for (uint16_t i = 0; i < c->nmore; i++) {
		struct slot *s = &m->s[i];
		if (closed(k, s->bucket))
			take(k, c, &s->bucket, &s->u);
		if (s->bucket != SLOT_FREE)
			m->s[keep++] = *s;
	}
	if (keep != c->nmore) {
		uint16_t old_n = c->nmore;
		c->nmore = keep;
		aggr_more_shrunk(k->a, c, m, old_n);
	}
}

/* Collects one context; returns true when it has expired. */
static bool collect_ctx(struct collector *k, struct ctx *c)
{
	struct aggr *a = k->a;
	if (k->full || (k->full = !reserve(k, c)))
		return false; /* ENOMEM: its buckets wait for the next collect */
	if (c->type == METRIC_COUNT)
		counter_range(k, c);
	for (int i = 0; i < 2; i++)
		if (closed(k, c->bucket[i]))
			take(k, c, &c->bucket[i], &c->u[i]);
	if (c->nmore)
		collect_more(k, c);
	if (k->final || any_slot(c))
		return false;
	if (c->type == METRIC_COUNT)
		return k->upto >= ctx_last_seen(a, c) + a->cfg->expiry_seconds;
	return k->now - ctx_last_seen(a, c) >= a->cfg->context_expiry_seconds;
}

static void collector_init(struct collector *k, struct aggr *a, struct aggr_out *o, int64_t now,
			   bool final)
{
	memset(k, 0, sizeof(*k));
	k->a = a;
	k->o = o;
	k->now = now;
	k->now_rel = now - a->epoch;
	k->final = final;
	k->hi = bucket_of(now);
	k->lo = a->have_upto ? a->flushed_upto : k->hi - AGGR_BUCKET;
	int64_t span = bucket_of(a->cfg->expiry_seconds > 0 ? a->cfg->expiry_seconds : 0) +
		       2 * AGGR_BUCKET;
	if (k->hi - k->lo > span)
		k->lo = k->hi - span; /* after a long stall: only what zero-fill can need */
	k->zrecs = k->hi > k->lo ? (size_t)((k->hi - k->lo) / AGGR_BUCKET) : 0;
	k->upto = !a->have_upto || k->hi > a->flushed_upto ? k->hi : a->flushed_upto;
}

static struct aggr_out *out_new(size_t nrec)
{
	struct aggr_out *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->cap = nrec;
	o->r = malloc(nrec * sizeof(*o->r));
	o->pending = batch_new();
	if (!o->r || !o->pending) {
		aggr_out_free(o);
		return NULL;
	}
	return o;
}

/* Destroys an expired context at once (slab index idx): its table entry is
 * removed, its strings and tag sets go to o->dead. Returns false when there
 * is no room there: it stays, and the next collect retries. */
static bool expire(struct aggr *a, struct aggr_out *o, struct ctx *c, uint32_t idx)
{
	size_t need = 3 + (size_t)c->tags->n;
	if (o->dead_cap - o->ndead < need) {
		size_t nc = o->dead_cap * 2 + need + 64;
		void **nd = realloc(o->dead, nc * sizeof(*nd));
		if (!nd)
			return false;
		o->dead = nd;
		o->dead_cap = nc;
	}
	if (ctab_remove(&a->ctxs, ctab_slot(ctx_key_hash(c), idx)) < 0)
		return false; /* cannot happen: the key is recomputed exactly */
	aggr_ctx_destroy(a, c, idx, o);
	return true;
}

/* ---- the incremental collect ----
 *
 * State between begin and end: the collector (its now, zero-fill range and
 * upto are fixed at begin) and a cursor, the next slab index to visit. Each
 * step visits slab positions cursor.. in memory order, CTX_DEAD ones
 * included (they count towards max_contexts, so a step's cost is bounded by
 * its max whatever the free list holds), up to the slab's size at begin (so
 * the walk ends however fast contexts are created). Why interleaved ingest
 * is safe:
 * - Ingest between steps has now >= the begin's now, so its samples go to
 *   buckets >= bucket_of(begin now), which collect never treats as closed
 *   (bucket + 10 > now): a context visited after it received them keeps
 *   them, one visited before holds them too. Only closed buckets are taken.
 * - A context created between steps goes to a freed slab slot or is
 *   appended (never visited). Below the cursor it is not visited; in a freed
 *   slot above it, it is, and finds
 *   no closed bucket, no zero-fill (born >= the zero-fill range's end) and
 *   is not expired (it has an open bucket).
 * - A context expired by a step is removed from the context table and
 *   destroyed in that step and the seen-line cache cleared before the step
 *   returns: an ingest of the same key after it creates a fresh context,
 *   and no cache entry points at the freed one. Its last records (a
 *   counter's zero-fill) are already in the out.
 * - The pending batch is swapped at begin: timestamped points, events and
 *   checks received after begin go to the next collect.
 * - flushed_upto, and freeing the slab when no context is left, happen at
 *   end (and the slab only if still no context then); contexts_expired and
 *   acc_bytes are updated by the step that expires or takes.
 * - final (shutdown): the agent stops receiving before it collects, so no
 *   ingest comes between the steps of a final collect; one that did would
 *   land in this out or the next depending on the cursor.
 * What differs from a one-shot collect followed by the same ingest: a
 * context due to expire that receives a sample before its step visits it is
 * not expired (one context, not an expired one and a fresh one); it keeps
 * its gauge-delta base, and a counter silent past expiry_seconds then gets
 * zero records for its closed silent buckets of this collect (at most the
 * buckets since the previous collect); until visited, contexts due to
 * expire still count towards the context caps. A collect lasts milliseconds,
 * so this concerns contexts revived in exactly that window.
 */
struct aggr_incr {
	struct collector k;
	size_t cursor;		/* next slab index to visit */
	size_t end;		/* slab size at begin: contexts appended later are
				 * not visited (else a step smaller than the rate of
				 * new contexts would never reach the end) */
	size_t gone;		/* contexts expired by this collect */
};

int aggr_collect_begin(struct aggr *a, int64_t now, bool final)
{
	assert(!a->incr); /* one collect at a time */
	struct aggr_incr *in = malloc(sizeof(*in));
	struct aggr_out *o = out_new(a->ctxs.n + 16);
	if (!in || !o) {
		free(in);
		aggr_out_free(o);
		return -ENOMEM;
	}
	/* counters' sums held by seen entries back into their slots: collect
	 * reads slots and last_seen (ingest between steps only owns open
	 * buckets, which collect does not take) */
	seen_release(&a->seen);
	struct batch *b = a->pending; /* swapped: the fresh batch stays with the aggr */
	a->pending = o->pending;
	o->pending = b;
	a->npending = 0;
	collector_init(&in->k, a, o, now, final);
	in->cursor = 0;
	in->end = a->slab.nchunks ? (a->slab.nchunks - 1) * CTX_CHUNK + a->slab.used : 0;
	in->gone = 0;
	a->incr = in;
	a->incr_now = now;
	return 0;
}

bool aggr_collect_step(struct aggr *a, size_t max_contexts)
{
	struct aggr_incr *in = a->incr;
	assert(in);
	struct ctx_slab *sl = &a->slab;
	size_t total = in->end; /* the slab only grows until end */
	size_t gone = 0;
	while (max_contexts && in->cursor < total) {
		size_t ch = in->cursor / CTX_CHUNK, j = in->cursor % CTX_CHUNK;
		size_t lim = CTX_CHUNK - j < max_contexts ? CTX_CHUNK : j + max_contexts;
		if (lim > total - ch * CTX_CHUNK)
			lim = total - ch * CTX_CHUNK;
		struct ctx *chunk = sl->chunks[ch];
		max_contexts -= lim - j;
		in->cursor += lim - j;
		for (; j < lim; j++) {
			struct ctx *c = &chunk[j];
			if (c->type != CTX_DEAD && collect_ctx(&in->k, c) &&
			    expire(a, in->k.o, c, (uint32_t)(ch * CTX_CHUNK + j)))
				gone++;
		}
	}
	if (gone) {
		seen_clear(&a->seen); /* its entries may point to freed contexts */
		a->st.contexts_expired += gone;
		in->gone += gone;
	}
	return in->cursor >= total;
}

struct aggr_out *aggr_collect_end(struct aggr *a)
{
	struct aggr_incr *in = a->incr;
	assert(in);
	struct aggr_out *o = in->k.o;
	if (!a->ctxs.n) {
		seen_clear(&a->seen);
		aggr_slab_done(&a->slab);
	}
	if (in->k.full) /* the rest keep their buckets; their zero-fills are lost */
		a->st.dropped[AGGR_DROP_NOMEM]++;
	a->flushed_upto = in->k.upto;
	a->have_upto = true;
	free(in);
	a->incr = NULL;
	return o;
}

void aggr_incr_abort(struct aggr *a)
{
	if (!a->incr)
		return;
	aggr_out_free(a->incr->k.o);
	free(a->incr);
	a->incr = NULL;
}

struct aggr_out *aggr_collect(struct aggr *a, int64_t now, bool final)
{
	if (aggr_collect_begin(a, now, final) < 0)
		return NULL;
	aggr_collect_step(a, SIZE_MAX);
	return aggr_collect_end(a);
}

struct batch *aggr_flush(struct aggr *a, int64_t now, bool final)
{
	assert(!a->incr);
	struct aggr_out *o = aggr_collect(a, now, final);
	if (!o)
		return NULL;
	struct aggr_emit_stats st;
	struct batch *b = aggr_emit(a->cfg, &o, 1, now, false, &st);
	if (!b) {
		a->st.dropped[AGGR_DROP_NOMEM] += o->n;
		aggr_out_free(o);
		return NULL;
	}
	aggr_out_free(o);
	a->st.series_flushed += st.series;
	a->st.sketches_flushed += st.sketches;
	a->st.dropped[AGGR_DROP_NOMEM] += st.nomem;
	a->st.dropped[AGGR_DROP_NON_FINITE] += st.nonfinite;
	return b;
}

/* ---- aggr_emit and aggr_out_free ----
 *
 * Caller: aggr_flush (n = 1, on the aggr's thread) and agent.c's flush (any
 * thread, n = the pipeline count, while the pipelines keep receiving).
 * Reads only the bytes, len and hash of the interned strings and the n, hash
 * and tags[] of the tag sets the records point to; never an aggr.
 *
 * Merge (n > 1): one open-addressing table over every record of every out,
 * keyed by (type, name, host, tag set, bucket) compared by content; a record
 * equal to an earlier out's is folded into it and flagged REC_MERGED. Then
 * every record left is emitted in out order, each out's records in collect
 * order (contexts in slab order, each context's buckets ascending): strings
 * copied into the batch once per run of records of the same context, tags
 * sorted by bytes.
 */

struct emitter {
	const struct aggr_config *cfg;
	struct batch *b;
	int pct[HIST_MAX_PCT];
	size_t npct;
	const struct istr *host_key;	/* one-entry cache of the copied host */
	const char *host;
	const struct aggr_rec *key;	/* the record tmpl was made for */
	struct series tmpl;		/* its copied name/host/tags */
	bool have_tmpl;
	uint64_t nonfinite;		/* values not emitted: not finite */
};

static int str_qcmp(const void *x, const void *y)
{
	return strcmp(*(const char *const *)x, *(const char *const *)y);
}

static void sort_strs(const char **t, size_t n)
{
	if (n > 8) {
		qsort(t, n, sizeof(*t), str_qcmp);
		return;
	}
	for (size_t i = 1; i < n; i++) {
		const char *x = t[i];
		size_t j = i;
		while (j > 0 && strcmp(t[j - 1], x) > 0) {
			t[j] = t[j - 1];
			j--;
		}
		t[j] = x;
	}
}

/* Copies the record's name, host and tags into the batch, once for a run of
 * records with the same interned name, host and tag set. */
static int make_tmpl(struct emitter *e, const struct aggr_rec *r)
{
	if (e->have_tmpl && e->key->name == r->name && e->key->host == r->host &&
	    e->key->tags == r->tags)
		return 0;
	e->have_tmpl = false;
	struct batch *b = e->b;
	if (e->host_key != r->host) {
		e->host = batch_str(b, istr_sv(r->host));
		e->host_key = e->host ? r->host : NULL;
	}
	const struct tagset *ts = r->tags;
	const char **t = arena_alloc_align(&b->arena, (ts->n ? ts->n : 1) * sizeof(*t), sizeof(*t));
	const char *name = batch_str(b, istr_sv(r->name));
	if (!t || !name || !e->host)
		return -ENOMEM;
	for (uint32_t i = 0; i < ts->n; i++)
		if (!(t[i] = batch_str(b, istr_sv(ts->tags[i]))))
			return -ENOMEM;
	sort_strs(t, ts->n);
	e->tmpl = (struct series){ .name = name, .host = e->host, .tags = t, .ntags = ts->n };
	e->key = r;
	e->have_tmpl = true;
	return 0;
}

static int emit_value(struct emitter *e, const struct aggr_rec *r, double v)
{
	int rc = make_tmpl(e, r);
	if (rc < 0)
		return rc;
	struct series s = e->tmpl;
	s.ts = r->bucket;
	if (r->type == METRIC_COUNT) {
		s.kind = SERIES_RATE;
		s.interval = AGGR_BUCKET;
		s.value = v / AGGR_BUCKET;
	} else {
		s.kind = SERIES_GAUGE;
		s.interval = 0;
		s.value = v;
	}
	if (!isfinite(s.value)) {
		e->nonfinite++;
		return 0;
	}
	return batch_add_series(e->b, &s);
}

int aggr_sketch_point(struct batch *b, const struct ddsketch *sk, struct sketch_point *p)
{
	int32_t *keys = arena_alloc(&b->arena, (sk->nbins + 1) * sizeof(*keys));
	uint32_t *counts = arena_alloc(&b->arena, (sk->nbins + 1) * sizeof(*counts));
	if (!keys || !counts)
		return -ENOMEM;
	for (uint32_t i = 0; i < sk->nbins; i++) {
		keys[i] = sk->bins[i].key;
		counts[i] = sk->bins[i].n;
	}
	p->cnt = (int64_t)sk->cnt;
	p->min = sk->min;
	p->max = sk->max;
	p->sum = sk->sum;
	p->avg = sk->sum / (double)sk->cnt;
	p->nbins = sk->nbins;
	p->keys = keys;
	p->counts = counts;
	return 0;
}

static int emit_sketch(struct emitter *e, const struct aggr_rec *r)
{
	const struct ddsketch *sk = r->u.sk;
	if (sk->cnt == 0)
		return 0;
	if (!ddsketch_finite(sk)) {
		e->nonfinite++;
		return 0;
	}
	int rc = make_tmpl(e, r);
	if (rc < 0)
		return rc;
	struct sketch_point p = {
		.name = e->tmpl.name, .host = e->tmpl.host, .tags = e->tmpl.tags,
		.ntags = e->tmpl.ntags, .ts = r->bucket,
	};
	if ((rc = aggr_sketch_point(e->b, sk, &p)) < 0)
		return rc;
	return batch_add_sketch(e->b, &p);
}

static int emit_rec(struct emitter *e, const struct aggr_rec *r)
{
	switch (r->type) {
	case METRIC_HISTOGRAM: {
		if (r->u.h->count == 0 && r->u.h->n == 0)
			return 0;
		int rc = make_tmpl(e, r);
		if (rc < 0)
			return rc;
		struct hist_summary sum = { .npct = e->npct };
		memcpy(sum.pct, e->pct, sizeof(sum.pct));
		hist_summarise(r->u.h, &sum);
		struct series t = e->tmpl;
		t.ts = r->bucket;
		size_t skipped = 0;
		rc = hist_emit(e->b, e->cfg, &t, &sum, NULL, &skipped);
		e->nonfinite += skipped;
		return rc;
	}
	case METRIC_SET: {
		double n = setacc_count(r->u.set);
		return n == 0 ? 0 : emit_value(e, r, n);
	}
	case METRIC_DISTRIBUTION:
		return emit_sketch(e, r);
	default:
		return emit_value(e, r, r->u.d);
	}
}

/* ---- merging the outs of several pipelines ---- */

static uint64_t rec_hash(const struct aggr_rec *r)
{
	uint64_t h = mix64(mix64(r->name->hash, r->host->hash), r->tags->hash);
	return mix64(mix64(h, r->type), (uint64_t)r->bucket);
}

static bool istr_same(const struct istr *x, const struct istr *y)
{
	return x == y || (x->hash == y->hash && x->len == y->len && memcmp(x->s, y->s, x->len) == 0);
}

static bool rec_same(const struct aggr_rec *x, const struct aggr_rec *y)
{
	if (x->type != y->type || x->bucket != y->bucket || !istr_same(x->name, y->name) ||
	    !istr_same(x->host, y->host))
		return false;
	const struct tagset *p = x->tags, *q = y->tags;
	if (p == q)
		return true;
	if (p->hash != q->hash || p->n != q->n)
		return false;
	for (uint32_t i = 0; i < p->n; i++) /* both in the canonical (hash, bytes) order */
		if (!istr_same(p->tags[i], q->tags[i]))
			return false;
	return true;
}

/* dst (an earlier out's) += src. Gauges: the later receive second wins; on a
 * tie src, i.e. the higher pipeline index. */
static int merge_rec(const struct aggr_config *cfg, struct aggr_rec *dst, const struct aggr_rec *src)
{
	switch (dst->type) {
	case METRIC_COUNT:
		dst->u.d += src->u.d;
		return 0;
	case METRIC_GAUGE:
		if (src->sec >= dst->sec) {
			dst->u.d = src->u.d;
			dst->sec = src->sec;
		}
		return 0;
	case METRIC_HISTOGRAM:
		return hist_merge(dst->u.h, src->u.h);
	case METRIC_SET:
		return setacc_merge(dst->u.set, src->u.set, cfg->set_exact_max);
	case METRIC_DISTRIBUTION:
		return ddsketch_merge(dst->u.sk, src->u.sk);
	default:
		return 0;
	}
}

struct mslot {
	uint32_t tag;		/* upper half of rec_hash */
	uint32_t idx;		/* global record index + 1; 0 = empty */
};

static struct aggr_rec *rec_at(struct aggr_out *const *outs, size_t g)
{
	size_t i = 0;
	while (g >= outs[i]->n)
		g -= outs[i++]->n;
	return &outs[i]->r[g];
}

/* Finds r's equal among the records already in t, or inserts r as global g. */
static struct aggr_rec *probe(struct mslot *t, size_t mask, struct aggr_out *const *outs,
			      const struct aggr_rec *r, size_t g)
{
	uint64_t h = rec_hash(r);
	uint32_t tag = (uint32_t)(h >> 32);
	size_t i = (size_t)h & mask;
	for (; t[i].idx; i = (i + 1) & mask) {
		if (t[i].tag != tag)
			continue;
		struct aggr_rec *d = rec_at(outs, t[i].idx - 1);
		if (rec_same(d, r))
			return d;
	}
	t[i] = (struct mslot){ tag, (uint32_t)(g + 1) };
	return NULL;
}

static int merge_outs(const struct aggr_config *cfg, struct aggr_out *const *outs, size_t n,
		      struct aggr_emit_stats *st)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += outs[i]->n;
	if (total >= UINT32_MAX / 2)
		return -ENOMEM;
	size_t cap = 16;
	while (cap < total * 2)
		cap *= 2;
	struct mslot *t = calloc(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	size_t g = 0;
	for (size_t i = 0; i < n; i++) {
		for (size_t j = 0; j < outs[i]->n; j++, g++) {
			struct aggr_rec *r = &outs[i]->r[j];
			struct aggr_rec *d = probe(t, cap - 1, outs, r, g);
			if (!d)
				continue;
			r->flags |= REC_MERGED;
			if (merge_rec(cfg, d, r) < 0)
				st->nomem++;
			else
				st->merged++;
		}
	}
	free(t);
	return 0;
}

/* ---- pending items of the other outs ---- */

static const char *const *copy_tags(struct batch *b, const char *const *tags, uint32_t n)
{
	const char **t = arena_alloc_align(&b->arena, (n ? n : 1) * sizeof(*t), sizeof(*t));
	if (!t)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (!(t[i] = batch_str(b, sv_from_cstr(tags[i]))))
			return NULL;
	return t;
}

#define CP(field) (r.field = batch_str(b, sv_from_cstr(r.field)))

/* A copy of sketch point p's strings, tags and bins in b; false on ENOMEM. */
static bool copy_sketch(struct batch *b, struct sketch_point *p)
{
	int32_t *keys = arena_alloc(&b->arena, (p->nbins + 1) * sizeof(*keys));
	uint32_t *counts = arena_alloc(&b->arena, (p->nbins + 1) * sizeof(*counts));
	if (!keys || !counts || !(p->name = batch_str(b, sv_from_cstr(p->name))) ||
	    !(p->host = batch_str(b, sv_from_cstr(p->host))) ||
	    !(p->tags = copy_tags(b, p->tags, p->ntags)))
		return false;
	memcpy(keys, p->keys, p->nbins * sizeof(*keys));
	memcpy(counts, p->counts, p->nbins * sizeof(*counts));
	p->keys = keys;
	p->counts = counts;
	return true;
}

/* Appends copies of src's series, sketch points (|T distributions), events
 * and checks; returns the number lost to ENOMEM. */
static uint64_t copy_pending(struct batch *b, const struct batch *src)
{
	uint64_t lost = 0;
	for (size_t i = 0; i < src->nseries; i++) {
		struct series r = src->series[i];
		bool ok = CP(name) && CP(host) && (r.tags = copy_tags(b, r.tags, r.ntags));
		lost += !ok || batch_add_series(b, &r) < 0;
	}
	for (size_t i = 0; i < src->nsketches; i++) {
		struct sketch_point p = src->sketches[i];
		lost += !copy_sketch(b, &p) || batch_add_sketch(b, &p) < 0;
	}
	for (size_t i = 0; i < src->nevents; i++) {
		struct event_rec r = src->events[i];
		bool ok = CP(title) && CP(text) && CP(host) && CP(aggregation_key) &&
			  CP(source_type) && (r.tags = copy_tags(b, r.tags, r.ntags));
		lost += !ok || batch_add_event(b, &r) < 0;
	}
	for (size_t i = 0; i < src->nchecks; i++) {
		struct check_rec r = src->checks[i];
		bool ok = CP(name) && CP(host) && CP(message) &&
			  (r.tags = copy_tags(b, r.tags, r.ntags));
		lost += !ok || batch_add_check(b, &r) < 0;
	}
	return lost;
}

#undef CP

/* The batch's sketches as series into b->sketch_series; returns the sketches
 * lost to ENOMEM. */
static uint64_t emit_sketch_series(const struct aggr_config *cfg, struct batch *b)
{
	if (!b->nsketches)
		return 0;
	if (!(b->sketch_series = batch_new()))
		return b->nsketches;
	uint64_t failed = 0;
	for (size_t i = 0; i < b->nsketches; i++)
		if (aggr_sketch_to_series(cfg, &b->sketches[i], b->sketch_series) < 0)
			failed++;
	return failed;
}

struct batch *aggr_emit(const struct aggr_config *cfg, struct aggr_out *const *outs, size_t n,
			int64_t now, bool sketch_series, struct aggr_emit_stats *st)
{
	struct aggr_emit_stats local;
	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	if (n > 1 && merge_outs(cfg, outs, n, st) < 0)
		return NULL;
	/* out 0's pending batch becomes the result: for n = 1 this is aggr_flush's
	 * batch before the split (pending items first) with no copy */
	struct batch *b = n ? outs[0]->pending : NULL;
	if (!b && !(b = batch_new()))
		return NULL;
	if (n)
		outs[0]->pending = NULL;
	for (size_t i = 1; i < n; i++)
		if (outs[i]->pending)
			st->nomem += copy_pending(b, outs[i]->pending);
	b->flush_time = now;
	/* at least one series per record in the usual case: one array, written
	 * once, instead of a doubling chain of copies into fresh pages */
	size_t nrec = 0;
	for (size_t i = 0; i < n; i++)
		nrec += outs[i]->n;
	(void)batch_reserve_series(b, b->nseries + nrec);
	struct emitter e = { .cfg = cfg, .b = b };
	e.npct = hist_percentiles(cfg, e.pct);
	for (size_t i = 0; i < n; i++) {
		const struct aggr_out *o = outs[i];
		for (size_t j = 0; j < o->n; j++)
			if (!(o->r[j].flags & REC_MERGED) && emit_rec(&e, &o->r[j]) < 0)
				st->nomem++;
	}
	st->series = b->nseries;
	st->sketches = b->nsketches;
	st->nonfinite = e.nonfinite;
	if (sketch_series)
		st->nomem += emit_sketch_series(cfg, b);
	return b;
}

void aggr_out_free(struct aggr_out *o)
{
	if (!o)
		return;
	for (size_t j = 0; j < o->n; j++)
		if (acc_on_heap(o->r[j].type))
			aggr_acc_free(o->r[j].type, &o->r[j].u);
	free(o->r);
	for (size_t i = 0; i < o->ndead; i++)
		free(o->dead[i]);
	free(o->dead);
	batch_free(o->pending);
	free(o);
}

/* ---- distributions as series ---- */

int aggr_sketch_to_series(const struct aggr_config *cfg, const struct sketch_point *sp,
			  struct batch *out)
{
	if (sp->cnt <= 0)
		return 0;
	struct hist_summary sum = { .count = (double)sp->cnt, .sum = sp->sum,
				    .min = sp->min, .max = sp->max };
	sum.npct = hist_percentiles(cfg, sum.pct);
	sum.median = ddsketch_quantile_bins(sp->keys, sp->counts, sp->nbins, sp->min, sp->max, 0.5);
	for (size_t i = 0; i < sum.npct; i++)
		sum.pct_value[i] = ddsketch_quantile_bins(sp->keys, sp->counts, sp->nbins,
							  sp->min, sp->max, sum.pct[i] / 100.0);
	const char **tags = arena_alloc(&out->arena, (sp->ntags + 1) * sizeof(*tags));
	struct series t = {
		.name = batch_str(out, sv_from_cstr(sp->name)),
		.host = batch_str(out, sv_from_cstr(sp->host)),
		.tags = tags, .ntags = sp->ntags, .ts = sp->ts,
	};
	if (!tags || !t.name || !t.host)
		return -ENOMEM;
	for (uint32_t i = 0; i < sp->ntags; i++)
		if (!(tags[i] = batch_str(out, sv_from_cstr(sp->tags[i]))))
			return -ENOMEM;
	return hist_emit(out, cfg, &t, &sum, NULL, NULL);
}
