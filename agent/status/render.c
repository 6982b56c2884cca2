/*
 * render.c - renders a status snapshot as JSON (/status), Prometheus text
 * (/metrics) and the human summary (`dd-mini-agent status`). Pure functions.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/json.h"
#include "status/status.h"

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

/* Every field of table t as "key": value, an array as an object by label value. */
static void json_table(struct jw *w, const struct stat_table *t, const void *st)
{
	for (size_t k = 0; k < t->n; k++) {
		const struct stat_field *f = &t->f[k];
		jw_key(w, stat_key(f));
		if (!f->elem) {
			jw_uint(w, stat_get(f, st, 0));
			continue;
		}
		jw_obj_begin(w);
		for (size_t i = 0; i < f->n; i++)
			kv_u(w, f->elem((int)i), stat_get(f, st, i));
		jw_obj_end(w);
	}
}

static void json_dogstatsd(struct jw *w, const struct status_snapshot *s)
{
	jw_key(w, "dogstatsd");
	jw_obj_begin(w);
	kv_u(w, "packets", s->net.udp_packets + s->net.uds_packets);
	kv_u(w, "bytes", s->net.udp_bytes + s->net.uds_bytes);
	json_table(w, &net_stats_table, &s->net);
	json_table(w, &dsd_stats_table, &s->parse);
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
	jw_key(w, "aggregator");
	jw_obj_begin(w);
	json_table(w, &aggr_stats_table, &s->aggr);
	kv_u(w, "limited_tag_keys", s->limited_keys);
	json_limited(w, s);
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

/* Every field of table t with a /metrics name; HELP and TYPE once per name
 * (fields that share one are adjacent). */
static void prom_table(struct buf *o, const struct stat_table *t, const void *st)
{
	const char *prev = NULL;
	for (size_t k = 0; k < t->n; k++) {
		const struct stat_field *f = &t->f[k];
		if (!f->prom)
			continue;
		if (!prev || strcmp(prev, f->prom) != 0)
			prom(o, f->prom, f->help, f->type == STAT_GAUGE ? "gauge" : "counter");
		prev = f->prom;
		for (size_t i = 0; i < f->n; i++) {
			buf_printf(o, "dd_mini_agent_%s", f->prom);
			if (f->elem) {
				buf_printf(o, "{%s=\"", f->label);
				prom_label_value(o, f->elem((int)i));
				buf_puts(o, "\"}");
			} else if (f->label) {
				const char *colon = strchr(f->label, ':');
				buf_printf(o, "{%.*s=\"", (int)(colon - f->label), f->label);
				prom_label_value(o, colon + 1);
				buf_puts(o, "\"}");
			}
			buf_printf(o, " %llu\n", (unsigned long long)stat_get(f, st, i));
		}
	}
}

void status_render_prometheus(const struct status_snapshot *s, struct buf *o)
{
	prom_table(o, &net_stats_table, &s->net);
	prom_table(o, &dsd_stats_table, &s->parse);
	prom_table(o, &aggr_stats_table, &s->aggr);
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

/* ---- the human summary: titled sections of aligned "Label  value unit" ---- */

#define TEXT_LABEL_WIDTH 30

enum unit { UNIT_NONE, UNIT_BYTES, UNIT_SECONDS };

/* Units follow the key: "..bytes.." counts bytes, "_s" / "_seconds" ends a
 * duration in seconds. */
static enum unit unit_of(const char *key)
{
	size_t n = strlen(key);
	if (strstr(key, "bytes"))
		return UNIT_BYTES;
	if ((n > 2 && strcmp(key + n - 2, "_s") == 0) || (n > 8 && strcmp(key + n - 8, "_seconds") == 0))
		return UNIT_SECONDS;
	return UNIT_NONE;
}

/* 0 s, 70 us, 12.3 ms, 1.25 s, 2m 05s, 3h 02m, 4d 01h */
static void fmt_seconds(char *out, size_t n, double v)
{
	if (v < 0.9995e-3 && v > 0)
		snprintf(out, n, "%.0f us", v * 1e6);
	else if (v <= 0)
		snprintf(out, n, "0 s");
	else if (v < 0.9995)
		snprintf(out, n, "%.1f ms", v * 1e3);
	else if (v < 59.995)
		snprintf(out, n, v == (double)(long long)v ? "%.0f s" : "%.2f s", v);
	else if (v < 3600)
		snprintf(out, n, "%dm %02ds", (int)(v / 60), (int)v % 60);
	else if (v < 86400)
		snprintf(out, n, "%dh %02dm", (int)(v / 3600), (int)v % 3600 / 60);
	else
		snprintf(out, n, "%lldd %02dh", (long long)(v / 86400), (int)((long long)v % 86400 / 3600));
}

/* 512 B, 1.5 KiB, 23.4 MiB, ... */
static void fmt_bytes(char *out, size_t n, double v)
{
	static const char *const units[] = { "KiB", "MiB", "GiB", "TiB" };
	if (v < 1024) {
		snprintf(out, n, "%.0f B", v);
		return;
	}
	int u = 0;
	for (v /= 1024; v >= 1024 && u < 3; u++)
		v /= 1024;
	snprintf(out, n, "%.1f %s", v, units[u]);
}

/* A counter or level in its unit, rounded for reading. */
static void fmt_value(char *out, size_t n, const char *key, double v)
{
	switch (unit_of(key)) {
	case UNIT_BYTES:
		fmt_bytes(out, n, v);
		return;
	case UNIT_SECONDS:
		fmt_seconds(out, n, v);
		return;
	case UNIT_NONE:
		break;
	}
	if (v == (double)(long long)v)
		snprintf(out, n, "%lld", (long long)v);
	else if (fabs(v) < 1000)
		snprintf(out, n, "%.3g", v);
	else
		snprintf(out, n, "%.0f", v);
}

/* "service_check_parse_errors" -> "Service check parse errors",
 * "last_collect_s" -> "Last collect" (the unit goes with the value) */
static void humanise(char *out, size_t n, const char *key)
{
	size_t len = strlen(key);
	if (unit_of(key) == UNIT_SECONDS)
		len -= strcmp(key + len - 2, "_s") == 0 ? 2 : 8;
	snprintf(out, n, "%.*s", (int)len, key);
	for (char *c = out; *c; c++)
		if (*c == '_')
			*c = ' ';
	if (out[0] >= 'a' && out[0] <= 'z')
		out[0] = (char)(out[0] - 'a' + 'A');
}

static void text_title(struct buf *o, const char *title)
{
	buf_printf(o, "\n%s\n", title);
	for (size_t i = strlen(title); i > 0; i--)
		buf_putc(o, '=');
	buf_putc(o, '\n');
}

static void text_row(struct buf *o, int indent, const char *label, const char *value)
{
	buf_printf(o, "%*s%-*s %s\n", indent, "", TEXT_LABEL_WIDTH + 2 - indent, label, value);
}

/* One row per scalar; an array's total, then its non-zero elements indented. */
static void text_table(struct buf *o, const struct stat_table *t, const void *st)
{
	char label[64], num[40];
	for (size_t k = 0; k < t->n; k++) {
		const struct stat_field *f = &t->f[k];
		if (f->title)
			snprintf(label, sizeof(label), "%s", f->title);
		else
			humanise(label, sizeof(label), stat_key(f));
		fmt_value(num, sizeof(num), stat_key(f), (double)stat_total(f, st));
		text_row(o, 2, label, num);
		for (size_t i = 0; f->elem && i < f->n; i++) {
			if (!stat_get(f, st, i))
				continue;
			fmt_value(num, sizeof(num), stat_key(f), (double)stat_get(f, st, i));
			text_row(o, 4, f->elem((int)i), num);
		}
	}
}

static void text_agent(struct buf *o, const struct status_snapshot *s)
{
	char title[160], num[40];
	int n = snprintf(title, sizeof(title), "dd-mini-agent %s on %s", s->version, s->hostname);
	buf_printf(o, "%s\n", title);
	for (; n > 0; n--)
		buf_putc(o, '=');
	buf_putc(o, '\n');
	fmt_seconds(num, sizeof(num), (double)(s->now - s->started));
	text_row(o, 2, "Uptime", num);
	snprintf(num, sizeof(num), "%llu", (unsigned long long)s->flushes);
	text_row(o, 2, "Flushes", num);
	fmt_seconds(num, sizeof(num), s->last_flush_duration_s);
	text_row(o, 2, "Last flush", num);
	fmt_seconds(num, sizeof(num), s->last_flush_cpu_s);
	text_row(o, 2, "Last flush CPU", num);
}

static void text_top(struct buf *o, const struct status_snapshot *s)
{
	if (!s->ntop)
		return;
	text_title(o, "Top metrics by contexts");
	for (size_t i = 0; i < s->ntop; i++)
		buf_printf(o, "  %-40s %8llu contexts  refused %llu  top tag: %s (%llu values)\n", s->top[i].name,
			   (unsigned long long)s->top[i].contexts, (unsigned long long)s->top[i].refused,
			   s->top[i].top_tag_key[0] ? s->top[i].top_tag_key : "-",
			   (unsigned long long)s->top[i].top_tag_values);
}

static void text_limited(struct buf *o, const struct status_snapshot *s)
{
	char num[40];
	if (!s->limited_keys)
		return;
	text_title(o, "Limited tags (dogstatsd_tag_value_limit)");
	snprintf(num, sizeof(num), "%llu", (unsigned long long)s->limited_keys);
	text_row(o, 2, "Metric/tag keys", num);
	for (size_t i = 0; i < s->nlimited; i++)
		buf_printf(o, "  %-40s tag %s: %llu values kept, %llu samples stripped, %llu dropped\n",
			   s->limited[i].metric, s->limited[i].key, (unsigned long long)s->limited[i].values,
			   (unsigned long long)s->limited[i].stripped,
			   (unsigned long long)s->limited[i].dropped);
}

void status_render_text(const struct status_snapshot *s, struct buf *o)
{
	char label[64], num[40];
	text_agent(o, s);
	text_title(o, "DogStatsD");
	text_table(o, &net_stats_table, &s->net);
	text_table(o, &dsd_stats_table, &s->parse);
	text_title(o, "Aggregator");
	text_table(o, &aggr_stats_table, &s->aggr);
	text_top(o, s);
	text_limited(o, s);
	for (size_t i = 0; i < s->nsections; i++) {
		const struct status_section *sec = &s->sections[i];
		humanise(label, sizeof(label), sec->name);
		text_title(o, label);
		for (size_t k = 0; k < sec->n; k++) {
			humanise(label, sizeof(label), sec->kv[k].name);
			fmt_value(num, sizeof(num), sec->kv[k].name, sec->kv[k].value);
			text_row(o, 2, label, num);
		}
	}
	if (s->nalert_lines) {
		text_title(o, "Alert states");
		for (size_t i = 0; i < s->nalert_lines; i++)
			buf_printf(o, "  %s\n", s->alert_lines[i]);
	}
}
