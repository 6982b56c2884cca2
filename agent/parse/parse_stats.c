/*
 * parse_stats.c - the descriptor table of struct dsd_stats (parse.h).
 */
#include "parse/parse.h"

const char *dsd_stats_type_name(int i)
{
	return metric_type_name((enum metric_type)i);
}

const char *dsd_stats_error_name(int i)
{
	return dsd_error_name((enum dsd_error)i);
}

static const struct stat_field fields[] = {
#define X(f, dim, ...) STATS_DESC(struct dsd_stats, f, __VA_ARGS__)
	DSD_STATS_FIELDS(X)
#undef X
};
const struct stat_table dsd_stats_table = STATS_TABLE(fields);
