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
	free(b);
}

const char *batch_str(struct batch *b, struct sv s)
{
	return arena_svdup(&b->arena, s);
}

const char *const *batch_tags(struct batch *b, const struct sv *tags, size_t n)
{
	const char **out = arena_alloc(&b->arena, (n ? n : 1) * sizeof(*out));
	if (!out)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		out[i] = arena_svdup(&b->arena, tags[i]);
		if (!out[i])
			return NULL;
	}
	return out;
}

static int grow(void **arr, size_t *cap, size_t n, size_t elem)
{
	if (n < *cap)
		return 0;
	size_t nc = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, nc * elem);
	if (!p)
		return -ENOMEM;
	*arr = p;
	*cap = nc;
	return 0;
}

#define ADD(b, arr, n, cap, rec)                                                     \
	do {                                                                         \
		if (grow((void **)&(b)->arr, &(b)->cap, (b)->n, sizeof(*(b)->arr)) < 0) \
			return -ENOMEM;                                              \
		(b)->arr[(b)->n++] = *(rec);                                         \
		return 0;                                                            \
	} while (0)

int batch_add_series(struct batch *b, const struct series *s) { ADD(b, series, nseries, series_cap, s); }
int batch_add_sketch(struct batch *b, const struct sketch_point *s) { ADD(b, sketches, nsketches, sketches_cap, s); }
int batch_add_event(struct batch *b, const struct event_rec *e) { ADD(b, events, nevents, events_cap, e); }
int batch_add_check(struct batch *b, const struct check_rec *c) { ADD(b, checks, nchecks, checks_cap, c); }

static void write_tags(struct jw *w, const char *const *tags, uint32_t n)
{
	jw_key(w, "tags");
	jw_arr_begin(w);
	for (uint32_t i = 0; i < n; i++)
		jw_str(w, tags[i]);
	jw_arr_end(w);
}

int batch_write_jsonl(const struct batch *b, struct buf *out)
{
	struct jw w;
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		jw_init(&w, out);
		jw_obj_begin(&w);
		jw_key(&w, "kind");
		jw_str(&w, "series");
		jw_key(&w, "metric");
		jw_str(&w, s->name);
		jw_key(&w, "type");
		jw_str(&w, series_kind_name(s->kind));
		jw_key(&w, "ts");
		jw_int(&w, s->ts);
		jw_key(&w, "value");
		jw_double(&w, s->value);
		jw_key(&w, "interval");
		jw_uint(&w, s->interval);
		jw_key(&w, "host");
		jw_str(&w, s->host);
		write_tags(&w, s->tags, s->ntags);
		jw_obj_end(&w);
		buf_putc(out, '\n');
	}
	for (size_t i = 0; i < b->nsketches; i++) {
		const struct sketch_point *s = &b->sketches[i];
		jw_init(&w, out);
		jw_obj_begin(&w);
		jw_key(&w, "kind");
		jw_str(&w, "sketch");
		jw_key(&w, "metric");
		jw_str(&w, s->name);
		jw_key(&w, "ts");
		jw_int(&w, s->ts);
		jw_key(&w, "cnt");
		jw_int(&w, s->cnt);
		jw_key(&w, "min");
		jw_double(&w, s->min);
		jw_key(&w, "max");
		jw_double(&w, s->max);
		jw_key(&w, "sum");
		jw_double(&w, s->sum);
		jw_key(&w, "avg");
		jw_double(&w, s->avg);
		jw_key(&w, "bins");
		jw_uint(&w, s->nbins);
		jw_key(&w, "host");
		jw_str(&w, s->host);
		write_tags(&w, s->tags, s->ntags);
		jw_obj_end(&w);
		buf_putc(out, '\n');
	}
	for (size_t i = 0; i < b->nevents; i++) {
		const struct event_rec *e = &b->events[i];
		jw_init(&w, out);
		jw_obj_begin(&w);
		jw_key(&w, "kind");
		jw_str(&w, "event");
		jw_key(&w, "title");
		jw_str(&w, e->title);
		jw_key(&w, "text");
		jw_str(&w, e->text);
		jw_key(&w, "ts");
		jw_int(&w, e->ts);
		jw_key(&w, "priority");
		jw_str(&w, event_priority_name(e->priority));
		jw_key(&w, "alert_type");
		jw_str(&w, event_alert_type_name(e->alert_type));
		jw_key(&w, "aggregation_key");
		jw_str(&w, e->aggregation_key);
		jw_key(&w, "source_type_name");
		jw_str(&w, e->source_type);
		jw_key(&w, "host");
		jw_str(&w, e->host);
		write_tags(&w, e->tags, e->ntags);
		jw_obj_end(&w);
		buf_putc(out, '\n');
	}
	for (size_t i = 0; i < b->nchecks; i++) {
		const struct check_rec *c = &b->checks[i];
		jw_init(&w, out);
		jw_obj_begin(&w);
		jw_key(&w, "kind");
		jw_str(&w, "service_check");
		jw_key(&w, "check");
		jw_str(&w, c->name);
		jw_key(&w, "status");
		jw_int(&w, c->status);
		jw_key(&w, "ts");
		jw_int(&w, c->ts);
		jw_key(&w, "message");
		jw_str(&w, c->message);
		jw_key(&w, "host");
		jw_str(&w, c->host);
		write_tags(&w, c->tags, c->ntags);
		jw_obj_end(&w);
		buf_putc(out, '\n');
	}
	return out->failed ? -ENOMEM : 0;
}
