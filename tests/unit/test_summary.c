/*
 * test_summary.c - the STATUS= line: rate from the previous line, intake
 * states, drops counted since the previous line, singular/plural.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "status/summary.h"

static const char *line(struct status_summary *s, const struct status_summary_in *in)
{
	static char out[256];
	int n = status_summary_line(s, in, out, sizeof(out));
	cr_assert_eq((size_t)n, strlen(out));
	return out;
}

Test(summary, rate_is_lines_since_previous_line)
{
	struct status_summary s = { .have_prev = true, .mono_s = 100.0 };
	struct status_summary_in in = { .lines = 15000, .mono_s = 110.0, .contexts = 312 };
	cr_assert_str_eq(line(&s, &in), "1500 lines/s, 312 contexts, intake ok, 0 alerts firing");
	in.lines = 15000;
	in.mono_s = 120.0;
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 312 contexts, intake ok, 0 alerts firing");
}

Test(summary, small_rates_keep_one_decimal)
{
	struct status_summary s = { .have_prev = true, .mono_s = 0.0 };
	struct status_summary_in in = { .lines = 7, .mono_s = 10.0, .contexts = 2 };
	cr_assert_str_eq(line(&s, &in), "0.7 lines/s, 2 contexts, intake ok, 0 alerts firing");
	in.lines = 107;
	in.mono_s = 20.0;
	cr_assert_str_eq(line(&s, &in), "10 lines/s, 2 contexts, intake ok, 0 alerts firing");
}

Test(summary, first_line_without_previous_has_no_rate)
{
	struct status_summary s = { 0 };
	struct status_summary_in in = { .lines = 99, .mono_s = 5.0, .contexts = 1, .alerts_firing = 1 };
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 1 context, intake ok, 1 alert firing");
}

Test(summary, intake_states)
{
	struct status_summary s = { .have_prev = true, .mono_s = 0.0 };
	struct status_summary_in in = { .mono_s = 10.0, .intake = STATUS_INTAKE_OFF_LOCAL, .alerts_firing = 2 };
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 0 contexts, intake off (nothing forwarded), 2 alerts firing");
	in.intake = STATUS_INTAKE_OFF_JSON;
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 0 contexts, intake off (JSON lines output), 2 alerts firing");
	in.intake = STATUS_INTAKE_ON;
	in.queued_points = 850;
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 0 contexts, intake sending (850 points in flight), 2 alerts firing");
	in.waiting_payloads = 3;
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 0 contexts, intake retrying (850 points queued), 2 alerts firing");
}

Test(summary, drops_count_since_previous_line)
{
	struct status_summary s = { .have_prev = true, .dropped_points = 10 };
	struct status_summary_in in = { .mono_s = 10.0, .dropped_points = 14, .queued_points = 3 };
	cr_assert_str_eq(line(&s, &in),
			 "0.0 lines/s, 0 contexts, intake dropping (4 points dropped since the last flush, 3 queued), "
			 "0 alerts firing");
	in.mono_s = 20.0;
	in.queued_points = 0;
	cr_assert_str_eq(line(&s, &in), "0.0 lines/s, 0 contexts, intake ok, 0 alerts firing");
}

Test(summary, truncates_to_the_buffer)
{
	struct status_summary s = { 0 };
	struct status_summary_in in = { .contexts = 123456789 };
	char out[16];
	int n = status_summary_line(&s, &in, out, sizeof(out));
	cr_assert_gt(n, 15);
	cr_assert_eq(strlen(out), 15);
}
