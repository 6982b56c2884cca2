/*
 * cli.c - command line entries of the alert module: `check-config`
 * validation of the rule directory and `test-rules RULES FIXTURE`, which
 * replays a YAML series fixture through the rules and prints every state
 * change (like promtool's rule tests). Format of the fixture: alert.h.
 *
 * Called by main.c only. Reads files, writes to the given FILE.
 */
#include "alert/alert.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "yamldoc/yamldoc.h"

#define FIX_MAX_STEPS 100000
#define FIX_MAX_SERIES 1000
#define FIX_MAX_TAGS 64

static void print_diag(void *ctx, bool is_error, const char *msg)
{
	fprintf((FILE *)ctx, "%s: %s\n", is_error ? "error" : "warning", msg);
}

static int load_rules(const char *path, struct alert_rules **out, FILE *f, struct config_diag *d)
{
	struct stat st;
	d->report = print_diag;
	d->ctx = f;
	if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
		return alert_rules_load_dir(path, out, d);
	return alert_rules_load_file(path, out, d);
}

int alert_cli_check(const char *dir, FILE *out)
{
	struct config_diag d = { 0 };
	struct alert_rules *rs = NULL;
	struct stat st;
	/* A missing alerts_dir is what the daemon accepts (no rules, a warning). */
	bool missing = stat(dir, &st) < 0 && errno == ENOENT;
	d.report = print_diag;
	d.ctx = out;
	int rc = missing ? alert_rules_load_dir(dir, &rs, &d) : load_rules(dir, &rs, out, &d);
	fprintf(out, "alerts: %zu rule(s) in %s, %u error(s), %u warning(s)\n", rs ? rs->n : 0, dir,
		d.errors, d.warnings);
	alert_rules_free(rs);
	return rc < 0 || d.errors ? 1 : 0;
}

/* ---- fixtures ---- */

struct fseries {
	const char *name;
	const char *host;
	struct sv tags[FIX_MAX_TAGS];
	size_t ntags;
	double *v;		/* NaN = missing */
	size_t n, cap;
};

static int push_val(struct fseries *s, double v)
{
	if (s->n >= FIX_MAX_STEPS)
		return -E2BIG;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 64;
		double *nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return -ENOMEM;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n++] = v;
	return 0;
}

/* One token: "12", "10MiB", "_", "a+bxN", "a-bxN", "_xN". */
static int expand_token(struct fseries *s, char *tok)
{
	char *x = strrchr(tok, 'x');
	if (!x)
		return push_val(s, NAN); /* "_" */
	*x = '\0';
	char *end;
	long cnt = strtol(x + 1, &end, 10);
	if (*end || cnt < 0 || cnt > FIX_MAX_STEPS)
		return -EINVAL;
	double a = NAN, b = 0;
	if (strcmp(tok, "_") != 0) {
		char *op = NULL;
		for (char *p = tok + 1; *p; p++)
			if ((*p == '+' || *p == '-') && p[-1] != 'e' && p[-1] != 'E')
				op = p;
		if (op) {
			char sign = *op;
			*op = '\0';
			if (alert_parse_number(op + 1, &b) < 0)
				return -EINVAL;
			b = sign == '-' ? -b : b;
		}
		if (alert_parse_number(tok, &a) < 0)
			return -EINVAL;
	}
	for (long i = 0; i <= cnt; i++) {
		int rc = push_val(s, a + b * (double)i);
		if (rc < 0)
			return rc;
	}
	return 0;
}

static int parse_values(struct fseries *s, const char *str)
{
	char *copy = strdup(str), *save = NULL;
	if (!copy)
		return -ENOMEM;
	int rc = 0;
	for (char *tok = strtok_r(copy, " \t", &save); tok && rc == 0; tok = strtok_r(NULL, " \t", &save)) {
		if (!strchr(tok, 'x') && strcmp(tok, "_") != 0) {
			double v;
			rc = alert_parse_number(tok, &v) < 0 ? -EINVAL : push_val(s, v);
		} else {
			rc = expand_token(s, tok);
		}
	}
	free(copy);
	return rc;
}

struct fixture {
	int64_t interval, start, steps;
	const char *hostname;
	struct fseries *s;
	size_t ns;
	const struct ynode *expect;
};

static int read_series(const struct ynode *n, struct fseries *s, FILE *out, const char *file)
{
	const struct ynode *name = ynode_get(n, "name"), *vals = ynode_get(n, "values");
	const struct ynode *tags = ynode_get(n, "tags"), *host = ynode_get(n, "host");
	if (!ynode_str(name) || !ynode_str(vals)) {
		fprintf(out, "error: %s:%u: series: needs name and values\n", file, n->line);
		return -EINVAL;
	}
	s->name = ynode_str(name);
	s->host = host && ynode_str(host) ? ynode_str(host) : NULL;
	if (tags && tags->kind == YNODE_SEQ) {
		for (size_t i = 0; i < tags->n && s->ntags < FIX_MAX_TAGS; i++)
			if (ynode_str(tags->items[i]))
				s->tags[s->ntags++] = sv_from_cstr(ynode_str(tags->items[i]));
	}
	if (parse_values(s, ynode_str(vals)) < 0) {
		fprintf(out, "error: %s:%u: values: cannot parse '%s'\n", file, vals->line, ynode_str(vals));
		return -EINVAL;
	}
	return 0;
}

static int get_int(const struct ynode *root, const char *key, int64_t min, int64_t max, int64_t *v)
{
	const struct ynode *n = ynode_get(root, key);
	return n ? ynode_int(n, min, max, v) : 0;
}

static int read_fixture(const struct ydoc *doc, struct fixture *fx, FILE *out)
{
	const struct ynode *root = doc->root;
	fx->interval = 10;
	fx->start = 1700000000;
	if (!root || root->kind != YNODE_MAP) {
		fprintf(out, "error: %s: expected a map with interval and series\n", doc->file);
		return -EINVAL;
	}
	if (get_int(root, "interval", 1, 86400, &fx->interval) < 0 ||
	    get_int(root, "start", 0, INT64_C(1) << 40, &fx->start) < 0 ||
	    get_int(root, "steps", 0, FIX_MAX_STEPS, &fx->steps) < 0) {
		fprintf(out, "error: %s: interval (1..86400), start, steps must be integers\n", doc->file);
		return -EINVAL;
	}
	fx->hostname = ynode_str(ynode_get(root, "hostname"));
	const struct ynode *list = ynode_get(root, "series");
	if (!list || list->kind != YNODE_SEQ || list->n > FIX_MAX_SERIES) {
		fprintf(out, "error: %s: series: expected a list (max %d)\n", doc->file, FIX_MAX_SERIES);
		return -EINVAL;
	}
	fx->s = calloc(list->n ? list->n : 1, sizeof(*fx->s));
	if (!fx->s)
		return -ENOMEM;
	fx->ns = list->n;
	int64_t longest = 0;
	for (size_t i = 0; i < list->n; i++) {
		if (read_series(list->items[i], &fx->s[i], out, doc->file) < 0)
			return -EINVAL;
		longest = (int64_t)fx->s[i].n > longest ? (int64_t)fx->s[i].n : longest;
	}
	if (!ynode_get(root, "steps"))
		fx->steps = longest;
	fx->expect = ynode_get(root, "expect");
	return 0;
}

static void print_transition(FILE *out, const struct alert_transition *t, int64_t start)
{
	char v[64], th[64];
	alert_format_value(t->value, v, sizeof(v));
	alert_format_value(t->threshold, th, sizeof(th));
	fprintf(out, "+%" PRId64 "s %s{", t->ts - start, t->rule_name);
	for (size_t i = 0; i < t->ngroup_tags; i++)
		fprintf(out, "%s%s", i ? "," : "", t->group_tags[i]);
	fprintf(out, "} %s -> %s%s value=%s %s %s fingerprint=%s\n", alert_state_name(t->from),
		alert_state_name(t->to), t->renotify ? " (renotify)" : "", v, t->comparator, th,
		t->fingerprint_hex);
	if (*t->message)
		fprintf(out, "    %s\n", t->message);
}

struct find_ctx {
	const char *rule;
	const char *group;	/* "k:v,k2:v2" or NULL = any */
	int state;		/* -1 = not found */
};

static void find_state(void *ctx, const struct alert_instance_info *i)
{
	struct find_ctx *c = ctx;
	char g[1024] = "";
	if (strcmp(i->rule, c->rule) != 0 || c->state >= 0)
		return;
	for (size_t k = 0; k < i->ngroup_tags; k++) {
		if (k)
			strncat(g, ",", sizeof(g) - strlen(g) - 1);
		strncat(g, i->group_tags[k], sizeof(g) - strlen(g) - 1);
	}
	if (!c->group || strcmp(c->group, g) == 0)
		c->state = (int)i->state;
}

/* Checks the expectations due at `at`; returns the number that failed. */
static unsigned check_expect(const struct fixture *fx, struct alert_engine *e, int64_t at, FILE *out,
			     unsigned *checked)
{
	unsigned failed = 0;
	for (size_t i = 0; fx->expect && fx->expect->kind == YNODE_SEQ && i < fx->expect->n; i++) {
		const struct ynode *x = fx->expect->items[i];
		int64_t when;
		if (ynode_int(ynode_get(x, "at"), 0, INT64_C(1) << 40, &when) < 0 || when != at)
			continue;
		struct find_ctx c = { ynode_str(ynode_get(x, "rule")), ynode_str(ynode_get(x, "group")), -1 };
		const char *want = ynode_str(ynode_get(x, "state"));
		if (!c.rule || !want) {
			fprintf(out, "FAIL line %u: expect needs at, rule, state\n", x->line);
			failed++;
			continue;
		}
		alert_engine_states(e, find_state, &c);
		const char *got = c.state < 0 ? "(no instance)" : alert_state_name((enum alert_state)c.state);
		(*checked)++;
		if (strcmp(got, want) != 0) {
			fprintf(out, "FAIL +%" PRId64 "s %s%s%s: expected %s, got %s\n", at, c.rule,
				c.group ? " " : "", c.group ? c.group : "", want, got);
			failed++;
		}
	}
	return failed;
}

/* Every expectation names a rule of the set and a known state, and has an
 * `at`: a typo must not pass as a plain mismatch. Returns the error count. */
static unsigned validate_expect(const struct fixture *fx, const struct alert_rules *rs, const char *file,
				FILE *out)
{
	unsigned bad = 0;
	const struct ynode *list = fx->expect;
	if (!list)
		return 0;
	if (list->kind != YNODE_SEQ) {
		fprintf(out, "error: %s:%u: expect: expected a list of {at, rule, state}\n", file, list->line);
		return 1;
	}
	for (size_t i = 0; i < list->n; i++) {
		const struct ynode *x = list->items[i];
		const char *rule = ynode_str(ynode_get(x, "rule")), *state = ynode_str(ynode_get(x, "state"));
		int64_t at;
		bool known = false;
		for (int k = 0; state && k < ALERT_STATE_COUNT; k++)
			known |= strcmp(state, alert_state_name((enum alert_state)k)) == 0;
		if (ynode_int(ynode_get(x, "at"), 0, INT64_C(1) << 40, &at) < 0) {
			fprintf(out, "error: %s:%u: expect.at: expected seconds after start\n", file, x->line);
			bad++;
		}
		if (!rule || !alert_rules_find(rs, rule)) {
			fprintf(out, "error: %s:%u: expect.rule: unknown rule '%s'\n", file, x->line, rule ? rule : "");
			bad++;
		}
		if (!known) {
			fprintf(out, "error: %s:%u: expect.state: unknown state '%s' (OK|PENDING|WARNING|CRITICAL|NO_DATA)\n",
				file, x->line, state ? state : "");
			bad++;
		}
	}
	return bad;
}

static int step_batch(const struct fixture *fx, int64_t i, struct batch **out)
{
	struct batch *b = batch_new();
	if (!b)
		return -ENOMEM;
	for (size_t k = 0; k < fx->ns; k++) {
		const struct fseries *s = &fx->s[k];
		if ((size_t)i >= s->n || isnan(s->v[i]))
			continue;
		struct series se = {
			.name = batch_str(b, sv_from_cstr(s->name)),
			.host = batch_str(b, sv_from_cstr(s->host ? s->host : (fx->hostname ? fx->hostname : ""))),
			.tags = batch_tags(b, s->tags, s->ntags),
			.ntags = (uint32_t)s->ntags,
			.kind = SERIES_GAUGE,
			.ts = fx->start + i * fx->interval,
			.value = s->v[i],
		};
		if (!se.name || !se.host || !se.tags || batch_add_series(b, &se) < 0) {
			batch_free(b);
			return -ENOMEM;
		}
	}
	*out = b;
	return 0;
}

static int replay(struct fixture *fx, struct alert_engine *e, FILE *out)
{
	struct alert_transitions tr;
	unsigned failed = 0, checked = 0, ntr = 0;
	alert_transitions_init(&tr);
	failed += check_expect(fx, e, 0, out, &checked);
	for (int64_t i = 0; i < fx->steps; i++) {
		struct batch *b;
		if (step_batch(fx, i, &b) < 0)
			break;
		int64_t now = fx->start + (i + 1) * fx->interval;
		alert_transitions_reset(&tr);
		int n = alert_eval(e, b, now, &tr);
		batch_free(b);
		for (int k = 0; k < n; k++)
			print_transition(out, &tr.v[k], fx->start);
		ntr += n > 0 ? (unsigned)n : 0;
		failed += check_expect(fx, e, now - fx->start, out, &checked);
	}
	alert_transitions_done(&tr);
	fprintf(out, "%" PRId64 " step(s), %u transition(s), %u expectation(s), %u failed\n", fx->steps, ntr,
		checked, failed);
	return failed ? 1 : 0;
}

int alert_cli_test_rules(const char *rules_path, const char *fixture_path, FILE *out)
{
	struct config_diag d = { 0 };
	struct alert_rules *rs = NULL;
	struct ydoc *doc = NULL;
	struct fixture fx = { 0 };
	char err[512];
	int rc = 2;
	if (load_rules(rules_path, &rs, out, &d) < 0 || d.errors)
		goto out;
	if (ydoc_load_file(fixture_path, &doc, err, sizeof(err)) < 0) {
		fprintf(out, "error: %s\n", err);
		goto out;
	}
	if (read_fixture(doc, &fx, out) < 0 || validate_expect(&fx, rs, fixture_path, out) > 0)
		goto out;
	struct alert_engine_config cfg = {
		.hostname = fx.hostname ? fx.hostname : "test-host",
		.resolution_s = fx.interval,
	};
	struct alert_engine *e = alert_engine_new(rs, &cfg, fx.start);
	rs = NULL;
	if (!e)
		goto out;
	rc = replay(&fx, e, out);
	alert_engine_free(e);
out:
	for (size_t i = 0; i < fx.ns; i++)
		free(fx.s[i].v);
	free(fx.s);
	ydoc_free(doc);
	alert_rules_free(rs);
	return rc;
}
