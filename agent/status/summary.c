/*
 * summary.c - the STATUS= line (see summary.h).
 */
#include "status/summary.h"

#include <stdio.h>

static void intake_text(const struct status_summary *s, const struct status_summary_in *in, char *out,
			size_t n)
{
	uint64_t dropped = in->dropped_points >= s->dropped_points ? in->dropped_points - s->dropped_points : 0;
	if (!s->have_prev)
		dropped = in->dropped_points;
	switch (in->intake) {
	case STATUS_INTAKE_OFF_JSON:
		snprintf(out, n, "intake off (JSON lines output)");
		return;
	case STATUS_INTAKE_OFF_LOCAL:
		snprintf(out, n, "intake off (nothing forwarded)");
		return;
	case STATUS_INTAKE_ON:
		break;
	}
	if (dropped)
		snprintf(out, n, "intake dropping (%llu points dropped since the last flush, %llu queued)", (unsigned long long)dropped,
			 (unsigned long long)in->queued_points);
	else if (in->queued_points && in->waiting_payloads)
		snprintf(out, n, "intake retrying (%llu points queued)", (unsigned long long)in->queued_points);
	else if (in->queued_points)
		snprintf(out, n, "intake sending (%llu points in flight)", (unsigned long long)in->queued_points);
	else
		snprintf(out, n, "intake ok");
}

int status_summary_line(struct status_summary *s, const struct status_summary_in *in, char *out, size_t n)
{
	char intake[96];
	double rate = 0;
	if (s->have_prev && in->mono_s > s->mono_s && in->lines >= s->lines)
		rate = (double)(in->lines - s->lines) / (in->mono_s - s->mono_s);
	intake_text(s, in, intake, sizeof(intake));
	/* one decimal below 10 lines/s, so that a trickle does not read as 0 or 1 */
	int len = snprintf(out, n, "%.*f lines/s, %llu context%s, %s, %zu alert%s firing", rate < 9.95 ? 1 : 0,
			   rate, (unsigned long long)in->contexts, in->contexts == 1 ? "" : "s", intake,
			   in->alerts_firing, in->alerts_firing == 1 ? "" : "s");
	s->have_prev = true;
	s->lines = in->lines;
	s->mono_s = in->mono_s;
	s->dropped_points = in->dropped_points;
	return len;
}
