/*
 * taglimit.c - see taglimit.h.
 *
 * Two tables under one mutex: key entries (metric name, tag key), one
 * malloc each with the names kept for the report, in an htab; value entries
 * (metric name, tag) inline in an open-addressing table of 24-byte slots,
 * each holding its refcount (live contexts with that tag) and its key entry.
 * A key entry goes when its last value goes, unless the limit has bitten it
 * (then it stays, for the report and the one WARN).
 */
#include "aggr/taglimit.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/htab.h"
#include "core/hash.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#define VTAB_MIN 64

struct tl_key {
	uint64_t h;		/* mix64(name hash, key hash) */
	uint64_t nvalues;
	uint64_t stripped, dropped;
	bool bitten, warned;
	char *metric, *key;
};

struct tl_val {
	uint64_t h;		/* mix64(name hash, tag hash) */
	struct tl_key *k;	/* NULL = empty slot */
	uint32_t ref;
};

struct vtab {
	struct tl_val *s;
	size_t cap, n;
};

struct taglimit {
	pthread_mutex_t mu;
	atomic_uint refs;
	size_t limit;
	enum taglimit_action action;
	struct htab keys;
	struct vtab vals;
	struct tl_key **bitten;	/* the keys the limit has bitten, in order */
	size_t nbitten, bitten_cap;
	size_t key_bytes;
	atomic_size_t bytes;	/* taglimit_bytes, kept up to date under mu */
};

/* ---- value table: linear probing, backward-shift deletion ---- */

static inline size_t vhome(const struct vtab *t, uint64_t h)
{
	return (size_t)(h ^ (h >> 31)) & (t->cap - 1);
}

static struct tl_val *vfind(const struct vtab *t, uint64_t h)
{
	if (!t->n)
		return NULL;
	for (size_t i = vhome(t, h); t->s[i].k; i = (i + 1) & (t->cap - 1))
		if (t->s[i].h == h)
			return &t->s[i];
	return NULL;
}

static struct tl_val *vplace(struct vtab *t, struct tl_val v)
{
	size_t i = vhome(t, v.h);
	while (t->s[i].k)
		i = (i + 1) & (t->cap - 1);
	t->s[i] = v;
	return &t->s[i];
}

static void bytes_update(struct taglimit *tl)
{
	atomic_store_explicit(&tl->bytes,
			      sizeof(*tl) + htab_bytes(&tl->keys) + tl->vals.cap * sizeof(struct tl_val) +
				      tl->key_bytes + tl->bitten_cap * sizeof(*tl->bitten),
			      memory_order_relaxed);
}

static int vresize(struct vtab *t, size_t cap)
{
	struct tl_val *ns = calloc(cap, sizeof(*ns));
	if (!ns)
		return -ENOMEM;
	struct vtab old = *t;
	t->s = ns;
	t->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.s[i].k)
			vplace(t, old.s[i]);
	free(old.s);
	return 0;
}

static struct tl_val *vinsert(struct vtab *t, uint64_t h, struct tl_key *k)
{
	if ((t->n + 1) * 2 > t->cap && vresize(t, t->cap ? t->cap * 2 : VTAB_MIN) < 0)
		return NULL;
	t->n++;
	return vplace(t, (struct tl_val){ .h = h, .k = k, .ref = 1 });
}

static void vremove(struct vtab *t, struct tl_val *v)
{
	size_t mask = t->cap - 1, i = (size_t)(v - t->s), j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (!t->s[j].k)
			break;
		size_t home = vhome(t, t->s[j].h);
		/* s[j] stays when its home lies cyclically in (i, j] */
		bool stays = i <= j ? (home > i && home <= j) : (home > i || home <= j);
		if (!stays) {
			t->s[i] = t->s[j];
			i = j;
		}
	}
	t->s[i].k = NULL;
	t->n--;
	if (t->cap > VTAB_MIN && t->n * 8 < t->cap)
		(void)vresize(t, t->cap / 2); /* a failed shrink keeps the larger table */
}

/* ---- key entries ---- */

static bool key_is(const void *item, const void *key)
{
	return ((const struct tl_key *)item)->h == *(const uint64_t *)key;
}

static struct sv key_of_tag(struct sv tag)
{
	const char *colon = memchr(tag.p, ':', tag.n);
	return (struct sv){ tag.p, colon ? (size_t)(colon - tag.p) : tag.n };
}

static char *dup_sv(struct sv s)
{
	char *p = malloc(s.n + 1);
	if (p) {
		memcpy(p, s.p, s.n);
		p[s.n] = '\0';
	}
	return p;
}

static void key_free(struct tl_key *k)
{
	if (!k)
		return;
	free(k->metric);
	free(k->key);
	free(k);
}

static struct tl_key *key_get(struct taglimit *tl, struct sv name, uint64_t name_h, struct sv tag)
{
	struct sv key = key_of_tag(tag);
	/* XXH3_64bits is hash64, inlined: once per new value of a new context */
	uint64_t h = mix64(name_h, XXH3_64bits(key.p, key.n));
	struct tl_key *k = htab_find(&tl->keys, h, key_is, &h);
	if (k)
		return k;
	k = calloc(1, sizeof(*k));
	if (!k || !(k->metric = dup_sv(name)) || !(k->key = dup_sv(key)) ||
	    htab_insert(&tl->keys, h, k) < 0) {
		key_free(k);
		return NULL;
	}
	k->h = h;
	tl->key_bytes += sizeof(*k) + name.n + key.n + 2;
	return k;
}

static void key_drop(struct taglimit *tl, struct tl_key *k)
{
	htab_remove(&tl->keys, k->h, k);
	tl->key_bytes -= sizeof(*k) + strlen(k->metric) + strlen(k->key) + 2;
	key_free(k);
}

/* The limit bites k: remembered for the report (once). */
static void bite(struct taglimit *tl, struct tl_key *k)
{
	if (k->bitten)
		return;
	if (tl->nbitten == tl->bitten_cap) {
		size_t nc = tl->bitten_cap ? tl->bitten_cap * 2 : 16;
		struct tl_key **nb = realloc(tl->bitten, nc * sizeof(*nb));
		if (!nb)
			return; /* not reported; tried again next time */
		tl->bitten = nb;
		tl->bitten_cap = nc;
	}
	tl->bitten[tl->nbitten++] = k;
	k->bitten = true;
}

/* ---- lifecycle ---- */

struct taglimit *taglimit_new(void)
{
	struct taglimit *tl = calloc(1, sizeof(*tl));
	if (!tl)
		return NULL;
	pthread_mutex_init(&tl->mu, NULL);
	atomic_init(&tl->refs, 1);
	htab_init(&tl->keys);
	return tl;
}

void taglimit_ref(struct taglimit *tl)
{
	atomic_fetch_add(&tl->refs, 1);
}

void taglimit_unref(struct taglimit *tl)
{
	if (!tl || atomic_fetch_sub(&tl->refs, 1) != 1)
		return;
	for (size_t i = 0; i < tl->keys.cap; i++)
		key_free(tl->keys.s[i].p);
	htab_done(&tl->keys);
	free(tl->vals.s);
	free(tl->bitten);
	pthread_mutex_destroy(&tl->mu);
	free(tl);
}

void taglimit_configure(struct taglimit *tl, size_t limit, enum taglimit_action action)
{
	pthread_mutex_lock(&tl->mu);
	tl->limit = limit;
	tl->action = action;
	pthread_mutex_unlock(&tl->mu);
}

/* ---- references ---- */

static void leave_one(struct taglimit *tl, uint64_t name_h, uint64_t tag_h)
{
	struct tl_val *v = vfind(&tl->vals, mix64(name_h, tag_h));
	if (!v || --v->ref)
		return;
	struct tl_key *k = v->k;
	vremove(&tl->vals, v);
	if (--k->nvalues == 0 && !k->bitten)
		key_drop(tl, k);
}

/* One tag of a new context: a reference on its value (true), or the limit
 * bites (false). -ENOMEM through *err. */
static bool enter_one(struct taglimit *tl, struct sv name, uint64_t name_h, const struct tagref *t,
		      uint64_t nv, int *err)
{
	uint64_t vh = mix64(name_h, t->h);
	struct tl_val *v = vfind(&tl->vals, vh);
	if (v) {
		v->ref++;
		return true;
	}
	struct tl_key *k = key_get(tl, name, name_h, t->s);
	if (!k) {
		*err = -ENOMEM;
		return false;
	}
	if (!tl->limit || k->nvalues < tl->limit) {
		if (!vinsert(&tl->vals, vh, k)) {
			if (!k->nvalues && !k->bitten)
				key_drop(tl, k);
			*err = -ENOMEM;
			return false;
		}
		k->nvalues++;
		return true;
	}
	bite(tl, k);
	if (tl->action == TAGLIMIT_DROP)
		k->dropped += nv;
	else
		k->stripped += nv;
	return false;
}

int taglimit_enter(struct taglimit *tl, struct sv name, uint64_t name_h, struct tagref *t,
		   size_t *n, uint64_t nv)
{
	size_t out = 0, in = *n;
	int err = 0, rc = TAGLIMIT_KEEP;
	pthread_mutex_lock(&tl->mu);
	for (size_t i = 0; i < in; i++) {
		if (enter_one(tl, name, name_h, &t[i], nv, &err)) {
			t[out++] = t[i];
			continue;
		}
		if (err || tl->action == TAGLIMIT_DROP) {
			for (size_t j = 0; j < out; j++)
				leave_one(tl, name_h, t[j].h);
			bytes_update(tl);
			pthread_mutex_unlock(&tl->mu);
			return err ? err : TAGLIMIT_DROPPED;
		}
		rc = TAGLIMIT_STRIPPED;
	}
	bytes_update(tl);
	pthread_mutex_unlock(&tl->mu);
	*n = out;
	return rc;
}

void taglimit_leave_refs(struct taglimit *tl, uint64_t name_h, const struct tagref *t, size_t n)
{
	pthread_mutex_lock(&tl->mu);
	for (size_t i = 0; i < n; i++)
		leave_one(tl, name_h, t[i].h);
	bytes_update(tl);
	pthread_mutex_unlock(&tl->mu);
}

void taglimit_leave_set(struct taglimit *tl, uint64_t name_h, const struct tagset *ts)
{
	pthread_mutex_lock(&tl->mu);
	for (uint32_t i = 0; i < ts->n; i++)
		leave_one(tl, name_h, ts->tags[i]->hash);
	bytes_update(tl);
	pthread_mutex_unlock(&tl->mu);
}

void taglimit_track_set(struct taglimit *tl, const struct istr *name, const struct tagset *ts)
{
	pthread_mutex_lock(&tl->mu);
	for (uint32_t i = 0; i < ts->n; i++) {
		const struct istr *t = ts->tags[i];
		uint64_t vh = mix64(name->hash, t->hash);
		struct tl_val *v = vfind(&tl->vals, vh);
		if (v) {
			v->ref++;
			continue;
		}
		struct tl_key *k = key_get(tl, istr_sv(name), name->hash, istr_sv(t));
		if (k && vinsert(&tl->vals, vh, k))
			k->nvalues++;
		else if (k && !k->nvalues && !k->bitten)
			key_drop(tl, k);
	}
	bytes_update(tl);
	pthread_mutex_unlock(&tl->mu);
}

/* ---- reading ---- */

uint64_t taglimit_values(struct taglimit *tl, struct sv name, struct sv key)
{
	uint64_t h = mix64(hash64(name.p, name.n), hash64(key.p, key.n));
	pthread_mutex_lock(&tl->mu);
	const struct tl_key *k = htab_find(&tl->keys, h, key_is, &h);
	uint64_t v = k ? k->nvalues : 0;
	pthread_mutex_unlock(&tl->mu);
	return v;
}

static uint64_t affected(const struct tl_key *k)
{
	return k->stripped + k->dropped;
}

static void row_fill(struct taglimit_row *r, const struct tl_key *k)
{
	snprintf(r->metric, sizeof(r->metric), "%s", k->metric);
	snprintf(r->key, sizeof(r->key), "%s", k->key);
	r->values = k->nvalues;
	r->stripped = k->stripped;
	r->dropped = k->dropped;
}

size_t taglimit_report(struct taglimit *tl, struct taglimit_row *out, size_t n, bool only_new)
{
	size_t got = 0;
	pthread_mutex_lock(&tl->mu);
	/* insertion of each candidate into out[], kept sorted, most affected first */
	const struct tl_key **best = calloc(n ? n : 1, sizeof(*best));
	for (size_t i = 0; best && i < tl->nbitten; i++) {
		struct tl_key *k = tl->bitten[i];
		if (only_new && k->warned)
			continue;
		if (got == n && (!n || affected(k) <= affected(best[n - 1])))
			continue;
		size_t j = got < n ? got++ : n - 1;
		while (j > 0 && affected(k) > affected(best[j - 1])) {
			best[j] = best[j - 1];
			j--;
		}
		best[j] = k;
	}
	for (size_t i = 0; best && i < got; i++) {
		row_fill(&out[i], best[i]);
		if (only_new)
			((struct tl_key *)best[i])->warned = true;
	}
	pthread_mutex_unlock(&tl->mu);
	free(best);
	return got;
}

size_t taglimit_limited_keys(struct taglimit *tl)
{
	pthread_mutex_lock(&tl->mu);
	size_t n = tl->nbitten;
	pthread_mutex_unlock(&tl->mu);
	return n;
}

size_t taglimit_bytes(const struct taglimit *tl)
{
	return atomic_load_explicit(&tl->bytes, memory_order_relaxed);
}
