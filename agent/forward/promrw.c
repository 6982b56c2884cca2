/*
 * promrw.c - see promrw.h. Each record becomes a label key (the sorted
 * label set serialised as "name\0value\0..."); records are sorted by key
 * and timestamp, so equal keys form one TimeSeries with ordered samples, and
 * cumulative totals accumulate in time order. The cumulative totals live in
 * an open-addressing table keyed by the same bytes.
 */
#include "forward/promrw.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/hash.h"
#include "forward/compress.h"
#include "remote_write.pb-c.h"

/* ---- name mapping ---- */

static int is_alpha_(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static int is_digit(unsigned char c)
{
	return c >= '0' && c <= '9';
}

static char *map_name(const char *in, size_t n, int colon_ok, const char *prefix_reserved)
{
	size_t pre = 0;
	const char *prefix = "";
	if (n == 0 || is_digit((unsigned char)in[0]))
		prefix = n == 0 ? "tag" : "_";
	else if (prefix_reserved && n >= 2 && in[0] == '_' && in[1] == '_')
		prefix = prefix_reserved;
	pre = strlen(prefix);
	char *out = malloc(pre + n + 1);
	if (!out)
		return NULL;
	memcpy(out, prefix, pre);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		out[pre + i] = (is_alpha_(c) || is_digit(c) || (colon_ok && c == ':')) ? (char)c : '_';
	}
	out[pre + n] = 0;
	return out;
}

char *promrw_metric_name(const char *name, size_t n)
{
	return map_name(name, n, 1, NULL);
}

char *promrw_label_name(const char *key, size_t n)
{
	return map_name(key, n, 0, "tag");
}

/* ---- cumulative totals ---- */

struct total {
	char *key;		/* NULL = empty slot */
	size_t keylen;
	uint64_t h;
	double v;
};

struct promrw {
	struct total *t;
	size_t cap, n;		/* cap: power of two */
};

struct promrw *promrw_new(void)
{
	return calloc(1, sizeof(struct promrw));
}

void promrw_free(struct promrw *st)
{
	if (!st)
		return;
	for (size_t i = 0; i < st->cap; i++)
		free(st->t[i].key);
	free(st->t);
	free(st);
}

size_t promrw_totals(const struct promrw *st)
{
	return st ? st->n : 0;
}

static struct total *slot_for(struct total *t, size_t cap, uint64_t h, const char *key, size_t len)
{
	for (size_t i = h & (cap - 1);; i = (i + 1) & (cap - 1))
		if (!t[i].key || (t[i].h == h && t[i].keylen == len && !memcmp(t[i].key, key, len)))
			return &t[i];
}

static int grow_totals(struct promrw *st)
{
	size_t nc = st->cap ? st->cap * 2 : 1024;
	struct total *nt = calloc(nc, sizeof(*nt));
	if (!nt)
		return -ENOMEM;
	for (size_t i = 0; i < st->cap; i++)
		if (st->t[i].key)
			*slot_for(nt, nc, st->t[i].h, st->t[i].key, st->t[i].keylen) = st->t[i];
	free(st->t);
	st->t = nt;
	st->cap = nc;
	return 0;
}

/* Adds v to the total of key and returns the new total in *out. -ENOSPC
 * when the table is full (the caller sends the interval's count instead). */
static int add_total(struct promrw *st, const char *key, size_t len, double v, double *out)
{
	uint64_t h = hash64(key, len);
	if ((st->n + 1) * 2 > st->cap && grow_totals(st) < 0)
		return -ENOMEM;
	struct total *e = slot_for(st->t, st->cap, h, key, len);
	if (!e->key) {
		if (st->n >= PROMRW_MAX_TOTALS)
			return -ENOSPC;
		if (!(e->key = malloc(len)))
			return -ENOMEM;
		memcpy(e->key, key, len);
		e->keylen = len;
		e->h = h;
		e->v = 0;
		st->n++;
	}
	e->v += v;
	*out = e->v;
	return 0;
}

/* ---- one record's label set ---- */

struct lab {
	char *name;		/* owned */
	const char *val;
	size_t vlen;
	size_t order;		/* input order: ties keep it */
};

struct rec {
	char *key;		/* "name\0value\0" per label, sorted by name */
	size_t keylen;
	uint32_t nlabels;
	int64_t ts_ms;
	double value;
	int counter;
	size_t idx;		/* input order: ties keep it */
};

static int lab_cmp(const void *a, const void *b)
{
	const struct lab *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : (x->order > y->order) - (x->order < y->order);
}

static int value_seen(const struct lab *l, size_t from, size_t i)
{
	for (size_t k = from; k < i; k++)
		if (l[k].vlen == l[i].vlen && !memcmp(l[k].val, l[i].val, l[i].vlen))
			return 1;
	return 0;
}

/* Serialises sorted labels, joining the values of equal names. */
static int serialise(struct lab *l, size_t n, struct rec *r)
{
	struct buf b;
	buf_init(&b);
	r->nlabels = 0;
	for (size_t i = 0; i < n;) {
		size_t j = i;
		buf_append(&b, l[i].name, strlen(l[i].name) + 1);
		for (; j < n && !strcmp(l[j].name, l[i].name); j++) {
			if (value_seen(l, i, j))
				continue;
			if (j > i)
				buf_putc(&b, ',');
			buf_append(&b, l[j].val, l[j].vlen);
		}
		buf_putc(&b, 0);
		r->nlabels++;
		i = j;
	}
	if (b.failed) {
		buf_done(&b);
		return -ENOMEM;
	}
	r->key = buf_steal(&b, &r->keylen);
	return r->key ? 0 : -ENOMEM;
}

static int push_lab(struct lab *l, size_t *n, char *name, const char *val, size_t vlen)
{
	if (!name)
		return -ENOMEM;
	l[*n] = (struct lab){ name, val, vlen, *n };
	(*n)++;
	return 0;
}

/* "<stem>.95percentile" -> quantile="0.95"; "<stem>.max" -> stat="max". */
static int hist_label(const struct series *s, struct lab *l, size_t *n, char *qbuf, size_t qlen)
{
	const char *suf = s->name + s->stem_len + 1;
	size_t sl = strlen(suf);
	static const char pct[] = "percentile";
	if (sl > sizeof(pct) - 1 && !strcmp(suf + sl - (sizeof(pct) - 1), pct) && is_digit((unsigned char)suf[0])) {
		snprintf(qbuf, qlen, "%g", atof(suf) / 100.0);
		return push_lab(l, n, strdup("quantile"), qbuf, strlen(qbuf));
	}
	return push_lab(l, n, strdup("stat"), suf, sl);
}

static int is_counter(const struct series *s)
{
	return s->kind == SERIES_RATE || s->kind == SERIES_COUNT;
}

static char *series_name(const struct series *s, int cumulative)
{
	int hist = s->stem_len > 0 && s->name[s->stem_len] == '.';
	size_t n = hist ? s->stem_len : strlen(s->name);
	char *m = promrw_metric_name(s->name, n);
	if (!m || !cumulative || !is_counter(s))
		return m;
	size_t ml = strlen(m);
	if (ml >= 6 && !strcmp(m + ml - 6, "_total"))
		return m;
	char *t = realloc(m, ml + 7);
	if (!t) {
		free(m);
		return NULL;
	}
	memcpy(t + ml, "_total", 7);
	return t;
}

/* A rate back to the interval's count. The rate is count / interval, so the
 * product can miss an integer count by an ulp: it is snapped to the integer
 * then (counts of unsampled increments are integers). */
static double interval_count(const struct series *s)
{
	double c = s->value * (double)(s->interval ? s->interval : 1);
	double r = nearbyint(c);
	return fabs(c - r) <= 1e-9 * fmax(1.0, fabs(c)) ? r : c;
}

static int build_rec(const struct series *s, int cumulative, struct rec *r)
{
	size_t nl = 0, cap = (size_t)s->ntags + 3;
	char qbuf[32];
	struct lab *l = calloc(cap, sizeof(*l));
	if (!l)
		return -ENOMEM;
	int rc = push_lab(l, &nl, series_name(s, cumulative), NULL, 0);
	if (rc == 0) {
		l[0].val = l[0].name;	/* value set below, name replaced */
		l[0].name = strdup("__name__");
		l[0].vlen = strlen(l[0].val);
		rc = l[0].name ? 0 : -ENOMEM;
	}
	char *metric = (char *)l[0].val;
	if (rc == 0 && s->host && *s->host)
		rc = push_lab(l, &nl, strdup("host"), s->host, strlen(s->host));
	if (rc == 0 && s->stem_len > 0 && s->name[s->stem_len] == '.')
		rc = hist_label(s, l, &nl, qbuf, sizeof(qbuf));
	for (uint32_t i = 0; rc == 0 && i < s->ntags; i++) {
		const char *t = s->tags[i], *colon = strchr(t, ':');
		size_t kl = colon ? (size_t)(colon - t) : strlen(t);
		const char *v = colon ? colon + 1 : "true";
		rc = push_lab(l, &nl, promrw_label_name(t, kl), v, strlen(v));
	}
	if (rc == 0) {
		qsort(l, nl, sizeof(*l), lab_cmp);
		rc = serialise(l, nl, r);
	}
	for (size_t i = 0; i < nl; i++)
		free(l[i].name);
	free(metric);
	free(l);
	if (rc < 0)
		return rc;
	r->ts_ms = s->ts * 1000;
	r->counter = is_counter(s);
	r->value = s->kind == SERIES_RATE ? interval_count(s) : s->value;
	return 0;
}

static int rec_cmp(const void *a, const void *b)
{
	const struct rec *x = a, *y = b;
	size_t n = x->keylen < y->keylen ? x->keylen : y->keylen;
	int c = memcmp(x->key, y->key, n);
	if (c)
		return c;
	if (x->keylen != y->keylen)
		return x->keylen < y->keylen ? -1 : 1;
	if (x->ts_ms != y->ts_ms)
		return x->ts_ms < y->ts_ms ? -1 : 1;
	return (x->idx > y->idx) - (x->idx < y->idx);
}

/* ---- requests ---- */

struct packer {
	const struct promrw_opts *o;
	enc_emit_fn emit;
	void *arg;
	struct enc_result *res;
	Prometheus__TimeSeries *ts;	/* this request's series */
	Prometheus__TimeSeries **tsp;
	Prometheus__Label *labels;
	Prometheus__Label **labelp;
	Prometheus__Sample *samples;
	Prometheus__Sample **samplep;
	size_t nts, nlabels, nsamples, max;
	size_t nrecs;		/* records in this request (>= nsamples: merged ones) */
};

static int emit_request(struct packer *pk)
{
	if (!pk->nrecs)
		return 0;
	Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
	wr.n_timeseries = pk->nts;
	wr.timeseries = pk->tsp;
	size_t raw = prometheus__write_request__get_packed_size(&wr);
	uint8_t *buf = malloc(raw ? raw : 1);
	struct payload *p = calloc(1, sizeof(*p));
	int rc = buf && p ? 0 : -ENOMEM;
	if (rc == 0) {
		prometheus__write_request__pack(&wr, buf);
		rc = compress_buf(COMPRESS_SNAPPY, 0, buf, raw, &p->data, &p->len);
	}
	free(buf);
	if (rc < 0) {
		free(p);
		return rc;
	}
	p->ep = FWD_EP_PROMRW;
	p->enc = COMPRESS_SNAPPY;
	p->raw_len = raw;
	p->npoints = (uint32_t)pk->nrecs;
	p->created = pk->o->created;
	p->seq = pk->o->seq ? (*pk->o->seq)++ : 0;
	pk->res->payloads++;
	pk->res->records += pk->nrecs;
	pk->nts = pk->nlabels = pk->nsamples = pk->nrecs = 0;
	return pk->emit(pk->arg, p);
}

/* Starts a TimeSeries for the labels of r. */
static void open_series(struct packer *pk, const struct rec *r)
{
	Prometheus__TimeSeries *t = &pk->ts[pk->nts];
	prometheus__time_series__init(t);
	t->labels = &pk->labelp[pk->nlabels];
	const char *p = r->key;
	for (uint32_t i = 0; i < r->nlabels; i++) {
		Prometheus__Label *l = &pk->labels[pk->nlabels];
		prometheus__label__init(l);
		l->name = (char *)p;
		p += strlen(p) + 1;
		l->value = (char *)p;
		p += strlen(p) + 1;
		pk->labelp[pk->nlabels++] = l;
		t->n_labels++;
	}
	t->samples = &pk->samplep[pk->nsamples];
	pk->tsp[pk->nts++] = t;
}

static void add_sample(struct packer *pk, const struct rec *r)
{
	Prometheus__Sample *s = &pk->samples[pk->nsamples];
	prometheus__sample__init(s);
	s->value = r->value;
	s->timestamp = r->ts_ms;
	pk->samplep[pk->nsamples++] = s;
	pk->nrecs++;
	pk->ts[pk->nts - 1].n_samples++;
}

/* Two records of one series and timestamp (names or tag keys that map to
 * the same Prometheus name): one sample, as Prometheus refuses a second
 * value at a timestamp. Counts add up (a cumulative total is already the
 * later one's); a gauge keeps the last value. */
static void merge_sample(struct packer *pk, const struct rec *r)
{
	Prometheus__Sample *s = pk->samplep[pk->nsamples - 1];
	s->value = r->counter && !pk->o->cumulative ? s->value + r->value : r->value;
	pk->nrecs++;
}

static int pack(struct packer *pk, const struct rec *r, size_t n)
{
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		int same = i > 0 && r[i].keylen == r[i - 1].keylen &&
			   !memcmp(r[i].key, r[i - 1].key, r[i].keylen);
		if (same && r[i].ts_ms == r[i - 1].ts_ms && pk->nsamples > 0) {
			merge_sample(pk, &r[i]);
			continue;
		}
		if (pk->nsamples == pk->max) {
			rc = emit_request(pk);
			same = 0;
		}
		if (rc < 0)
			break;
		if (!same)
			open_series(pk, &r[i]);
		add_sample(pk, &r[i]);
	}
	if (rc == 0)
		rc = emit_request(pk);
	return rc;
}

static int alloc_packer(struct packer *pk, const struct rec *r, size_t n)
{
	size_t maxl = 0;
	for (size_t i = 0; i < n; i++)
		if (r[i].nlabels > maxl)
			maxl = r[i].nlabels;
	size_t m = pk->max;
	pk->ts = calloc(m, sizeof(*pk->ts));
	pk->tsp = calloc(m, sizeof(*pk->tsp));
	pk->labels = calloc(m * maxl + 1, sizeof(*pk->labels));
	pk->labelp = calloc(m * maxl + 1, sizeof(*pk->labelp));
	pk->samples = calloc(m, sizeof(*pk->samples));
	pk->samplep = calloc(m, sizeof(*pk->samplep));
	return pk->ts && pk->tsp && pk->labels && pk->labelp && pk->samples && pk->samplep ? 0 : -ENOMEM;
}

static void free_packer(struct packer *pk)
{
	free(pk->ts);
	free(pk->tsp);
	free(pk->labels);
	free(pk->labelp);
	free(pk->samples);
	free(pk->samplep);
}

static void apply_totals(struct promrw *st, struct rec *r, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		double t;
		if (r[i].counter && add_total(st, r[i].key, r[i].keylen, r[i].value, &t) == 0)
			r[i].value = t;
	}
}

int promrw_encode(struct promrw *st, const struct series *s, size_t n, const struct promrw_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res)
{
	memset(res, 0, sizeof(*res));
	struct rec *r = calloc(n ? n : 1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	size_t nr = 0;
	int rc = 0;
	for (size_t i = 0; i < n && rc == 0; i++) {
		if (!isfinite(s[i].value)) {
			res->non_finite++;
			continue;
		}
		if ((rc = build_rec(&s[i], o->cumulative, &r[nr])) == 0)
			r[nr++].idx = i;
	}
	struct packer pk = { .o = o, .emit = emit, .arg = arg, .res = res,
			     .max = o->max_samples ? o->max_samples : PROMRW_DEFAULT_MAX_SAMPLES };
	if (rc == 0) {
		qsort(r, nr, sizeof(*r), rec_cmp);
		if (o->cumulative && st)
			apply_totals(st, r, nr);
		if (pk.max > nr)
			pk.max = nr ? nr : 1;
		rc = alloc_packer(&pk, r, nr);
	}
	if (rc == 0)
		rc = pack(&pk, r, nr);
	free_packer(&pk);
	for (size_t i = 0; i < nr; i++)
		free(r[i].key);
	free(r);
	return rc;
}
