/*
 * notify.c - notifier destinations (parsed from the `notifiers:` map) and
 * asynchronous delivery: token bucket, capped queue, retries with backoff
 * on libevent timers, Retry-After, per-destination counters.
 *
 * Called by agent.c on the loop thread. Sends through forward/http.h; logs
 * failures rate-limited with redacted URLs (never keys or full URLs).
 */
#include "notify/notify.h"

#include <errno.h>
#include <event2/event.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "config/yaml.h"
#include "core/log.h"
#include "forward/http.h"

#define NOTIFY_MAX_DESTS 256

struct dest {
	char *name;
	enum notify_type type;
	char *url;
	char *routing_key;
	char redacted[160];
	bool send_resolved;
	double tokens;
	int64_t refill_at;
	struct notify_stats st;
};

struct delivery {
	struct notifier_set *set;	/* NULL once orphaned by notify_free */
	struct dest *d;
	char *body;
	size_t len;
	int attempt;
	bool in_flight;
	struct event *timer;
	struct delivery *prev, *next;
};

struct notifier_set {
	struct event_base *base;
	struct http_client *http;
	struct dest *d;
	size_t n;
	struct notify_options opt;
	struct delivery *live;		/* waiting or in flight */
};

static const struct notify_options default_options = {
	.rate_per_s = 1.0, .burst = 10.0, .queue_max = 100, .max_attempts = 5,
	.backoff_unit_s = 1.0, .backoff_max_s = 60.0, .retry_after_max_s = 300.0, .timeout_ms = 10000,
};

__attribute__((format(printf, 5, 6)))
static void report(struct config_diag *diag, bool is_error, const char *file, unsigned line,
		   const char *fmt, ...)
{
	char msg[512], full[800];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!diag)
		return;
	snprintf(full, sizeof(full), "%s:%u: %s", file, line, msg);
	if (is_error)
		diag->errors++;
	else
		diag->warnings++;
	if (diag->report)
		diag->report(diag->ctx, is_error, full);
}

static bool url_ok(const char *u)
{
	return (strncmp(u, "http://", 7) == 0 && u[7]) || (strncmp(u, "https://", 8) == 0 && u[8]);
}

static int read_dest(struct dest *d, const char *name, const struct ynode *m, const char *file,
		     struct config_diag *diag)
{
	static const char *const types[] = { "slack", "pagerduty", "webhook" };
	int errs = 0;
	d->send_resolved = true;
	if (!(d->name = strdup(name)))
		return -ENOMEM;
	if (!m || m->kind != YNODE_MAP) {
		report(diag, true, file, m ? m->line : 0, "notifiers.%s: expected a map {type, url}", name);
		return -EINVAL;
	}
	const char *type = ynode_str(ynode_get(m, "type"));
	int t = -1;
	for (int i = 0; type && i < 3; i++)
		if (strcmp(type, types[i]) == 0)
			t = i;
	if (t < 0) {
		report(diag, true, file, m->line, "notifiers.%s.type: expected slack|pagerduty|webhook", name);
		return -EINVAL;
	}
	d->type = (enum notify_type)t;
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i]->str;
		const struct ynode *v = m->items[i];
		if (strcmp(k, "type") == 0)
			continue;
		if (strcmp(k, "url") == 0 || strcmp(k, "routing_key") == 0) {
			const char *s = ynode_str(v);
			if (!s || !*s || (k[0] == 'u' && !url_ok(s))) {
				report(diag, true, file, v->line, "notifiers.%s.%s: expected %s", name, k,
				       k[0] == 'u' ? "an http:// or https:// URL" : "a non-empty string");
				errs++;
				continue;
			}
			char **dst = k[0] == 'u' ? &d->url : &d->routing_key;
			free(*dst);
			if (!(*dst = strdup(s)))
				return -ENOMEM;
		} else if (strcmp(k, "send_resolved") == 0) {
			if (ynode_bool(v, &d->send_resolved) < 0) {
				report(diag, true, file, v->line, "notifiers.%s.send_resolved: expected true or false", name);
				errs++;
			}
		} else {
			report(diag, false, file, m->keys[i]->line, "notifiers.%s.%s: unknown key (ignored)", name, k);
		}
	}
	if (d->type == NOTIFY_PAGERDUTY && !d->url && !(d->url = strdup(NOTIFY_PAGERDUTY_URL)))
		return -ENOMEM;
	if (!d->url && !ynode_get(m, "url")) {
		report(diag, true, file, m->line, "notifiers.%s.url: missing", name);
		errs++;
	}
	if (d->type == NOTIFY_PAGERDUTY && !d->routing_key) {
		report(diag, true, file, m->line, "notifiers.%s.routing_key: missing", name);
		errs++;
	}
	if (d->url)
		notify_redact_url(d->url, d->redacted, sizeof(d->redacted));
	return errs ? -EINVAL : 0;
}

static void dest_done(struct dest *d)
{
	free(d->name);
	free(d->url);
	free(d->routing_key);
}

struct notifier_set *notify_new(struct event_base *base, struct http_client *http,
				const struct ynode *map, const char *file, struct config_diag *diag)
{
	struct notifier_set *s = calloc(1, sizeof(*s));
	int rc = 0;
	if (!s)
		return NULL;
	s->base = base;
	s->http = http;
	s->opt = default_options;
	if (map && !ynode_is_null(map) && map->kind != YNODE_MAP) {
		report(diag, true, file, map->line, "notifiers: expected a map of name: {type, url}");
		rc = -EINVAL;
	} else if (map && map->kind == YNODE_MAP) {
		if (map->n > NOTIFY_MAX_DESTS) {
			report(diag, true, file, map->line, "notifiers: more than %d", NOTIFY_MAX_DESTS);
			rc = -EINVAL;
		} else if (!(s->d = calloc(map->n ? map->n : 1, sizeof(*s->d)))) {
			rc = -ENOMEM;
		}
		for (size_t i = 0; rc != -ENOMEM && s->d && i < map->n; i++) {
			struct dest *d = &s->d[s->n++];
			int e = read_dest(d, map->keys[i]->str, map->items[i], file, diag);
			d->tokens = s->opt.burst;
			if (e < 0)
				rc = e;
		}
	}
	if (rc < 0) {
		notify_free(s);
		return NULL;
	}
	return s;
}

struct notifier_set *notify_new_from_file(struct event_base *base, struct http_client *http, const char *path,
					  struct config_diag *diag)
{
	struct ydoc *doc = NULL;
	char err[512];
	FILE *probe = fopen(path, "r");
	if (!probe && errno == ENOENT)
		return notify_new(base, http, NULL, path, diag);
	if (probe)
		fclose(probe);
	if (ydoc_load_file(path, &doc, err, sizeof(err)) < 0) {
		if (diag) {
			diag->errors++;
			if (diag->report)
				diag->report(diag->ctx, true, err);
		}
		return NULL;
	}
	const struct ynode *root = doc->root, *map = NULL;
	if (root && root->kind == YNODE_MAP) {
		map = ynode_get(root, "notifiers");
		for (size_t i = 0; i < root->n; i++)
			if (strcmp(root->keys[i]->str, "notifiers") != 0)
				report(diag, false, path, root->keys[i]->line, "%s: unknown top-level key (ignored)",
				       root->keys[i]->str);
	} else if (root) {
		report(diag, true, path, root->line, "notifiers: expected a map with a notifiers: key");
		ydoc_free(doc);
		return NULL;
	}
	struct notifier_set *s = notify_new(base, http, map, path, diag);
	ydoc_free(doc);
	return s;
}

static void delivery_free(struct delivery *dl)
{
	if (dl->timer)
		event_free(dl->timer);
	free(dl->body);
	free(dl);
}

static void unlink_delivery(struct notifier_set *s, struct delivery *dl)
{
	if (dl->prev)
		dl->prev->next = dl->next;
	else
		s->live = dl->next;
	if (dl->next)
		dl->next->prev = dl->prev;
	dl->prev = dl->next = NULL;
	dl->d->st.queued--;
}

void notify_free(struct notifier_set *s)
{
	if (!s)
		return;
	struct delivery *dl = s->live, *next;
	for (; dl; dl = next) {
		next = dl->next;
		if (dl->in_flight) {
			dl->set = NULL; /* the completion callback frees it */
			if (dl->timer) {
				event_free(dl->timer);
				dl->timer = NULL;
			}
		} else {
			delivery_free(dl);
		}
	}
	for (size_t i = 0; i < s->n; i++)
		dest_done(&s->d[i]);
	free(s->d);
	free(s);
}

void notify_set_options(struct notifier_set *s, const struct notify_options *o)
{
	s->opt = *o;
	for (size_t i = 0; i < s->n; i++)
		s->d[i].tokens = o->burst;
}

static struct dest *find_dest(const struct notifier_set *s, const char *name)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (strcmp(s->d[i].name, name) == 0)
			return &s->d[i];
	return NULL;
}

bool notify_has(const struct notifier_set *s, const char *name)
{
	return find_dest(s, name) != NULL;
}

size_t notify_count(const struct notifier_set *s)
{
	return s ? s->n : 0;
}

unsigned notify_check_rules(const struct notifier_set *s, const struct alert_rules *rules,
			    struct config_diag *diag)
{
	unsigned bad = 0;
	for (size_t i = 0; rules && i < rules->n; i++) {
		const struct alert_rule *r = &rules->v[i];
		for (size_t k = 0; k < r->nnotify; k++) {
			if (notify_has(s, r->notify[k]))
				continue;
			report(diag, true, r->file, r->notify_lines ? r->notify_lines[k] : r->line,
			       "notify: rule %s: unknown notifier '%s' (define it under notifiers:)", r->name,
			       r->notify[k]);
			bad++;
		}
	}
	return bad;
}

size_t notify_stats_each(const struct notifier_set *s,
			 void (*fn)(void *ctx, const char *name, enum notify_type type, const struct notify_stats *st),
			 void *ctx)
{
	for (size_t i = 0; s && i < s->n; i++)
		fn(ctx, s->d[i].name, s->d[i].type, &s->d[i].st);
	return s ? s->n : 0;
}

void notify_stats_total(const struct notifier_set *s, struct notify_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; s && i < s->n; i++) {
		out->sent += s->d[i].st.sent;
		out->failed += s->d[i].st.failed;
		out->retried += s->d[i].st.retried;
		out->rate_limited += s->d[i].st.rate_limited;
		out->dropped += s->d[i].st.dropped;
		out->queued += s->d[i].st.queued;
	}
}

/* ---- delivery ---- */

static void send_now(struct delivery *dl);

static void finish(struct delivery *dl)
{
	unlink_delivery(dl->set, dl);
	delivery_free(dl);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	send_now(arg);
}

static void retry_or_fail(struct delivery *dl, long status, double retry_after, const char *why)
{
	struct notifier_set *s = dl->set;
	struct dest *d = dl->d;
	bool retryable = status == 0 || status == 408 || status == 429 || status >= 500;
	if (!retryable || dl->attempt >= s->opt.max_attempts || !s->base) {
		d->st.failed++;
		log_limited(LOG_LVL_WARN, "notify: %s (%s, %s): giving up after %d attempt(s): %s", d->name,
			    notify_type_name(d->type), d->redacted, dl->attempt, why);
		finish(dl);
		return;
	}
	double delay = s->opt.backoff_unit_s * ldexp(1.0, dl->attempt);
	if (delay > s->opt.backoff_max_s)
		delay = s->opt.backoff_max_s;
	if ((status == 429 || status == 503) && retry_after >= 0)
		delay = retry_after < s->opt.retry_after_max_s ? retry_after : s->opt.retry_after_max_s;
	if (!dl->timer && !(dl->timer = evtimer_new(s->base, on_timer, dl))) {
		d->st.failed++;
		finish(dl);
		return;
	}
	struct timeval tv = { (time_t)delay, (suseconds_t)((delay - floor(delay)) * 1e6) };
	d->st.retried++;
	evtimer_add(dl->timer, &tv);
}

static void on_done(void *arg, const struct http_response *resp)
{
	struct delivery *dl = arg;
	char why[160];
	dl->in_flight = false;
	if (!dl->set) {
		delivery_free(dl);
		return;
	}
	if (resp->status >= 200 && resp->status < 300) {
		dl->d->st.sent++;
		finish(dl);
		return;
	}
	if (resp->status)
		snprintf(why, sizeof(why), "HTTP %ld", resp->status);
	else
		snprintf(why, sizeof(why), "%s", resp->error ? resp->error : "transport error");
	retry_or_fail(dl, resp->status, resp->retry_after_s, why);
}

static void send_now(struct delivery *dl)
{
	struct notifier_set *s = dl->set;
	static const char *const headers[] = { "Content-Type: application/json" };
	struct http_request req = {
		.method = "POST", .url = dl->d->url, .headers = headers, .nheaders = 1,
		.body = dl->body, .body_len = dl->len, .timeout_ms = s->opt.timeout_ms,
	};
	dl->attempt++;
	dl->in_flight = true;
	int rc = http_client_send(s->http, &req, on_done, dl);
	if (rc < 0) {
		dl->in_flight = false;
		retry_or_fail(dl, 0, -1, strerror(-rc));
	}
}

static bool take_token(struct notifier_set *s, struct dest *d, int64_t now)
{
	if (d->refill_at == 0)
		d->refill_at = now;
	if (now > d->refill_at) {
		d->tokens += (double)(now - d->refill_at) * s->opt.rate_per_s;
		if (d->tokens > s->opt.burst)
			d->tokens = s->opt.burst;
		d->refill_at = now;
	}
	if (d->tokens < 1.0)
		return false;
	d->tokens -= 1.0;
	return true;
}

static int build_body(const struct dest *d, const struct alert_transition *t, struct buf *b)
{
	switch (d->type) {
	case NOTIFY_SLACK: return notify_body_slack(t, b);
	case NOTIFY_PAGERDUTY: return notify_body_pagerduty(t, d->routing_key, b);
	case NOTIFY_WEBHOOK: return notify_body_webhook(t, d->name, b);
	}
	return -EINVAL;
}

static int enqueue(struct notifier_set *s, struct dest *d, const struct alert_transition *t, int64_t now)
{
	if (d->st.queued >= s->opt.queue_max) {
		d->st.dropped++;
		return 0;
	}
	if (!take_token(s, d, now)) {
		d->st.rate_limited++;
		return 0;
	}
	struct delivery *dl = calloc(1, sizeof(*dl));
	struct buf b;
	buf_init(&b);
	if (!dl || build_body(d, t, &b) < 0) {
		free(dl);
		buf_done(&b);
		d->st.failed++;
		return -ENOMEM;
	}
	dl->body = buf_steal(&b, &dl->len);
	dl->set = s;
	dl->d = d;
	dl->next = s->live;
	if (s->live)
		s->live->prev = dl;
	s->live = dl;
	d->st.queued++;
	if (!s->http) {
		finish(dl); /* validation-only set: nothing is sent */
		return 0;
	}
	send_now(dl);
	return 1;
}

int notify_transition(struct notifier_set *s, const struct alert_transition *t, int64_t now)
{
	int queued = 0;
	if (!s || !t->notify || !t->rule)
		return 0;
	for (size_t i = 0; i < t->rule->nnotify; i++) {
		struct dest *d = find_dest(s, t->rule->notify[i]);
		if (!d || (t->resolved && !d->send_resolved))
			continue;
		int rc = enqueue(s, d, t, now);
		if (rc < 0)
			return rc;
		queued += rc;
	}
	return queued;
}

static void print_diag(void *ctx, bool is_error, const char *msg)
{
	fprintf((FILE *)ctx, "%s: %s\n", is_error ? "error" : "warning", msg);
}

int notify_cli_check(const char *alerts_dir, const char *notifiers_file, FILE *out)
{
	struct config_diag d = { .report = print_diag, .ctx = out };
	struct alert_rules *rs = NULL;
	int rc = alert_cli_check(alerts_dir, out);
	struct notifier_set *s = notify_new_from_file(NULL, NULL, notifiers_file, &d);
	if (alert_rules_load_dir(alerts_dir, &rs, NULL) == 0 && s)
		notify_check_rules(s, rs, &d);
	fprintf(out, "notifiers: %zu in %s, %u error(s), %u warning(s)\n", notify_count(s), notifiers_file,
		d.errors, d.warnings);
	alert_rules_free(rs);
	notify_free(s);
	return rc || d.errors ? 1 : 0;
}
