/*
 * payload.h - one encoded, compressed request body ready for an intake
 * endpoint, and the endpoint table (path, content type, size limits).
 *
 * Produced by the encoders (encode.h), queued by the retry queue (retry.h),
 * kept durable by the disk queue (diskq.h), sent by the forwarder (forward.c).
 * A payload owns its body; whoever holds the pointer owns the payload.
 * Threading: plain data, one owner at a time.
 */
#ifndef DDMA_FORWARD_PAYLOAD_H
#define DDMA_FORWARD_PAYLOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward/compress.h"

enum fwd_endpoint {
	FWD_EP_SERIES_V1,	/* /api/v1/series, JSON */
	FWD_EP_SERIES_V2,	/* /api/v2/series, protobuf MetricPayload */
	FWD_EP_SKETCHES,	/* /api/beta/sketches, protobuf SketchPayload */
	FWD_EP_CHECKS,		/* /api/v1/check_run, JSON list */
	FWD_EP_EVENTS,		/* /intake/, JSON {"events":{<source>:[..]}} */
	FWD_EP_PROMRW,		/* Prometheus remote write: snappy protobuf WriteRequest,
				 * posted to the configured URL as it is (promrw.h) */
	FWD_EP_COUNT
};

struct fwd_endpoint_info {
	const char *path;		/* appended to the base URL */
	const char *content_type;
	size_t max_compressed;		/* intake limits (docs/ARCHITECTURE.md "Forwarding") */
	size_t max_uncompressed;
};

/* NULL for an out-of-range endpoint. */
const struct fwd_endpoint_info *fwd_endpoint_info(enum fwd_endpoint ep);
/* Endpoint whose path equals `path`; -1 when none. */
int fwd_endpoint_by_path(const char *path);

struct payload {
	enum fwd_endpoint ep;
	enum compressor_kind enc;
	uint8_t *data;		/* compressed body (owned) */
	size_t len;
	size_t raw_len;		/* uncompressed size */
	uint32_t npoints;	/* records carried (series points, sketches, events, checks) */
	uint64_t seq;		/* creation order; larger = newer */
	int64_t created;	/* unix seconds */
	uint32_t attempts;	/* failed attempts so far */
	bool on_disk;		/* its file is in the disk queue (forward.c) */
	/* intrusive links for the retry queue, ordered by seq */
	struct payload *prev, *next;
};

/* Frees the body and the struct; accepts NULL. */
void payload_free(struct payload *p);

#endif
