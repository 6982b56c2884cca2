/*
 * config_mapper.c - dogstatsd_mapper_profiles: Datadog's profile list
 * ({name, prefix, mappings: [{match, match_type, name, tags}]}) into
 * struct mapper_profile, with Datadog's validity rules (name and prefix
 * required; match and name required; wildcard patterns only [a-zA-Z0-9-_*.]
 * without "**"; regexes must compile as POSIX extended).
 * Caller: config.c's key table. Caps: MAX_PROFILES, MAX_MAPPINGS_PER_PROFILE,
 * MAX_MAPPINGS in all (YAML aliases can repeat one list many times),
 * MAX_MAPPING_TAGS. Threading: one load context per thread.
 */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"

#define MAX_PROFILES 1000
#define MAX_MAPPINGS_PER_PROFILE 10000
#define MAX_MAPPINGS 100000
#define MAX_MAPPING_TAGS 64
#define MAX_REGEX_REPEAT 1000	/* product of {m,n} bounds in one regex */

static bool wildcard_ok(const char *s)
{
	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-_*.", *p))
			return false;
	return !strstr(s, "**");
}

/* Rejects regexes whose {m,n} bounds multiply past MAX_REGEX_REPEAT: glibc
 * expands each bound into copies, so nested bounds cost their product. */
static bool regex_bounded(const char *s)
{
	double product = 1;

	for (const char *p = strchr(s, '{'); p; p = strchr(p + 1, '{')) {
		char *end;
		unsigned long m = strtoul(p + 1, &end, 10);
		if (end == p + 1)
			continue;
		if (*end == ',' && end[1] != '}')
			m = strtoul(end + 1, &end, 10);
		product *= m > 1 ? (double)m : 1;
	}
	return product <= MAX_REGEX_REPEAT;
}

static int check_match(struct ctx *c, const char *key, const struct ynode *n,
		       const struct mapper_mapping *m)
{
	regex_t re;
	char err[128];
	int r;

	if (!m->match[0]) {
		cfg_report(c, true, n, key, "must not be empty");
		return -EINVAL;
	}
	if (m->match_type == MAPPER_MATCH_WILDCARD) {
		if (wildcard_ok(m->match))
			return 0;
		cfg_report(c, true, n, key, "invalid wildcard pattern: only [a-zA-Z0-9-_*.] and no \"**\"");
		return -EINVAL;
	}
	if (!regex_bounded(m->match)) {
		cfg_report(c, true, n, key, "regex repetition counts multiply past %d", MAX_REGEX_REPEAT);
		return -EINVAL;
	}
	r = regcomp(&re, m->match, REG_EXTENDED | REG_NOSUB);
	if (r != 0) {
		regerror(r, &re, err, sizeof(err));
		cfg_report(c, true, n, key, "invalid regex: %s", err);
		return -EINVAL;
	}
	regfree(&re);
	return 0;
}

static int mapping_tags(struct ctx *c, const char *path, const struct ynode *n,
			struct mapper_mapping *m)
{
	char key[200], tk[80];
	int rc = 0;

	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, path, "expected a map of tag name to value");
		return -EINVAL;
	}
	if (n->n > MAX_MAPPING_TAGS) {
		cfg_report(c, true, n, path, "more than %d tags", MAX_MAPPING_TAGS);
		return -EINVAL;
	}
	m->tag_keys = calloc(n->n + 1, sizeof(char *));
	m->tag_values = calloc(n->n + 1, sizeof(char *));
	if (!m->tag_keys || !m->tag_values)
		return -ENOMEM;
	m->ntags = n->n;
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(key, sizeof(key), "%s.%s", path,
			 cfg_shown(tk, sizeof(tk), n->keys[i]->str, n->keys[i]->len));
		int r = cfg_get_str(c, key, n->keys[i], &m->tag_keys[i]);
		if (r == 0)
			r = cfg_get_str(c, key, n->items[i], &m->tag_values[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	return rc;
}

static int parse_mapping(struct ctx *c, const char *path, const struct ynode *n,
			 struct mapper_mapping *m)
{
	static const char *const types[] = { "wildcard", "regex" };
	const struct ynode *match = NULL;
	char key[200];
	int rc = 0, r;

	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, path, "expected a map {match, match_type, name, tags}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct ynode *v = n->items[i];
		cfg_path(key, sizeof(key), "%s.%s", path, k);
		r = 0;
		if (!strcmp(k, "match"))
			r = cfg_get_str(c, key, v, &m->match), match = v;
		else if (!strcmp(k, "match_type"))
			r = cfg_get_enum(c, key, v, types, 2, "wildcard, regex"),
			m->match_type = r == 1 ? MAPPER_MATCH_REGEX : MAPPER_MATCH_WILDCARD;
		else if (!strcmp(k, "name"))
			r = cfg_get_str(c, key, v, &m->name);
		else if (!strcmp(k, "tags"))
			r = ynode_is_null(v) ? 0 : mapping_tags(c, key, v, m);
		else
			cfg_unknown_key(c, path, n->keys[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	if (rc < 0)
		return rc;
	if (!m->match || !m->name || !m->name[0]) {
		cfg_report(c, true, n, path, "'match' and 'name' are required");
		return -EINVAL;
	}
	cfg_path(key, sizeof(key), "%s.match", path);
	return check_match(c, key, match, m);
}

static int profile_mappings(struct ctx *c, const char *path, const struct ynode *n,
			    struct mapper_profile *p)
{
	char key[200];
	int rc = 0;

	if (n->kind != YNODE_SEQ) {
		cfg_report(c, true, n, path, "expected a list of mappings");
		return -EINVAL;
	}
	if (n->n > MAX_MAPPINGS_PER_PROFILE || c->nmappings + n->n > MAX_MAPPINGS) {
		cfg_report(c, true, n, path, "too many mappings (%d per profile, %d in all)",
		       MAX_MAPPINGS_PER_PROFILE, MAX_MAPPINGS);
		return -EINVAL;
	}
	c->nmappings += n->n;
	p->mappings = calloc(n->n + 1, sizeof(*p->mappings));
	if (!p->mappings)
		return -ENOMEM;
	p->nmappings = n->n;
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(key, sizeof(key), "%s[%zu]", path, i);
		int r = parse_mapping(c, key, n->items[i], &p->mappings[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	return rc;
}

static int parse_profile(struct ctx *c, const char *path, const struct ynode *n,
			 struct mapper_profile *p)
{
	char key[200];
	int rc = 0, r;

	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, path, "expected a map {name, prefix, mappings}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		cfg_path(key, sizeof(key), "%s.%s", path, k);
		r = 0;
		if (!strcmp(k, "name"))
			r = cfg_get_str(c, key, n->items[i], &p->name);
		else if (!strcmp(k, "prefix"))
			r = cfg_get_str(c, key, n->items[i], &p->prefix);
		else if (!strcmp(k, "mappings"))
			r = profile_mappings(c, key, n->items[i], p);
		else
			cfg_unknown_key(c, path, n->keys[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	if (rc == 0 && (!p->name || !p->name[0] || !p->prefix || !p->prefix[0])) {
		cfg_report(c, true, n, path, "'name' and 'prefix' are required");
		rc = -EINVAL;
	}
	return rc;
}

void cfg_mapper_free(struct mapper_profile *p, size_t n)
{
	for (size_t i = 0; p && i < n; i++) {
		for (size_t j = 0; j < p[i].nmappings; j++) {
			struct mapper_mapping *m = &p[i].mappings[j];
			free(m->match);
			free(m->name);
			cfg_strv_free(m->tag_keys, m->ntags);
			cfg_strv_free(m->tag_values, m->ntags);
		}
		free(p[i].mappings);
		free(p[i].name);
		free(p[i].prefix);
	}
	free(p);
}

int cfg_mapper_profiles(struct ctx *c, const char *key, const struct ynode *n)
{
	struct aggr_config *a = &c->cfg->aggr;
	char path[96];
	int rc = 0;

	if (n->kind != YNODE_SEQ) {
		cfg_report(c, true, n, key, "expected a list of profiles");
		return -EINVAL;
	}
	if (n->n > MAX_PROFILES) {
		cfg_report(c, true, n, key, "more than %d profiles", MAX_PROFILES);
		return -EINVAL;
	}
	cfg_mapper_free(a->mapper_profiles, a->nmapper_profiles);
	a->mapper_profiles = calloc(n->n + 1, sizeof(*a->mapper_profiles));
	a->nmapper_profiles = a->mapper_profiles ? n->n : 0;
	if (!a->mapper_profiles)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(path, sizeof(path), "%s[%zu]", key, i);
		int r = parse_profile(c, path, n->items[i], &a->mapper_profiles[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	return rc;
}
