/*
 * aggr_int.h - private to the aggregator (aggr.c, flush.c). Not a contract.
 *
 * One struct ctx per context (name + host + tag set + accumulator family).
 * The metric type is part of the key as a family (count, gauge, histogram
 * for both h and ms, set, distribution): Datadog's agent keys contexts without
 * the type and lets the first type of a bucket win; keeping families apart
 * loses nothing and needs no cross-type conversion.
 *
 * A context holds two inline bucket slots (the current bucket and the closed
 * one waiting for the flush, the common case when flushes are not aligned on
 * bucket boundaries) and a small heap array for more (flush stalled, clock
 * jumps). Counter and gauge accumulators are inline doubles; histograms, sets
 * and distributions point to a heap accumulator allocated on first use in a
 * bucket and freed when the bucket is flushed.
 */
#ifndef DDMA_AGGR_AGGR_INT_H
#define DDMA_AGGR_AGGR_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "aggr/ddsketch.h"
#include "aggr/hist.h"
#include "aggr/hll.h"
#include "aggr/htab.h"
#include "aggr/intern.h"
#include "aggr/mapper.h"
#include "core/buf.h"

#define AGGR_BUCKET 10
#define SLOT_FREE INT64_MIN
/* Timestamped points, events and service checks held for one flush. */
#define AGGR_PENDING_MAX 100000

struct slot {
	int64_t bucket;		/* bucket start, SLOT_FREE when unused */
	union {
		double d;		/* count: sum of value/rate; gauge: value */
		struct hist *h;
		struct setacc *set;
		struct ddsketch *sk;
	} u;
};

struct ctx {
	uint64_t hash;
	struct istr *name;	/* names pool */
	struct istr *host;	/* strings pool */
	struct tagset *tags;
	int64_t last_seen;	/* receive time of the last sample */
	union {
		int64_t born;	/* count: bucket of the first sample (zero-fill start) */
		double last;	/* gauge: last value (gauge deltas) */
	} x;
	struct slot slot[2];
	struct slot *more;
	uint16_t nmore, more_cap;
	uint8_t type;		/* enum metric_type, METRIC_TIMING folded into HISTOGRAM */
	uint8_t has_last;
};

struct aggr {
	const struct aggr_config *cfg;
	struct strpool names;	/* metric names; refcnt = live contexts, aux = refused */
	struct strpool strs;	/* tags and hosts */
	struct tagpool tagsets;
	struct htab ctxs;
	struct mapper *mapper;
	struct tagref *gtags;	/* cfg->tags with their hashes */
	size_t ngtags;
	struct sv host;		/* cfg->hostname (the default host) and its hash */
	uint64_t host_h;
	char *ns;		/* namespace with its trailing '.', or NULL */
	size_t nslen;
	struct buf name;	/* scratch: namespaced name */
	struct tagref *scratch;
	size_t scratch_cap;
	struct batch *pending;	/* timestamped points, events, checks */
	size_t npending;
	int64_t flushed_upto;	/* every bucket before this was flushed */
	bool have_upto;		/* flushed_upto is set (first context or flush) */
	size_t acc_bytes;	/* heap accumulators and overflow slot arrays */
	struct aggr_stats st;
};

static inline int64_t bucket_of(int64_t t)
{
	int64_t r = t % AGGR_BUCKET;
	return t - (r < 0 ? r + AGGR_BUCKET : r);
}

/* Frees the slot's accumulator and marks it unused (aggr.c). */
void aggr_slot_release(struct aggr *a, const struct ctx *c, struct slot *s);
/* Unlinks nothing: drops the context's references and frees it (aggr.c). */
void aggr_ctx_destroy(struct aggr *a, struct ctx *c);

#endif
