/*
 * mapper.h - dogstatsd_mapper_profiles: rename metrics and add tags.
 *
 * Private to aggr/ (aggr_new builds one from the config; tests use it
 * directly). Semantics of Datadog's agent: profiles are tried in order; a
 * profile applies to names starting with its prefix ("*" or "" = every name);
 * its mappings are tried in order and the first match wins (a profile whose
 * prefix matches but none of whose mappings match lets the next profile try).
 *   wildcard: the pattern may only contain [a-zA-Z0-9_.*-]; it must match the
 *     whole name; '*' matches one or more of [a-zA-Z0-9_-] (never a '.'),
 *     each '*' is a capture group $1, $2, ...
 *   regex: POSIX extended regex (regcomp), unanchored unless the pattern says
 *     so; groups are $1..$9 (Datadog uses Go regexps; POSIX ERE is close).
 * In the new name and tag values, $N and ${N} expand to capture group N (an
 * unmatched or missing group expands to ""), "$$" to "$".
 * Patterns are compiled once in mapper_new; an invalid pattern disables that
 * mapping and is counted (mapper_invalid).
 *
 * Names that matched nothing are remembered in a bounded negative cache
 * (MAPPER_CACHE_MAX names; when full it is cleared), so the regexes run once
 * per distinct unmapped name. Owns its memory. Not thread-safe.
 */
#ifndef DDMA_AGGR_MAPPER_H
#define DDMA_AGGR_MAPPER_H

#include <stddef.h>

#include "aggr/aggr_config.h"
#include "core/sv.h"

#define MAPPER_CACHE_MAX 10000
#define MAPPER_MAX_OUT 4096	/* bytes of a mapped name or tag; longer is cut */

/* Views into the mapper's scratch, valid until the next mapper_map call. */
struct mapper_result {
	struct sv name;
	const struct sv *tags;
	size_t ntags;
};

/* profiles is borrowed (must outlive the mapper). NULL on ENOMEM. */
struct mapper *mapper_new(const struct mapper_profile *profiles, size_t n);
void mapper_free(struct mapper *m); /* accepts NULL */
/* 1 and fills out when name is mapped, 0 when not, -ENOMEM. */
int mapper_map(struct mapper *m, struct sv name, struct mapper_result *out);
size_t mapper_invalid(const struct mapper *m);
size_t mapper_bytes(const struct mapper *m);

#endif
