/*
 * telemetry.h - the agent's own health metrics (`dd_mini_agent.*`), appended
 * to every flushed batch so they travel to the intake like any other series.
 *
 * Counters are sent as the change since the previous flush (type count, only
 * when non-zero); levels (contexts, queue bytes) as gauges every flush. The
 * receive, parse and aggregate metrics are the fields with a telemetry name
 * in their module's stats list (core/stats.h). Part of the composition root:
 * it reads the stats structs that agent.c collects; it owns only the previous
 * values.
 */
#ifndef DDMA_TELEMETRY_H
#define DDMA_TELEMETRY_H

#include <stdbool.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "aggr/taglimit.h"
#include "core/batch.h"
#include "forward/forward.h"
#include "net/net.h"
#include "parse/parse.h"

struct telemetry_input {
	const char *hostname;
	const struct dsd_stats *parse;
	struct net_stats net;
	struct aggr_stats aggr;
	struct fwd_stats fwd;
	bool has_fwd;
	uint32_t interval_s;
	const struct taglimit_row *limited; /* the tags the tag limit bit, most affected first */
	size_t nlimited;
};

struct telemetry {
	struct dsd_stats parse;
	struct net_stats net;
	struct aggr_stats aggr;
	struct fwd_stats fwd;
};

/* Appends the series to b. 0 or -ENOMEM. */
int telemetry_append(struct telemetry *t, const struct telemetry_input *in, struct batch *b, int64_t now);

#endif
