/*
 * export.c - the agent's own alert metrics: alert_engine_append_metrics
 * adds `dd_mini_agent.alerts.state` gauges, `dd_mini_agent.alert` service
 * checks and `dd_mini_agent.alerts.groups_refused` to a flush batch.
 *
 * Called by agent.c before the batch is encoded and forwarded. Strings are
 * copied into the batch's arena. Not thread-safe.
 */
#include "alert/alert_int.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXPORT_MAX_TAGS 24

static int cmp_sv(const void *a, const void *b)
{
	return sv_cmp(*(const struct sv *)a, *(const struct sv *)b);
}

static void lower(char *dst, const char *src, size_t n)
{
	size_t i = 0;
	for (; src[i] && i + 1 < n; i++)
		dst[i] = (char)tolower((unsigned char)src[i]);
	dst[i] = '\0';
}

static int check_status(enum alert_state s)
{
	switch (s) {
	case ALERT_WARNING: return CHECK_WARNING;
	case ALERT_CRITICAL: return CHECK_CRITICAL;
	case ALERT_NO_DATA: return CHECK_UNKNOWN;
	default: return CHECK_OK;
	}
}

static int add_instance(struct batch *b, const struct alert_rule *r, const struct inst *in, int64_t now)
{
	char rule_tag[256], state_tag[64], st[32], val[64];
	struct sv tags[EXPORT_MAX_TAGS];
	size_t nt = 0;
	lower(st, alert_state_name(in->state), sizeof(st));
	snprintf(rule_tag, sizeof(rule_tag), "rule:%s", r->name);
	snprintf(state_tag, sizeof(state_tag), "state:%s", st);
	tags[nt++] = sv_from_cstr(rule_tag);
	for (size_t i = 0; i < in->ngtags && nt < EXPORT_MAX_TAGS - 1; i++)
		if (strncmp(in->gtags[i], "host:", 5) != 0)
			tags[nt++] = sv_from_cstr(in->gtags[i]);
	/* the check carries the tags without state:, the gauge with it */
	qsort(tags, nt, sizeof(tags[0]), cmp_sv);
	const char *const *ctags = batch_tags(b, tags, nt);
	tags[nt++] = sv_from_cstr(state_tag);
	qsort(tags, nt, sizeof(tags[0]), cmp_sv);
	const char *const *stags = batch_tags(b, tags, nt);
	const char *host = batch_str(b, sv_from_cstr(in->host));
	alert_format_value(in->value, val, sizeof(val));
	char msg[512], thr[64];
	double tv;
	enum alert_op op;
	inst_decision(r, in, &tv, &op);
	alert_format_value(tv, thr, sizeof(thr));
	if (in->state == ALERT_NO_DATA)
		snprintf(msg, sizeof(msg), "%s is NO_DATA: no value", r->name);
	else
		snprintf(msg, sizeof(msg), "%s is %s: value %s %s %s", r->name, alert_state_name(in->state), val,
			 alert_op_name(op), thr);
	const char *m = batch_str(b, sv_from_cstr(msg));
	if (!ctags || !stags || !host || !m)
		return -ENOMEM;
	struct series s = {
		.name = ALERT_STATE_METRIC, .host = host, .tags = stags, .ntags = (uint32_t)nt,
		.kind = SERIES_GAUGE, .interval = 0, .ts = now, .value = 1.0,
	};
	struct check_rec c = {
		.name = ALERT_CHECK_NAME, .status = check_status(in->state), .ts = now, .host = host,
		.message = m, .tags = ctags, .ntags = (uint32_t)(nt - 1),
	};
	int rc = batch_add_series(b, &s);
	return rc < 0 ? rc : batch_add_check(b, &c);
}

static int add_refused(struct batch *b, const struct alert_engine *e, const struct rule_rt *rt, int64_t now)
{
	char rule_tag[256];
	snprintf(rule_tag, sizeof(rule_tag), "rule:%s", rt->rule->name);
	struct sv tag = sv_from_cstr(rule_tag);
	const char *const *tags = batch_tags(b, &tag, 1);
	const char *host = batch_str(b, sv_from_cstr(e->hostname));
	if (!tags || !host)
		return -ENOMEM;
	struct series s = {
		.name = "dd_mini_agent.alerts.groups_refused", .host = host, .tags = tags, .ntags = 1,
		.kind = SERIES_GAUGE, .ts = now, .value = (double)rt->refused,
	};
	return batch_add_series(b, &s);
}

int alert_engine_append_metrics(const struct alert_engine *e, struct batch *b, int64_t now)
{
	for (size_t k = 0; k < e->rules->n; k++) {
		const struct rule_rt *rt = &e->rt[k];
		for (size_t i = 0; i < rt->n; i++) {
			int rc = add_instance(b, rt->rule, rt->v[i], now);
			if (rc < 0)
				return rc;
		}
		if (rt->refused) {
			int rc = add_refused(b, e, rt, now);
			if (rc < 0)
				return rc;
		}
	}
	return 0;
}
