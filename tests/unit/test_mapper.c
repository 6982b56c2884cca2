/*
 * test_mapper.c - dogstatsd_mapper_profiles: wildcard with captures, regex,
 * prefix filter, no match, invalid patterns, first match wins.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "aggr/mapper.h"

static char *k_svc[] = { "service", "op" };
static char *v_svc[] = { "$1", "${2}_x" };
static char *k_re[] = { "code" };
static char *v_re[] = { "$2" };

static struct mapper_mapping web[] = {
	{ .match = "web.*.*.latency", .match_type = MAPPER_MATCH_WILDCARD,
	  .name = "web.latency", .tag_keys = k_svc, .tag_values = v_svc, .ntags = 2 },
	{ .match = "web.*", .match_type = MAPPER_MATCH_WILDCARD, .name = "web.any.$1" },
};
static struct mapper_mapping rx[] = {
	{ .match = "^http_([a-z]+)_([0-9]{3})$", .match_type = MAPPER_MATCH_REGEX,
	  .name = "http.$1", .tag_keys = k_re, .tag_values = v_re, .ntags = 1 },
	{ .match = "([", .match_type = MAPPER_MATCH_REGEX, .name = "bad" },
	{ .match = "bad pattern!", .match_type = MAPPER_MATCH_WILDCARD, .name = "bad" },
};
static struct mapper_mapping all[] = {
	{ .match = "*.*.cost", .match_type = MAPPER_MATCH_WILDCARD, .name = "cost.$1.${2}.$$" },
};

static struct mapper_profile profiles[] = {
	{ .name = "web", .prefix = "web.", .mappings = web, .nmappings = 2 },
	{ .name = "regex", .prefix = "http_", .mappings = rx, .nmappings = 3 },
	{ .name = "all", .prefix = "*", .mappings = all, .nmappings = 1 },
};

static struct mapper *mk(void)
{
	return mapper_new(profiles, sizeof(profiles) / sizeof(profiles[0]));
}

static bool sveq(struct sv a, const char *s)
{
	return sv_eq_cstr(a, s);
}

/* One input and the mapping it gives; no name: no mapping applies. */
struct map_case {
	const char *in;
	const char *name;
	size_t ntags;
	const char *tags[2];
	const char *why;
};

/* Maps every case's input through one mapper built from profiles[]. */
static void expect_maps(const struct map_case *cases, size_t n)
{
	struct mapper *m = mk();
	struct mapper_result r;

	for (size_t i = 0; i < n; i++) {
		const struct map_case *c = &cases[i];
		const char *why = c->why ? c->why : "";

		if (!c->name) {
			cr_assert_eq(mapper_map(m, sv_from_cstr(c->in), &r), 0, "%s %s", c->in, why);
			continue;
		}
		cr_assert_eq(mapper_map(m, sv_from_cstr(c->in), &r), 1, "%s", c->in);
		cr_assert(sveq(r.name, c->name), "%s: name %.*s", c->in, (int)r.name.n, r.name.p);
		cr_assert_eq(r.ntags, c->ntags, "%s", c->in);
		for (size_t t = 0; t < c->ntags; t++)
			cr_assert(sveq(r.tags[t], c->tags[t]), "%s: tag %zu", c->in, t);
	}
	mapper_free(m);
}

#define EXPECT_MAPS(cases) expect_maps((cases), sizeof(cases) / sizeof((cases)[0]))

Test(mapper, wildcard_with_captures_and_tags)
{
	static const struct map_case cases[] = {
		{ .in = "web.shop.checkout.latency", .name = "web.latency", .ntags = 2,
		  .tags = { "service:shop", "op:checkout_x" } },
	};
	EXPECT_MAPS(cases);
}

/* "web.*.*.latency" needs exactly two segments; "web.*" one segment */
Test(mapper, wildcard_star_does_not_cross_dots_and_first_match_wins)
{
	static const struct map_case cases[] = {
		{ .in = "web.a.b.c.latency" },
		{ .in = "web.home", .name = "web.any.home" },
		{ .in = "web.", .why = "* must match one char at least" },
		{ .in = "web.a b", .why = "space is not in [a-zA-Z0-9_-]" },
		{ .in = "web.a-b_C9", .name = "web.any.a-b_C9" },
	};
	EXPECT_MAPS(cases);
}

Test(mapper, regex_groups)
{
	static const struct map_case cases[] = {
		{ .in = "http_get_404", .name = "http.get", .ntags = 1, .tags = { "code:404" } },
		{ .in = "http_get_4044" },
	};
	EXPECT_MAPS(cases);
}

/* "web.x.cost": the web profile's prefix matches but none of its mappings do
 * ("web.*" is one segment); the "*" profile then matches. A regex that would
 * match is not tried without the profile prefix. */
Test(mapper, prefix_filter_and_catch_all)
{
	static const struct map_case cases[] = {
		{ .in = "web.x.cost", .name = "cost.web.x.$" },
		{ .in = "db.a.cost", .name = "cost.db.a.$" },
		{ .in = "db.cost" },
		{ .in = "xhttp_get_404", .why = "regex tried without the profile prefix" },
	};
	EXPECT_MAPS(cases);
}

Test(mapper, no_match_is_cached_and_invalid_patterns_counted)
{
	struct mapper *m = mk();
	struct mapper_result r;
	cr_assert_eq(mapper_invalid(m), 2);
	size_t before = mapper_bytes(m);
	cr_assert_eq(mapper_map(m, SV_LIT("unrelated.metric"), &r), 0);
	size_t after = mapper_bytes(m);
	cr_assert_gt(after, before, "negative result not cached");
	cr_assert_eq(mapper_map(m, SV_LIT("unrelated.metric"), &r), 0);
	cr_assert_eq(mapper_bytes(m), after);
	mapper_free(m);
}

Test(mapper, negative_cache_is_bounded)
{
	struct mapper *m = mk();
	struct mapper_result r;
	char name[32];
	for (int i = 0; i < 3 * MAPPER_CACHE_MAX; i++) {
		snprintf(name, sizeof(name), "zz.%d", i);
		mapper_map(m, sv_from_cstr(name), &r);
	}
	cr_assert_lt(mapper_bytes(m), (size_t)MAPPER_CACHE_MAX * 64 + 65536);
	mapper_free(m);
}

Test(mapper, no_profiles)
{
	struct mapper *m = mapper_new(NULL, 0);
	struct mapper_result r;
	cr_assert(m);
	cr_assert_eq(mapper_map(m, SV_LIT("a"), &r), 0);
	mapper_free(m);
	cr_assert_eq(mapper_map(NULL, SV_LIT("a"), &r), 0);
}
