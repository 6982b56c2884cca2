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

Test(mapper, wildcard_with_captures_and_tags)
{
	struct mapper *m = mk();
	struct mapper_result r;
	cr_assert_eq(mapper_map(m, SV_LIT("web.shop.checkout.latency"), &r), 1);
	cr_assert(sveq(r.name, "web.latency"));
	cr_assert_eq(r.ntags, 2);
	cr_assert(sveq(r.tags[0], "service:shop"));
	cr_assert(sveq(r.tags[1], "op:checkout_x"));
	mapper_free(m);
}

Test(mapper, wildcard_star_does_not_cross_dots_and_first_match_wins)
{
	struct mapper *m = mk();
	struct mapper_result r;
	/* "web.*.*.latency" needs exactly two segments; "web.*" one segment */
	cr_assert_eq(mapper_map(m, SV_LIT("web.a.b.c.latency"), &r), 0);
	cr_assert_eq(mapper_map(m, SV_LIT("web.home"), &r), 1);
	cr_assert(sveq(r.name, "web.any.home"));
	cr_assert_eq(r.ntags, 0);
	cr_assert_eq(mapper_map(m, SV_LIT("web."), &r), 0, "* must match one char at least");
	cr_assert_eq(mapper_map(m, SV_LIT("web.a b"), &r), 0, "space is not in [a-zA-Z0-9_-]");
	cr_assert_eq(mapper_map(m, SV_LIT("web.a-b_C9"), &r), 1);
	cr_assert(sveq(r.name, "web.any.a-b_C9"));
	mapper_free(m);
}

Test(mapper, regex_groups)
{
	struct mapper *m = mk();
	struct mapper_result r;
	cr_assert_eq(mapper_map(m, SV_LIT("http_get_404"), &r), 1);
	cr_assert(sveq(r.name, "http.get"));
	cr_assert_eq(r.ntags, 1);
	cr_assert(sveq(r.tags[0], "code:404"));
	cr_assert_eq(mapper_map(m, SV_LIT("http_get_4044"), &r), 0);
	mapper_free(m);
}

Test(mapper, prefix_filter_and_catch_all)
{
	struct mapper *m = mk();
	struct mapper_result r;
	/* "web.x.cost": the web profile's prefix matches but none of its
	 * mappings do ("web.*" is one segment); the "*" profile then matches. */
	cr_assert_eq(mapper_map(m, SV_LIT("web.x.cost"), &r), 1);
	cr_assert(sveq(r.name, "cost.web.x.$"));
	cr_assert_eq(mapper_map(m, SV_LIT("db.a.cost"), &r), 1);
	cr_assert(sveq(r.name, "cost.db.a.$"));
	cr_assert_eq(mapper_map(m, SV_LIT("db.cost"), &r), 0);
	/* a regex that would match is not tried without the profile prefix */
	cr_assert_eq(mapper_map(m, SV_LIT("xhttp_get_404"), &r), 0);
	mapper_free(m);
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
