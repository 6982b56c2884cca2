/*
 * engine.c - the alert engine: routes flushed series to rules and groups,
 * keeps one ring buffer per instance, computes
 * time_agg(transform(space_agg(points in window))) and runs the per-instance
 * state machine (OK -> PENDING -> WARNING/CRITICAL -> OK, NO_DATA).
 *
 * Called by agent.c after each flush (alert_eval) and by cli.c. Owns the
 * rules it was given, every instance and ring. No logging; the state file is
 * written by state.c. Memory: rules x max_groups x (window / resolution + 2)
 * points. Not thread-safe.
 */
#include "alert/alert_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

/* ---- transitions ---- */

void alert_transitions_init(struct alert_transitions *t)
{
	memset(t, 0, sizeof(*t));
	arena_init(&t->arena, 16 * 1024);
}

void alert_transitions_reset(struct alert_transitions *t)
{
	t->n = 0;
	arena_done(&t->arena);
}

void alert_transitions_done(struct alert_transitions *t)
{
	if (!t)
		return;
	arena_done(&t->arena);
	free(t->v);
	memset(t, 0, sizeof(*t));
}

/* ---- instances ---- */

size_t ring_cap_for(const struct alert_engine *e, const struct alert_rule *r)
{
	int64_t res = e->resolution > 0 ? e->resolution : 10;
	int64_t cap = r->window_s / res + 2;
	if (cap < 4)
		cap = 4;
	return cap > ALERT_MAX_RING ? ALERT_MAX_RING : (size_t)cap;
}

int inst_resize_ring(struct inst *in, size_t cap)
{
	struct apoint *ring = calloc(cap, sizeof(*ring));
	if (!ring)
		return -ENOMEM;
	size_t keep = in->rn < cap ? in->rn : cap;
	for (size_t i = 0; i < keep; i++)
		ring[i] = *ring_at(in, in->rn - keep + i);
	free(in->ring);
	in->ring = ring;
	in->rcap = cap;
	in->rhead = 0;
	in->rn = keep;
	return 0;
}

static void fingerprint(struct inst *in, const char *rule)
{
	uint64_t h = hash64(rule, strlen(rule) + 1);
	h = hash64_combine(h, hash64(in->key, strlen(in->key) + 1));
	h = hash64_combine(h, hash64(in->host, strlen(in->host)));
	in->fp = h;
	snprintf(in->fp_hex, sizeof(in->fp_hex), "%016llx", (unsigned long long)h);
}

/* Splits the canonical key into group tags. */
static int split_key(struct inst *in)
{
	size_t n = 0;
	const char *k = in->key;
	if (*k) {
		n = 1;
		for (const char *p = k; *p; p++)
			n += *p == '\x1f';
	}
	in->gtags = calloc(n ? n : 1, sizeof(char *));
	if (!in->gtags)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *end = strchr(k, '\x1f');
		size_t len = end ? (size_t)(end - k) : strlen(k);
		if (!(in->gtags[i] = strndup(k, len)))
			return -ENOMEM;
		in->ngtags++;
		k += len + 1;
	}
	return 0;
}

static bool grouped_by_host(const struct alert_rule *r)
{
	for (size_t i = 0; i < r->ngroup_by; i++)
		if (strcmp(r->group_by[i], "host") == 0)
			return true;
	return false;
}

struct inst *inst_new(const struct alert_engine *e, const struct alert_rule *r, const char *key,
		      const char *series_host)
{
	struct inst *in = calloc(1, sizeof(*in));
	if (!in)
		return NULL;
	in->key = strdup(key);
	in->key_hash = hash64(key, strlen(key));
	const char *host = e->hostname;
	if (grouped_by_host(r) && series_host)
		host = series_host;
	in->host = strdup(host ? host : "");
	in->rcap = ring_cap_for(e, r);
	in->ring = calloc(in->rcap, sizeof(*in->ring));
	in->value = NAN;
	if (!in->key || !in->host || !in->ring || split_key(in) < 0) {
		inst_free(in);
		return NULL;
	}
	fingerprint(in, r->name);
	return in;
}

void inst_free(struct inst *in)
{
	if (!in)
		return;
	free(in->key);
	free(in->host);
	for (size_t i = 0; i < in->ngtags; i++)
		free(in->gtags[i]);
	free(in->gtags);
	free(in->ring);
	free(in);
}

int rt_add(struct rule_rt *rt, struct inst *in)
{
	if (rt->n == rt->cap) {
		size_t cap = rt->cap ? rt->cap * 2 : 4;
		struct inst **v = realloc(rt->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		rt->v = v;
		rt->cap = cap;
	}
	rt->v[rt->n++] = in;
	return 0;
}

static void rt_clear(struct rule_rt *rt)
{
	for (size_t i = 0; i < rt->n; i++)
		inst_free(rt->v[i]);
	free(rt->v);
	memset(rt, 0, sizeof(*rt));
}

/* ---- engine lifetime ---- */

static int build_rt(struct alert_engine *e, struct alert_rules *rules, struct rule_rt **out, int64_t now)
{
	struct rule_rt *rt = calloc(rules->n ? rules->n : 1, sizeof(*rt));
	if (!rt)
		return -ENOMEM;
	for (size_t i = 0; i < rules->n; i++) {
		rt[i].rule = &rules->v[i];
		if (rules->v[i].ngroup_by)
			continue;
		/* An ungrouped rule has its one instance from the start, so
		 * no_data works even for a series that never arrives. */
		struct inst *in = inst_new(e, &rules->v[i], "", NULL);
		if (!in || rt_add(&rt[i], in) < 0) {
			inst_free(in);
			for (size_t j = 0; j <= i; j++)
				rt_clear(&rt[j]);
			free(rt);
			return -ENOMEM;
		}
		in->last_data = now;
		in->state_since = now;
	}
	*out = rt;
	return 0;
}

struct alert_engine *alert_engine_new(struct alert_rules *rules, const struct alert_engine_config *cfg,
				      int64_t now)
{
	struct alert_engine *e = calloc(1, sizeof(*e));
	if (!e) {
		alert_rules_free(rules);
		return NULL;
	}
	e->rules = rules ? rules : calloc(1, sizeof(*rules));
	e->resolution = cfg && cfg->resolution_s > 0 ? cfg->resolution_s : 10;
	e->max_groups = cfg && cfg->max_groups_per_rule ? cfg->max_groups_per_rule : ALERT_DEFAULT_MAX_GROUPS;
	e->hostname = strdup(cfg && cfg->hostname ? cfg->hostname : "");
	if (cfg && cfg->state_path && *cfg->state_path)
		e->state_path = strdup(cfg->state_path);
	e->scratch = calloc(ALERT_MAX_RING + 1, sizeof(*e->scratch)); /* + the window-start slot */
	e->vals = calloc(ALERT_MAX_RING, sizeof(*e->vals));
	if (!e->rules || !e->hostname || !e->scratch || !e->vals ||
	    (cfg && cfg->state_path && *cfg->state_path && !e->state_path) ||
	    build_rt(e, e->rules, &e->rt, now) < 0) {
		alert_engine_free(e);
		return NULL;
	}
	e->last_now = now;
	state_restore(e, now);
	return e;
}

void alert_engine_free(struct alert_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; e->rt && i < e->rules->n; i++)
		rt_clear(&e->rt[i]);
	free(e->rt);
	alert_rules_free(e->rules);
	free(e->state_path);
	free(e->hostname);
	free(e->scratch);
	free(e->vals);
	free(e);
}

static bool same_groups(const struct alert_rule *a, const struct alert_rule *b)
{
	if (a->ngroup_by != b->ngroup_by)
		return false;
	for (size_t i = 0; i < a->ngroup_by; i++)
		if (strcmp(a->group_by[i], b->group_by[i]) != 0)
			return false;
	return true;
}

int alert_engine_swap_rules(struct alert_engine *e, struct alert_rules *rules)
{
	struct rule_rt *rt;
	if (!rules || build_rt(e, rules, &rt, e->last_now) < 0) {
		alert_rules_free(rules);
		return -ENOMEM;
	}
	for (size_t i = 0; i < rules->n; i++) {
		const struct alert_rule *nr = &rules->v[i];
		for (size_t j = 0; j < e->rules->n; j++) {
			struct rule_rt *old = &e->rt[j];
			if (!old->rule || strcmp(old->rule->name, nr->name) != 0 || !same_groups(old->rule, nr))
				continue;
			rt_clear(&rt[i]); /* replaced by the old instances */
			rt[i] = *old;
			rt[i].rule = nr;
			memset(old, 0, sizeof(*old));
			size_t cap = ring_cap_for(e, nr);
			for (size_t k = 0; k < rt[i].n; k++)
				if (rt[i].v[k]->rcap != cap)
					inst_resize_ring(rt[i].v[k], cap); /* on ENOMEM keeps the old ring */
			break;
		}
	}
	for (size_t j = 0; j < e->rules->n; j++)
		rt_clear(&e->rt[j]);
	free(e->rt);
	alert_rules_free(e->rules);
	e->rules = rules;
	e->rt = rt;
	e->dirty = true;
	return 0;
}

static const struct stat_field stat_fields[] = {
#define X(f, dim, ...) STATS_DESC(struct alert_stats, f, __VA_ARGS__)
	ALERT_STATS_FIELDS(X)
#undef X
};
const struct stat_table alert_stats_table = STATS_TABLE(stat_fields);

void alert_engine_get_stats(const struct alert_engine *e, struct alert_stats *out)
{
	*out = e->stats;
	out->instances = 0;
	out->memory_bytes = sizeof(*e) + ALERT_MAX_RING * (sizeof(struct apoint) + sizeof(double));
	for (size_t i = 0; i < e->rules->n; i++) {
		out->instances += e->rt[i].n;
		for (size_t k = 0; k < e->rt[i].n; k++)
			out->memory_bytes += sizeof(struct inst) + e->rt[i].v[k]->rcap * sizeof(struct apoint) +
					     strlen(e->rt[i].v[k]->key) * 2;
	}
}

size_t alert_engine_states(const struct alert_engine *e,
			   void (*fn)(void *ctx, const struct alert_instance_info *i), void *ctx)
{
	size_t count = 0;
	for (size_t i = 0; i < e->rules->n; i++) {
		for (size_t k = 0; k < e->rt[i].n; k++) {
			const struct inst *in = e->rt[i].v[k];
			struct alert_instance_info info = {
				.rule = e->rt[i].rule->name,
				.host = in->host,
				.group_tags = (const char *const *)in->gtags,
				.ngroup_tags = in->ngtags,
				.state = in->state,
				.value = in->value,
				.since = in->state_since,
				.fingerprint = in->fp,
			};
			if (fn)
				fn(ctx, &info);
			count++;
		}
	}
	return count;
}
