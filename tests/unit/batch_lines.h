/*
 * batch_lines.h - test helper (tests/unit only): a batch as a sorted list of
 * text lines, one per series, sketch, event and check, every field printed,
 * so two batches compare with strcmp whatever their order. Included by
 * test_aggr_merge.c and test_aggr_incr.c (static functions: one copy per
 * test program).
 */
#ifndef DDMA_TESTS_BATCH_LINES_H
#define DDMA_TESTS_BATCH_LINES_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/batch.h"

struct lines {
	char **l;
	size_t n, cap;
};

static void add_line(struct lines *ls, const char *s)
{
	if (ls->n == ls->cap) {
		ls->cap = ls->cap ? ls->cap * 2 : 64;
		ls->l = realloc(ls->l, ls->cap * sizeof(*ls->l));
		cr_assert(ls->l);
	}
	ls->l[ls->n++] = strdup(s);
}

static void join(const char *const *t, uint32_t n, char *out, size_t cap)
{
	out[0] = '\0';
	for (uint32_t i = 0; i < n; i++) {
		strncat(out, t[i], cap - strlen(out) - 1);
		strncat(out, ",", cap - strlen(out) - 1);
	}
}

static int line_cmp(const void *x, const void *y)
{
	return strcmp(*(char *const *)x, *(char *const *)y);
}

static struct lines render(const struct batch *b)
{
	struct lines ls = { 0 };
	char line[16384], tg[2048];
	for (size_t i = 0; i < b->nseries; i++) {
		const struct series *s = &b->series[i];
		join(s->tags, s->ntags, tg, sizeof(tg));
		snprintf(line, sizeof(line), "S %s|%s|%s|%lld|%d|%u|%.17g", s->name, s->host, tg,
			 (long long)s->ts, (int)s->kind, s->interval, s->value);
		add_line(&ls, line);
	}
	for (size_t i = 0; i < b->nsketches; i++) {
		const struct sketch_point *p = &b->sketches[i];
		join(p->tags, p->ntags, tg, sizeof(tg));
		int n = snprintf(line, sizeof(line), "K %s|%s|%s|%lld|%lld|%.17g|%.17g|%.17g|%.17g|",
				 p->name, p->host, tg, (long long)p->ts, (long long)p->cnt, p->min,
				 p->max, p->sum, p->avg);
		for (uint32_t k = 0; k < p->nbins && n < (int)sizeof(line) - 32; k++)
			n += snprintf(line + n, sizeof(line) - (size_t)n, "%d:%u,", p->keys[k],
				      p->counts[k]);
		add_line(&ls, line);
	}
	for (size_t i = 0; i < b->nevents; i++) {
		const struct event_rec *e = &b->events[i];
		join(e->tags, e->ntags, tg, sizeof(tg));
		snprintf(line, sizeof(line), "E %s|%s|%lld|%s|%s|%s|%d|%d|%s", e->title, e->text,
			 (long long)e->ts, e->host, e->aggregation_key, e->source_type,
			 (int)e->priority, (int)e->alert_type, tg);
		add_line(&ls, line);
	}
	for (size_t i = 0; i < b->nchecks; i++) {
		const struct check_rec *c = &b->checks[i];
		join(c->tags, c->ntags, tg, sizeof(tg));
		snprintf(line, sizeof(line), "C %s|%d|%lld|%s|%s|%s", c->name, c->status,
			 (long long)c->ts, c->host, c->message, tg);
		add_line(&ls, line);
	}
	qsort(ls.l, ls.n, sizeof(*ls.l), line_cmp);
	return ls;
}

static void lines_free(struct lines *ls)
{
	for (size_t i = 0; i < ls->n; i++)
		free(ls->l[i]);
	free(ls->l);
}

/* Lines starting with p. */
static size_t count_prefix(const struct lines *ls, const char *p)
{
	size_t n = 0;
	for (size_t i = 0; i < ls->n; i++)
		n += strncmp(ls->l[i], p, strlen(p)) == 0;
	return n;
}

#endif
