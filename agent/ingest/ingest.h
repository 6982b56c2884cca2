/*
 * ingest.h - received datagrams into one aggregator: the receive hot path's
 * one forward loop (parse.h splits and parses, aggr.h aggregates; neither
 * calls the other).
 *
 * Single-threaded: the caller owns the parser and the aggregator (one of each
 * per receive pipeline).
 */
#ifndef DDMA_INGEST_INGEST_H
#define DDMA_INGEST_INGEST_H

#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "parse/parse.h"

/* Every line of d[0..n) into a, received at `now`: a line the seen-line cache
 * recognises is applied from it, every other line is fully parsed and goes
 * to aggr_ingest, aggr_event or aggr_service_check. Each buf may be modified
 * in place. */
void ingest_batch(struct dsd_parser *p, struct aggr *a, const struct dsd_datagram *d, size_t n,
		  int64_t now);

/* The same without the seen-line cache: every line takes the full parse (the
 * reference the cache is tested against, and comparisons). */
void ingest_batch_full(struct dsd_parser *p, struct aggr *a, const struct dsd_datagram *d,
		       size_t n, int64_t now);

/* Line i of window w (parse.h dsd_split_next) fully parsed into a. */
void ingest_line_full(struct dsd_parser *p, struct aggr *a, struct dsd_window *w, size_t i,
		      int64_t now);

#endif
