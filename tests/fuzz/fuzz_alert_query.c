/*
 * fuzz_alert_query.c - libFuzzer harness for the alert query shorthand and
 * the number/duration parsers (alert/query.c). Input: one query string.
 * Checks: no crash, no leak, and on success a coherent rule (metric set,
 * window within bounds, sorted group keys, column reported on failure).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert/alert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > 8192)
		return 0;
	char *q = malloc(size + 1);
	if (!q)
		return 0;
	memcpy(q, data, size);
	q[size] = '\0';
	struct alert_rule r = { 0 };
	char err[256];
	unsigned col = 0;
	int rc = alert_query_parse(q, &r, err, sizeof(err), &col);
	if (rc == 0) {
		if (!r.metric || r.window_s <= 0 || r.window_s > ALERT_MAX_WINDOW_S || !r.has_critical)
			abort();
		for (size_t i = 1; i < r.ngroup_by; i++)
			if (strcmp(r.group_by[i - 1], r.group_by[i]) >= 0)
				abort();
	} else if (col == 0 || col > strlen(q) + 1 + 4096) {
		abort();
	}
	alert_rule_done(&r);
	double v;
	int64_t d;
	alert_parse_number(q, &v);
	alert_parse_duration(q, &d);
	free(q);
	return 0;
}
