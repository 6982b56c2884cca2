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

/* A new aggr on c, which it borrows (c must outlive it); aborts the test
 * process, which fails the test, if aggr_new fails. */
struct aggr *fixture_aggr_new(const struct aggr_config *c);

/* fixture_aggr_config, then histograms also report min and sum and the
 * npct percentiles pct (borrowed), and sets stay exact up to 100 members:
 * the start of the collect tests (test_aggr_merge, test_aggr_incr). */
void fixture_aggr_config_collect(struct aggr_config *c, double *pct, size_t npct);

/* The comma-separated tags ("" = none) as views into buf (cap bytes, a copy
 * of tags) in tv[0..max); returns how many. Aborts past max tags. */
size_t fixture_split_tags(const char *tags, char *buf, size_t cap, struct sv *tv, size_t max);

#endif
