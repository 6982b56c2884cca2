/*
 * intern.c - see intern.h.
 */
#include "aggr/intern.h"

#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

/* ---- strings ---- */

void strpool_init(struct strpool *p)
{
	ptab_init(&p->t);
	p->bytes = 0;
}

/* The malloc'ed size of a string of len bytes. */
static size_t str_size(size_t len)
{
	return sizeof(struct istr) + len + 1;
}

void strpool_done(struct strpool *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->t.cap; i++)
		if (ptab_at(&p->t, i))
			free(ptab_at(&p->t, i));
	ptab_done(&p->t);
	p->bytes = 0;
}

static bool str_eq(const void *item, const void *key)
{
	const struct istr *s = item;
	const struct sv *k = key;
	return s->len == k->n && (k->n == 0 || memcmp(s->s, k->p, k->n) == 0);
}

struct istr *strpool_find(const struct strpool *p, struct sv s, uint64_t h)
{
	return ptab_find(&p->t, h, str_eq, &s);
}

struct istr *strpool_get(struct strpool *p, struct sv s, uint64_t h)
{
	struct istr *is = strpool_find(p, s, h);
	if (is) {
		is->refcnt++;
		return is;
	}
	if (s.n > UINT32_MAX)
		return NULL;
	size_t sz = str_size(s.n);
	is = malloc(sz);
	if (!is)
		return NULL;
	is->hash = h;
	is->refcnt = 1;
	is->len = (uint32_t)s.n;
	if (s.n)
		memcpy(is->s, s.p, s.n);
	is->s[s.n] = '\0';
	if (ptab_insert(&p->t, is) < 0) {
		free(is);
		return NULL;
	}
	p->bytes += sz;
	return is;
}

void strpool_put(struct strpool *p, struct istr *s)
{
	if (!s || --s->refcnt > 0)
		return;
	ptab_remove(&p->t, s);
	p->bytes -= str_size(s->len);
	free(s);
}

void *strpool_unref(struct strpool *p, struct istr *s)
{
	if (!s || --s->refcnt > 0)
		return NULL;
	ptab_remove(&p->t, s);
	p->bytes -= str_size(s->len);
	return s;
}

/* ---- canonical tag lists ---- */

static int ref_cmp(const struct tagref *a, const struct tagref *b)
{
	if (a->h != b->h)
		return a->h < b->h ? -1 : 1;
	return sv_cmp(a->s, b->s);
}

static int ref_qcmp(const void *a, const void *b)
{
	return ref_cmp(a, b);
}

size_t tagref_canon(struct tagref *r, size_t n)
{
	if (n <= 8) {
		for (size_t i = 1; i < n; i++) {
			struct tagref x = r[i];
			size_t j = i;
			while (j > 0 && ref_cmp(&r[j - 1], &x) > 0) {
				r[j] = r[j - 1];
				j--;
			}
			r[j] = x;
		}
	} else {
		qsort(r, n, sizeof(*r), ref_qcmp);
	}
	size_t out = 0;
	for (size_t i = 0; i < n; i++)
		if (out == 0 || ref_cmp(&r[out - 1], &r[i]) != 0)
			r[out++] = r[i];
	return out;
}

/* ---- tag sets ---- */

struct tkey {
	const struct tagref *r;
	size_t n;
};

static bool ts_eq(const void *item, const void *key)
{
	const struct tkey *k = key;
	return tagset_eq(item, k->r, k->n);
}

void tagpool_init(struct tagpool *p)
{
	ptab_init(&p->t);
	p->bytes = 0;
}

static void ts_release(struct strpool *sp, struct tagset *ts)
{
	for (uint32_t i = 0; i < ts->n; i++)
		strpool_put(sp, ts->tags[i]);
	free(ts);
}

void tagpool_done(struct tagpool *p, struct strpool *sp)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->t.cap; i++)
		if (ptab_at(&p->t, i))
			ts_release(sp, ptab_at(&p->t, i));
	ptab_done(&p->t);
	p->bytes = 0;
}

struct tagset *tagpool_get(struct tagpool *p, struct strpool *sp, const struct tagref *r,
			   size_t n, uint64_t h)
{
	struct tkey k = { r, n };
	struct tagset *ts = ptab_find(&p->t, h, ts_eq, &k);
	if (ts) {
		ts->refcnt++;
		return ts;
	}
	if (n > UINT32_MAX)
		return NULL;
	size_t sz = sizeof(*ts) + n * sizeof(ts->tags[0]);
	ts = malloc(sz);
	if (!ts)
		return NULL;
	ts->hash = h;
	ts->refcnt = 1;
	ts->n = 0;
	for (size_t i = 0; i < n; i++) {
		ts->tags[i] = strpool_get(sp, r[i].s, r[i].h);
		if (!ts->tags[i])
			goto fail;
		ts->n++;
	}
	if (ptab_insert(&p->t, ts) < 0)
		goto fail;
	p->bytes += sz;
	return ts;
fail:
	ts_release(sp, ts);
	return NULL;
}

void tagpool_put(struct tagpool *p, struct strpool *sp, struct tagset *ts)
{
	if (!ts || --ts->refcnt > 0)
		return;
	ptab_remove(&p->t, ts);
	p->bytes -= sizeof(*ts) + ts->n * sizeof(ts->tags[0]);
	ts_release(sp, ts);
}

size_t tagpool_unref(struct tagpool *p, struct strpool *sp, struct tagset *ts, void **dead)
{
	if (!ts || --ts->refcnt > 0)
		return 0;
	ptab_remove(&p->t, ts);
	p->bytes -= sizeof(*ts) + ts->n * sizeof(ts->tags[0]);
	size_t n = 0;
	for (uint32_t i = 0; i < ts->n; i++) {
		void *s = strpool_unref(sp, ts->tags[i]);
		if (s)
			dead[n++] = s;
	}
	dead[n++] = ts;
	return n;
}
