/*
 * aggr.h - the aggregator: parsed samples in, flushed batches out.
 *
 * Owns the context table (name + host + sorted, de-duplicated tag set), the
 * interned strings, one accumulator per context and bucket, and the caps.
 * Applies enrichment first, in Datadog's order: mapper profiles, then
 * statsd_metric_namespace (with its blacklist), then global tags appended and
 * the host: tag override (removed from the tags; "host:" alone forces the
 * empty host; default cfg->hostname). Semantics follow Datadog's agent; see
 * ../shared/spec/PROTOCOL.md section 2 and README "Aggregation".
 *
 * What to know when wiring it:
 * - Buckets are 10 s (cfg->bucket_seconds is ignored: Datadog's is fixed),
 *   samples go to the bucket of `now` (receive time), aggr_flush emits only
 *   closed buckets stamped with the bucket start. Flush as often as you like.
 * - The metric type is part of the context key as a family (c, g, h+ms, s, d):
 *   "x:1|c" and "x:1|g" are two contexts (Datadog lets the first type win).
 * - count: SERIES_RATE sum(value/rate)/10, interval 10, zero-filled while
 *   younger than expiry_seconds. gauge: SERIES_GAUGE last value (interval 0).
 *   h/ms: histogram series (rank formulas in aggr/hist.h). s: distinct count
 *   (exact, then HyperLogLog, aggr/hll.h). d: struct sketch_point with
 *   Datadog's DDSketch keys (aggr/ddsketch.h); weight round(1/rate).
 * - |T timestamps (cfg->no_aggregation_pipeline): gauge and count points are
 *   emitted in the next flush at their own timestamp; other types dropped.
 * - Events and service checks are copied into the next flush's batch.
 * - Caps: max_contexts and max_contexts_per_metric (0 = no cap).
 *
 * Time is always passed in (`now`, unix seconds); the module never reads a
 * clock. No I/O, no logging. Not thread-safe: one aggr per receive pipeline;
 * aggr_merge folds one pipeline's flushed batch into another's at flush.
 */
#ifndef DDMA_AGGR_AGGR_H
#define DDMA_AGGR_AGGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "core/batch.h"
#include "parse/parse.h"

enum aggr_drop {
	AGGR_DROP_CONTEXT_CAP,	     /* dogstatsd_max_contexts reached */
	AGGR_DROP_METRIC_CAP,	     /* dogstatsd_max_contexts_per_metric reached */
	AGGR_DROP_TIMESTAMPED_TYPE,  /* |T on a type other than gauge/count */
	AGGR_DROP_NOMEM,	     /* allocation failed */
	AGGR_DROP_PENDING_CAP,	     /* over 100000 timestamped points + events + checks in one flush */
	AGGR_DROP_COUNT
};

struct aggr_stats {
	uint64_t samples_in;		/* values offered to aggr_ingest */
	uint64_t dropped[AGGR_DROP_COUNT];
	uint64_t contexts;		/* live contexts now */
	uint64_t contexts_created;
	uint64_t contexts_expired;
	uint64_t series_flushed;
	uint64_t sketches_flushed;
	uint64_t events;
	uint64_t service_checks;
	size_t memory_bytes;		/* table + arenas + accumulators, approximate */
	uint64_t seen_hits;		/* lines taken by aggr_ingest_seen (also in samples_in) */
	uint64_t seen_entries;		/* lines in the seen-line cache now */
};

/* One row of the cardinality report (the "dogstatsd top" of this agent). */
struct aggr_top_entry {
	char name[256];			/* metric name (truncated for the report) */
	uint64_t contexts;		/* live contexts */
	uint64_t refused;		/* samples refused by the caps */
	char top_tag_key[128];		/* tag key with the most distinct values */
	uint64_t top_tag_values;	/* its distinct values among this metric's contexts */
};

/* cfg is borrowed: it must outlive the aggr (or until aggr_reconfigure). */
struct aggr *aggr_new(const struct aggr_config *cfg);
void aggr_free(struct aggr *a); /* accepts NULL */
/* Applies a reloaded config (tags, caps, namespace, mappers) to new samples. */
void aggr_reconfigure(struct aggr *a, const struct aggr_config *cfg);

void aggr_ingest(struct aggr *a, const struct dsd_metric *m, int64_t now);
/* The seen-line fast path (parse.h dsd_parse_cached): when a cacheable line
 * with m's exact name, type and raw_suffix went through aggr_ingest since the
 * last clear (a flush that expired contexts, aggr_reconfigure) and reached a
 * context that already existed then, applies m's values to it exactly as
 * aggr_ingest would and returns true. Otherwise false: the caller then does the full parse and aggr_ingest.
 * Reads only m's name, type, values, nvalues, explicit_sign and raw_suffix. */
bool aggr_ingest_seen(struct aggr *a, const struct dsd_metric *m, int64_t now);
/* parse.h's dsd_cache_ops.prefetch: m = NULL starts a datagram; each m (name,
 * type, raw_suffix) is hashed and its cache slot prefetched; aggr_ingest_seen
 * for the same line (same views) then reuses the hash. Changes nothing
 * observable. */
void aggr_seen_prefetch(struct aggr *a, const struct dsd_metric *m);
void aggr_event(struct aggr *a, const struct dsd_event *e, int64_t now);
void aggr_service_check(struct aggr *a, const struct dsd_service_check *sc, int64_t now);

/* Flushes every closed bucket (bucket start + 10 <= now), or every bucket when
 * `final` (shutdown). Expires idle contexts. Returns a new batch owned by the
 * caller (possibly empty), NULL only on ENOMEM. */
struct batch *aggr_flush(struct aggr *a, int64_t now, bool final);

/* Summarises one distribution point as histogram-style series for intakes
 * without sketches (forwarder_distributions: series): <name>.max/.median/.avg/
 * .count/.min/.sum as enabled by cfg->histogram_aggregates (.count a rate cnt/10,
 * interval 10; the rest gauges) and <name>.<P>percentile per
 * cfg->histogram_percentiles, at sp->ts with sp's host and tags. Median and
 * percentiles come from the sketch bins (ddsketch.h: relative error <= 1%).
 * Strings are copied into out. Returns 0 or -ENOMEM. */
int aggr_sketch_to_series(const struct aggr_config *cfg, const struct sketch_point *sp,
			  struct batch *out);

void aggr_get_stats(const struct aggr *a, struct aggr_stats *out);
/* Fills up to n rows, metrics with the most live contexts first; returns rows. */
size_t aggr_top(const struct aggr *a, struct aggr_top_entry *out, size_t n);

#endif
