/*
 * aggr_stats.c - the descriptor table of struct aggr_stats (aggr.h).
 */
#include "aggr/aggr.h"

const char *aggr_drop_name(int d)
{
	static const char *const names[AGGR_DROP_COUNT] = {
		[AGGR_DROP_CONTEXT_CAP] = "context_cap",
		[AGGR_DROP_METRIC_CAP] = "metric_cap",
		[AGGR_DROP_TIMESTAMPED_TYPE] = "timestamped_type",
		[AGGR_DROP_NOMEM] = "nomem",
		[AGGR_DROP_PENDING_CAP] = "pending_cap",
		[AGGR_DROP_NON_FINITE] = "non_finite",
		[AGGR_DROP_TAG_LIMIT] = "tag_limit",
		[AGGR_DROP_MEMORY_LIMIT] = "memory_limit",
		[AGGR_DROP_CLOCK_RANGE] = "clock_range",
	};
	return d >= 0 && d < AGGR_DROP_COUNT && names[d] ? names[d] : "unknown";
}

static const struct stat_field fields[] = {
#define X(f, dim, ...) STATS_DESC(struct aggr_stats, f, __VA_ARGS__)
	AGGR_STATS_FIELDS(X)
#undef X
};
const struct stat_table aggr_stats_table = STATS_TABLE(fields);
