/*
 * config_keys.c - the table of agent.yaml's top-level keys (name, kind,
 * field, bounds) and the handlers of keys with structure or cross-field
 * meaning (bind_host, socket mode, histogram lists, proxy, use_v2_api, ...).
 * Caller: config.c (cfg_walk). Bounds are documented in conf.d/agent.yaml;
 * keep both in step. Threading: one load context per thread.
 */
#include <ctype.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config_int.h"
#include "core/log.h"

#define MAX_PERCENTILES 32

/* ---- handlers for keys with structure or cross-field meaning ---- */

static int expand_host(const char *h, char **v, size_t *n)
{
	const char *two[] = { "127.0.0.1", "::1" };
	bool local = !strcmp(h, "localhost");

	for (size_t i = 0; i < (local ? 2u : 1u); i++)
		if (!(v[(*n)++] = strdup(local ? two[i] : h)))
			return -ENOMEM;
	return 0;
}

/* bind_host: "localhost" -> 127.0.0.1 and ::1; an address; or a list of them. */
static int h_bind_host(struct ctx *c, const char *key, const struct ynode *n)
{
	struct net_config *net = &c->cfg->net;
	char *one = NULL, **list = &one, **v = NULL;
	size_t nlist = 1, nv = 0;
	int rc;

	if (n->kind == YNODE_MAP) {
		cfg_report(c, true, n, key, "expected an address or a list of addresses");
		return -EINVAL;
	} else if (n->kind == YNODE_SCALAR) {
		rc = cfg_get_str(c, key, n, &one);
	} else {
		list = NULL;
		rc = cfg_get_strlist(c, key, n, CFG_MAX_LIST, &list, &nlist);
	}
	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nlist && rc == 0; i++) {
		if (!list[i][0]) {
			cfg_report(c, true, n, key, "an address must not be empty");
			rc = -EINVAL;
		}
	}
	if (rc == 0 && nlist == 0) {
		cfg_report(c, true, n, key, "must name at least one address");
		rc = -EINVAL;
	}
	if (rc == 0 && !(v = calloc(nlist * 2, sizeof(*v))))
		rc = -ENOMEM;
	for (size_t i = 0; rc == 0 && i < nlist; i++)
		rc = expand_host(list[i], v, &nv);
	if (list == &one)
		free(one);
	else
		cfg_strv_free(list, nlist);
	if (rc < 0) {
		cfg_strv_free(v, nv);
		return rc;
	}
	cfg_strv_free(net->bind_hosts, net->nbind_hosts);
	net->bind_hosts = v;
	net->nbind_hosts = nv;
	return 0;
}

/* dogstatsd_tag_limit_action: strip_tag | drop_sample. */
static int h_tag_limit_action(struct ctx *c, const char *key, const struct ynode *n)
{
	static const char *const names[] = { "strip_tag", "drop_sample" };
	int v = cfg_get_enum(c, key, n, names, 2, "strip_tag, drop_sample");

	if (v >= 0)
		c->cfg->aggr.tag_limit_drop = v == 1;
	return v < 0 ? v : 0;
}

/* What is wrong with one dogstatsd_tags_exclude rule, or NULL (the rule
 * syntax is aggr/tagrules.h's). */
static const char *tag_rule_problem(const char *r)
{
	const char *bar = strchr(r, '|');
	size_t klen = bar ? (size_t)(bar - r) : strlen(r);

	if (!klen)
		return "the tag key pattern must not be empty";
	if (bar && (!bar[1] || strchr(bar + 1, '|')))
		return "expected KEY or KEY|METRIC (one '|', both sides non-empty)";
	if (memchr(r, ':', klen))
		return "a tag key pattern has no ':' (it matches the key, not key:value)";
	return NULL;
}

/* dogstatsd_tags_exclude: a list of "KEY" / "KEY|METRIC" glob rules. */
static int h_tags_exclude(struct ctx *c, const char *key, const struct ynode *n)
{
	struct aggr_config *a = &c->cfg->aggr;
	char **v = NULL, path[96];
	size_t nv = 0;
	int rc = cfg_get_strlist(c, key, n, CFG_MAX_LIST, &v, &nv);

	if (rc < 0)
		return rc;
	for (size_t i = 0; i < nv; i++) {
		const char *why = tag_rule_problem(v[i]);
		if (why) {
			cfg_path(path, sizeof(path), "%s[%zu]", key, i);
			cfg_report(c, true, n->kind == YNODE_SEQ ? n->items[i] : n, path, "%s", why);
			rc = -EINVAL;
		}
	}
	if (rc < 0) {
		cfg_strv_free(v, nv);
		return rc;
	}
	cfg_strv_free(a->tags_exclude, a->ntags_exclude);
	a->tags_exclude = v;
	a->ntags_exclude = nv;
	return 0;
}

/* Octal string "0660" / 0o660, or a decimal integer (432 == 0660). */
static int h_socket_mode(struct ctx *c, const char *key, const struct ynode *n)
{
	const char *s = ynode_str(n);
	int64_t v = 0;

	if (s && s[0] == '0' && s[1] >= '0' && s[1] <= '9') {
		char *end;
		long m = strtol(s, &end, 8);
		if (*end || strlen(s) > 6) {
			cfg_report(c, true, n, key, "expected an octal mode like \"0660\"");
			return -EINVAL;
		}
		v = m;
		if (v > 0777) {
			cfg_report(c, true, n, key, "mode %s is out of range [0, 0777]", s);
			return -EINVAL;
		}
	} else if (cfg_get_int(c, key, n, 0, 0777, &v) < 0) {
		return -EINVAL;
	}
	c->cfg->net.socket_mode = (unsigned)v;
	return 0;
}

static int h_tags(struct ctx *c, const char *key, const struct ynode *n)
{
	int i = strcmp(key, "tags") != 0;

	return cfg_get_strlist(c, key, n, CFG_MAX_LIST, &c->tags[i], &c->ntags[i]);
}

static int h_hist_aggs(struct ctx *c, const char *key, const struct ynode *n)
{
	static const char *const names[] = { "max", "median", "avg", "count", "min", "sum" };
	unsigned mask = 0;
	char path[96];
	int rc = 0;

	if (n->kind != YNODE_SEQ) {
		cfg_report(c, true, n, key, "expected a list (max, median, avg, count, min, sum)");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(path, sizeof(path), "%s[%zu]", key, i);
		int idx = cfg_get_enum(c, path, n->items[i], names, 6, "max, median, avg, count, min, sum");
		if (idx < 0)
			rc = idx;
		else
			mask |= 1u << idx;	/* names[] is in HIST_AGG_* bit order */
	}
	if (rc == 0)
		c->cfg->aggr.histogram_aggregates = mask;
	return rc;
}

static int read_percentile(struct ctx *c, const char *path, const struct ynode *n, void *item)
{
	return cfg_get_double(c, path, n, 0, 1, item);
}

static void free_array(void *v, size_t n)
{
	(void)n;
	free(v);
}

static int h_percentiles(struct ctx *c, const char *key, const struct ynode *n)
{
	static const struct cfg_list spec = {
		MAX_PERCENTILES, "a list of numbers in [0, 1]", sizeof(double), read_percentile, free_array,
	};
	struct aggr_config *a = &c->cfg->aggr;
	void *v;
	int rc = cfg_get_list(c, key, n, &spec, &v);

	if (rc < 0)
		return rc;
	free(a->histogram_percentiles);
	a->histogram_percentiles = v;
	a->nhistogram_percentiles = n->n;
	return 0;
}

static int h_compressor(struct ctx *c, const char *key, const struct ynode *n)
{
	static const char *const names[] = { "zlib", "gzip", "zstd", "none" };
	int v = cfg_get_enum(c, key, n, names, 4, "zlib, gzip, zstd, none");

	if (v >= 0)
		c->cfg->fwd.compressor = (enum compressor_kind)v;
	return v < 0 ? v : 0;
}

static int h_distributions(struct ctx *c, const char *key, const struct ynode *n)
{
	static const char *const names[] = { "sketches", "series" };
	int v = cfg_get_enum(c, key, n, names, 2, "sketches, series");

	if (v >= 0)
		c->cfg->fwd.distributions = (enum distribution_mode)v;
	return v < 0 ? v : 0;
}

static int h_zstd_level(struct ctx *c, const char *key, const struct ynode *n)
{
	int64_t v;
	int rc = cfg_get_int(c, key, n, 1, 22, &v);

	if (rc == 0)
		c->cfg->fwd.zstd_level = (int)v;
	return rc;
}

static int h_zlib_level(struct ctx *c, const char *key, const struct ynode *n)
{
	int64_t v;
	int rc = cfg_get_int(c, key, n, 1, 9, &v);

	if (rc == 0)
		c->cfg->fwd.zlib_level = (int)v;
	return rc;
}

static int h_log_level(struct ctx *c, const char *key, const struct ynode *n)
{
	char buf[80];

	if (n->kind == YNODE_SCALAR && log_level_parse(n->str) >= 0)
		return cfg_get_str(c, key, n, &c->cfg->log_level);
	cfg_report(c, true, n, key, "invalid log level '%s' (trace, debug, info, warn, error, critical, off)",
	       n->kind == YNODE_SCALAR ? cfg_shown(buf, sizeof(buf), n->str, n->len) : "?");
	return -EINVAL;
}

static int h_url(struct ctx *c, const char *key, const struct ynode *n)
{
	char *s = NULL;
	int rc = cfg_get_str(c, key, n, &s);

	if (rc == 0 && s[0] && !cfg_valid_url(s)) {
		cfg_report(c, true, n, key, "must be http:// or https:// followed by a host");
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = cfg_set_str(&c->cfg->fwd.dd_url, s);
	free(s);
	return rc;
}

bool cfg_valid_site(const char *s)
{
	if (!s[0])
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '.' && *s != '-')
			return false;
	return true;
}

static int h_site(struct ctx *c, const char *key, const struct ynode *n)
{
	char *s = NULL;
	int rc = cfg_get_str(c, key, n, &s);

	if (rc == 0 && !cfg_valid_site(s)) {
		cfg_report(c, true, n, key, "expected a domain like datadoghq.com or datadoghq.eu");
		rc = -EINVAL;
	}
	if (rc == 0)
		rc = cfg_set_str(&c->cfg->fwd.site, s);
	free(s);
	return rc;
}

static int h_key_file_check(struct ctx *c, const char *key, const struct ynode *n)
{
	return cfg_get_bool(c, key, n, &c->key_file_check);
}

/* use_v2_api: {series: bool} */
static int h_v2api(struct ctx *c, const char *key, const struct ynode *n)
{
	int rc = 0;
	bool b;

	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map like {series: true}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		if (strcmp(n->keys[i]->str, "series") != 0) {
			cfg_unknown_key(c, key, n->keys[i]);
		} else if (!ynode_is_null(n->items[i])) {
			if (cfg_get_bool(c, "use_v2_api.series", n->items[i], &b) < 0)
				rc = -EINVAL;
			else
				c->cfg->fwd.series_api = b ? SERIES_API_V2 : SERIES_API_V1;
		}
	}
	return rc;
}

/* no_proxy: a list (joined with ',' as curl wants) or a string. */
static int proxy_noproxy(struct ctx *c, const struct ynode *n)
{
	const char *key = "proxy.no_proxy";
	char **v = NULL, *s, *p;
	size_t nv = 0, len = 1;
	int rc;

	if (n->kind != YNODE_SEQ)
		return cfg_get_str(c, key, n, &c->cfg->fwd.no_proxy);
	if ((rc = cfg_get_strlist(c, key, n, CFG_MAX_LIST, &v, &nv)) < 0)
		return rc;
	for (size_t i = 0; i < nv; i++)
		len += strlen(v[i]) + 1;
	s = p = malloc(len);
	if (s) {
		*p = '\0';
		for (size_t i = 0; i < nv; i++)
			p += sprintf(p, "%s%s", i ? "," : "", v[i]);
		free(c->cfg->fwd.no_proxy);
		c->cfg->fwd.no_proxy = s;
	}
	cfg_strv_free(v, nv);
	return s ? 0 : -ENOMEM;
}

static int h_proxy(struct ctx *c, const char *key, const struct ynode *n)
{
	struct fwd_config *f = &c->cfg->fwd;
	int rc = 0, r;

	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map {http, https, no_proxy}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		const struct ynode *v = n->items[i];
		if (ynode_is_null(v) && (!strcmp(k, "http") || !strcmp(k, "https") ||
					 !strcmp(k, "no_proxy")))
			continue;
		if (!strcmp(k, "http"))
			r = cfg_get_str(c, "proxy.http", v, &f->proxy_http);
		else if (!strcmp(k, "https"))
			r = cfg_get_str(c, "proxy.https", v, &f->proxy_https);
		else if (!strcmp(k, "no_proxy"))
			r = proxy_noproxy(c, v);
		else
			r = 0, cfg_unknown_key(c, key, n->keys[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	return rc;
}

/* ---- the key table ---- */

enum kind { K_STR, K_BOOL, K_INT, K_UINT, K_SIZE, K_I64, K_DOUBLE, K_STRLIST, K_FN, K_SECTION };

struct key {
	const char *name;
	enum kind kind;
	size_t off;		/* into struct agent_config */
	size_t off_n;		/* K_STRLIST: the count */
	int64_t lo, hi;		/* integers */
	double dlo, dhi;	/* K_DOUBLE */
	int (*fn)(struct ctx *c, const char *key, const struct ynode *n);
};

#define OFF(f) offsetof(struct agent_config, f)
#define STR(k, f) { .name = k, .kind = K_STR, .off = OFF(f) }
#define BOOL(k, f) { .name = k, .kind = K_BOOL, .off = OFF(f) }
#define NUM(k, t, f, l, h) { .name = k, .kind = t, .off = OFF(f), .lo = l, .hi = h }
#define DBL(k, f, l, h) { .name = k, .kind = K_DOUBLE, .off = OFF(f), .dlo = l, .dhi = h }
#define LIST(k, f, nf) { .name = k, .kind = K_STRLIST, .off = OFF(f), .off_n = OFF(nf) }
#define FN(k, f) { .name = k, .kind = K_FN, .fn = f }

static const struct key keys[] = {
	STR("api_key", fwd.api_key),
	STR("api_key_file", fwd.api_key_file),
	FN("api_key_file_permissions_check", h_key_file_check),
	FN("site", h_site),
	FN("dd_url", h_url),
	STR("hostname", aggr.hostname),
	FN("tags", h_tags),
	FN("dogstatsd_tags", h_tags),
	NUM("dogstatsd_port", K_INT, net.port, 0, 65535),
	FN("bind_host", h_bind_host),
	BOOL("dogstatsd_non_local_traffic", net.non_local),
	STR("dogstatsd_socket", net.socket_path),
	FN("dogstatsd_socket_mode", h_socket_mode),
	NUM("dogstatsd_buffer_size", K_SIZE, net.buffer_size, 512, 65536),
	NUM("dogstatsd_so_rcvbuf", K_INT, net.so_rcvbuf, 0, 1 << 30),
	NUM("dogstatsd_pipeline_count", K_UINT, net.pipeline_count, 1, 64),
	NUM("dogstatsd_recv_batch", K_UINT, net.recv_batch, 1, 1024),
	STR("statsd_metric_namespace", aggr.namespace),
	LIST("statsd_metric_namespace_blacklist", aggr.namespace_blacklist,
	     aggr.nnamespace_blacklist),
	NUM("dogstatsd_expiry_seconds", K_I64, aggr.expiry_seconds, 0, 86400),
	NUM("dogstatsd_context_expiry_seconds", K_I64, aggr.context_expiry_seconds, 1, 86400),
	FN("histogram_aggregates", h_hist_aggs),
	FN("histogram_percentiles", h_percentiles),
	BOOL("dogstatsd_no_aggregation_pipeline", aggr.no_aggregation_pipeline),
	BOOL("dogstatsd_gauge_deltas", aggr.gauge_deltas),
	BOOL("histogram_copy_to_distribution", aggr.hist_copy_to_dist),
	STR("histogram_copy_to_distribution_prefix", aggr.hist_copy_to_dist_prefix),
	NUM("dogstatsd_max_contexts", K_SIZE, aggr.max_contexts, 1, 100000000),
	NUM("dogstatsd_max_contexts_per_metric", K_SIZE, aggr.max_contexts_per_metric, 1,
	    100000000),
	NUM("dogstatsd_set_exact_max_size", K_SIZE, aggr.set_exact_max, 0, 10000000),
	FN("dogstatsd_mapper_profiles", cfg_mapper_profiles),
	NUM("dogstatsd_tag_value_limit", K_SIZE, aggr.tag_value_limit, 0, 100000000),
	FN("dogstatsd_tag_limit_action", h_tag_limit_action),
	FN("dogstatsd_tags_exclude", h_tags_exclude),
	NUM("dogstatsd_memory_limit", K_SIZE, aggr.memory_limit, 0, (int64_t)1 << 40),
	NUM("dogstatsd_max_name_length", K_SIZE, limits.max_name_len, 1, 65536),
	NUM("dogstatsd_max_tags_per_message", K_SIZE, limits.max_tags, 1, 8192),
	NUM("dogstatsd_max_tag_length", K_SIZE, limits.max_tag_len, 1, 65536),
	NUM("dogstatsd_max_values_per_message", K_SIZE, limits.max_values, 1, 65536),
	NUM("dogstatsd_flush_interval", K_INT, flush_interval_s, 1, 3600),
	NUM("dogstatsd_flush_grace_ms", K_INT, flush_grace_ms, 0, 5000),
	NUM("notification_max_age", K_INT, notify_max_age_s, 60, 7 * 86400),
	BOOL("telemetry_enabled", telemetry_enabled),
	NUM("forwarder_timeout", K_INT, fwd.timeout_s, 1, 600),
	NUM("forwarder_retry_queue_payloads_max_size", K_SIZE, fwd.retry_queue_max_bytes, 1,
	    (int64_t)4 << 30),
	NUM("forwarder_storage_max_size_in_bytes", K_SIZE, fwd.storage_max_bytes, 0,
	    (int64_t)1 << 40),
	STR("forwarder_storage_path", fwd.storage_path),
	DBL("forwarder_backoff_base", fwd.backoff_base, 0.001, 3600),
	DBL("forwarder_backoff_factor", fwd.backoff_factor, 1, 100),
	DBL("forwarder_backoff_max", fwd.backoff_max, 0.001, 86400),
	DBL("forwarder_stop_timeout", fwd.drain_timeout_s, 0, 600),
	FN("serializer_compressor_kind", h_compressor),
	FN("serializer_zstd_compressor_level", h_zstd_level),
	FN("serializer_compressor_level", h_zlib_level),
	FN("use_v2_api", h_v2api),
	FN("forwarder_distributions", h_distributions),
	NUM("serializer_max_series_points_per_payload", K_SIZE, fwd.max_points_per_payload, 1,
	    10000000),
	FN("proxy", h_proxy),
	FN("additional_endpoints", cfg_additional_endpoints),
	FN("remote_write", cfg_remote_write),
	FN("remote_write_counters", cfg_rw_counters),
	BOOL("skip_ssl_validation", fwd.skip_ssl_validation),
	STR("tls_ca_file", fwd.ca_file),
	STR("dogstatsd_output_file", output.path),
	STR("status_host", status.host),
	NUM("status_port", K_INT, status.port, 0, 65535),
	STR("run_path", run_path),
	FN("log_level", h_log_level),
	STR("log_file", log_file),
	STR("alerts_dir", alerts_dir),
	STR("notifiers_file", notifiers_file),
	{ .name = "notifiers", .kind = K_SECTION },	/* read by alert/ from cfg->doc */
};

static int apply_int(struct ctx *c, const struct key *k, const struct ynode *n, void *field)
{
	int64_t v;
	int rc = cfg_get_int(c, k->name, n, k->lo, k->hi, &v);

	if (rc < 0)
		return rc;
	switch (k->kind) {
	case K_INT:
		*(int *)field = (int)v;
		break;
	case K_UINT:
		*(unsigned *)field = (unsigned)v;
		break;
	case K_SIZE:
		*(size_t *)field = (size_t)v;
		break;
	default:
		*(int64_t *)field = v;
		break;
	}
	return 0;
}

static int apply(struct ctx *c, const struct key *k, const struct ynode *n)
{
	void *field = (char *)c->cfg + k->off;

	if (ynode_is_null(n))
		return 0;	/* `key:` with no value keeps the default */
	switch (k->kind) {
	case K_STR:
		return cfg_get_str(c, k->name, n, (char **)field);
	case K_BOOL:
		return cfg_get_bool(c, k->name, n, (bool *)field);
	case K_DOUBLE:
		return cfg_get_double(c, k->name, n, k->dlo, k->dhi, (double *)field);
	case K_STRLIST:
		return cfg_get_strlist(c, k->name, n, CFG_MAX_LIST, (char ***)field,
				   (size_t *)((char *)c->cfg + k->off_n));
	case K_FN:
		return k->fn(c, k->name, n);
	case K_SECTION:
		return 0;
	default:
		return apply_int(c, k, n, field);
	}
}

static const struct key *find_key(const struct ynode *k)
{
	if (strlen(k->str) != k->len)
		return NULL;
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		if (!strcmp(keys[i].name, k->str))
			return &keys[i];
	return NULL;
}

int cfg_walk(struct ctx *c, const struct ynode *root)
{
	for (size_t i = 0; i < root->n; i++) {
		const struct key *k = find_key(root->keys[i]);
		int rc;
		if (!k) {
			cfg_unknown_key(c, NULL, root->keys[i]);
			continue;
		}
		rc = apply(c, k, root->items[i]);
		if (rc == -ENOMEM)
			return rc;
	}
	return 0;
}
