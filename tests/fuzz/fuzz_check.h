/*
 * fuzz_check.h - CHECK(cond): a harness invariant. On failure it names the
 * condition and its file:line and aborts, so libFuzzer keeps the input (and
 * the corpus replay in `meson test` fails).
 *
 * fuzz_check_parser_stats(st): the invariants every parser's counters keep,
 * whatever the input: each rejected line counts exactly one reason, and each
 * line is a metric, an event, a service check or a rejection. It returns the
 * samples summed over the metric types, for the harness's own comparisons.
 */
#ifndef DDMA_FUZZ_CHECK_H
#define DDMA_FUZZ_CHECK_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "parse/parse.h"

#define CHECK(cond)                                                           \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "invariant failed: %s (%s:%d)\n", \
				#cond, __FILE__, __LINE__);                   \
			abort();                                              \
		}                                                             \
	} while (0)

static inline uint64_t fuzz_check_parser_stats(const struct dsd_stats *st)
{
	uint64_t reasons = 0, samples = 0;
	for (int i = 0; i < DSD_ERR_COUNT; i++)
		reasons += st->errors[i];
	for (int t = 0; t < METRIC_TYPE_COUNT; t++)
		samples += st->samples[t];
	uint64_t rejected = st->metric_errors + st->event_errors + st->check_errors;
	CHECK(reasons == rejected);
	CHECK(st->lines == st->metric_lines + st->events + st->service_checks + rejected);
	return samples;
}

#endif
