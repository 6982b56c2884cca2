/*
 * config_endpoints.c - the keys that add intakes: additional_endpoints
 * (Datadog's {url: [api_key, ...]}), remote_write (a list in prometheus.yml's
 * shape) and remote_write_counters. Caller: the key table (config_keys.c).
 * Secrets read from files (password_file, credentials_file,
 * bearer_token_file) never reach a message. Threading: one load context.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config_int.h"

#define MAX_ENDPOINTS 32	/* additional_endpoints pairs, remote_write entries */
#define MAX_HEADERS 64
#define MAX_SECRET_FILE 4096

static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

static int get_url(struct ctx *c, const char *key, const struct ynode *n, char **out)
{
	int rc = cfg_get_str(c, key, n, out);
	if (rc == 0 && !cfg_valid_url(*out)) {
		cfg_report(c, true, n, key, "must be http:// or https:// followed by a host");
		rc = -EINVAL;
	}
	return rc;
}

/* ---- additional_endpoints ---- */

static int add_pair(struct ctx *c, const char *url, const struct ynode *kn, const char *path)
{
	struct fwd_config *f = &c->cfg->fwd;
	char *k = NULL;
	int rc = cfg_get_str(c, path, kn, &k);
	if (rc == 0 && (!k[0] || !printable(k))) {
		cfg_report(c, true, kn, path, "an API key must be non-empty, without spaces or control characters");
		rc = -EINVAL;
	}
	if (rc == 0 && f->nextra >= MAX_ENDPOINTS) {
		cfg_report(c, true, kn, path, "more than %d endpoint/key pairs", MAX_ENDPOINTS);
		rc = -EINVAL;
	}
	struct dd_endpoint_config *v = rc == 0 ? realloc(f->extra, (f->nextra + 1) * sizeof(*v)) : NULL;
	if (rc == 0 && !v)
		rc = -ENOMEM;
	if (rc == 0) {
		f->extra = v;
		v[f->nextra].api_key = k;
		if (!(v[f->nextra].url = strdup(url)))
			rc = -ENOMEM;
		else
			f->nextra++;
	}
	if (rc < 0 && k) {
		explicit_bzero(k, strlen(k));
		free(k);
	}
	return rc;
}

int cfg_additional_endpoints(struct ctx *c, const char *key, const struct ynode *n)
{
	char path[160];
	int rc = 0;
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map of URL to a list of API keys");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n && rc != -ENOMEM; i++) {
		char *url = NULL;
		const struct ynode *v = n->items[i];
		cfg_path(path, sizeof(path), "%s.%s", key, n->keys[i]->str);
		int r = get_url(c, path, n->keys[i], &url);
		if (r == 0 && v->kind == YNODE_MAP) {
			cfg_report(c, true, v, path, "expected a list of API keys");
			r = -EINVAL;
		} else if (r == 0 && v->kind == YNODE_SCALAR) {
			r = add_pair(c, url, v, path);
		}
		for (size_t k = 0; r == 0 && v->kind == YNODE_SEQ && k < v->n; k++) {
			char ip[176];
			cfg_path(ip, sizeof(ip), "%s[%zu]", path, k);
			r = add_pair(c, url, v->items[k], ip);
		}
		free(url);
		if (r < 0)
			rc = r;
	}
	return rc;
}

/* ---- remote_write ---- */

/* Prometheus durations: "30s", "1m30s", "500ms"; rounded up to seconds. */
static int get_duration(struct ctx *c, const char *key, const struct ynode *n, int *out)
{
	const char *s = ynode_str(n);
	double total = 0;
	while (s && *s) {
		char *end;
		double v = strtod(s, &end);
		if (end == s || v < 0)
			break;
		double mult = !strncmp(end, "ms", 2) ? 0.001 : *end == 's' ? 1 : *end == 'm' ? 60
			      : *end == 'h' ? 3600 : -1;
		if (mult < 0)
			break;
		total += v * mult;
		s = end + (!strncmp(end, "ms", 2) ? 2 : 1);
	}
	if (!s || *s || total > 600 || !ynode_str(n)[0]) {
		cfg_report(c, true, n, key, "expected a duration like 30s or 1m, at most 10m");
		return -EINVAL;
	}
	*out = total < 1 ? 1 : (int)(total + 0.999);
	return 0;
}

/* The whole file, trailing whitespace removed; relative paths are taken
 * next to the configuration file (as Prometheus does). */
static int read_secret(struct ctx *c, const char *key, const struct ynode *n, char **out)
{
	char *path = NULL, buf[MAX_SECRET_FILE + 1];
	int rc = cfg_get_str(c, key, n, &path);
	if (rc < 0)
		return rc;
	const char *slash = strrchr(c->file, '/');
	char *full = NULL;
	if (path[0] != '/' && slash && asprintf(&full, "%.*s/%s", (int)(slash - c->file), c->file, path) < 0)
		full = NULL;
	const char *use = full ? full : path;
	int fd = open(use, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd < 0 || r < 0) {
		cfg_report(c, true, n, key, "cannot read %s: %s", use, strerror(errno));
		rc = -EINVAL;
	} else if (r > MAX_SECRET_FILE) {
		cfg_report(c, true, n, key, "%s is larger than %d bytes", use, MAX_SECRET_FILE);
		rc = -EINVAL;
	}
	if (fd >= 0)
		close(fd);
	free(full);
	free(path);
	if (rc < 0)
		return rc;
	while (r > 0 && isspace((unsigned char)buf[r - 1]))
		r--;
	buf[r] = 0;
	rc = cfg_set_str(out, buf);
	explicit_bzero(buf, sizeof(buf));
	return rc;
}

static int rw_basic_auth(struct ctx *c, const char *key, const struct ynode *n, struct remote_write_config *w)
{
	char path[200];
	int rc = 0, r;
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map {username, password | password_file}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		cfg_path(path, sizeof(path), "%s.%s", key, k);
		if (!strcmp(k, "username"))
			r = cfg_get_str(c, path, n->items[i], &w->basic_user);
		else if (!strcmp(k, "password"))
			r = cfg_get_str(c, path, n->items[i], &w->basic_password);
		else if (!strcmp(k, "password_file"))
			r = read_secret(c, path, n->items[i], &w->basic_password);
		else
			r = 0, cfg_unknown_key(c, key, n->keys[i]);
		if (r < 0)
			rc = r;
	}
	if (rc == 0 && !w->basic_user) {
		cfg_report(c, true, n, key, "username is required");
		rc = -EINVAL;
	}
	return rc;
}

static int rw_authorization(struct ctx *c, const char *key, const struct ynode *n,
			    struct remote_write_config *w)
{
	char path[200];
	int rc = 0, r;
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map {type, credentials | credentials_file}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		cfg_path(path, sizeof(path), "%s.%s", key, k);
		if (!strcmp(k, "type"))
			r = cfg_get_str(c, path, n->items[i], &w->auth_type);
		else if (!strcmp(k, "credentials"))
			r = cfg_get_str(c, path, n->items[i], &w->auth_credentials);
		else if (!strcmp(k, "credentials_file"))
			r = read_secret(c, path, n->items[i], &w->auth_credentials);
		else
			r = 0, cfg_unknown_key(c, key, n->keys[i]);
		if (r < 0)
			rc = r;
	}
	if (rc == 0 && w->auth_type && (!w->auth_type[0] || !printable(w->auth_type) ||
					!strcasecmp(w->auth_type, "basic"))) {
		cfg_report(c, true, n, key, "type must be one word and not Basic (use basic_auth)");
		rc = -EINVAL;
	}
	return rc;
}

static int rw_headers(struct ctx *c, const char *key, const struct ynode *n, struct remote_write_config *w)
{
	static const char *const reserved[] = { "authorization", "content-encoding", "content-type",
						"user-agent", "x-prometheus-remote-write-version",
						"content-length", "host" };
	char path[200];
	if (n->kind != YNODE_MAP || n->n > MAX_HEADERS) {
		cfg_report(c, true, n, key, "expected a map of at most %d header names to values", MAX_HEADERS);
		return -EINVAL;
	}
	w->header_names = calloc(n->n + 1, sizeof(char *));
	w->header_values = calloc(n->n + 1, sizeof(char *));
	if (!w->header_names || !w->header_values)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n->n && rc != -ENOMEM; i++) {
		const char *k = n->keys[i]->str;
		cfg_path(path, sizeof(path), "%s.%s", key, k);
		bool bad = !k[0] || strpbrk(k, ": \t\r\n") || !printable(k);
		for (size_t r = 0; r < sizeof(reserved) / sizeof(reserved[0]); r++)
			bad = bad || !strcasecmp(k, reserved[r]);
		if (bad) {
			cfg_report(c, true, n->keys[i], path, "not a header name that may be set here");
			rc = -EINVAL;
			continue;
		}
		char *v = NULL;
		int r = cfg_get_str(c, path, n->items[i], &v);
		if (r == 0 && strpbrk(v, "\r\n")) {
			cfg_report(c, true, n->items[i], path, "a header value must not contain a line break");
			r = -EINVAL;
		}
		if (r < 0) {
			free(v);
			rc = r;
			continue;
		}
		w->header_values[w->nheaders] = v;
		if (!(w->header_names[w->nheaders++] = strdup(k)))
			rc = -ENOMEM;
	}
	return rc;
}

static int rw_tls(struct ctx *c, const char *key, const struct ynode *n, struct remote_write_config *w)
{
	char path[200];
	int rc = 0, r;
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map {ca_file, cert_file, key_file, insecure_skip_verify}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		const char *k = n->keys[i]->str;
		cfg_path(path, sizeof(path), "%s.%s", key, k);
		if (!strcmp(k, "ca_file"))
			r = cfg_get_str(c, path, n->items[i], &w->ca_file);
		else if (!strcmp(k, "cert_file"))
			r = cfg_get_str(c, path, n->items[i], &w->cert_file);
		else if (!strcmp(k, "key_file"))
			r = cfg_get_str(c, path, n->items[i], &w->key_file);
		else if (!strcmp(k, "insecure_skip_verify"))
			r = cfg_get_bool(c, path, n->items[i], &w->insecure_skip_verify);
		else
			r = 0, cfg_unknown_key(c, key, n->keys[i]);
		if (r < 0)
			rc = r;
	}
	if (rc == 0 && (!w->cert_file) != (!w->key_file)) {
		cfg_report(c, true, n, key, "cert_file and key_file go together");
		rc = -EINVAL;
	}
	return rc;
}

static int rw_queue(struct ctx *c, const char *key, const struct ynode *n, struct remote_write_config *w)
{
	char path[200];
	int rc = 0;
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map {max_samples_per_send}");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		int64_t v;
		cfg_path(path, sizeof(path), "%s.%s", key, n->keys[i]->str);
		if (strcmp(n->keys[i]->str, "max_samples_per_send") != 0)
			cfg_unknown_key(c, key, n->keys[i]);
		else if (cfg_get_int(c, path, n->items[i], 1, 100000, &v) < 0)
			rc = -EINVAL;
		else
			w->max_samples = (size_t)v;
	}
	return rc;
}

static int rw_field(struct ctx *c, const char *path, const char *k, const struct ynode *v,
		    struct remote_write_config *w)
{
	if (!strcmp(k, "url"))
		return get_url(c, path, v, &w->url);
	if (!strcmp(k, "name"))
		return cfg_get_str(c, path, v, &w->name);
	if (!strcmp(k, "remote_timeout"))
		return get_duration(c, path, v, &w->timeout_s);
	if (!strcmp(k, "basic_auth"))
		return rw_basic_auth(c, path, v, w);
	if (!strcmp(k, "authorization"))
		return rw_authorization(c, path, v, w);
	if (!strcmp(k, "bearer_token"))
		return cfg_get_str(c, path, v, &w->auth_credentials);
	if (!strcmp(k, "bearer_token_file"))
		return read_secret(c, path, v, &w->auth_credentials);
	if (!strcmp(k, "headers"))
		return rw_headers(c, path, v, w);
	if (!strcmp(k, "tls_config"))
		return rw_tls(c, path, v, w);
	if (!strcmp(k, "queue_config"))
		return rw_queue(c, path, v, w);
	return 1;
}

static int rw_entry(struct ctx *c, const char *key, const struct ynode *n, struct remote_write_config *w)
{
	char path[160];
	int rc = 0;
	*w = (struct remote_write_config){ .timeout_s = 30, .max_samples = 2000 };
	if (n->kind != YNODE_MAP) {
		cfg_report(c, true, n, key, "expected a map with at least url:");
		return -EINVAL;
	}
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(path, sizeof(path), "%s.%s", key, n->keys[i]->str);
		if (ynode_is_null(n->items[i]))
			continue;
		int r = rw_field(c, path, n->keys[i]->str, n->items[i], w);
		if (r == 1)
			cfg_unknown_key(c, key, n->keys[i]);	/* relabelling, oauth2, sigv4, ... */
		else if (r < 0)
			rc = r;
	}
	if (rc == 0 && !w->url) {
		cfg_report(c, true, n, key, "url is required");
		rc = -EINVAL;
	}
	if (rc == 0 && w->basic_user && w->auth_credentials) {
		cfg_report(c, true, n, key, "basic_auth and authorization/bearer_token are mutually exclusive");
		rc = -EINVAL;
	}
	if (rc == 0 && w->auth_credentials && !printable(w->auth_credentials)) {
		cfg_report(c, true, n, key, "the credentials contain spaces or control characters");
		rc = -EINVAL;
	}
	return rc;
}

int cfg_remote_write(struct ctx *c, const char *key, const struct ynode *n)
{
	struct fwd_config *f = &c->cfg->fwd;
	char path[64];
	if (n->kind != YNODE_SEQ || n->n > MAX_ENDPOINTS) {
		cfg_report(c, true, n, key, "expected a list of at most %d entries (- url: ...)", MAX_ENDPOINTS);
		return -EINVAL;
	}
	struct remote_write_config *v = calloc(n->n + 1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	int rc = 0;
	for (size_t i = 0; i < n->n; i++) {
		cfg_path(path, sizeof(path), "%s[%zu]", key, i);
		int r = rw_entry(c, path, n->items[i], &v[i]);
		if (r < 0 && rc != -ENOMEM)
			rc = r;
	}
	if (rc < 0) {
		cfg_remote_write_free(v, n->n);
		return rc;
	}
	cfg_remote_write_free(f->rw, f->nrw);
	f->rw = v;
	f->nrw = n->n;
	return 0;
}

int cfg_rw_counters(struct ctx *c, const char *key, const struct ynode *n)
{
	static const char *const names[] = { "interval", "cumulative" };
	int v = cfg_get_enum(c, key, n, names, 2, "interval, cumulative");
	if (v >= 0)
		c->cfg->fwd.rw_counters = (enum rw_counter_mode)v;
	return v < 0 ? v : 0;
}

static void free_secret(char *s)
{
	if (s)
		explicit_bzero(s, strlen(s));
	free(s);
}

void cfg_remote_write_free(struct remote_write_config *v, size_t n)
{
	for (size_t i = 0; v && i < n; i++) {
		struct remote_write_config *w = &v[i];
		free(w->url);
		free(w->name);
		free(w->basic_user);
		free_secret(w->basic_password);
		free(w->auth_type);
		free_secret(w->auth_credentials);
		cfg_strv_free(w->header_names, w->nheaders);
		cfg_strv_free(w->header_values, w->nheaders);
		free(w->ca_file);
		free(w->cert_file);
		free(w->key_file);
	}
	free(v);
}

void cfg_endpoints_free(struct fwd_config *f)
{
	for (size_t i = 0; i < f->nextra; i++) {
		free(f->extra[i].url);
		free_secret(f->extra[i].api_key);
	}
	free(f->extra);
	cfg_remote_write_free(f->rw, f->nrw);
	f->extra = NULL;
	f->rw = NULL;
	f->nextra = f->nrw = 0;
}
