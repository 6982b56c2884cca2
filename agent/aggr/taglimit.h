/*
 * taglimit.h - tag value limits per metric: how many distinct values each tag
 * key has among the live contexts of each metric name, and what to do with a
 * sample that would add one more value than the limit allows.
 *
 * Bookkeeping: every live context holds one reference on each of its tags'
 * (metric name, tag) value entries; a key entry (metric name, tag key) counts
 * the distinct values referenced. A value stops counting when the last
 * context holding it is destroyed (expired), so "within the expiry window"
 * means "among the contexts still alive" (dogstatsd_expiry_seconds for
 * counters, dogstatsd_context_expiry_seconds for the other types).
 *
 * When a new context would bring a key past the limit, that tag is removed
 * from the sample (TAGLIMIT_STRIP: the sample goes to the context without
 * it, so counts, sums and histogram samples stay exact) or the sample is
 * refused (TAGLIMIT_DROP). Values already tracked always pass. With a limit
 * of 0 the aggregators neither call it nor register their contexts (no cost);
 * when a reload sets a limit, each registers its live contexts
 * (taglimit_track_set), and gives them back when a reload sets 0.
 *
 * Identities are 64-bit hashes (the metric name's, the tag's, the key's, as
 * hash64 computes them): two different values colliding would count as one
 * (odds ~n^2 / 2^64).
 *
 * Shared: one tracker may serve several aggregators (one per receive
 * pipeline), so that the limit holds for the agent as a whole and a value
 * kept by one pipeline is kept by all of them (their records merge). Every
 * call takes the tracker's mutex; the calls are made only when a context is
 * created or destroyed (never for a sample reaching an existing context).
 * Refcounted: taglimit_new gives one reference.
 */
#ifndef DDMA_AGGR_TAGLIMIT_H
#define DDMA_AGGR_TAGLIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/intern.h"
#include "core/sv.h"

struct taglimit;

enum taglimit_action { TAGLIMIT_STRIP, TAGLIMIT_DROP };

/* What taglimit_enter decided for a sample. */
enum taglimit_verdict {
	TAGLIMIT_KEEP,		/* every tag kept */
	TAGLIMIT_STRIPPED,	/* some tags removed (*n is smaller) */
	TAGLIMIT_DROPPED,	/* refuse the sample (no reference taken) */
};

/* One (metric name, tag key) that the limit has bitten. */
struct taglimit_row {
	char metric[200];	/* truncated for the report */
	char key[100];
	uint64_t values;	/* distinct values tracked now */
	uint64_t stripped;	/* samples that lost this tag */
	uint64_t dropped;	/* samples refused because of this tag */
};

struct taglimit *taglimit_new(void);
void taglimit_ref(struct taglimit *tl);
void taglimit_unref(struct taglimit *tl); /* frees on the last reference; NULL ok */

/* Sets the limit (0 = none) and the action; applies to new contexts. */
void taglimit_configure(struct taglimit *tl, size_t limit, enum taglimit_action action);

/* For a context about to be created for metric `name` (name_h = hash64) with
 * the canonical tags t[0..*n) (t[i].h = hash64 of the tag): removes the tags
 * over the limit (the others keep their order) or refuses, and takes one
 * reference per tag left. nv: the samples the line carries (counted per key
 * in the report). -ENOMEM: nothing done (the caller refuses the sample). */
int taglimit_enter(struct taglimit *tl, struct sv name, uint64_t name_h, struct tagref *t,
		   size_t *n, uint64_t nv);
/* Gives back the references of taglimit_enter (the context was not created)
 * or of a context being destroyed. */
void taglimit_leave_refs(struct taglimit *tl, uint64_t name_h, const struct tagref *t, size_t n);
void taglimit_leave_set(struct taglimit *tl, uint64_t name_h, const struct tagset *ts);
/* Takes a reference per tag of a live context, whatever the limit (an
 * aggregator registering the contexts it created while no limit was set).
 * Out of memory: the tags not registered are missing from the counts. */
void taglimit_track_set(struct taglimit *tl, const struct istr *name, const struct tagset *ts);

/* Distinct values of `key` tracked for metric `name` now (tests, status). */
uint64_t taglimit_values(struct taglimit *tl, struct sv name, struct sv key);

/* Up to n rows of the keys the limit has bitten, most samples affected
 * first; returns the rows. With only_new, only the keys not returned by an
 * earlier only_new call (the agent's one WARN per metric and key). */
size_t taglimit_report(struct taglimit *tl, struct taglimit_row *out, size_t n, bool only_new);
/* How many keys the limit has bitten so far. */
size_t taglimit_limited_keys(struct taglimit *tl);
/* Bytes held by the tracker (tables and key entries); no lock taken (the
 * figure as of the last call that changed it). */
size_t taglimit_bytes(const struct taglimit *tl);

#endif
