/*
 * aggr_int.h - private to the aggregator (aggr.c, flush.c, seen.c,
 * top.c). Not a contract.
 *
 * One struct ctx per context (name + host + tag set + accumulator family).
 * The metric type is part of the key as a family (count, gauge, histogram
 * for both h and ms, set, distribution): Datadog's agent keys contexts without
 * the type and lets the first type of a bucket win; keeping families apart
 * loses nothing and needs no cross-type conversion.
 *
 * A context holds two inline bucket slots (the current bucket and the closed
 * one waiting for the flush, the common case when flushes are not aligned on
 * bucket boundaries); more (flush stalled, clock jumps) go to a small heap
 * array found through the aggregator's overflow table (struct more), so the
 * record only counts them. Counter and gauge accumulators are inline doubles;
 * histograms, sets and distributions point to a heap accumulator allocated on
 * first use in a bucket and freed when the bucket is flushed.
 *
 * A slot is named by its accumulator's address (union acc *): an inline
 * slot's bucket is at the same index of ctx.bucket, an overflow slot's is
 * the struct slot around it (slot_bucket).
 */
#ifndef DDMA_AGGR_AGGR_INT_H
#define DDMA_AGGR_AGGR_INT_H

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr.h"
#include "aggr/ctab.h"
#include "aggr/ddsketch.h"
#include "aggr/hist.h"
#include "aggr/hll.h"
#include "aggr/htab.h"
#include "aggr/intern.h"
#include "aggr/mapper.h"
#include "aggr/ptab.h"
#include "aggr/taglimit.h"
#include "aggr/tagrules.h"
#include "core/buf.h"

#define AGGR_BUCKET 10
/* A slot's bucket is its start relative to aggr.epoch (int32_t); SLOT_FREE
 * marks an unused slot. */
#define SLOT_FREE INT32_MIN
/* Timestamped points, events and service checks held for one flush. */
#define AGGR_PENDING_MAX 100000

/* One bucket's accumulator; which member by the context's type. */
union acc {
	double d;		/* count: sum of value/rate; gauge: value */
	struct hist *h;
	struct setacc *set;
	struct ddsketch *sk;
	uint32_t owner;		/* count, while ctx.own names this slot: the seen
				 * entry holding its sum (aggr.seen.t index) */
};

/* An overflow slot (struct more). */
struct slot {
	int32_t bucket;		/* bucket start - aggr.epoch, SLOT_FREE when unused */
	union acc u;
};

/* One closed bucket of one context, moved out by aggr_collect (48 bytes; one
 * array per out). name/host/tags are the aggr's interned objects (aggr.h says
 * how long they stay valid); the accumulator belongs to the record. */
struct aggr_rec {
	const struct istr *name;
	const struct istr *host;
	const struct tagset *tags;
	int64_t bucket;
	union acc u;		/* a counter zero-fill is a count record with d = 0 */
	uint8_t type;		/* the context's family */
	uint8_t sec;		/* gauge: receive second of its value within the bucket */
	uint8_t flags;		/* REC_MERGED: folded into another out's record */
};
#define REC_MERGED 1
_Static_assert(sizeof(struct aggr_rec) <= 48, "a record per context and bucket: keep it small");

struct aggr_out {
	struct aggr_rec *r;
	size_t n, cap;
	struct batch *pending;	/* the aggr's pending batch, moved out */
	void **dead;		/* strings/tag sets unlinked from the pools: free() */
	size_t ndead, dead_cap;
};

/* 64 bytes: allocated from the aggregator's slab (struct ctx_slab, chunks
 * aligned on 64 bytes: a context is one cache line), no per-context malloc
 * header. The key hash is not stored: its upper half is in the table slot
 * (ctab.h) and it can be recomputed from name, host and tags. What a sample
 * touches comes first (inline slots, last_seen, type, own, nmore; x for
 * gauges: bytes 0..39). Bucket starts are 32-bit, relative to aggr.epoch as
 * last_seen is: a sample whose time does not fit is refused
 * (AGGR_DROP_CLOCK_RANGE, clock_rel). Overflow slots are in the
 * aggregator's overflow table, not here: they are rare (a stalled flush, a
 * clock jump), and a pointer to them would cost every context 8 bytes. */
struct ctx {
	int32_t bucket[2];	/* inline slots: bucket start - aggr.epoch, or SLOT_FREE */
	union acc u[2];		/* their accumulators */
	int32_t last_seen;	/* receive time of the last sample - aggr.epoch */
	uint8_t type;		/* enum metric_type, METRIC_TIMING folded into HISTOGRAM */
	union {
		uint8_t has_last; /* gauge: x.last is set */
		uint8_t own;	/* count: 0, or 1 + the inline slot whose sum a
				 * seen entry holds (seen.c, "owned slots") */
	};
	uint16_t nmore;		/* overflow slots (aggr.more holds them when > 0) */
	union {
		int64_t born;	/* count: bucket of the first sample (zero-fill start) */
		double last;	/* gauge: last value (gauge deltas) */
	} x;
	struct istr *name;	/* names pool */
	struct istr *host;	/* strings pool */
	struct tagset *tags;
};
_Static_assert(sizeof(struct ctx) == 64, "the memory target counts on 64-byte contexts");
#define CTX_ALIGN 64

/* The head of an item of a side table keyed by an object's address
 * (aggr.more, aggr.refused; ptab.h: an item's first member is its hash).
 * The objects never move: contexts live in slab chunks, names are interned. */
struct addr_key {
	uint64_t h;		/* addr_hash(key) (aggr.c) */
	const void *key;
};

/* A context's overflow slots: an item of aggr.more keyed by the context,
 * present while c->nmore > 0. */
struct more {
	struct addr_key k;
	struct slot *s;		/* c->nmore slots, capacity more_cap(c->nmore) */
};

/* The samples the caps refused for a metric name: an item of aggr.refused
 * keyed by the name, present while the name is in the
 * names pool and has refused any. Refusals are rare, so the names do not
 * carry a counter each. */
struct refusal {
	struct addr_key k;	/* the name */
	uint64_t n;
};

/* Contexts are carved from chunks of CTX_CHUNK; a context's slab index is
 * chunk * CTX_CHUNK + position (the context table stores it). Freed ones go
 * on a free list (their first word links it, the second holds their index)
 * and are reused first; their type is CTX_DEAD. Chunks are returned when
 * no context is left (flush after the last expiry) or at aggr_free; after a
 * partial expiry the memory stays reserved for new contexts (memory_bytes
 * counts whole chunks). */
/* A freed context's type is CTX_DEAD (its first 12 bytes hold the link and
 * index, the type byte is past them), so aggr_collect can walk the chunks in
 * memory order and skip the free ones. */
#define CTX_DEAD 0xff
#define CTX_CHUNK 4096
struct ctx_slab {
	struct ctx **chunks;
	size_t nchunks, chunks_cap;
	size_t used;		/* contexts handed out of the last chunk */
	struct ctx *free;
};

/* Capacity of a context's overflow slot array holding n slots. */
static inline uint16_t more_cap(uint16_t n)
{
	uint16_t c = 2;
	if (n == 0)
		return 0;
	while (c < n)
		c = (uint16_t)(c * 2);
	return c;
}

/*
 * The seen-line cache (seen.c): the key (keyhash.h: a seeded 128-bit hash of
 * name, type and the raw suffix after the type) of a cacheable line -> its
 * context and sample rate, so a line seen before skips tag parsing,
 * enrichment and the context lookup. The key is the line's identity: no key
 * bytes are kept or compared (keyhash.h gives the odds of a false match).
 * A line is remembered when it reaches a context that already existed (its
 * second sighting). Bounded: at most SEEN_MAX entries; keys over
 * SEEN_KEY_MAX bytes are not cached; when full, nothing more is added until
 * the next clear. Cleared when a flush expires contexts and by
 * aggr_reconfigure. Refused and failed lines are never cached, so every
 * refusal is counted by the full path.
 */
#define SEEN_MAX 65536
#define SEEN_KEY_MAX DSD_CACHE_KEY_MAX
#define SEEN_PROBE_MAX 32	/* slots a lookup examines at most */
/*
 * 32 bytes, two to a cache line, stored in the open-addressing table itself:
 * the probe, the compare and, for a counter that owns its slot, the sum.
 * The key is kept as lane a and the low 32 bits of lane b: a 96-bit
 * identity (a false match ~2^-91 per lookup at 32 probes, against
 * Datadog's agent's 64-bit context keys).
 *
 * rel says what the entry owns. An entry that owns the counter c's inline
 * slot of a bucket (c->own names that slot, whose u.owner names this entry)
 * holds the slot's sum in `sum` and the latest receive time added to it in
 * rel (c->last_seen's scale); that time is in the bucket it owns, so
 * bucket_of(epoch + rel) names the bucket (seen.c owns only while the
 * receive time is exact in 32 bits). Otherwise rel is SEEN_FREE (the line's
 * rate is 1) or SEEN_RATED: a line with a sample rate other than 1 never
 * owns a slot and keeps its rate in `sum`.
 */
struct seen_ent {
	uint64_t ka;		/* key lane a (its low bits: the home slot) */
	uint32_t kb;		/* key lane b, low 32 bits */
	int32_t rel;		/* see above */
	struct ctx *c;		/* NULL = empty slot */
	double sum;		/* owned sum, or (SEEN_RATED) the sample rate */
};
_Static_assert(sizeof(struct seen_ent) == 32, "two cached lines per cache line");
#define SEEN_FREE INT32_MIN
#define SEEN_RATED (INT32_MIN + 1)
struct seen {
	struct seen_ent *t;	/* cap slots, at most a quarter used */
	size_t cap;		/* power of two, or 0 */
	size_t n;
	size_t owning;		/* entries that own a slot */
	int64_t last_now;	/* the receive time last_brel is computed for */
	int64_t last_brel;	/* bucket_of(last_now) - epoch, or SEEN_NO_OWN when
				 * entries cannot own */
};

struct aggr {
	const struct aggr_config *cfg;
	struct strpool names;	/* metric names; refcnt = live contexts */
	struct strpool strs;	/* tags and hosts */
	struct tagpool tagsets;
	struct ctab ctxs;	/* slots: key hash (upper half) | slab index + 1 */
	struct ctx_slab slab;
	int64_t epoch;		/* ctx.last_seen is relative to this */
	bool have_epoch;
	struct mapper *mapper;
	struct tagref *gtags;	/* cfg->tags with their hashes */
	size_t ngtags;
	struct sv host;		/* cfg->hostname (the default host) and its hash */
	uint64_t host_h;
	char *ns;		/* namespace with its trailing '.', or NULL */
	size_t nslen;
	struct buf name;	/* scratch: namespaced name */
	struct buf dname;	/* scratch: histogram_copy_to_distribution's name */
	struct tagref *scratch;
	size_t scratch_cap;
	struct batch *pending;	/* timestamped points, events, checks */
	size_t npending;
	int64_t flushed_upto;	/* every bucket before this was flushed */
	bool have_upto;		/* flushed_upto is set (first context or flush) */
	size_t acc_bytes;	/* heap accumulators, overflow slot arrays and their
				 * struct more */
	struct ptab more;	/* struct more of each context with nmore > 0 */
	struct ptab refused;	/* struct refusal of each name that refused samples */
	struct seen seen;
	struct aggr_stats st;
	struct taglimit *tl;	/* tag value limits, maybe shared with other pipelines */
	bool tl_on;		/* a limit is set: the contexts are registered with tl */
	struct tagrules *rules;	/* cfg->tags_exclude, or NULL */
	size_t mem_cap;		/* cfg->memory_limit / cfg->pipeline_count; 0 = none */
	struct aggr_incr *incr;	/* an incremental collect in progress (flush.c), or NULL */
	int64_t incr_now;	/* its begin's now: ingest meanwhile must not be older */
};

static inline int64_t bucket_of(int64_t t)
{
	int64_t r = t % AGGR_BUCKET;
	return t - (r < 0 ? r + AGGR_BUCKET : r);
}

/* Where the sum of counter c's slot u is: the slot, or the seen entry that
 * owns it (seen.c). */
static inline double *count_sum(struct aggr *a, struct ctx *c, union acc *u)
{
	if (c->own && u == &c->u[c->own - 1])
		return &a->seen.t[u->owner].sum;
	return &u->d;
}

static inline int64_t ctx_last_seen(const struct aggr *a, const struct ctx *c)
{
	return a->epoch + c->last_seen;
}

/* Receive time now relative to the epoch (ctx.last_seen's scale); false
 * when it is over 68 years away from the epoch: then it or its bucket
 * (bucket_of(now) - epoch, in rel - 9 .. rel) would not fit 32 bits, and
 * the sample is refused (AGGR_DROP_CLOCK_RANGE). */
static inline bool clock_rel(const struct aggr *a, int64_t now, int32_t *rel)
{
	int64_t r = now - a->epoch;
	if (r <= SLOT_FREE + AGGR_BUCKET || r > INT32_MAX)
		return false;
	*rel = (int32_t)r;
	return true;
}

/* Bucket b's start relative to the epoch, as a slot keeps it; false when no
 * slot can hold it. */
static inline bool bucket_rel(const struct aggr *a, int64_t b, int32_t *rb)
{
	int64_t r = b - a->epoch;
	if (r <= SLOT_FREE || r > INT32_MAX)
		return false;
	*rb = (int32_t)r;
	return true;
}

/* The samples the caps refused for name s, a string of the names pool
 * (aggr.c). */
uint64_t aggr_refused(const struct aggr *a, const struct istr *s);
/* Context c's overflow slots (c->nmore > 0; aggr.c). */
struct more *aggr_more(const struct aggr *a, const struct ctx *c);

/* The context's slot for bucket rb (bucket_rel), or NULL (aggr.c's hot
 * path, seen.c, flush.c). */
static inline union acc *ctx_slot_find(const struct aggr *a, struct ctx *c, int32_t rb)
{
	if (c->bucket[0] == rb)
		return &c->u[0];
	if (c->bucket[1] == rb)
		return &c->u[1];
	if (__builtin_expect(!c->nmore, 1))
		return NULL;
	struct more *m = aggr_more(a, c);
	for (uint16_t i = 0; i < c->nmore; i++)
		if (m->s[i].bucket == rb)
			return &m->s[i].u;
	return NULL;
}

/* The bucket of c's slot u. */
static inline int32_t *slot_bucket(struct ctx *c, union acc *u)
{
	if (u == &c->u[0] || u == &c->u[1])
		return &c->bucket[u - c->u];
	return &((struct slot *)(void *)((char *)u - offsetof(struct slot, u)))->bucket;
}

static inline struct ctx *ctx_at(const struct aggr *a, uint32_t idx)
{
	return &a->slab.chunks[idx / CTX_CHUNK][idx % CTX_CHUNK];
}

/* True for the families whose accumulator is on the heap (h/ms, s, d). */
static inline bool acc_on_heap(uint8_t type)
{
	return type == METRIC_HISTOGRAM || type == METRIC_SET || type == METRIC_DISTRIBUTION;
}

/* Heap bytes of an accumulator of the family `type`; frees one (aggr.c). */
size_t aggr_acc_bytes(uint8_t type, const union acc *u);
void aggr_acc_free(uint8_t type, union acc *u);
/* Frees every chunk: only when no context is live (aggr.c). */
void aggr_slab_done(struct ctx_slab *sl);
/* c->nmore went down from old_n: fits m's array (and acc_bytes) to
 * more_cap(c->nmore); drops m from aggr.more when c->nmore is 0 (aggr.c). */
void aggr_more_shrunk(struct aggr *a, struct ctx *c, struct more *m, uint16_t old_n);
/* Adds m's values to c's bucket of `now` (aggr.c). */
void aggr_accumulate(struct aggr *a, struct ctx *c, const struct dsd_metric *m, double rate,
		     int64_t now);
/* The seen-line cache (seen.c). seen_remember copies the key; failures only
 * mean the line is not cached. seen_release gives every owned slot its sum
 * back (before anything reads counter slots: aggr_collect_begin);
 * seen_clear does that and forgets every entry (keeps memory). */
void seen_remember(struct seen *sc, const struct dsd_metric *m, struct ctx *c, double rate);
void seen_release(struct seen *sc);
void seen_clear(struct seen *sc);
/* The table at its first size, allocated and written now (aggr_reserve). */
void seen_reserve(struct seen *sc);
void seen_done(struct seen *sc);
size_t seen_bytes(const struct seen *sc);

/* Bytes the aggregator holds (aggr_stats.memory_bytes; top.c): its tables,
 * slab, interned objects with the allocator's per-block overhead
 * (AGGR_MALLOC_OVERHEAD each), accumulators, caches. */
size_t aggr_memory_bytes(const struct aggr *a);
#define AGGR_MALLOC_OVERHEAD 16
/* What dogstatsd_memory_limit counts on top of aggr_memory_bytes for each
 * live context: its record in a collect's out (48 bytes), its share of the
 * flushed batch (a series with its tag array, ~100 bytes), and of the
 * tag-limit tracker (taglimit_bytes, counted whole). */
#define AGGR_FLUSH_BYTES_PER_CTX 160

/* Unlinks nothing: drops the context's references and frees it (aggr.c).
 * With o, strings and tag sets whose last reference goes are handed to
 * o->dead instead of freed (room for 3 + c->tags->n entries reserved by the
 * caller): o's records may still read them. */
void aggr_ctx_destroy(struct aggr *a, struct ctx *c, uint32_t idx, struct aggr_out *o);

/* Fills p's count, min, max, sum, avg and bins from sk (cnt > 0), the bins
 * copied into b's arena (flush.c). 0 or -ENOMEM. */
int aggr_sketch_point(struct batch *b, const struct ddsketch *sk, struct sketch_point *p);

/* aggr_free during an incremental collect: drops its state and its out
 * (flush.c). NULL-safe on a->incr. */
void aggr_incr_abort(struct aggr *a);
/* Debug check of the ingest calls allowed during an incremental collect. */
#define AGGR_INCR_CHECK(a, now) assert(!(a)->incr || (now) >= (a)->incr_now)

#endif
