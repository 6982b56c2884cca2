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

static void put(struct emit *e, const char *name, enum series_kind kind, double v, const char *tag)
{
	struct sv tags[1] = { sv_from_cstr(tag) };
	struct series s = {
		.name = name, .host = e->host, .kind = kind, .ts = e->ts, .value = v,
		.interval = kind == SERIES_COUNT ? e->interval : 0,
		.tags = tag ? batch_tags(e->b, tags, 1) : NULL, .ntags = tag ? 1 : 0,
	};
	if ((tag && !s.tags) || batch_add_series(e->b, &s) < 0)
		e->err = -ENOMEM;
}

static void count(struct emit *e, const char *name, uint64_t now, uint64_t *prev, const char *tag)
{
	uint64_t d = now >= *prev ? now - *prev : now;
	*prev = now;
	if (d)
		put(e, name, SERIES_COUNT, (double)d, tag);
}

static void parse_metrics(struct emit *e, struct telemetry *t, const struct dsd_stats *p)
{
	char tag[64];
	count(e, "dd_mini_agent.dogstatsd.lines", p->lines, &t->parse.lines, NULL);
	count(e, "dd_mini_agent.dogstatsd.events", p->events, &t->parse.events, NULL);
	count(e, "dd_mini_agent.dogstatsd.service_checks", p->service_checks, &t->parse.service_checks, NULL);
	for (int i = 0; i < METRIC_TYPE_COUNT; i++) {
		snprintf(tag, sizeof(tag), "type:%s", metric_type_name((enum metric_type)i));
		count(e, "dd_mini_agent.dogstatsd.samples", p->samples[i], &t->parse.samples[i], tag);
	}
	for (int i = 0; i < DSD_ERR_COUNT; i++) {
		snprintf(tag, sizeof(tag), "reason:%s", dsd_error_name((enum dsd_error)i));
		count(e, "dd_mini_agent.dogstatsd.parse_errors", p->errors[i], &t->parse.errors[i], tag);
	}
}

static void net_metrics(struct emit *e, struct telemetry *t, const struct net_stats *n)
{
	count(e, "dd_mini_agent.dogstatsd.packets", n->udp_packets, &t->net.udp_packets, "transport:udp");
	count(e, "dd_mini_agent.dogstatsd.packets", n->uds_packets, &t->net.uds_packets, "transport:uds");
	count(e, "dd_mini_agent.dogstatsd.bytes", n->udp_bytes, &t->net.udp_bytes, "transport:udp");
	count(e, "dd_mini_agent.dogstatsd.bytes", n->uds_bytes, &t->net.uds_bytes, "transport:uds");
	count(e, "dd_mini_agent.dogstatsd.truncated", n->truncated, &t->net.truncated, NULL);
	count(e, "dd_mini_agent.dogstatsd.kernel_drops", n->kernel_drops, &t->net.kernel_drops, NULL);
}

static void aggr_metrics(struct emit *e, struct telemetry *t, const struct aggr_stats *a)
{
	static const char *const reasons[AGGR_DROP_COUNT] = {
		[AGGR_DROP_CONTEXT_CAP] = "reason:context_cap", [AGGR_DROP_METRIC_CAP] = "reason:metric_cap",
		[AGGR_DROP_TIMESTAMPED_TYPE] = "reason:timestamped_type", [AGGR_DROP_NOMEM] = "reason:nomem",
		[AGGR_DROP_PENDING_CAP] = "reason:pending_cap", [AGGR_DROP_NON_FINITE] = "reason:non_finite",
		[AGGR_DROP_TAG_LIMIT] = "reason:tag_limit", [AGGR_DROP_MEMORY_LIMIT] = "reason:memory_limit",
	};
	put(e, "dd_mini_agent.aggregator.contexts", SERIES_GAUGE, (double)a->contexts, NULL);
	put(e, "dd_mini_agent.aggregator.memory_bytes", SERIES_GAUGE, (double)a->memory_bytes, NULL);
	for (int i = 0; i < AGGR_DROP_COUNT; i++)
		count(e, "dd_mini_agent.aggregator.dropped", a->dropped[i], &t->aggr.dropped[i],
		      reasons[i] ? reasons[i] : "reason:unknown");
	count(e, "dd_mini_agent.aggregator.tag_limited", a->tag_limited, &t->aggr.tag_limited, NULL);
	count(e, "dd_mini_agent.aggregator.tags_excluded", a->tags_excluded, &t->aggr.tags_excluded, NULL);
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

static void fwd_metrics(struct emit *e, struct telemetry *t, const struct fwd_stats *f)
{
	char tag[64];
	count(e, "dd_mini_agent.forwarder.points_delivered", f->points_delivered, &t->fwd.points_delivered, NULL);
	count(e, "dd_mini_agent.forwarder.payloads_delivered", f->payloads_delivered, &t->fwd.payloads_delivered, NULL);
	count(e, "dd_mini_agent.forwarder.payloads_retried", f->payloads_retried, &t->fwd.payloads_retried, NULL);
	count(e, "dd_mini_agent.forwarder.bytes_sent", f->bytes_sent, &t->fwd.bytes_sent, NULL);
	for (int i = 0; i < FWD_DROP_COUNT; i++) {
		snprintf(tag, sizeof(tag), "reason:%s", fwd_drop_name((enum fwd_drop)i));
		count(e, "dd_mini_agent.forwarder.points_dropped", f->points_dropped[i], &t->fwd.points_dropped[i], tag);
	}
	put(e, "dd_mini_agent.forwarder.queue_bytes", SERIES_GAUGE, (double)f->queue_bytes, NULL);
	put(e, "dd_mini_agent.forwarder.disk_bytes", SERIES_GAUGE, (double)f->disk_bytes, NULL);
}

int telemetry_append(struct telemetry *t, const struct telemetry_input *in, struct batch *b, int64_t now)
{
	struct emit e = { .b = b, .ts = now, .interval = in->interval_s ? in->interval_s : 10 };
	e.host = batch_str(b, sv_from_cstr(in->hostname ? in->hostname : ""));
	if (!e.host)
		return -ENOMEM;
	parse_metrics(&e, t, in->parse);
	net_metrics(&e, t, &in->net);
	aggr_metrics(&e, t, &in->aggr);
	limited_metrics(&e, in->limited, in->nlimited);
	if (in->has_fwd)
		fwd_metrics(&e, t, &in->fwd);
	return e.err;
}
