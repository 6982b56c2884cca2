/*
 * net_stats.c - the descriptor table of struct net_stats (net.h).
 */
#include "net/net.h"

static const struct stat_field fields[] = {
#define X(f, dim, ...) STATS_DESC(struct net_stats, f, __VA_ARGS__)
	NET_STATS_FIELDS(X)
#undef X
};
const struct stat_table net_stats_table = STATS_TABLE(fields);
