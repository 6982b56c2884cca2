/*
 * fuzz_encode.c - libFuzzer harness for the forward module's byte handling:
 * - the input's bytes become names, tags, hosts, texts of series, checks and
 *   events; every encoder runs with tiny limits (forcing splits) and each
 *   payload is decompressed and checked (record count, size limits, protobuf
 *   unpacks);
 * - the same series go through the remote write encoder (promrw.h, counters
 *   cumulative or not): each WriteRequest unpacks, carries at most npoints
 *   samples, labels sorted by name without repeats, __name__ among them,
 *   samples of a series in strict time order;
 * - the raw input is fed to the bounded decompressors (hostile bodies, snappy
 *   included) and to the disk-queue file decoder (corrupted files).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent_payload.pb-c.h"
#include "forward/compress.h"
#include "forward/diskq.h"
#include "forward/encode.h"
#include "forward/promrw.h"
#include "remote_write.pb-c.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXREC 64

struct check_ctx {
	size_t max_c, max_u;
	size_t points;
};

static int check_payload(void *arg, struct payload *p)
{
	struct check_ctx *c = arg;
	if (p->len > c->max_c || p->raw_len > c->max_u)
		abort();
	uint8_t *raw = NULL;
	size_t n = 0;
	if (decompress_buf(p->enc, p->data, p->len, c->max_u, &raw, &n) != 0 || n != p->raw_len)
		abort();
	if (p->ep == FWD_EP_SERIES_V2) {
		Datadog__Agentpayload__MetricPayload *mp =
			datadog__agentpayload__metric_payload__unpack(NULL, n, raw);
		if (!mp || mp->n_series != p->npoints)
			abort();
		datadog__agentpayload__metric_payload__free_unpacked(mp, NULL);
	} else if (raw[0] != '{' && raw[0] != '[') {
		abort();
	}
	c->points += p->npoints;
	free(raw);
	payload_free(p);
	return 0;
}

static void check_series(const Prometheus__TimeSeries *t)
{
	int named = 0;
	for (size_t k = 0; k < t->n_labels; k++)
		named |= !strcmp(t->labels[k]->name, "__name__");
	if (!named)
		abort();
	for (size_t k = 1; k < t->n_labels; k++)
		if (strcmp(t->labels[k - 1]->name, t->labels[k]->name) >= 0)
			abort();
	for (size_t k = 1; k < t->n_samples; k++)
		if (t->samples[k - 1]->timestamp >= t->samples[k]->timestamp)
			abort();
}

static int check_promrw(void *arg, struct payload *p)
{
	struct check_ctx *c = arg;
	uint8_t *raw = NULL;
	size_t n = 0, samples = 0;
	if (p->ep != FWD_EP_PROMRW || decompress_buf(p->enc, p->data, p->len, 1 << 24, &raw, &n) != 0 ||
	    n != p->raw_len)
		abort();
	Prometheus__WriteRequest *wr = prometheus__write_request__unpack(NULL, n, raw);
	if (!wr)
		abort();
	for (size_t i = 0; i < wr->n_timeseries; i++) {
		check_series(wr->timeseries[i]);
		samples += wr->timeseries[i]->n_samples;
	}
	if (samples == 0 || samples > p->npoints)
		abort();
	prometheus__write_request__free_unpacked(wr, NULL);
	c->points += p->npoints;
	free(raw);
	payload_free(p);
	return 0;
}

static void run_promrw(struct series *ser, size_t ns, uint8_t knob)
{
	struct promrw *st = promrw_new();
	struct check_ctx c = { 0, 0, 0 };
	struct promrw_opts o = { .cumulative = knob & 1, .max_samples = 1 + knob % 5 };
	struct enc_result r;
	for (size_t i = 0; i < ns; i++) {
		const char *dot = strchr(ser[i].name, '.');
		ser[i].stem_len = dot && (i & 1) ? (uint32_t)(dot - ser[i].name) : 0;
	}
	for (int round = 0; round < 2; round++)
		if (!st || promrw_encode(st, ser, ns, &o, check_promrw, &c, &r) ||
		    r.records + r.non_finite != ns)
			abort();
	promrw_free(st);
}

/* Splits the input at 0xff bytes into NUL-terminated strings. */
static size_t split(const uint8_t *d, size_t n, char **out, size_t max)
{
	size_t k = 0, start = 0;
	for (size_t i = 0; i <= n && k < max; i++) {
		if (i == n || d[i] == 0xff) {
			out[k] = malloc(i - start + 1);
			memcpy(out[k], d + start, i - start);
			out[k][i - start] = 0;
			k++;
			start = i + 1;
		}
	}
	return k;
}

static void run_encoders(const uint8_t *data, size_t size)
{
	char *s[MAXREC];
	size_t ns = split(data + 1, size - 1, s, MAXREC);
	struct series ser[MAXREC];
	struct check_rec chk[MAXREC];
	struct event_rec ev[MAXREC];
	const char *const *tags = (const char *const *)s;
	for (size_t i = 0; i < ns; i++) {
		const char *a = s[i], *b = s[(i + 1) % ns];
		uint32_t nt = (uint32_t)(ns - i < 4 ? ns - i : 4);
		ser[i] = (struct series){ .name = a, .host = b, .tags = tags + i, .ntags = nt,
					  .kind = (enum series_kind)(i % 3), .interval = 10,
					  .ts = (int64_t)i * 10, .value = (double)strlen(a) / 3 };
		chk[i] = (struct check_rec){ .name = a, .status = (int)(i % 4), .ts = 1, .host = b,
					     .message = a, .tags = tags + i, .ntags = nt };
		ev[i] = (struct event_rec){ .title = a, .text = b, .ts = 2, .host = a,
					    .aggregation_key = b, .source_type = (i % 3) ? b : "",
					    .tags = tags + i, .ntags = nt };
	}
	struct check_ctx c = { 200 + data[0] * 4u, 300 + data[0] * 8u, 0 };
	struct enc_opts o = { .compressor = (enum compressor_kind)(data[0] % 4),
			      .max_compressed = c.max_c, .max_uncompressed = c.max_u,
			      .max_points = 1 + data[0] % 5, .hostname = ns ? s[0] : NULL };
	struct enc_result r;
	if (enc_series_v1(ser, ns, &o, check_payload, &c, &r) || r.records + r.too_large != ns)
		abort();
	if (enc_series_v2(ser, ns, &o, check_payload, &c, &r) || r.records + r.too_large != ns)
		abort();
	if (enc_checks(chk, ns, &o, check_payload, &c, &r) || r.records + r.too_large != ns)
		abort();
	if (enc_events(ev, ns, &o, check_payload, &c, &r) || r.records + r.too_large != ns)
		abort();
	run_promrw(ser, ns, data[0]);
	for (size_t i = 0; i < ns; i++)
		free(s[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1 || size > 1 << 16)
		return 0;
	run_encoders(data, size);
	uint8_t *out = NULL;
	size_t n = 0;
	for (int k = 0; k <= COMPRESS_SNAPPY; k++) {
		if (decompress_buf((enum compressor_kind)k, data, size, 1 << 20, &out, &n) == 0)
			free(out);
	}
	struct payload *p = NULL;
	if (diskq_decode(data, size, &p) == 0) {
		uint8_t *b = NULL;
		size_t bl = 0;
		if (diskq_encode(p, &b, &bl) != 0 || bl != size || memcmp(b, data, size) != 0)
			abort();
		free(b);
		payload_free(p);
	}
	return 0;
}
