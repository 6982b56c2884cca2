/*
 * flush.c - aggr_collect (the pipeline side of a flush: closed buckets moved
 * out, counter zero-fill, expiry), aggr_flush (collect + emit) and
 * aggr_sketch_to_series. See aggr.h; data layout in aggr_int.h; emit.c turns
 * outs into batches.
 *
 * Collect walks every context once, in slab (memory) order: closed bucket slots are moved into the
 * out's record array (the accumulator pointer, no copy), counters get a zero
 * record for closed buckets without samples until expiry_seconds after their
 * last sample, and idle contexts are collected and destroyed after the walk
 * (the table may shrink then); strings and tag sets whose last reference goes
 * then are handed to the out, not freed. Cost O(contexts), no string copies.
 */
#include "aggr/aggr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

struct collector {
	struct aggr *a;
	struct aggr_out *o;
	int64_t now, lo, hi;	/* zero-fill range: buckets lo, lo+10, ... < hi */
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

/* Moves the slot's accumulator into a record and frees the slot. */
static void take(struct collector *k, const struct ctx *c, struct slot *s)
{
	struct aggr *a = k->a;
	struct aggr_rec *r = rec_add(k, c, s->bucket);
	r->u = s->u;
	if (c->type == METRIC_GAUGE) {
		/* The context keeps one receive time (its last sample): exact when
		 * it falls in this bucket, else this bucket's last second. */
		int64_t t = ctx_last_seen(a, c) - s->bucket;
		r->sec = (uint8_t)(t >= 0 && t < AGGR_BUCKET ? t : AGGR_BUCKET - 1);
	}
	if (acc_on_heap(c->type))
		a->acc_bytes -= aggr_acc_bytes(c->type, &s->u);
	s->bucket = SLOT_FREE;
	s->u.d = 0;
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

static struct slot *find_slot(struct ctx *c, int64_t b)
{
	for (int i = 0; i < 2; i++)
		if (c->slot[i].bucket == b)
			return &c->slot[i];
	for (uint16_t i = 0; i < c->nmore; i++)
		if (c->more[i].bucket == b)
			return &c->more[i];
	return NULL;
}

/* Counter buckets in the zero-fill range: the sum, or 0 while the counter
 * is young enough (bucket >= first bucket, bucket < last sample + expiry). */
static void counter_range(struct collector *k, struct ctx *c)
{
	int64_t exp = k->a->cfg->expiry_seconds;
	for (int64_t b = k->lo; b < k->hi; b += AGGR_BUCKET) {
		struct slot *s = find_slot(c, b);
		if (s)
			take(k, c, s);
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
	return c->slot[0].bucket != SLOT_FREE || c->slot[1].bucket != SLOT_FREE || c->nmore;
}

static bool closed(const struct collector *k, const struct slot *s)
{
	return s->bucket != SLOT_FREE && (k->final || s->bucket + AGGR_BUCKET <= k->now);
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
		if (closed(k, &c->slot[i]))
			take(k, c, &c->slot[i]);
	uint16_t keep = 0;
	for (uint16_t i = 0; i < c->nmore; i++) {
		struct slot *s = &c->more[i];
		if (closed(k, s))
			take(k, c, s);
		if (s->bucket != SLOT_FREE)
			c->more[keep++] = *s;
	}
	if (keep != c->nmore) {
		uint16_t old_n = c->nmore;
		c->nmore = keep;
		aggr_more_shrunk(a, c, old_n);
	}
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

/* Destroys the expired contexts (table slots in dead[]); their strings and
 * tag sets go to o->dead. One that finds no room there stays for later. */
static size_t expire(struct aggr *a, struct aggr_out *o, const uint64_t *dead, size_t ndead)
{
	size_t done = 0;
	for (size_t i = 0; i < ndead; i++) {
		uint32_t idx = ctab_idx(dead[i]);
		struct ctx *c = ctx_at(a, idx);
		size_t need = 3 + (size_t)c->tags->n;
		if (o->dead_cap - o->ndead < need) {
			size_t nc = o->dead_cap * 2 + need + 64;
			void **nd = realloc(o->dead, nc * sizeof(*nd));
			if (!nd)
				continue; /* it will be retried next collect */
			o->dead = nd;
			o->dead_cap = nc;
		}
		if (ctab_remove(&a->ctxs, dead[i]) < 0)
			continue; /* cannot happen: the key is recomputed exactly */
		aggr_ctx_destroy(a, c, idx, o);
		done++;
	}
	return done;
}

struct aggr_out *aggr_collect(struct aggr *a, int64_t now, bool final)
{
	struct aggr_out *o = out_new(a->ctxs.n + 16);
	if (!o)
		return NULL;
	struct batch *b = a->pending; /* swapped: the fresh batch stays with the aggr */
	a->pending = o->pending;
	o->pending = b;
	a->npending = 0;
	struct collector k;
	collector_init(&k, a, o, now, final);

	uint64_t *dead = NULL; /* expired: their table slots, removed after the walk */
	size_t ndead = 0, dcap = 0;
	struct ctx_slab *sl = &a->slab;
	for (size_t ch = 0; ch < sl->nchunks; ch++) { /* memory order, not table order */
		size_t lim = ch + 1 == sl->nchunks ? sl->used : CTX_CHUNK;
		for (size_t j = 0; j < lim; j++) {
			struct ctx *c = &sl->chunks[ch][j];
			if (c->type == CTX_DEAD || !collect_ctx(&k, c))
				continue;
			if (ndead == dcap) {
				size_t nc = dcap ? dcap * 2 : 64;
				uint64_t *nd = realloc(dead, nc * sizeof(*nd));
				if (!nd)
					continue; /* cannot expire it now; retried next collect */
				dead = nd;
				dcap = nc;
			}
			dead[ndead++] = ctab_slot(ctx_key_hash(c), (uint32_t)(ch * CTX_CHUNK + j));
		}
	}
	size_t gone = expire(a, o, dead, ndead);
	free(dead);
	if (gone || !a->ctxs.n)
		seen_clear(&a->seen); /* its entries may point to freed contexts */
	if (!a->ctxs.n)
		aggr_slab_done(&a->slab);
	if (k.full) /* the rest keep their buckets; their zero-fills are lost */
		a->st.dropped[AGGR_DROP_NOMEM]++;
	a->st.contexts_expired += gone;
	a->flushed_upto = k.upto;
	a->have_upto = true;
	return o;
}

struct batch *aggr_flush(struct aggr *a, int64_t now, bool final)
{
	struct aggr_out *o = aggr_collect(a, now, final);
	if (!o)
		return NULL;
	struct aggr_emit_stats st;
	struct batch *b = aggr_emit(a->cfg, &o, 1, now, &st);
	if (!b) {
		a->st.dropped[AGGR_DROP_NOMEM] += o->n;
		aggr_out_free(o);
		return NULL;
	}
	aggr_out_free(o);
	a->st.series_flushed += st.series;
	a->st.sketches_flushed += st.sketches;
	a->st.dropped[AGGR_DROP_NOMEM] += st.nomem;
	return b;
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
	return hist_emit(out, cfg, &t, &sum, NULL);
}
