/*
 * batch.h - what one flush produces: series, sketches, events, service checks.
 *
 * Produced by aggr_flush (and by the alert engine for its own metrics), read by
 * the alert engine, the encoders and the JSON-lines output. A batch owns all of
 * its memory (strings copied into its arena), so it can be handed to another
 * thread or kept in a queue after the aggregator has moved on.
 * Not thread-safe; one owner at a time.
 */
#ifndef DDMA_CORE_BATCH_H
#define DDMA_CORE_BATCH_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/metric.h"
#include "core/sv.h"

struct series {
	const char *name;
	const char *host;	  /* "" when the sample forced an empty host */
	const char *const *tags; /* sorted, de-duplicated, without host: */
	uint32_t ntags;
	enum series_kind kind;
	uint32_t interval;	  /* seconds; 10 for rates/counts from buckets, 0 for gauges */
	int64_t ts;		  /* bucket start, unix seconds */
	double value;
	uint32_t stem_len;	  /* > 0: a histogram aggregate or percentile named
				   * <stem><suffix> (".max", ".95percentile"): the
				   * stem's length; 0 for every other series */
};

/* One distribution context for one bucket, in Datadog's DDSketch form
 * (the `dogsketches` entry of /api/beta/sketches). */
struct sketch_point {
	const char *name;
	const char *host;
	const char *const *tags;
	uint32_t ntags;
	int64_t ts;
	int64_t cnt;
	double min, max, sum, avg;
	uint32_t nbins;
	const int32_t *keys; /* bin index (Datadog's key mapping, see aggr/ddsketch.h) */
	const uint32_t *counts;
};

struct event_rec {
	const char *title;
	const char *text;
	int64_t ts;
	const char *host;
	const char *aggregation_key; /* "" when absent */
	const char *source_type;     /* "" when absent */
	enum event_priority priority;
	enum event_alert_type alert_type;
	const char *const *tags;
	uint32_t ntags;
};

struct check_rec {
	const char *name;
	int status;
	int64_t ts;
	const char *host;
	const char *message;
	const char *const *tags;
	uint32_t ntags;
};

struct batch {
	struct arena arena;
	struct series *series;
	size_t nseries, series_cap;
	struct sketch_point *sketches;
	size_t nsketches, sketches_cap;
	struct event_rec *events;
	size_t nevents, events_cap;
	struct check_rec *checks;
	size_t nchecks, checks_cap;
	int64_t flush_time; /* `now` of the flush that made it */
	/* The sketches as series (count, sum, min, max, avg, median and the
	 * configured percentiles, as histograms), made by aggr_emit when asked:
	 * what a forwarder sending distributions as series encodes instead of
	 * `sketches`. Owned; NULL when not asked. Not written as JSON lines. */
	struct batch *sketch_series;
};

struct batch *batch_new(void);
void batch_free(struct batch *b); /* accepts NULL */

/* Copies a string or a tag array into the batch's arena. NULL on ENOMEM. */
const char *batch_str(struct batch *b, struct sv s);
const char *const *batch_tags(struct batch *b, const struct sv *tags, size_t n);

/* Append records; the record is copied, its strings must already live in the
 * batch's arena (use batch_str/batch_tags) or be static. 0 or -ENOMEM. */
/* Room for n series in all (one allocation, where adding one at a time
 * doubles); 0 or -ENOMEM (the batch is unchanged and still usable). */
int batch_reserve_series(struct batch *b, size_t n);
int batch_add_series(struct batch *b, const struct series *s);
int batch_add_sketch(struct batch *b, const struct sketch_point *s);
int batch_add_event(struct batch *b, const struct event_rec *e);
int batch_add_check(struct batch *b, const struct check_rec *c);

/* Writes the batch as JSON lines (one object per record, "kind" field first) -
 * the embedded default output. Returns 0 or -errno. */
struct buf;
int batch_write_jsonl(const struct batch *b, struct buf *out);

/* Streaming form of batch_write_jsonl (same bytes): renders into a buffer of
 * about BATCH_JSONL_CHUNK bytes and hands it to write(arg, p, n) each time it
 * fills (whole records only, so a chunk can exceed the size by one record)
 * and once at the end; memory does not grow with the batch. write returns 0
 * or -errno; the first error stops the writing and is returned. -ENOMEM when
 * rendering fails. */
#define BATCH_JSONL_CHUNK (1024 * 1024)
int batch_write_jsonl_to(const struct batch *b, int (*write)(void *arg, const char *p, size_t n),
			 void *arg);

#endif
