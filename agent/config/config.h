/*
 * config.h - the agent's configuration as plain structs, with Datadog's key
 * names and defaults (conf.d/agent.yaml documents every key).
 *
 * config_load reads agent.yaml with libyaml (through yamldoc/, the only libyaml
 * user) into a struct agent_config. Every error names file, line and key;
 * unknown keys are warned about with file and line. Each module declares its
 * own sub-struct in its header (net.h, aggr/aggr_config.h, forward.h,
 * status.h, parse.h) and receives that one and nothing else.
 *
 * A struct agent_config owns all of its strings; config_free releases them.
 */
#ifndef DDMA_CONFIG_CONFIG_H
#define DDMA_CONFIG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "aggr/aggr_config.h"
#include "forward/forward.h"
#include "net/net.h"
#include "parse/parse.h"
#include "status/status.h"
#include "yamldoc/diag.h"	/* struct config_diag: the loaders' error sink */

struct ydoc;

/* ---- output when no intake is configured ---- */
struct output_config {
	char *path;		/* dogstatsd_output_file: "-" = stdout (default), else a file (0600) */
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
