/*
 * telemetry.c - see telemetry.h.
 */
#include "telemetry.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

struct emit {
	struct batch *b;
	const char *host;
	int64_t ts;
	uint32_t interval;
	int err;
};

/* name and tag are copied into the batch. */
static void put(struct emit *e, const char *name, enum series_kind kind, double v, const char *tag)
{
	struct sv tags[1] = { sv_from_cstr(tag) };
	struct series s = {
		.name = batch_str(e->b, sv_from_cstr(name)), .host = e->host, .kind = kind, .ts = e->ts,
		.value = v, .interval = kind == SERIES_COUNT ? e->interval : 0,
		.tags = tag ? batch_tags(e->b, tags, 1) : NULL, .ntags = tag ? 1 : 0,
	};
	if (!s.name || (tag && !s.tags) || batch_add_series(e->b, &s) < 0)
		e->err = -ENOMEM;
}

static void count(struct emit *e, const char *name, uint64_t now, uint64_t *prev, const char *tag)
{
	uint64_t d = now >= *prev ? now - *prev : now;
	*prev = now;
	if (d)
		put(e, name, SERIES_COUNT, (double)d, tag);
}

/* Every field of table t with a telemetry name (core/stats.h): counters as
 * the change since the previous flush (kept in prev), gauges as they are. */
static void table_metrics(struct emit *e, const struct stat_table *t, const void *cur, void *prev)
{
	char name[96], tag[96];
	for (size_t k = 0; k < t->n; k++) {
		const struct stat_field *f = &t->f[k];
		if (!f->tele)
			continue;
		snprintf(name, sizeof(name), "dd_mini_agent.%s", f->tele);
		uint64_t *last = (uint64_t *)((char *)prev + f->offset);
		for (size_t i = 0; i < f->n; i++) {
			const char *tg = f->label;
			if (f->elem) {
				snprintf(tag, sizeof(tag), "%s:%s", f->label, f->elem((int)i));
				tg = tag;
			}
			uint64_t v = stat_get(f, cur, i);
			if (f->type == STAT_GAUGE)
				put(e, name, SERIES_GAUGE, (double)v, tg);
			else
				count(e, name, v, &last[i], tg);
		}
	}
}

/* Per limited metric and tag key (at most the status report's few rows):
 * values kept and samples affected since start, as gauges. */
static void limited_metrics(struct emit *e, const struct taglimit_row *r, size_t n)
{
	for (size_t i = 0; i < n && !e->err; i++) {
		struct sv tv[2];
		char mt[sizeof(r->metric) + 8], kt[sizeof(r->key) + 8];
		snprintf(mt, sizeof(mt), "metric:%s", r[i].metric);
		snprintf(kt, sizeof(kt), "tag_key:%s", r[i].key);
		tv[0] = sv_from_cstr(mt);
		tv[1] = sv_from_cstr(kt);
		const char *const *tags = batch_tags(e->b, tv, 2);
		struct series s = { .name = "dd_mini_agent.aggregator.tag_limit.values", .host = e->host,
				    .kind = SERIES_GAUGE, .ts = e->ts, .value = (double)r[i].values,
				    .tags = tags, .ntags = 2 };
		if (!tags || batch_add_series(e->b, &s) < 0) {
			e->err = -ENOMEM;
			return;
		}
		s.name = "dd_mini_agent.aggregator.tag_limit.samples_affected";
		s.value = (double)(r[i].stripped + r[i].dropped);
		if (batch_add_series(e->b, &s) < 0)
			e->err = -ENOMEM;
	}
}

int telemetry_append(struct telemetry *t, const struct telemetry_input *in, struct batch *b, int64_t now)
{
	struct emit e = { .b = b, .ts = now, .interval = in->interval_s ? in->interval_s : 10 };
	e.host = batch_str(b, sv_from_cstr(in->hostname ? in->hostname : ""));
	if (!e.host)
		return -ENOMEM;
	table_metrics(&e, &dsd_stats_table, in->parse, &t->parse);
	table_metrics(&e, &net_stats_table, &in->net, &t->net);
	table_metrics(&e, &aggr_stats_table, &in->aggr, &t->aggr);
	limited_metrics(&e, in->limited, in->nlimited);
	if (in->has_fwd)
		table_metrics(&e, &fwd_stats_table, &in->fwd, &t->fwd);
	return e.err;
}
