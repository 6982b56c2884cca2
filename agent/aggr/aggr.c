/*
 * aggr.c - the aggregator's lifecycle and ingest path (flush.c has the flush,
 * top.c the stats and the cardinality report). See aggr.h for the contract and
 * aggr_int.h for the data layout.
 *
 * Called by agent.c from the receive pipeline (parser callbacks). Owns the
 * context table, interned strings and accumulators. Single-threaded.
 *
 * Ingest order, as Datadog's agent: mapper profiles, namespace, global tags
 * appended, host: tags extracted (the last one wins; "host:" alone forces the
 * empty host) and Datadog's dd.internal.* metadata tags removed (tag_role), then the context key: per-tag XXH3 hashes, canonical sort and
 * de-duplication (intern.h), one combined 64-bit key hash, one probe sequence.
 */
#include "aggr/aggr_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/mem.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

/* hash64() inlined (same values: XXH3-64): it runs 4-6 times per line. */
static inline uint64_t hsh(const void *p, size_t n)
{
	return XXH3_64bits(p, n);
}

static void cfg_clear(struct aggr *a)
{
	mapper_free(a->mapper);
	a->mapper = NULL;
	free(a->gtags);
	a->gtags = NULL;
	a->ngtags = 0;
	free(a->ns);
	a->ns = NULL;
	a->nslen = 0;
	a->host = SV_NULL;
	a->host_h = 0;
	tagrules_free(a->rules);
	a->rules = NULL;
}

/* Registers every live context with the tag-limit tracker (on), or gives
 * their references back (off): a limit set or removed by a reload. */
static void taglimit_switch(struct aggr *a, bool on)
{
	const struct ctx_slab *sl = &a->slab;
	size_t end = sl->nchunks ? (sl->nchunks - 1) * CTX_CHUNK + sl->used : 0;
	for (size_t i = 0; i < end; i++) {
		const struct ctx *c = ctx_at(a, (uint32_t)i);
		if (c->type == CTX_DEAD)
			continue;
		if (on)
			taglimit_track_set(a->tl, c->name, c->tags);
		else
			taglimit_leave_set(a->tl, c->name->hash, c->tags);
	}
	a->tl_on = on;
}

/* What works without allocating: the tag limit and the memory cap. */
static void cfg_limits(struct aggr *a, const struct aggr_config *cfg)
{
	taglimit_configure(a->tl, cfg->tag_value_limit,
			   cfg->tag_limit_drop ? TAGLIMIT_DROP : TAGLIMIT_STRIP);
	if ((cfg->tag_value_limit != 0) != a->tl_on)
		taglimit_switch(a, cfg->tag_value_limit != 0);
	a->mem_cap = cfg->memory_limit / (cfg->pipeline_count ? cfg->pipeline_count : 1);
}

static int cfg_apply(struct aggr *a, const struct aggr_config *cfg)
{
	bool nomem;
	a->cfg = cfg;
	a->host = sv_from_cstr(cfg->hostname ? cfg->hostname : "");
	a->host_h = hsh(a->host.p, a->host.n);
	cfg_limits(a, cfg);
	a->rules = tagrules_new(cfg->tags_exclude, cfg->ntags_exclude, &nomem);
	if (nomem)
		return -ENOMEM;
	if (cfg->nmapper_profiles) {
		a->mapper = mapper_new(cfg->mapper_profiles, cfg->nmapper_profiles);
		if (!a->mapper)
			return -ENOMEM;
	}
	if (cfg->ntags) {
		a->gtags = calloc(cfg->ntags, sizeof(*a->gtags));
		if (!a->gtags)
			return -ENOMEM;
		for (size_t i = 0; i < cfg->ntags; i++) {
			struct sv s = sv_from_cstr(cfg->tags[i]);
			a->gtags[i] = (struct tagref){ hash64(s.p, s.n), s };
		}
		a->ngtags = cfg->ntags;
	}
	size_t nl = cfg->namespace ? strlen(cfg->namespace) : 0;
	if (nl) {
		a->ns = malloc(nl + 2);
		if (!a->ns)
			return -ENOMEM;
		memcpy(a->ns, cfg->namespace, nl);
		if (cfg->namespace[nl - 1] != '.')
			a->ns[nl++] = '.';
		a->ns[nl] = '\0';
		a->nslen = nl;
	}
	return 0;
}

struct aggr *aggr_new(const struct aggr_config *cfg)
{
	struct taglimit *tl = taglimit_new();
	if (!tl)
		return NULL;
	struct aggr *a = aggr_new_shared(cfg, tl);
	taglimit_unref(tl);
	return a;
}

struct taglimit *aggr_taglimit(const struct aggr *a)
{
	return a->tl;
}

struct aggr *aggr_new_shared(const struct aggr_config *cfg, struct taglimit *tl)
{
	struct aggr *a = calloc(1, sizeof(*a));
	if (!a)
		return NULL;
	taglimit_ref(tl);
	a->tl = tl;
	strpool_init(&a->names);
	strpool_init(&a->strs);
	tagpool_init(&a->tagsets);
	ctab_init(&a->ctxs);
	ptab_init(&a->more);
	ptab_init(&a->refused);
	buf_init(&a->name);
	buf_init(&a->dname);
	a->pending = batch_new();
	if (!a->pending || cfg_apply(a, cfg) < 0) {
		aggr_free(a);
		return NULL;
	}
	return a;
}

void aggr_reconfigure(struct aggr *a, const struct aggr_config *cfg)
{
	assert(!a->incr); /* not during an incremental collect (aggr.h) */
	seen_clear(&a->seen); /* enrichment may change: every line is re-learned */
	cfg_clear(a);
	if (cfg_apply(a, cfg) < 0) {
		/* Out of memory: run with what could be set up (no mapper, no
		 * global tags or namespace) rather than fail the reload. */
		cfg_clear(a);
		a->cfg = cfg;
		a->host = sv_from_cstr(cfg->hostname ? cfg->hostname : "");
		a->host_h = hsh(a->host.p, a->host.n);
		cfg_limits(a, cfg);
		a->st.dropped[AGGR_DROP_NOMEM]++;
	}
}

size_t aggr_acc_bytes(uint8_t type, const union acc *u)
{
	switch (type) {
	case METRIC_HISTOGRAM:
		return hist_bytes(u->h);
	case METRIC_SET:
		return setacc_bytes(u->set);
	case METRIC_DISTRIBUTION:
		return ddsketch_bytes(u->sk);
	default:
		return 0;
	}
}

void aggr_acc_free(uint8_t type, union acc *u)
{
	switch (type) {
	case METRIC_HISTOGRAM:
		hist_free(u->h);
		break;
	case METRIC_SET:
		setacc_free(u->set);
		break;
	case METRIC_DISTRIBUTION:
		ddsketch_done(u->sk);
		free(u->sk);
		break;
	default:
		break;
	}
	u->d = 0;
}

/* Frees the accumulator of the slot (bucket *b, u) and marks it unused. */
static void slot_release(struct aggr *a, uint8_t type, int32_t *b, union acc *u)
{
	if (*b == SLOT_FREE)
		return;
	a->acc_bytes -= aggr_acc_bytes(type, u);
	aggr_acc_free(type, u);
	*b = SLOT_FREE;
}

/* ---- side tables keyed by an object's address (struct addr_key) ---- */

static inline uint64_t addr_hash(const void *key)
{
	return mix64(0, (uint64_t)(uintptr_t)key);
}

static bool addr_is(const void *item, const void *key)
{
	return ((const struct addr_key *)item)->key == key;
}

static void *addr_find(const struct ptab *t, const void *key)
{
	return ptab_find(t, addr_hash(key), addr_is, key);
}

/* A new zeroed item of size bytes for key, inserted into t; NULL on ENOMEM. */
static void *addr_add(struct ptab *t, const void *key, size_t size)
{
	struct addr_key *k = calloc(1, size);
	if (!k)
		return NULL;
	*k = (struct addr_key){ addr_hash(key), key };
	if (ptab_insert(t, k) < 0) {
		free(k);
		return NULL;
	}
	return k;
}

/* Removes item from t and frees it; the slots go with the last item (these
 * tables are empty most of the time). */
static void addr_drop(struct ptab *t, void *item)
{
	(void)ptab_remove(t, item);
	if (!t->n)
		ptab_done(t);
	free(item);
}

/* ---- overflow slots: aggr.more, keyed by the context (seen.c reaches
 * contexts by address, not index) ---- */

struct more *aggr_more(const struct aggr *a, const struct ctx *c)
{
	struct more *m = addr_find(&a->more, c);
	assert(m && c->nmore);
	return m;
}

/* c's entry in aggr.more, new and empty; NULL on ENOMEM. */
static struct more *more_new(struct aggr *a, const struct ctx *c)
{
	struct more *m = addr_add(&a->more, c, sizeof(*m));
	if (m)
		a->acc_bytes += sizeof(*m);
	return m;
}

static void more_drop(struct aggr *a, struct more *m)
{
	free(m->s);
	addr_drop(&a->more, m);
	a->acc_bytes -= sizeof(*m);
}

/* ---- refused samples per metric name: aggr.refused, keyed by the name. An
 * entry goes when its name leaves the names pool (ctx_unref, on the
 * aggregator's thread, also for a name that an out frees later on another
 * thread), so a later name at the same address starts at 0. ---- */

uint64_t aggr_refused(const struct aggr *a, const struct istr *s)
{
	const struct refusal *r = addr_find(&a->refused, s);
	return r ? r->n : 0;
}

/* Counts nv refusals for name s. On ENOMEM only the per-name count misses
 * them (aggr_stats.dropped has them). */
static void refusal_add(struct aggr *a, const struct istr *s, uint64_t nv)
{
	struct refusal *r = addr_find(&a->refused, s);
	if (!r && !(r = addr_add(&a->refused, s, sizeof(*r))))
		return;
	r->n += nv;
}

/* Name s leaves the names pool: its entry goes. */
static void refusal_drop(struct aggr *a, const struct istr *s)
{
	struct refusal *r = addr_find(&a->refused, s);
	if (r)
		addr_drop(&a->refused, r);
}

static void refusals_done(struct aggr *a)
{
	for (size_t i = 0; i < a->refused.cap; i++)
		free(ptab_at(&a->refused, i));
	ptab_done(&a->refused);
}

/* The new last overflow slot of c (c->nmore counts it), or NULL on ENOMEM
 * or at 32768 slots. */
static struct slot *more_add(struct aggr *a, struct ctx *c)
{
	struct more *m = c->nmore ? aggr_more(a, c) : more_new(a, c);
	if (!m)
		return NULL;
	uint16_t cap = more_cap(c->nmore);
	if (c->nmore == cap) {
		uint16_t nc = cap ? (uint16_t)(cap * 2) : 2;
		struct slot *ns = cap < UINT16_MAX / 2 ? realloc(m->s, nc * sizeof(*ns)) : NULL;
		if (!ns) {
			if (!c->nmore)
				more_drop(a, m);
			return NULL;
		}
		a->acc_bytes += (size_t)(nc - cap) * sizeof(*ns);
		m->s = ns;
	}
	return &m->s[c->nmore++];
}

static void ctx_unref(struct aggr *a, struct ctx *c, struct aggr_out *o)
{
	if (a->refused.n && c->name && c->name->refcnt == 1)
		refusal_drop(a, c->name); /* its last context: the name leaves the pool */
	if (!o) {
		strpool_put(&a->names, c->name);
		strpool_put(&a->strs, c->host);
		tagpool_put(&a->tagsets, &a->strs, c->tags);
		return;
	}
	void *s;
	if ((s = strpool_unref(&a->names, c->name)))
		o->dead[o->ndead++] = s;
	if ((s = strpool_unref(&a->strs, c->host)))
		o->dead[o->ndead++] = s;
	o->ndead += tagpool_unref(&a->tagsets, &a->strs, c->tags, o->dead + o->ndead);
}

void aggr_ctx_destroy(struct aggr *a, struct ctx *c, uint32_t idx, struct aggr_out *o)
{
	if (a->tl_on && c->name && c->tags) /* (ctx_create gives back what a half-made one holds) */
		taglimit_leave_set(a->tl, c->name->hash, c->tags);
	for (int i = 0; i < 2; i++)
		slot_release(a, c->type, &c->bucket[i], &c->u[i]);
	if (c->nmore) {
		struct more *m = aggr_more(a, c);
		for (uint16_t i = 0; i < c->nmore; i++)
			slot_release(a, c->type, &m->s[i].bucket, &m->s[i].u);
		a->acc_bytes -= (size_t)more_cap(c->nmore) * sizeof(*m->s);
		more_drop(a, m);
	}
	ctx_unref(a, c, o);
	c->type = CTX_DEAD;
	*(struct ctx **)(void *)c = a->slab.free; /* the free-list link */
	memcpy((char *)c + sizeof(struct ctx *), &idx, sizeof(idx)); /* and its index */
	a->slab.free = c;
}

void aggr_more_shrunk(struct aggr *a, struct ctx *c, struct more *m, uint16_t old_n)
{
	uint16_t oc = more_cap(old_n), nc = more_cap(c->nmore);
	if (nc == oc)
		return;
	a->acc_bytes -= (size_t)(oc - nc) * sizeof(*m->s);
	if (!nc) {
		more_drop(a, m);
		return;
	}
	struct slot *s = realloc(m->s, nc * sizeof(*s));
	if (s)
		m->s = s; /* a failed shrink keeps the larger block: still valid */
}

/* A new, empty chunk at the slab's end; false on ENOMEM or a full index. */
static bool slab_grow(struct ctx_slab *sl)
{
	if (sl->nchunks >= UINT32_MAX / CTX_CHUNK)
		return false; /* slab indexes are 32-bit */
	if (sl->nchunks == sl->chunks_cap) {
		size_t nc = sl->chunks_cap ? sl->chunks_cap * 2 : 16;
		struct ctx **n = realloc(sl->chunks, nc * sizeof(*n));
		if (!n)
			return false;
		sl->chunks = n;
		sl->chunks_cap = nc;
	}
	/* aligned: a context is one cache line */
	if (!(sl->chunks[sl->nchunks] = aligned_alloc(CTX_ALIGN, CTX_CHUNK * sizeof(struct ctx))))
		return false;
	/* its pages in one call rather than one fault per page as contexts
	 * are carved (core/mem.h) */
	mem_prefault(sl->chunks[sl->nchunks], CTX_CHUNK * sizeof(struct ctx));
	sl->nchunks++;
	sl->used = 0;
	return true;
}

/* A zeroed context from the slab and its index, or NULL on ENOMEM. */
static struct ctx *ctx_alloc(struct aggr *a, uint32_t *idx)
{
	struct ctx_slab *sl = &a->slab;
	struct ctx *c = sl->free;
	if (c) {
		sl->free = *(struct ctx **)(void *)c;
		memcpy(idx, (char *)c + sizeof(struct ctx *), sizeof(*idx));
	} else {
		if ((!sl->nchunks || sl->used == CTX_CHUNK) && !slab_grow(sl))
			return NULL;
		*idx = (uint32_t)((sl->nchunks - 1) * CTX_CHUNK + sl->used);
		c = &sl->chunks[sl->nchunks - 1][sl->used++];
	}
	memset(c, 0, sizeof(*c));
	return c;
}

void aggr_slab_done(struct ctx_slab *sl)
{
	for (size_t i = 0; i < sl->nchunks; i++)
		free(sl->chunks[i]);
	free(sl->chunks);
	memset(sl, 0, sizeof(*sl));
}

void aggr_reserve(struct aggr *a)
{
	if (!a->slab.nchunks)
		(void)slab_grow(&a->slab); /* on ENOMEM: allocated on first use */
	seen_reserve(&a->seen);
}

void aggr_free(struct aggr *a)
{
	if (!a)
		return;
	aggr_incr_abort(a);
	for (size_t i = 0; i < a->ctxs.cap; i++) {
		if (!a->ctxs.s[i])
			continue;
		uint32_t idx = ctab_idx(a->ctxs.s[i]);
		aggr_ctx_destroy(a, ctx_at(a, idx), idx, NULL);
	}
	ctab_done(&a->ctxs);
	ptab_done(&a->more);
	refusals_done(a);
	seen_done(&a->seen);
	aggr_slab_done(&a->slab);
	tagpool_done(&a->tagsets, &a->strs);
	strpool_done(&a->strs);
	strpool_done(&a->names);
	cfg_clear(a);
	buf_done(&a->name);
	buf_done(&a->dname);
	free(a->scratch);
	batch_free(a->pending);
	taglimit_unref(a->tl);
	free(a);
}

/* ---- enrichment ---- */

struct sample_key {
	struct sv name;
	struct sv host;
	size_t ntags;		/* in a->scratch */
};

static bool blacklisted(const struct aggr_config *cfg, struct sv name)
{
	for (size_t i = 0; i < cfg->nnamespace_blacklist; i++)
		if (sv_starts_with(name, sv_from_cstr(cfg->namespace_blacklist[i])))
			return true;
	return false;
}

static int scratch_reserve(struct aggr *a, size_t n)
{
	if (n <= a->scratch_cap)
		return 0;
	size_t nc = a->scratch_cap ? a->scratch_cap : 16;
	while (nc < n)
		nc *= 2;
	struct tagref *ns = realloc(a->scratch, nc * sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	a->scratch = ns;
	a->scratch_cap = nc;
	return 0;
}

/* What a sender's tag means to enrichment, as in Datadog's
 * extractTagsMetadata: "host:<h>" sets the host; "dd.internal.entity_id:",
 * "dd.internal.card:" and "dd.internal.jmx_check_name:" are origin-detection
 * and source metadata (this agent has no tagger to give them to). All of
 * them are removed from the tags, except a dd.internal.card: tag after one
 * with a non-empty value (Datadog keeps the first cardinality only; this
 * agent ignores the |card: field, as Datadog does by default). */
enum tag_role { TAG_PLAIN, TAG_HOST, TAG_META, TAG_CARD };

static inline enum tag_role tag_role(struct sv t)
{
	if (t.n >= 5 && t.p[0] == 'h' && memcmp(t.p, "host:", 5) == 0)
		return TAG_HOST;
	if (t.n < 16 || t.p[0] != 'd' || memcmp(t.p, "dd.internal.", 12) != 0)
		return TAG_PLAIN;
	if (sv_starts_with(t, SV_LIT("dd.internal.card:")))
		return TAG_CARD;
	if (sv_starts_with(t, SV_LIT("dd.internal.entity_id:")) ||
	    sv_starts_with(t, SV_LIT("dd.internal.jmx_check_name:")))
		return TAG_META;
	return TAG_PLAIN;
}

/* Whether tag t (of role r) stays a tag; *host and *card follow the tags
 * seen so far (card: a non-empty cardinality was taken). */
static inline bool tag_kept(struct sv t, enum tag_role r, struct sv *host, bool *card)
{
	switch (r) {
	case TAG_HOST:
		*host = (struct sv){ t.p + 5, t.n - 5 };
		return false;
	case TAG_META:
		return false;
	case TAG_CARD:
		if (*card)
			return true;
		*card = t.n > 17;
		return false;
	default:
		return true;
	}
}

static void add_tags(struct aggr *a, struct sample_key *k, const struct sv *tags, size_t n)
{
	bool card = false;
	for (size_t i = 0; i < n; i++) {
		enum tag_role r = tag_role(tags[i]);
		if (r == TAG_PLAIN || tag_kept(tags[i], r, &k->host, &card))
			a->scratch[k->ntags++].s = tags[i];
	}
}

static int enrich(struct aggr *a, struct sv name, const struct sv *tags, size_t ntags,
		  struct sample_key *k)
{
	struct mapper_result mr = { .ntags = 0 };
	if (a->mapper) {
		int rc = mapper_map(a->mapper, name, &mr);
		if (rc < 0)
			return rc;
		if (rc == 1)
			name = mr.name;
	}
	if (a->ns && !blacklisted(a->cfg, name)) {
		buf_reset(&a->name);
		buf_append(&a->name, a->ns, a->nslen);
		buf_append(&a->name, name.p, name.n);
		if (a->name.failed) {
			a->name.failed = false;
			return -ENOMEM;
		}
		name = (struct sv){ a->name.p, a->name.len };
	}
	k->name = name;
	k->host = a->host;
	k->ntags = 0;
	if (scratch_reserve(a, ntags + mr.ntags + a->ngtags) < 0)
		return -ENOMEM;
	add_tags(a, k, tags, ntags);
	add_tags(a, k, mr.tags, mr.ntags);
	for (size_t i = 0; i < a->ngtags; i++)
		add_tags(a, k, &a->gtags[i].s, 1);
	if (a->rules) {
		size_t n = tagrules_apply(a->rules, k->name, a->scratch, k->ntags);
		a->st.tags_excluded += k->ntags - n;
		k->ntags = n;
	}
	return 0;
}

/* ---- context lookup ---- */

static uint8_t family(enum metric_type t)
{
	return (uint8_t)(t == METRIC_TIMING ? METRIC_HISTOGRAM : t);
}

struct lookup {
	uint64_t hash, name_h, host_h, tags_h;
	uint8_t type;
};

static inline bool istr_is(const struct istr *s, uint64_t h, struct sv v)
{
	return s->hash == h && sv_same(s->s, s->len, v);
}

static inline bool ref_less(const struct tagref *x, const struct tagref *y)
{
	if (x->h != y->h)
		return x->h < y->h;
	return sv_cmp(x->s, y->s) < 0;
}

/* Per-tag hashes, then intern.h's canonical order and de-duplication
 * (tagref_canon), inlined for the usual few tags. */
static size_t canon_tags(struct tagref *r, size_t n)
{
	for (size_t i = 0; i < n; i++)
		r[i].h = hsh(r[i].s.p, r[i].s.n);
	if (n > 8)
		return tagref_canon(r, n);
	for (size_t i = 1; i < n; i++) {
		struct tagref x = r[i];
		size_t j = i;
		while (j > 0 && ref_less(&x, &r[j - 1])) {
			r[j] = r[j - 1];
			j--;
		}
		r[j] = x;
	}
	size_t out = n ? 1 : 0;
	for (size_t i = 1; i < n; i++)
		if (r[out - 1].h != r[i].h || !sv_eq(r[out - 1].s, r[i].s))
			r[out++] = r[i];
	return out;
}

static struct ctx *ctx_find(struct aggr *a, const struct sample_key *k, const struct lookup *l)
{
	if (!a->ctxs.n)
		return NULL;
	const struct ctab *t = &a->ctxs;
	uint64_t tag = l->hash >> 32;
	for (size_t i = ctab_start(t, l->hash); t->s[i]; i = ctab_next(t, i)) {
		if (t->s[i] >> 32 != tag)
			continue;
		struct ctx *c = ctx_at(a, ctab_idx(t->s[i]));
		if (c->type == l->type && istr_is(c->name, l->name_h, k->name) &&
		    istr_is(c->host, l->host_h, k->host) && c->tags->hash == l->tags_h &&
		    tagset_eq(c->tags, a->scratch, k->ntags))
			return c;
	}
	return NULL;
}

/* A refusal, counted per value and per metric name. */
static void refused(struct aggr *a, struct istr *nm, enum aggr_drop why, uint64_t nv)
{
	a->st.dropped[why] += nv;
	if (nm)
		refusal_add(a, nm, nv);
}

/* dogstatsd_memory_limit: what the aggregator holds, what its flush will
 * need, and the tag-limit tracker it shares. */
static bool over_memory(const struct aggr *a)
{
	return a->mem_cap && aggr_memory_bytes(a) + a->ctxs.n * AGGR_FLUSH_BYTES_PER_CTX +
					 taglimit_bytes(a->tl) >=
				     a->mem_cap;
}

/* The caps: 0 = no cap. Refusals count per value and per metric name. */
static bool refuse(struct aggr *a, const struct sample_key *k, const struct lookup *l, uint64_t nv)
{
	struct istr *nm = strpool_find(&a->names, k->name, l->name_h);
	enum aggr_drop why;
	if (a->cfg->max_contexts && a->ctxs.n >= a->cfg->max_contexts)
		why = AGGR_DROP_CONTEXT_CAP;
	else if (over_memory(a))
		why = AGGR_DROP_MEMORY_LIMIT;
	else if (nm && a->cfg->max_contexts_per_metric &&
		 nm->refcnt >= a->cfg->max_contexts_per_metric)
		why = AGGR_DROP_METRIC_CAP;
	else
		return false;
	refused(a, nm, why, nv);
	return true;
}

static struct ctx *ctx_create(struct aggr *a, const struct sample_key *k, const struct lookup *l,
			      int64_t now)
{
	uint32_t idx;
	struct ctx *c = ctx_alloc(a, &idx);
	if (!c) {
		if (a->tl_on)
			taglimit_leave_refs(a->tl, l->name_h, a->scratch, k->ntags);
		return NULL;
	}
	if (!a->have_epoch) {
		a->epoch = now;
		a->have_epoch = true;
		a->seen.last_now = INT64_MIN; /* seen_clock: bucket - epoch anew */
	}
	c->last_seen = INT32_MIN; /* never: set by the first sample */
	c->type = l->type;
	c->bucket[0] = c->bucket[1] = SLOT_FREE;
	c->x.born = bucket_of(now);
	c->name = strpool_get(&a->names, k->name, l->name_h);
	c->host = strpool_get(&a->strs, k->host, l->host_h);
	c->tags = tagpool_get(&a->tagsets, &a->strs, a->scratch, k->ntags, l->tags_h);
	if (!c->name || !c->host || !c->tags || ctab_insert(&a->ctxs, ctab_slot(l->hash, idx)) < 0) {
		if (a->tl_on && (!c->name || !c->tags)) /* else the destroy gives them back */
			taglimit_leave_refs(a->tl, l->name_h, a->scratch, k->ntags);
		aggr_ctx_destroy(a, c, idx, NULL);
		return NULL;
	}
	a->st.contexts_created++;
	if (!a->have_upto) {
		/* Nothing existed before this bucket: zero-fill starts here. */
		a->flushed_upto = bucket_of(now);
		a->have_upto = true;
	}
	return c;
}

static void lookup_rehash(struct lookup *l, const struct tagref *t, size_t n)
{
	l->tags_h = tagset_hash(t, n);
	l->hash = mix64(mix64(mix64(l->name_h, l->host_h), l->tags_h), l->type);
}

/* The caps, then a new context. NULL: refused or out of memory (counted;
 * the tag-limit references taken for it given back). */
static struct ctx *ctx_capped(struct aggr *a, const struct sample_key *k, const struct lookup *l,
			      uint64_t nv, int64_t now)
{
	if (refuse(a, k, l, nv)) {
		if (a->tl_on)
			taglimit_leave_refs(a->tl, l->name_h, a->scratch, k->ntags);
		return NULL;
	}
	struct ctx *c = ctx_create(a, k, l, now);
	if (!c)
		a->st.dropped[AGGR_DROP_NOMEM] += nv;
	return c;
}

/* No context has k's exact key: a receive time too far from the epoch
 * (clock_rel) is refused, no context is made for it; the tag limit
 * (taglimit.h) may remove tags, which leads to the context without them, or
 * refuse the sample; else the caps, then a new context. NULL: refused
 * (counted). */
static __attribute__((noinline)) struct ctx *
ctx_new(struct aggr *a, struct sample_key *k, struct lookup *l, uint64_t nv, int64_t now)
{
	int32_t rel;
	if (a->have_epoch && !clock_rel(a, now, &rel)) {
		refused(a, strpool_find(&a->names, k->name, l->name_h), AGGR_DROP_CLOCK_RANGE, nv);
		return NULL;
	}
	if (!a->tl_on)
		return ctx_capped(a, k, l, nv, now);
	size_t before = k->ntags;
	int v = taglimit_enter(a->tl, k->name, l->name_h, a->scratch, &k->ntags, nv);
	if (v < 0 || v == TAGLIMIT_DROPPED) {
		refused(a, strpool_find(&a->names, k->name, l->name_h),
			v < 0 ? AGGR_DROP_NOMEM : AGGR_DROP_TAG_LIMIT, nv);
		return NULL;
	}
	if (k->ntags != before) {
		a->st.tag_limited += nv;
		lookup_rehash(l, a->scratch, k->ntags);
		struct ctx *c = ctx_find(a, k, l);
		if (c) {
			/* *known stays false: a stripped line is never cached,
			 * so each of its samples is counted here, and a value
			 * let in later (room after expiry) gets its tag back */
			taglimit_leave_refs(a->tl, l->name_h, a->scratch, k->ntags);
			return c;
		}
	}
	return ctx_capped(a, k, l, nv, now);
}

/* ---- bucket slots and accumulators ---- */

static int acc_init(struct aggr *a, uint8_t type, union acc *u)
{
	switch (type) {
	case METRIC_HISTOGRAM:
		u->h = hist_new(HIST_EXACT_MAX_DEFAULT);
		if (!u->h)
			return -ENOMEM;
		a->acc_bytes += hist_bytes(u->h);
		return 0;
	case METRIC_SET:
		u->set = setacc_new();
		if (!u->set)
			return -ENOMEM;
		a->acc_bytes += setacc_bytes(u->set);
		return 0;
	case METRIC_DISTRIBUTION:
		u->sk = malloc(sizeof(*u->sk));
		if (!u->sk)
			return -ENOMEM;
		ddsketch_init(u->sk);
		a->acc_bytes += ddsketch_bytes(u->sk);
		return 0;
	default:
		u->d = 0;
		return 0;
	}
}

/* A free slot of c, taken for bucket rb: inline if one is free, else a new
 * overflow slot; NULL on ENOMEM. */
static union acc *slot_new(struct aggr *a, struct ctx *c, int32_t rb)
{
	for (int i = 0; i < 2; i++)
		if (c->bucket[i] == SLOT_FREE) {
			c->bucket[i] = rb;
			return &c->u[i];
		}
	struct slot *s = more_add(a, c);
	if (!s)
		return NULL;
	s->bucket = rb;
	return &s->u;
}

static union acc *slot_get(struct aggr *a, struct ctx *c, int32_t rb, bool *fresh)
{
	*fresh = false;
	union acc *u = ctx_slot_find(a, c, rb);
	if (u)
		return u;
	union acc nu;
	if (acc_init(a, c->type, &nu) < 0)
		return NULL;
	if (!(u = slot_new(a, c, rb))) {
		a->acc_bytes -= aggr_acc_bytes(c->type, &nu);
		aggr_acc_free(c->type, &nu);
		return NULL;
	}
	*u = nu;
	*fresh = true;
	return u;
}

static int add_value(struct aggr *a, struct ctx *c, union acc *u, bool fresh,
		     const struct dsd_metric *m, double rate, double v)
{
	size_t before;
	int rc = 0;
	switch (c->type) {
	case METRIC_COUNT:
		*count_sum(a, c, u) += v * (1.0 / rate); /* Datadog's Counter, to the bit */
		return 0;
	case METRIC_GAUGE:
		if (a->cfg->gauge_deltas && m->explicit_sign)
			v += fresh ? (c->has_last ? c->x.last : 0) : u->d;
		u->d = v;
		c->x.last = v;
		c->has_last = 1;
		return 0;
	case METRIC_HISTOGRAM:
		before = hist_bytes(u->h);
		rc = hist_add(u->h, v, rate);
		a->acc_bytes += hist_bytes(u->h) - before;
		return rc;
	case METRIC_DISTRIBUTION: {
		double w = 1.0 / rate + 0.5;
		before = ddsketch_bytes(u->sk);
		rc = ddsketch_add(u->sk, v, w >= (double)(1u << 20) ? 1u << 20 : (uint32_t)w);
		a->acc_bytes += ddsketch_bytes(u->sk) - before;
		return rc;
	}
	default:
		return 0;
	}
}

void aggr_accumulate(struct aggr *a, struct ctx *c, const struct dsd_metric *m, double rate,
		     int64_t now)
{
	bool fresh;
	uint64_t nv = m->type == METRIC_SET ? 1 : m->nvalues;
	int32_t rel;
	if (!clock_rel(a, now, &rel)) {
		refused(a, c->name, AGGR_DROP_CLOCK_RANGE, nv);
		return;
	}
	int32_t rb = (int32_t)(bucket_of(now) - a->epoch);
	if (a->mem_cap && acc_on_heap(c->type) && !ctx_slot_find(a, c, rb) && over_memory(a)) {
		refused(a, c->name, AGGR_DROP_MEMORY_LIMIT, nv);
		return;
	}
	union acc *u = slot_get(a, c, rb, &fresh);
	if (!u) {
		a->st.dropped[AGGR_DROP_NOMEM] += nv;
		return;
	}
	if (rel > c->last_seen)
		c->last_seen = rel;
	if (m->type == METRIC_SET) {
		struct sv mb = m->set_member;
		size_t before = setacc_bytes(u->set);
		int rc = setacc_add(u->set, hash64(mb.p, mb.n), a->cfg->set_exact_max);
		a->acc_bytes += setacc_bytes(u->set) - before;
		if (rc < 0)
			a->st.dropped[AGGR_DROP_NOMEM]++;
		return;
	}
	for (size_t i = 0; i < m->nvalues; i++) {
		if (add_value(a, c, u, fresh, m, rate, m->values[i]) < 0)
			a->st.dropped[AGGR_DROP_NOMEM]++;
		fresh = false;
	}
}

/* ---- samples that bypass the buckets, events, service checks ---- */

static int sv_qcmp(const void *x, const void *y)
{
	return sv_cmp(((const struct tagref *)x)->s, ((const struct tagref *)y)->s);
}

/* Copies scratch tags into the pending batch, sorted by bytes and unique. */
static const char *const *pending_tags(struct aggr *a, size_t n, uint32_t *nout)
{
	if (n > 1)
		qsort(a->scratch, n, sizeof(*a->scratch), sv_qcmp);
	size_t u = 0;
	for (size_t i = 0; i < n; i++)
		if (u == 0 || !sv_eq(a->scratch[u - 1].s, a->scratch[i].s))
			a->scratch[u++] = a->scratch[i];
	const char **t = arena_alloc(&a->pending->arena, (u ? u : 1) * sizeof(*t));
	if (!t)
		return NULL;
	for (size_t i = 0; i < u; i++)
		if (!(t[i] = batch_str(a->pending, a->scratch[i].s)))
			return NULL;
	*nout = (uint32_t)u;
	return t;
}

static bool pending_full(struct aggr *a, uint64_t n)
{
	if (a->npending + n <= AGGR_PENDING_MAX)
		return false;
	a->st.dropped[AGGR_DROP_PENDING_CAP] += n;
	return true;
}

static double rate_of(const struct dsd_metric *m)
{
	return m->sample_rate > 0 && m->sample_rate <= 1 ? m->sample_rate : 1;
}

/* A |T distribution: one sketch point of the line's values at its own
 * timestamp, weights as in the buckets (add_value). */
static void timestamped_sketch(struct aggr *a, const struct dsd_metric *m, const struct sample_key *k)
{
	if (pending_full(a, 1))
		return;
	struct ddsketch sk;
	ddsketch_init(&sk);
	double w = 1.0 / rate_of(m) + 0.5;
	uint32_t n = w >= (double)(1u << 20) ? 1u << 20 : (uint32_t)w;
	int rc = 0;
	for (size_t i = 0; i < m->nvalues && rc == 0; i++)
		rc = ddsketch_add(&sk, m->values[i], n);
	struct sketch_point p = {
		.name = batch_str(a->pending, k->name),
		.host = batch_str(a->pending, k->host),
		.ts = m->timestamp,
	};
	p.tags = pending_tags(a, k->ntags, &p.ntags);
	if (rc == 0 && !ddsketch_finite(&sk)) {
		a->st.dropped[AGGR_DROP_NON_FINITE]++;
	} else if (rc < 0 || !p.name || !p.host || !p.tags || aggr_sketch_point(a->pending, &sk, &p) < 0 ||
		   batch_add_sketch(a->pending, &p) < 0) {
		a->st.dropped[AGGR_DROP_NOMEM] += m->nvalues;
	} else {
		a->npending++;
	}
	ddsketch_done(&sk);
}

/*
 * A sample with a timestamp, as Datadog's no-aggregation pipeline sends it:
 * a gauge as a gauge, a counter as a rate value/10 whatever its sample rate,
 * a distribution as a sketch point, each at its own timestamp with interval
 * 10; histograms, timers and sets are discarded (counted).
 */
static __attribute__((noinline)) void timestamped(struct aggr *a, const struct dsd_metric *m,
						  const struct sample_key *k)
{
	if (m->type == METRIC_DISTRIBUTION) {
		timestamped_sketch(a, m, k);
		return;
	}
	if (m->type != METRIC_GAUGE && m->type != METRIC_COUNT) {
		a->st.dropped[AGGR_DROP_TIMESTAMPED_TYPE] += m->type == METRIC_SET ? 1 : m->nvalues;
		return;
	}
	if (pending_full(a, m->nvalues))
		return;
	struct series s = {
		.name = batch_str(a->pending, k->name),
		.host = batch_str(a->pending, k->host),
		.ts = m->timestamp,
		.interval = AGGR_BUCKET,
		.kind = m->type == METRIC_GAUGE ? SERIES_GAUGE : SERIES_RATE,
	};
	s.tags = pending_tags(a, k->ntags, &s.ntags);
	bool ok = s.name && s.host && s.tags;
	for (size_t i = 0; i < m->nvalues; i++) {
		s.value = m->type == METRIC_GAUGE ? m->values[i] : m->values[i] / AGGR_BUCKET;
		if (!ok || batch_add_series(a->pending, &s) < 0) {
			a->st.dropped[AGGR_DROP_NOMEM]++;
			continue;
		}
		a->npending++;
	}
}

/* k's context of the family `type`, found (*known) or created (ctx_new: the
 * tag limit may remove tags from k and a->scratch first); NULL when refused
 * by a limit or cap or out of memory (counted for nv values). Sorts and
 * de-duplicates k's tags in a->scratch. */
static inline __attribute__((always_inline)) struct ctx *
ctx_get(struct aggr *a, struct sample_key *k, uint8_t type, uint64_t nv,
			   int64_t now, bool *known)
{
	struct lookup l = { .type = type };
	k->ntags = canon_tags(a->scratch, k->ntags);
	l.tags_h = tagset_hash(a->scratch, k->ntags);
	l.name_h = hsh(k->name.p, k->name.n);
	l.host_h = k->host.p == a->host.p ? a->host_h : hsh(k->host.p, k->host.n);
	l.hash = mix64(mix64(mix64(l.name_h, l.host_h), l.tags_h), l.type);
	struct ctx *c = ctx_find(a, k, &l);
	*known = c != NULL;
	if (c)
		return c;
	return ctx_new(a, k, &l, nv, now);
}

/* histogram_copy_to_distribution: a histogram or timer sample again, as a
 * distribution named prefix + its enriched name (Datadog's server makes the
 * copy after enrichment, timestamp included). */
static __attribute__((noinline)) void copy_to_distribution(struct aggr *a, const struct dsd_metric *m, struct sample_key *k,
				 int64_t now)
{
	const char *pre = a->cfg->hist_copy_to_dist_prefix ? a->cfg->hist_copy_to_dist_prefix : "";
	struct dsd_metric d = *m;
	bool known;
	buf_reset(&a->dname);
	buf_puts(&a->dname, pre);
	buf_append(&a->dname, k->name.p, k->name.n);
	if (a->dname.failed) {
		a->dname.failed = false;
		a->st.dropped[AGGR_DROP_NOMEM] += m->nvalues;
		return;
	}
	k->name = (struct sv){ a->dname.p, a->dname.len };
	d.type = METRIC_DISTRIBUTION;
	d.cacheable = false;
	if (m->timestamp > 0 && a->cfg->no_aggregation_pipeline) {
		timestamped(a, &d, k);
		return;
	}
	struct ctx *c = ctx_get(a, k, METRIC_DISTRIBUTION, m->nvalues, now, &known);
	if (c)
		aggr_accumulate(a, c, &d, rate_of(m), now);
}

/* Whether histogram_copy_to_distribution applies to m. */
static inline bool copies(const struct aggr *a, const struct dsd_metric *m)
{
	return a->cfg->hist_copy_to_dist && family(m->type) == METRIC_HISTOGRAM;
}

void aggr_ingest(struct aggr *a, const struct dsd_metric *m, int64_t now)
{
	uint64_t nv = m->type == METRIC_SET ? 1 : m->nvalues;
	struct sample_key k;
	AGGR_INCR_CHECK(a, now);
	a->st.samples_in += nv;
	if (enrich(a, m->name, m->tags, m->ntags, &k) < 0) {
		a->st.dropped[AGGR_DROP_NOMEM] += nv;
		return;
	}
	if (m->timestamp > 0 && a->cfg->no_aggregation_pipeline) {
		timestamped(a, m, &k);
		if (copies(a, m))
			copy_to_distribution(a, m, &k, now);
		return;
	}
	bool known;
	struct ctx *c = ctx_get(a, &k, family(m->type), nv, now, &known);
	if (c) {
		aggr_accumulate(a, c, m, rate_of(m), now);
		/* Remembered on its second sighting: a context used once
		 * (unique series, a cardinality burst) costs the cache nothing.
		 * A line with a distribution copy is never remembered: the
		 * cache applies a line to one context. */
		if (m->cacheable && known && !copies(a, m))
			seen_remember(&a->seen, m, c, rate_of(m));
	}
	if (copies(a, m))
		copy_to_distribution(a, m, &k, now);
}

/* Event/check tags without the ones tag_role removes, plus the global tags,
 * in order, copied into the batch. *host: the last host: tag's value, if any
 * (left alone otherwise). */
static const char *const *extra_tags(struct aggr *a, const struct sv *tags, size_t n, uint32_t *nout,
				     struct sv *host)
{
	const char **t = arena_alloc(&a->pending->arena, (n + a->ngtags + 1) * sizeof(*t));
	uint32_t k = 0;
	if (!t)
		return NULL;
	bool card = false;
	for (size_t i = 0; i < n; i++) {
		enum tag_role r = tag_role(tags[i]);
		if (r != TAG_PLAIN && !tag_kept(tags[i], r, host, &card))
			continue;
		if (!(t[k++] = batch_str(a->pending, tags[i])))
			return NULL;
	}
	for (size_t i = 0; i < a->ngtags; i++)
		if (!(t[k++] = batch_str(a->pending, a->gtags[i].s)))
			return NULL;
	*nout = k;
	return t;
}

/* Datadog's rule: a non-empty h: field, else the last host: tag (even
 * empty), else the agent's hostname. */
static const char *rec_host(struct aggr *a, struct sv field, struct sv from_tags)
{
	return batch_str(a->pending, field.n ? field : from_tags);
}

void aggr_event(struct aggr *a, const struct dsd_event *e, int64_t now)
{
	AGGR_INCR_CHECK(a, now);
	a->st.events++;
	if (pending_full(a, 1))
		return;
	struct sv host = sv_from_cstr(a->cfg->hostname);
	struct event_rec r = {
		.title = batch_str(a->pending, e->title),
		.text = batch_str(a->pending, e->text),
		.ts = e->timestamp > 0 ? e->timestamp : now,
		.aggregation_key = batch_str(a->pending, e->aggregation_key),
		.source_type = batch_str(a->pending, e->source_type),
		.priority = e->priority,
		.alert_type = e->alert_type,
	};
	r.tags = extra_tags(a, e->tags, e->ntags, &r.ntags, &host);
	r.host = rec_host(a, e->hostname, host);
	if (!r.title || !r.text || !r.host || !r.aggregation_key || !r.source_type || !r.tags ||
	    batch_add_event(a->pending, &r) < 0) {
		a->st.dropped[AGGR_DROP_NOMEM]++;
		return;
	}
	a->npending++;
}

void aggr_service_check(struct aggr *a, const struct dsd_service_check *sc, int64_t now)
{
	AGGR_INCR_CHECK(a, now);
	a->st.service_checks++;
	if (pending_full(a, 1))
		return;
	struct sv host = sv_from_cstr(a->cfg->hostname);
	struct check_rec r = {
		.name = batch_str(a->pending, sc->name),
		.status = (int)sc->status,
		.ts = sc->timestamp > 0 ? sc->timestamp : now,
		.message = batch_str(a->pending, sc->message),
	};
	r.tags = extra_tags(a, sc->tags, sc->ntags, &r.ntags, &host);
	r.host = rec_host(a, sc->hostname, host);
	if (!r.name || !r.host || !r.message || !r.tags || batch_add_check(a->pending, &r) < 0) {
		a->st.dropped[AGGR_DROP_NOMEM]++;
		return;
	}
	a->npending++;
}
