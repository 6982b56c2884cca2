/*
 * perf_driver.c - the receive hot path without sockets: parse + aggregate
 * (+ flush) over a fixed, generated set of DogStatsD datagrams.
 *
 * Caller: tests/perf/perf_check.py (under valgrind --tool=callgrind, the
 * instructions-per-line regression guard, budget in tests/perf/budget.txt) and
 * engineers by hand (native timings, memory per context). Single-threaded.
 *
 * The datagrams are bench/loadgen's: 20 lines per datagram, context c is
 * "loadgen.metric.<c % 100>:1|c|#ctx:<c / 100>,t1:v<(c+1)%10>,t2:v<(c+2)%10>",
 * contexts drawn from the same xorshift generator. Every phase is wrapped in
 * callgrind client requests (no-ops outside valgrind): instrumentation is on
 * only inside a phase and each phase ends with a dump named after it, so
 * perf_check.py reads one exact instruction count per phase.
 *
 * usage: perf_driver callgrind [LINES]     phases counters (10k warm contexts),
 *                                          mix (same, six types), create (a new
 *                                          context per line), create_tl (the same
 *                                          with dogstatsd_tag_value_limit 1000),
 *                                          flush (of counters)
 *        perf_driver bench [LINES]         same phases, native ns per line
 *        perf_driver memory [CONTEXTS [shared|tags|names]]
 *                                          unique counters (tag sets as
 *                                          load_kind): RSS bytes/context,
 *                                          CPU of the flush and of a zero-fill
 *                                          flush, each with the CPU of writing
 *                                          its batch as JSON lines (agent.c's
 *                                          output without an intake)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifdef HAVE_CALLGRIND_H
#include <valgrind/callgrind.h>
#else
#define CALLGRIND_TOGGLE_COLLECT
#define CALLGRIND_DUMP_STATS_AT(s) ((void)(s))
#endif

#include "aggr/aggr.h"
#include "aggr/hist.h"
#include "core/buf.h"
#include "ingest/ingest.h"
#include "parse/parse.h"
#include "fixture.h"
#include "lines.h"

#define T0 1700000000 /* a bucket boundary */
#define LPD 20
#define NTAGS 3
#define MAX_DGRAM 8192

static uint64_t rng;

static uint64_t rng_next(void)
{
	return line_rng_next(&rng);
}

/* The tag sets of the generated lines, as bench/run.sh's memory workloads:
 * LOAD_SHARED: loadgen's default (each tag set shared by 10 contexts),
 * LOAD_TAGS: --unique-tags (the first tag instance_id:<c>, a distinct set per
 * context), LOAD_NAMES: --tags-per-line 0 (no tags, name loadgen.metric.<c>). */
enum load_kind { LOAD_SHARED, LOAD_TAGS, LOAD_NAMES };
static enum load_kind load_kind = LOAD_SHARED;

/* The line loadgen sends for context c with --tags-per-line 3 (load_kind
 * says which tags); types "c" or "mix". */
static char *write_line(char *p, uint64_t c, bool mix)
{
	static const char *const types[] = { "c", "g", "ms", "h", "s", "d" };
	const struct line_shape shape = {
		load_kind == LOAD_NAMES ? 0 : NTAGS, load_kind == LOAD_TAGS, types, mix ? 6 : 1,
	};

	return line_write(p, &shape, c, &rng);
}

struct load {
	char *buf;
	size_t *off;	/* ndgram + 1 offsets into buf */
	size_t ndgram, lines;
};

/* lines lines, contexts drawn from ncontexts (0 = each line a new context). */
static void load_make(struct load *l, size_t lines, uint64_t ncontexts, bool mix)
{
	l->ndgram = (lines + LPD - 1) / LPD;
	l->lines = lines;
	l->buf = malloc(l->ndgram * (size_t)LPD * 128);
	l->off = malloc((l->ndgram + 1) * sizeof(*l->off));
	if (!l->buf || !l->off) {
		fprintf(stderr, "perf_driver: out of memory\n");
		exit(1);
	}
	rng = 1 * 0x9E3779B97F4A7C15ull;
	char *p = l->buf;
	for (size_t i = 0; i < lines; i++) {
		if (i % LPD == 0)
			l->off[i / LPD] = (size_t)(p - l->buf);
		else
			*p++ = '\n';
		p = write_line(p, ncontexts ? rng_next() % ncontexts : i, mix);
	}
	l->off[l->ndgram] = (size_t)(p - l->buf);
}

static void load_free(struct load *l)
{
	free(l->buf);
	free(l->off);
}

static char *hostname = "perfhost";
static char *blacklist[] = { "datadog.agent", "datadog.dogstatsd" };

static void cfg_init(struct aggr_config *c)
{
	fixture_aggr_config(c);
	c->hostname = hostname;
	c->namespace_blacklist = blacklist;
	c->nnamespace_blacklist = 2;
	c->max_contexts = 2000000;
	c->max_contexts_per_metric = 2000000;
}

struct rx {
	struct aggr *a;
	int64_t now;
};

/* PERF_NO_SEEN=1 in the environment: without the seen-line cache
 * (ingest_batch_full; comparisons). */
static bool no_seen;

/*
 * PERF_CHURN=N (bench mode): after each datagram, N bytes of a 64 MiB buffer
 * are read, one byte per cache line, moving on through the buffer: what the
 * kernel's receive path does to the daemon's caches between datagrams (the
 * skb and its data, allocated and written on the sender's CPU), so that the
 * seen-line cache and the contexts are not all in L1/L2 as they are in a
 * process that only parses. It adds its own time to every variant alike:
 * compare variants under the same N.
 */
#define CHURN_BYTES ((size_t)64 << 20)
static size_t churn_n;
static const volatile unsigned char *churn_buf;
static size_t churn_at;

static void churn(void)
{
	unsigned sum = 0;
	for (size_t i = 0; i < churn_n; i += 64) {
		sum += churn_buf[churn_at];
		churn_at = (churn_at + 64) & (CHURN_BYTES - 1);
	}
	(void)sum;
}

/* PERF_BATCH=N: datagrams handed to the parser together (pipeline.c's
 * on_batch gets one recvmmsg batch; in a burst a batch holds ~3 datagrams),
 * default 3, at most 64. */
static size_t feed_batch = 3;

/* Datagrams [from, to) of l, in batches of feed_batch, as pipeline.c's
 * on_batch gets them. */
static void feed(struct dsd_parser *p, struct rx *r, const struct load *l, size_t from, size_t to)
{
	for (size_t d = from; d < to;) {
		struct dsd_datagram dg[64];
		size_t k = 0;
		for (; k < feed_batch && d < to; k++, d++)
			dg[k] = (struct dsd_datagram){ l->buf + l->off[d], l->off[d + 1] - l->off[d] };
		for (size_t i = 0; churn_n && i < k; i++)
			churn(); /* the kernel's receive of each datagram */
		if (no_seen)
			ingest_batch_full(p, r->a, dg, k, r->now);
		else
			ingest_batch(p, r->a, dg, k, r->now);
	}
}

static double cpu_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check_lines(const struct dsd_parser *p, const struct aggr *a, uint64_t want)
{
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	if (dsd_parser_stats(p)->metric_lines != want || st.samples_in != want) {
		fprintf(stderr, "perf_driver: %llu lines parsed, %llu ingested, want %llu\n",
			(unsigned long long)dsd_parser_stats(p)->metric_lines,
			(unsigned long long)st.samples_in, (unsigned long long)want);
		exit(1);
	}
}

/* One phase: ingest every datagram of l at T0 into a (when warm is given: after
 * it was ingested twice, unmeasured, so that the phase measures lines seen
 * before on existing contexts) fresh aggregator. */
static struct aggr *phase_ingest(const char *name, const struct aggr_config *cfg,
				 const struct load *l, const struct load *warm, bool timed)
{
	struct dsd_parser *p = dsd_parser_new(NULL);
	struct rx r = { aggr_new(cfg), T0 };
	if (!p || !r.a)
		exit(1);
	uint64_t want = l->lines;
	if (warm) {
		/* twice: the seen-line cache remembers a line on its second
		 * sighting, so the phase measures the steady state */
		feed(p, &r, warm, 0, warm->ndgram);
		feed(p, &r, warm, 0, warm->ndgram);
		want += 2 * warm->lines;
	}
	double t = cpu_s();
	CALLGRIND_TOGGLE_COLLECT;
	feed(p, &r, l, 0, l->ndgram);
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT(name);
	t = cpu_s() - t;
	check_lines(p, r.a, want);
	printf("%s lines=%zu", name, l->lines);
	if (timed)
		printf(" ns_per_line=%.1f", t * 1e9 / (double)l->lines);
	printf("\n");
	dsd_parser_free(p);
	return r.a;
}

static size_t phase_flush(struct aggr *a, bool timed)
{
	double t = cpu_s();
	CALLGRIND_TOGGLE_COLLECT;
	struct batch *b = aggr_flush(a, T0 + 10, false);
	CALLGRIND_TOGGLE_COLLECT;
	CALLGRIND_DUMP_STATS_AT("flush");
	t = cpu_s() - t;
	if (!b)
		exit(1);
	struct aggr_stats st;
	aggr_get_stats(a, &st);
	printf("flush contexts=%llu series=%zu", (unsigned long long)st.contexts, b->nseries);
	if (timed)
		printf(" ns_per_context=%.1f", t * 1e9 / (double)st.contexts);
	printf("\n");
	size_t n = b->nseries;
	batch_free(b);
	return n;
}

/* Every context of 0..n-1 once, in order. */
static void load_all(struct load *l, uint64_t n, bool mix)
{
	load_make(l, n, 0, mix);
}

/* aggr_stats.memory_bytes growth per context of ingesting l (each line a new
 * context) into a fresh aggregator. */
static double bytes_per_context(const struct aggr_config *cfg, const struct load *l)
{
	struct dsd_parser *p = dsd_parser_new(NULL);
	struct rx r = { aggr_new(cfg), T0 };
	if (!p || !r.a)
		exit(1);
	struct aggr_stats st0, st;
	aggr_get_stats(r.a, &st0);
	feed(p, &r, l, 0, l->ndgram);
	check_lines(p, r.a, l->lines);
	aggr_get_stats(r.a, &st);
	if (st.contexts != l->lines) {
		fprintf(stderr, "perf_driver: %llu contexts, want %zu\n",
			(unsigned long long)st.contexts, l->lines);
		exit(1);
	}
	aggr_free(r.a);
	dsd_parser_free(p);
	return (double)(st.memory_bytes - st0.memory_bytes) / (double)st.contexts;
}

static int run_phases(size_t lines, bool timed)
{
	struct aggr_config cfg;
	cfg_init(&cfg);
	struct load l, warm;
	/* PERF_CONTEXTS=N: the counters and mix phases draw from N contexts
	 * instead of 10k (bench mode: working-set comparisons; the budget's
	 * figures are for 10k) */
	uint64_t nctx = getenv("PERF_CONTEXTS") ? strtoull(getenv("PERF_CONTEXTS"), NULL, 10) : 10000;
	if (nctx == 0)
		nctx = 10000;
	load_all(&warm, nctx, false);
	load_make(&l, lines, nctx, false);
	struct aggr *a = phase_ingest("counters", &cfg, &l, &warm, timed);
	load_free(&l);
	load_free(&warm);
	load_all(&warm, nctx, true);
	load_make(&l, lines, nctx, true);
	aggr_free(phase_ingest("mix", &cfg, &l, &warm, timed));
	load_free(&l);
	load_free(&warm);
	load_all(&l, lines, false);
	aggr_free(phase_ingest("create", &cfg, &l, NULL, timed));
	load_free(&l);
	/* the same with the agent's default tag value limit (1000 values per
	 * tag key and metric; the load stays under it: 500 ctx values per
	 * metric at 50k lines): its bookkeeping on every new context */
	struct aggr_config tl_cfg = cfg;
	tl_cfg.tag_value_limit = 1000;
	load_all(&l, lines, false);
	aggr_free(phase_ingest("create_tl", &tl_cfg, &l, NULL, timed));
	load_free(&l);
	phase_flush(a, timed);
	aggr_free(a);
	/* not a callgrind phase: the aggregator's own accounting per created
	 * context, plain unique names and a distinct tag set per context */
	printf("bytes_per_context");
	for (enum load_kind k = LOAD_TAGS; k <= LOAD_NAMES; k++) {
		load_kind = k;
		load_all(&l, lines, false);
		printf(" %s=%.1f", k == LOAD_TAGS ? "tags" : "names", bytes_per_context(&cfg, &l));
		load_free(&l);
	}
	load_kind = LOAD_SHARED;
	printf("\n");
	return 0;
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/statm", "r");
	long pages = 0, rss = 0;
	if (!f)
		return 0;
	if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
		rss = 0;
	fclose(f);
	return rss * 4;
}

/* n unique counter contexts (load_kind's tags): RSS per context, then the
 * flush of the closed bucket and the next (zero-fill only) flush, CPU
 * seconds each. */
static int run_memory(size_t n)
{
	struct aggr_config cfg;
	cfg_init(&cfg);
	struct load l;
	load_make(&l, n, 0, false);
	struct dsd_parser *p = dsd_parser_new(NULL);
	struct rx r = { aggr_new(&cfg), T0 };
	if (!p || !r.a)
		return 1;
	long before = rss_kib();
	double t = cpu_s();
	feed(p, &r, &l, 0, l.ndgram);
	t = cpu_s() - t;
	long after = rss_kib();
	check_lines(p, r.a, n);
	struct aggr_stats st;
	aggr_get_stats(r.a, &st);
	printf("memory contexts=%llu rss_bytes_per_context=%.1f memory_bytes_per_context=%.1f "
	       "ingest_ns_per_line=%.1f\n", (unsigned long long)st.contexts,
	       (double)(after - before) * 1024 / (double)st.contexts,
	       (double)st.memory_bytes / (double)st.contexts, t * 1e9 / (double)n);
	for (int k = 1; k <= 2; k++) {
		t = cpu_s();
		struct batch *b = aggr_flush(r.a, T0 + 10 * k, false);
		t = cpu_s() - t;
		if (!b)
			return 1;
		/* what agent.c does next without an intake: the batch as JSON lines */
		struct buf out;
		buf_init(&out);
		double tj = cpu_s();
		int rc = batch_write_jsonl(b, &out);
		tj = cpu_s() - tj;
		printf("flush%d contexts=%llu series=%zu cpu_s=%.3f jsonl_cpu_s=%.3f jsonl_bytes=%zu%s\n",
		       k, (unsigned long long)st.contexts, b->nseries, t, tj, out.len,
		       rc < 0 ? " (ENOMEM)" : "");
		buf_done(&out);
		batch_free(b);
	}
	aggr_free(r.a);
	dsd_parser_free(p);
	load_free(&l);
	return 0;
}

/* An environment switch of this driver: set to "1". */
static bool env_on(const char *name)
{
	const char *v = getenv(name);
	return v && strcmp(v, "1") == 0;
}

int main(int argc, char **argv)
{
	const char *mode = argc > 1 ? argv[1] : "callgrind";
	no_seen = env_on("PERF_NO_SEEN");
	/* the cache key's implementation (keyhash.h): AES where the CPU has it,
	 * PERF_KEY_PLAIN=1: the portable one */
	if (env_on("PERF_KEY_PLAIN"))
		dsd_key_use_aes(false);
	printf("key=%s\n", dsd_key_aes ? "aes" : "plain");
	long n = argc > 2 ? atol(argv[2]) : 0;
	long churn = getenv("PERF_CHURN") ? atol(getenv("PERF_CHURN")) : 0;
	if (getenv("PERF_BATCH")) {
		long b = atol(getenv("PERF_BATCH"));
		feed_batch = b < 1 ? 1 : b > 64 ? 64 : (size_t)b;
	}
	if (churn > 0 && strcmp(mode, "bench") == 0) {
		unsigned char *b = malloc(CHURN_BYTES);
		if (!b)
			return 1;
		memset(b, 1, CHURN_BYTES);
		churn_buf = b;
		churn_n = (size_t)churn;
		printf("churn=%zu\n", churn_n);
	}
	if (strcmp(mode, "callgrind") == 0)
		return run_phases(n > 0 ? (size_t)n : 100000, false);
	if (strcmp(mode, "bench") == 0)
		return run_phases(n > 0 ? (size_t)n : 2000000, true);
	if (strcmp(mode, "memory") == 0) {
		const char *kind = argc > 3 ? argv[3] : "shared";
		if (strcmp(kind, "tags") == 0)
			load_kind = LOAD_TAGS;
		else if (strcmp(kind, "names") == 0)
			load_kind = LOAD_NAMES;
		else if (strcmp(kind, "shared") != 0)
			return 2;
		return run_memory(n > 0 ? (size_t)n : 1000000);
	}
	fprintf(stderr, "usage: perf_driver callgrind|bench|memory [N]\n");
	return 2;
}
