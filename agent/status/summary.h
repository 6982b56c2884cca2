/*
 * summary.h - the one-line summary sent to systemd as STATUS= after every
 * flush (what `systemctl status dd-mini-agent` shows under "Status:"), e.g.
 *   "1520 lines/s, 312 contexts, intake ok, 0 alerts firing"
 *   "0.0 lines/s, 12 contexts, intake retrying (850 points queued), 1 alert firing"
 *   "0.4 lines/s, 9 contexts, intake off (nothing forwarded), 0 alerts firing"
 * Intake states: ok; sending (points in flight, none waiting: a slow
 * intake); retrying (payloads waiting in the queues); dropping (points
 * dropped since the previous line); off.
 *
 * The caller passes running totals; the rate and the drops are the change
 * since the previous line, kept in struct status_summary.
 * Threading: the caller's (the main loop's) only.
 */
#ifndef DDMA_STATUS_SUMMARY_H
#define DDMA_STATUS_SUMMARY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum status_intake {
	STATUS_INTAKE_ON,		/* forwarding to an intake */
	STATUS_INTAKE_OFF_JSON,		/* no intake: flushes written as JSON lines */
	STATUS_INTAKE_OFF_LOCAL,	/* no intake, no output: aggregated locally only */
};

struct status_summary_in {
	uint64_t lines;			/* DogStatsD lines received so far */
	double mono_s;			/* monotonic seconds, now */
	uint64_t contexts;		/* contexts held now */
	enum status_intake intake;
	uint64_t queued_points;		/* STATUS_INTAKE_ON: not delivered yet (queues + in flight) */
	uint64_t waiting_payloads;	/* STATUS_INTAKE_ON: payloads queued, not in flight (memory + disk) */
	uint64_t dropped_points;	/* STATUS_INTAKE_ON: dropped so far, every reason */
	size_t alerts_firing;		/* instances in WARNING or CRITICAL */
};

/* Zero-initialise; the first line's rate counts from 0 lines at have_prev=false. */
struct status_summary {
	bool have_prev;
	uint64_t lines;
	double mono_s;
	uint64_t dropped_points;
};

/* Writes the line (NUL-terminated, truncated to n) and remembers `in` for
 * the next one. Returns the length snprintf would have written. */
int status_summary_line(struct status_summary *s, const struct status_summary_in *in, char *out, size_t n);

#endif
