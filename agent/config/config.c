/*
 * config.c - see config.h. Defaults, agent.yaml -> struct agent_config,
 * validation, environment overrides.
 *
 * Caller: main/agent (at start and on SIGHUP), tests, the config fuzzer.
 * The keys themselves are a table in config_keys.c (mapper profiles in
 * config_mapper.c). A walk over the file reports every problem, not just the
 * first, as "file:line: key: message" through struct config_diag; the API key
 * is never written into any message. Values are applied to a private copy that is
 * handed to the caller only when no error was reported.
 * Ownership: the struct owns all of its strings and the parsed ydoc.
 * Threading: no shared state; call from one thread at a time per struct.
 */
#include "config/config.h"
#include "config/config_int.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"
#include "ddma_config.h"
#include "yamldoc/yamldoc.h"

#define DEFAULT_RUN_PATH "/var/lib/dd-mini-agent"
#define MAX_KEY_FILE 4096

/* ---- defaults ---- */

static const char *const default_blacklist[] = {
	"datadog.agent", "datadog.dogstatsd", "datadog.process", "datadog.trace_agent",
	"datadog.tracer",
};

static int default_hostname(char **out)
{
	char h[256];

	if (gethostname(h, sizeof(h)) < 0 || !h[0])
		snprintf(h, sizeof(h), "localhost");
	h[sizeof(h) - 1] = '\0';
	return cfg_set_str(out, h);
}

static int defaults_strings(struct agent_config *cfg)
{
	int rc = 0;

	rc |= cfg_set_str(&cfg->run_path, DEFAULT_RUN_PATH);
	rc |= cfg_set_str(&cfg->log_level, "info");
	rc |= cfg_set_str(&cfg->log_file, "");
	rc |= cfg_set_str(&cfg->alerts_dir, DDMA_SYSCONFDIR "/alerts.d");
	rc |= cfg_set_str(&cfg->notifiers_file, DDMA_SYSCONFDIR "/notifiers.yaml");
	rc |= cfg_set_str(&cfg->net.socket_path, "");
	rc |= cfg_set_str(&cfg->aggr.namespace, "");
	rc |= cfg_set_str(&cfg->aggr.hist_copy_to_dist_prefix, "");
	rc |= cfg_set_str(&cfg->fwd.api_key, "");
	rc |= cfg_set_str(&cfg->fwd.api_key_file, "");
	rc |= cfg_set_str(&cfg->fwd.site, "datadoghq.com");
	rc |= cfg_set_str(&cfg->fwd.dd_url, "");
	rc |= cfg_set_str(&cfg->fwd.storage_path, DEFAULT_RUN_PATH "/transactions_to_retry");
	rc |= cfg_set_str(&cfg->fwd.proxy_http, "");
	rc |= cfg_set_str(&cfg->fwd.proxy_https, "");
	rc |= cfg_set_str(&cfg->fwd.no_proxy, "");
	rc |= cfg_set_str(&cfg->fwd.ca_file, "");
	rc |= cfg_set_str(&cfg->output.path, "-");
	rc |= cfg_set_str(&cfg->status.host, "127.0.0.1");
	rc |= default_hostname(&cfg->aggr.hostname);
	return rc ? -ENOMEM : 0;
}

static int defaults_lists(struct agent_config *cfg)
{
	size_t nbl = sizeof(default_blacklist) / sizeof(default_blacklist[0]);
	struct aggr_config *a = &cfg->aggr;
	int rc = 0;

	cfg->net.bind_hosts = calloc(2, sizeof(char *));
	a->namespace_blacklist = calloc(nbl, sizeof(char *));
	a->histogram_percentiles = calloc(1, sizeof(double));
	if (!cfg->net.bind_hosts || !a->namespace_blacklist || !a->histogram_percentiles)
		return -ENOMEM;
	cfg->net.nbind_hosts = 2;
	rc |= cfg_set_str(&cfg->net.bind_hosts[0], "127.0.0.1");
	rc |= cfg_set_str(&cfg->net.bind_hosts[1], "::1");
	a->nnamespace_blacklist = nbl;
	for (size_t i = 0; i < nbl; i++)
		rc |= cfg_set_str(&a->namespace_blacklist[i], default_blacklist[i]);
	a->histogram_percentiles[0] = 0.95;
	a->nhistogram_percentiles = 1;
	return rc ? -ENOMEM : 0;
}

int config_defaults(struct agent_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->flush_interval_s = 10;
	cfg->flush_grace_ms = 250;
	cfg->notify_max_age_s = 6 * 3600;
	cfg->telemetry_enabled = true;
	cfg->limits = DSD_LIMITS_DEFAULT;
	cfg->net = NET_CONFIG_DEFAULT;
	cfg->aggr = AGGR_CONFIG_DEFAULT;
	cfg->fwd = FWD_CONFIG_DEFAULT;
	cfg->status.port = STATUS_CONFIG_DEFAULT_PORT;
	if (defaults_strings(cfg) < 0 || defaults_lists(cfg) < 0) {
		config_free(cfg);
		return -ENOMEM;
	}
	return 0;
}

void config_free(struct agent_config *cfg)
{
	if (!cfg)
		return;
	char **strs[] = {
		&cfg->path, &cfg->run_path, &cfg->log_level, &cfg->log_file, &cfg->alerts_dir,
		&cfg->notifiers_file, &cfg->net.socket_path, &cfg->aggr.hostname,
		&cfg->aggr.namespace, &cfg->aggr.hist_copy_to_dist_prefix, &cfg->fwd.api_key,
		&cfg->fwd.api_key_file, &cfg->fwd.site,
		&cfg->fwd.dd_url, &cfg->fwd.storage_path, &cfg->fwd.proxy_http,
		&cfg->fwd.proxy_https, &cfg->fwd.no_proxy, &cfg->fwd.ca_file, &cfg->output.path,
		&cfg->status.host,
	};
	if (cfg->fwd.api_key)
		explicit_bzero(cfg->fwd.api_key, strlen(cfg->fwd.api_key));
	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
		free(*strs[i]);
	cfg_strv_free(cfg->net.bind_hosts, cfg->net.nbind_hosts);
	cfg_strv_free(cfg->aggr.tags, cfg->aggr.ntags);
	cfg_strv_free(cfg->aggr.namespace_blacklist, cfg->aggr.nnamespace_blacklist);
	cfg_strv_free(cfg->aggr.tags_exclude, cfg->aggr.ntags_exclude);
	free(cfg->aggr.histogram_percentiles);
	cfg_mapper_free(cfg->aggr.mapper_profiles, cfg->aggr.nmapper_profiles);
	cfg_endpoints_free(&cfg->fwd);
	ydoc_free(cfg->doc);
	memset(cfg, 0, sizeof(*cfg));
}

/* ---- after the walk: derived values, files, environment, cross-checks ---- */

static int join_tags(struct ctx *c)
{
	struct aggr_config *a = &c->cfg->aggr;
	size_t n = c->ntags[0] + c->ntags[1], k = 0;
	char **v;

	if (n == 0)
		return 0;
	v = calloc(n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (int l = 0; l < 2; l++) {
		for (size_t i = 0; i < c->ntags[l]; i++)
			v[k++] = c->tags[l][i];	/* moved */
		free(c->tags[l]);
		c->tags[l] = NULL;
		c->ntags[l] = 0;
	}
	cfg_strv_free(a->tags, a->ntags);
	a->tags = v;
	a->ntags = n;
	return 0;
}

/* A relative path (or the default name) is taken next to the config file. */
static int beside_file(struct ctx *c, const struct ynode *root, const char *key, char **field,
		       const char *name)
{
	const char *slash = strrchr(c->file, '/');
	const struct ynode *n = ynode_get(root, key);
	bool set = n && !ynode_is_null(n);
	const char *rel = set ? *field : name;
	int dirlen = slash ? (int)(slash - c->file) : 1;
	char *s;

	if (rel[0] == '/')
		return 0;
	if (asprintf(&s, "%.*s/%s", dirlen, slash ? c->file : ".", rel) < 0)
		return -ENOMEM;
	free(*field);
	*field = s;
	return 0;
}

static int derive_paths(struct ctx *c, const struct ynode *root)
{
	struct agent_config *cfg = c->cfg;
	const struct ynode *n = ynode_get(root, "forwarder_storage_path");
	char *s;
	size_t nl;

	if (beside_file(c, root, "alerts_dir", &cfg->alerts_dir, "alerts.d") < 0 ||
	    beside_file(c, root, "notifiers_file", &cfg->notifiers_file, "notifiers.yaml") < 0)
		return -ENOMEM;
	if (!n || ynode_is_null(n)) {
		if (asprintf(&s, "%s/transactions_to_retry", cfg->run_path) < 0)
			return -ENOMEM;
		free(cfg->fwd.storage_path);
		cfg->fwd.storage_path = s;
	}
	nl = strlen(cfg->aggr.namespace);
	if (nl && cfg->aggr.namespace[nl - 1] != '.') {
		if (asprintf(&s, "%s.", cfg->aggr.namespace) < 0)
			return -ENOMEM;
		free(cfg->aggr.namespace);
		cfg->aggr.namespace = s;
	}
	return 0;
}

static bool valid_key(const char *s)
{
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f)
			return false;
	return true;
}

/* Reads api_key_file into fwd.api_key. The key itself never reaches a message. */
static int read_key_file(struct ctx *c, const struct ynode *n)
{
	const char *key = "api_key_file", *path = c->cfg->fwd.api_key_file;
	char buf[MAX_KEY_FILE + 1], *p, *e;
	struct stat st;
	ssize_t r;
	int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		cfg_report(c, true, n, key, "cannot read %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		cfg_report(c, true, n, key, "%s is not a regular file", path);
		goto fail;
	}
	if (st.st_mode & 077) {
		cfg_report(c, c->key_file_check, n, key,
			   "%s is accessible by group or others (mode %04o); chmod 600 it%s", path,
			   (unsigned)(st.st_mode & 07777),
			   c->key_file_check ? " or set api_key_file_permissions_check: false" : "");
		if (c->key_file_check)
			goto fail;
	}
	r = read(fd, buf, sizeof(buf));
	if (r < 0 || r > MAX_KEY_FILE) {
		cfg_report(c, true, n, key, "%s: %s", path,
			   r < 0 ? strerror(errno) : "larger than 4096 bytes");
		goto fail;
	}
	close(fd);
	buf[r] = '\0';
	for (p = buf; *p && isspace((unsigned char)*p); p++)
		;
	for (e = p + strlen(p); e > p && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	if (!*p || !valid_key(p) || strlen(p) != (size_t)(e - p)) {
		cfg_report(c, true, n, key, "%s does not hold an API key (empty or not printable)", path);
		return -EINVAL;
	}
	r = cfg_set_str(&c->cfg->fwd.api_key, p);
	explicit_bzero(buf, sizeof(buf));
	return (int)r;
fail:
	close(fd);
	return -EINVAL;
}

/* systemd's LoadCredential=api_key:...: $CREDENTIALS_DIRECTORY/api_key. An
 * absent or blank credential (the unit's SetCredential fallback is a lone
 * newline) means "no key here". The key never reaches a message. */
static int read_credential(struct ctx *c)
{
	const char *dir = getenv("CREDENTIALS_DIRECTORY");
	char path[4096], buf[MAX_KEY_FILE + 1], *p, *e;
	ssize_t r;
	int fd;

	if (!dir || !*dir || snprintf(path, sizeof(path), "%s/api_key", dir) >= (int)sizeof(path))
		return 0;
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return 0;
	r = read(fd, buf, MAX_KEY_FILE);
	close(fd);
	if (r <= 0)
		return 0;
	buf[r] = '\0';
	for (p = buf; *p && isspace((unsigned char)*p); p++)
		;
	for (e = p + strlen(p); e > p && isspace((unsigned char)e[-1]); e--)
		;
	*e = '\0';
	if (!*p)
		return 0;
	if (!valid_key(p)) {
		cfg_report(c, true, NULL, "api_key", "credential %s does not hold a printable API key", path);
		explicit_bzero(buf, sizeof(buf));
		return 0;
	}
	r = cfg_set_str(&c->cfg->fwd.api_key, p);
	explicit_bzero(buf, sizeof(buf));
	return (int)r;
}

static bool valid_hostname(const char *s)
{
	size_t n = strlen(s);

	for (const char *p = s; *p; p++)
		if (!isalnum((unsigned char)*p) && !strchr("-._", *p))
			return false;
	return n <= 255;
}

/* DD_API_KEY, DD_SITE, DD_DD_URL, DD_HOSTNAME, DD_LOG_LEVEL override the file. */
static int apply_env(struct ctx *c)
{
	struct agent_config *cfg = c->cfg;
	const char *v;
	int rc = 0;

	if ((v = getenv("DD_API_KEY")) && *v)
		rc |= cfg_set_str(&cfg->fwd.api_key, v);
	if ((v = getenv("DD_SITE")) && *v) {
		if (cfg_valid_site(v))
			rc |= cfg_set_str(&cfg->fwd.site, v);
		else
			cfg_report(c, true, NULL, "DD_SITE", "expected a domain like datadoghq.com");
	}
	if ((v = getenv("DD_DD_URL")) && *v) {
		if (cfg_valid_url(v))
			rc |= cfg_set_str(&cfg->fwd.dd_url, v);
		else
			cfg_report(c, true, NULL, "DD_DD_URL", "must be http:// or https:// followed by a host");
	}
	if ((v = getenv("DD_HOSTNAME")) && *v) {
		if (valid_hostname(v))
			rc |= cfg_set_str(&cfg->aggr.hostname, v);
		else
			cfg_report(c, true, NULL, "DD_HOSTNAME", "invalid hostname");
	}
	if ((v = getenv("DD_LOG_LEVEL")) && *v) {
		if (log_level_parse(v) >= 0)
			rc |= cfg_set_str(&cfg->log_level, v);
		else
			cfg_report(c, true, NULL, "DD_LOG_LEVEL", "invalid log level");
	}
	return rc ? -ENOMEM : 0;
}

/* Values that depend on several keys or on the environment. */
static void check_values(struct ctx *c, const struct ynode *root)
{
	struct fwd_config *f = &c->cfg->fwd;
	const char *env = getenv("DD_API_KEY");
	const struct ynode *n;

	if (f->api_key[0] && !valid_key(f->api_key)) {
		bool from_env = env && *env;
		cfg_report(c, true, from_env ? NULL : ynode_get(root, "api_key"),
			   from_env ? "DD_API_KEY" : "api_key",
			   "contains spaces or control characters");
	}
	if ((n = ynode_get(root, "hostname")) && !valid_hostname(c->cfg->aggr.hostname))
		cfg_report(c, true, n, "hostname",
			   "invalid hostname (letters, digits, '-', '.', '_'; at most 255 bytes)");
	/* Datadog's serializer_zstd_compressor_level is zstd's alone; zlib and
	 * gzip take serializer_compressor_level (ours) */
	f->compressor_level = f->compressor == COMPRESS_ZSTD ? f->zstd_level : f->zlib_level;
	c->cfg->aggr.pipeline_count = c->cfg->net.pipeline_count;
	if (f->backoff_max < f->backoff_base && (n = ynode_get(root, "forwarder_backoff_max")))
		cfg_report(c, true, n, "forwarder_backoff_max",
			   "smaller than forwarder_backoff_base (%g)", f->backoff_base);
}

static int finish(struct ctx *c, const struct ynode *root)
{
	struct agent_config *cfg = c->cfg;
	struct fwd_config *f = &cfg->fwd;
	const char *env = getenv("DD_API_KEY");

	if (join_tags(c) < 0 || derive_paths(c, root) < 0)
		return -ENOMEM;
	if (f->api_key_file[0] && !(env && *env) &&
	    read_key_file(c, ynode_get(root, "api_key_file")) == -ENOMEM)
		return -ENOMEM;
	if (!(env && *env) && read_credential(c) < 0)
		return -ENOMEM;
	if (apply_env(c) < 0)
		return -ENOMEM;
	if (!cfg->aggr.hostname[0] && default_hostname(&cfg->aggr.hostname) < 0)
		return -ENOMEM;
	check_values(c, root);
	cfg_check_values(c, root);
	if (!f->dd_url[0] && f->api_key[0]) {
		char *url;
		if (asprintf(&url, "https://api.%s", f->site) < 0)
			return -ENOMEM;
		free(f->dd_url);
		f->dd_url = url;
	}
	f->intake_enabled = f->dd_url[0] != '\0';
	return 0;
}

/* ---- loading ---- */

/* Consumes doc. */
static int load_doc(struct ydoc *doc, struct agent_config *out, struct config_diag *diag)
{
	struct agent_config cfg;
	struct ctx c = { .cfg = &cfg, .diag = diag, .file = doc->file, .key_file_check = true };
	const struct ynode *root = doc->root;
	unsigned errors = diag->errors;
	int rc = config_defaults(&cfg);

	if (rc < 0)
		goto fail;
	if (root && ynode_is_null(root))
		root = NULL;	/* an empty file: the defaults */
	if (root && root->kind != YNODE_MAP)
		cfg_report(&c, true, root, "(top level)", "expected a map of keys to values");
	else if (root)
		rc = cfg_walk(&c, root);
	if (rc == 0)
		rc = finish(&c, root && root->kind == YNODE_MAP ? root : NULL);
	if (rc == 0 && !(cfg.path = strdup(doc->file)))
		rc = -ENOMEM;
	if (rc == 0 && diag->errors != errors)
		rc = -EINVAL;
fail:
	for (int l = 0; l < 2; l++)
		cfg_strv_free(c.tags[l], c.ntags[l]);
	if (rc < 0) {
		if (rc == -ENOMEM)
			cfg_emit(&c, true, "out of memory while loading the configuration");
		config_free(&cfg);
		ydoc_free(doc);
		memset(out, 0, sizeof(*out));
		return rc;
	}
	cfg.doc = doc;
	*out = cfg;
	return 0;
}

int config_load(const char *path, struct agent_config *cfg, struct config_diag *diag)
{
	struct config_diag local = { 0 };
	struct ctx c = { .diag = diag ? diag : &local };
	struct ydoc *doc = NULL;
	char err[1024];
	int rc = ydoc_load_file(path, &doc, err, sizeof(err));

	if (rc < 0) {
		cfg_emit(&c, true, err[0] ? err : "cannot load the configuration");
		memset(cfg, 0, sizeof(*cfg));
		return rc;
	}
	return load_doc(doc, cfg, c.diag);
}

int config_load_buffer(const char *name, const char *data, size_t len,
		       struct agent_config *cfg, struct config_diag *diag)
{
	struct config_diag local = { 0 };
	struct ctx c = { .diag = diag ? diag : &local };
	struct ydoc *doc = NULL;
	char err[1024];
	int rc = ydoc_load_buffer(name ? name : "<buffer>", data, len, &doc, err, sizeof(err));

	if (rc < 0) {
		cfg_emit(&c, true, err[0] ? err : "cannot load the configuration");
		memset(cfg, 0, sizeof(*cfg));
		return rc;
	}
	return load_doc(doc, cfg, c.diag);
}

