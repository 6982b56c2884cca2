/*
 * notify.c - notifier destinations (parsed from the `notifiers:` map), the
 * rule/notifier cross-check, counters and the check-config entry. Delivery
 * (durable queues, retries, spool files) is queue.c.
 *
 * Called by agent.c on the loop thread and by main.c. Logs with redacted URLs
 * (never keys or full URLs).
 */
#include "notify/notify_int.h"

#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "forward/http.h"
#include "yamldoc/yamldoc.h"

static const struct notify_options default_options = {
	.rate_per_s = 1.0, .burst = 10.0, .queue_max = 1000, .max_age_s = 6 * 3600,
	.backoff_unit_s = 1.0, .backoff_max_s = 60.0, .retry_after_max_s = 300.0, .timeout_ms = 10000,
};

__attribute__((format(printf, 5, 6)))
static void report(struct config_diag *diag, bool is_error, const char *file, unsigned line,
		   const char *fmt, ...)
{
	char where[PATH_MAX + 16];
	va_list ap;

	config_diag_where(where, sizeof(where), file, line);
	va_start(ap, fmt);
	config_diag_vaddf(diag, is_error, where, fmt, ap);
	va_end(ap);
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
			d->set = s;
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
	if (!probe && errno == ENOENT) {
		report(diag, false, path, 0, "notifiers_file: does not exist: no notifiers");
		return notify_new(base, http, NULL, path, diag);
	}
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

void notify_free(struct notifier_set *s)
{
	if (!s)
		return;
	size_t pending = 0;
	for (size_t i = 0; i < s->n; i++) {
		pending += s->d[i].st.queued;
		dest_queue_free(&s->d[i]);
		dest_done(&s->d[i]);
	}
	if (pending && s->spool)
		log_info("notify: %zu notification(s) not delivered yet, kept in %s for the next start", pending,
			 s->spool);
	else if (pending && s->http)
		log_warn("notify: %zu notification(s) not delivered and no spool directory: lost", pending);
	notify_orphans_free(s);
	free(s->d);
	free(s->spool);
	free(s);
}

void notify_set_options(struct notifier_set *s, const struct notify_options *o)
{
	s->opt = *o;
	for (size_t i = 0; i < s->n; i++)
		s->d[i].tokens = o->burst;
}

void notify_get_options(const struct notifier_set *s, struct notify_options *o)
{
	*o = s->opt;
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

static const struct stat_field stat_fields[] = {
#define X(f, dim, ...) STATS_DESC(struct notify_stats, f, __VA_ARGS__)
	NOTIFY_STATS_FIELDS(X)
#undef X
};
const struct stat_table notify_stats_table = STATS_TABLE(stat_fields);

void notify_stats_total(const struct notifier_set *s, struct notify_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (!s)
		return;
	stat_table_add(&notify_stats_table, out, &s->retired);
	for (size_t i = 0; i < s->n; i++)
		stat_table_add(&notify_stats_table, out, &s->d[i].st);
}

/* The agent config's own notifiers: section, NULL when it has none. */
static const struct ynode *config_section(const struct notify_sources *src)
{
	const struct ynode *section = src->config_doc && src->config_doc->root
					      ? ynode_get(src->config_doc->root, "notifiers") : NULL;
	return section && !ynode_is_null(section) ? section : NULL;
}

int notify_load(const struct notify_sources *src, struct event_base *base, struct http_client *http,
		struct alert_rules **rules, struct notifier_set **set, struct config_diag *diag)
{
	const struct ynode *section = config_section(src);
	unsigned errors = diag->errors;
	*rules = NULL;
	*set = NULL;
	int rc = alert_rules_load_dir(src->alerts_dir, rules, diag);
	if (section)
		*set = notify_new(base, http, section, src->config_path, diag);
	else
		*set = notify_new_from_file(base, http, src->notifiers_file, diag);
	if (rc == 0 && *set)
		notify_check_rules(*set, *rules, diag);
	if (rc < 0 || !*set || diag->errors > errors) {
		alert_rules_free(*rules);
		notify_free(*set);
		*rules = NULL;
		*set = NULL;
		return rc < 0 && rc != -EINVAL ? rc : -EINVAL;
	}
	return 0;
}

const char *notify_source(const struct notify_sources *src)
{
	return config_section(src) ? src->config_path : src->notifiers_file;
}

static void print_diag(void *ctx, bool is_error, const char *msg)
{
	fprintf((FILE *)ctx, "%s: %s\n", is_error ? "error" : "warning", msg);
}

int notify_cli_check(const struct notify_sources *src, FILE *out)
{
	struct config_diag d = { .report = print_diag, .ctx = out };
	struct alert_rules *rs = NULL;
	struct notifier_set *s = NULL;
	int rc = notify_load(src, NULL, NULL, &rs, &s, &d);
	if (rc == 0)
		fprintf(out, "alerts: %zu rule(s) in %s, %zu notifier(s) in %s, %u warning(s)\n", rs->n,
			src->alerts_dir, notify_count(s), notify_source(src), d.warnings);
	else
		fprintf(out, "alerts: rules in %s, notifiers in %s: %u error(s), %u warning(s)\n", src->alerts_dir,
			notify_source(src), d.errors, d.warnings);
	alert_rules_free(rs);
	notify_free(s);
	return rc < 0 ? 1 : 0;
}
