/*
 * group.h - every intake of the agent: the main Datadog intake (dd_url /
 * site + api_key), each additional_endpoints (URL, API key) pair and each
 * remote_write entry, as one forwarder (forward.h) each. A batch is submitted
 * to all of them; each has its own queue, backoff, disk queue directory and
 * counters, so a slow or dead endpoint never delays or drops data for another.
 *
 * Endpoint order: the main intake, additional_endpoints pairs in file order,
 * remote_write entries in file order. Status sections: "forwarder" for the
 * first, "forwarder_1", "forwarder_2", ... for the others (each with the
 * accounting identity of forward.h). Disk queues: the first uses
 * forwarder_storage_path, the others <forwarder_storage_path>-<16 hex>, a
 * hash of URL and key (stable across restarts, no secret in the name).
 *
 * Threading: loop thread only.
 */
#ifndef DDMA_FORWARD_GROUP_H
#define DDMA_FORWARD_GROUP_H

#include <stdbool.h>
#include <stddef.h>

#include "forward/forward.h"

/* Whether cfg names any intake. */
bool fwd_group_wanted(const struct fwd_config *cfg);

/* One forwarder per endpoint (none when !fwd_group_wanted). NULL on error
 * with a message in err naming the endpoint. */
struct fwd_group *fwd_group_new(struct event_base *base, const struct fwd_config *cfg, char *err,
				size_t errlen);
void fwd_group_free(struct fwd_group *g);	/* accepts NULL */

size_t fwd_group_count(const struct fwd_group *g);
struct fwd *fwd_group_at(const struct fwd_group *g, size_t i);
/* "forwarder", "forwarder_1", ...: lives as long as the group. */
const char *fwd_group_section(const struct fwd_group *g, size_t i);
/* "datadog https://x (key 1)" / "remote_write <name or URL>": for logs and
 * status text; never contains a key or a password. */
const char *fwd_group_label(const struct fwd_group *g, size_t i);

/* Whether any endpoint sends distributions as series (fwd_wants_sketch_series). */
bool fwd_group_wants_sketch_series(const struct fwd_group *g);
void fwd_group_set_hostname(struct fwd_group *g, const char *hostname);

/* Submits b to every endpoint; the first error (all are tried). */
int fwd_group_submit(struct fwd_group *g, const struct batch *b, int64_t now);
/* Sums of every endpoint's counters (for telemetry and the summary line). */
void fwd_group_get_stats(const struct fwd_group *g, struct fwd_stats *out);
/* Drains every endpoint (fwd_drain); done(arg) once, after the last. */
void fwd_group_drain(struct fwd_group *g, double timeout_s, void (*done)(void *arg), void *arg);
/* Applies a reloaded config to every endpoint that is still configured
 * (same URL and key, same order); -EBUSY when endpoints were added, removed
 * or reordered (that needs a restart; the rest is applied), else as
 * fwd_reconfigure. */
int fwd_group_reconfigure(struct fwd_group *g, const struct fwd_config *cfg);
/* The first endpoint's URL, for the start-up line. */
const char *fwd_group_base_url(const struct fwd_group *g);

#endif
