/*
 * test_config.c - the config loader (config.c) and the YAML tree (yamldoc/yamldoc.c):
 * defaults, the shipped conf.d/agent.yaml, a file with every key set, every
 * kind of error with its "file:line: key:" prefix, api_key_file permissions,
 * environment overrides, mapper profiles, and YAML caps and aliases.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"
#include "yamldoc/yamldoc.h"

/* ---- helpers ---- */

#define MAXMSG 64

struct msgs {
	char *m[MAXMSG];
	bool err[MAXMSG];
	size_t n;
};

static struct msgs msgs;

static void capture(void *ctx, bool is_error, const char *msg)
{
	struct msgs *m = ctx;

	if (m->n < MAXMSG) {
		m->err[m->n] = is_error;
		m->m[m->n++] = strdup(msg);
	}
}

static struct config_diag diag;

static void reset(void)
{
	for (size_t i = 0; i < msgs.n; i++)
		free(msgs.m[i]);
	memset(&msgs, 0, sizeof(msgs));
	diag = (struct config_diag){ .report = capture, .ctx = &msgs };
}

static void setup(void)
{
	unsetenv("DD_API_KEY");
	unsetenv("DD_SITE");
	unsetenv("DD_DD_URL");
	unsetenv("DD_HOSTNAME");
	unsetenv("DD_LOG_LEVEL");
	reset();
}

static void teardown(void)
{
	reset();
}

/* The message of the given kind containing needle, or NULL. */
static const char *find_msg(bool is_error, const char *needle)
{
	for (size_t i = 0; i < msgs.n; i++)
		if (msgs.err[i] == is_error && strstr(msgs.m[i], needle))
			return msgs.m[i];
	return NULL;
}

static void dump_msgs(void)
{
	for (size_t i = 0; i < msgs.n; i++)
		cr_log_info("%s: %s", msgs.err[i] ? "error" : "warning", msgs.m[i]);
}

#define expect_msg(is_error, needle)                                                      \
	do {                                                                              \
		if (!find_msg((is_error), (needle)))                                      \
			dump_msgs();                                                      \
		cr_expect(find_msg((is_error), (needle)) != NULL, "missing %s: %s",       \
			  (is_error) ? "error" : "warning", (needle));                     \
	} while (0)

static int load_str(const char *yaml, struct agent_config *cfg)
{
	return config_load_buffer("t.yaml", yaml, strlen(yaml), cfg, &diag);
}

/* yaml fails to load (-EINVAL) with the error msg among those reported; the
 * messages are cleared afterwards. */
static void expect_rejected(const char *yaml, const char *msg)
{
	struct agent_config c;

	cr_assert_eq(load_str(yaml, &c), -EINVAL, "%s", yaml);
	expect_msg(true, msg);
	reset();
}

/* "$var/prefix/name", where $var is a directory the test run sets. */
static char *env_path(const char *var, const char *prefix, const char *name)
{
	const char *dir = getenv(var);
	char *p;

	cr_assert(dir, "%s not set", var);
	cr_assert(asprintf(&p, "%s/%s%s", dir, prefix, name) > 0);
	return p;
}

static char *data_path(const char *name)
{
	return env_path("DDMA_TEST_DATA", "config/", name);
}

static char *source_path(const char *rel)
{
	return env_path("DDMA_SOURCE_ROOT", "", rel);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	cr_assert(f, "cannot open %s", path);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	s = calloc(1, (size_t)n + 1);
	cr_assert(fread(s, 1, (size_t)n, f) == (size_t)n);
	fclose(f);
	return s;
}

static char tmpdir[64];

static const char *make_tmpdir(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_config.XXXXXX");
	cr_assert(mkdtemp(tmpdir));
	return tmpdir;
}

static char *write_tmp(const char *name, const char *content, mode_t mode)
{
	char *p;
	FILE *f;

	cr_assert(asprintf(&p, "%s/%s", tmpdir, name) > 0);
	f = fopen(p, "w");
	cr_assert(f);
	fputs(content, f);
	fclose(f);
	cr_assert(chmod(p, mode) == 0);
	return p;
}

static void rm_tmpdir(void)
{
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	cr_assert(system(cmd) == 0);
}

static char *hostname_now(void)
{
	char h[256] = "";

	gethostname(h, sizeof(h));
	h[255] = '\0';
	return strdup(h[0] ? h : "localhost");
}

/* What config_defaults gives, but for aggr.hostname (gethostname()). */
static const struct agent_config default_config = {
	.run_path = "/var/lib/dd-mini-agent", .flush_interval_s = 10, .flush_grace_ms = 250,
	.notify_max_age_s = 21600, .telemetry_enabled = true, .log_level = "info", .log_file = "",
	.limits = { .max_name_len = 1024, .max_tags = 256, .max_tag_len = 1024, .max_values = 1024 },
	.net = { .bind_hosts = (char *[]){ "127.0.0.1", "::1" }, .nbind_hosts = 2, .port = 8125,
		 .non_local = false, .socket_path = "", .socket_mode = 0660, .buffer_size = 8192,
		 .so_rcvbuf = 0, .pipeline_count = 1, .recv_batch = 64 },
	.aggr = { .tags = NULL, .ntags = 0, .namespace = "",
		  .namespace_blacklist = (char *[]){ "datadog.agent", "datadog.dogstatsd",
						     "datadog.process", "datadog.trace_agent",
						     "datadog.tracer" },
		  .nnamespace_blacklist = 5, .bucket_seconds = 10, .expiry_seconds = 300,
		  .context_expiry_seconds = 20,
		  .histogram_aggregates = HIST_AGG_MAX | HIST_AGG_MEDIAN | HIST_AGG_AVG | HIST_AGG_COUNT,
		  .histogram_percentiles = (double[]){ 0.95 }, .nhistogram_percentiles = 1,
		  .no_aggregation_pipeline = true, .gauge_deltas = false, .hist_copy_to_dist = false,
		  .hist_copy_to_dist_prefix = "", .max_contexts = 1000000,
		  .max_contexts_per_metric = 100000, .set_exact_max = 10000, .tag_value_limit = 1000,
		  .tag_limit_drop = false, .memory_limit = 0, .pipeline_count = 1 },
	.fwd = { .api_key = "", .api_key_file = "", .site = "datadoghq.com", .dd_url = "",
		 .intake_enabled = false, .timeout_s = 20, .retry_queue_max_bytes = 15u << 20,
		 .storage_max_bytes = 0, .storage_path = "/var/lib/dd-mini-agent/transactions_to_retry",
		 .backoff_base = 2, .backoff_factor = 2, .backoff_max = 64, .compressor = COMPRESS_ZLIB,
		 .compressor_level = 6, .zlib_level = 6, .zstd_level = 1, .series_api = SERIES_API_V1,
		 .distributions = DIST_SERIES, .max_points_per_payload = 10000, .proxy_http = "",
		 .proxy_https = "", .no_proxy = "", .skip_ssl_validation = false, .ca_file = "",
		 .drain_timeout_s = 2 },
	.output = { .path = "-" },
	.status = { .host = "127.0.0.1", .port = 5012 },
};

/* tests/data/config/full.yaml, every key set. */
static const struct agent_config full_config = {
	.run_path = "/srv/ddma", .flush_interval_s = 15, .flush_grace_ms = 400,
	.notify_max_age_s = 7200, .telemetry_enabled = false, .log_level = "debug",
	.log_file = "/var/log/ddma.log",
	.limits = { .max_name_len = 200, .max_tags = 50, .max_tag_len = 300, .max_values = 16 },
	.net = { .bind_hosts = (char *[]){ "127.0.0.1", "::1", "10.0.0.5" }, .nbind_hosts = 3,
		 .port = 18125, .non_local = true, .socket_path = "/run/ddma/dsd.sock",
		 .socket_mode = 0620, .buffer_size = 65536, .so_rcvbuf = 4194304, .pipeline_count = 4,
		 .recv_batch = 128 },
	.aggr = { .hostname = "node-1.example",
		  .tags = (char *[]){ "env:prod", "team:core", "svc:dsd" }, .ntags = 3,
		  .namespace = "myapp.",
		  .namespace_blacklist = (char *[]){ "datadog.agent", "internal" },
		  .nnamespace_blacklist = 2, .bucket_seconds = 10, .expiry_seconds = 120,
		  .context_expiry_seconds = 60,
		  .histogram_aggregates = HIST_AGG_MIN | HIST_AGG_SUM | HIST_AGG_COUNT,
		  .histogram_percentiles = (double[]){ 0.5, 0.99, 1.0 }, .nhistogram_percentiles = 3,
		  .no_aggregation_pipeline = false, .gauge_deltas = true, .hist_copy_to_dist = true,
		  .hist_copy_to_dist_prefix = "dist.", .max_contexts = 5000,
		  .max_contexts_per_metric = 500, .set_exact_max = 100, .tag_value_limit = 50,
		  .tag_limit_drop = true, .tags_exclude = (char *[]){ "instance_id", "user_*|checkout.*" },
		  .ntags_exclude = 2, .memory_limit = 268435456, .pipeline_count = 4,
		  .nmapper_profiles = 1 },
	.fwd = { .api_key = "0123456789abcdef0123456789abcdef", .api_key_file = "",
		 .site = "datadoghq.eu", .dd_url = "https://intake.example.com:8443",
		 .intake_enabled = true, .timeout_s = 5, .retry_queue_max_bytes = 1048576,
		 .storage_max_bytes = 104857600, .storage_path = "/data/retry", .backoff_base = 0.5,
		 .backoff_factor = 3, .backoff_max = 30, .compressor = COMPRESS_ZSTD,
		 .compressor_level = 19, .zlib_level = 4, .zstd_level = 19, .series_api = SERIES_API_V2,
		 .distributions = DIST_SKETCHES, .max_points_per_payload = 2000,
		 .proxy_http = "http://proxy.example:3128", .proxy_https = "http://proxy.example:3129",
		 .no_proxy = "localhost,.internal", .skip_ssl_validation = true,
		 .ca_file = "/etc/ssl/ca.pem", .drain_timeout_s = 5.5 },
	.output = { .path = "/tmp/ddma-out.jsonl" },
	.status = { .host = "0.0.0.0", .port = 15012 },
};

/* The scalar fields expect_config compares, by type. */
#define CONFIG_STRS(X)                                                                              \
	X(run_path) X(log_level) X(log_file) X(net.socket_path) X(aggr.hostname) X(aggr.namespace)  \
	X(aggr.hist_copy_to_dist_prefix) X(fwd.api_key) X(fwd.api_key_file) X(fwd.site)             \
	X(fwd.dd_url) X(fwd.storage_path) X(fwd.proxy_http) X(fwd.proxy_https) X(fwd.no_proxy)      \
	X(fwd.ca_file) X(output.path) X(status.host)
#define CONFIG_NUMS(X)                                                                              \
	X(flush_interval_s) X(flush_grace_ms) X(notify_max_age_s) X(telemetry_enabled)              \
	X(limits.max_name_len) X(limits.max_tags) X(limits.max_tag_len) X(limits.max_values)        \
	X(net.port) X(net.non_local) X(net.socket_mode) X(net.buffer_size) X(net.so_rcvbuf)         \
	X(net.pipeline_count) X(net.recv_batch) X(aggr.bucket_seconds) X(aggr.expiry_seconds)       \
	X(aggr.context_expiry_seconds) X(aggr.histogram_aggregates) X(aggr.no_aggregation_pipeline) \
	X(aggr.gauge_deltas) X(aggr.hist_copy_to_dist) X(aggr.max_contexts)                         \
	X(aggr.max_contexts_per_metric) X(aggr.set_exact_max) X(aggr.tag_value_limit)               \
	X(aggr.tag_limit_drop) X(aggr.memory_limit) X(aggr.pipeline_count) X(fwd.intake_enabled)    \
	X(fwd.timeout_s) X(fwd.retry_queue_max_bytes) X(fwd.storage_max_bytes) X(fwd.backoff_base)  \
	X(fwd.backoff_factor) X(fwd.backoff_max) X(fwd.compressor) X(fwd.compressor_level)          \
	X(fwd.zlib_level) X(fwd.zstd_level) X(fwd.series_api) X(fwd.distributions)                  \
	X(fwd.max_points_per_payload) X(fwd.skip_ssl_validation) X(fwd.drain_timeout_s)             \
	X(aggr.nmapper_profiles) X(status.port)

/* got and want hold the same strings. */
static void expect_strs(const char *name, char *const *got, size_t ngot, char *const *want,
			size_t nwant)
{
	cr_assert_eq(ngot, nwant, "%s: %zu strings, want %zu", name, ngot, nwant);
	for (size_t i = 0; i < ngot; i++)
		cr_expect_str_eq(got[i], want[i], "%s[%zu]", name, i);
}

/* got equals want in every field CONFIG_STRS and CONFIG_NUMS name, and in
 * the string lists and percentiles. */
static void expect_config(const struct agent_config *got, const struct agent_config *want)
{
#define EXPECT_STR(f) cr_expect_str_eq(got->f, want->f, "%s", #f);
#define EXPECT_NUM(f) cr_expect_eq(got->f, want->f, "%s", #f);
#define EXPECT_STRS(f, n) expect_strs(#f, got->f, got->n, want->f, want->n);
	CONFIG_STRS(EXPECT_STR)
	CONFIG_NUMS(EXPECT_NUM)
	EXPECT_STRS(net.bind_hosts, net.nbind_hosts)
	EXPECT_STRS(aggr.tags, aggr.ntags)
	EXPECT_STRS(aggr.namespace_blacklist, aggr.nnamespace_blacklist)
	EXPECT_STRS(aggr.tags_exclude, aggr.ntags_exclude)
#undef EXPECT_STR
#undef EXPECT_NUM
#undef EXPECT_STRS
	cr_assert_eq(got->aggr.nhistogram_percentiles, want->aggr.nhistogram_percentiles);
	for (size_t i = 0; i < got->aggr.nhistogram_percentiles; i++)
		cr_expect_eq(got->aggr.histogram_percentiles[i], want->aggr.histogram_percentiles[i],
			     "histogram_percentiles[%zu]", i);
}

/* The mapping matches match as type and names name, with the tag key/value
 * pairs given (NULL-terminated). */
static void expect_mapping(const struct mapper_mapping *m, const char *match,
			   enum mapper_match_type type, const char *name, ...)
{
	va_list ap;
	size_t i = 0;

	cr_expect_str_eq(m->match, match);
	cr_expect_eq(m->match_type, type, "%s", match);
	cr_expect_str_eq(m->name, name);
	va_start(ap, name);
	for (const char *k; (k = va_arg(ap, const char *)) != NULL; i++) {
		const char *v = va_arg(ap, const char *);
		cr_assert_lt(i, m->ntags, "%s: %zu tags, want more", match, m->ntags);
		cr_expect_str_eq(m->tag_keys[i], k, "%s: key %zu", match, i);
		cr_expect_str_eq(m->tag_values[i], v, "%s: value %zu", match, i);
	}
	va_end(ap);
	cr_assert_eq(m->ntags, i, "%s: %zu tags, want %zu", match, m->ntags, i);
}

/* Every field equal to its default, except the paths derived from the file. */
static void expect_defaults(const struct agent_config *c)
{
	struct agent_config want = default_config;
	char *host = hostname_now();

	want.aggr.hostname = host;
	expect_config(c, &want);
	free(host);
}

TestSuite(config, .init = setup, .fini = teardown);

/* ---- defaults and the shipped file ---- */

Test(config, defaults)
{
	struct agent_config c;

	cr_assert_eq(config_defaults(&c), 0);
	expect_defaults(&c);
	cr_expect_eq(c.doc, NULL);
	cr_expect_str_eq(c.alerts_dir, "/usr/local/etc/dd-mini-agent/alerts.d");
	config_free(&c);
	cr_expect_eq(c.run_path, NULL);
	config_free(&c);	/* twice: the struct is zeroed */
	config_free(NULL);
}

Test(config, shipped_agent_yaml_loads_clean)
{
	char *path = source_path("conf.d/agent.yaml"), *dir = source_path("conf.d/alerts.d"),
	     *nf = source_path("conf.d/notifiers.yaml");
	struct agent_config c;

	cr_assert_eq(config_load(path, &c, &diag), 0);
	dump_msgs();
	cr_expect_eq(diag.errors, 0);
	cr_expect_eq(diag.warnings, 0);
	expect_defaults(&c);
	cr_expect_str_eq(c.path, path);
	cr_expect_str_eq(c.alerts_dir, dir);
	cr_expect_str_eq(c.notifiers_file, nf);
	config_free(&c);
	free(path);
	free(dir);
	free(nf);
}

/* Uncomments every "# key: value" line (and its "#   continuation" lines): the
 * documented defaults must be the real defaults, with no warning. */
Test(config, shipped_agent_yaml_uncommented_is_the_defaults)
{
	char *path = source_path("conf.d/agent.yaml"), *text = slurp(path), *out, *p, *file;
	char *alerts, *nf;
	size_t o = 0, nkeys = 0;
	struct agent_config c;

	out = calloc(1, strlen(text) + 1);
	for (p = strtok(text, "\n"); p; p = strtok(NULL, "\n")) {
		if (strncmp(p, "# ", 2) != 0)
			continue;
		o += (size_t)sprintf(out + o, "%s\n", p + 2);
		nkeys += p[2] != ' ';
	}
	cr_expect_geq(nkeys, 59, "only %zu keys documented", nkeys);
	make_tmpdir();
	file = write_tmp("agent.yaml", out, 0600);
	cr_assert_eq(config_load(file, &c, &diag), 0);
	dump_msgs();
	cr_expect_eq(diag.errors, 0);
	cr_expect_eq(diag.warnings, 0);
	expect_defaults(&c);
	cr_assert(asprintf(&alerts, "%s/alerts.d", tmpdir) > 0);
	cr_assert(asprintf(&nf, "%s/notifiers.yaml", tmpdir) > 0);
	cr_expect_str_eq(c.alerts_dir, alerts);
	cr_expect_str_eq(c.notifiers_file, nf);
	cr_expect_neq(ynode_get(c.doc->root, "notifiers"), NULL);
	config_free(&c);
	rm_tmpdir();
	free(alerts);
	free(nf);
	free(file);
	free(out);
	free(text);
	free(path);
}

/* full.yaml sets every key agent.yaml documents. */
Test(config, full_yaml_sets_every_documented_key)
{
	char *path = source_path("conf.d/agent.yaml"), *text = slurp(path);
	char *fpath = data_path("full.yaml"), *full = slurp(fpath);
	struct agent_config c;

	for (char *p = strtok(text, "\n"); p; p = strtok(NULL, "\n")) {
		char key[128];
		if (sscanf(p, "# %127[a-z0-9_]:", key) != 1 || p[2] == ' ')
			continue;
		char *needle;
		cr_assert(asprintf(&needle, "\n%s:", key) > 0);
		cr_expect(strstr(full, needle) != NULL, "full.yaml lacks %s", key);
		free(needle);
	}
	cr_assert_eq(config_load(fpath, &c, &diag), 0);
	config_free(&c);
	free(full);
	free(fpath);
	free(text);
	free(path);
}

Test(config, full_yaml_exact_values)
{
	char *path = data_path("full.yaml"), *nf;
	struct agent_config c;
	const struct aggr_config *a = &c.aggr;

	cr_assert_eq(config_load(path, &c, &diag), 0);
	dump_msgs();
	cr_expect_eq(diag.errors, 0);
	cr_expect_eq(diag.warnings, 0);
	expect_config(&c, &full_config);
	cr_assert_eq(a->nmapper_profiles, 1);
	const struct mapper_profile *p = &a->mapper_profiles[0];
	cr_expect_str_eq(p->name, "airflow");
	cr_expect_str_eq(p->prefix, "airflow.");
	cr_assert_eq(p->nmappings, 2);
	expect_mapping(&p->mappings[0], "airflow.job.duration_sec.*.*", MAPPER_MATCH_WILDCARD,
		       "airflow.job.duration", "job_type", "$1", "job_name", "$2", NULL);
	expect_mapping(&p->mappings[1], "airflow\\.dag\\.(.*)\\.runtime", MAPPER_MATCH_REGEX,
		       "airflow.dag.runtime", "dag", "${1}", NULL);
	cr_expect_str_eq(c.alerts_dir, "/etc/ddma/rules");
	cr_assert(asprintf(&nf, "%s/config/extra/notifiers.yaml", getenv("DDMA_TEST_DATA")) > 0);
	cr_expect_str_eq(c.notifiers_file, nf);
	const struct ynode *ops = ynode_get(ynode_get(c.doc->root, "notifiers"), "ops-webhook");
	cr_assert_neq(ops, NULL);
	cr_expect_str_eq(ynode_str(ynode_get(ops, "type")), "webhook");
	config_free(&c);
	free(nf);
	free(path);
}

/* ---- errors ---- */

Test(config, every_error_in_a_file_is_reported_with_line_and_key)
{
	char *path = data_path("errors.yaml"), *pre;
	struct agent_config c;
	static const struct { int line; const char *key, *what; } want[] = {
		{ 2, "dogstatsd_port", "70000 is out of range [0, 65535]" },
		{ 3, "bind_host", "expected an address or a list of addresses" },
		{ 4, "dogstatsd_buffer_size", "expected an integer" },
		{ 5, "dogstatsd_non_local_traffic", "expected a boolean" },
		{ 6, "histogram_aggregates[1]", "invalid value 'p99'" },
		{ 7, "histogram_percentiles[1]", "1.5 is out of range [0, 1]" },
		{ 8, "serializer_compressor_kind", "invalid value 'lz4'" },
		{ 9, "forwarder_distributions", "expected one of sketches, series" },
		{ 10, "log_level", "invalid log level 'verbose'" },
		{ 11, "dd_url", "must be http:// or https:// followed by a host" },
		{ 12, "proxy", "expected a map" },
		{ 13, "use_v2_api.series", "expected a boolean" },
		{ 14, "forwarder_backoff_base", "-1 is out of range [0.001, 3600]" },
		{ 15, "dogstatsd_socket_mode", "expected an octal mode" },
		{ 16, "tags", "expected a list of strings" },
		{ 17, "status_port", "-1 is out of range [0, 65535]" },
	};

	cr_assert_eq(config_load(path, &c, &diag), -EINVAL);
	cr_expect_eq(diag.errors, sizeof(want) / sizeof(want[0]));
	cr_expect_eq(diag.warnings, 0);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char *msg;
		cr_assert(asprintf(&msg, "%s:%d: %s: %s", path, want[i].line, want[i].key,
				   want[i].what) > 0);
		expect_msg(true, msg);
		free(msg);
	}
	/* on error the struct is left zeroed (and freeing it is harmless) */
	cr_expect_eq(c.run_path, NULL);
	cr_expect_eq(c.doc, NULL);
	config_free(&c);
	cr_assert(asprintf(&pre, "%s:", path) > 0);
	for (size_t i = 0; i < msgs.n; i++)
		cr_expect(strncmp(msgs.m[i], pre, strlen(pre)) == 0, "%s", msgs.m[i]);
	free(pre);
	free(path);
}

Test(config, wrong_types)
{
	struct agent_config c;

	cr_assert_eq(load_str("dogstatsd_port: [8125]\n"
			      "hostname: {a: 1}\n"
			      "skip_ssl_validation: 1\n"
			      "forwarder_timeout: 2.5\n"
			      "forwarder_backoff_max: fast\n"
			      "statsd_metric_namespace_blacklist: x\n"
			      "histogram_percentiles: 0.5\n"
			      "dogstatsd_mapper_profiles: {}\n",
			      &c),
		     -EINVAL);
	cr_expect_eq(diag.errors, 8);
	expect_msg(true, "t.yaml:1: dogstatsd_port: expected an integer");
	expect_msg(true, "t.yaml:2: hostname: expected a string");
	expect_msg(true, "t.yaml:3: skip_ssl_validation: expected a boolean");
	expect_msg(true, "t.yaml:4: forwarder_timeout: expected an integer");
	expect_msg(true, "t.yaml:5: forwarder_backoff_max: expected a number");
	expect_msg(true, "t.yaml:6: statsd_metric_namespace_blacklist: expected a list");
	expect_msg(true, "t.yaml:7: histogram_percentiles: expected a list");
	expect_msg(true, "t.yaml:8: dogstatsd_mapper_profiles: expected a list");
}

Test(config, out_of_range)
{
	struct agent_config c;

	cr_assert_eq(load_str("dogstatsd_port: 65536\n"
			      "dogstatsd_buffer_size: 511\n"
			      "dogstatsd_buffer_size_x: 1\n"
			      "dogstatsd_flush_interval: 0\n"
			      "dogstatsd_pipeline_count: 65\n"
			      "dogstatsd_max_contexts: 0\n"
			      "forwarder_retry_queue_payloads_max_size: 0\n"
			      "dogstatsd_socket_mode: 01000\n"
			      "histogram_percentiles: [-0.1]\n"
			      "serializer_zstd_compressor_level: 23\n"
			      "dogstatsd_so_rcvbuf: 99999999999999999999\n",
			      &c),
		     -EINVAL);
	cr_expect_eq(diag.errors, 10);
	cr_expect_eq(diag.warnings, 1);
	expect_msg(true, "t.yaml:1: dogstatsd_port: 65536 is out of range [0, 65535]");
	expect_msg(true, "t.yaml:2: dogstatsd_buffer_size: 511 is out of range [512, 65536]");
	expect_msg(false, "t.yaml:3: dogstatsd_buffer_size_x: unknown key, ignored");
	expect_msg(true, "t.yaml:4: dogstatsd_flush_interval: 0 is out of range [1, 3600]");
	expect_msg(true, "t.yaml:5: dogstatsd_pipeline_count: 65 is out of range [1, 64]");
	expect_msg(true, "t.yaml:6: dogstatsd_max_contexts: 0 is out of range");
	expect_msg(true, "t.yaml:7: forwarder_retry_queue_payloads_max_size: 0 is out of range");
	expect_msg(true, "t.yaml:8: dogstatsd_socket_mode: mode 01000 is out of range");
	expect_msg(true, "t.yaml:9: histogram_percentiles[0]: -0.1 is out of range [0, 1]");
	expect_msg(true, "t.yaml:10: serializer_zstd_compressor_level: 23 is out of range [1, 22]");
	expect_msg(true, "t.yaml:11: dogstatsd_so_rcvbuf: expected an integer");
}

Test(config, cross_field_checks)
{
	struct agent_config c;

	cr_assert_eq(load_str("serializer_compressor_kind: gzip\n"
			      "serializer_compressor_level: 12\n"
			      "forwarder_backoff_base: 10\n"
			      "forwarder_backoff_max: 5\n",
			      &c),
		     -EINVAL);
	cr_expect_eq(diag.errors, 2);
	expect_msg(true, "t.yaml:2: serializer_compressor_level: 12 is out of range [1, 9]");
	expect_msg(true, "t.yaml:4: forwarder_backoff_max: smaller than forwarder_backoff_base");
	config_free(&c);
}

/* Datadog's serializer_zstd_compressor_level (default 1) is zstd's alone;
 * zlib and gzip take serializer_compressor_level (default 6). */
Test(config, compressor_level_follows_the_kind)
{
	static const struct {
		const char *yaml;
		enum compressor_kind kind;
		int level;
	} cases[] = {
		{ "", COMPRESS_ZLIB, 6 },
		{ "serializer_compressor_kind: zstd\n", COMPRESS_ZSTD, 1 },
		{ "serializer_compressor_kind: zstd\nserializer_zstd_compressor_level: 12\n"
		  "serializer_compressor_level: 3\n",
		  COMPRESS_ZSTD, 12 },
		{ "serializer_compressor_kind: gzip\nserializer_compressor_level: 3\n"
		  "serializer_zstd_compressor_level: 12\n",
		  COMPRESS_GZIP, 3 },
		{ "serializer_zstd_compressor_level: 22\n", COMPRESS_ZLIB, 6 },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct agent_config c;
		reset();
		cr_assert_eq(load_str(cases[i].yaml, &c), 0, "case %zu", i);
		cr_expect_eq(diag.errors + diag.warnings, 0, "case %zu", i);
		cr_expect_eq(c.fwd.compressor, cases[i].kind, "case %zu", i);
		cr_expect_eq(c.fwd.compressor_level, cases[i].level, "case %zu", i);
		config_free(&c);
	}
}

Test(config, unknown_keys_warn_with_file_and_line)
{
	char *path = data_path("unknown.yaml"), *m;
	struct agent_config c;

	cr_assert_eq(config_load(path, &c, &diag), 0);
	cr_expect_eq(diag.errors, 0);
	cr_expect_eq(diag.warnings, 3);
	cr_assert(asprintf(&m, "%s:2: dogstatsd_prot: unknown key, ignored", path) > 0);
	expect_msg(false, m);
	free(m);
	cr_assert(asprintf(&m, "%s:5: proxy.htps: unknown key, ignored", path) > 0);
	expect_msg(false, m);
	free(m);
	cr_assert(asprintf(&m, "%s:8: use_v2_api.events: unknown key, ignored", path) > 0);
	expect_msg(false, m);
	free(m);
	cr_expect_eq(c.net.port, 8125);
	cr_expect_str_eq(c.fwd.proxy_http, "http://proxy:3128");
	cr_expect_str_eq(c.fwd.proxy_https, "");
	config_free(&c);
	free(path);
}

Test(config, missing_file)
{
	struct agent_config c;

	cr_assert_eq(config_load("/nonexistent/dir/agent.yaml", &c, &diag), -ENOENT);
	cr_expect_eq(diag.errors, 1);
	expect_msg(true, "/nonexistent/dir/agent.yaml: cannot read: No such file or directory");
	cr_expect_eq(c.run_path, NULL);
}

Test(config, syntax_error)
{
	char *path = data_path("syntax.yaml"), *m;
	struct agent_config c;

	cr_assert_eq(config_load(path, &c, &diag), -EINVAL);
	cr_expect_eq(diag.errors, 1);
	cr_assert(asprintf(&m, "%s:4: syntax error: ", path) > 0);
	expect_msg(true, m);
	free(m);
	free(path);
}

Test(config, top_level_not_a_map)
{
	char *path = data_path("notmap.yaml"), *m;
	struct agent_config c;

	cr_assert_eq(config_load(path, &c, &diag), -EINVAL);
	cr_assert(asprintf(&m, "%s:1: (top level): expected a map", path) > 0);
	expect_msg(true, m);
	free(m);
	free(path);
	reset();
	expect_rejected("just a string\n", "t.yaml:1: (top level): expected a map");
}

Test(config, empty_file_and_null_values_keep_defaults)
{
	struct agent_config c;

	cr_assert_eq(load_str("", &c), 0);
	expect_defaults(&c);
	config_free(&c);
	cr_assert_eq(load_str("# only a comment\n", &c), 0);
	expect_defaults(&c);
	config_free(&c);
	cr_assert_eq(load_str("dogstatsd_port:\nhostname: ~\ntags: null\nproxy:\n  http:\n", &c), 0);
	cr_expect_eq(diag.errors + diag.warnings, 0);
	expect_defaults(&c);
	config_free(&c);
}

Test(config, duplicate_keys_are_an_error)
{
	expect_rejected("dogstatsd_port: 1\nsite: x.com\ndogstatsd_port: 2\n",
			"t.yaml:3: duplicate key 'dogstatsd_port' (first at line 1)");
}

/* ---- specific keys ---- */

Test(config, bind_host_forms)
{
	struct agent_config c;

	cr_assert_eq(load_str("bind_host: localhost\n", &c), 0);
	cr_assert_eq(c.net.nbind_hosts, 2);
	cr_expect_str_eq(c.net.bind_hosts[0], "127.0.0.1");
	cr_expect_str_eq(c.net.bind_hosts[1], "::1");
	config_free(&c);
	cr_assert_eq(load_str("bind_host: 0.0.0.0\n", &c), 0);
	cr_assert_eq(c.net.nbind_hosts, 1);
	cr_expect_str_eq(c.net.bind_hosts[0], "0.0.0.0");
	config_free(&c);
	cr_assert_eq(load_str("bind_host: ['::', 192.168.1.10]\n", &c), 0);
	cr_assert_eq(c.net.nbind_hosts, 2);
	cr_expect_str_eq(c.net.bind_hosts[0], "::");
	cr_expect_str_eq(c.net.bind_hosts[1], "192.168.1.10");
	config_free(&c);
	expect_rejected("bind_host: []\n", "t.yaml:1: bind_host: must name at least one address");
	expect_rejected("bind_host: ''\n", "t.yaml:1: bind_host: an address must not be empty");
	expect_rejected("bind_host:\n  - [a]\n", "t.yaml:2: bind_host[0]: expected a string");
}

Test(config, socket_mode_forms)
{
	static const struct { const char *y; unsigned mode; } ok[] = {
		{ "dogstatsd_socket_mode: \"0660\"\n", 0660 },
		{ "dogstatsd_socket_mode: 0600\n", 0600 },
		{ "dogstatsd_socket_mode: 0o640\n", 0640 },
		{ "dogstatsd_socket_mode: 432\n", 0660 },
		{ "dogstatsd_socket_mode: 0\n", 0 },
	};
	struct agent_config c;

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		cr_assert_eq(load_str(ok[i].y, &c), 0, "%s", ok[i].y);
		cr_expect_eq(c.net.socket_mode, ok[i].mode, "%s", ok[i].y);
		config_free(&c);
	}
	expect_rejected("dogstatsd_socket_mode: rw\n", "t.yaml:1: dogstatsd_socket_mode: expected an integer");
}

Test(config, intake_selection)
{
	struct agent_config c;

	cr_assert_eq(load_str("api_key: abc123\n", &c), 0);
	cr_expect_str_eq(c.fwd.dd_url, "https://api.datadoghq.com");
	cr_expect(c.fwd.intake_enabled);
	config_free(&c);
	cr_assert_eq(load_str("api_key: abc123\nsite: us5.datadoghq.com\n", &c), 0);
	cr_expect_str_eq(c.fwd.dd_url, "https://api.us5.datadoghq.com");
	config_free(&c);
	cr_assert_eq(load_str("dd_url: http://127.0.0.1:8080\n", &c), 0);
	cr_expect_str_eq(c.fwd.dd_url, "http://127.0.0.1:8080");
	cr_expect(c.fwd.intake_enabled);
	cr_expect_str_eq(c.fwd.api_key, "");
	config_free(&c);
	cr_assert_eq(load_str("site: datadoghq.eu\n", &c), 0);
	cr_expect_str_eq(c.fwd.dd_url, "");
	cr_expect_not(c.fwd.intake_enabled);
	config_free(&c);
	expect_rejected("site: 'http://x/'\n", "t.yaml:1: site: expected a domain");
}

Test(config, environment_overrides)
{
	struct agent_config c;

	setenv("DD_API_KEY", "envkey999", 1);
	setenv("DD_SITE", "datadoghq.eu", 1);
	setenv("DD_HOSTNAME", "env-host", 1);
	setenv("DD_LOG_LEVEL", "warn", 1);
	cr_assert_eq(load_str("api_key: filekey\nsite: us3.datadoghq.com\nhostname: h1\nlog_level: debug\n", &c), 0);
	cr_expect_str_eq(c.fwd.api_key, "envkey999");
	cr_expect_str_eq(c.fwd.site, "datadoghq.eu");
	cr_expect_str_eq(c.fwd.dd_url, "https://api.datadoghq.eu");
	cr_expect_str_eq(c.aggr.hostname, "env-host");
	cr_expect_str_eq(c.log_level, "warn");
	config_free(&c);
	setenv("DD_DD_URL", "http://localhost:9999", 1);
	cr_assert_eq(load_str("", &c), 0);
	cr_expect_str_eq(c.fwd.dd_url, "http://localhost:9999");
	config_free(&c);
	setenv("DD_LOG_LEVEL", "loud", 1);
	cr_assert_eq(load_str("", &c), -EINVAL);
	expect_msg(true, "environment: DD_LOG_LEVEL: invalid log level");
	for (size_t i = 0; i < msgs.n; i++)
		cr_expect_null(strstr(msgs.m[i], "envkey999"));
}

Test(config, namespace_and_tags)
{
	struct agent_config c;

	cr_assert_eq(load_str("dogstatsd_tags: [b]\nstatsd_metric_namespace: app.\ntags: [a]\n", &c), 0);
	cr_expect_str_eq(c.aggr.namespace, "app.");
	cr_assert_eq(c.aggr.ntags, 2);
	cr_expect_str_eq(c.aggr.tags[0], "a");	/* tags first, then dogstatsd_tags */
	cr_expect_str_eq(c.aggr.tags[1], "b");
	config_free(&c);
}

Test(config, cardinality_guard_keys)
{
	struct agent_config c;

	cr_assert_eq(load_str("dogstatsd_tag_value_limit: 0\ndogstatsd_pipeline_count: 4\n", &c), 0);
	cr_expect_eq(c.aggr.tag_value_limit, 0);
	cr_expect_eq(c.aggr.pipeline_count, 4);
	config_free(&c);
	expect_rejected("dogstatsd_tag_limit_action: strip\n", "t.yaml:1: dogstatsd_tag_limit_action");
	cr_assert_neq(load_str("dogstatsd_tags_exclude:\n  - ok_*\n  - \"id:1\"\n  - \"a|b|c\"\n"
			       "  - \"|x\"\n", &c), 0);
	expect_msg(true, "t.yaml:3: dogstatsd_tags_exclude[1]: a tag key pattern has no ':'");
	expect_msg(true, "t.yaml:4: dogstatsd_tags_exclude[2]: expected KEY or KEY|METRIC");
	expect_msg(true, "t.yaml:5: dogstatsd_tags_exclude[3]: the tag key pattern must not be empty");
	reset();
	expect_rejected("dogstatsd_memory_limit: -1\n", "dogstatsd_memory_limit");
}

Test(config, proxy_no_proxy_string)
{
	struct agent_config c;

	cr_assert_eq(load_str("proxy:\n  no_proxy: \"a.com,b.com\"\n", &c), 0);
	cr_expect_str_eq(c.fwd.no_proxy, "a.com,b.com");
	config_free(&c);
}

/* ---- api_key_file ---- */

Test(config, api_key_file_permissions)
{
	struct agent_config c;
	char *key, *yaml, *m;

	make_tmpdir();
	key = write_tmp("key", "  s3cr3tk3y0123\n\n", 0644);
	cr_assert(asprintf(&yaml, "site: datadoghq.com\napi_key_file: %s\n", key) > 0);
	cr_assert_eq(load_str(yaml, &c), -EINVAL);
	cr_expect_eq(diag.errors, 1);
	cr_assert(asprintf(&m, "t.yaml:2: api_key_file: %s is accessible by group or others (mode 0644)", key) > 0);
	expect_msg(true, m);
	free(m);
	for (size_t i = 0; i < msgs.n; i++)
		cr_expect_null(strstr(msgs.m[i], "s3cr3tk3y0123"));

	reset();
	cr_assert(chmod(key, 0600) == 0);
	cr_assert_eq(load_str(yaml, &c), 0);
	cr_expect_eq(diag.errors + diag.warnings, 0);
	cr_expect_str_eq(c.fwd.api_key, "s3cr3tk3y0123");
	cr_expect_str_eq(c.fwd.dd_url, "https://api.datadoghq.com");
	config_free(&c);
	free(yaml);

	reset();
	cr_assert(chmod(key, 0640) == 0);
	cr_assert(asprintf(&yaml, "api_key_file: %s\napi_key_file_permissions_check: false\n", key) > 0);
	cr_assert_eq(load_str(yaml, &c), 0);
	cr_expect_eq(diag.warnings, 1);
	cr_assert(asprintf(&m, "t.yaml:1: api_key_file: %s is accessible by group or others (mode 0640)", key) > 0);
	expect_msg(false, m);
	free(m);
	cr_expect_str_eq(c.fwd.api_key, "s3cr3tk3y0123");
	config_free(&c);

	reset();	/* DD_API_KEY wins; the file is then not read at all */
	setenv("DD_API_KEY", "fromenv", 1);
	cr_assert(chmod(key, 0644) == 0);
	free(yaml);
	cr_assert(asprintf(&yaml, "api_key_file: %s\n", key) > 0);
	cr_assert_eq(load_str(yaml, &c), 0);
	cr_expect_str_eq(c.fwd.api_key, "fromenv");
	config_free(&c);
	unsetenv("DD_API_KEY");
	free(yaml);
	free(key);
	rm_tmpdir();
}

Test(config, api_key_file_missing_or_empty)
{
	struct agent_config c;
	char *key, *yaml;

	make_tmpdir();
	key = write_tmp("key", " \n", 0600);
	cr_assert(asprintf(&yaml, "api_key_file: %s\n", key) > 0);
	cr_assert_eq(load_str(yaml, &c), -EINVAL);
	expect_msg(true, "t.yaml:1: api_key_file: ");
	expect_msg(true, "does not hold an API key");
	reset();
	expect_rejected("api_key_file: /nonexistent/key\n",
			"t.yaml:1: api_key_file: cannot read /nonexistent/key: No such file or directory");
	expect_rejected("api_key_file: /tmp\n", "t.yaml:1: api_key_file: /tmp is not a regular file");
	free(yaml);
	free(key);
	rm_tmpdir();
}

Test(config, api_key_never_in_messages)
{
	struct agent_config c;

	cr_assert_eq(load_str("api_key: [topsecretvalue]\n", &c), -EINVAL);
	expect_msg(true, "t.yaml:1: api_key: expected a string");
	cr_assert_eq(load_str("site: x.com\napi_key: \"topsecretvalue\\r\\nX-Evil: 1\"\n", &c), -EINVAL);
	expect_msg(true, "t.yaml:2: api_key: contains spaces or control characters");
	setenv("DD_API_KEY", "topsecretvalue with space", 1);
	cr_assert_eq(load_str("", &c), -EINVAL);
	expect_msg(true, "environment: DD_API_KEY: contains spaces or control characters");
	unsetenv("DD_API_KEY");
	cr_expect_eq(diag.errors, 3);
	for (size_t i = 0; i < msgs.n; i++)
		cr_expect_null(strstr(msgs.m[i], "topsecretvalue"));
}

/* ---- mapper profiles ---- */

Test(config, mapper_profile_errors)
{
	char *path = data_path("mapper_bad.yaml"), *m;
	struct agent_config c;
	static const char *const want[] = {
		":5: dogstatsd_mapper_profiles[0].mappings[0].match: invalid wildcard pattern",
		":7: dogstatsd_mapper_profiles[0].mappings[1].match: invalid regex: ",
		":11: dogstatsd_mapper_profiles[0].mappings[2].match_type: invalid value 'glob'",
		":13: dogstatsd_mapper_profiles[0].mappings[3]: 'match' and 'name' are required",
		":14: dogstatsd_mapper_profiles[1]: 'name' and 'prefix' are required",
		":16: dogstatsd_mapper_profiles[2]: expected a map",
	};

	cr_assert_eq(config_load(path, &c, &diag), -EINVAL);
	cr_expect_eq(diag.errors, sizeof(want) / sizeof(want[0]));
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		cr_assert(asprintf(&m, "%s%s", path, want[i]) > 0);
		expect_msg(true, m);
		free(m);
	}
	free(path);
}

Test(config, mapper_caps_and_unknown_keys)
{
	struct agent_config c;

	cr_assert_eq(load_str("dogstatsd_mapper_profiles:\n"
			      "  - name: p\n"
			      "    prefix: p.\n"
			      "    colour: red\n"
			      "    mappings:\n"
			      "      - match: 'p\\.(a{100}){100}'\n"
			      "        match_type: regex\n"
			      "        name: x\n",
			      &c),
		     -EINVAL);
	expect_msg(false, "t.yaml:4: dogstatsd_mapper_profiles[0].colour: unknown key, ignored");
	expect_msg(true, "t.yaml:6: dogstatsd_mapper_profiles[0].mappings[0].match: regex repetition");
}

/* Aliases repeat one list without copying; the total mapping cap still holds. */
Test(config, mapper_aliases_are_capped)
{
	struct agent_config c;
	char *y;
	size_t o = 0;

	y = malloc(1 << 20);
	o += (size_t)sprintf(y + o, "x: &m\n");
	for (int i = 0; i < 2000; i++)
		o += (size_t)sprintf(y + o, "  - {match: 'a.*', name: b}\n");
	o += (size_t)sprintf(y + o, "dogstatsd_mapper_profiles:\n");
	for (int i = 0; i < 100; i++)
		o += (size_t)sprintf(y + o, "  - {name: p%d, prefix: a., mappings: *m}\n", i);
	cr_assert_eq(config_load_buffer("t.yaml", y, o, &c, &diag), -EINVAL);
	expect_msg(true, "mappings: too many mappings");
	free(y);
}

/* ---- the YAML tree ---- */

Test(yaml, aliases_share_nodes_and_free_once)
{
	const char *y = "base: &b {a: 1, l: [x, y]}\none: *b\ntwo: *b\nlist: [*b, *b]\n";
	struct ydoc *d;
	char err[256];

	cr_assert_eq(ydoc_load_buffer("a.yaml", y, strlen(y), &d, err, sizeof(err)), 0);
	const struct ynode *base = ynode_get(d->root, "base");
	cr_expect_eq(ynode_get(d->root, "one"), base);
	cr_expect_eq(ynode_get(d->root, "two"), base);
	cr_expect_eq(ynode_get(d->root, "list")->items[1], base);
	cr_expect_str_eq(ynode_str(ynode_get(base, "a")), "1");
	cr_expect_eq(base->line, 1);
	cr_expect_eq(ynode_get(d->root, "list")->line, 4);
	ydoc_free(d);
	ydoc_free(NULL);
}

Test(yaml, billion_laughs_is_cheap)
{
	const char *y = "a: &a [x, x, x, x, x, x, x, x, x, x]\n"
			"b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
			"c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
			"d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
			"e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
			"f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
			"g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
			"h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
			"i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n";
	struct ydoc *d;
	char err[256];

	cr_assert_eq(ydoc_load_buffer("b.yaml", y, strlen(y), &d, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(ynode_get(d->root, "i")->items[9], ynode_get(d->root, "h"));
	ydoc_free(d);
}

Test(yaml, errors_name_file_and_line)
{
	struct ydoc *d = NULL;
	char err[256];
	char *deep;

	cr_expect_eq(ydoc_load_buffer("c.yaml", "a: 1\nb: *nope\n", 14, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "c.yaml:2: unknown alias '*nope'");
	cr_expect_eq(ydoc_load_buffer("c.yaml", "a: &x [*x]\n", 11, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "c.yaml:1: unknown alias '*x'");	/* no cycles */
	cr_expect_eq(ydoc_load_buffer("c.yaml", "? [a]\n: 1\n", 10, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "c.yaml:1: mapping key must be a scalar");
	deep = calloc(1, 200);
	memset(deep, '[', 65);
	cr_expect_eq(ydoc_load_buffer("c.yaml", deep, 65, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "c.yaml:1: nesting deeper than 64 levels");
	memset(deep, 0, 200);
	memset(deep, '[', 64);
	memset(deep + 64, ']', 64);
	cr_expect_eq(ydoc_load_buffer("c.yaml", deep, 128, &d, err, sizeof(err)), 0, "%s", err);
	ydoc_free(d);
	free(deep);
	cr_expect_eq(ydoc_load_buffer("c.yaml", "a: \"\\x00\xff\"\n", 12, &d, err, sizeof(err)), -EINVAL);
	cr_expect(strncmp(err, "c.yaml:1: syntax error: ", 24) == 0, "%s", err);
}

Test(yaml, caps)
{
	struct ydoc *d = NULL;
	char err[256];
	size_t n = 2u << 20;
	char *big = malloc(n + 16);

	/* a 2 MiB scalar */
	memcpy(big, "a: ", 3);
	memset(big + 3, 'x', n);
	cr_expect_eq(ydoc_load_buffer("d.yaml", big, n + 3, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "d.yaml:1: scalar longer than 1048576 bytes");
	/* 100001 nodes */
	size_t o = 0;
	big[o++] = '[';
	for (int i = 0; i < 100001; i++) {
		big[o++] = '1';
		big[o++] = ',';
	}
	big[o - 1] = ']';
	cr_expect_eq(ydoc_load_buffer("d.yaml", big, o, &d, err, sizeof(err)), -EINVAL);
	cr_expect(strstr(err, "more than 100000 nodes") != NULL, "%s", err);
	free(big);
	cr_expect_eq(ydoc_load_buffer("d.yaml", "", (16u << 20) + 1, &d, err, sizeof(err)), -EINVAL);
	cr_expect_str_eq(err, "d.yaml: larger than 16777216 bytes");
}

Test(yaml, first_document_only_and_empty)
{
	struct ydoc *d;
	char err[256];
	const char *y = "a: 1\n---\nb: [unclosed\n";

	cr_assert_eq(ydoc_load_buffer("e.yaml", y, strlen(y), &d, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(ynode_str(ynode_get(d->root, "a")), "1");
	cr_expect_null(ynode_get(d->root, "b"));
	ydoc_free(d);
	cr_assert_eq(ydoc_load_buffer("e.yaml", "", 0, &d, err, sizeof(err)), 0);
	cr_expect_null(d->root);
	ydoc_free(d);
}

Test(yaml, typed_reads)
{
	const char *y = "i: 42\nneg: -7\nhex: 0x1F\noct: 0o17\nbig: 9223372036854775807\n"
			"over: 9223372036854775808\nf: 2.5\nq: \"0.25\"\nt: true\nn: off\ns: abc\n"
			"nul: ~\nqnull: 'null'\nfl: 1e3\ninf: .inf\nlist: [1]\n";
	struct ydoc *d;
	char err[256];
	int64_t i;
	double f;
	bool b;

	cr_assert_eq(ydoc_load_buffer("f.yaml", y, strlen(y), &d, err, sizeof(err)), 0, "%s", err);
	const struct ynode *r = d->root;
	cr_expect_eq(ynode_int(ynode_get(r, "i"), 0, 100, &i), 0);
	cr_expect_eq(i, 42);
	cr_expect_eq(ynode_int(ynode_get(r, "i"), 0, 41, &i), -EINVAL);
	cr_expect_eq(ynode_int(ynode_get(r, "neg"), INT64_MIN, 0, &i), 0);
	cr_expect_eq(i, -7);
	cr_expect_eq(ynode_int(ynode_get(r, "hex"), 0, 100, &i), 0);
	cr_expect_eq(i, 31);
	cr_expect_eq(ynode_int(ynode_get(r, "oct"), 0, 100, &i), 0);
	cr_expect_eq(i, 15);
	cr_expect_eq(ynode_int(ynode_get(r, "big"), 0, INT64_MAX, &i), 0);
	cr_expect_eq(i, INT64_MAX);
	cr_expect_eq(ynode_int(ynode_get(r, "over"), 0, INT64_MAX, &i), -EINVAL);
	cr_expect_eq(ynode_int(ynode_get(r, "f"), 0, 100, &i), -EINVAL);
	cr_expect_eq(ynode_int(ynode_get(r, "list"), 0, 100, &i), -EINVAL);
	cr_expect_eq(ynode_double(ynode_get(r, "f"), 0, 10, &f), 0);
	cr_expect_eq(f, 2.5);
	cr_expect_eq(ynode_double(ynode_get(r, "q"), 0, 1, &f), 0);
	cr_expect_eq(f, 0.25);
	cr_expect_eq(ynode_double(ynode_get(r, "fl"), 0, 1e4, &f), 0);
	cr_expect_eq(f, 1000);
	cr_expect_eq(ynode_double(ynode_get(r, "fl"), 0, 999, &f), -EINVAL);
	cr_expect_eq(ynode_double(ynode_get(r, "inf"), -1e308, 1e308, &f), -EINVAL);
	cr_expect_eq(ynode_double(ynode_get(r, "s"), 0, 1, &f), -EINVAL);
	cr_expect_eq(ynode_bool(ynode_get(r, "t"), &b), 0);
	cr_expect(b);
	cr_expect_eq(ynode_bool(ynode_get(r, "n"), &b), 0);
	cr_expect_not(b);
	cr_expect_eq(ynode_bool(ynode_get(r, "s"), &b), -EINVAL);
	cr_expect(ynode_is_null(ynode_get(r, "nul")));
	cr_expect_not(ynode_is_null(ynode_get(r, "qnull")));
	cr_expect_str_eq(ynode_str(ynode_get(r, "qnull")), "null");
	cr_expect_null(ynode_str(ynode_get(r, "list")));
	cr_expect_null(ynode_get(r, "absent"));
	cr_expect_null(ynode_get(ynode_get(r, "list"), "i"));
	ydoc_free(d);
}

Test(config, additional_endpoints_and_remote_write)
{
	char *path = data_path("full.yaml");
	struct agent_config c;

	cr_assert_eq(config_load(path, &c, &diag), 0);
	const struct fwd_config *f = &c.fwd;
	cr_assert_eq(f->nextra, 3);
	cr_expect_str_eq(f->extra[0].url, "https://api.datadoghq.eu");
	cr_expect_str_eq(f->extra[0].api_key, "key-eu-1");
	cr_expect_str_eq(f->extra[1].api_key, "key-eu-2");
	cr_expect_str_eq(f->extra[2].url, "http://vm.internal:8428/datadog");
	cr_expect_str_eq(f->extra[2].api_key, "key-vm");
	cr_assert_eq(f->nrw, 2);
	const struct remote_write_config *w = &f->rw[0];
	cr_expect_str_eq(w->url, "https://prom.internal/api/v1/write");
	cr_expect_str_eq(w->name, "prom");
	cr_expect_eq(w->timeout_s, 90);
	cr_expect_str_eq(w->basic_user, "agent");
	cr_expect_str_eq(w->basic_password, "s3cret");
	cr_assert_eq(w->nheaders, 1);
	cr_expect_str_eq(w->header_names[0], "X-Scope-OrgID");
	cr_expect_str_eq(w->header_values[0], "team-a");
	cr_expect_str_eq(w->ca_file, "/etc/ssl/prom-ca.pem");
	cr_expect_eq(w->max_samples, 500);
	cr_expect_str_eq(f->rw[1].auth_credentials, "tok123");
	cr_expect_null(f->rw[1].auth_type);
	cr_expect_eq(f->rw[1].timeout_s, 30);
	cr_expect_eq(f->rw[1].max_samples, 2000);
	cr_expect_eq(f->rw_counters, RW_COUNTERS_CUMULATIVE);
	config_free(&c);
	free(path);
}

Test(config, remote_write_errors_name_line_and_key)
{
	struct agent_config c;
	static const char yaml[] =
		"remote_write:\n"
		"  - url: ftp://x\n"				/* 2 */
		"  - name: nourl\n"				/* 3 */
		"  - url: http://a\n"				/* 4 */
		"    remote_timeout: soon\n"			/* 5 */
		"    headers: {Authorization: x}\n"		/* 6 */
		"    write_relabel_configs: []\n"		/* 7 */
		"  - url: http://b\n"				/* 8 */
		"    basic_auth: {username: u}\n"
		"    bearer_token: t\n"
		"    tls_config: {cert_file: /c.pem}\n"		/* 11 */
		"additional_endpoints:\n"
		"  \"not a url\": [k]\n"			/* 13 */
		"  \"http://ok\": [\"\"]\n"			/* 14 */
		"remote_write_counters: total\n";		/* 15 */

	cr_assert_eq(load_str(yaml, &c), -EINVAL);
	expect_msg(true, "t.yaml:2: remote_write[0].url: must be http:// or https://");
	expect_msg(true, "t.yaml:3: remote_write[1]: url is required");
	expect_msg(true, "t.yaml:5: remote_write[2].remote_timeout: expected a duration");
	expect_msg(true, "t.yaml:6: remote_write[2].headers.Authorization: not a header name");
	expect_msg(false, "t.yaml:7: remote_write[2].write_relabel_configs: unknown key");
	expect_msg(true, "t.yaml:11: remote_write[3].tls_config: cert_file and key_file go together");
	expect_msg(true, "t.yaml:13: additional_endpoints.not a url: must be http://");
	expect_msg(true, "t.yaml:14: additional_endpoints.http://ok[0]: an API key must be non-empty");
	expect_msg(true, "t.yaml:15: remote_write_counters: invalid value 'total'");
}

Test(config, remote_write_secret_files)
{
	struct agent_config c;
	make_tmpdir();
	char *pw = write_tmp("pw", "hunter2\n", 0600);
	char *tok = write_tmp("tok", "tok-abc \n", 0600);
	char *yaml;
	cr_assert(asprintf(&yaml,
			   "remote_write:\n"
			   "  - url: http://a\n"
			   "    basic_auth: {username: u, password_file: %s}\n"
			   "  - url: http://b\n"
			   "    bearer_token_file: %s\n"
			   "  - url: http://c\n"
			   "    authorization: {type: Token, credentials_file: /nonexistent/x}\n",
			   pw, tok) > 0);
	cr_assert_eq(load_str(yaml, &c), -EINVAL);
	expect_msg(true, "t.yaml:7: remote_write[2].authorization.credentials_file: cannot read /nonexistent/x");
	cr_expect_null(find_msg(true, "hunter2"));
	reset();
	char *two = strstr(yaml, "  - url: http://c");
	*two = 0;
	cr_assert_eq(load_str(yaml, &c), 0);
	cr_expect_str_eq(c.fwd.rw[0].basic_password, "hunter2");
	cr_expect_str_eq(c.fwd.rw[1].auth_credentials, "tok-abc");
	config_free(&c);
	free(yaml);
	free(pw);
	free(tok);
	rm_tmpdir();
}
