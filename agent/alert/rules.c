/*
 * rules.c - loads alert rule files (conf.d/alerts.d/NAME.yaml) through
 * yamldoc/yamldoc.h and validates them into struct alert_rules.
 *
 * Called by agent.c (start, SIGHUP), cli.c (check-config, test-rules).
 * Every problem is reported as "FILE:LINE: KEY: message" through a
 * struct config_diag; nothing is logged. Owns the rules it returns.
 */
#include "alert/alert.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "yamldoc/yamldoc.h"

#define RULES_MAX 10000
#define RULE_MAX_LIST 64

struct loader {
	const char *file;
	struct config_diag *diag;
	unsigned errors;
};

__attribute__((format(printf, 6, 7)))
static void report(struct loader *l, bool is_error, unsigned line, const char *rule,
		   const char *key, const char *fmt, ...)
{
	char file[PATH_MAX + 16], where[PATH_MAX + 512];
	va_list ap;

	if (is_error)
		l->errors++;
	config_diag_where(file, sizeof(file), l->file, line);
	if (rule && *rule)
		snprintf(where, sizeof(where), "%s: %s: rule %s", file, key, rule);
	else
		snprintf(where, sizeof(where), "%s: %s", file, key);
	va_start(ap, fmt);
	config_diag_vaddf(l->diag, is_error, where, fmt, ap);
	va_end(ap);
}

void alert_rules_free(struct alert_rules *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		alert_rule_done(&rs->v[i]);
	free(rs->v);
	free(rs);
}

const struct alert_rule *alert_rules_find(const struct alert_rules *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (strcmp(rs->v[i].name, name) == 0)
			return &rs->v[i];
	return NULL;
}

static const struct ynode *scalar(struct loader *l, const struct ynode *n, const char *rule, const char *key)
{
	if (!n || n->kind != YNODE_SCALAR || ynode_is_null(n)) {
		report(l, true, n ? n->line : 0, rule, key, "expected a value");
		return NULL;
	}
	return n;
}

static int read_enum(struct loader *l, const struct ynode *n, const char *rule, const char *key,
		     const char *const *names, size_t count, int *out)
{
	if (!scalar(l, n, rule, key))
		return -EINVAL;
	for (size_t i = 0; i < count; i++) {
		if (strcmp(n->str, names[i]) == 0) {
			*out = (int)i;
			return 0;
		}
	}
	char opts[256] = "";
	for (size_t i = 0; i < count; i++) {
		strncat(opts, names[i], sizeof(opts) - strlen(opts) - 2);
		if (i + 1 < count)
			strncat(opts, "|", sizeof(opts) - strlen(opts) - 1);
	}
	report(l, true, n->line, rule, key, "'%s' is not one of %s", n->str, opts);
	return -EINVAL;
}

static int read_duration(struct loader *l, const struct ynode *n, const char *rule, const char *key,
			 int64_t *out)
{
	if (!scalar(l, n, rule, key))
		return -EINVAL;
	if (alert_parse_duration(n->str, out) < 0) {
		report(l, true, n->line, rule, key, "bad duration '%s' (e.g. 30s, 5m, 1h)", n->str);
		return -EINVAL;
	}
	return 0;
}

static int read_number(struct loader *l, const struct ynode *n, const char *rule, const char *key,
		       double *out)
{
	if (!scalar(l, n, rule, key))
		return -EINVAL;
	if (alert_parse_number(n->str, out) < 0) {
		report(l, true, n->line, rule, key,
		       "bad number '%s' (suffixes: k M G KiB MiB GiB ms s m h %%)", n->str);
		return -EINVAL;
	}
	return 0;
}

static int read_bool(struct loader *l, const struct ynode *n, const char *rule, const char *key, bool *out)
{
	if (ynode_bool(n, out) < 0) {
		report(l, true, n->line, rule, key, "expected true or false");
		return -EINVAL;
	}
	return 0;
}

static int read_str_list(struct loader *l, const struct ynode *n, const char *rule, const char *key,
			 char ***out, unsigned **lines, size_t *count)
{
	if (n->kind == YNODE_SCALAR && ynode_is_null(n))
		return 0;
	if (n->kind != YNODE_SEQ) {
		report(l, true, n->line, rule, key, "expected a list");
		return -EINVAL;
	}
	if (n->n > RULE_MAX_LIST) {
		report(l, true, n->line, rule, key, "too many entries (max %d)", RULE_MAX_LIST);
		return -EINVAL;
	}
	char **v = calloc(n->n ? n->n : 1, sizeof(*v));
	unsigned *ln = lines ? calloc(n->n ? n->n : 1, sizeof(*ln)) : NULL;
	if (!v || (lines && !ln)) {
		free(v);
		free(ln);
		return -ENOMEM;
	}
	size_t k = 0;
	int rc = 0;
	for (size_t i = 0; i < n->n; i++) {
		if (!scalar(l, n->items[i], rule, key) || !(v[k] = strdup(n->items[i]->str))) {
			rc = -EINVAL;
			continue;
		}
		if (ln)
			ln[k] = n->items[i]->line;
		k++;
	}
	*out = v;
	if (lines)
		*lines = ln;
	*count = k;
	return rc;
}

/* filter: {key: value, key2: "!v", k3: "glob*"} or a list of "key:value" strings */
static int read_filter(struct loader *l, const struct ynode *n, struct alert_rule *r)
{
	if (n->kind != YNODE_MAP) {
		report(l, true, n->line, r->name, "filter", "expected a map of tag: value");
		return -EINVAL;
	}
	if (n->n > 64) {
		report(l, true, n->line, r->name, "filter", "too many filters (max 64)");
		return -EINVAL;
	}
	r->filters = calloc(n->n ? n->n : 1, sizeof(*r->filters));
	if (!r->filters)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		const struct ynode *v = n->items[i];
		if (!scalar(l, v, r->name, "filter"))
			return -EINVAL;
		struct alert_filter *f = &r->filters[r->nfilters++];
		const char *val = v->str;
		if (val[0] == '!') {
			f->negate = true;
			val++;
		}
		f->key = strdup(n->keys[i]->str);
		f->value = strdup(val);
		if (!f->key || !f->value)
			return -ENOMEM;
		f->glob = strchr(val, '*') != NULL;
	}
	return 0;
}

static int read_labels(struct loader *l, const struct ynode *n, struct alert_rule *r)
{
	if (n->kind != YNODE_MAP || n->n > RULE_MAX_LIST) {
		report(l, true, n->line, r->name, "labels", "expected a map of at most %d labels", RULE_MAX_LIST);
		return -EINVAL;
	}
	r->label_keys = calloc(n->n ? n->n : 1, sizeof(char *));
	r->label_values = calloc(n->n ? n->n : 1, sizeof(char *));
	if (!r->label_keys || !r->label_values)
		return -ENOMEM;
	for (size_t i = 0; i < n->n; i++) {
		if (!scalar(l, n->items[i], r->name, "labels"))
			return -EINVAL;
		r->label_keys[r->nlabels] = strdup(n->keys[i]->str);
		r->label_values[r->nlabels] = strdup(n->items[i]->str);
		r->nlabels++;
		if (!r->label_keys[r->nlabels - 1] || !r->label_values[r->nlabels - 1])
			return -ENOMEM;
	}
	return 0;
}

static int read_no_data(struct loader *l, const struct ynode *n, struct alert_rule *r, bool *have_after)
{
	static const char *const actions[] = { "keep", "ok", "nodata", "alert" };
	if (n->kind != YNODE_MAP) {
		report(l, true, n->line, r->name, "no_data", "expected {after: 10m, action: keep|ok|nodata|alert}");
		return -EINVAL;
	}
	int rc = 0;
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		int a;
		if (strcmp(k, "after") == 0) {
			if (read_duration(l, n->items[i], r->name, "no_data.after", &r->no_data_after_s) < 0)
				rc = -EINVAL;
			*have_after = true;
		} else if (strcmp(k, "action") == 0) {
			if (read_enum(l, n->items[i], r->name, "no_data.action", actions, 4, &a) < 0)
				rc = -EINVAL;
			else
				r->no_data_action = (enum alert_nodata)a;
		} else {
			report(l, false, n->keys[i]->line, r->name, k, "unknown key in no_data (ignored)");
		}
	}
	return rc;
}

static bool name_ok(const char *s)
{
	if (!*s || strlen(s) > 200)
		return false;
	for (; *s; s++)
		if (!(*s >= 'a' && *s <= 'z') && !(*s >= 'A' && *s <= 'Z') && !(*s >= '0' && *s <= '9') &&
		    *s != '_' && *s != '-' && *s != '.')
			return false;
	return true;
}

struct seen {
	bool query, metric, window, critical, warning, crit_rec, warn_rec, op, nd_after;
	const struct ynode *query_node;
};

static const char *const space_names[] = { "avg", "sum", "min", "max" };
static const char *const tf_names[] = { "none", "growth", "deriv", "rate", "pct_change" };
static const char *const time_names[] = { "avg", "min", "max", "sum", "last", "count" };
static const char *const op_names[] = { ">", ">=", "<", "<=" };

/* Fields describing what is measured. 1 = not one of these keys. */
static int field_what(struct loader *l, const char *k, const struct ynode *v, struct alert_rule *r,
		      struct seen *s)
{
	int e;
	if (strcmp(k, "query") == 0) {
		s->query = true;
		s->query_node = v;
		return scalar(l, v, r->name, k) ? 0 : -EINVAL;
	}
	if (strcmp(k, "metric") == 0) {
		s->metric = true;
		if (!scalar(l, v, r->name, k))
			return -EINVAL;
		free(r->metric);
		r->metric = strdup(v->str);
		if (!r->metric)
			return -ENOMEM;
		r->metric_hash = hash64(r->metric, strlen(r->metric));
		return 0;
	}
	if (strcmp(k, "filter") == 0)
		return read_filter(l, v, r);
	if (strcmp(k, "group_by") == 0)
		return read_str_list(l, v, r->name, k, &r->group_by, NULL, &r->ngroup_by);
	if (strcmp(k, "space_agg") == 0) {
		if (read_enum(l, v, r->name, k, space_names, 4, &e) < 0)
			return -EINVAL;
		r->space_agg = (enum alert_space_agg)e;
		return 0;
	}
	if (strcmp(k, "transform") == 0) {
		if (read_enum(l, v, r->name, k, tf_names, 5, &e) < 0)
			return -EINVAL;
		r->transform = (enum alert_transform)e;
		return 0;
	}
	if (strcmp(k, "time_agg") == 0) {
		if (read_enum(l, v, r->name, k, time_names, 6, &e) < 0)
			return -EINVAL;
		r->time_agg = (enum alert_time_agg)e;
		return 0;
	}
	if (strcmp(k, "window") == 0) {
		s->window = true;
		return read_duration(l, v, r->name, k, &r->window_s);
	}
	if (strcmp(k, "op") == 0) {
		s->op = true;
		if (read_enum(l, v, r->name, k, op_names, 4, &e) < 0)
			return -EINVAL;
		r->op = (enum alert_op)e;
		return 0;
	}
	return 1;
}

/* Thresholds and the state machine's timing. 1 = not one of these keys. */
static int field_when(struct loader *l, const char *k, const struct ynode *v, struct alert_rule *r,
		      struct seen *s)
{
	if (strcmp(k, "critical") == 0)
		return (s->critical = true, read_number(l, v, r->name, k, &r->critical));
	if (strcmp(k, "warning") == 0)
		return (s->warning = true, read_number(l, v, r->name, k, &r->warning));
	if (strcmp(k, "critical_recovery") == 0)
		return (s->crit_rec = true, read_number(l, v, r->name, k, &r->critical_recovery));
	if (strcmp(k, "warning_recovery") == 0)
		return (s->warn_rec = true, read_number(l, v, r->name, k, &r->warning_recovery));
	if (strcmp(k, "for") == 0)
		return read_duration(l, v, r->name, k, &r->for_s);
	if (strcmp(k, "keep_firing_for") == 0)
		return read_duration(l, v, r->name, k, &r->keep_firing_for_s);
	if (strcmp(k, "renotify") == 0)
		return read_duration(l, v, r->name, k, &r->renotify_s);
	if (strcmp(k, "require_full_window") == 0)
		return read_bool(l, v, r->name, k, &r->require_full_window);
	if (strcmp(k, "no_data") == 0)
		return read_no_data(l, v, r, &s->nd_after);
	if (strcmp(k, "notify") == 0)
		return read_str_list(l, v, r->name, k, &r->notify, &r->notify_lines, &r->nnotify);
	if (strcmp(k, "labels") == 0)
		return read_labels(l, v, r);
	if (strcmp(k, "message") == 0) {
		if (!scalar(l, v, r->name, k))
			return -EINVAL;
		if (v->len > 16384) {
			report(l, true, v->line, r->name, k, "message longer than 16 KiB");
			return -EINVAL;
		}
		free(r->message);
		return (r->message = strdup(v->str)) ? 0 : -ENOMEM;
	}
	if (strcmp(k, "max_groups") == 0) {
		int64_t g;
		if (ynode_int(v, 1, 1000000, &g) < 0) {
			report(l, true, v->line, r->name, k, "expected an integer in 1..1000000");
			return -EINVAL;
		}
		r->max_groups = (size_t)g;
		return 0;
	}
	return 1;
}

static bool op_above(enum alert_op op)
{
	return op == ALERT_OP_GT || op == ALERT_OP_GE;
}

static int compile_query(struct loader *l, const struct ynode *q, struct alert_rule *r, struct seen *s)
{
	char err[256];
	unsigned col = 0;
	if (s->metric || s->window || s->op || s->critical) {
		report(l, true, q->line, r->name, "query",
		       "query already sets metric, window, op and critical; remove those keys");
		return -EINVAL;
	}
	if (alert_query_parse(q->str, r, err, sizeof(err), &col) < 0) {
		report(l, true, q->line, r->name, "query", "column %u: %s", col, err);
		return -EINVAL;
	}
	s->critical = true;
	return 0;
}

static int validate(struct loader *l, const struct ynode *m, struct alert_rule *r, struct seen *s)
{
	bool above = op_above(r->op);
	if (!r->metric) {
		report(l, true, m->line, r->name, "metric", "missing (give metric + window, or query)");
		return -EINVAL;
	}
	if (!s->window && !s->query) {
		report(l, true, m->line, r->name, "window", "missing");
		return -EINVAL;
	}
	if (r->window_s <= 0 || r->window_s > ALERT_MAX_WINDOW_S) {
		report(l, true, m->line, r->name, "window", "must be within 1s..24h");
		return -EINVAL;
	}
	if (!s->critical && !s->warning) {
		report(l, true, m->line, r->name, "critical", "a rule needs critical and/or warning");
		return -EINVAL;
	}
	r->has_critical = s->critical;
	r->has_warning = s->warning;
	if (!s->crit_rec)
		r->critical_recovery = r->critical;
	if (!s->warn_rec)
		r->warning_recovery = r->warning;
	if (s->critical && s->warning && (above ? r->warning > r->critical : r->warning < r->critical)) {
		report(l, true, m->line, r->name, "warning", "must be %s critical for op %s",
		       above ? "<=" : ">=", alert_op_name(r->op));
		return -EINVAL;
	}
	if (above ? r->critical_recovery > r->critical : r->critical_recovery < r->critical) {
		report(l, true, m->line, r->name, "critical_recovery", "must be %s critical for op %s",
		       above ? "<=" : ">=", alert_op_name(r->op));
		return -EINVAL;
	}
	if (above ? r->warning_recovery > r->warning : r->warning_recovery < r->warning) {
		report(l, true, m->line, r->name, "warning_recovery", "must be %s warning for op %s",
		       above ? "<=" : ">=", alert_op_name(r->op));
		return -EINVAL;
	}
	if (!s->nd_after)
		r->no_data_after_s = 2 * r->window_s;
	for (size_t i = 0; i < r->ngroup_by; i++)
		for (size_t j = i + 1; j < r->ngroup_by; j++)
			if (strcmp(r->group_by[i], r->group_by[j]) > 0) {
				char *t = r->group_by[i];
				r->group_by[i] = r->group_by[j];
				r->group_by[j] = t;
			}
	return 0;
}

static int read_rule(struct loader *l, const struct ynode *m, struct alert_rule *r)
{
	struct seen s = { 0 };
	int rc = 0;
	r->line = m->line;
	if (!(r->file = strdup(l->file)))
		return -ENOMEM;
	if (m->kind != YNODE_MAP) {
		report(l, true, m->line, NULL, "rules", "each rule must be a map");
		return -EINVAL;
	}
	const struct ynode *nm = ynode_get(m, "name");
	if (!nm) {
		report(l, true, m->line, NULL, "name", "missing");
		return -EINVAL;
	}
	if (!scalar(l, nm, NULL, "name"))
		return -EINVAL;
	if (!name_ok(nm->str)) {
		report(l, true, nm->line, NULL, "name", "'%s': use letters, digits, _ - . (max 200)", nm->str);
		return -EINVAL;
	}
	if (!(r->name = strdup(nm->str)))
		return -ENOMEM;
	for (size_t i = 0; i < m->n; i++) {
		const char *k = m->keys[i]->str;
		if (strcmp(k, "name") == 0)
			continue;
		int e = field_what(l, k, m->items[i], r, &s);
		if (e == 1)
			e = field_when(l, k, m->items[i], r, &s);
		if (e == 1)
			report(l, false, m->keys[i]->line, r->name, k, "unknown key (ignored)");
		else if (e < 0)
			rc = e;
	}
	if (rc < 0)
		return rc;
	if (s.query && compile_query(l, s.query_node, r, &s) < 0)
		return -EINVAL;
	return validate(l, m, r, &s);
}

static int grow(struct alert_rules *rs)
{
	if (rs->n < rs->cap)
		return 0;
	size_t cap = rs->cap ? rs->cap * 2 : 8;
	struct alert_rule *v = realloc(rs->v, cap * sizeof(*v));
	if (!v)
		return -ENOMEM;
	rs->v = v;
	rs->cap = cap;
	return 0;
}

static int load_doc(struct loader *l, const struct ydoc *doc, struct alert_rules *rs)
{
	const struct ynode *root = doc->root, *list = root;
	if (!root)
		return 0; /* empty file: no rules */
	if (root->kind == YNODE_MAP) {
		list = ynode_get(root, "rules");
		for (size_t i = 0; i < root->n; i++)
			if (strcmp(root->keys[i]->str, "rules") != 0)
				report(l, false, root->keys[i]->line, NULL, root->keys[i]->str,
				       "unknown top-level key (ignored)");
		if (!list || ynode_is_null(list))
			return 0;
	}
	if (list->kind != YNODE_SEQ) {
		report(l, true, list->line, NULL, "rules", "expected a list of rules");
		return -EINVAL;
	}
	int rc = 0;
	for (size_t i = 0; i < list->n; i++) {
		if (rs->n >= RULES_MAX) {
			report(l, true, list->items[i]->line, NULL, "rules", "more than %d rules", RULES_MAX);
			return -EINVAL;
		}
		if (grow(rs) < 0)
			return -ENOMEM;
		struct alert_rule *r = &rs->v[rs->n];
		memset(r, 0, sizeof(*r));
		int e = read_rule(l, list->items[i], r);
		const struct alert_rule *dup = e == 0 ? alert_rules_find(rs, r->name) : NULL;
		if (dup) {
			report(l, true, r->line, r->name, "name", "duplicate rule name (first defined at %s:%u)",
			       dup->file, dup->line);
			e = -EINVAL;
		}
		if (e < 0) {
			alert_rule_done(r);
			rc = e;
			continue;
		}
		rs->n++;
	}
	return rc;
}

static int load_common(const char *name, const char *path, const char *data, size_t len,
		       struct alert_rules **out, struct config_diag *diag)
{
	struct loader l = { .file = name, .diag = diag };
	struct ydoc *doc = NULL;
	char err[512];
	int rc = path ? ydoc_load_file(path, &doc, err, sizeof(err)) :
			ydoc_load_buffer(name, data, len, &doc, err, sizeof(err));
	if (rc < 0) {
		if (diag) {
			diag->errors++;
			if (diag->report)
				diag->report(diag->ctx, true, err);
		}
		return rc;
	}
	bool created = false;
	if (!*out) {
		*out = calloc(1, sizeof(**out));
		if (!*out) {
			ydoc_free(doc);
			return -ENOMEM;
		}
		created = true;
	}
	rc = load_doc(&l, doc, *out);
	ydoc_free(doc);
	if (rc == 0 && l.errors)
		rc = -EINVAL;
	if (rc < 0 && created) {
		alert_rules_free(*out);
		*out = NULL;
	}
	return rc;
}

int alert_rules_load_file(const char *path, struct alert_rules **out, struct config_diag *diag)
{
	return load_common(path, path, NULL, 0, out, diag);
}

int alert_rules_load_buffer(const char *name, const char *data, size_t len,
			    struct alert_rules **out, struct config_diag *diag)
{
	return load_common(name, NULL, data, len, out, diag);
}

static bool yaml_name(const char *n)
{
	size_t len = strlen(n);
	if (n[0] == '.')
		return false;
	return (len > 5 && strcmp(n + len - 5, ".yaml") == 0) || (len > 4 && strcmp(n + len - 4, ".yml") == 0);
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int alert_rules_load_dir(const char *dir, struct alert_rules **out, struct config_diag *diag)
{
	struct alert_rules *rs = calloc(1, sizeof(*rs));
	if (!rs)
		return -ENOMEM;
	DIR *d = opendir(dir);
	if (!d) {
		int e = errno;
		struct loader l = { .file = dir, .diag = diag };
		if (e == ENOENT) {
			report(&l, false, 0, NULL, "alerts_dir", "directory does not exist: no alert rules");
			*out = rs;
			return 0;
		}
		report(&l, true, 0, NULL, "alerts_dir", "cannot open: %s", strerror(e));
		free(rs);
		return -e;
	}
	char **names = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	struct dirent *de;
	while ((de = readdir(d)) != NULL) {
		if (!yaml_name(de->d_name))
			continue;
		if (n == cap) {
			cap = cap ? cap * 2 : 16;
			char **nn = realloc(names, cap * sizeof(*nn));
			if (!nn) {
				rc = -ENOMEM;
				break;
			}
			names = nn;
		}
		size_t len = strlen(dir) + strlen(de->d_name) + 2;
		if (!(names[n] = malloc(len))) {
			rc = -ENOMEM;
			break;
		}
		snprintf(names[n++], len, "%s/%s", dir, de->d_name);
	}
	closedir(d);
	if (n)
		qsort(names, n, sizeof(*names), cmp_names);
	for (size_t i = 0; i < n && rc != -ENOMEM; i++) {
		int e = alert_rules_load_file(names[i], &rs, diag);
		if (e < 0)
			rc = e;
	}
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
	if (rc < 0) {
		alert_rules_free(rs);
		return rc;
	}
	*out = rs;
	return 0;
}
