/*
 * fixture.h - what the aggregator's unit tests share (tests/unit only).
 *
 * fixture_aggr_config fills an aggr_config with the values most tests start
 * from: Datadog's defaults where the agent has them (10 s buckets, counters
 * zero-filled for 300 s, contexts expired after 20 s, max/median/avg/count
 * and the 95th percentile for histograms), host "myhost", no namespace, no
 * caps, |T samples taken. A test overrides what it is about.
 */
#ifndef DDMA_TESTS_FIXTURE_H
#define DDMA_TESTS_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"

#define FIXTURE_T0 1700000000 /* a bucket boundary */

void fixture_aggr_config(struct aggr_config *c);

/* The n tags of t joined by ',' into out (cap bytes, always terminated). */
void fixture_join_tags(const char *const *t, uint32_t n, char *out, size_t cap);

#endif
