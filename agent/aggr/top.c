/*
 * top.c - aggr_get_stats and the cardinality report aggr_top.
 *
 * aggr_top is computed on demand (never on the hot path): pick the metric
 * names with the most live contexts (the names pool refcount is exactly the
 * number of contexts using the name), then walk the contexts once, in slab
 * order, gathering for each of those metrics the distinct tags of its
 * contexts and counting the distinct values per tag key. Cost O(contexts +
 * tags of the top metrics' contexts); for /status and the CLI, not for every
 * flush. The walk can be split in steps (aggr_top_begin/step/end), so that a
 * receive pipeline reads its sockets between them.
 */
#include "aggr/aggr_int.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

size_t aggr_memory_bytes(const struct aggr *a)
{
	return sizeof(*a) + ctab_bytes(&a->ctxs) + a->slab.nchunks * CTX_CHUNK * sizeof(struct ctx) +
	       ptab_bytes(&a->more) + ptab_bytes(&a->refused) +
	       a->refused.n * (sizeof(struct refusal) + AGGR_MALLOC_OVERHEAD) +
	       ptab_bytes(&a->names.t) + a->names.bytes + ptab_bytes(&a->strs.t) + a->strs.bytes +
	       ptab_bytes(&a->tagsets.t) + a->tagsets.bytes + a->acc_bytes + seen_bytes(&a->seen) +
	       mapper_bytes(a->mapper) + tagrules_bytes(a->rules) + a->name.cap +
	       (a->names.t.n + a->strs.t.n + a->tagsets.t.n) * AGGR_MALLOC_OVERHEAD +
	       a->scratch_cap * sizeof(*a->scratch) + a->pending->arena.bytes +
	       (a->pending->series_cap * sizeof(struct series));
}

void aggr_get_stats(const struct aggr *a, struct aggr_stats *out)
{
	*out = a->st;
	out->contexts = a->ctxs.n;
	out->seen_entries = a->seen.n;
	out->memory_bytes = aggr_memory_bytes(a);
}

struct keycount {
	struct sv key;
	uint64_t n;
};

static bool ptr_eq(const void *item, const void *key)
{
	return item == key;
}

static bool key_eq(const void *item, const void *key)
{
	return sv_eq(((const struct keycount *)item)->key, *(const struct sv *)key);
}

static void count_tag(struct htab *seen, struct htab *keys, struct istr *t)
{
	if (htab_find(seen, t->hash, ptr_eq, t) || htab_insert(seen, t->hash, t) < 0)
		return;
	const char *colon = memchr(t->s, ':', t->len);
	struct sv k = { t->s, colon ? (size_t)(colon - t->s) : t->len };
	uint64_t h = hash64(k.p, k.n);
	struct keycount *kc = htab_find(keys, h, key_eq, &k);
	if (!kc) {
		kc = calloc(1, sizeof(*kc));
		if (!kc || htab_insert(keys, h, kc) < 0) {
			free(kc);
			return;
		}
		kc->key = k;
	}
	kc->n++;
}

/* One row's tag counting: distinct tags seen, and distinct values per key. */
struct row_count {
	struct htab seen, keys;
};

/* The tag key of the row's contexts with the most distinct values. */
static void offender(struct row_count *rc, struct aggr_top_entry *e)
{
	const struct keycount *best = NULL;
	for (size_t i = 0; i < rc->keys.cap; i++) {
		const struct keycount *kc = rc->keys.s[i].p;
		if (kc && (!best || kc->n > best->n ||
			   (kc->n == best->n && sv_cmp(kc->key, best->key) < 0)))
			best = kc;
	}
	if (best) {
		size_t n = best->key.n < sizeof(e->top_tag_key) - 1 ? best->key.n : sizeof(e->top_tag_key) - 1;
		memcpy(e->top_tag_key, best->key.p, n);
		e->top_tag_key[n] = '\0';
		e->top_tag_values = best->n;
	}
}

static void row_free(struct row_count *rc)
{
	for (size_t i = 0; i < rc->keys.cap; i++)
		free(rc->keys.s[i].p);
	htab_done(&rc->keys);
	htab_done(&rc->seen);
}

/* Top rows by live contexts, then one walk over the contexts for them all. */
struct aggr_top_walk {
	const struct aggr *a;
	const struct istr **best; /* the rows' metric names, best first */
	size_t nb;
	struct row_count *rows;
	size_t pos;	/* next slab index to look at */
};

static bool ranks_before(const struct istr *x, const struct istr *y)
{
	if (x->refcnt != y->refcnt)
		return x->refcnt > y->refcnt;
	return sv_cmp(istr_sv(x), istr_sv(y)) < 0;
}

struct aggr_top_walk *aggr_top_begin(const struct aggr *a, size_t n)
{
	assert(!a->incr); /* not during an incremental collect (aggr.h) */
	struct aggr_top_walk *w = calloc(1, sizeof(*w));
	if (!w)
		return NULL;
	w->a = a;
	w->best = calloc(n ? n : 1, sizeof(*w->best));
	if (!w->best) {
		free(w);
		return NULL;
	}
	for (size_t i = 0; n && i < a->names.t.cap; i++) {
		const struct istr *s = ptab_at(&a->names.t, i);
		if (!s || (w->nb == n && !ranks_before(s, w->best[w->nb - 1])))
			continue;
		size_t j = w->nb < n ? w->nb++ : n - 1;
		while (j > 0 && ranks_before(s, w->best[j - 1])) {
			w->best[j] = w->best[j - 1];
			j--;
		}
		w->best[j] = s;
	}
	w->rows = calloc(w->nb ? w->nb : 1, sizeof(*w->rows));
	if (!w->rows) {
		free(w->best);
		free(w);
		return NULL;
	}
	for (size_t i = 0; i < w->nb; i++) {
		htab_init(&w->rows[i].seen);
		htab_init(&w->rows[i].keys);
	}
	return w;
}

/* The slab in memory order (was the context table's slots, one random
 * access per context, ~0.1 s for /status at 1M contexts; before that one
 * walk per row, 10 x that). Contexts created since the walk began are
 * looked at if they land beyond pos; none is freed during a walk. */
bool aggr_top_step(const struct aggr *a, struct aggr_top_walk *w, size_t max)
{
	const struct ctx_slab *sl = &a->slab;
	size_t end = sl->nchunks ? (sl->nchunks - 1) * CTX_CHUNK + sl->used : 0;
	if (w->pos >= end)
		return true; /* (the slab does not shrink during a walk) */
	size_t lim = end - w->pos > max ? w->pos + max : end;
	for (; w->nb && w->pos < lim; w->pos++) {
		const struct ctx *c = ctx_at(a, (uint32_t)w->pos);
		if (c->type == CTX_DEAD)
			continue;
		size_t r = 0;
		while (r < w->nb && w->best[r] != c->name)
			r++;
		if (r == w->nb)
			continue;
		for (uint32_t j = 0; j < c->tags->n; j++)
			count_tag(&w->rows[r].seen, &w->rows[r].keys, c->tags->tags[j]);
	}
	return !w->nb || w->pos >= end;
}

size_t aggr_top_end(struct aggr_top_walk *w, struct aggr_top_entry *out)
{
	if (!w)
		return 0;
	size_t nb = out ? w->nb : 0; /* out NULL: the walk is only freed */
	for (size_t i = 0; i < nb; i++) {
		struct aggr_top_entry *e = &out[i];
		memset(e, 0, sizeof(*e));
		size_t l = w->best[i]->len < sizeof(e->name) - 1 ? w->best[i]->len : sizeof(e->name) - 1;
		memcpy(e->name, w->best[i]->s, l);
		e->contexts = w->best[i]->refcnt;
		e->refused = aggr_refused(w->a, w->best[i]);
		offender(&w->rows[i], e);
	}
	for (size_t i = 0; i < w->nb; i++)
		row_free(&w->rows[i]);
	free(w->rows);
	free(w->best);
	free(w);
	return nb;
}

size_t aggr_top(const struct aggr *a, struct aggr_top_entry *out, size_t n)
{
	struct aggr_top_walk *w = aggr_top_begin(a, n);
	if (!w)
		return 0;
	aggr_top_step(a, w, SIZE_MAX);
	return aggr_top_end(w, out);
}
