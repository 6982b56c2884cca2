/* fixture_feed.c - see fixture_feed.h. */
#include "fixture_feed.h"

static void on_metric(void *ctx, const struct dsd_metric *m)
{
	struct fixture_feed *f = ctx;
	aggr_ingest(f->a, m, f->now);
}

static void on_event(void *ctx, const struct dsd_event *e)
{
	struct fixture_feed *f = ctx;
	aggr_event(f->a, e, f->now);
}

static void on_check(void *ctx, const struct dsd_service_check *sc)
{
	struct fixture_feed *f = ctx;
	aggr_service_check(f->a, sc, f->now);
}

static bool on_seen(void *ctx, const struct dsd_metric *m)
{
	struct fixture_feed *f = ctx;
	return aggr_ingest_seen(f->a, m, f->now);
}

const struct dsd_sink fixture_sink = { on_metric, on_event, on_check };
const struct dsd_cache_ops fixture_seen_ops = { .seen = on_seen };
