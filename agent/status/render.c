/*
 * render.c - renders a status snapshot as JSON (/status), Prometheus text
 * (/metrics) and the human summary (`dd-mini-agent status`). Pure functions.
 */
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "status/status.h"

static const char *const aggr_drop_names[AGGR_DROP_COUNT] = {
	[AGGR_DROP_CONTEXT_CAP] = "context_cap",
	[AGGR_DROP_METRIC_CAP] = "metric_cap",
	[AGGR_DROP_TIMESTAMPED_TYPE] = "timestamped_type",
	[AGGR_DROP_NOMEM] = "nomem",
	[AGGR_DROP_PENDING_CAP] = "pending_cap",
	[AGGR_DROP_NON_FINITE] = "non_finite",
	[AGGR_DROP_TAG_LIMIT] = "tag_limit",
	[AGGR_DROP_MEMORY_LIMIT] = "memory_limit",
};

static const char *drop_name(int d)
{
	return aggr_drop_names[d] ? aggr_drop_names[d] : "unknown";
}

void status_section_add(struct status_snapshot *s, const char *section, const char *name, double v)
{
	struct status_section *sec = NULL;
	for (size_t i = 0; i < s->nsections; i++)
		if (strcmp(s->sections[i].name, section) == 0)
			sec = &s->sections[i];
	if (!sec) {
		if (s->nsections == sizeof(s->sections) / sizeof(s->sections[0]))
			return;
		sec = &s->sections[s->nsections++];
		sec->name = section;
		sec->n = 0;
	}
	if (sec->n < STATUS_KV_MAX) {
		struct status_kv *kv = &sec->kv[sec->n++];
		snprintf(kv->name, sizeof(kv->name), "%s", name);
		kv->value = v;
	}
}

static void kv_u(struct jw *w, const char *k, uint64_t v)
{
	jw_key(w, k);
	jw_uint(w, v);
}

static uint64_t packets(const struct status_snapshot *s)
{
	return s->net.udp_packets + s->net.uds_packets;
}

static void json_dogstatsd(struct jw *w, const struct status_snapshot *s)
{
	const struct dsd_stats *p = &s->parse;
	jw_key(w, "dogstatsd");
	jw_obj_begin(w);
	kv_u(w, "packets", packets(s));
	kv_u(w, "bytes", s->net.udp_bytes + s->net.uds_bytes);
	kv_u(w, "udp_packets", s->net.udp_packets);
	kv_u(w, "udp_bytes", s->net.udp_bytes);
	kv_u(w, "uds_packets", s->net.uds_packets);
	kv_u(w, "uds_bytes", s->net.uds_bytes);
	kv_u(w, "truncated", s->net.truncated);
	kv_u(w, "kernel_drops", s->net.kernel_drops);
	kv_u(w, "recv_errors", s->net.recv_errors);
	kv_u(w, "lines", p->lines);
	kv_u(w, "metric_lines", p->metric_lines);
	kv_u(w, "events", p->events);
	kv_u(w, "service_checks", p->service_checks);
	kv_u(w, "rate_out_of_range", p->rate_out_of_range);
	kv_u(w, "metric_parse_errors", p->metric_errors);
	kv_u(w, "event_parse_errors", p->event_errors);
	kv_u(w, "service_check_parse_errors", p->check_errors);
	jw_key(w, "samples");
	jw_obj_begin(w);
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		kv_u(w, metric_type_name((enum metric_type)t), p->samples[t]);
	jw_obj_end(w);
	jw_key(w, "parse_errors");
	jw_obj_begin(w);
	for (int e = 0; e < DSD_ERR_COUNT; e++)
		kv_u(w, dsd_error_name((enum dsd_error)e), p->errors[e]);
	jw_obj_end(w);
	jw_obj_end(w);
}

static void json_limited(struct jw *w, const struct status_snapshot *s)
{
	jw_key(w, "limited_tags");
	jw_arr_begin(w);
	for (size_t i = 0; i < s->nlimited; i++) {
		const struct taglimit_row *r = &s->limited[i];
		jw_obj_begin(w);
		jw_key(w, "metric");
		jw_str(w, r->metric);
		jw_key(w, "tag_key");
		jw_str(w, r->key);
		kv_u(w, "values", r->values);
		kv_u(w, "samples_stripped", r->stripped);
		kv_u(w, "samples_dropped", r->dropped);
		jw_obj_end(w);
	}
	jw_arr_end(w);
}

static void json_aggr(struct jw *w, const struct status_snapshot *s)
{
	const struct aggr_stats *a = &s->aggr;
	jw_key(w, "aggregator");
	jw_obj_begin(w);
	kv_u(w, "samples", a->samples_in);
	kv_u(w, "contexts", a->contexts);
	kv_u(w, "contexts_created", a->contexts_created);
	kv_u(w, "contexts_expired", a->contexts_expired);
	kv_u(w, "series_flushed", a->series_flushed);
	kv_u(w, "sketches_flushed", a->sketches_flushed);
	kv_u(w, "events", a->events);
	kv_u(w, "service_checks", a->service_checks);
	kv_u(w, "memory_bytes", a->memory_bytes);
	kv_u(w, "seen_cache_hits", a->seen_hits);
	kv_u(w, "seen_cache_entries", a->seen_entries);
	kv_u(w, "tag_limited_samples", a->tag_limited);
	kv_u(w, "tags_excluded", a->tags_excluded);
	kv_u(w, "limited_tag_keys", s->limited_keys);
	json_limited(w, s);
	jw_key(w, "dropped");
	jw_obj_begin(w);
	for (int d = 0; d < AGGR_DROP_COUNT; d++)
		kv_u(w, drop_name(d), a->dropped[d]);
	jw_obj_end(w);
	jw_key(w, "top");
	jw_arr_begin(w);
	for (size_t i = 0; i < s->ntop; i++) {
		const struct aggr_top_entry *t = &s->top[i];
		jw_obj_begin(w);
		jw_key(w, "metric");
		jw_str(w, t->name);
		kv_u(w, "contexts", t->contexts);
		kv_u(w, "refused", t->refused);
		jw_key(w, "top_tag_key");
		jw_str(w, t->top_tag_key);
		kv_u(w, "top_tag_values", t->top_tag_values);
		jw_obj_end(w);
	}
	jw_arr_end(w);
	jw_obj_end(w);
}

void status_render_json(const struct status_snapshot *s, struct buf *out)
{
	struct jw w;
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "version");
	jw_str(&w, s->version);
	jw_key(&w, "hostname");
	jw_str(&w, s->hostname);
	jw_key(&w, "now");
	jw_int(&w, s->now);
	jw_key(&w, "uptime_s");
	jw_int(&w, s->now - s->started);
	kv_u(&w, "flushes", s->flushes);
	jw_key(&w, "last_flush_duration_s");
	jw_double(&w, s->last_flush_duration_s);
	jw_key(&w, "last_flush_cpu_s");
	jw_double(&w, s->last_flush_cpu_s);
	json_dogstatsd(&w, s);
	json_aggr(&w, s);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct status_section *sec = &s->sections[i];
		jw_key(&w, sec->name);
		jw_obj_begin(&w);
		for (size_t k = 0; k < sec->n; k++) {
			jw_key(&w, sec->kv[k].name);
			jw_double(&w, sec->kv[k].value);
		}
		jw_obj_end(&w);
	}
	jw_key(&w, "alert_states");
	jw_arr_begin(&w);
	for (size_t i = 0; i < s->nalert_lines; i++)
		jw_str(&w, s->alert_lines[i]);
	jw_arr_end(&w);
	jw_obj_end(&w);
	buf_putc(out, '\n');
}

static void prom(struct buf *o, const char *name, const char *help, const char *type)
{
	buf_printf(o, "# HELP dd_mini_agent_%s %s\n# TYPE dd_mini_agent_%s %s\n", name, help, name, type);
}

static void prom_label_value(struct buf *o, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			buf_putc(o, '\\');
		if (*v == '\n') {
			buf_puts(o, "\\n");
			continue;
		}
		buf_putc(o, *v);
	}
}

void status_render_prometheus(const struct status_snapshot *s, struct buf *o)
{
	const struct dsd_stats *p = &s->parse;
	prom(o, "packets_total", "Datagrams received.", "counter");
	buf_printf(o, "dd_mini_agent_packets_total{transport=\"udp\"} %llu\n", (unsigned long long)s->net.udp_packets);
	buf_printf(o, "dd_mini_agent_packets_total{transport=\"uds\"} %llu\n", (unsigned long long)s->net.uds_packets);
	prom(o, "bytes_total", "Bytes received.", "counter");
	buf_printf(o, "dd_mini_agent_bytes_total{transport=\"udp\"} %llu\n", (unsigned long long)s->net.udp_bytes);
	buf_printf(o, "dd_mini_agent_bytes_total{transport=\"uds\"} %llu\n", (unsigned long long)s->net.uds_bytes);
	prom(o, "truncated_datagrams_total", "Datagrams longer than dogstatsd_buffer_size.", "counter");
	buf_printf(o, "dd_mini_agent_truncated_datagrams_total %llu\n", (unsigned long long)s->net.truncated);
	prom(o, "kernel_drops_total", "Datagrams dropped by the kernel (SO_MEMINFO drops of the sockets).", "counter");
	buf_printf(o, "dd_mini_agent_kernel_drops_total %llu\n", (unsigned long long)s->net.kernel_drops);
	prom(o, "lines_total", "Messages parsed.", "counter");
	buf_printf(o, "dd_mini_agent_lines_total %llu\n", (unsigned long long)p->lines);
	prom(o, "samples_total", "Metric values accepted, by type.", "counter");
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		buf_printf(o, "dd_mini_agent_samples_total{type=\"%s\"} %llu\n",
			   metric_type_name((enum metric_type)t), (unsigned long long)p->samples[t]);
	prom(o, "events_total", "Events accepted.", "counter");
	buf_printf(o, "dd_mini_agent_events_total %llu\n", (unsigned long long)p->events);
	prom(o, "service_checks_total", "Service checks accepted.", "counter");
	buf_printf(o, "dd_mini_agent_service_checks_total %llu\n", (unsigned long long)p->service_checks);
	prom(o, "parse_errors_total", "Messages rejected, by reason.", "counter");
	for (int e = 0; e < DSD_ERR_COUNT; e++)
		buf_printf(o, "dd_mini_agent_parse_errors_total{reason=\"%s\"} %llu\n",
			   dsd_error_name((enum dsd_error)e), (unsigned long long)p->errors[e]);
	prom(o, "contexts", "Live aggregation contexts.", "gauge");
	buf_printf(o, "dd_mini_agent_contexts %llu\n", (unsigned long long)s->aggr.contexts);
	prom(o, "aggregator_dropped_total", "Samples refused by the aggregator, by reason.", "counter");
	for (int d = 0; d < AGGR_DROP_COUNT; d++)
		buf_printf(o, "dd_mini_agent_aggregator_dropped_total{reason=\"%s\"} %llu\n",
			   drop_name(d), (unsigned long long)s->aggr.dropped[d]);
	prom(o, "metric_contexts", "Live contexts of the metrics with the most contexts.", "gauge");
	for (size_t i = 0; i < s->ntop; i++) {
		buf_puts(o, "dd_mini_agent_metric_contexts{metric=\"");
		prom_label_value(o, s->top[i].name);
		buf_puts(o, "\",top_tag_key=\"");
		prom_label_value(o, s->top[i].top_tag_key);
		buf_printf(o, "\"} %llu\n", (unsigned long long)s->top[i].contexts);
	}
	prom(o, "tag_limited_samples_total",
	     "Samples that lost a tag (or were dropped) to dogstatsd_tag_value_limit, by metric and tag key.",
	     "counter");
	for (size_t i = 0; i < s->nlimited; i++) {
		buf_puts(o, "dd_mini_agent_tag_limited_samples_total{metric=\"");
		prom_label_value(o, s->limited[i].metric);
		buf_puts(o, "\",tag_key=\"");
		prom_label_value(o, s->limited[i].key);
		buf_printf(o, "\"} %llu\n",
			   (unsigned long long)(s->limited[i].stripped + s->limited[i].dropped));
	}
	prom(o, "flushes_total", "Flushes run.", "counter");
	buf_printf(o, "dd_mini_agent_flushes_total %llu\n", (unsigned long long)s->flushes);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct status_section *sec = &s->sections[i];
		for (size_t k = 0; k < sec->n; k++) {
			char num[40];
			json_format_double(num, sizeof(num), sec->kv[k].value);
			buf_printf(o, "dd_mini_agent_%s_%s %s\n", sec->name, sec->kv[k].name, num);
		}
	}
}

void status_render_text(const struct status_snapshot *s, struct buf *o)
{
	const struct dsd_stats *p = &s->parse;
	buf_printf(o, "dd-mini-agent %s on %s (up %llds, %llu flushes, last flush %.3fs, cpu %.3fs)\n\n",
		   s->version, s->hostname, (long long)(s->now - s->started),
		   (unsigned long long)s->flushes, s->last_flush_duration_s, s->last_flush_cpu_s);
	buf_puts(o, "DogStatsD\n=========\n");
	buf_printf(o, "  Packets: %llu (udp %llu, uds %llu), bytes: %llu\n", (unsigned long long)packets(s),
		   (unsigned long long)s->net.udp_packets, (unsigned long long)s->net.uds_packets,
		   (unsigned long long)(s->net.udp_bytes + s->net.uds_bytes));
	buf_printf(o, "  Truncated datagrams: %llu   Kernel drops: %llu   Receive errors: %llu\n",
		   (unsigned long long)s->net.truncated, (unsigned long long)s->net.kernel_drops,
		   (unsigned long long)s->net.recv_errors);
	buf_printf(o, "  Lines: %llu   Metric lines: %llu   Events: %llu   Service checks: %llu\n",
		   (unsigned long long)p->lines, (unsigned long long)p->metric_lines,
		   (unsigned long long)p->events, (unsigned long long)p->service_checks);
	buf_puts(o, "  Samples:");
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		buf_printf(o, " %s=%llu", metric_type_name((enum metric_type)t), (unsigned long long)p->samples[t]);
	buf_printf(o, "\n  Parse errors: metric %llu, event %llu, service check %llu\n",
		   (unsigned long long)p->metric_errors, (unsigned long long)p->event_errors,
		   (unsigned long long)p->check_errors);
	for (int e = 0; e < DSD_ERR_COUNT; e++)
		if (p->errors[e])
			buf_printf(o, "    %-22s %llu\n", dsd_error_name((enum dsd_error)e), (unsigned long long)p->errors[e]);
	buf_printf(o, "\nAggregator\n==========\n  Contexts: %llu (created %llu, expired %llu), memory: %zu bytes\n",
		   (unsigned long long)s->aggr.contexts, (unsigned long long)s->aggr.contexts_created,
		   (unsigned long long)s->aggr.contexts_expired, s->aggr.memory_bytes);
	for (int d = 0; d < AGGR_DROP_COUNT; d++)
		if (s->aggr.dropped[d])
			buf_printf(o, "  Refused (%s): %llu\n", drop_name(d), (unsigned long long)s->aggr.dropped[d]);
	if (s->ntop)
		buf_puts(o, "  Top metrics by contexts:\n");
	for (size_t i = 0; i < s->ntop; i++)
		buf_printf(o, "    %-40s %8llu contexts  refused %llu  top tag: %s (%llu values)\n", s->top[i].name,
			   (unsigned long long)s->top[i].contexts, (unsigned long long)s->top[i].refused,
			   s->top[i].top_tag_key[0] ? s->top[i].top_tag_key : "-",
			   (unsigned long long)s->top[i].top_tag_values);
	if (s->aggr.tags_excluded)
		buf_printf(o, "  Tags removed by dogstatsd_tags_exclude: %llu\n",
			   (unsigned long long)s->aggr.tags_excluded);
	if (s->limited_keys)
		buf_printf(o, "  Limited tags (dogstatsd_tag_value_limit): %llu metric/tag keys, %llu samples lost a tag\n",
			   (unsigned long long)s->limited_keys, (unsigned long long)s->aggr.tag_limited);
	for (size_t i = 0; i < s->nlimited; i++)
		buf_printf(o, "    %-40s tag %s: %llu values kept, %llu samples stripped, %llu dropped\n",
			   s->limited[i].metric, s->limited[i].key, (unsigned long long)s->limited[i].values,
			   (unsigned long long)s->limited[i].stripped,
			   (unsigned long long)s->limited[i].dropped);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct status_section *sec = &s->sections[i];
		buf_printf(o, "\n%s\n", sec->name);
		for (size_t k = 0; k < sec->n; k++) {
			char num[40];
			json_format_double(num, sizeof(num), sec->kv[k].value);
			buf_printf(o, "  %-32s %s\n", sec->kv[k].name, num);
		}
	}
	if (s->nalert_lines) {
		buf_puts(o, "\nAlerts\n======\n");
		for (size_t i = 0; i < s->nalert_lines; i++)
			buf_printf(o, "  %s\n", s->alert_lines[i]);
	}
}
