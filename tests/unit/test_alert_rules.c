/*
 * test_alert_rules.c - rule files: structured and query forms, validation
 * messages "FILE:LINE: KEY: ...", directories, check-config and test-rules.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alert/alert.h"

struct msgs {
	char text[16][1024];
	bool err[16];
	size_t n;
};

static void collect(void *ctx, bool is_error, const char *msg)
{
	struct msgs *m = ctx;
	if (m->n < 16) {
		snprintf(m->text[m->n], sizeof(m->text[0]), "%s", msg);
		m->err[m->n++] = is_error;
	}
}

static int load(const char *yaml, struct alert_rules **rs, struct msgs *m)
{
	struct config_diag d = { .report = collect, .ctx = m };
	*rs = NULL;
	return alert_rules_load_buffer("r.yaml", yaml, strlen(yaml), rs, &d);
}

/* Loads yaml that must load: with its warnings in m, or, m NULL, without
 * any message. */
static struct alert_rules *load_ok(const char *yaml, struct msgs *m)
{
	struct msgs none = { 0 };
	struct alert_rules *rs;
	if (!m)
		m = &none;
	cr_assert_eq(load(yaml, &rs, m), 0, "%s", m->text[0]);
	if (m == &none)
		cr_assert_eq(none.n, 0, "%s", none.text[0]);
	return rs;
}

/* Loads yaml (without any message) into *rs: nrules rules, one of them
 * named name, which it returns. */
static const struct alert_rule *load_rule(const char *yaml, size_t nrules, const char *name,
					  struct alert_rules **rs)
{
	*rs = load_ok(yaml, NULL);
	cr_assert_eq((*rs)->n, nrules);
	const struct alert_rule *r = alert_rules_find(*rs, name);
	cr_assert_not_null(r, "no rule %s", name);
	return r;
}

Test(alert_rules, structured_form_with_every_field)
{
	const char *y =
		"rules:\n"
		"  - name: heap_growth_rate_high\n"
		"    metric: payment_svc.memory.heap.size\n"
		"    filter: {service: payment-processor, env: \"!dev\", az: \"us-*\"}\n"
		"    group_by: [service, host]\n"
		"    space_agg: max\n"
		"    transform: growth\n"
		"    window: 5m\n"
		"    time_agg: avg\n"
		"    op: \">\"\n"
		"    critical: 10MiB\n"
		"    warning: 5MiB\n"
		"    critical_recovery: 8MiB\n"
		"    warning_recovery: 3MiB\n"
		"    for: 1m\n"
		"    keep_firing_for: 2m\n"
		"    require_full_window: true\n"
		"    no_data: {after: 10m, action: nodata}\n"
		"    renotify: 1h\n"
		"    notify: [slack-payment-team, pagerduty-oncall]\n"
		"    labels: {severity: page, team: payments}\n"
		"    message: \"{{rule}} on {{host}}\"\n"
		"    max_groups: 50\n";
	struct alert_rules *rs;
	const struct alert_rule *r = load_rule(y, 1, "heap_growth_rate_high", &rs);
	cr_assert_str_eq(r->metric, "payment_svc.memory.heap.size");
	cr_assert_eq(r->nfilters, 3);
	cr_assert(r->filters[1].negate);
	cr_assert_str_eq(r->filters[1].value, "dev");
	cr_assert(r->filters[2].glob);
	cr_assert_eq(r->ngroup_by, 2);
	cr_assert_str_eq(r->group_by[0], "host");
	cr_assert_eq(r->space_agg, ALERT_SPACE_MAX);
	cr_assert_eq(r->transform, ALERT_TF_GROWTH);
	cr_assert_eq(r->window_s, 300);
	cr_assert_float_eq(r->critical, 10485760.0, 0);
	cr_assert_float_eq(r->warning_recovery, 3145728.0, 0);
	cr_assert_eq(r->for_s, 60);
	cr_assert_eq(r->keep_firing_for_s, 120);
	cr_assert(r->require_full_window);
	cr_assert_eq(r->no_data_after_s, 600);
	cr_assert_eq(r->no_data_action, ALERT_NODATA_NODATA);
	cr_assert_eq(r->renotify_s, 3600);
	cr_assert_eq(r->nnotify, 2);
	cr_assert_str_eq(r->notify[1], "pagerduty-oncall");
	cr_assert_eq(r->notify_lines[1], 20);
	cr_assert_eq(r->nlabels, 2);
	cr_assert_str_eq(r->label_values[1], "payments");
	cr_assert_eq(r->max_groups, 50);
	cr_assert_eq(r->line, 2);
	alert_rules_free(rs);
}

Test(alert_rules, spec_rules_in_query_form_with_defaults)
{
	const char *y =
		"rules:\n"
		"  - name: heap_growth_rate_high\n"
		"    query: \"avg(last_5m):growth:payment_svc.memory.heap.size{service:payment-processor} > 10MiB\"\n"
		"    notify: [slack-payment-team, pagerduty-oncall]\n"
		"  - name: gc_uncollectable_high\n"
		"    query: \"min(last_1m):avg:payment_svc.memory.gc.uncollectable{service:payment-processor} > 1000\"\n"
		"    for: 1m\n"
		"    notify: [slack-payment-team]\n";
	struct alert_rules *rs;
	const struct alert_rule *r = load_rule(y, 2, "gc_uncollectable_high", &rs);
	cr_assert_eq(r, &rs->v[1], "rules keep the file's order");
	cr_assert_eq(r->window_s, 60);
	cr_assert_eq(r->no_data_after_s, 120);
	cr_assert_eq(r->no_data_action, ALERT_NODATA_KEEP);
	cr_assert_float_eq(r->critical_recovery, 1000.0, 0);
	cr_assert_eq(r->for_s, 60);
	alert_rules_free(rs);
}

struct bad {
	const char *yaml;
	const char *msg;
};

Test(alert_rules, errors_name_file_line_and_key)
{
	static const struct bad cases[] = {
		{ "rules:\n  - name: a\n    query: \"avg(last_5m):m{x:y} >> 3\"\n",
		  "r.yaml:3: query: rule a: column 22: bad threshold '>'" },
		{ "rules:\n  - name: a\n    metric: m\n    critical: 3\n", "r.yaml:2: window: rule a: missing" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5q\n    critical: 3\n",
		  "r.yaml:4: window: rule a: bad duration '5q'" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n", "r.yaml:2: critical: rule a: a rule needs" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n    critical: 10\n    warning: 20\n",
		  "r.yaml:2: warning: rule a: must be <= critical" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n    critical: 10\n    critical_recovery: 12\n",
		  "r.yaml:2: critical_recovery: rule a: must be <= critical" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n    critical: 10XB\n",
		  "r.yaml:5: critical: rule a: bad number '10XB'" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n    critical: 1\n    time_agg: median\n",
		  "r.yaml:6: time_agg: rule a: 'median' is not one of avg|min|max|sum|last|count" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 5m\n    critical: 1\n    no_data: {action: panic}\n",
		  "r.yaml:6: no_data.action: rule a: 'panic' is not one of keep|ok|nodata|alert" },
		{ "rules:\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n",
		  "r.yaml:4: name: rule a: duplicate rule name (first defined at r.yaml:2)" },
		{ "rules:\n  - metric: m\n", "r.yaml:2: name: missing" },
		{ "rules:\n  - name: \"bad name\"\n", "r.yaml:2: name: 'bad name'" },
		{ "rules:\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n    metric: m\n",
		  "r.yaml:3: query: rule a: query already sets" },
		{ "rules:\n  - name: a\n    metric: m\n    window: 48h\n    critical: 1\n",
		  "r.yaml:2: window: rule a: must be within 1s..24h" },
		{ "rules: {a: 1}\n", "r.yaml:1: rules: expected a list of rules" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct alert_rules *rs;
		struct msgs m = { 0 };
		cr_assert_eq(load(cases[i].yaml, &rs, &m), -EINVAL, "case %zu", i);
		cr_assert_null(rs);
		bool found = false;
		for (size_t k = 0; k < m.n; k++)
			found |= m.err[k] && strncmp(m.text[k], cases[i].msg, strlen(cases[i].msg)) == 0;
		cr_assert(found, "case %zu: got '%s', want '%s...'", i, m.n ? m.text[0] : "(nothing)", cases[i].msg);
	}
}

Test(alert_rules, unknown_keys_are_warnings)
{
	struct msgs m = { 0 };
	struct alert_rules *rs = load_ok("rules:\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n    colour: red\n", &m);
	cr_assert_eq(m.n, 1);
	cr_assert_not(m.err[0]);
	cr_assert_str_eq(m.text[0], "r.yaml:4: colour: rule a: unknown key (ignored)");
	alert_rules_free(rs);
}

static char *write_tmp(const char *dir, const char *name, const char *text)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

Test(alert_rules, directory_and_check_cli)
{
	char dir[] = "/tmp/alert_rules_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	write_tmp(dir, "a.yaml", "rules:\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n");
	write_tmp(dir, "b.yml", "rules:\n  - name: b\n    query: \"avg(last_5m):n{*} > 1\"\n");
	write_tmp(dir, "notes.txt", "not yaml");
	struct alert_rules *rs = NULL;
	cr_assert_eq(alert_rules_load_dir(dir, &rs, NULL), 0);
	cr_assert_eq(rs->n, 2);
	cr_assert_str_eq(rs->v[0].name, "a");
	alert_rules_free(rs);

	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	cr_assert_eq(alert_cli_check(dir, f), 0);
	fclose(f);
	cr_assert(strstr(out, "2 rule(s)"), "%s", out);
	free(out);

	write_tmp(dir, "c.yaml", "rules:\n  - name: a\n    query: \"avg(last_5m):m{*} > 1\"\n");
	f = open_memstream(&out, &len);
	cr_assert_eq(alert_cli_check(dir, f), 1);
	fclose(f);
	cr_assert(strstr(out, "c.yaml:2: name: rule a: duplicate rule name"), "%s", out);
	free(out);
	char p[300];
	for (const char *n = "a.yaml\0b.yml\0c.yaml\0notes.txt\0"; *n; n += strlen(n) + 1) {
		snprintf(p, sizeof(p), "%s/%s", dir, n);
		unlink(p);
	}
	rmdir(dir);

	/* a missing directory: no rules and a warning naming it (no line: the
	 * whole directory) */
	struct msgs m = { 0 };
	struct config_diag d = { .report = collect, .ctx = &m };
	rs = NULL;
	cr_assert_eq(alert_rules_load_dir("/nonexistent/alerts.d", &rs, &d), 0);
	cr_assert_eq(rs->n, 0);
	cr_assert_eq(m.n, 1);
	cr_assert(!m.err[0]);
	cr_assert_str_eq(m.text[0], "/nonexistent/alerts.d: alerts_dir: directory does not exist: no alert rules");
	alert_rules_free(rs);

	/* a long path is kept whole in the message */
	char longdir[600], want[800];
	snprintf(longdir, sizeof(longdir), "/nonexistent/%0500d/alerts.d", 0);
	snprintf(want, sizeof(want), "%s: alerts_dir: directory does not exist: no alert rules", longdir);
	m = (struct msgs){ 0 };
	rs = NULL;
	cr_assert_eq(alert_rules_load_dir(longdir, &rs, &d), 0);
	cr_assert_eq(m.n, 1);
	cr_assert_str_eq(m.text[0], want);
	alert_rules_free(rs);
}

Test(alert_rules, test_rules_cli_replays_a_fixture)
{
	char dir[] = "/tmp/alert_fix_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	char rules[300], fix[300];
	snprintf(rules, sizeof(rules), "%s", write_tmp(dir, "rules.yaml",
		"rules:\n"
		"  - name: heap_growth_rate_high\n"
		"    query: \"avg(last_1m):growth:heap{service:pay} > 10MiB\"\n"
		"    message: \"heap grew {{value}}\"\n"));
	snprintf(fix, sizeof(fix), "%s", write_tmp(dir, "fix.yaml",
		"interval: 10\n"
		"start: 1000\n"
		"hostname: node-1\n"
		"series:\n"
		"  - name: heap\n"
		"    tags: [service:pay]\n"
		"    values: \"0+1MiBx5 5MiB+4MiBx5 _x8\"\n"
		"  - name: heap\n"
		"    tags: [service:other]\n"
		"    values: \"1GiBx3\"\n"
		"expect:\n"
		"  - {at: 60, rule: heap_growth_rate_high, state: OK}\n"
		"  - {at: 100, rule: heap_growth_rate_high, state: CRITICAL}\n"
		"  - {at: 200, rule: heap_growth_rate_high, state: OK}\n"));
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	int rc = alert_cli_test_rules(rules, fix, f);
	fclose(f);
	cr_assert_eq(rc, 0, "%s", out);
	/* 0..5 MiB then 5,9,13,17,21,25 MiB; at +90 the last minute holds
	 * ts 30..80 and starts from ts 20's 2 MiB: growth 13 - 2 = 11 MiB; at
	 * +160 only ts 100..110 remain, from ts 90's 17 MiB: 25 - 17 = 8 MiB,
	 * recovered (shown with the direction it recovered in). */
	cr_assert(strstr(out, "+90s heap_growth_rate_high{} OK -> CRITICAL value=11534336 > 10485760"), "%s", out);
	cr_assert(strstr(out, "    heap grew 11534336\n"), "%s", out);
	cr_assert(strstr(out, "+160s heap_growth_rate_high{} CRITICAL -> OK value=8388608 <= 10485760"), "%s", out);
	cr_assert(strstr(out, "21 step(s), 2 transition(s), 3 expectation(s), 0 failed"), "%s", out);
	free(out);

	snprintf(fix, sizeof(fix), "%s", write_tmp(dir, "fix.yaml",
		"series:\n  - {name: heap, tags: [service:pay], values: \"1 2 3\"}\n"
		"expect:\n  - {at: 30, rule: heap_growth_rate_high, state: CRITICAL}\n"));
	f = open_memstream(&out, &len);
	rc = alert_cli_test_rules(rules, fix, f);
	fclose(f);
	cr_assert_eq(rc, 1, "%s", out);
	cr_assert(strstr(out, "FAIL +30s heap_growth_rate_high: expected CRITICAL, got OK"), "%s", out);
	free(out);

	f = open_memstream(&out, &len);
	rc = alert_cli_test_rules(rules, "/nonexistent.yaml", f);
	fclose(f);
	cr_assert_eq(rc, 2);
	free(out);
	unlink(rules);
	unlink(fix);
	rmdir(dir);
}
