/*
 * aggr_config.h - the aggregation part of agent.yaml: struct aggr_config, the
 * dogstatsd_mapper_profiles structs and the histogram_aggregates mask. The
 * aggregator (aggr.h, hist.h, mapper.h) reads it; config/ fills it in
 * (conf.d/agent.yaml documents each key).
 */
#ifndef DDMA_AGGR_AGGR_CONFIG_H
#define DDMA_AGGR_AGGR_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mapper_match_type { MAPPER_MATCH_WILDCARD, MAPPER_MATCH_REGEX };

struct mapper_mapping {
	char *match;
	enum mapper_match_type match_type;
	char *name;		/* may contain $1, ${1} */
	char **tag_keys;	/* tags: {key: "$1"} */
	char **tag_values;
	size_t ntags;
};

struct mapper_profile {
	char *name;
	char *prefix;
	struct mapper_mapping *mappings;
	size_t nmappings;
};

enum hist_agg {
	HIST_AGG_MAX = 1u << 0,
	HIST_AGG_MEDIAN = 1u << 1,
	HIST_AGG_AVG = 1u << 2,
	HIST_AGG_COUNT = 1u << 3,
	HIST_AGG_MIN = 1u << 4,
	HIST_AGG_SUM = 1u << 5,
};
#define HIST_AGG_DEFAULT (HIST_AGG_MAX | HIST_AGG_MEDIAN | HIST_AGG_AVG | HIST_AGG_COUNT)

struct aggr_config {
	char *hostname;		/* hostname; default: gethostname() */
	char **tags;		/* tags + dogstatsd_tags, added to everything */
	size_t ntags;
	char *namespace;	/* statsd_metric_namespace, "" = none; '.' appended if missing */
	char **namespace_blacklist; /* statsd_metric_namespace_blacklist; default datadog.agent, datadog.dogstatsd, datadog.process, datadog.trace_agent, datadog.tracer */
	size_t nnamespace_blacklist;
	int64_t bucket_seconds;	/* 10, fixed (Datadog's) */
	int64_t expiry_seconds;	/* dogstatsd_expiry_seconds, 300: counters zero-filled this long */
	int64_t context_expiry_seconds; /* dogstatsd_context_expiry_seconds, 20 */
	unsigned histogram_aggregates;	/* HIST_AGG_* mask; histogram_aggregates */
	double *histogram_percentiles;	/* histogram_percentiles, {0.95} */
	size_t nhistogram_percentiles;
	bool no_aggregation_pipeline;	/* dogstatsd_no_aggregation_pipeline, true: honour |T */
	bool gauge_deltas;		/* dogstatsd_gauge_deltas, false: +N/-N are absolute (Datadog) */
	bool hist_copy_to_dist;		/* histogram_copy_to_distribution, false: h/ms samples also
					 * go to a distribution <prefix><name> */
	char *hist_copy_to_dist_prefix;	/* histogram_copy_to_distribution_prefix, "" */
	size_t max_contexts;		/* dogstatsd_max_contexts, 1000000 */
	size_t max_contexts_per_metric; /* dogstatsd_max_contexts_per_metric, 100000 */
	size_t set_exact_max;		/* dogstatsd_set_exact_max_size, 10000: then HyperLogLog */
	struct mapper_profile *mapper_profiles; /* dogstatsd_mapper_profiles */
	size_t nmapper_profiles;
	size_t tag_value_limit;		/* dogstatsd_tag_value_limit, 1000: distinct values of one tag
					 * key for one metric name among live contexts; 0 = no limit */
	bool tag_limit_drop;		/* dogstatsd_tag_limit_action: strip_tag (false, default:
					 * the sample loses the tag) | drop_sample (true) */
	char **tags_exclude;		/* dogstatsd_tags_exclude: "KEY" or "KEY|METRIC" globs */
	size_t ntags_exclude;
	size_t memory_limit;		/* dogstatsd_memory_limit, bytes; 0 = none */
	unsigned pipeline_count;	/* derived: net.pipeline_count (each aggregator gets
					 * memory_limit / pipeline_count) */
};
/* Every scalar default; config/ adds the string and list defaults (hostname,
 * namespace_blacklist, histogram_percentiles {0.95}, ...). */
#define AGGR_CONFIG_DEFAULT ((struct aggr_config){ \
	.bucket_seconds = 10, .expiry_seconds = 300, .context_expiry_seconds = 20, \
	.histogram_aggregates = HIST_AGG_DEFAULT, .no_aggregation_pipeline = true, \
	.max_contexts = 1000000, .max_contexts_per_metric = 100000, .set_exact_max = 10000, \
	.tag_value_limit = 1000, .pipeline_count = 1, \
})

#endif
