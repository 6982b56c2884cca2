/*
 * pipeline.h - one receive pipeline: a thread with its own libevent base,
 * sockets (net), DogStatsD parser and aggregator.
 *
 *   socket -> net -> ingest_batch -> parse + aggr              (pipeline thread)
 *   flush: pipeline_collect -> aggr_collect on the pipeline thread (short),
 *          then aggr_emit over every pipeline's out on the main thread
 *          while the pipelines go on receiving                   (agent.c)
 *
 * dogstatsd_pipeline_count N pipelines each bind the same UDP port with
 * SO_REUSEPORT (the kernel spreads senders over them by address hash); the
 * Unix socket belongs to pipeline 0. Each pipeline owns its parser and
 * aggregator, so the hot path takes no lock and shares no cache line.
 *
 * Threading: pipeline_new, pipeline_free and every pipeline_* call below are
 * made from one thread (the agent's main thread). The calls that reach into
 * the pipeline (collect, reconfigure, stop_receiving, top) hand a command to
 * the pipeline thread through an eventfd and wait for it: the pipeline runs it
 * between two recvmmsg batches, so nothing it owns is ever touched by two
 * threads. A collect is walked in steps with the sockets read in between
 * (pipeline.c), so the caller waits a little longer and receiving does not. pipeline_get_stats reads a copy the pipeline publishes under a
 * mutex every 100 ms and after every command (at most 100 ms old, exact right
 * after a collect).
 *
 * Ownership: the pipeline owns its base, sockets, parser and aggregator. The
 * aggr_config passed in (and to pipeline_reconfigure) is borrowed and must
 * outlive the pipeline or the next pipeline_reconfigure. An aggr_out returned
 * by pipeline_collect references the pipeline's interned strings until the
 * next pipeline_collect on the same pipeline: emit and free it before then.
 */
#ifndef DDMA_AGENT_PIPELINE_H
#define DDMA_AGENT_PIPELINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"		/* struct aggr_config, aggr_out, aggr_stats */
#include "net/net.h"		/* struct net_config, net_stats */
#include "parse/parse.h"	/* struct dsd_limits, dsd_stats */

struct pipeline;
struct taglimit;

struct pipeline_stats {
	struct net_stats net;
	struct dsd_stats parse;
	struct aggr_stats aggr;
	uint64_t collects;
	double last_collect_s;	/* the longest stretch the last collect held up
				   receiving (its longest step; all of it for the final one) */
};

/* Opens the sockets (index 0 also the Unix socket) and starts the thread.
 * tl: the tag-limit tracker every pipeline's aggregator shares (a reference
 * is taken). NULL on error with a message in err. */
struct pipeline *pipeline_new(unsigned index, const struct net_config *net,
			      const struct dsd_limits *limits, const struct aggr_config *aggr,
			      struct taglimit *tl, char *err, size_t errlen);
/* Stops and joins the thread, closes the sockets, frees everything. NULL ok. */
void pipeline_free(struct pipeline *p);

/* aggr_collect(now, final) on the pipeline thread. Samples received after it
 * are stamped no earlier than `now`, so they never reopen a bucket this
 * collect closed. NULL only on ENOMEM (nothing was taken). */
struct aggr_out *pipeline_collect(struct pipeline *p, int64_t now, bool final);
/* aggr_reconfigure on the pipeline thread (cfg borrowed, see above). */
void pipeline_reconfigure(struct pipeline *p, const struct aggr_config *cfg);
/* Stops reading its sockets, then parses what the kernel had already queued
 * (at most 64 recvmmsg batches per socket): the shutdown path, before the
 * final collect. */
void pipeline_stop_receiving(struct pipeline *p);
/* aggr_top on the pipeline thread. */
size_t pipeline_top(struct pipeline *p, struct aggr_top_entry *out, size_t n);
void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *out);
/* Bound UDP port of the first UDP socket (0 when none); fixed after new. */
int pipeline_udp_port(const struct pipeline *p);

/* Sums for N pipelines (agent.c, status, telemetry). */
void pipeline_stats_add(struct pipeline_stats *sum, const struct pipeline_stats *x);

#endif
