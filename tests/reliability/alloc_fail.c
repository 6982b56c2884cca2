/*
 * alloc_fail.c - F10 of docs/RELIABILITY.md: allocation failure injected into the
 * config loader, the parse -> aggregate -> flush pipeline and the forward
 * encoders + compressors. Not a library: a test driver run by `meson test`
 * (tests/reliability/meson.build), in both the gcc and the ASan/UBSan builds.
 *
 * How: linked with -Wl,--wrap=malloc,calloc,realloc,aligned_alloc,strdup,
 * strndup,asprintf,free, so every allocation made by agent code (the module libraries are linked
 * statically into this driver) goes through the counters below. Allocations
 * made inside shared libraries (libyaml, zstd, zlib, protobuf-c, libc) are
 * not seen; their failure paths are those libraries' business.
 * For each scenario:
 *   1. a dry run counts the allocations it makes (T);
 *   2. "exactly the k-th allocation fails", for every k in 1..T (stride 1
 *      while T <= DDMA_ALLOC_MAX_SINGLE, else spread evenly);
 *   3. "every N-th allocation fails", for N in 2..16.
 * Checks: no crash (ASan/UBSan abort), and after each run the number of live
 * wrapped allocations is back where it was (a leak counter that works in the
 * gcc build too; LeakSanitizer checks again at exit under ASan). Any failure
 * prints the scenario and k/N and exits 1.
 * The "seen" scenario drives the daemon's receive path (pipeline.c on_batch:
 * ingest_batch, the seen-line cache's runs and prefetches) over enough
 * repeated lines that the seen-line cache allocates its entry table, grows it
 * and its key bytes, is cleared by an expiring flush and refilled; setup()
 * checks, unarmed, that the cache really holds > 512 lines and takes hits.
 * Usage: alloc_fail [SCENARIO]   (config | pipeline | seen | encode; default all)
 * Environment: DDMA_TEST_DATA (tests/data), DDMA_SOURCE_ROOT.
 * Single-threaded.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aggr/aggr.h"
#include "config/config.h"
#include "core/buf.h"
#include "forward/compress.h"
#include "forward/encode.h"
#include "ingest/ingest.h"
#include "parse/parse.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void __real_free(void *p);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_asprintf(char **out, const char *fmt, ...);
void __wrap_free(void *p);

static bool armed;
static uint64_t calls;	   /* allocation calls while armed */
static uint64_t fail_at;   /* fail exactly this call (1-based); 0 = off */
static uint64_t fail_every; /* fail every N-th call; 0 = off */
static uint64_t failed;	   /* failures injected */
static int64_t live;	   /* wrapped allocations not yet freed */

static bool should_fail(void)
{
	if (!armed)
		return false;
	calls++;
	if ((fail_at && calls == fail_at) || (fail_every && calls % fail_every == 0)) {
		failed++;
		return true;
	}
	return false;
}

void *__wrap_malloc(size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __real_malloc(n);
	if (p)
		live++;
	return p;
}

void *__wrap_calloc(size_t n, size_t m)
{
	if (should_fail())
		return NULL;
	void *p = __real_calloc(n, m);
	if (p)
		live++;
	return p;
}

void *__wrap_aligned_alloc(size_t align, size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __real_aligned_alloc(align, n);
	if (p)
		live++;
	return p;
}

void *__wrap_realloc(void *old, size_t n)
{
	if (should_fail())
		return NULL;
	void *p = __real_realloc(old, n);
	if (p && !old)
		live++;
	return p;
}

char *__wrap_strdup(const char *s)
{
	if (should_fail())
		return NULL;
	char *p = __real_strdup(s);
	if (p)
		live++;
	return p;
}

char *__wrap_strndup(const char *s, size_t n)
{
	if (should_fail())
		return NULL;
	char *p = __real_strndup(s, n);
	if (p)
		live++;
	return p;
}

int __wrap_asprintf(char **out, const char *fmt, ...)
{
	if (should_fail()) {
		*out = NULL;
		return -1;
	}
	va_list ap;
	va_start(ap, fmt);
	int rc = vasprintf(out, fmt, ap);
	va_end(ap);
	if (rc >= 0)
		live++;
	return rc;
}

void __wrap_free(void *p)
{
	if (p)
		live--;
	__real_free(p);
}

/* ---- scenarios: each returns after freeing everything it made ---- */

static char config_path[4096];

static void quiet(void *ctx, bool is_error, const char *msg)
{
}

static void run_config(void)
{
	struct config_diag diag = { .report = quiet };
	struct agent_config cfg;

	if (config_load(config_path, &cfg, &diag) == 0)
		config_free(&cfg);
}

/* The fixed datagram set: every metric type, tags, host override, sample
 * rates, multi-value, |T timestamps, events, service checks, rejects. */
static const char *const datagrams[] = {
	"page.views:1|c|#env:prod,role:web\npage.views:2|c|@0.5|#env:prod,role:web",
	"temp:21.5|g|#room:a\ntemp:+1|g|#room:a\nqueue:7|g|T1700000005",
	"lat:10|ms|#ep:/a\nlat:12|h|@0.25\nlat:1:2:3:4|h|#ep:/b",
	"users:alice|s\nusers:bob|s|#x:y\nusers:alice|s",
	"req.size:100|d|#ep:/a\nreq.size:250:300|d|@0.5|#ep:/a,host:other",
	"hits:5|c|T1700000003|#host:",
	"_e{5,4}:title|text|d:1700000000|h:h1|p:low|t:warning|#a:b",
	"_sc|db.up|1|d:1700000000|h:h2|#x|m:down for maintenance",
	"bad line\n:1|c\nx:nan|g\nx:1|q\nx:1|c|@abc",
	"airflow.job.duration_sec.etl.daily:3|g",
};

static struct agent_config pipe_cfg;

/* One datagram into a at now: with the seen-line cache (as pipeline.c) or
 * the full parse only. */
static void feed(struct dsd_parser *p, struct aggr *a, char *buf, size_t n, int64_t now,
		 bool cached)
{
	struct dsd_datagram d = { buf, n };
	if (cached)
		ingest_batch(p, a, &d, 1, now);
	else
		ingest_batch_full(p, a, &d, 1, now);
}

static void consume_batch(const struct batch *b)
{
	struct buf out;

	buf_init(&out);
	(void)batch_write_jsonl(b, &out);
	buf_done(&out);
	for (size_t i = 0; i < b->nsketches; i++) {
		struct batch *s = batch_new();
		if (s)
			(void)aggr_sketch_to_series(&pipe_cfg.aggr, &b->sketches[i], s);
		batch_free(s);
	}
}

static void run_pipeline(void)
{
	struct dsd_parser *p = dsd_parser_new(&pipe_cfg.limits);
	struct aggr *a = aggr_new(&pipe_cfg.aggr);

	if (p && a) {
		char buf[512];
		for (size_t i = 0; i < sizeof(datagrams) / sizeof(datagrams[0]); i++) {
			size_t n = strlen(datagrams[i]);
			memcpy(buf, datagrams[i], n + 1);
			feed(p, a, buf, n, 1700000001, false);
		}
		struct batch *b = aggr_flush(a, 1700000011, false);
		if (b)
			consume_batch(b);
		batch_free(b);
		b = aggr_flush(a, 1700000030, true);
		if (b)
			consume_batch(b);
		batch_free(b);
	}
	aggr_free(a);
	dsd_parser_free(p);
}

/* ---- seen: the seen-line cache on the daemon's receive path ---- */

#define SEEN_CONTEXTS 600	/* > 512: the cache's table grows past its first 1024 slots */
#define SEEN_PER_DGRAM 20

struct seen_run {
	struct aggr *a;
	int64_t now;
};

static uint64_t seen_max_entries, seen_hits; /* of the last run, for setup()'s check */

/* Every context once, SEEN_PER_DGRAM lines a datagram (counters, gauges,
 * histograms, distributions; ~70 key bytes a line), plus one set line and
 * one event the cache never takes. */
static void seen_round(struct dsd_parser *p, struct seen_run *r)
{
	static const char *const types[] = { "c", "g", "ms", "d" };
	char buf[4096];

	for (int base = 0; base < SEEN_CONTEXTS; base += SEEN_PER_DGRAM) {
		size_t n = 0;
		for (int i = base; i < base + SEEN_PER_DGRAM; i++)
			n += (size_t)snprintf(buf + n, sizeof(buf) - n,
					      "svc.requests.%d:%d|%s|#endpoint:/api/v1/items/%d,env:prod\n",
					      i % 7, i, types[i % 4], i);
		n += (size_t)snprintf(buf + n, sizeof(buf) - n,
				      "users:u%d|s\n_e{2,2}:ab|cd|#x:%d", base, base);
		feed(p, r->a, buf, n, r->now, true);
	}
	struct aggr_stats st;
	aggr_get_stats(r->a, &st);
	if (st.seen_entries > seen_max_entries)
		seen_max_entries = st.seen_entries;
	seen_hits = st.seen_hits;
}

static void seen_flush(struct aggr *a, int64_t now, bool final)
{
	batch_free(aggr_flush(a, now, final)); /* the batch's own paths: "pipeline" */
}

static void run_seen(void)
{
	struct dsd_parser *p = dsd_parser_new(&pipe_cfg.limits);
	struct seen_run r = { .a = aggr_new(&pipe_cfg.aggr), .now = 1700000001 };

	seen_max_entries = seen_hits = 0;
	if (p && r.a) {
		/* first sighting creates, second remembers, third hits */
		for (int i = 0; i < 3; i++)
			seen_round(p, &r);
		seen_flush(r.a, r.now += 11, false);
		seen_round(p, &r);
		/* idle past every expiry: contexts go, the cache is cleared */
		seen_flush(r.a, r.now += 400, false);
		seen_flush(r.a, r.now += 400, false);
		for (int i = 0; i < 2; i++)
			seen_round(p, &r);
		seen_flush(r.a, r.now += 30, true);
	}
	aggr_free(r.a);
	dsd_parser_free(p);
}

static struct batch *enc_batch; /* built once, unarmed, by the pipeline */

static void pipeline_into(struct batch **out)
{
	struct dsd_parser *p = dsd_parser_new(&pipe_cfg.limits);
	struct aggr *a = aggr_new(&pipe_cfg.aggr);
	char buf[512];

	for (size_t i = 0; p && a && i < sizeof(datagrams) / sizeof(datagrams[0]); i++) {
		size_t n = strlen(datagrams[i]);
		memcpy(buf, datagrams[i], n + 1);
		feed(p, a, buf, n, 1700000001, false);
	}
	*out = a ? aggr_flush(a, 1700000030, true) : NULL;
	aggr_free(a);
	dsd_parser_free(p);
}

static int drop_payload(void *arg, struct payload *pl)
{
	payload_free(pl);
	return 0;
}

static void run_encode(void)
{
	static const enum compressor_kind kinds[] = { COMPRESS_ZSTD, COMPRESS_ZLIB, COMPRESS_GZIP,
						      COMPRESS_NONE };
	const struct batch *b = enc_batch;
	uint64_t seq = 0;

	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		/* tiny limits force the split paths */
		struct enc_opts o = { .compressor = kinds[k], .created = 1700000030, .seq = &seq,
				      .hostname = "h", .max_points = 2,
				      .max_uncompressed = k == 3 ? 300 : 0 };
		struct enc_result r;
		(void)enc_series_v1(b->series, b->nseries, &o, drop_payload, NULL, &r);
		(void)enc_series_v2(b->series, b->nseries, &o, drop_payload, NULL, &r);
		(void)enc_sketches(b->sketches, b->nsketches, &o, drop_payload, NULL, &r);
		(void)enc_checks(b->checks, b->nchecks, &o, drop_payload, NULL, &r);
		(void)enc_events(b->events, b->nevents, &o, drop_payload, NULL, &r);

		static const char text[] = "compress me compress me compress me compress me";
		uint8_t *c = NULL, *d = NULL;
		size_t cl = 0, dl = 0;
		if (compress_buf(kinds[k], 0, text, sizeof(text), &c, &cl) == 0)
			(void)decompress_buf(kinds[k], c, cl, 1 << 20, &d, &dl);
		free(c);
		free(d);
	}
}

/* ---- the injection loop ---- */

struct scenario {
	const char *name;
	void (*run)(void);
};

static int failures;

static void check_one(const struct scenario *s, const char *mode, uint64_t n)
{
	int64_t before = live;

	calls = 0;
	failed = 0;
	armed = true;
	s->run();
	armed = false;
	if (live != before) {
		fprintf(stderr, "alloc_fail: %s, %s %llu: %lld allocation(s) leaked\n", s->name,
			mode, (unsigned long long)n, (long long)(live - before));
		failures++;
	}
}

static void run_scenario(const struct scenario *s, uint64_t max_single)
{
	fail_at = fail_every = 0;
	check_one(s, "dry run", 0);
	uint64_t total = calls;
	uint64_t stride = total > max_single ? (total + max_single - 1) / max_single : 1;
	uint64_t runs = 0, injected = 0;

	for (uint64_t k = 1; k <= total; k += stride) {
		fail_at = k;
		check_one(s, "fail only allocation", k);
		injected += failed;
		runs++;
	}
	fail_at = 0;
	for (uint64_t n = 2; n <= 16; n++) {
		fail_every = n;
		check_one(s, "fail every", n);
		injected += failed;
		runs++;
	}
	fail_every = 0;
	printf("%s: %llu allocations per run, %llu runs (single-failure stride %llu), %llu failures injected\n",
	       s->name, (unsigned long long)total, (unsigned long long)runs,
	       (unsigned long long)stride, (unsigned long long)injected);
	if (total == 0) {
		fprintf(stderr, "alloc_fail: %s made no allocation: the wrap is not in effect\n",
			s->name);
		failures++;
	}
}

static int setup(void)
{
	const char *data = getenv("DDMA_TEST_DATA");
	snprintf(config_path, sizeof(config_path), "%s/config/full.yaml", data ? data : "tests/data");
	static const char pipe_yaml[] =
		"hostname: h0\ntags: [\"env:test\"]\nhistogram_percentiles: [0.5, 0.95]\n"
		"dogstatsd_no_aggregation_pipeline: true\n"
		"dogstatsd_mapper_profiles:\n  - name: airflow\n    prefix: \"airflow.\"\n"
		"    mappings:\n      - match: \"airflow.job.duration_sec.*.*\"\n"
		"        name: \"airflow.job.duration\"\n        tags: {job_type: \"$1\", job_name: \"$2\"}\n";
	struct config_diag diag = { .report = quiet };
	if (config_load_buffer("pipe.yaml", pipe_yaml, sizeof(pipe_yaml) - 1, &pipe_cfg, &diag)) {
		fprintf(stderr, "alloc_fail: pipeline config rejected\n");
		return -1;
	}
	run_seen();
	if (seen_max_entries <= 512 || seen_hits < 2 * SEEN_CONTEXTS) {
		fprintf(stderr, "alloc_fail: seen scenario: cache held %llu lines, %llu hits: "
			"the cache's growth is not exercised\n", (unsigned long long)seen_max_entries,
			(unsigned long long)seen_hits);
		return -1;
	}
	pipeline_into(&enc_batch);
	if (!enc_batch || !enc_batch->nseries || !enc_batch->nsketches || !enc_batch->nevents ||
	    !enc_batch->nchecks) {
		fprintf(stderr, "alloc_fail: the datagram set did not give every record kind\n");
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	static const struct scenario all[] = {
		{ "config", run_config },
		{ "pipeline", run_pipeline },
		{ "seen", run_seen },
		{ "encode", run_encode },
	};
	const char *e = getenv("DDMA_ALLOC_MAX_SINGLE");
	uint64_t max_single = e ? strtoull(e, NULL, 10) : 4000;

	if (max_single == 0)
		max_single = 1;
	if (setup())
		return 1;
	for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) {
		if (argc > 1 && strcmp(argv[1], all[i].name))
			continue;
		run_scenario(&all[i], max_single);
	}
	batch_free(enc_batch);
	config_free(&pipe_cfg);
	if (failures)
		printf("alloc_fail: %d failing run(s)\n", failures);
	else
		printf("alloc_fail: no crash, no leak\n");
	return failures ? 1 : 0;
}
