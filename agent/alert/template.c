/*
 * template.c - renders rule messages: Datadog-style {{variables}} and
 * {{#is_alert}}...{{/is_alert}} sections (mustache subset).
 *
 * Called by eval.c for every transition and by notify/ through
 * alert_render. Pure: writes into a caller-owned struct buf.
 */
#include "alert/alert.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define TMPL_MAX_DEPTH 8

void alert_format_value(double v, char *out, size_t n)
{
	if (isnan(v)) {
		snprintf(out, n, "N/A");
	} else if (fabs(v) < 1e15 && v == floor(v)) {
		snprintf(out, n, "%.0f", v);
	} else if (fabs(v) >= 0.01 && fabs(v) < 1e15) {
		snprintf(out, n, "%.2f", v);
		size_t len = strlen(out);
		while (len > 0 && out[len - 1] == '0')
			out[--len] = '\0';
		if (len > 0 && out[len - 1] == '.')
			out[--len] = '\0';
	} else {
		snprintf(out, n, "%.6g", v);
	}
}

static bool section_true(const struct alert_transition *t, const char *name, size_t n)
{
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(name, lit, n) == 0)
	if (IS("is_alert"))
		return t->to == ALERT_CRITICAL;
	if (IS("is_warning"))
		return t->to == ALERT_WARNING;
	if (IS("is_recovery"))
		return t->resolved;
	if (IS("is_no_data"))
		return t->to == ALERT_NO_DATA;
	if (IS("is_renotify"))
		return t->renotify;
	if (IS("is_pending"))
		return t->to == ALERT_PENDING;
#undef IS
	return false;
}

static void put_group(const struct alert_transition *t, const char *key, size_t kl, struct buf *out)
{
	for (size_t i = 0; i < t->ngroup_tags; i++) {
		const char *g = t->group_tags[i];
		if (strncmp(g, key, kl) == 0 && g[kl] == ':') {
			buf_puts(out, g + kl + 1);
			return;
		}
	}
}

static void put_label(const struct alert_transition *t, const char *key, size_t kl, struct buf *out)
{
	const struct alert_rule *r = t->rule;
	for (size_t i = 0; r && i < r->nlabels; i++) {
		if (strlen(r->label_keys[i]) == kl && memcmp(r->label_keys[i], key, kl) == 0) {
			buf_puts(out, r->label_values[i]);
			return;
		}
	}
}

static void put_var(const struct alert_transition *t, const char *v, size_t n, struct buf *out)
{
	char num[64];
#define IS(lit) (n == sizeof(lit) - 1 && memcmp(v, lit, n) == 0)
	if (IS("rule")) {
		buf_puts(out, t->rule_name);
	} else if (IS("host")) {
		buf_puts(out, t->host);
	} else if (IS("value")) {
		alert_format_value(t->value, num, sizeof(num));
		buf_puts(out, num);
	} else if (IS("threshold")) {
		alert_format_value(t->threshold, num, sizeof(num));
		buf_puts(out, num);
	} else if (IS("comparator")) {
		buf_puts(out, t->comparator);
	} else if (IS("state")) {
		buf_puts(out, alert_state_name(t->to));
	} else if (IS("last_state")) {
		buf_puts(out, alert_state_name(t->from));
	} else if (IS("fingerprint")) {
		buf_puts(out, t->fingerprint_hex);
	} else if (IS("group")) {
		for (size_t i = 0; i < t->ngroup_tags; i++) {
			if (i)
				buf_puts(out, ", ");
			buf_puts(out, t->group_tags[i]);
		}
	} else if (n > 6 && memcmp(v, "group.", 6) == 0) {
		put_group(t, v + 6, n - 6, out);
	} else if (n > 6 && memcmp(v, "label.", 6) == 0) {
		put_label(t, v + 6, n - 6, out);
	}
#undef IS
}

/* Finds "{{/name}}" in [p, end); returns its start or NULL. */
static const char *find_close(const char *p, const char *end, const char *name, size_t n)
{
	for (; p + n + 5 <= end; p++)
		if (p[0] == '{' && p[1] == '{' && p[2] == '/' && memcmp(p + 3, name, n) == 0 &&
		    p[3 + n] == '}' && p[4 + n] == '}')
			return p;
	return NULL;
}

static void render(const char *p, const char *end, const struct alert_transition *t, struct buf *out,
		   int depth)
{
	while (p < end) {
		const char *open = NULL;
		for (const char *q = p; q + 1 < end; q++)
			if (q[0] == '{' && q[1] == '{') {
				open = q;
				break;
			}
		const char *close = NULL;
		if (open)
			for (const char *q = open + 2; q + 1 < end; q++)
				if (q[0] == '}' && q[1] == '}') {
					close = q;
					break;
				}
		if (!open || !close) {
			buf_append(out, p, (size_t)(end - p));
			return;
		}
		buf_append(out, p, (size_t)(open - p));
		const char *name = open + 2;
		while (name < close && *name == ' ')
			name++;
		const char *ne = close;
		while (ne > name && ne[-1] == ' ')
			ne--;
		size_t n = (size_t)(ne - name);
		p = close + 2;
		if (n && (name[0] == '#' || name[0] == '^')) {
			const char *sec_end = find_close(p, end, name + 1, n - 1);
			if (!sec_end)
				continue; /* unbalanced: drop the tag */
			bool want = name[0] == '#';
			if (section_true(t, name + 1, n - 1) == want && depth < TMPL_MAX_DEPTH)
				render(p, sec_end, t, out, depth + 1);
			p = sec_end + n + 4;
		} else if (n && name[0] != '/') {
			put_var(t, name, n, out);
		}
	}
}

int alert_render(const char *tmpl, const struct alert_transition *t, struct buf *out)
{
	render(tmpl, tmpl + strlen(tmpl), t, out, 0);
	return out->failed ? -ENOMEM : 0;
}
