/* fixture.c - see fixture.h. */
#include "fixture.h"

#include <stdio.h>
#include <stdlib.h>
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

struct aggr *fixture_aggr_new(const struct aggr_config *c)
{
	struct aggr *a = aggr_new(c);
	if (!a) {
		fputs("fixture_aggr_new: aggr_new failed\n", stderr);
		abort();
	}
	return a;
}

void fixture_aggr_config_collect(struct aggr_config *c, double *pct, size_t npct)
{
	fixture_aggr_config(c);
	c->histogram_aggregates = HIST_AGG_DEFAULT | HIST_AGG_MIN | HIST_AGG_SUM;
	c->histogram_percentiles = pct;
	c->nhistogram_percentiles = npct;
	c->set_exact_max = 100;
}

size_t fixture_split_tags(const char *tags, char *buf, size_t cap, struct sv *tv, size_t max)
{
	size_t nt = 0;
	snprintf(buf, cap, "%s", tags);
	for (char *p = buf; *tags && p;) {
		char *c = strchr(p, ',');
		if (nt == max) {
			fputs("fixture_split_tags: too many tags\n", stderr);
			abort();
		}
		tv[nt++] = (struct sv){ p, c ? (size_t)(c - p) : strlen(p) };
		p = c ? c + 1 : NULL;
	}
	return nt;
}
