/*
 * encode.h - batch records to intake payloads: JSON for /api/v1/series,
 * /api/v1/check_run and /intake/ (events), protobuf (protobuf-c, Datadog's
 * agent-payload messages) for /api/v2/series and /api/beta/sketches.
 *
 * Each encoder renders every record once, then packs consecutive records into
 * payloads that respect the endpoint's limits (compressed and uncompressed
 * bytes, points per payload); a chunk whose compressed size is over the limit
 * is split in halves. A single record that cannot fit is not emitted and is
 * reported in enc_result.too_large. A series or sketch point with a number
 * that is not finite is not emitted either (enc_result.non_finite): JSON has
 * no such number and the intake would reject the whole payload. Every other
 * record appears in exactly one emitted payload.
 *
 * Pure: no I/O, no logging, no clock (created/seq are given). Thread-safe.
 * Called by the forwarder (fwd_submit), the unit tests and the fuzz harness.
 */
#ifndef DDMA_FORWARD_ENCODE_H
#define DDMA_FORWARD_ENCODE_H

#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "forward/payload.h"

struct enc_opts {
	enum compressor_kind compressor;
	int level;			/* <= 0: library default */
	size_t max_points;		/* per series payload; 0 = 10000 */
	size_t max_compressed;		/* 0 = the endpoint's limit */
	size_t max_uncompressed;	/* 0 = the endpoint's limit */
	const char *hostname;		/* internalHostname of events payloads; may be NULL */
	int64_t created;		/* stamped on payloads */
	uint64_t *seq;			/* next sequence number, incremented per payload; may be NULL */
};

/* Receives each payload; consumes it (must free it even on error). A negative
 * return stops the encoder, which returns that value. */
typedef int (*enc_emit_fn)(void *arg, struct payload *p);

struct enc_result {
	size_t payloads;
	size_t records;		/* records emitted */
	size_t too_large;	/* records dropped: alone over a limit */
	size_t non_finite;	/* records dropped: a value (or a sketch's sum, min, max,
				 * avg) is inf or nan; never in any payload */
};

/* Each returns 0 or -errno (-ENOMEM, or the emit callback's error); res is
 * filled in both cases with what was emitted so far. */
int enc_series_v1(const struct series *s, size_t n, const struct enc_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res);
int enc_series_v2(const struct series *s, size_t n, const struct enc_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res);
int enc_sketches(const struct sketch_point *s, size_t n, const struct enc_opts *o,
		 enc_emit_fn emit, void *arg, struct enc_result *res);
int enc_checks(const struct check_rec *c, size_t n, const struct enc_opts *o,
	       enc_emit_fn emit, void *arg, struct enc_result *res);
int enc_events(const struct event_rec *e, size_t n, const struct enc_opts *o,
	       enc_emit_fn emit, void *arg, struct enc_result *res);

#endif
