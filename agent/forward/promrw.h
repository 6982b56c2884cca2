/*
 * promrw.h - batch series to Prometheus remote write 1.0 requests: protobuf
 * WriteRequest (proto/remote_write.proto, protobuf-c), snappy block
 * compression; sent with Content-Encoding: snappy and
 * X-Prometheus-Remote-Write-Version: 0.1.0 (forward.c).
 *
 * Mapping (README "Prometheus remote write"):
 * - metric name: bytes outside [a-zA-Z0-9_:] become '_', a leading digit
 *   gets a '_' prefix ("http.req-time" -> "http_req_time").
 * - host: label "host" (absent when the series has no host).
 * - tags: "key:value" -> label key="value" (split at the first ':'); a bare
 *   tag "key" -> key="true". Label names: bytes outside [a-zA-Z0-9_] become
 *   '_', a leading digit gets '_', names starting with "__" (reserved) get a
 *   "tag" prefix, an empty key becomes "tag". Repeated keys (also keys that
 *   map to the same name) become one label whose values are joined with ','
 *   in tag order, each value once.
 * - histogram aggregates (series.stem_len > 0): "<stem>.95percentile" ->
 *   <stem>{quantile="0.95"}; "<stem>.max" (median, avg, count, min, sum) ->
 *   <stem>{stat="max"}.
 * - counts (SERIES_RATE, SERIES_COUNT): the count of the interval
 *   (rate * interval) as a gauge sample, or with `cumulative` a running total
 *   named <name>_total kept in the encoder's state across flushes.
 * - gauges: the value.
 * Every series appears once per request, samples in timestamp order
 * (milliseconds), labels sorted by name. Records that map to one series and
 * timestamp (e.g. "a.b" and "a_b") become one sample: counts add up, a gauge
 * keeps the last value; payload npoints counts records, not samples. Records with a value that is not
 * finite are not sent (enc_result.non_finite).
 *
 * Pure apart from the cumulative totals in struct promrw: no I/O, no logging.
 * Not thread-safe (one encoder per endpoint, loop thread).
 */
#ifndef DDMA_FORWARD_PROMRW_H
#define DDMA_FORWARD_PROMRW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/batch.h"
#include "forward/encode.h"

#define PROMRW_DEFAULT_MAX_SAMPLES 2000
#define PROMRW_MAX_TOTALS 1000000	/* cumulative counters kept; more are sent as gauges */

struct promrw_opts {
	bool cumulative;	/* counts as cumulative <name>_total */
	size_t max_samples;	/* per request; 0 = PROMRW_DEFAULT_MAX_SAMPLES */
	int64_t created;	/* stamped on payloads */
	uint64_t *seq;		/* next sequence number; may be NULL */
};

/* The encoder's state: the cumulative totals per series. */
struct promrw *promrw_new(void);
void promrw_free(struct promrw *st);	/* accepts NULL */
size_t promrw_totals(const struct promrw *st);

/* Encodes n series into FWD_EP_PROMRW payloads (COMPRESS_SNAPPY) handed to
 * emit. 0 or -errno (-ENOMEM, or the emit callback's error); res as in
 * encode.h (records = samples emitted). */
int promrw_encode(struct promrw *st, const struct series *s, size_t n, const struct promrw_opts *o,
		  enc_emit_fn emit, void *arg, struct enc_result *res);

/* The mapping rules above, for tests and the README's examples: malloc'd,
 * NULL on ENOMEM. */
char *promrw_metric_name(const char *name, size_t n);
char *promrw_label_name(const char *key, size_t n);

#endif
