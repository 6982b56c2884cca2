/* fixture_feed.c - see fixture_feed.h. */
#include "fixture_feed.h"

void fixture_feed(struct dsd_parser *p, struct aggr *a, char *buf, size_t len, int64_t now,
		  bool cached)
{
	struct dsd_datagram d = { buf, len };
	if (cached)
		ingest_batch(p, a, &d, 1, now);
	else
		ingest_batch_full(p, a, &d, 1, now);
}
