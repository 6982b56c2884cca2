/*
 * tagrules.c - see tagrules.h.
 *
 * Each rule's globs are classified when built: literal (compared as bytes),
 * prefix ("abc*": a prefix compare) or general (the matcher below), so the
 * common rules cost a length check and a memcmp per tag. The metric pattern
 * is matched once per line and rule, not once per tag.
 */
#include "aggr/tagrules.h"

#include <stdlib.h>
#include <string.h>

enum glob_kind { GLOB_ANY, GLOB_LITERAL, GLOB_PREFIX, GLOB_GENERAL };

struct glob {
	struct sv s;		/* GLOB_PREFIX: without its '*' */
	enum glob_kind kind;
};

struct rule {
	struct glob key, metric;
};

struct tagrules {
	size_t n;
	struct rule *r;
	char *text;		/* the rules' bytes, '\0'-separated */
	size_t bytes;
};

/* Iterative '*' / '?' matcher with one backtrack point: linear-ish, no
 * recursion. */
bool tagrules_glob(struct sv g, struct sv s)
{
	size_t gi = 0, si = 0, star = SIZE_MAX, mark = 0;
	while (si < s.n) {
		if (gi < g.n && (g.p[gi] == '?' || g.p[gi] == s.p[si])) {
			gi++;
			si++;
		} else if (gi < g.n && g.p[gi] == '*') {
			star = gi++;
			mark = si;
		} else if (star != SIZE_MAX) {
			gi = star + 1;
			si = ++mark;
		} else {
			return false;
		}
	}
	while (gi < g.n && g.p[gi] == '*')
		gi++;
	return gi == g.n;
}

static struct glob glob_make(struct sv s)
{
	const char *q = memchr(s.p, '?', s.n);
	const char *st = memchr(s.p, '*', s.n);
	if (s.n == 1 && s.p[0] == '*')
		return (struct glob){ s, GLOB_ANY };
	if (!q && !st)
		return (struct glob){ s, GLOB_LITERAL };
	if (!q && st == s.p + s.n - 1)
		return (struct glob){ { s.p, s.n - 1 }, GLOB_PREFIX };
	return (struct glob){ s, GLOB_GENERAL };
}

static inline bool glob_match(const struct glob *g, struct sv s)
{
	switch (g->kind) {
	case GLOB_ANY:
		return true;
	case GLOB_LITERAL:
		return s.n == g->s.n && memcmp(s.p, g->s.p, s.n) == 0;
	case GLOB_PREFIX:
		return s.n >= g->s.n && memcmp(s.p, g->s.p, g->s.n) == 0;
	default:
		return tagrules_glob(g->s, s);
	}
}

const char *tagrules_check(const char *rule)
{
	const char *bar = strchr(rule, '|');
	if (!rule[0] || bar == rule)
		return "the tag key pattern must not be empty";
	if (bar && (!bar[1] || strchr(bar + 1, '|')))
		return "expected KEY or KEY|METRIC (one '|', both sides non-empty)";
	if (memchr(rule, ':', bar ? (size_t)(bar - rule) : strlen(rule)))
		return "a tag key pattern has no ':' (it matches the key, not key:value)";
	return NULL;
}

struct tagrules *tagrules_new(char *const *rules, size_t n, bool *nomem)
{
	*nomem = false;
	if (!n)
		return NULL;
	size_t len = 0;
	for (size_t i = 0; i < n; i++)
		len += strlen(rules[i]) + 1;
	struct tagrules *r = calloc(1, sizeof(*r));
	if (!r || !(r->r = calloc(n, sizeof(*r->r))) || !(r->text = malloc(len))) {
		tagrules_free(r);
		*nomem = true;
		return NULL;
	}
	char *p = r->text;
	for (size_t i = 0; i < n; i++) {
		size_t l = strlen(rules[i]);
		memcpy(p, rules[i], l + 1);
		char *bar = strchr(p, '|');
		struct sv key = { p, bar ? (size_t)(bar - p) : l };
		struct sv metric = bar ? (struct sv){ bar + 1, l - key.n - 1 } : SV_LIT("*");
		r->r[r->n++] = (struct rule){ glob_make(key), glob_make(metric) };
		p += l + 1;
	}
	r->bytes = sizeof(*r) + n * sizeof(*r->r) + len;
	return r;
}

void tagrules_free(struct tagrules *r)
{
	if (!r)
		return;
	free(r->r);
	free(r->text);
	free(r);
}

size_t tagrules_bytes(const struct tagrules *r)
{
	return r ? r->bytes : 0;
}

#define RULES_MAX_PER_LINE 64

size_t tagrules_apply(const struct tagrules *r, struct sv name, struct tagref *t, size_t n)
{
	if (!r || !n)
		return n;
	/* the rules that apply to this metric (a bounded list on the stack;
	 * beyond it, the remaining rules are checked per tag) */
	const struct rule *on[RULES_MAX_PER_LINE];
	size_t non = 0, from = 0;
	for (; from < r->n && non < RULES_MAX_PER_LINE; from++)
		if (glob_match(&r->r[from].metric, name))
			on[non++] = &r->r[from];
	if (!non && from == r->n)
		return n;
	size_t out = 0;
	for (size_t i = 0; i < n; i++) {
		const char *colon = memchr(t[i].s.p, ':', t[i].s.n);
		struct sv key = { t[i].s.p, colon ? (size_t)(colon - t[i].s.p) : t[i].s.n };
		bool excluded = false;
		for (size_t j = 0; j < non && !excluded; j++)
			excluded = glob_match(&on[j]->key, key);
		for (size_t j = from; j < r->n && !excluded; j++)
			excluded = glob_match(&r->r[j].metric, name) && glob_match(&r->r[j].key, key);
		if (!excluded)
			t[out++] = t[i];
	}
	return out;
}
