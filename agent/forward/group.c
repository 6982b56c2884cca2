/*
 * group.c - see group.h. Builds each endpoint's forwarder config from the
 * main one (same queue, backoff, disk and compression settings) with its own
 * URL, key and disk queue directory.
 */
#include "forward/group.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/hash.h"
#include "core/log.h"

#define GROUP_MAX 72	/* main + additional pairs (32) + remote_write (32), rounded */

enum ep_kind { EP_MAIN, EP_EXTRA, EP_RW };

struct gep {
	struct fwd *f;
	enum ep_kind kind;
	size_t idx;		/* into cfg->extra / cfg->rw */
	char *url, *key;	/* what identifies it across reloads (key: hashed) */
	uint64_t id;
	char section[32];
	char label[300];
};

struct fwd_group {
	struct gep ep[GROUP_MAX];
	size_t n;
	size_t draining;
	void (*done)(void *arg);
	void *done_arg;
};

bool fwd_group_wanted(const struct fwd_config *cfg)
{
	return cfg->intake_enabled || cfg->nextra > 0 || cfg->nrw > 0;
}

/* A URL without "user:password@", cut to fit. */
static void shown_url(const char *url, char *out, size_t len)
{
	const char *p = strstr(url, "://"), *host = p ? p + 3 : url;
	size_t n = strcspn(host, "/?#");
	const char *at = memchr(host, '@', n);
	snprintf(out, len, "%.*s%s", (int)(host - url), url, at ? at + 1 : host);
}

static uint64_t ep_id(enum ep_kind k, const char *url, const char *key)
{
	uint64_t h = hash64(url, strlen(url));
	h = hash64_combine(h, key ? hash64(key, strlen(key)) : 0);
	return hash64_combine(h, (uint64_t)k);
}

/* The endpoint's own config: the main one with its URL, key and disk queue. */
static int derive(const struct fwd_config *cfg, const struct gep *e, struct fwd_config *out, char **path)
{
	*out = *cfg;
	*path = NULL;
	if (e->kind == EP_MAIN)
		return 0;
	out->dd_url = (char *)(e->kind == EP_EXTRA ? cfg->extra[e->idx].url : cfg->rw[e->idx].url);
	out->api_key = e->kind == EP_EXTRA ? cfg->extra[e->idx].api_key : NULL;
	if (asprintf(path, "%s-%016llx", cfg->storage_path ? cfg->storage_path : "",
		     (unsigned long long)e->id) < 0) {
		*path = NULL;
		return -ENOMEM;
	}
	out->storage_path = *path;
	return 0;
}

static int add_ep(struct fwd_group *g, struct event_base *base, const struct fwd_config *cfg,
		  enum ep_kind kind, size_t idx, char *err, size_t errlen)
{
	struct gep *e = &g->ep[g->n];
	const char *url = kind == EP_MAIN ? cfg->dd_url : kind == EP_EXTRA ? cfg->extra[idx].url : cfg->rw[idx].url;
	const char *key = kind == EP_EXTRA ? cfg->extra[idx].api_key : NULL;
	char shown[256], *path = NULL, ferr[400] = "";
	struct fwd_config d;
	*e = (struct gep){ .kind = kind, .idx = idx, .id = ep_id(kind, url, key) };
	shown_url(url, shown, sizeof(shown));
	if (g->n == 0)
		snprintf(e->section, sizeof(e->section), "forwarder");
	else
		snprintf(e->section, sizeof(e->section), "forwarder_%u", (unsigned)g->n);
	if (kind == EP_RW)
		snprintf(e->label, sizeof(e->label), "remote_write %s", cfg->rw[idx].name && *cfg->rw[idx].name
			 ? cfg->rw[idx].name : shown);
	else if (kind == EP_EXTRA)
		snprintf(e->label, sizeof(e->label), "datadog %s (additional endpoint %zu)", shown, idx + 1);
	else
		snprintf(e->label, sizeof(e->label), "datadog %s", shown);
	if (derive(cfg, e, &d, &path) < 0 || !(e->url = strdup(url)))
		goto nomem;
	e->f = fwd_new(base, &d, ferr, sizeof(ferr));
	free(path);
	if (!e->f) {
		snprintf(err, errlen, "%s: %s", e->label, ferr);
		free(e->url);
		return -EINVAL;
	}
	if (kind == EP_RW && fwd_set_remote_write(e->f, cfg, &cfg->rw[idx], cfg->rw_counters) < 0) {
		fwd_free(e->f);
		free(e->url);
		goto nomem;
	}
	g->n++;
	log_info("forward: %s -> status section %s", e->label, e->section);
	return 0;
nomem:
	snprintf(err, errlen, "%s: out of memory", e->label);
	return -ENOMEM;
}

struct fwd_group *fwd_group_new(struct event_base *base, const struct fwd_config *cfg, char *err,
				size_t errlen)
{
	struct fwd_group *g = calloc(1, sizeof(*g));
	int rc = g ? 0 : -ENOMEM;
	if (rc == 0 && cfg->intake_enabled)
		rc = add_ep(g, base, cfg, EP_MAIN, 0, err, errlen);
	for (size_t i = 0; rc == 0 && i < cfg->nextra && g->n < GROUP_MAX; i++)
		rc = add_ep(g, base, cfg, EP_EXTRA, i, err, errlen);
	for (size_t i = 0; rc == 0 && i < cfg->nrw && g->n < GROUP_MAX; i++)
		rc = add_ep(g, base, cfg, EP_RW, i, err, errlen);
	if (rc < 0) {
		if (!g)
			snprintf(err, errlen, "forwarder: out of memory");
		fwd_group_free(g);
		return NULL;
	}
	return g;
}

void fwd_group_free(struct fwd_group *g)
{
	if (!g)
		return;
	for (size_t i = 0; i < g->n; i++) {
		fwd_free(g->ep[i].f);
		free(g->ep[i].url);
	}
	free(g);
}

size_t fwd_group_count(const struct fwd_group *g)
{
	return g ? g->n : 0;
}

struct fwd *fwd_group_at(const struct fwd_group *g, size_t i)
{
	return i < g->n ? g->ep[i].f : NULL;
}

const char *fwd_group_section(const struct fwd_group *g, size_t i)
{
	return i < g->n ? g->ep[i].section : NULL;
}

const char *fwd_group_label(const struct fwd_group *g, size_t i)
{
	return i < g->n ? g->ep[i].label : NULL;
}

bool fwd_group_wants_sketch_series(const struct fwd_group *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (fwd_wants_sketch_series(g->ep[i].f))
			return true;
	return false;
}

void fwd_group_set_hostname(struct fwd_group *g, const char *hostname)
{
	for (size_t i = 0; i < g->n; i++)
		fwd_set_hostname(g->ep[i].f, hostname);
}

int fwd_group_submit(struct fwd_group *g, const struct batch *b, int64_t now)
{
	int rc = 0;
	for (size_t i = 0; i < g->n; i++) {
		int r = fwd_submit(g->ep[i].f, b, now);
		if (r < 0 && rc == 0)
			rc = r;
	}
	return rc;
}

void fwd_group_get_stats(const struct fwd_group *g, struct fwd_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < g->n; i++) {
		struct fwd_stats s;
		fwd_get_stats(g->ep[i].f, &s);
		stat_table_add(&fwd_stats_table, out, &s);
	}
}

static void one_drained(void *arg)
{
	struct fwd_group *g = arg;
	if (g->draining && --g->draining == 0 && g->done)
		g->done(g->done_arg);
}

void fwd_group_drain(struct fwd_group *g, double timeout_s, void (*done)(void *arg), void *arg)
{
	g->done = done;
	g->done_arg = arg;
	g->draining = g->n;
	if (g->n == 0) {
		done(arg);
		return;
	}
	for (size_t i = 0; i < g->n; i++)
		fwd_drain(g->ep[i].f, timeout_s, one_drained, g);
}

static bool same_ep(const struct gep *e, const struct fwd_config *cfg)
{
	const char *url = e->kind == EP_MAIN ? cfg->dd_url
			  : e->kind == EP_EXTRA ? (e->idx < cfg->nextra ? cfg->extra[e->idx].url : NULL)
			  : (e->idx < cfg->nrw ? cfg->rw[e->idx].url : NULL);
	if (!url || (e->kind == EP_MAIN && !cfg->intake_enabled))
		return false;
	const char *key = e->kind == EP_EXTRA ? cfg->extra[e->idx].api_key : NULL;
	return e->kind == EP_MAIN || ep_id(e->kind, url, key) == e->id;
}

int fwd_group_reconfigure(struct fwd_group *g, const struct fwd_config *cfg)
{
	size_t want = (cfg->intake_enabled ? 1 : 0) + cfg->nextra + cfg->nrw;
	int rc = want == g->n ? 0 : -EBUSY;
	for (size_t i = 0; i < g->n; i++) {
		struct gep *e = &g->ep[i];
		struct fwd_config d;
		char *path = NULL;
		if (!same_ep(e, cfg)) {
			rc = -EBUSY;
			continue;
		}
		int r = derive(cfg, e, &d, &path);
		if (r == 0)
			r = e->kind == EP_RW ? fwd_reconfigure_remote_write(e->f, &d, &cfg->rw[e->idx], cfg->rw_counters)
					     : fwd_reconfigure(e->f, &d);
		free(path);
		if (r < 0 && (rc == 0 || rc == -EBUSY))
			rc = r;
	}
	return rc;
}

const char *fwd_group_base_url(const struct fwd_group *g)
{
	return g->n ? fwd_base_url(g->ep[0].f) : "none";
}
