/*
 * eval.c - alert_eval: routing of flushed series to (rule, group) instances,
 * the window value time_agg(transform(space_agg(points))) and the
 * per-instance state machine. See alert.h and docs/ALERTS.md "Evaluation".
 *
 * Called by agent.c after every flush and by cli.c. Pure apart from the
 * state file write (state.c) when a state changed. Not thread-safe.
 */
#include "alert/alert_int.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"

/* ---- matching ---- */

static bool glob_match(const char *pat, const char *s)
{
	const char *star = NULL, *ss = NULL;
	while (*s) {
		if (*pat == '*') {
			star = pat++;
			ss = s;
		} else if (*pat == *s) {
			pat++;
			s++;
		} else if (star) {
			pat = star + 1;
			s = ++ss;
		} else {
			return false;
		}
	}
	while (*pat == '*')
		pat++;
	return *pat == '\0';
}

static bool value_match(const struct alert_filter *f, const char *v)
{
	return f->glob ? glob_match(f->value, v) : strcmp(f->value, v) == 0;
}

/* Value of tag `key` in s ("key:value"), or NULL. */
static const char *tag_value(const struct series *s, const char *key, size_t klen)
{
	for (uint32_t i = 0; i < s->ntags; i++) {
		const char *t = s->tags[i];
		if (strncmp(t, key, klen) == 0 && t[klen] == ':')
			return t + klen + 1;
	}
	return NULL;
}

static bool filter_match(const struct alert_filter *f, const struct series *s)
{
	bool hit = false;
	if (!f->value) {
		for (uint32_t i = 0; i < s->ntags && !hit; i++)
			hit = strcmp(s->tags[i], f->key) == 0;
	} else if (strcmp(f->key, "host") == 0) {
		hit = value_match(f, s->host ? s->host : "");
	} else {
		size_t kl = strlen(f->key);
		for (uint32_t i = 0; i < s->ntags && !hit; i++) {
			const char *t = s->tags[i];
			hit = strncmp(t, f->key, kl) == 0 && t[kl] == ':' && value_match(f, t + kl + 1);
		}
	}
	return f->negate ? !hit : hit;
}

static bool series_match(const struct alert_rule *r, const struct series *s)
{
	for (size_t i = 0; i < r->nfilters; i++)
		if (!filter_match(&r->filters[i], s))
			return false;
	return true;
}

/* Builds the canonical group key; -E2BIG if it would exceed INST_KEY_MAX. */
static int group_key(const struct alert_rule *r, const struct series *s, char *out)
{
	size_t len = 0;
	out[0] = '\0';
	for (size_t i = 0; i < r->ngroup_by; i++) {
		const char *k = r->group_by[i];
		size_t kl = strlen(k);
		const char *v = strcmp(k, "host") == 0 ? s->host : tag_value(s, k, kl);
		if (!v)
			v = "N/A";
		size_t vl = strlen(v);
		if (len + kl + vl + 3 > INST_KEY_MAX)
			return -E2BIG;
		if (i)
			out[len++] = '\x1f';
		memcpy(out + len, k, kl);
		out[len + kl] = ':';
		memcpy(out + len + kl + 1, v, vl);
		len += kl + 1 + vl;
		out[len] = '\0';
	}
	return 0;
}

static struct inst *find_inst(struct rule_rt *rt, const char *key, uint64_t h)
{
	for (size_t i = 0; i < rt->n; i++)
		if (rt->v[i]->key_hash == h && strcmp(rt->v[i]->key, key) == 0)
			return rt->v[i];
	return NULL;
}

static void acc_add(struct alert_engine *e, struct inst *in, int64_t ts, double v)
{
	for (size_t i = 0; i < in->nacc; i++) {
		struct aacc *a = &in->acc[i];
		if (a->ts == ts) {
			a->sum += v;
			a->min = v < a->min ? v : a->min;
			a->max = v > a->max ? v : a->max;
			a->n++;
			return;
		}
	}
	if (in->nacc == INST_ACC_MAX) {
		e->stats.points_dropped++;
		return;
	}
	in->acc[in->nacc++] = (struct aacc){ ts, v, v, v, 1 };
}

static void route(struct alert_engine *e, struct rule_rt *rt, const struct series *s)
{
	const struct alert_rule *r = rt->rule;
	char key[INST_KEY_MAX];
	if (!isfinite(s->value))
		return;
	if (group_key(r, s, key) < 0) {
		rt->refused++;
		e->stats.groups_refused++;
		return;
	}
	uint64_t h = hash64(key, strlen(key));
	struct inst *in = find_inst(rt, key, h);
	if (!in) {
		size_t max = r->max_groups ? r->max_groups : e->max_groups;
		if (rt->n >= max) {
			rt->refused++;
			e->stats.groups_refused++;
			return;
		}
		in = inst_new(e, r, key, s->host);
		if (!in || rt_add(rt, in) < 0) {
			inst_free(in);
			e->stats.groups_refused++;
			rt->refused++;
			return;
		}
		in->state_since = e->last_now;
	}
	acc_add(e, in, s->ts, s->value);
}

static int cmp_acc(const void *a, const void *b)
{
	const struct aacc *x = a, *y = b;
	return (x->ts > y->ts) - (x->ts < y->ts);
}

static void inst_add_point(struct alert_engine *e, struct inst *in, int64_t ts, double v)
{
	if (in->rn) {
		struct apoint *last = ring_at(in, in->rn - 1);
		if (ts == last->ts) {
			last->v = v;
			return;
		}
		if (ts < last->ts) {
			e->stats.points_dropped++; /* late bucket: the window moved on */
			return;
		}
	}
	ring_push(in, ts, v);
	e->stats.points_in++;
}

static void drain_acc(struct alert_engine *e, const struct alert_rule *r, struct inst *in, int64_t now)
{
	if (!in->nacc)
		return;
	qsort(in->acc, in->nacc, sizeof(in->acc[0]), cmp_acc);
	for (size_t i = 0; i < in->nacc; i++) {
		const struct aacc *a = &in->acc[i];
		double v;
		switch (r->space_agg) {
		case ALERT_SPACE_SUM: v = a->sum; break;
		case ALERT_SPACE_MIN: v = a->min; break;
		case ALERT_SPACE_MAX: v = a->max; break;
		default: v = a->sum / a->n; break;
		}
		inst_add_point(e, in, a->ts, v);
	}
	in->nacc = 0;
	in->last_data = now;
	e->dirty = true; /* the window changed: persisted with the state */
}

/* ---- the window value ---- */

static double time_agg(enum alert_time_agg agg, const double *v, size_t n)
{
	if (!n)
		return NAN;
	double acc = agg == ALERT_TIME_LAST ? v[n - 1] : v[0];
	if (agg == ALERT_TIME_COUNT)
		return (double)n;
	if (agg == ALERT_TIME_LAST)
		return acc;
	for (size_t i = 1; i < n; i++) {
		if (agg == ALERT_TIME_MIN)
			acc = v[i] < acc ? v[i] : acc;
		else if (agg == ALERT_TIME_MAX)
			acc = v[i] > acc ? v[i] : acc;
		else
			acc += v[i];
	}
	return agg == ALERT_TIME_AVG ? acc / (double)n : acc;
}

static double slope(const struct apoint *p, size_t n)
{
	double tm = 0, vm = 0, num = 0, den = 0;
	for (size_t i = 0; i < n; i++) {
		tm += (double)(p[i].ts - p[0].ts);
		vm += p[i].v;
	}
	tm /= (double)n;
	vm /= (double)n;
	for (size_t i = 0; i < n; i++) {
		double dt = (double)(p[i].ts - p[0].ts) - tm;
		num += dt * (p[i].v - vm);
		den += dt * dt;
	}
	return den > 0 ? num / den : NAN;
}

/* Counter rate: per-second increase between consecutive points, each over
 * its own time span; an interval where the value went down is a counter
 * reset (the service restarted) and is left out rather than read as a drop. */
static double counter_rate(const struct alert_rule *r, const struct apoint *p, size_t n, double *v)
{
	size_t m = 0;
	for (size_t i = 0; i + 1 < n; i++)
		if (p[i + 1].v >= p[i].v)
			v[m++] = (p[i + 1].v - p[i].v) / (double)(p[i + 1].ts - p[i].ts);
	return time_agg(r->time_agg, v, m);
}

/* The points a rule sees at `now`: every closed bucket that ends inside
 * (now - window, now] (docs/ALERTS.md, Evaluation 2; a point stands for its whole
 * bucket and is stamped with its start). Transforms that compare points
 * (growth, deriv, rate, pct_change) also take the value at the window's
 * start: the bucket that ended there, so growth over 5m spans 5 minutes of
 * observations rather than the 4m50s between the first and last in-window
 * buckets. When that bucket is missing (the agent was down) the value is
 * interpolated between the last point before the window and the first one in
 * it, each at its own time (its bucket's end). Sets *first to the index in p
 * of the first in-window point. */
static size_t window_points(const struct alert_engine *e, const struct alert_rule *r, const struct inst *in,
			    int64_t now, struct apoint *p, size_t *first)
{
	int64_t res = e->resolution, start = now - r->window_s;
	bool want_base = r->transform != ALERT_TF_NONE, have_base = false;
	struct apoint base = { 0, 0 };
	size_t n = 1;
	for (size_t i = 0; i < in->rn; i++) {
		const struct apoint *pt = ring_at(in, i);
		int64_t end = pt->ts + res;
		if (end > now)
			continue;
		if (end > start) {
			p[n++] = *pt;
		} else if (want_base) {
			base = *pt;
			have_base = true;
		}
	}
	if (have_base && n > 1 && base.ts + res < start) {
		double f = (double)(start - (base.ts + res)) / (double)(p[1].ts - base.ts);
		base.v += (p[1].v - base.v) * f;
		base.ts = start - res;
	}
	*first = have_base ? 1 : 0;
	if (have_base)
		p[0] = base;
	else
		memmove(p, p + 1, --n * sizeof(*p));
	return n;
}

static double window_value(struct alert_engine *e, const struct alert_rule *r, const struct inst *in,
			   int64_t now)
{
	struct apoint *p = e->scratch;
	double *v = e->vals;
	size_t first;
	size_t n = window_points(e, r, in, now, p, &first);
	if (n <= first)
		return NAN;
	if (r->require_full_window && !first && p[0].ts > now - r->window_s + e->resolution)
		return NAN;
	switch (r->transform) {
	case ALERT_TF_NONE:
		for (size_t i = 0; i < n; i++)
			v[i] = p[i].v;
		return time_agg(r->time_agg, v, n);
	case ALERT_TF_GROWTH:
		return n < 2 ? NAN : p[n - 1].v - p[0].v;
	case ALERT_TF_DERIV:
		return n < 2 ? NAN : slope(p, n);
	case ALERT_TF_PCT_CHANGE:
		return n < 2 || p[0].v == 0 ? NAN : (p[n - 1].v - p[0].v) / fabs(p[0].v) * 100.0;
	case ALERT_TF_RATE:
		return n < 2 ? NAN : counter_rate(r, p, n, v);
	}
	return NAN;
}

/* ---- the state machine ---- */

static bool cmp_hit(enum alert_op op, double v, double thr)
{
	switch (op) {
	case ALERT_OP_GT: return v > thr;
	case ALERT_OP_GE: return v >= thr;
	case ALERT_OP_LT: return v < thr;
	case ALERT_OP_LE: return v <= thr;
	}
	return false;
}

/* The level the value asks for; hysteresis: a firing level is left only
 * once the value passes that level's recovery threshold. */
static enum alert_state target_level(const struct alert_rule *r, const struct inst *in, double v)
{
	double ct = in->level == ALERT_CRITICAL ? r->critical_recovery : r->critical;
	double wt = in->level >= ALERT_WARNING ? r->warning_recovery : r->warning;
	if (r->has_critical && cmp_hit(r->op, v, ct))
		return ALERT_CRITICAL;
	if (r->has_warning && cmp_hit(r->op, v, wt))
		return ALERT_WARNING;
	return ALERT_OK;
}

static bool firing(enum alert_state s)
{
	return s == ALERT_WARNING || s == ALERT_CRITICAL || s == ALERT_NO_DATA;
}

enum alert_op alert_op_negate(enum alert_op op)
{
	switch (op) {
	case ALERT_OP_GT: return ALERT_OP_LE;
	case ALERT_OP_GE: return ALERT_OP_LT;
	case ALERT_OP_LT: return ALERT_OP_GE;
	case ALERT_OP_LE: return ALERT_OP_GT;
	}
	return op;
}

static double level_threshold(const struct alert_rule *r, enum alert_state level)
{
	if (level == ALERT_CRITICAL || (level != ALERT_WARNING && !r->has_warning))
		return r->critical;
	return r->warning;
}

/* The comparator and threshold that decided the transition from -> to:
 * firing and renotify show the level's threshold and the rule's operator;
 * PENDING the threshold it is pending on; a recovery (or de-escalation) the
 * recovery threshold that was passed and the direction it was passed in
 * (">" recovers with "<="). */
static void decision(const struct alert_rule *r, const struct inst *in, enum alert_state from,
		     enum alert_state to, double *thr, enum alert_op *op)
{
	*op = r->op;
	switch (to) {
	case ALERT_CRITICAL:
	case ALERT_WARNING:
		if (from == ALERT_CRITICAL && to == ALERT_WARNING) {
			*thr = r->critical_recovery;
			*op = alert_op_negate(r->op);
		} else {
			*thr = level_threshold(r, to);
		}
		return;
	case ALERT_PENDING:
		*thr = level_threshold(r, in->pending_level);
		return;
	case ALERT_NO_DATA:
		*thr = NAN;
		return;
	default:
		break;
	}
	*op = alert_op_negate(r->op);
	if (from == ALERT_CRITICAL)
		*thr = r->has_warning ? r->warning_recovery : r->critical_recovery;
	else if (from == ALERT_WARNING)
		*thr = r->warning_recovery;
	else if (from == ALERT_PENDING)
		*thr = level_threshold(r, in->pending_level);
	else
		*thr = level_threshold(r, r->has_warning ? ALERT_WARNING : ALERT_CRITICAL);
}

void inst_decision(const struct alert_rule *r, const struct inst *in, double *thr, enum alert_op *op)
{
	decision(r, in, in->prev_state, in->state, thr, op);
}

/* No {{state}}: every notifier shows the state next to the message. */
static const char default_message[] = "{{rule}} on {{host}}: {{#is_no_data}}no data{{/is_no_data}}"
				      "{{^is_no_data}}value {{value}} {{comparator}} {{threshold}}{{/is_no_data}}";

static const char *const *copy_tags(struct arena *a, char **tags, size_t n)
{
	const char **v = arena_alloc(a, (n ? n : 1) * sizeof(*v));
	for (size_t i = 0; v && i < n; i++)
		if (!(v[i] = arena_strndup(a, tags[i], strlen(tags[i]))))
			return NULL;
	return v;
}

static int emit(struct alert_engine *e, const struct alert_rule *r, struct inst *in, enum alert_state from,
		int64_t now, struct alert_transitions *out)
{
	if (out->n == out->cap) {
		size_t cap = out->cap ? out->cap * 2 : 16;
		struct alert_transition *v = realloc(out->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		out->v = v;
		out->cap = cap;
	}
	struct alert_transition *t = &out->v[out->n];
	memset(t, 0, sizeof(*t));
	t->rule = r;
	t->rule_name = arena_strndup(&out->arena, r->name, strlen(r->name));
	t->host = arena_strndup(&out->arena, in->host, strlen(in->host));
	t->group_tags = copy_tags(&out->arena, in->gtags, in->ngtags);
	t->ngroup_tags = in->ngtags;
	t->from = from;
	t->to = in->state;
	t->renotify = from == in->state;
	t->resolved = firing(from) && !firing(in->state);
	t->notify = firing(in->state) || t->resolved;
	t->value = in->value;
	enum alert_op op;
	decision(r, in, from, in->state, &t->threshold, &op);
	t->comparator = alert_op_name(op);
	t->ts = now;
	t->since = in->firing_since;
	t->fingerprint = in->fp;
	memcpy(t->fingerprint_hex, in->fp_hex, sizeof(t->fingerprint_hex));
	if (!t->rule_name || !t->host || !t->group_tags)
		return -ENOMEM;
	struct buf b;
	buf_init(&b);
	alert_render(r->message ? r->message : default_message, t, &b);
	/* trim: folded YAML templates leave spaces around empty sections */
	const char *m = b.p ? b.p : "";
	size_t ml = b.len;
	while (ml && (*m == ' ' || *m == '\n'))
		m++, ml--;
	while (ml && (m[ml - 1] == ' ' || m[ml - 1] == '\n'))
		ml--;
	t->message = b.failed ? NULL : arena_strndup(&out->arena, m, ml);
	buf_done(&b);
	if (!t->message)
		return -ENOMEM;
	if (t->notify)
		in->last_notified = now;
	out->n++;
	e->stats.transitions++;
	return 1;
}

static int set_state(struct alert_engine *e, const struct alert_rule *r, struct inst *in,
		     enum alert_state to, int64_t now, struct alert_transitions *out)
{
	enum alert_state from = in->state;
	if (to == from)
		return 0;
	if (firing(to) && !firing(from))
		in->firing_since = now;
	in->prev_state = from;
	in->state = to;
	in->state_since = now;
	if (to == ALERT_WARNING || to == ALERT_CRITICAL)
		in->level = to;
	else if (to != ALERT_PENDING)
		in->level = ALERT_OK;
	if (to != ALERT_PENDING)
		in->cond_since = 0;
	in->recover_since = 0;
	e->dirty = true;
	return emit(e, r, in, from, now, out);
}

static int on_no_value(struct alert_engine *e, const struct alert_rule *r, struct inst *in, int64_t now,
		       struct alert_transitions *out)
{
	/* Not evaluable now (a missed flush, too few points): timers keep
	 * running, nothing resolves - unless data is missing for no_data.after. */
	if (now - in->last_data < r->no_data_after_s)
		return 0;
	switch (r->no_data_action) {
	case ALERT_NODATA_OK:
		return set_state(e, r, in, ALERT_OK, now, out);
	case ALERT_NODATA_NODATA:
		return set_state(e, r, in, ALERT_NO_DATA, now, out);
	case ALERT_NODATA_ALERT:
		return set_state(e, r, in, ALERT_CRITICAL, now, out);
	case ALERT_NODATA_KEEP:
		break;
	}
	return 0;
}

static int step(struct alert_engine *e, const struct alert_rule *r, struct inst *in, int64_t now,
		struct alert_transitions *out)
{
	double v = window_value(e, r, in, now);
	if (isnan(v))
		return on_no_value(e, r, in, now, out);
	in->value = v;
	enum alert_state cur = in->level, tgt = target_level(r, in, v);
	if (tgt > cur) {
		in->recover_since = 0;
		if (!in->cond_since)
			in->cond_since = now;
		in->pending_level = tgt;
		if (now - in->cond_since >= r->for_s)
			return set_state(e, r, in, tgt, now, out);
		if (in->state == ALERT_OK || in->state == ALERT_NO_DATA)
			return set_state(e, r, in, ALERT_PENDING, now, out);
		return 0;
	}
	in->cond_since = 0;
	if (tgt < cur) {
		if (!in->recover_since)
			in->recover_since = now;
		if (now - in->recover_since >= r->keep_firing_for_s)
			return set_state(e, r, in, tgt, now, out);
		return 0;
	}
	in->recover_since = 0;
	if (in->state == ALERT_PENDING || in->state == ALERT_NO_DATA)
		return set_state(e, r, in, ALERT_OK, now, out);
	return 0;
}

static int renotify(struct alert_engine *e, const struct alert_rule *r, struct inst *in, int64_t now,
		    struct alert_transitions *out)
{
	if (!r->renotify_s || !firing(in->state) || now - in->last_notified < r->renotify_s)
		return 0;
	return emit(e, r, in, in->state, now, out);
}

/* Grouped instances that are OK and silent for no_data.after + window go away. */
static void expire(struct rule_rt *rt, int64_t now)
{
	const struct alert_rule *r = rt->rule;
	if (!r->ngroup_by)
		return;
	for (size_t i = 0; i < rt->n;) {
		struct inst *in = rt->v[i];
		if (in->state == ALERT_OK && now - in->last_data > r->no_data_after_s + r->window_s) {
			inst_free(in);
			rt->v[i] = rt->v[--rt->n];
			continue;
		}
		i++;
	}
}

static void route_batch(struct alert_engine *e, const struct batch *b)
{
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		uint64_t h = hash64(s->name, strlen(s->name));
		for (size_t k = 0; k < e->rules->n; k++) {
			const struct alert_rule *r = e->rt[k].rule;
			if (r->metric_hash == h && strcmp(r->metric, s->name) == 0 && series_match(r, s))
				route(e, &e->rt[k], s);
		}
	}
}

int alert_eval(struct alert_engine *e, const struct batch *b, int64_t now, struct alert_transitions *out)
{
	int total = 0;
	e->stats.evals++;
	e->last_now = now;
	if (b)
		route_batch(e, b);
	for (size_t k = 0; k < e->rules->n; k++) {
		struct rule_rt *rt = &e->rt[k];
		for (size_t i = 0; i < rt->n; i++) {
			struct inst *in = rt->v[i];
			drain_acc(e, rt->rule, in, now);
			int rc = step(e, rt->rule, in, now, out);
			if (rc >= 0) {
				total += rc;
				rc = renotify(e, rt->rule, in, now, out);
			}
			if (rc < 0)
				return rc;
			total += rc;
		}
		expire(rt, now);
	}
	if (e->dirty && e->state_path) {
		if (state_write(e, now) == 0)
			e->dirty = false;
	} else {
		e->dirty = false;
	}
	return total;
}
