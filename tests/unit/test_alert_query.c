/*
 * test_alert_query.c - unit suffixes, durations and the monitor query
 * shorthand (alert/query.c), including error columns.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <string.h>

#include "alert/alert.h"

Test(alert_query, unit_suffixes)
{
	struct {
		const char *s;
		double v;
	} ok[] = {
		{ "10", 10 },	     { "-3.5", -3.5 },	     { "1.5k", 1500 },	   { "2M", 2e6 },
		{ "1G", 1e9 },	     { "10KiB", 10240 },     { "10MiB", 10485760 }, { "2GiB", 2147483648.0 },
		{ "250ms", 250 },    { "2s", 2000 },	     { "1m", 60000 },	     { "1h", 3600000 },
		{ "90%", 90 },	     { "1e3", 1000 },	     { "0.5", 0.5 },
	};
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		double v = -1;
		cr_assert_eq(alert_parse_number(ok[i].s, &v), 0, "%s", ok[i].s);
		cr_assert_float_eq(v, ok[i].v, 1e-9, "%s -> %f", ok[i].s, v);
	}
	const char *bad[] = { "", "k", "10 MiB", "10mib", "0x10", "nan", "inf", "1e999", "10Q", "--1" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		double v;
		cr_assert_eq(alert_parse_number(bad[i], &v), -EINVAL, "%s", bad[i]);
	}
}

Test(alert_query, durations)
{
	int64_t d;
	cr_assert_eq(alert_parse_duration("90", &d), 0);
	cr_assert_eq(d, 90);
	cr_assert_eq(alert_parse_duration("30s", &d), 0);
	cr_assert_eq(d, 30);
	cr_assert_eq(alert_parse_duration("5m", &d), 0);
	cr_assert_eq(d, 300);
	cr_assert_eq(alert_parse_duration("2h", &d), 0);
	cr_assert_eq(d, 7200);
	cr_assert_eq(alert_parse_duration("1d", &d), 0);
	cr_assert_eq(d, 86400);
	cr_assert_eq(alert_parse_duration("5x", &d), -EINVAL);
	cr_assert_eq(alert_parse_duration("-5m", &d), -EINVAL);
	cr_assert_eq(alert_parse_duration("m", &d), -EINVAL);
	cr_assert_eq(alert_parse_duration("99999999999999999999", &d), -EINVAL);
}

Test(alert_query, heap_growth_rule_from_the_spec)
{
	struct alert_rule r = { 0 };
	char err[256];
	unsigned col = 0;
	int rc = alert_query_parse("avg(last_5m):growth:payment_svc.memory.heap.size{service:payment-processor} > 10MiB",
				   &r, err, sizeof(err), &col);
	cr_assert_eq(rc, 0, "%s at %u", err, col);
	cr_assert_str_eq(r.metric, "payment_svc.memory.heap.size");
	cr_assert_eq(r.time_agg, ALERT_TIME_AVG);
	cr_assert_eq(r.transform, ALERT_TF_GROWTH);
	cr_assert_eq(r.space_agg, ALERT_SPACE_AVG);
	cr_assert_eq(r.window_s, 300);
	cr_assert_eq(r.op, ALERT_OP_GT);
	cr_assert(r.has_critical);
	cr_assert_float_eq(r.critical, 10485760.0, 0);
	cr_assert_eq(r.nfilters, 1);
	cr_assert_str_eq(r.filters[0].key, "service");
	cr_assert_str_eq(r.filters[0].value, "payment-processor");
	cr_assert_not(r.filters[0].negate);
	cr_assert_eq(r.ngroup_by, 0);
	alert_rule_done(&r);
}

Test(alert_query, gc_rule_and_groups)
{
	struct alert_rule r = { 0 };
	char err[256];
	unsigned col;
	cr_assert_eq(alert_query_parse("min(last_1m):avg:payment_svc.memory.gc.uncollectable{service:payment-processor} > 1000",
				       &r, err, sizeof(err), &col), 0, "%s", err);
	cr_assert_eq(r.time_agg, ALERT_TIME_MIN);
	cr_assert_eq(r.window_s, 60);
	cr_assert_float_eq(r.critical, 1000.0, 0);
	alert_rule_done(&r);

	cr_assert_eq(alert_query_parse("max(last_10m):deriv:sum:app.q{env:prod,!az:us-*,role:web*,canary} by {host, az} <= 2.5k",
				       &r, err, sizeof(err), &col), 0, "%s", err);
	cr_assert_eq(r.time_agg, ALERT_TIME_MAX);
	cr_assert_eq(r.transform, ALERT_TF_DERIV);
	cr_assert_eq(r.space_agg, ALERT_SPACE_SUM);
	cr_assert_eq(r.op, ALERT_OP_LE);
	cr_assert_float_eq(r.critical, 2500.0, 0);
	cr_assert_eq(r.nfilters, 4);
	cr_assert(r.filters[1].negate && r.filters[1].glob);
	cr_assert_str_eq(r.filters[1].key, "az");
	cr_assert_str_eq(r.filters[1].value, "us-*");
	cr_assert(r.filters[2].glob && !r.filters[2].negate);
	cr_assert_null(r.filters[3].value);
	cr_assert_str_eq(r.filters[3].key, "canary");
	cr_assert_eq(r.ngroup_by, 2);
	cr_assert_str_eq(r.group_by[0], "az"); /* sorted */
	cr_assert_str_eq(r.group_by[1], "host");
	alert_rule_done(&r);

	cr_assert_eq(alert_query_parse("sum(last_30s):rate(max:reqs{*}) >= 3", &r, err, sizeof(err), &col), 0, "%s", err);
	cr_assert_eq(r.transform, ALERT_TF_RATE);
	cr_assert_eq(r.space_agg, ALERT_SPACE_MAX);
	cr_assert_eq(r.nfilters, 0);
	cr_assert_eq(r.op, ALERT_OP_GE);
	alert_rule_done(&r);

	cr_assert_eq(alert_query_parse("last(last_1h):pct_change:x{key:!v} < -50%", &r, err, sizeof(err), &col), 0, "%s", err);
	cr_assert_eq(r.transform, ALERT_TF_PCT_CHANGE);
	cr_assert(r.filters[0].negate);
	cr_assert_float_eq(r.critical, -50.0, 0);
	alert_rule_done(&r);
}

struct qerr {
	char q[160];
	unsigned col;
	char msg[64];
};

ParameterizedTestParameters(alert_query, errors)
{
	static struct qerr e[] = {
		{ "average(last_5m):m{*} > 1", 1, "time aggregation" },
		{ "avg(5m):m{*} > 1", 5, "last_" },
		{ "avg(last_5x):m{*} > 1", 10, "bad window" },
		{ "avg(last_2d):m{*} > 1", 10, "bad window" },
		{ "avg(last_5m)m{*} > 1", 13, "expected ':'" },
		{ "avg(last_5m):avg:avg:m{*} > 1", 18, "not a" },
		{ "avg(last_5m):m{a:b > 1", 15, "unterminated" },
		{ "avg(last_5m):m{a:b} by host > 1", 24, "expected '{'" },
		{ "avg(last_5m):m{a:b} = 1", 21, "comparator" },
		{ "avg(last_5m):m{a:b} > 10XB", 23, "bad threshold" },
		{ "avg(last_5m):m{a:b} > 1 extra", 25, "unexpected text" },
		{ "avg(last_5m):foo(m{*}) > 1", 14, "unknown function" },
		{ "avg(last_5m):m{,} > 1", 16, "empty filter" },
		{ "avg(last_5m):m{} by {a,a} > 1", 24, "duplicate" },
		{ "avg(last_5m):m{*} >", 20, "expected a threshold" },
	};
	return cr_make_param_array(struct qerr, e, sizeof(e) / sizeof(e[0]));
}

ParameterizedTest(struct qerr *e, alert_query, errors)
{
	struct alert_rule r = { 0 };
	char err[256] = "";
	unsigned col = 0;
	cr_assert_eq(alert_query_parse(e->q, &r, err, sizeof(err), &col), -EINVAL, "%s", e->q);
	cr_assert_eq(col, e->col, "%s: column %u (%s), expected %u", e->q, col, err, e->col);
	cr_assert(strstr(err, e->msg), "%s: '%s' lacks '%s'", e->q, err, e->msg);
	cr_assert_null(r.metric);
	alert_rule_done(&r);
}
