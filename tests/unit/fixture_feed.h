/*
 * fixture_feed.h - the parser's callbacks straight into one aggregator, for
 * the unit tests that parse datagrams and aggregate them (tests/unit only;
 * links parse and aggr).
 */
#ifndef DDMA_TESTS_FIXTURE_FEED_H
#define DDMA_TESTS_FIXTURE_FEED_H

#include <stdint.h>

#include "aggr/aggr.h"
#include "parse/parse.h"

/* The ctx of fixture_sink and fixture_seen_ops: samples go to `a` at `now`. */
struct fixture_feed {
	struct aggr *a;
	int64_t now;
};

/* metric -> aggr_ingest, event -> aggr_event, check -> aggr_service_check */
extern const struct dsd_sink fixture_sink;
/* seen -> aggr_ingest_seen, one line at a time (no prefetch, no runs) */
extern const struct dsd_cache_ops fixture_seen_ops;

#endif
