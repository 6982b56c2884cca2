/*
 * emit.c - aggr_emit (the outs of aggr_collect, one per receive pipeline,
 * merged and turned into one batch) and aggr_out_free. See aggr.h for the
 * contract and the thread-safety rules; records and outs in aggr_int.h.
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
 * order (for n = 1 exactly aggr_flush's order before the split): strings
 * copied into the batch once per run of records of the same context, tags
 * sorted by bytes.
 */
#include "aggr/aggr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

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
	const char **t = arena_alloc(&b->arena, (ts->n ? ts->n : 1) * sizeof(*t));
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
	return batch_add_series(e->b, &s);
}

static int emit_sketch(struct emitter *e, const struct aggr_rec *r)
{
	const struct ddsketch *sk = r->u.sk;
	if (sk->cnt == 0)
		return 0;
	int rc = make_tmpl(e, r);
	if (rc < 0)
		return rc;
	int32_t *keys = arena_alloc(&e->b->arena, (sk->nbins + 1) * sizeof(*keys));
	uint32_t *counts = arena_alloc(&e->b->arena, (sk->nbins + 1) * sizeof(*counts));
	if (!keys || !counts)
		return -ENOMEM;
	for (uint32_t i = 0; i < sk->nbins; i++) {
		keys[i] = sk->bins[i].key;
		counts[i] = sk->bins[i].n;
	}
	struct sketch_point p = {
		.name = e->tmpl.name, .host = e->tmpl.host, .tags = e->tmpl.tags,
		.ntags = e->tmpl.ntags, .ts = r->bucket, .cnt = (int64_t)sk->cnt,
		.min = sk->min, .max = sk->max, .sum = sk->sum,
		.avg = sk->sum / (double)sk->cnt, .nbins = sk->nbins, .keys = keys, .counts = counts,
	};
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
		return hist_emit(e->b, e->cfg, &t, &sum, NULL);
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
	const char **t = arena_alloc(&b->arena, (n ? n : 1) * sizeof(*t));
	if (!t)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		if (!(t[i] = batch_str(b, sv_from_cstr(tags[i]))))
			return NULL;
	return t;
}

#define CP(field) (r.field = batch_str(b, sv_from_cstr(r.field)))

/* Appends copies of src's series, events and checks; returns the number lost
 * to ENOMEM. */
static uint64_t copy_pending(struct batch *b, const struct batch *src)
{
	uint64_t lost = 0;
	for (size_t i = 0; i < src->nseries; i++) {
		struct series r = src->series[i];
		bool ok = CP(name) && CP(host) && (r.tags = copy_tags(b, r.tags, r.ntags));
		lost += !ok || batch_add_series(b, &r) < 0;
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

struct batch *aggr_emit(const struct aggr_config *cfg, struct aggr_out *const *outs, size_t n,
			int64_t now, struct aggr_emit_stats *st)
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
