/*
 * fixture_feed.h - one datagram through the ingest loop into one aggregator,
 * for the unit tests that parse datagrams and aggregate them (tests/unit
 * only; links ingest).
 */
#ifndef DDMA_TESTS_FIXTURE_FEED_H
#define DDMA_TESTS_FIXTURE_FEED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "ingest/ingest.h"
#include "parse/parse.h"

/* buf[0..len) (modified in place) into a at `now`: ingest_batch when cached,
 * else ingest_batch_full. */
void fixture_feed(struct dsd_parser *p, struct aggr *a, char *buf, size_t len, int64_t now,
		  bool cached);

#endif
