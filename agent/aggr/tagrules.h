/*
 * tagrules.h - static tag rules (dogstatsd_tags_exclude): tag keys removed
 * from every metric, or from the metrics whose name matches a pattern,
 * before aggregation.
 *
 * A rule is "KEY" or "KEY|METRIC": KEY a glob over the tag key (the bytes
 * before the first ':', the whole tag when it has none), METRIC a glob over
 * the metric name (after the mapper and namespace). Globs: '*' any run of
 * bytes, '?' one byte, everything else literal. Examples: "instance_id",
 * "request_*", "user_id|checkout.*".
 *
 * Private to aggr/: applied on the full ingest path (a line the seen-line
 * cache knows has its context already, and the cache is cleared when the
 * rules change). Immutable once built; not thread-safe to build.
 */
#ifndef DDMA_AGGR_TAGRULES_H
#define DDMA_AGGR_TAGRULES_H

#include <stdbool.h>
#include <stddef.h>

#include "aggr/intern.h"
#include "core/sv.h"

struct tagrules;

/* NULL with n == 0 (no rules) or on ENOMEM (*nomem set). */
struct tagrules *tagrules_new(char *const *rules, size_t n, bool *nomem);
void tagrules_free(struct tagrules *r); /* NULL ok */
/* Removes from t[0..n) (order kept) the tags a rule excludes for metric
 * `name`; returns how many are left. */
size_t tagrules_apply(const struct tagrules *r, struct sv name, struct tagref *t, size_t n);
/* Whether the glob (see above) matches s entirely. */
bool tagrules_glob(struct sv glob, struct sv s);
/* NULL when `rule` is well-formed, else what is wrong (config validation). */
const char *tagrules_check(const char *rule);
size_t tagrules_bytes(const struct tagrules *r);

#endif
