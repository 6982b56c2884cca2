/*
 * flush.c - aggr_flush, expiry, stats, the cardinality report (aggr_top) and
 * aggr_sketch_to_series. See aggr.h; data layout in aggr_int.h.
 *
 * Flush walks every context once: closed bucket slots are turned into series
 * or sketch points (strings copied into the batch, tags sorted by bytes),
 * counters are zero-filled for closed buckets without samples until
 * expiry_seconds after their last sample, and idle contexts are collected
 * and freed after the walk (the table may shrink then). Cost O(contexts).
 */
#include "aggr/aggr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

struct flusher {
	struct aggr *a;
	struct batch *b;
	int64_t now, lo, hi;	/* zero-fill range: buckets lo, lo+10, ... < hi */
	int64_t upto;		/* flushed_upto after this flush */
	bool final;
	int pct[HIST_MAX_PCT];
	size_t npct;
	const struct istr *host_key;	/* one-entry cache of the copied host */
	const char *host;
	struct series tmpl;		/* this context's copied name/host/tags */
	bool have_tmpl;
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

/* Copies the context's name, host and tags into the batch (once per context). */
static int make_tmpl(struct flusher *f, const struct ctx *c)
{
	if (f->have_tmpl)
		return 0;
	struct batch *b = f->b;
	if (f->host_key != c->host) {
		f->host = batch_str(b, istr_sv(c->host));
		f->host_key = f->host ? c->host : NULL;
	}
	const struct tagset *ts = c->tags;
	const char **t = arena_alloc(&b->arena, (ts->n ? ts->n : 1) * sizeof(*t));
	const char *name = batch_str(b, istr_sv(c->name));
	if (!t || !name || !f->host)
		return -ENOMEM;
	for (uint32_t i = 0; i < ts->n; i++)
		if (!(t[i] = batch_str(b, istr_sv(ts->tags[i]))))
			return -ENOMEM;
	sort_strs(t, ts->n);
	f->tmpl = (struct series){ .name = name, .host = f->host, .tags = t, .ntags = ts->n };
	f->have_tmpl = true;
	return 0;
}

static int emit_value(struct flusher *f, const struct ctx *c, int64_t bucket, double v)
{
	int rc = make_tmpl(f, c);
	if (rc < 0)
		return rc;
	struct series s = f->tmpl;
	s.ts = bucket;
	if (c->type == METRIC_COUNT) {
		s.kind = SERIES_RATE;
		s.interval = AGGR_BUCKET;
		s.value = v / AGGR_BUCKET;
	} else {
		s.kind = SERIES_GAUGE;
		s.interval = 0;
		s.value = v;
	}
	return batch_add_series(f->b, &s);
}

static int emit_sketch(struct flusher *f, const struct ctx *c, int64_t bucket,
		       const struct ddsketch *sk)
{
	if (sk->cnt == 0)
		return 0;
	int rc = make_tmpl(f, c);
	if (rc < 0)
		return rc;
	int32_t *keys = arena_alloc(&f->b->arena, (sk->nbins + 1) * sizeof(*keys));
	uint32_t *counts = arena_alloc(&f->b->arena, (sk->nbins + 1) * sizeof(*counts));
	if (!keys || !counts)
		return -ENOMEM;
	for (uint32_t i = 0; i < sk->nbins; i++) {
		keys[i] = sk->bins[i].key;
		counts[i] = sk->bins[i].n;
	}
	struct sketch_point p = {
		.name = f->tmpl.name, .host = f->tmpl.host, .tags = f->tmpl.tags,
		.ntags = f->tmpl.ntags, .ts = bucket, .cnt = (int64_t)sk->cnt,
		.min = sk->min, .max = sk->max, .sum = sk->sum,
		.avg = sk->sum / (double)sk->cnt, .nbins = sk->nbins, .keys = keys, .counts = counts,
	};
	return batch_add_sketch(f->b, &p);
}

static int emit_slot(struct flusher *f, const struct ctx *c, struct slot *s)
{
	int rc;
	switch (c->type) {
	case METRIC_HISTOGRAM: {
		if (s->u.h->count == 0 && s->u.h->n == 0)
			return 0;
		rc = make_tmpl(f, c);
		if (rc < 0)
			return rc;
		struct hist_summary sum = { .npct = f->npct };
		memcpy(sum.pct, f->pct, sizeof(sum.pct));
		hist_summarise(s->u.h, &sum);
		struct series t = f->tmpl;
		t.ts = s->bucket;
		return hist_emit(f->b, f->a->cfg, &t, &sum, NULL);
	}
	case METRIC_SET:
		if (setacc_count(s->u.set) == 0)
			return 0;
		return emit_value(f, c, s->bucket, setacc_count(s->u.set));
	case METRIC_DISTRIBUTION:
		return emit_sketch(f, c, s->bucket, s->u.sk);
	default:
		return emit_value(f, c, s->bucket, s->u.d);
	}
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

static void note(struct flusher *f, int rc)
{
	if (rc < 0)
		f->a->st.dropped[AGGR_DROP_NOMEM]++;
}

/* Counter buckets in the zero-fill range: the sum, or 0 while the counter
 * is young enough (bucket >= first bucket, bucket < last sample + expiry). */
static void counter_range(struct flusher *f, struct ctx *c)
{
	int64_t exp = f->a->cfg->expiry_seconds;
	for (int64_t b = f->lo; b < f->hi; b += AGGR_BUCKET) {
		struct slot *s = find_slot(c, b);
		if (s) {
			note(f, emit_value(f, c, b, s->u.d));
			aggr_slot_release(f->a, c, s);
		} else if (b >= c->x.born && b < ctx_last_seen(f->a, c) + exp) {
			note(f, emit_value(f, c, b, 0));
		}
	}
}

static bool any_slot(const struct ctx *c)
{
	return c->slot[0].bucket != SLOT_FREE || c->slot[1].bucket != SLOT_FREE || c->nmore;
}

/* Flushes one context; returns true when it has expired. */
static bool flush_ctx(struct flusher *f, struct ctx *c)
{
	struct aggr *a = f->a;
	f->have_tmpl = false;
	if (c->type == METRIC_COUNT)
		counter_range(f, c);
	for (int i = 0; i < 2; i++) {
		struct slot *s = &c->slot[i];
		if (s->bucket != SLOT_FREE && (f->final || s->bucket + AGGR_BUCKET <= f->now)) {
			note(f, emit_slot(f, c, s));
			aggr_slot_release(a, c, s);
		}
	}
	uint16_t keep = 0;
	for (uint16_t i = 0; i < c->nmore; i++) {
		struct slot *s = &c->more[i];
		if (s->bucket != SLOT_FREE && (f->final || s->bucket + AGGR_BUCKET <= f->now)) {
			note(f, emit_slot(f, c, s));
			aggr_slot_release(a, c, s);
		}
		if (s->bucket != SLOT_FREE)
			c->more[keep++] = *s;
	}
	uint16_t old_n = c->nmore;
	c->nmore = keep;
	aggr_more_shrunk(a, c, old_n);
	if (f->final || any_slot(c))
		return false;
	if (c->type == METRIC_COUNT)
		return f->upto >= ctx_last_seen(a, c) + a->cfg->expiry_seconds;
	return f->now - ctx_last_seen(a, c) >= a->cfg->context_expiry_seconds;
}

static void flusher_init(struct flusher *f, struct aggr *a, struct batch *b, int64_t now, bool final)
{
	memset(f, 0, sizeof(*f));
	f->a = a;
	f->b = b;
	f->now = now;
	f->final = final;
	f->hi = bucket_of(now);
	f->lo = a->have_upto ? a->flushed_upto : f->hi - AGGR_BUCKET;
	int64_t span = bucket_of(a->cfg->expiry_seconds > 0 ? a->cfg->expiry_seconds : 0) +
		       2 * AGGR_BUCKET;
	if (f->hi - f->lo > span)
		f->lo = f->hi - span; /* after a long stall: only what zero-fill can need */
	f->upto = !a->have_upto || f->hi > a->flushed_upto ? f->hi : a->flushed_upto;
	f->npct = hist_percentiles(a->cfg, f->pct);
}

struct batch *aggr_flush(struct aggr *a, int64_t now, bool final)
{
	struct batch *b = a->pending;
	struct batch *next = batch_new();
	if (!next)
		return NULL;
	a->pending = next;
	a->npending = 0;
	b->flush_time = now;
	struct flusher f;
	flusher_init(&f, a, b, now, final);

	uint64_t *dead = NULL; /* expired: their table slots, removed after the walk */
	size_t ndead = 0, dcap = 0;
	for (size_t i = 0; i < a->ctxs.cap; i++) {
		if (!a->ctxs.s[i] || !flush_ctx(&f, ctx_at(a, ctab_idx(a->ctxs.s[i]))))
			continue;
		if (ndead == dcap) {
			size_t nc = dcap ? dcap * 2 : 64;
			uint64_t *nd = realloc(dead, nc * sizeof(*nd));
			if (!nd)
				continue; /* cannot expire it now; it will be retried next flush */
			dead = nd;
			dcap = nc;
		}
		dead[ndead++] = a->ctxs.s[i];
	}
	for (size_t i = 0; i < ndead; i++) {
		uint32_t idx = ctab_idx(dead[i]);
		ctab_remove(&a->ctxs, dead[i]);
		aggr_ctx_destroy(a, ctx_at(a, idx), idx);
	}
	free(dead);
	if (ndead || !a->ctxs.n)
		seen_clear(&a->seen); /* its entries may point to freed contexts */
	if (!a->ctxs.n)
		aggr_slab_done(&a->slab);
	a->st.contexts_expired += ndead;
	a->flushed_upto = f.upto;
	a->have_upto = true;
	a->st.series_flushed += b->nseries;
	a->st.sketches_flushed += b->nsketches;
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
