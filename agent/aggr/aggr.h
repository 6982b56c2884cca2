/*
 * aggr.h - the aggregator: parsed samples in, flushed batches out.
 *
 * Owns the context table (name + host + sorted, de-duplicated tag set), the
 * interned strings, one accumulator per context and bucket, and the caps.
 * Applies enrichment first, in Datadog's order: mapper profiles, then
 * statsd_metric_namespace (with its blacklist), then global tags appended and
 * the host: tag override (removed from the tags; "host:" alone forces the
 * empty host; default cfg->hostname). Semantics follow Datadog's agent; see
 * docs/DOGSTATSD.md, "Aggregation".
 *
 * What to know when wiring it:
 * - Buckets are 10 s (cfg->bucket_seconds is ignored: Datadog's is fixed),
 *   samples go to the bucket of `now` (receive time), aggr_flush (and
 *   aggr_collect) take only closed buckets, stamped with the bucket start.
 *   Flush as often as you like.
 * - The metric type is part of the context key as a family (c, g, h+ms, s, d):
 *   "x:1|c" and "x:1|g" are two contexts (Datadog lets the first type win).
 * - count: SERIES_RATE sum(value*(1/rate))/10, interval 10, zero-filled while
 *   younger than expiry_seconds. gauge: SERIES_GAUGE last value (interval 0).
 *   h/ms: histogram series (rank formulas and sample-rate weights in
 *   aggr/hist.h). s: distinct count
 *   (exact, then HyperLogLog, aggr/hll.h). d: struct sketch_point with
 *   Datadog's DDSketch keys (aggr/ddsketch.h); weight round(1/rate).
 * - |T timestamps (cfg->no_aggregation_pipeline): as Datadog's no-aggregation
 *   pipeline, in the next flush at their own timestamp with interval 10:
 *   gauges, counters as value/10 (sample rate ignored), distributions as one
 *   sketch point; histograms, timers and sets dropped (timestamped_type).
 * - cfg->hist_copy_to_dist: h/ms samples also go to the distribution
 *   <hist_copy_to_dist_prefix><name> (such lines bypass the seen cache).
 * - A flushed value that is not finite is dropped (AGGR_DROP_NON_FINITE).
 * - Events and service checks are copied into the next flush's batch.
 * - Caps: max_contexts and max_contexts_per_metric (0 = no cap).
 * - Cardinality guard, on the full path only (a line the seen-line cache
 *   takes already has its context): cfg->tags_exclude removes tags by key
 *   glob (tagrules.h) before the context key is built; when a new context
 *   would bring a tag key past cfg->tag_value_limit distinct values for its
 *   metric name, the tag is removed (the sample aggregates into the context
 *   without it) or the sample refused (cfg->tag_limit_drop) (taglimit.h);
 *   cfg->memory_limit / cfg->pipeline_count bounds aggr_stats.memory_bytes:
 *   over it, no new context nor heap accumulator (refused, counted per
 *   metric like the caps).
 *
 * Time is always passed in (`now`, unix seconds); the module never reads a
 * clock. Buckets are kept relative to the first sample's `now` in 32 bits: a
 * sample received over 68 years from it is refused (AGGR_DROP_CLOCK_RANGE).
 * No I/O, no logging. Not thread-safe: one aggr per receive pipeline,
 * used only by the thread that owns it. A flush is split in two so that
 * receiving waits only for the cheap half: aggr_collect on the pipeline's
 * thread moves the closed buckets out (struct aggr_out), then aggr_emit on
 * any thread merges the outs of every pipeline into one batch while the
 * pipelines keep receiving, then aggr_out_free. aggr_flush is the three in a
 * row for one aggr.
 *
 * The rule that makes collect and emit on two threads safe: emit out k
 * before aggr_collect (or aggr_collect_begin) k+1 on the same aggr and
 * before aggr_free; aggr_out_free may come later, on any thread. Why that
 * suffices: docs/ARCHITECTURE.md, "Collect and emit on two threads".
 */
#ifndef DDMA_AGGR_AGGR_H
#define DDMA_AGGR_AGGR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr_config.h"
#include "core/batch.h"
#include "core/stats.h"
#include "parse/parse.h"

enum aggr_drop {
	AGGR_DROP_CONTEXT_CAP,	     /* dogstatsd_max_contexts reached */
	AGGR_DROP_METRIC_CAP,	     /* dogstatsd_max_contexts_per_metric reached */
	AGGR_DROP_TIMESTAMPED_TYPE,  /* |T on a type other than gauge/count */
	AGGR_DROP_NOMEM,	     /* allocation failed */
	AGGR_DROP_PENDING_CAP,	     /* over 100000 timestamped points + events + checks in one flush */
	AGGR_DROP_NON_FINITE,	     /* a flushed value overflowed to inf/nan (e.g. 2 x "x:1e308|c"):
				      * that series or sketch point is not sent */
	AGGR_DROP_TAG_LIMIT,	     /* dogstatsd_tag_limit_action: drop_sample, a tag over its limit */
	AGGR_DROP_MEMORY_LIMIT,	     /* dogstatsd_memory_limit reached: no new context or accumulator */
	AGGR_DROP_CLOCK_RANGE,	     /* receive time over 68 years from the aggregator's first
				      * sample: its bucket does not fit a context's 32-bit slot */
	AGGR_DROP_COUNT
};

/* The aggregator's counters (core/stats.h). series_flushed and
 * sketches_flushed are counted by aggr_flush only: with pipelines (collect
 * on one thread, emit on another) the agent keeps these totals. */
#define AGGR_STATS_FIELDS(X)                                                             \
	X(samples_in, , .key = "samples", .help = "Values offered to aggr_ingest.")      \
	X(dropped, [AGGR_DROP_COUNT], .title = "Refused",                               \
	  .help = "Samples refused by the aggregator, by reason.",                      \
	  .prom = "aggregator_dropped_total", .tele = "aggregator.dropped",             \
	  .label = "reason", .elem = aggr_drop_name)                                    \
	X(contexts, , .type = STAT_GAUGE, .help = "Live aggregation contexts.",         \
	  .prom = "contexts", .tele = "aggregator.contexts")                            \
	X(contexts_created, , .help = "Contexts created.")                               \
	X(contexts_expired, , .help = "Contexts expired.")                               \
	X(series_flushed, , .help = "Series flushed.")                                   \
	X(sketches_flushed, , .help = "Sketches flushed.")                               \
	X(events, , .help = "Events taken for the next flush.")                          \
	X(service_checks, , .help = "Service checks taken for the next flush.")          \
	X(memory_bytes, , .type = STAT_GAUGE, .title = "Memory",                        \
	  .help = "Bytes held: tables, arenas, accumulators (approximate).",            \
	  .tele = "aggregator.memory_bytes")                                            \
	X(seen_hits, , .key = "seen_cache_hits",                                        \
	  .help = "Lines taken by the seen-line cache (also in samples).")              \
	X(seen_entries, , .type = STAT_GAUGE, .key = "seen_cache_entries",              \
	  .help = "Lines in the seen-line cache.")                                       \
	X(tag_limited, , .key = "tag_limited_samples",                                  \
	  .help = "Samples that lost a tag to dogstatsd_tag_value_limit.",              \
	  .tele = "aggregator.tag_limited")                                             \
	X(tags_excluded, , .help = "Tags removed by dogstatsd_tags_exclude (not counted " \
	  "again for a line the seen-line cache takes).", .tele = "aggregator.tags_excluded")

struct aggr_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	AGGR_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table aggr_stats_table;
/* "context_cap", "metric_cap", ... ("unknown" out of range) */
const char *aggr_drop_name(int d);

/* One row of the cardinality report (the "dogstatsd top" of this agent). */
struct aggr_top_entry {
	char name[256];			/* metric name (truncated for the report) */
	uint64_t contexts;		/* live contexts */
	uint64_t refused;		/* samples refused by the caps */
	char top_tag_key[128];		/* tag key with the most distinct values */
	uint64_t top_tag_values;	/* its distinct values among this metric's contexts */
};

/* cfg is borrowed: it must outlive the aggr (or until aggr_reconfigure).
 * The aggr gets a tag-limit tracker of its own (taglimit.h). */
struct aggr *aggr_new(const struct aggr_config *cfg);
/* The same with the tracker tl (one reference taken), shared by the
 * aggregators of every pipeline so that cfg->tag_value_limit holds for the
 * agent as a whole. Each aggr_new_shared and aggr_reconfigure sets tl's limit
 * and action from its cfg (the pipelines share one cfg). */
struct taglimit;
struct aggr *aggr_new_shared(const struct aggr_config *cfg, struct taglimit *tl);
/* The tracker (the report of the limited tags: taglimit.h). */
struct taglimit *aggr_taglimit(const struct aggr *a);
void aggr_free(struct aggr *a); /* accepts NULL */
/* Allocates and faults in, ahead of traffic, what the first new contexts
 * write: the seen table at its first size (2 MiB, one huge page) and the
 * first chunk of the context slab. A pipeline calls it once at start, so a
 * burst into a fresh agent does not wait on page faults (core/mem.h).
 * Optional: without it the same memory comes on first use. */
void aggr_reserve(struct aggr *a);
/* Applies a reloaded config (tags, caps, namespace, mappers) to new samples. */
void aggr_reconfigure(struct aggr *a, const struct aggr_config *cfg);

void aggr_ingest(struct aggr *a, const struct dsd_metric *m, int64_t now);
/* The seen-line fast path (ingest.c): when a cacheable line with m's exact
 * name, type and raw_suffix went through aggr_ingest since the last clear (a
 * flush that expired contexts, aggr_reconfigure) and reached a context that
 * already existed then, applies m's values to it exactly as aggr_ingest
 * would and returns true. Otherwise false: the caller then does the full
 * parse and aggr_ingest. Reads only m's type, values, nvalues, explicit_sign
 * and key ({0, 0}: computed here from name, type and raw_suffix). The key
 * identifies the line (keyhash.h). */
bool aggr_ingest_seen(struct aggr *a, const struct dsd_metric *m, int64_t now);
/* aggr_ingest_seen for each single-value line in order until one is not
 * recognised; returns how many were applied. */
size_t aggr_ingest_seen_run(struct aggr *a, const struct dsd_seen_line *l, size_t n, int64_t now);
/* Lane a of the keys of a window of lines: _entries loads their cache
 * entries (a window ahead); _contexts, once those arrived, the contexts of
 * the entries that match (right before the lines). Change nothing
 * observable. */
void aggr_seen_prefetch_entries(struct aggr *a, const uint64_t *hashes, size_t n);
void aggr_seen_prefetch_contexts(struct aggr *a, const uint64_t *hashes, size_t n);
void aggr_event(struct aggr *a, const struct dsd_event *e, int64_t now);
void aggr_service_check(struct aggr *a, const struct dsd_service_check *sc, int64_t now);

/* One collect's output: the closed buckets of every context (accumulators moved
 * out of the aggr), counter zero-fills, and the pending batch (timestamped
 * points, events, service checks). Opaque. */
struct aggr_out;

/* Pipeline side, on the thread that owns `a`. Takes every closed bucket
 * (bucket start + 10 <= now, or all when final) out of the contexts, decides
 * counter zero-fill and expiry exactly as aggr_flush always did, and returns
 * them (one record of ~48 bytes per context and bucket, one array). Cost: one
 * walk over the contexts, no string copies, no sorting. NULL only on ENOMEM
 * (then nothing was taken). If the record array cannot grow half-way, the
 * remaining contexts keep their closed buckets for the next collect (their
 * zero-fills for this one are lost; counted in dropped[AGGR_DROP_NOMEM]).
 * The out references a's interned names, hosts and tag sets: they stay valid
 * and unchanged until the next aggr_collect (or aggr_collect_step) or
 * aggr_free on `a`, whichever comes first. */
struct aggr_out *aggr_collect(struct aggr *a, int64_t now, bool final);

/* Incremental aggr_collect: the same out, built in steps so the owning thread
 * can receive between them (a 1M-context collect takes ~40 ms; the socket
 * buffer holds ~10-20 ms of heavy traffic). aggr_collect is begin + one step
 * over everything + end.
 * Between begin and end the owner may call aggr_ingest, aggr_ingest_seen,
 * aggr_seen_prefetch_*, aggr_event and aggr_service_check with now >= the
 * begin's now: their samples go to buckets the collect does not take (it
 * takes only buckets closed at the begin's now, bucket + 10 <= now), new
 * contexts have nothing to take and are not expired, and timestamped points,
 * events and checks go to the next collect (the pending batch is swapped at
 * begin). A context expired by a step is gone from the table when the step
 * returns (an ingest of its key creates a fresh context; its last records
 * are in this out) and the seen-line cache no longer refers to it.
 * It must not call aggr_reconfigure, aggr_top, aggr_flush, aggr_collect or
 * another begin (debug asserts check it); aggr_get_stats is fine; aggr_free
 * drops the collect in progress and its out. With `final` (shutdown) the
 * agent stops receiving before it collects: no ingest between the steps.
 * A context due to expire that receives a sample before its step visits it
 * is kept (flush.c, "the incremental collect", has the consequences). */
/* 0, or -ENOMEM (then nothing was taken). */
int aggr_collect_begin(struct aggr *a, int64_t now, bool final);
/* Visits up to max_contexts more context slots (freed ones included, so the
 * cost is ~max_contexts' share of a full walk); true when every context was
 * visited (contexts created meanwhile may or may not be: they hold nothing
 * to take). */
bool aggr_collect_step(struct aggr *a, size_t max_contexts);
/* Ends the collect (without visiting the rest: step until true first) and
 * returns its out, as aggr_collect's. Never NULL (begin allocated it). */
struct aggr_out *aggr_collect_end(struct aggr *a);

struct aggr_emit_stats {
	uint64_t series, sketches;	/* in the returned batch (pending points included) */
	uint64_t merged;		/* records folded into another pipeline's record */
	uint64_t nomem;			/* records/items lost to ENOMEM */
	uint64_t nonfinite;		/* series/sketch points not emitted: a value not finite */
};

/* Any thread. Turns n outs (one per pipeline, n >= 1) into one new batch
 * stamped flush_time = now. Records for the same context (type family, name,
 * host and tag set, compared by content) and the same bucket are merged first,
 * into the one of the lowest out index: counts add; gauges take the value
 * received last (to the second: the context keeps one receive time, its last
 * sample's, so a gauge bucket whose context has received since in a later
 * bucket counts as received in its bucket's last second), on a tie the higher
 * out index wins; histograms/timers merge their samples (hist_merge: exact
 * while the total fits the exact cap, else one sketch; count/sum/min/max as
 * if every sample had gone to one aggr); sets take the union (setacc_merge:
 * exact, or HyperLogLog when either side is or the union exceeds
 * set_exact_max); distributions ddsketch_merge. What stays per pipeline:
 * gauge_deltas, the context caps, and counter zero-fill/expiry (a counter
 * whose samples moved to another pipeline after a silence longer than
 * expiry_seconds gets no zero-fill in that silence; one aggr would fill it).
 * Then the batch is out 0's pending batch (taken from the out, no
 * copy: its timestamped points, events and checks come first), the other
 * outs' pending items copied after them, then the series and sketches built
 * exactly as aggr_flush always built them (same fields, tags sorted by bytes,
 * same values), out by out in collect order. With n == 1 nothing is hashed or
 * merged. Never touches an aggr. Merging and summarising change the outs'
 * accumulators and records: emit a set of outs once. Results in *st (may be
 * NULL). Returns NULL only on ENOMEM (then the outs are unchanged). The outs
 * are not freed. With sketch_series, the batch's sketch_series holds every
 * sketch as series too (aggr_sketch_to_series; a sketch that cannot be
 * converted for ENOMEM counts in st->nomem; sketch_series stays NULL when
 * it cannot be allocated). */
struct batch *aggr_emit(const struct aggr_config *cfg, struct aggr_out *const *outs, size_t n,
			int64_t now, bool sketch_series, struct aggr_emit_stats *st);

/* Any thread; frees the moved-out accumulators, the records and whatever the
 * collect handed over. NULL ok. Never touches the aggr that produced it (it
 * may be receiving right now, or be freed already). */
void aggr_out_free(struct aggr_out *o);

/* Flushes every closed bucket (bucket start + 10 <= now), or every bucket when
 * `final` (shutdown). Expires idle contexts. aggr_collect + aggr_emit(n = 1) +
 * aggr_out_free, with the emit stats added to a's stats (series_flushed,
 * sketches_flushed, dropped[AGGR_DROP_NOMEM]). Returns a new batch owned by
 * the caller (possibly empty), NULL only on ENOMEM. */
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
/* The same in steps, for a receive thread that reads its sockets between
 * them: begin picks the (at most n) rows (their context and refused counts
 * are read at end, from a: it must still exist when out is not NULL), each
 * step looks at up to `max` contexts and returns true when all were seen,
 * end fills out (room for n rows; NULL: none), frees the walk
 * (accepts NULL) and returns the rows filled. Samples may be ingested
 * between steps (new contexts are counted if the walk has not passed them);
 * no aggr_collect, aggr_flush or aggr_reconfigure until end. begin returns
 * NULL when out of memory. */
struct aggr_top_walk;
struct aggr_top_walk *aggr_top_begin(const struct aggr *a, size_t n);
bool aggr_top_step(const struct aggr *a, struct aggr_top_walk *w, size_t max);
size_t aggr_top_end(struct aggr_top_walk *w, struct aggr_top_entry *out);

#endif
