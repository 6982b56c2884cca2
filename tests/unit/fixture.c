/* fixture.c - see fixture.h. */
#include "fixture.h"

#include <string.h>

#include "aggr/hist.h"

static double fixture_pct95[] = { 0.95 };

void fixture_aggr_config(struct aggr_config *c)
{
	*c = (struct aggr_config){
		.hostname = "myhost",
		.namespace = "",
		.bucket_seconds = 10,
		.expiry_seconds = 300,
		.context_expiry_seconds = 20,
		.histogram_aggregates = HIST_AGG_DEFAULT,
		.histogram_percentiles = fixture_pct95,
		.nhistogram_percentiles = 1,
		.no_aggregation_pipeline = true,
		.set_exact_max = 10000,
	};
}

void fixture_join_tags(const char *const *t, uint32_t n, char *out, size_t cap)
{
	out[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		strncat(out, t[i], cap - strlen(out) - 1);
		if (i + 1 < n)
			strncat(out, ",", cap - strlen(out) - 1);
	}
}
