/*
 * test_status.c - rendering of a known snapshot as /status JSON, Prometheus
 * text and the human summary.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status/status.h"

static void fill(struct status_snapshot *s)
{
	memset(s, 0, sizeof(*s));
	s->version = "9.9.9";
	s->hostname = "node-1";
	s->now = 1700000100;
	s->started = 1700000000;
	s->flushes = 10;
	s->net.udp_packets = 7;
	s->net.uds_packets = 3;
	s->net.udp_bytes = 700;
	s->net.kernel_drops = 2;
	s->net.truncated = 1;
	s->parse.lines = 40;
	s->parse.samples[METRIC_COUNT] = 30;
	s->parse.errors[DSD_ERR_BAD_TYPE] = 4;
	s->parse.metric_errors = 4;
	s->aggr.contexts = 12;
	s->aggr.dropped[AGGR_DROP_METRIC_CAP] = 5;
	s->ntop = 1;
	snprintf(s->top[0].name, sizeof(s->top[0].name), "%s", "jobs.\"q\"");
	s->top[0].contexts = 12;
	s->top[0].refused = 5;
	snprintf(s->top[0].top_tag_key, sizeof(s->top[0].top_tag_key), "%s", "instance_id");
	s->top[0].top_tag_values = 12;
	status_section_add(s, "forwarder", "points_delivered", 99);
	status_section_add(s, "forwarder", "queue_bytes", 0.5);
	static const char *const lines[] = { "heap_growth CRITICAL value=12" };
	s->alert_lines = lines;
	s->nalert_lines = 1;
}

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Renders s with render into b (for the caller to read on and free) and
 * expects each of the n strings of want in it. */
static void render_expect(void (*render)(const struct status_snapshot *, struct buf *),
			  const struct status_snapshot *s, struct buf *b, const char *const *want, size_t n)
{
	buf_init(b);
	render(s, b);
	for (size_t i = 0; i < n; i++)
		cr_expect(strstr(b->p, want[i]), "missing %s in %s", want[i], b->p);
}

Test(status, json_has_every_section)
{
	static const char *const want[] = {
		"\"version\":\"9.9.9\"", "\"hostname\":\"node-1\"", "\"uptime_s\":100", "\"flushes\":10",
		"\"packets\":10", "\"bytes\":700", "\"kernel_drops\":2", "\"truncated\":1", "\"lines\":40",
		"\"samples\":{\"count\":30,", "\"bad_type\":4", "\"metric_parse_errors\":4",
		"\"contexts\":12", "\"metric_cap\":5",
		"\"top\":[{\"metric\":\"jobs.\\\"q\\\"\",\"contexts\":12,\"refused\":5,\"top_tag_key\":\"instance_id\",\"top_tag_values\":12}]",
		"\"forwarder\":{\"points_delivered\":99,\"queue_bytes\":0.5}",
		"\"alert_states\":[\"heap_growth CRITICAL value=12\"]",
	};
	struct status_snapshot s;
	struct buf b;
	fill(&s);
	render_expect(status_render_json, &s, &b, want, N(want));
	buf_done(&b);
}

Test(status, prometheus_lines_are_well_formed)
{
	static const char *const want[] = {
		"dd_mini_agent_packets_total{transport=\"udp\"} 7\n",
		"dd_mini_agent_parse_errors_total{reason=\"bad_type\"} 4\n",
		"dd_mini_agent_metric_contexts{metric=\"jobs.\\\"q\\\"\",top_tag_key=\"instance_id\"} 12\n",
		"dd_mini_agent_forwarder_points_delivered 99\n",
	};
	struct status_snapshot s;
	struct buf b;
	fill(&s);
	render_expect(status_render_prometheus, &s, &b, want, N(want));
	/* every non-comment line: name[{labels}] value */
	char *save = NULL;
	for (char *line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#')
			continue;
		cr_assert(strncmp(line, "dd_mini_agent_", 14) == 0, "%s", line);
		char *sp = strrchr(line, ' ');
		cr_assert_not_null(sp, "%s", line);
		char *end;
		strtod(sp + 1, &end);
		cr_assert_eq(*end, '\0', "%s", line);
	}
	buf_done(&b);
}

Test(status, text_summary_names_the_offender)
{
	static const char *const want[] = {
		"\n  UDP packets                    7\n",
		"\n  Kernel drops                   2\n",
		"\n  Parse errors                   4\n    bad_type                     4\n",
		"top tag: instance_id (12 values)",
		"\nAlert states\n============\n  heap_growth CRITICAL",
	};
	struct status_snapshot s;
	struct buf b;
	fill(&s);
	render_expect(status_render_text, &s, &b, want, N(want));
	buf_done(&b);
}

/* Every row of a titled section: a label, then its value at one column;
 * durations and sizes in their units, rounded. */
Test(status, text_layout_is_aligned_with_units)
{
	static const char *const want[] = {
		"\n  Memory                         3.0 MiB\n",
		"\n  Last flush                     12.3 ms\n",
		"\nPipelines\n=========\n  Last collect                   70 us\n",
		"\n  Uptime                         1m 40s\n",
		"\nForwarder\n=========\n  Points delivered               99\n",
	};
	struct status_snapshot s;
	struct buf b;
	fill(&s);
	s.aggr.memory_bytes = 3 << 20;
	s.last_flush_duration_s = 0.0123;
	status_section_add(&s, "pipelines", "last_collect_s", 7.0093999994469414e-05);
	status_section_add(&s, "pipelines", "p0_lines", 40);
	render_expect(status_render_text, &s, &b, want, N(want));
	char *save = NULL;
	bool in_section = false;
	for (char *line = strtok_r(b.p, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '=') {
			in_section = true;
			continue;
		}
		if (line[0] != ' ' || strstr(line, "contexts  refused") || strstr(line, "CRITICAL"))
			continue; /* a title, a row of the top-metrics table, an alert state */
		cr_assert(in_section, "%s", line);
		cr_expect(strlen(line) >= 34 && line[32] == ' ' && line[33] != ' ', "value not at column 33: %s", line);
		cr_expect(!strpbrk(line + 33, "e+"), "unrounded: %s", line);
	}
	buf_done(&b);
}

/* The tables cover their structs, so the sums over pipelines miss nothing. */
Test(status, stats_tables_cover_their_structs)
{
	const struct stat_table *t[] = { &net_stats_table, &dsd_stats_table, &aggr_stats_table };
	size_t sizes[] = { sizeof(struct net_stats), sizeof(struct dsd_stats), sizeof(struct aggr_stats) };
	for (size_t k = 0; k < 3; k++) {
		size_t words = 0;
		for (size_t i = 0; i < t[k]->n; i++)
			words += t[k]->f[i].n;
		cr_expect_eq(words * sizeof(uint64_t), sizes[k], "table %zu", k);
	}
	struct aggr_stats sum, x;
	memset(&sum, 0, sizeof(sum));
	for (size_t i = 0; i < sizeof(x) / sizeof(uint64_t); i++)
		((uint64_t *)&x)[i] = i + 1;
	stat_table_add(&aggr_stats_table, &sum, &x);
	stat_table_add(&aggr_stats_table, &sum, &x);
	cr_expect_eq(sum.memory_bytes, 2 * x.memory_bytes);
	cr_expect_eq(sum.dropped[AGGR_DROP_MEMORY_LIMIT], 2 * x.dropped[AGGR_DROP_MEMORY_LIMIT]);
	cr_expect_eq(sum.tags_excluded, 2 * x.tags_excluded);
}

Test(status, sections_are_bounded)
{
	struct status_snapshot s;
	memset(&s, 0, sizeof(s));
	for (int i = 0; i < 200; i++)
		status_section_add(&s, "forwarder", "a_rather_long_counter_name_that_is_cut_at_47_bytes", i);
	for (int i = 0; i < STATUS_SECTIONS_MAX + 10; i++) {
		static char names[STATUS_SECTIONS_MAX + 10][8];
		snprintf(names[i], sizeof(names[i]), "s%d", i);
		status_section_add(&s, names[i], "x", i);
	}
	cr_expect_eq(s.sections[0].n, STATUS_KV_MAX);
	cr_expect_eq(s.nsections, STATUS_SECTIONS_MAX);
	cr_expect_eq(strlen(s.sections[0].kv[0].name), 47);
}
