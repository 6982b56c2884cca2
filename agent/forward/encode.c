/*
 * encode.c - see encode.h.
 *
 * Records are rendered once each, as the packer reaches them, into a window
 * buffer (offsets per record); the packer takes the longest run of records
 * whose estimated assembled size fits the uncompressed limit and the point
 * cap, compresses it and, if the compressed body is over the limit, halves
 * the run (log n extra compressions in the worst case). JSON list records are
 * rendered each followed by a comma, so a run's body is compressed straight
 * from the window as prefix + slice + suffix (compress_parts; libdeflate
 * needs them contiguous, so compress.c copies them once, ~20 ms per 140 MB);
 * events and protobuf runs are assembled into a buffer first. Records
 * already packed are dropped from the front of the window, so the buffer holds
 * about one payload, not the whole batch (1M series: ~1.5 MB instead of
 * ~150 MB of freshly faulted pages).
 *
 * Cost: compression is most of it, rendering a small part (bench/flushcost
 * encode measures both; docs/PERFORMANCE.md).
 */
#include "forward/encode.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent_payload.pb-c.h"
#include "core/buf.h"
#include "core/json.h"
#include "forward/compress.h"

#define DEFAULT_MAX_POINTS 10000

static const struct fwd_endpoint_info endpoints[FWD_EP_COUNT] = {
	[FWD_EP_SERIES_V1] = { "/api/v1/series", "application/json", 3200000, 62914560 },
	[FWD_EP_SERIES_V2] = { "/api/v2/series", "application/x-protobuf", 512000, 5242880 },
	[FWD_EP_SKETCHES] = { "/api/beta/sketches", "application/x-protobuf", 512000, 5242880 },
	[FWD_EP_CHECKS] = { "/api/v1/check_run", "application/json", 3200000, 62914560 },
	[FWD_EP_EVENTS] = { "/intake/", "application/json", 3200000, 62914560 },
	[FWD_EP_PROMRW] = { "/api/v1/write", "application/x-protobuf", 4194304, 33554432 },
};

const struct fwd_endpoint_info *fwd_endpoint_info(enum fwd_endpoint ep)
{
	return (unsigned)ep < FWD_EP_COUNT ? &endpoints[ep] : NULL;
}

int fwd_endpoint_by_path(const char *path)
{
	for (int i = 0; i < FWD_EP_COUNT; i++)
		if (path && strcmp(endpoints[i].path, path) == 0)
			return i;
	return -1;
}

void payload_free(struct payload *p)
{
	if (!p)
		return;
	free(p->data);
	free(p);
}

/* ---- rendered records ---- */

/* Renders record k of ctx at the end of b; 0 or -ENOMEM. */
typedef int (*render_fn)(struct buf *b, const void *ctx, size_t k);

struct rendered {
	struct buf all;	/* the window: records [.., hi) still needed */
	size_t *off;	/* n + 1 offsets; record k is at all.p + off[k] - shift */
	size_t shift;	/* bytes dropped from the front of the window */
	size_t n, hi;	/* records; rendered so far */
	const char *const *group; /* events: source type per record, else NULL */
	bool sep;	/* a ',' after each record (JSON lists: bodies are slices) */
	render_fn render;
	const void *ctx;
};

static int rendered_init(struct rendered *r, size_t n, render_fn render, const void *ctx)
{
	memset(r, 0, sizeof(*r));
	buf_init(&r->all);
	r->n = n;
	r->render = render;
	r->ctx = ctx;
	r->off = calloc(n + 1, sizeof(*r->off));
	return r->off ? 0 : -ENOMEM;
}

static const char *rec_ptr(const struct rendered *r, size_t k)
{
	return r->all.p + (r->off[k] - r->shift);
}

/* Renders up to record j (exclusive). */
static int render_upto(struct rendered *r, size_t j)
{
	while (r->hi < j) {
		if (r->render(&r->all, r->ctx, r->hi) < 0 || (r->sep && buf_putc(&r->all, ',') < 0) ||
		    r->all.failed)
			return -ENOMEM;
		r->off[r->hi + 1] = r->shift + r->all.len;
		r->hi++;
	}
	return 0;
}

/* Drops the records before i from the window once they are most of it. */
static void compact(struct rendered *r, size_t i)
{
	size_t d = r->off[i] - r->shift;
	if (d < ((size_t)1 << 20) || d < r->all.len / 2)
		return;
	memmove(r->all.p, r->all.p + d, r->all.len - d);
	r->all.len -= d;
	r->shift += d;
}

static void rendered_done(struct rendered *r)
{
	buf_done(&r->all);
	free(r->off);
}

static size_t item_len(const struct rendered *r, size_t i)
{
	return r->off[i + 1] - r->off[i];
}

/* ---- packing ---- */

enum shape { SHAPE_JSON_SERIES, SHAPE_JSON_LIST, SHAPE_JSON_EVENTS, SHAPE_PROTO };

struct packer {
	const struct enc_opts *o;
	enum fwd_endpoint ep;
	enum shape shape;
	size_t max_c, max_u, max_pts;
	enc_emit_fn emit;
	void *arg;
	struct enc_result *res;
	struct buf raw;
};

/* Upper bound of the assembled size of one record, wrapper excluded. */
static size_t item_cost(const struct packer *pk, const struct rendered *r, size_t i)
{
	size_t c = item_len(r, i) + (r->sep ? 0 : 1); /* its comma */
	if (pk->shape == SHAPE_JSON_EVENTS)
		c += 2 * strlen(r->group[i]) + 16; /* worst case: its own group */
	return c;
}

static size_t fixed_cost(const struct packer *pk)
{
	size_t h = pk->o->hostname ? 6 * strlen(pk->o->hostname) : 0;
	return 64 + h;
}

static void assemble_events(const struct packer *pk, const struct rendered *r,
			    size_t i, size_t j, struct buf *out)
{
	struct jw w;
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "apiKey");
	jw_str(&w, "");
	jw_key(&w, "events");
	jw_obj_begin(&w);
	for (size_t k = i; k < j; k++) {
		if (k == i || strcmp(r->group[k], r->group[k - 1]) != 0) {
			if (k != i)
				jw_arr_end(&w);
			jw_key(&w, r->group[k]);
			jw_arr_begin(&w);
		}
		jw_raw(&w, rec_ptr(r, k), item_len(r, k));
	}
	if (j > i)
		jw_arr_end(&w);
	jw_obj_end(&w);
	jw_key(&w, "internalHostname");
	jw_str(&w, pk->o->hostname ? pk->o->hostname : "");
	jw_obj_end(&w);
}

static void assemble(const struct packer *pk, const struct rendered *r, size_t i, size_t j,
		     struct buf *out)
{
	buf_reset(out);
	if (pk->shape == SHAPE_PROTO)
		buf_append(out, rec_ptr(r, i), r->off[j] - r->off[i]);
	else
		assemble_events(pk, r, i, j, out);
}

/* Compresses the body of records [i, j) into *z; *raw is its size, and *z
 * stays NULL when that is over the uncompressed limit. JSON lists are not
 * assembled: the window already holds "rec,rec,...,rec," and the body is
 * prefix + that slice without its last comma + suffix. */
static int compress_range(struct packer *pk, const struct rendered *r, size_t i, size_t j,
			  uint8_t **z, size_t *zlen, size_t *raw)
{
	struct compress_part parts[3];
	size_t np = 0;
	if (pk->shape == SHAPE_JSON_SERIES || pk->shape == SHAPE_JSON_LIST) {
		bool series = pk->shape == SHAPE_JSON_SERIES;
		parts[np++] = (struct compress_part){ series ? "{\"series\":[" : "[", series ? 11 : 1 };
		parts[np++] = (struct compress_part){ rec_ptr(r, i), r->off[j] - r->off[i] - 1 };
		parts[np++] = (struct compress_part){ series ? "]}" : "]", series ? 2 : 1 };
	} else {
		assemble(pk, r, i, j, &pk->raw);
		if (pk->raw.failed)
			return -ENOMEM;
		parts[np++] = (struct compress_part){ pk->raw.p, pk->raw.len };
	}
	*raw = 0;
	for (size_t k = 0; k < np; k++)
		*raw += parts[k].n;
	*z = NULL;
	if (*raw > pk->max_u)
		return 0;
	return compress_parts(pk->o->compressor, pk->o->level, parts, np, z, zlen);
}

/* Emits records [i, j) as one payload, or halves until each part fits. */
static int pack_range(struct packer *pk, const struct rendered *r, size_t i, size_t j)
{
	uint8_t *z = NULL;
	size_t zlen = 0, raw = 0;
	int rc = compress_range(pk, r, i, j, &z, &zlen, &raw);
	if (rc < 0)
		return rc;
	if (!z || zlen > pk->max_c) {
		free(z);
		if (j - i == 1) {
			pk->res->too_large++;
			return 0;
		}
		size_t mid = i + (j - i) / 2;
		rc = pack_range(pk, r, i, mid);
		return rc < 0 ? rc : pack_range(pk, r, mid, j);
	}
	struct payload *p = calloc(1, sizeof(*p));
	if (!p) {
		free(z);
		return -ENOMEM;
	}
	p->ep = pk->ep;
	p->enc = pk->o->compressor;
	p->data = z;
	p->len = zlen;
	p->raw_len = raw;
	p->npoints = (uint32_t)(j - i);
	p->created = pk->o->created;
	p->seq = pk->o->seq ? (*pk->o->seq)++ : 0;
	pk->res->payloads++;
	pk->res->records += j - i;
	return pk->emit(pk->arg, p);
}

static int pack_all(struct packer *pk, struct rendered *r)
{
	size_t fixed = fixed_cost(pk);
	size_t i = 0;
	int rc = 0;
	while (i < r->n && rc == 0) {
		size_t est = fixed, j = i;
		compact(r, i);
		while (j < r->n && j - i < pk->max_pts) {
			if (render_upto(r, j + 1) < 0)
				return -ENOMEM;
			size_t c = item_cost(pk, r, j);
			if (est + c > pk->max_u)
				break;
			est += c;
			j++;
		}
		if (j == i) { /* record alone over the limit */
			pk->res->too_large++;
			i++;
			continue;
		}
		rc = pack_range(pk, r, i, j);
		i = j;
	}
	return rc;
}

static int run_packer(enum fwd_endpoint ep, enum shape shape, struct rendered *r,
		      const struct enc_opts *o, enc_emit_fn emit, void *arg, struct enc_result *res)
{
	const struct fwd_endpoint_info *info = &endpoints[ep];
	r->sep = shape == SHAPE_JSON_SERIES || shape == SHAPE_JSON_LIST;
	struct packer pk = {
		.o = o, .ep = ep, .shape = shape, .emit = emit, .arg = arg, .res = res,
		.max_c = o->max_compressed ? o->max_compressed : info->max_compressed,
		.max_u = o->max_uncompressed ? o->max_uncompressed : info->max_uncompressed,
		.max_pts = SIZE_MAX,
	};
	if (ep == FWD_EP_SERIES_V1 || ep == FWD_EP_SERIES_V2)
		pk.max_pts = o->max_points ? o->max_points : DEFAULT_MAX_POINTS;
	buf_init(&pk.raw);
	int rc = pack_all(&pk, r);
	buf_done(&pk.raw);
	return rc;
}

/* The n records of ctx, rendered by render, packed into payloads for ep. */
static int encode_all(enum fwd_endpoint ep, enum shape shape, size_t n, render_fn render,
		      const void *ctx, const struct enc_opts *o, enc_emit_fn emit, void *arg,
		      struct enc_result *res)
{
	struct rendered r;
	int rc = rendered_init(&r, n, render, ctx);
	if (rc == 0)
		rc = run_packer(ep, shape, &r, o, emit, arg, res);
	rendered_done(&r);
	return rc;
}

static void res_clear(struct enc_result *res)
{
	memset(res, 0, sizeof(*res));
}

/* ---- the non-finite guard ----
 * The records to encode: the caller's array, or, when some record carries a
 * number that is not finite, a copy without those (*copy, freed by the
 * caller), counted in res->non_finite. NULL on ENOMEM. */

static bool series_finite(const struct series *s)
{
	return isfinite(s->value);
}

static bool sketch_finite(const struct sketch_point *s)
{
	return isfinite(s->sum) && isfinite(s->min) && isfinite(s->max) && isfinite(s->avg);
}

#define DEFINE_FINITE_ONLY(NAME, T, OK)                                                  \
	static const T *NAME(const T *s, size_t *n, T **copy, struct enc_result *res)  \
	{                                                                            \
		size_t bad = 0, k = 0;                                               \
		*copy = NULL;                                                        \
		for (size_t i = 0; i < *n; i++)                                      \
			bad += !OK(&s[i]);                                           \
		if (!bad)                                                            \
			return s;                                                    \
		if (!(*copy = malloc((*n - bad + 1) * sizeof(**copy))))              \
			return NULL;                                                 \
		for (size_t i = 0; i < *n; i++)                                      \
			if (OK(&s[i]))                                               \
				(*copy)[k++] = s[i];                                 \
		res->non_finite = bad;                                               \
		*n = k;                                                              \
		return *copy;                                                        \
	}

DEFINE_FINITE_ONLY(finite_series, struct series, series_finite)
DEFINE_FINITE_ONLY(finite_sketches, struct sketch_point, sketch_finite)

/* ---- JSON renderers ---- */

static void json_tags(struct jw *w, const char *const *tags, uint32_t n)
{
	jw_arr_begin(w);
	for (uint32_t i = 0; i < n; i++)
		jw_str(w, tags[i]);
	jw_arr_end(w);
}

/* Room a C string needs escaped (NULL: "null"); SIZE_MAX when absurd. */
static size_t str_room(const char *s, size_t *len)
{
	*len = s ? strlen(s) : 0;
	return *len > (SIZE_MAX / 8) ? SIZE_MAX : JSON_ESCAPE_MAX(*len);
}

static char *put_str(char *o, const char *s, size_t len)
{
	if (!s) {
		memcpy(o, "null", 4);
		return o + 4;
	}
	return json_escape_to(o, s, len);
}

#define PUT_LIT(o, lit) (memcpy((o), (lit), sizeof(lit) - 1), (o) + sizeof(lit) - 1)

/* The series' record up to and including "tags":[ ; false on ENOMEM. The
 * same bytes the jw_* writer gives (series_v1_exact_json pins them). 192
 * spare bytes: the literals (62), ts and interval (20 each), the value (40). */
static bool series_head(struct buf *b, const struct series *s)
{
	const char *host = s->host ? s->host : "", *kind = series_kind_name(s->kind);
	size_t ln, lh, lk;
	size_t rn = str_room(s->name, &ln), rh = str_room(host, &lh), rk = str_room(kind, &lk);
	if (rn == SIZE_MAX || rh == SIZE_MAX || buf_reserve(b, rn + rh + rk + 192) < 0)
		return false;
	char *o = b->p + b->len;
	o = PUT_LIT(o, "{\"metric\":");
	o = put_str(o, s->name, ln);
	o = PUT_LIT(o, ",\"points\":[[");
	o += json_format_int(o, s->ts);
	*o++ = ',';
	o += json_format_double(o, 40, s->value); /* finite: finite_series */
	o = PUT_LIT(o, "]],\"type\":\"");
	memcpy(o, kind, lk); /* "gauge", "rate", "count": nothing to escape */
	o += lk;
	*o++ = '"';
	o = PUT_LIT(o, ",\"interval\":");
	o += json_format_uint(o, s->interval);
	o = PUT_LIT(o, ",\"host\":");
	o = json_escape_to(o, host, lh);
	o = PUT_LIT(o, ",\"tags\":[");
	b->len = (size_t)(o - b->p);
	return true;
}

/* Renders straight into b (one reservation per string, no writer state):
 * this runs once per series of every flush, 1M times for 1M contexts. */
static void render_series_v1(struct buf *b, const struct series *s)
{
	if (!series_head(b, s)) {
		b->failed = true;
		return;
	}
	for (uint32_t i = 0; i < s->ntags; i++) {
		size_t lt, rt = str_room(s->tags[i], &lt);
		if (rt == SIZE_MAX || buf_reserve(b, rt + 1) < 0) {
			b->failed = true;
			return;
		}
		char *o = b->p + b->len;
		if (i)
			*o++ = ',';
		o = put_str(o, s->tags[i], lt);
		b->len = (size_t)(o - b->p);
	}
	if (buf_reserve(b, 2) < 0) {
		b->failed = true;
		return;
	}
	b->p[b->len++] = ']';
	b->p[b->len++] = '}';
	b->p[b->len] = '\0';
}

static void render_check(struct buf *b, const struct check_rec *c)
{
	struct jw w;
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_key(&w, "check");
	jw_str(&w, c->name);
	jw_key(&w, "host_name");
	jw_str(&w, c->host ? c->host : "");
	jw_key(&w, "timestamp");
	jw_int(&w, c->ts);
	jw_key(&w, "status");
	jw_int(&w, c->status);
	jw_key(&w, "message");
	jw_str(&w, c->message ? c->message : "");
	jw_key(&w, "tags");
	json_tags(&w, c->tags, c->ntags);
	jw_obj_end(&w);
}

static void render_event(struct buf *b, const struct event_rec *e)
{
	struct jw w;
	jw_init(&w, b);
	jw_obj_begin(&w);
	jw_key(&w, "msg_title");
	jw_str(&w, e->title);
	jw_key(&w, "msg_text");
	jw_str(&w, e->text ? e->text : "");
	jw_key(&w, "timestamp");
	jw_int(&w, e->ts);
	jw_key(&w, "priority");
	jw_str(&w, event_priority_name(e->priority));
	jw_key(&w, "host");
	jw_str(&w, e->host ? e->host : "");
	jw_key(&w, "tags");
	json_tags(&w, e->tags, e->ntags);
	jw_key(&w, "alert_type");
	jw_str(&w, event_alert_type_name(e->alert_type));
	if (e->aggregation_key && e->aggregation_key[0]) {
		jw_key(&w, "aggregation_key");
		jw_str(&w, e->aggregation_key);
	}
	if (e->source_type && e->source_type[0]) {
		jw_key(&w, "source_type_name");
		jw_str(&w, e->source_type);
	}
	jw_obj_end(&w);
}

static int r_series_v1(struct buf *b, const void *ctx, size_t k)
{
	render_series_v1(b, &((const struct series *)ctx)[k]);
	return 0;
}

static int r_check(struct buf *b, const void *ctx, size_t k)
{
	render_check(b, &((const struct check_rec *)ctx)[k]);
	return 0;
}

int enc_series_v1(const struct series *s, size_t n, const struct enc_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res)
{
	struct series *copy;
	res_clear(res);
	if (!(s = finite_series(s, &n, &copy, res)))
		return -ENOMEM;
	int rc = encode_all(FWD_EP_SERIES_V1, SHAPE_JSON_SERIES, n, r_series_v1, s, o, emit, arg, res);
	free(copy);
	return rc;
}

int enc_checks(const struct check_rec *c, size_t n, const struct enc_opts *o,
	       enc_emit_fn emit, void *arg, struct enc_result *res)
{
	res_clear(res);
	return encode_all(FWD_EP_CHECKS, SHAPE_JSON_LIST, n, r_check, c, o, emit, arg, res);
}

static const char *event_group(const struct event_rec *e)
{
	return e->source_type && e->source_type[0] ? e->source_type : "api";
}

static int cmp_event_idx(const void *a, const void *b, void *base)
{
	const struct event_rec *e = base;
	size_t ia = *(const size_t *)a, ib = *(const size_t *)b;
	int c = strcmp(event_group(&e[ia]), event_group(&e[ib]));
	return c ? c : (ia > ib) - (ia < ib);
}

struct events_sorted {
	const struct event_rec *e;
	const size_t *idx;	/* render order: grouped by source type */
};

static int r_event(struct buf *b, const void *ctx, size_t k)
{
	const struct events_sorted *es = ctx;
	render_event(b, &es->e[es->idx[k]]);
	return 0;
}

int enc_events(const struct event_rec *e, size_t n, const struct enc_opts *o,
	       enc_emit_fn emit, void *arg, struct enc_result *res)
{
	struct rendered r;
	res_clear(res);
	size_t *idx = calloc(n ? n : 1, sizeof(*idx));
	const char **grp = calloc(n ? n : 1, sizeof(*grp));
	struct events_sorted es = { e, idx };
	int rc = rendered_init(&r, n, r_event, &es);
	if (!idx || !grp)
		rc = -ENOMEM;
	if (rc == 0) {
		/* group by source type: the intake's body is keyed by it */
		for (size_t i = 0; i < n; i++)
			idx[i] = i;
		qsort_r(idx, n, sizeof(*idx), cmp_event_idx, (void *)e);
		for (size_t i = 0; i < n; i++)
			grp[i] = event_group(&e[idx[i]]);
	}
	r.group = grp;
	if (rc == 0)
		rc = run_packer(FWD_EP_EVENTS, SHAPE_JSON_EVENTS, &r, o, emit, arg, res);
	rendered_done(&r);
	free(idx);
	free(grp);
	return rc;
}

/* ---- protobuf renderers ---- */

/* Appends `field 1, wire type 2` + varint length + the packed message. */
static int put_field1(struct buf *b, const ProtobufCMessage *m)
{
	size_t len = protobuf_c_message_get_packed_size(m);
	uint8_t hdr[11];
	size_t h = 0;
	hdr[h++] = 0x0a;
	for (size_t v = len; ; v >>= 7) {
		hdr[h++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
		if (v < 0x80)
			break;
	}
	if (buf_append(b, hdr, h) < 0 || buf_reserve(b, len) < 0)
		return -ENOMEM;
	protobuf_c_message_pack(m, (uint8_t *)b->p + b->len);
	b->len += len;
	return 0;
}

static int render_series_v2(struct buf *b, const struct series *s)
{
	Datadog__Agentpayload__MetricPayload__MetricSeries ms =
		DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_SERIES__INIT;
	Datadog__Agentpayload__MetricPayload__Resource res =
		DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__RESOURCE__INIT;
	Datadog__Agentpayload__MetricPayload__MetricPoint pt =
		DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_POINT__INIT;
	Datadog__Agentpayload__MetricPayload__Resource *resp = &res;
	Datadog__Agentpayload__MetricPayload__MetricPoint *ptp = &pt;

	res.type = (char *)"host";
	res.name = (char *)(s->host ? s->host : "");
	if (s->host && s->host[0]) {
		ms.n_resources = 1;
		ms.resources = &resp;
	}
	ms.metric = (char *)s->name;
	ms.n_tags = s->ntags;
	ms.tags = (char **)s->tags;
	pt.value = s->value;
	pt.timestamp = s->ts;
	ms.n_points = 1;
	ms.points = &ptp;
	switch (s->kind) {
	case SERIES_COUNT: ms.type = DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__COUNT; break;
	case SERIES_RATE: ms.type = DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__RATE; break;
	default: ms.type = DATADOG__AGENTPAYLOAD__METRIC_PAYLOAD__METRIC_TYPE__GAUGE; break;
	}
	ms.interval = s->interval;
	return put_field1(b, &ms.base);
}

static int render_sketch(struct buf *b, const struct sketch_point *s)
{
	Datadog__Agentpayload__SketchPayload__Sketch sk =
		DATADOG__AGENTPAYLOAD__SKETCH_PAYLOAD__SKETCH__INIT;
	Datadog__Agentpayload__SketchPayload__Sketch__Dogsketch ds =
		DATADOG__AGENTPAYLOAD__SKETCH_PAYLOAD__SKETCH__DOGSKETCH__INIT;
	Datadog__Agentpayload__SketchPayload__Sketch__Dogsketch *dsp = &ds;

	sk.metric = (char *)s->name;
	sk.host = (char *)(s->host ? s->host : "");
	sk.n_tags = s->ntags;
	sk.tags = (char **)s->tags;
	ds.ts = s->ts;
	ds.cnt = s->cnt;
	ds.min = s->min;
	ds.max = s->max;
	ds.avg = s->avg;
	ds.sum = s->sum;
	ds.n_k = s->nbins;
	ds.k = (int32_t *)s->keys;
	ds.n_n = s->nbins;
	ds.n = (uint32_t *)s->counts;
	sk.n_dogsketches = 1;
	sk.dogsketches = &dsp;
	return put_field1(b, &sk.base);
}

static int r_series_v2(struct buf *b, const void *ctx, size_t k)
{
	return render_series_v2(b, &((const struct series *)ctx)[k]);
}

static int r_sketch(struct buf *b, const void *ctx, size_t k)
{
	return render_sketch(b, &((const struct sketch_point *)ctx)[k]);
}

int enc_series_v2(const struct series *s, size_t n, const struct enc_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res)
{
	struct series *copy;
	res_clear(res);
	if (!(s = finite_series(s, &n, &copy, res)))
		return -ENOMEM;
	int rc = encode_all(FWD_EP_SERIES_V2, SHAPE_PROTO, n, r_series_v2, s, o, emit, arg, res);
	free(copy);
	return rc;
}

int enc_sketches(const struct sketch_point *s, size_t n, const struct enc_opts *o,
		 enc_emit_fn emit, void *arg, struct enc_result *res)
{
	struct sketch_point *copy;
	res_clear(res);
	if (!(s = finite_sketches(s, &n, &copy, res)))
		return -ENOMEM;
	int rc = encode_all(FWD_EP_SKETCHES, SHAPE_PROTO, n, r_sketch, s, o, emit, arg, res);
	free(copy);
	return rc;
}
