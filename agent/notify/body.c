/*
 * body.c - pure builders of the notification bodies: Slack incoming
 * webhook, PagerDuty Events API v2 and the Alertmanager webhook v4 body,
 * plus URL redaction and time formatting.
 *
 * Called by notify.c and the unit tests. No I/O, no globals.
 */
#include "notify/notify.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <time.h>

#include "core/json.h"

#define PD_SUMMARY_MAX 1024	/* PagerDuty truncates summaries at 1024 chars */

const char *notify_type_name(enum notify_type t)
{
	static const char *const n[] = { "slack", "pagerduty", "webhook" };
	return (unsigned)t <= NOTIFY_WEBHOOK ? n[t] : "unknown";
}

void notify_format_time(int64_t ts, char *out, size_t n)
{
	if (ts <= 0) {
		snprintf(out, n, "0001-01-01T00:00:00Z");
		return;
	}
	time_t tt = (time_t)ts;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void notify_redact_url(const char *url, char *out, size_t n)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *at = NULL;
	for (const char *q = p; *q && *q != '/' && *q != '?' && *q != '#'; q++)
		if (*q == '@')
			at = q; /* user:password@host */
	const char *host = at ? at + 1 : p;
	size_t hl = strcspn(host, "/?#");
	size_t sl = (size_t)(p - url);
	snprintf(out, n, "%.*s%.*s%s", (int)sl, url, (int)hl, host, host[hl] ? "/..." : "");
}

static const char *severity(const struct alert_transition *t)
{
	enum alert_state s = t->resolved ? t->from : t->to;
	if (s == ALERT_CRITICAL)
		return "critical";
	if (s == ALERT_WARNING)
		return "warning";
	return "info";
}

static const char *headline(const struct alert_transition *t)
{
	if (t->resolved)
		return "RESOLVED";
	return alert_state_name(t->to);
}

/* A Slack block: {"type": type, ... (the caller closes it). */
static void block_begin(struct jw *w, const char *type)
{
	jw_obj_begin(w);
	jw_key(w, "type");
	jw_str(w, type);
}

/* A Slack text object {"type": "mrkdwn", "text": text}. */
static void mrkdwn(struct jw *w, const struct buf *text)
{
	block_begin(w, "mrkdwn");
	jw_key(w, "text");
	jw_strn(w, text->p ? text->p : "", text->len);
	jw_obj_end(w);
}

int notify_body_slack(const struct alert_transition *t, struct buf *out)
{
	static const char *const emoji[] = { ":white_check_mark:", ":hourglass:", ":warning:", ":rotating_light:",
					     ":grey_question:" };
	struct buf text;
	struct jw w;
	char val[64];
	buf_init(&text);
	buf_printf(&text, "%s [%s] %s", t->resolved ? emoji[0] : emoji[t->to], headline(t), t->message);
	alert_format_value(t->value, val, sizeof(val));
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "text");
	jw_strn(&w, text.p ? text.p : "", text.len);
	jw_key(&w, "blocks");
	jw_arr_begin(&w);
	block_begin(&w, "section");
	jw_key(&w, "text");
	mrkdwn(&w, &text);
	jw_obj_end(&w);
	buf_reset(&text);
	buf_printf(&text, "rule `%s` | host `%s` | value %s | fingerprint %s", t->rule_name, t->host, val,
		   t->fingerprint_hex);
	block_begin(&w, "context");
	jw_key(&w, "elements");
	jw_arr_begin(&w);
	mrkdwn(&w, &text);
	jw_arr_end(&w);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	bool failed = text.failed;
	buf_done(&text);
	return failed || out->failed ? -ENOMEM : 0;
}

/* Group tags as an object {"key": "value"}. */
static void group_object(struct jw *w, const struct alert_transition *t)
{
	for (size_t i = 0; i < t->ngroup_tags; i++) {
		const char *g = t->group_tags[i], *c = strchr(g, ':');
		char key[256];
		size_t kl = c ? (size_t)(c - g) : strlen(g);
		snprintf(key, sizeof(key), "%.*s", (int)kl, g);
		jw_key(w, key);
		jw_str(w, c ? c + 1 : "");
	}
}

static void rule_labels(struct jw *w, const struct alert_transition *t)
{
	for (size_t i = 0; t->rule && i < t->rule->nlabels; i++) {
		jw_key(w, t->rule->label_keys[i]);
		jw_str(w, t->rule->label_values[i]);
	}
}

int notify_body_pagerduty(const struct alert_transition *t, const char *routing_key, struct buf *out)
{
	struct jw w;
	char ts[40];
	size_t ml = strlen(t->message);
	notify_format_time(t->ts, ts, sizeof(ts));
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "routing_key");
	jw_str(&w, routing_key);
	jw_key(&w, "event_action");
	jw_str(&w, t->resolved ? "resolve" : "trigger");
	jw_key(&w, "dedup_key");
	jw_str(&w, t->fingerprint_hex);
	jw_key(&w, "payload");
	jw_obj_begin(&w);
	jw_key(&w, "summary");
	jw_strn(&w, t->message, ml > PD_SUMMARY_MAX ? PD_SUMMARY_MAX : ml);
	jw_key(&w, "source");
	jw_str(&w, t->host);
	jw_key(&w, "severity");
	jw_str(&w, severity(t));
	jw_key(&w, "timestamp");
	jw_str(&w, ts);
	jw_key(&w, "component");
	jw_str(&w, t->rule_name);
	jw_key(&w, "custom_details");
	jw_obj_begin(&w);
	jw_key(&w, "rule");
	jw_str(&w, t->rule_name);
	jw_key(&w, "state");
	jw_str(&w, alert_state_name(t->to));
	jw_key(&w, "previous_state");
	jw_str(&w, alert_state_name(t->from));
	jw_key(&w, "value");
	jw_double(&w, t->value);
	jw_key(&w, "comparator");
	jw_str(&w, t->comparator);
	jw_key(&w, "threshold");
	jw_double(&w, t->threshold);
	jw_key(&w, "group");
	jw_obj_begin(&w);
	group_object(&w, t);
	jw_obj_end(&w);
	jw_key(&w, "labels");
	jw_obj_begin(&w);
	rule_labels(&w, t);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	jw_obj_end(&w);
	return out->failed ? -ENOMEM : 0;
}

static bool rule_has_label(const struct alert_transition *t, const char *key)
{
	for (size_t i = 0; t->rule && i < t->rule->nlabels; i++)
		if (strcmp(t->rule->label_keys[i], key) == 0)
			return true;
	return false;
}

/* alertname, group tags, host, rule labels, severity (unless a label sets it). */
static void am_labels(struct jw *w, const struct alert_transition *t)
{
	jw_obj_begin(w);
	jw_key(w, "alertname");
	jw_str(w, t->rule_name);
	group_object(w, t);
	bool grouped_host = false;
	for (size_t i = 0; i < t->ngroup_tags; i++)
		grouped_host |= strncmp(t->group_tags[i], "host:", 5) == 0;
	if (!grouped_host && !rule_has_label(t, "host")) {
		jw_key(w, "host");
		jw_str(w, t->host);
	}
	rule_labels(w, t);
	if (!rule_has_label(t, "severity")) {
		jw_key(w, "severity");
		jw_str(w, severity(t));
	}
	jw_obj_end(w);
}

static void am_annotations(struct jw *w, const struct alert_transition *t)
{
	char v[64];
	jw_obj_begin(w);
	jw_key(w, "summary");
	jw_str(w, t->message);
	jw_key(w, "value");
	alert_format_value(t->value, v, sizeof(v));
	jw_str(w, v);
	jw_key(w, "comparator");
	jw_str(w, t->comparator);
	jw_key(w, "threshold");
	alert_format_value(t->threshold, v, sizeof(v));
	jw_str(w, v);
	jw_key(w, "state");
	jw_str(w, alert_state_name(t->to));
	jw_obj_end(w);
}

int notify_body_webhook(const struct alert_transition *t, const char *receiver, struct buf *out)
{
	struct jw w;
	struct buf gk;
	char starts[40], ends[40];
	const char *status = t->resolved ? "resolved" : "firing";
	buf_init(&gk);
	buf_printf(&gk, "{}:{alertname=\"%s\"}", t->rule_name);
	notify_format_time(t->since > 0 ? t->since : t->ts, starts, sizeof(starts));
	notify_format_time(t->resolved ? t->ts : 0, ends, sizeof(ends));
	jw_init(&w, out);
	jw_obj_begin(&w);
	jw_key(&w, "version");
	jw_str(&w, "4");
	jw_key(&w, "groupKey");
	jw_strn(&w, gk.p ? gk.p : "", gk.len);
	jw_key(&w, "truncatedAlerts");
	jw_int(&w, 0);
	jw_key(&w, "status");
	jw_str(&w, status);
	jw_key(&w, "receiver");
	jw_str(&w, receiver);
	jw_key(&w, "groupLabels");
	jw_obj_begin(&w);
	jw_key(&w, "alertname");
	jw_str(&w, t->rule_name);
	jw_obj_end(&w);
	jw_key(&w, "commonLabels");
	am_labels(&w, t);
	jw_key(&w, "commonAnnotations");
	am_annotations(&w, t);
	jw_key(&w, "externalURL");
	jw_str(&w, "");
	jw_key(&w, "alerts");
	jw_arr_begin(&w);
	jw_obj_begin(&w);
	jw_key(&w, "status");
	jw_str(&w, status);
	jw_key(&w, "labels");
	am_labels(&w, t);
	jw_key(&w, "annotations");
	am_annotations(&w, t);
	jw_key(&w, "startsAt");
	jw_str(&w, starts);
	jw_key(&w, "endsAt");
	jw_str(&w, ends);
	jw_key(&w, "generatorURL");
	jw_str(&w, "");
	jw_key(&w, "fingerprint");
	jw_str(&w, t->fingerprint_hex);
	jw_obj_end(&w);
	jw_arr_end(&w);
	jw_obj_end(&w);
	bool failed = gk.failed;
	buf_done(&gk);
	return failed || out->failed ? -ENOMEM : 0;
}
