/*
 * config.h - the agent's configuration as plain structs, with Datadog's key
 * names and defaults (conf.d/agent.yaml documents every key).
 *
 * config_load reads agent.yaml with libyaml (through yaml.h, the only libyaml
 * user) into a struct agent_config. Every error names file, line and key;
 * unknown keys are warned about with file and line. Each module receives the
 * sub-struct that concerns it and nothing else.
 *
 * A struct agent_config owns all of its strings; config_free releases them.
 */
#ifndef DDMA_CONFIG_CONFIG_H
#define DDMA_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr_config.h"
#include "net/net.h"
#include "parse/parse.h"

struct ydoc;

/* ---- forwarding ---- */
/* COMPRESS_SNAPPY (block format) is for Prometheus remote write only. */
enum compressor_kind { COMPRESS_ZLIB, COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_NONE, COMPRESS_SNAPPY };
enum series_api { SERIES_API_V1, SERIES_API_V2 };
enum distribution_mode { DIST_SKETCHES, DIST_SERIES };

/* additional_endpoints: one entry per (URL, API key) pair, Datadog's format
 * {url: [key, ...]}. Each gets its own forwarder (queue, backoff, disk queue
 * <forwarder_storage_path>-<16 hex>, counters) with the main one's settings. */
struct dd_endpoint_config {
	char *url;
	char *api_key;		/* never logged */
};

/* remote_write: one Prometheus remote write target, in prometheus.yml's shape. */
struct remote_write_config {
	char *url;		/* url: the full write URL */
	char *name;		/* name, "" = none (status shows the URL without credentials) */
	int timeout_s;		/* remote_timeout, 30s */
	char *basic_user;	/* basic_auth.username */
	char *basic_password;	/* basic_auth.password or password_file (read at load) */
	char *auth_type;	/* authorization.type, Bearer */
	char *auth_credentials;	/* authorization.credentials(_file), or bearer_token(_file) */
	char **header_names;	/* headers: {name: value} */
	char **header_values;
	size_t nheaders;
	char *ca_file;		/* tls_config.ca_file, "" = system store */
	char *cert_file;	/* tls_config.cert_file / key_file: client certificate */
	char *key_file;
	bool insecure_skip_verify; /* tls_config.insecure_skip_verify, false */
	size_t max_samples;	/* queue_config.max_samples_per_send, 2000 */
};

enum rw_counter_mode { RW_COUNTERS_INTERVAL, RW_COUNTERS_CUMULATIVE };

struct fwd_config {
	char *api_key;		/* api_key, or api_key_file, or $DD_API_KEY; never logged */
	char *api_key_file;	/* api_key_file: path read at start (must not be group/other readable) */
	char *site;		/* site, datadoghq.com -> https://api.<site> */
	char *dd_url;		/* dd_url: overrides site; "" = no intake (JSON lines output) */
	bool intake_enabled;	/* computed: dd_url set, or api_key set (then site is used) */
	int timeout_s;		/* forwarder_timeout, 20 */
	size_t retry_queue_max_bytes;	/* forwarder_retry_queue_payloads_max_size, 15 MiB */
	size_t storage_max_bytes;	/* forwarder_storage_max_size_in_bytes, 0 = no disk spill */
	char *storage_path;		/* forwarder_storage_path, <run_path>/transactions_to_retry */
	double backoff_base;		/* forwarder_backoff_base, 2 */
	double backoff_factor;		/* forwarder_backoff_factor, 2 */
	double backoff_max;		/* forwarder_backoff_max, 64 */
	enum compressor_kind compressor;	/* serializer_compressor_kind: zlib|gzip|zstd|none */
	int zstd_level;			/* serializer_zstd_compressor_level, 1 (zstd only, as Datadog) */
	int zlib_level;			/* serializer_compressor_level, 6 (zlib and gzip; ours) */
	int compressor_level;		/* the level `compressor` uses: one of the two (derived) */
	enum series_api series_api;	/* use_v2_api.series: false -> v1 */
	enum distribution_mode distributions; /* forwarder_distributions: sketches|series, sketches */
	size_t max_points_per_payload;	/* serializer_max_series_points_per_payload, 10000 */
	char *proxy_http;		/* proxy: {http, https, no_proxy} */
	char *proxy_https;
	char *no_proxy;
	bool skip_ssl_validation;	/* skip_ssl_validation, false */
	char *ca_file;			/* tls_ca_file, "" = system store */
	double drain_timeout_s;		/* forwarder_stop_timeout, 2 */
	struct dd_endpoint_config *extra; /* additional_endpoints */
	size_t nextra;
	struct remote_write_config *rw;	/* remote_write */
	size_t nrw;
	enum rw_counter_mode rw_counters; /* remote_write_counters: interval|cumulative, interval */
};

/* ---- output when no intake is configured ---- */
struct output_config {
	char *path;		/* dogstatsd_output_file: "-" = stdout (default), else a file (0600) */
};

struct status_config {
	char *host;		/* status_host, 127.0.0.1 */
	int port;		/* status_port, 5012; 0 = off */
};

struct agent_config {
	char *path;		/* the file this came from */
	char *run_path;		/* run_path, /var/lib/dd-mini-agent: state, disk queue, alert state */
	int flush_interval_s;	/* dogstatsd_flush_interval, 10 */
	int flush_grace_ms;	/* dogstatsd_flush_grace_ms, 250: flush this long after each boundary */
	int notify_max_age_s;	/* notification_max_age, 21600: undelivered notifications kept this long */
	bool telemetry_enabled;	/* telemetry_enabled, true: dd_mini_agent.* metrics in every flush */
	char *log_level;	/* log_level, info */
	char *log_file;		/* log_file, "" = stderr */
	char *alerts_dir;	/* alerts_dir, <dir of agent.yaml>/alerts.d */
	char *notifiers_file;	/* notifiers_file, <dir of agent.yaml>/notifiers.yaml (optional) */
	struct dsd_limits limits; /* dogstatsd_max_name_length, _max_tags_per_message,
				     _max_tag_length, _max_values_per_message */
	struct net_config net;
	struct aggr_config aggr;
	struct fwd_config fwd;
	struct output_config output;
	struct status_config status;
	struct ydoc *doc;	/* the parsed file, kept for sections other modules read
				   (notifiers:); may be NULL */
};

/* Error sink: each problem is reported as "file:line: key: message". */
struct config_diag {
	void (*report)(void *ctx, bool is_error, const char *msg);
	void *ctx;
	unsigned errors;
	unsigned warnings;
};

/* Fills every field with its default. 0 or -ENOMEM. */
int config_defaults(struct agent_config *cfg);
/* Loads path over the defaults. Returns 0, or -EINVAL when any error was
 * reported through diag (cfg is then freed), or -errno for I/O (also reported).
 * NULL diag logs through core/log. */
int config_load(const char *path, struct agent_config *cfg, struct config_diag *diag);
/* Same from a buffer (name is used as the file name in messages); for tests and fuzzing. */
int config_load_buffer(const char *name, const char *data, size_t len,
		       struct agent_config *cfg, struct config_diag *diag);
void config_free(struct agent_config *cfg); /* accepts NULL, leaves zeroed struct */
/* Checks a loaded config against the file system as start-up will use it:
 * forwarder_storage_path (when set and the disk queue is on) must be or
 * become a writable directory; alerts_dir and notifiers_file, when set in
 * the file, must exist. Reports "file:line: key: message" through diag
 * (NULL logs); 0 or -EINVAL. Run by --check-config and before starting. */
int config_check_startup(const struct agent_config *cfg, struct config_diag *diag);

#endif
