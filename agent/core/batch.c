/*
 * batch.c - see batch.h.
 */
#include "core/batch.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/buf.h"
#include "core/json.h"

const char *metric_type_name(enum metric_type t)
{
	static const char *const n[] = { "count", "gauge", "timing", "histogram", "set", "distribution" };
	return (unsigned)t < METRIC_TYPE_COUNT ? n[t] : "unknown";
}

const char *series_kind_name(enum series_kind k)
{
	static const char *const n[] = { "gauge", "rate", "count" };
	return (unsigned)k <= SERIES_COUNT ? n[k] : "unknown";
}

const char *event_priority_name(enum event_priority p)
{
	return p == EVENT_PRIORITY_LOW ? "low" : "normal";
}

const char *event_alert_type_name(enum event_alert_type t)
{
	static const char *const n[] = { "info", "error", "warning", "success" };
	return (unsigned)t <= EVENT_ALERT_SUCCESS ? n[t] : "info";
}

struct batch *batch_new(void)
{
	struct batch *b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	arena_init(&b->arena, 256 * 1024);
	return b;
}

void batch_free(struct batch *b)
{
	if (!b)
		return;
	arena_done(&b->arena);
	free(b->series);
	free(b->sketches);
	free(b->events);
	free(b->checks);
	batch_free(b->sketch_series);
	free(b);
}

const char *batch_str(struct batch *b, struct sv s)
{
	return arena_svdup(&b->arena, s);
}

const char *const *batch_tags(struct batch *b, const struct sv *tags, size_t n)
{
	const char **out = arena_alloc_align(&b->arena, (n ? n : 1) * sizeof(*out), sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = arena_svdup(&b->arena, tags[i]);
		if (!out[i])
			return NULL;
	}
	return out;
}

/* *arr with room for nc elements (nc > *cap); 0 or -ENOMEM (unchanged). */
static int resize(void **arr, size_t *cap, size_t nc, size_t elem)
{
	if (nc > SIZE_MAX / elem)
		return -ENOMEM;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	return resize(arr, cap, *cap ? *cap * 2 : 64, elem);
}

#define ADD(b, arr, n, cap, rec)                                                     \
	do {                                                                         \
		if (grow((void **)&(b)->arr, &(b)->cap, (b)->n, sizeof(*(b)->arr)) < 0) \
			return -ENOMEM;                                              \
		(b)->arr[(b)->n++] = *(rec);                                         \
		return 0;                                                            \
	} while (0)

int batch_reserve_series(struct batch *b, size_t n)
{
	if (n <= b->series_cap)
		return 0;
	return resize((void **)&b->series, &b->series_cap, n, sizeof(*b->series));
}

int batch_add_series(struct batch *b, const struct series *s) { ADD(b, series, nseries, series_cap, s); }
int batch_add_sketch(struct batch *b, const struct sketch_point *s) { ADD(b, sketches, nsketches, sketches_cap, s); }
int batch_add_event(struct batch *b, const struct event_rec *e) { ADD(b, events, nevents, events_cap, e); }
int batch_add_check(struct batch *b, const struct check_rec *c) { ADD(b, checks, nchecks, checks_cap, c); }

/* Appends a string literal (its quotes, colons and commas included); inline
 * copy when it fits, buf_append (which grows or fails) otherwise. */
#define LIT(o, s) lit((o), (s), sizeof(s) - 1)

static inline void lit(struct buf *o, const char *s, size_t n)
{
	if (o->cap - o->len > n) {
		memcpy(o->p + o->len, s, n);
		o->len += n;
		o->p[o->len] = '\0';
	} else {
		buf_append(o, s, n);
	}
}

static void write_tags(struct buf *o, const char *const *tags, uint32_t n)
{
	LIT(o, ",\"tags\":[");
	for (uint32_t i = 0; i < n; i++) {
		if (i)
			LIT(o, ",");
		json_put_str(o, tags[i]);
	}
	LIT(o, "]}\n");
}

static void write_series(struct buf *o, const struct series *s)
{
	LIT(o, "{\"kind\":\"series\",\"metric\":");
	json_put_str(o, s->name);
	LIT(o, ",\"type\":");
	json_put_str(o, series_kind_name(s->kind));
	LIT(o, ",\"ts\":");
	json_put_int(o, s->ts);
	LIT(o, ",\"value\":");
	json_put_double(o, s->value);
	LIT(o, ",\"interval\":");
	json_put_uint(o, s->interval);
	LIT(o, ",\"host\":");
	json_put_str(o, s->host);
	write_tags(o, s->tags, s->ntags);
}

static void write_sketch(struct buf *o, const struct sketch_point *s)
{
	LIT(o, "{\"kind\":\"sketch\",\"metric\":");
	json_put_str(o, s->name);
	LIT(o, ",\"ts\":");
	json_put_int(o, s->ts);
	LIT(o, ",\"cnt\":");
	json_put_int(o, s->cnt);
	LIT(o, ",\"min\":");
	json_put_double(o, s->min);
	LIT(o, ",\"max\":");
	json_put_double(o, s->max);
	LIT(o, ",\"sum\":");
	json_put_double(o, s->sum);
	LIT(o, ",\"avg\":");
	json_put_double(o, s->avg);
	LIT(o, ",\"bins\":");
	json_put_uint(o, s->nbins);
	LIT(o, ",\"host\":");
	json_put_str(o, s->host);
	write_tags(o, s->tags, s->ntags);
}

static void write_event(struct buf *o, const struct event_rec *e)
{
	LIT(o, "{\"kind\":\"event\",\"title\":");
	json_put_str(o, e->title);
	LIT(o, ",\"text\":");
	json_put_str(o, e->text);
	LIT(o, ",\"ts\":");
	json_put_int(o, e->ts);
	LIT(o, ",\"priority\":");
	json_put_str(o, event_priority_name(e->priority));
	LIT(o, ",\"alert_type\":");
	json_put_str(o, event_alert_type_name(e->alert_type));
	LIT(o, ",\"aggregation_key\":");
	json_put_str(o, e->aggregation_key);
	LIT(o, ",\"source_type_name\":");
	json_put_str(o, e->source_type);
	LIT(o, ",\"host\":");
	json_put_str(o, e->host);
	write_tags(o, e->tags, e->ntags);
}

static void write_check(struct buf *o, const struct check_rec *c)
{
	LIT(o, "{\"kind\":\"service_check\",\"check\":");
	json_put_str(o, c->name);
	LIT(o, ",\"status\":");
	json_put_int(o, c->status);
	LIT(o, ",\"ts\":");
	json_put_int(o, c->ts);
	LIT(o, ",\"message\":");
	json_put_str(o, c->message);
	LIT(o, ",\"host\":");
	json_put_str(o, c->host);
	write_tags(o, c->tags, c->ntags);
}

/* Hands o to sink once it holds at least `chunk` bytes (sink NULL: never). */
static int spill(struct buf *o, size_t chunk, int (*sink)(void *, const char *, size_t), void *arg)
{
	if (o->failed)
		return -ENOMEM;
	if (!sink || o->len < chunk)
		return 0;
	int rc = sink(arg, o->p, o->len);
	buf_reset(o);
	return rc < 0 ? rc : 0;
}

/* Every record in order into o, spilling through sink every `chunk` bytes. */
static int write_records(const struct batch *b, struct buf *o, size_t chunk,
			 int (*sink)(void *, const char *, size_t), void *arg)
{
	int rc = 0;
	for (size_t i = 0; i < b->nseries && rc == 0; i++) {
		write_series(o, &b->series[i]);
		rc = spill(o, chunk, sink, arg);
	}
	for (size_t i = 0; i < b->nsketches && rc == 0; i++) {
		write_sketch(o, &b->sketches[i]);
		rc = spill(o, chunk, sink, arg);
	}
	for (size_t i = 0; i < b->nevents && rc == 0; i++) {
		write_event(o, &b->events[i]);
		rc = spill(o, chunk, sink, arg);
	}
	for (size_t i = 0; i < b->nchecks && rc == 0; i++) {
		write_check(o, &b->checks[i]);
		rc = spill(o, chunk, sink, arg);
	}
	return rc;
}

int batch_write_jsonl(const struct batch *b, struct buf *out)
{
	int rc = write_records(b, out, 0, NULL, NULL);
	return rc < 0 ? rc : out->failed ? -ENOMEM : 0;
}

int batch_write_jsonl_to(const struct batch *b, int (*write)(void *arg, const char *p, size_t n),
			 void *arg)
{
	struct buf o;
	buf_init(&o);
	if (buf_reserve(&o, BATCH_JSONL_CHUNK + 4096) < 0)
		return -ENOMEM;
	int rc = write_records(b, &o, BATCH_JSONL_CHUNK, write, arg);
	if (rc == 0 && o.len > 0)
		rc = spill(&o, 0, write, arg);
	buf_done(&o);
	return rc;
}
