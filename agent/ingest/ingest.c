/*
 * ingest.c - the receive hot path: windows of lines from the parser, cache
 * hits applied, misses fully parsed, everything to the aggregator.
 *
 * Caller: pipeline.c's on_batch (and the tests and tools that feed an
 * aggregator). Owns nothing: the parser holds the windows, the aggregator
 * the cache.
 *
 * Order: while window k is applied, window k + 1 (of the same datagram, or
 * the next datagram's first) is already split and its cache entries are
 * being loaded (aggr_seen_prefetch_entries); right before window k's lines,
 * the contexts of its matching entries are (aggr_seen_prefetch_contexts). So
 * the wait on memory overlaps the split instead of following each line.
 */
#include "ingest/ingest.h"

/* The full parse of line i of w, into a. */
static inline void full(struct dsd_parser *p, struct aggr *a, struct dsd_window *w, size_t i,
			int64_t now)
{
	union dsd_msg m;
	enum dsd_msg_kind k = dsd_parse_line(p, w, i, &m);
	if (k == DSD_MSG_METRIC)
		aggr_ingest(a, &m.metric, now);
	else if (k == DSD_MSG_EVENT)
		aggr_event(a, &m.event, now);
	else if (k == DSD_MSG_CHECK)
		aggr_service_check(a, &m.check, now);
}

void ingest_line_full(struct dsd_parser *p, struct aggr *a, struct dsd_window *w, size_t i,
		      int64_t now)
{
	full(p, a, w, i, now);
}

/* The length of the run of single-value candidates from line i of w on. */
static size_t run_length(const struct dsd_window *w, size_t i)
{
	size_t j = i;
	while (j < w->n && w->line[j].kind == DSD_LINE_SIMPLE)
		j++;
	return j - i;
}

/* Lines [i, end) of w, single-value candidates: aggr_ingest_seen_run applies
 * the prefix it recognises, the line it stops at gets the full parse, then
 * the rest of the run is offered again. */
static void apply_run(struct dsd_parser *p, struct aggr *a, struct dsd_window *w, size_t i,
		      size_t end, int64_t now)
{
	while (i < end) {
		size_t t = aggr_ingest_seen_run(a, &w->line[i], end - i, now);
		if (t) {
			dsd_count_cached_run(p, w, i, t);
			i += t;
		}
		if (i == end)
			break;
		full(p, a, w, i, now);
		i++;
	}
}

/* The lines of a window, in order: runs of single-value candidates through
 * apply_run, other candidates through aggr_ingest_seen with their values,
 * the rest (and what the cache declines) through the full parse. */
static void apply_window(struct dsd_parser *p, struct aggr *a, struct dsd_window *w, int64_t now)
{
	for (size_t i = 0; i < w->n;) {
		size_t n = run_length(w, i);
		if (n) {
			apply_run(p, a, w, i, i + n, now);
			i += n;
			continue;
		}
		struct dsd_metric q;
		if (!(w->line[i].kind == DSD_LINE_CAND && dsd_line_metric(p, w, i, &q) &&
		      aggr_ingest_seen(a, &q, now)))
			full(p, a, w, i, now);
		else
			dsd_count_cached(p, &q);
		i++;
	}
}

void ingest_batch(struct dsd_parser *p, struct aggr *a, const struct dsd_datagram *d, size_t n,
		  int64_t now)
{
	dsd_split_begin(p, d, n, true);
	struct dsd_window *cur = dsd_split_next(p);
	aggr_seen_prefetch_entries(a, cur->h, cur->nh);
	while (cur->n) {
		struct dsd_window *next = dsd_split_next(p);
		aggr_seen_prefetch_entries(a, next->h, next->nh);
		aggr_seen_prefetch_contexts(a, cur->h, cur->nh);
		apply_window(p, a, cur, now);
		cur = next;
	}
}

void ingest_batch_full(struct dsd_parser *p, struct aggr *a, const struct dsd_datagram *d,
		       size_t n, int64_t now)
{
	dsd_split_begin(p, d, n, false);
	for (struct dsd_window *w; (w = dsd_split_next(p))->n;)
		for (size_t i = 0; i < w->n; i++)
			full(p, a, w, i, now);
}
