/*
 * flushcost.c - what a flush of many counter contexts costs, split the way
 * the agent runs it: aggr_collect (on the receive pipeline's thread: what
 * receiving waits for), aggr_emit (on the main thread while the pipelines
 * receive) and aggr_out_free.
 *
 * Caller: engineers by hand (issue 7, "flush of 1M contexts"). Single-threaded;
 * links the aggregator, no sockets, no parser (samples go straight to
 * aggr_ingest). Contexts are loadgen's shape: "flush.metric.<i % 100>" with
 * tags ctx:<i / 100>, t1:v<(i+1)%10>, t2:v<(i+2)%10>.
 *
 * usage: flushcost [CONTEXTS [STEP]]   (CONTEXTS default 1000000)
 * Prints one key=value line per measurement, CPU seconds of this thread
 * (cpu_s) and wall seconds (wall_s):
 *   one   : 1 aggr, CONTEXTS counters with a sample in the closed bucket:
 *           collect, emit (n = 1), out_free, then the next flush (zero-fill
 *           only) collect and emit, and the aggr_flush of an identical aggr
 *   two   : 2 aggrs with disjoint halves: emit n = 2 (every record hashed,
 *           none merged)
 *   same  : 2 aggrs with all CONTEXTS each: emit n = 2 (every record merged)
 *   incr  : the incremental collect (aggr_collect_begin, aggr_collect_step of
 *           STEP contexts until done, aggr_collect_end) of the same aggr as
 *           "one": begin, each step (mean and max, CPU of this thread), end,
 *           and their total against one.collect's; the first round with no
 *           ingest between steps, the second (zero-fill) with 64 samples of
 *           existing contexts ingested between steps, as a pipeline would
 *
 * usage: flushcost [CONTEXTS [STEP]]   (STEP default 16384)
 *
 * usage: flushcost encode [CONTEXTS [LEVEL]]
 * The forward path of the same flush, as the agent runs it on the main
 * thread: aggr_collect + aggr_emit of CONTEXTS loadgen-shaped counters, then
 * the batch's series array straight into enc_series_v1 (what fwd_submit's
 * submit_series does for series_api v1), emit callback freeing the payloads.
 * LEVEL is the zlib level (default 6, the agent's default
 * serializer_compressor_level; zstd runs at 1, serializer_zstd_compressor_level's
 * default). Lines:
 *   encode.emit    : aggr_emit alone (the batch the encoder reads)
 *   encode.render  : enc_series_v1 with compressor none: rendering, packing,
 *                    assembling and copying the bodies, no compression;
 *                    raw_hash is FNV-1a over every body in order (compare
 *                    before/after a change: same hash = same bytes)
 *   encode.zlib_only : compress_buf(zlib, LEVEL) of exactly those bodies
 *                    (the "deflate" encoding, compressed by libdeflate
 *                    since 2026-11-27; zlib's deflate before)
 *   encode.zlib    : enc_series_v1 with zlib at LEVEL, the agent's default
 *                    (render + compress + any halving recompression; the
 *                    parts are copied into one buffer for libdeflate)
 *   encode.zstd    : the same with zstd at level 1 (Datadog's zstd default)
 *   encode.zstd_only : compress_buf(zstd, 1) of the raw bodies
 *   encode.jsonl   : batch_write_jsonl_to of the batch into a writer that
 *                    drops it (the agent's dogstatsd_output_file output,
 *                    which bench/run.sh points at /dev/null)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aggr/aggr.h"
#include "aggr/hist.h"
#include "forward/compress.h"
#include "forward/encode.h"

#define T0 1700000000

static double clk(clockid_t id)
{
	struct timespec ts;
	clock_gettime(id, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct timer {
	double cpu, wall;
};

static struct timer start(void)
{
	return (struct timer){ clk(CLOCK_THREAD_CPUTIME_ID), clk(CLOCK_MONOTONIC) };
}

static void report(const char *what, struct timer t, size_t n, const char *extra)
{
	double cpu = clk(CLOCK_THREAD_CPUTIME_ID) - t.cpu, wall = clk(CLOCK_MONOTONIC) - t.wall;
	printf("%s contexts=%zu cpu_s=%.3f wall_s=%.3f ns_per_context=%.1f%s\n", what, n, cpu,
	       wall, cpu * 1e9 / (double)(n ? n : 1), extra ? extra : "");
	fflush(stdout);
}

static void cfg_init(struct aggr_config *c)
{
	static double pct[] = { 0.95 };
	*c = (struct aggr_config){
		.hostname = "benchhost",
		.namespace = "",
		.bucket_seconds = 10,
		.expiry_seconds = 300,
		.context_expiry_seconds = 300,
		.histogram_aggregates = HIST_AGG_DEFAULT,
		.histogram_percentiles = pct,
		.nhistogram_percentiles = 1,
		.set_exact_max = 10000,
	};
}

/* Contexts lo..hi-1 of a (a new aggr when NULL), one sample each, at `now`. */
static struct aggr *fill_into(struct aggr *a, const struct aggr_config *cfg, size_t lo, size_t hi,
			      int64_t now)
{
	if (!a && !(a = aggr_new(cfg)))
		exit(1);
	char name[64], t0[32], t1[16], t2[16];
	for (size_t i = lo; i < hi; i++) {
		int nn = snprintf(name, sizeof(name), "flush.metric.%zu", i % 100);
		int n0 = snprintf(t0, sizeof(t0), "ctx:%zu", i / 100);
		int n1 = snprintf(t1, sizeof(t1), "t1:v%zu", (i + 1) % 10);
		int n2 = snprintf(t2, sizeof(t2), "t2:v%zu", (i + 2) % 10);
		struct sv tags[] = { { t0, (size_t)n0 }, { t1, (size_t)n1 }, { t2, (size_t)n2 } };
		double v = 1;
		struct dsd_metric m = { .name = { name, (size_t)nn }, .type = METRIC_COUNT,
					.values = &v, .nvalues = 1, .sample_rate = 1, .tags = tags,
					.ntags = 3 };
		aggr_ingest(a, &m, now);
	}
	return a;
}

static struct aggr *fill(const struct aggr_config *cfg, size_t lo, size_t hi, int64_t now)
{
	return fill_into(NULL, cfg, lo, hi, now);
}

static double cpu_since(double t0)
{
	return clk(CLOCK_THREAD_CPUTIME_ID) - t0;
}

/* One incremental collect at now, steps of `step`; with `between`, 64
 * samples of existing contexts are ingested after each step. */
static struct aggr_out *incr_collect(struct aggr *a, const struct aggr_config *cfg, size_t n,
				     size_t step, int64_t now, bool between, const char *tag)
{
	struct timer t = start();
	double c0 = t.cpu;
	if (aggr_collect_begin(a, now, false) < 0)
		exit(1);
	double begin = cpu_since(c0), smax = 0, ssum = 0;
	size_t nsteps = 0, fed = 0;
	for (bool done = false; !done;) {
		double s0 = clk(CLOCK_THREAD_CPUTIME_ID);
		done = aggr_collect_step(a, step);
		double d = cpu_since(s0);
		ssum += d;
		smax = d > smax ? d : smax;
		nsteps++;
		if (between && !done) {
			fill_into(a, cfg, fed % n, fed % n + 64 < n ? fed % n + 64 : n, now);
			fed += 64;
		}
	}
	double e0 = clk(CLOCK_THREAD_CPUTIME_ID);
	struct aggr_out *o = aggr_collect_end(a);
	double end = cpu_since(e0);
	char extra[256];
	snprintf(extra, sizeof(extra),
		 " step=%zu steps=%zu begin_ms=%.3f step_mean_ms=%.3f step_max_ms=%.3f"
		 " end_ms=%.3f sum_ms=%.3f", step, nsteps, begin * 1e3,
		 ssum * 1e3 / (double)nsteps, smax * 1e3, end * 1e3, (begin + ssum + end) * 1e3);
	report(tag, t, n, extra);
	return o;
}

static void run_incr(const struct aggr_config *cfg, size_t n, size_t step)
{
	struct aggr *a = fill(cfg, 0, n, T0 + 1);
	for (int k = 1; k <= 2; k++) {
		struct aggr_out *o = incr_collect(a, cfg, n, step, T0 + 10 * k, k == 2,
						  k == 1 ? "incr.collect" : "incr.zerofill.collect");
		struct batch *b = aggr_emit(cfg, &o, 1, T0 + 10 * k, false, NULL);
		if (!b)
			exit(1);
		batch_free(b);
		aggr_out_free(o);
	}
	aggr_free(a);
}

static void run_one(const struct aggr_config *cfg, size_t n)
{
	struct aggr *a = fill(cfg, 0, n, T0 + 1);
	char extra[96];
	for (int k = 1; k <= 2; k++) {
		const char *tag = k == 1 ? "one.collect" : "one.zerofill.collect";
		struct timer t = start();
		struct aggr_out *o = aggr_collect(a, T0 + 10 * k, false);
		report(tag, t, n, NULL);
		if (!o)
			exit(1);
		struct aggr_emit_stats st;
		t = start();
		struct batch *b = aggr_emit(cfg, &o, 1, T0 + 10 * k, false, &st);
		snprintf(extra, sizeof(extra), " series=%llu", (unsigned long long)st.series);
		report(k == 1 ? "one.emit" : "one.zerofill.emit", t, n, extra);
		t = start();
		aggr_out_free(o);
		report(k == 1 ? "one.out_free" : "one.zerofill.out_free", t, n, NULL);
		batch_free(b);
	}
	aggr_free(a);
	a = fill(cfg, 0, n, T0 + 1);
	struct timer t = start();
	struct batch *b = aggr_flush(a, T0 + 10, false);
	report("one.aggr_flush", t, n, NULL);
	batch_free(b);
	aggr_free(a);
}

static void run_two(const struct aggr_config *cfg, size_t n, bool same, const char *tag)
{
	struct aggr *p[2] = { fill(cfg, 0, same ? n : n / 2, T0 + 1),
			      fill(cfg, same ? 0 : n / 2, n, T0 + 2) };
	struct aggr_out *o[2];
	struct timer t = start();
	for (int i = 0; i < 2; i++)
		if (!(o[i] = aggr_collect(p[i], T0 + 10, false)))
			exit(1);
	char what[64], extra[96];
	snprintf(what, sizeof(what), "%s.collect_both", tag);
	report(what, t, n, NULL);
	struct aggr_emit_stats st;
	t = start();
	struct batch *b = aggr_emit(cfg, o, 2, T0 + 10, false, &st);
	if (!b)
		exit(1);
	snprintf(what, sizeof(what), "%s.emit_n2", tag);
	snprintf(extra, sizeof(extra), " series=%llu merged=%llu", (unsigned long long)st.series,
		 (unsigned long long)st.merged);
	report(what, t, n, extra);
	batch_free(b);
	for (int i = 0; i < 2; i++) {
		aggr_out_free(o[i]);
		aggr_free(p[i]);
	}
}

struct enc_sink {
	enum compressor_kind recompress; /* COMPRESS_NONE: do not */
	int level;
	size_t payloads, bytes, raw_bytes, zbytes;
	uint64_t hash;	/* FNV-1a over raw bodies (compressor none only) */
	double zcpu;	/* CPU in compress_buf of the bodies */
	double hcpu;	/* CPU hashing them (not the encoder's) */
};

static int enc_emit(void *arg, struct payload *p)
{
	struct enc_sink *k = arg;
	k->payloads++;
	k->bytes += p->len;
	k->raw_bytes += p->raw_len;
	if (p->enc == COMPRESS_NONE) {
		double c0 = clk(CLOCK_THREAD_CPUTIME_ID);
		for (size_t i = 0; i < p->len; i++)
			k->hash = (k->hash ^ p->data[i]) * 0x100000001b3ULL;
		k->hcpu += cpu_since(c0);
	}
	if (k->recompress != COMPRESS_NONE) {
		uint8_t *z = NULL;
		size_t zl = 0;
		double c0 = clk(CLOCK_THREAD_CPUTIME_ID);
		if (compress_buf(k->recompress, k->level, p->data, p->len, &z, &zl) < 0)
			exit(1);
		k->zcpu += cpu_since(c0);
		k->zbytes += zl;
		free(z);
	}
	payload_free(p);
	return 0;
}

/* One enc_series_v1 of the batch's series with compressor c at level; the
 * sink recompresses each body with `re` when it is not COMPRESS_NONE. */
static struct enc_sink enc_once(const struct batch *b, enum compressor_kind c, int level,
				enum compressor_kind re, int relevel, double *cpu)
{
	struct enc_sink k = { .recompress = re, .level = relevel, .hash = 0xcbf29ce484222325ULL };
	struct enc_opts o = { .compressor = c, .level = level, .created = T0 + 10 };
	struct enc_result res;
	double c0 = clk(CLOCK_THREAD_CPUTIME_ID);
	if (enc_series_v1(b->series, b->nseries, &o, enc_emit, &k, &res) < 0 ||
	    res.records != b->nseries)
		exit(1);
	*cpu = cpu_since(c0) - k.hcpu;
	return k;
}

static void enc_line(const char *what, size_t n, double cpu, const struct enc_sink *k,
		     size_t bytes)
{
	printf("%s series=%zu cpu_s=%.3f ns_per_series=%.1f payloads=%zu raw_bytes=%zu"
	       " bytes=%zu\n", what, n, cpu, cpu * 1e9 / (double)(n ? n : 1), k->payloads,
	       k->raw_bytes, bytes);
	fflush(stdout);
}

static int drop_out(void *arg, const char *p, size_t n)
{
	(void)p;
	*(size_t *)arg += n;
	return 0;
}

static void run_encode(const struct aggr_config *cfg, size_t n, int level)
{
	struct aggr *a = fill(cfg, 0, n, T0 + 1);
	struct aggr_out *o = aggr_collect(a, T0 + 10, false);
	if (!o)
		exit(1);
	struct timer t = start();
	struct batch *b = aggr_emit(cfg, &o, 1, T0 + 10, false, NULL);
	if (!b)
		exit(1);
	report("encode.emit", t, n, NULL);
	aggr_out_free(o);
	aggr_free(a);
	double cpu;
	struct enc_sink k = enc_once(b, COMPRESS_NONE, 0, COMPRESS_ZLIB, level, &cpu);
	enc_line("encode.render", b->nseries, cpu - k.zcpu, &k, k.bytes);
	printf("encode.render raw_hash=%016llx\n", (unsigned long long)k.hash);
	enc_line("encode.zlib_only", b->nseries, k.zcpu, &k, k.zbytes);
	k = enc_once(b, COMPRESS_ZLIB, level, COMPRESS_NONE, 0, &cpu);
	enc_line("encode.zlib", b->nseries, cpu, &k, k.bytes);
	k = enc_once(b, COMPRESS_NONE, 0, COMPRESS_ZSTD, 1, &cpu);
	enc_line("encode.zstd_only", b->nseries, k.zcpu, &k, k.zbytes);
	k = enc_once(b, COMPRESS_ZSTD, 1, COMPRESS_NONE, 0, &cpu);
	enc_line("encode.zstd", b->nseries, cpu, &k, k.bytes);
	size_t jl = 0;
	t = start();
	if (batch_write_jsonl_to(b, drop_out, &jl) < 0)
		exit(1);
	char extra[64];
	snprintf(extra, sizeof(extra), " bytes=%zu", jl);
	report("encode.jsonl", t, b->nseries, extra);
	batch_free(b);
}

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "encode") == 0) {
		struct aggr_config cfg;
		cfg_init(&cfg);
		run_encode(&cfg, argc > 2 ? (size_t)atol(argv[2]) : 1000000,
			   argc > 3 ? atoi(argv[3]) : 6);
		return 0;
	}
	size_t n = argc > 1 ? (size_t)atol(argv[1]) : 1000000;
	size_t step = argc > 2 ? (size_t)atol(argv[2]) : 16384;
	struct aggr_config cfg;
	cfg_init(&cfg);
	run_one(&cfg, n);
	run_incr(&cfg, n, step ? step : 1);
	run_two(&cfg, n, false, "two");
	run_two(&cfg, n, true, "same");
	return 0;
}
