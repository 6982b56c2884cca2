/*
 * alert.h - local threshold alerts: compiled rules, evaluation on each flushed
 * batch, one state machine per (rule, group) instance. Format and semantics: docs/ALERTS.md.
 *
 * Callers: agent.c (load at start and on SIGHUP, alert_eval after each flush,
 * alert_engine_append_metrics before forwarding), main.c (test-rules,
 * check-config), notify/ (reads struct alert_transition).
 *
 * Ownership: a struct alert_rules owns its rules and strings. An engine
 * consumes the rules given to alert_engine_new / alert_engine_swap_rules.
 * Transitions live in a struct alert_transitions owned by the caller, their
 * strings in its arena, valid until the next alert_eval / alert_transitions_done.
 *
 * I/O: only rule loading (read) and the state file (write tmp + fsync +
 * rename, mode 0600). No logging: problems go to a struct config_diag or are
 * counted. Time is always passed in (`now`, unix seconds).
 * Threading: not thread-safe; one owner (the loop thread).
 *
 * How a rule reads the flushed series (core/batch.h):
 * - gauges: the last value of each 10 s bucket;
 * - DogStatsD counts arrive as rates per second (sum / 10 for a 10 s bucket),
 *   so `sum(last_1m):sum:errors{*} > 10` means "the per-second rates of the
 *   six buckets add up to more than 10", i.e. more than 100 errors a minute;
 *   `avg(last_1m):sum:errors{*} > 2` means "more than 2 errors per second on
 *   average over the minute";
 * - histograms and timers: name the flushed series (`lat.95percentile`,
 *   `lat.max`, `lat.count` - the latter a rate like counts).
 * - time suffixes in thresholds are milliseconds (DogStatsD `|ms` timers are
 *   in milliseconds): `250ms` = 250, `2s` = 2000. Durations (window, for, ...)
 *   are seconds. `%` is the plain number (90% = 90). k M G = 1e3 1e6 1e9,
 *   KiB MiB GiB = 2^10 2^20 2^30.
 */
#ifndef DDMA_ALERT_ALERT_H
#define DDMA_ALERT_ALERT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/arena.h"
#include "core/batch.h"
#include "core/buf.h"
#include "core/stats.h"
#include "yamldoc/diag.h"	/* struct config_diag */

#define ALERT_MAX_WINDOW_S (24 * 3600)	/* longest window a rule may ask for */
#define ALERT_MAX_RING (ALERT_MAX_WINDOW_S / 10 + 2) /* points kept per instance (1 day of 10 s + 2) */
#define ALERT_DEFAULT_MAX_GROUPS 1000	/* instances per rule unless max_groups says */
#define ALERT_RESTORE_MAX_AGE_S 3600	/* state files older than this are ignored */
#define ALERT_STATE_METRIC "dd_mini_agent.alerts.state"
#define ALERT_CHECK_NAME "dd_mini_agent.alert"

enum alert_state { ALERT_OK, ALERT_PENDING, ALERT_WARNING, ALERT_CRITICAL, ALERT_NO_DATA, ALERT_STATE_COUNT };
enum alert_op { ALERT_OP_GT, ALERT_OP_GE, ALERT_OP_LT, ALERT_OP_LE };
enum alert_space_agg { ALERT_SPACE_AVG, ALERT_SPACE_SUM, ALERT_SPACE_MIN, ALERT_SPACE_MAX };
enum alert_transform { ALERT_TF_NONE, ALERT_TF_GROWTH, ALERT_TF_DERIV, ALERT_TF_RATE, ALERT_TF_PCT_CHANGE };
enum alert_time_agg { ALERT_TIME_AVG, ALERT_TIME_MIN, ALERT_TIME_MAX, ALERT_TIME_SUM, ALERT_TIME_LAST, ALERT_TIME_COUNT };
enum alert_nodata { ALERT_NODATA_KEEP, ALERT_NODATA_OK, ALERT_NODATA_NODATA, ALERT_NODATA_ALERT };

const char *alert_state_name(enum alert_state s);	/* "OK", "PENDING", ... */
const char *alert_op_name(enum alert_op op);		/* ">", ">=", "<", "<=" */

/* One tag filter: `key:value` exact, `!key:value` / `key:!value` negated,
 * `*` in the value is a glob. A bare tag (`key` only) matches that tag
 * exactly. The key `host` matches the series host. */
struct alert_filter {
	char *key;
	char *value;	/* NULL for a bare tag */
	bool negate;
	bool glob;
};

/* A compiled rule (read-only for everyone but the loader). */
struct alert_rule {
	char *name;
	char *file;		/* where it was defined, for messages */
	unsigned line;
	char *metric;
	uint64_t metric_hash;
	struct alert_filter *filters;
	size_t nfilters;
	char **group_by;	/* sorted; "host" = the series host */
	size_t ngroup_by;
	enum alert_space_agg space_agg;
	enum alert_transform transform;
	enum alert_time_agg time_agg;
	int64_t window_s;
	enum alert_op op;
	bool has_critical, has_warning;
	double critical, warning;
	double critical_recovery, warning_recovery; /* default = the threshold */
	int64_t for_s;
	int64_t keep_firing_for_s;
	bool require_full_window;
	int64_t no_data_after_s;	/* default 2 x window */
	enum alert_nodata no_data_action;
	int64_t renotify_s;		/* 0 = never */
	char **notify;
	unsigned *notify_lines;		/* line of each notify entry, for messages */
	size_t nnotify;
	char **label_keys, **label_values;
	size_t nlabels;
	char *message;			/* template; NULL = the default one */
	size_t max_groups;
};

struct alert_rules {
	struct alert_rule *v;
	size_t n, cap;
};

/* ---- numbers, durations, query shorthand (pure) ---- */

/* "10MiB", "1.5k", "250ms", "90%", "-3" -> double. 0 or -EINVAL. */
int alert_parse_number(const char *s, double *out);
/* "5m", "30s", "1h", "2d", "90" (seconds) -> seconds. 0 or -EINVAL. */
int alert_parse_duration(const char *s, int64_t *out);

/* Compiles `time_agg(last_5m):[transform:]space_agg:metric{filters} by {group} OP threshold`
 * (also `transform(space_agg:metric{...})`) into r (fields it sets are
 * overwritten; r must be zeroed or previously filled). On error returns
 * -EINVAL, writes a message into err and the 1-based column into *col. */
int alert_query_parse(const char *q, struct alert_rule *r, char *err, size_t errlen, unsigned *col);
/* Frees what a rule owns (not r itself) and zeroes it. */
void alert_rule_done(struct alert_rule *r);

/* ---- rule files ---- */

/* Loads every *.yaml / *.yml in dir (sorted by name) into a new rule set.
 * Every problem is reported as "FILE:LINE: KEY: message" through diag
 * (NULL = silent). Returns 0 with *out set, or -EINVAL when any error was
 * reported (nothing returned), or -errno when dir cannot be read. */
int alert_rules_load_dir(const char *dir, struct alert_rules **out, struct config_diag *diag);
/* Same for one file / one buffer; rules are appended to *out (created when NULL). */
int alert_rules_load_file(const char *path, struct alert_rules **out, struct config_diag *diag);
int alert_rules_load_buffer(const char *name, const char *data, size_t len,
			    struct alert_rules **out, struct config_diag *diag);
const struct alert_rule *alert_rules_find(const struct alert_rules *rs, const char *name);
void alert_rules_free(struct alert_rules *rs); /* accepts NULL */

/* ---- engine ---- */

struct alert_engine_config {
	const char *state_path;		/* file for persisted states; NULL/"" = none */
	const char *hostname;		/* the node: {{host}} and fingerprint when not grouped by host */
	int64_t resolution_s;		/* bucket width, 10; sizes ring buffers */
	size_t max_groups_per_rule;	/* default ALERT_DEFAULT_MAX_GROUPS; a rule's max_groups overrides */
};

/* One state change (or a renotification) of one instance. */
struct alert_transition {
	const struct alert_rule *rule;	/* valid until the rules are swapped */
	const char *rule_name;
	const char *host;
	const char *const *group_tags;	/* "key:value", sorted by key */
	size_t ngroup_tags;
	enum alert_state from, to;
	bool renotify;			/* from == to: a reminder (renotify) */
	bool resolved;			/* to == OK from WARNING/CRITICAL/NO_DATA */
	bool notify;			/* notifiers should send (not for OK<->PENDING) */
	double value;			/* NaN when there was no data */
	double threshold;		/* the threshold crossed (recovery one when resolving) */
	const char *comparator;		/* ">", ... */
	int64_t ts;			/* now */
	int64_t since;			/* when the instance started firing (startsAt) */
	uint64_t fingerprint;
	char fingerprint_hex[17];
	const char *message;		/* rendered template */
};

struct alert_transitions {
	struct alert_transition *v;
	size_t n, cap;
	struct arena arena;
};
void alert_transitions_init(struct alert_transitions *t);
void alert_transitions_reset(struct alert_transitions *t);
void alert_transitions_done(struct alert_transitions *t); /* accepts NULL */

/* Consumes rules (also on failure). Restores states and window points from
 * cfg->state_path when the file is younger than ALERT_RESTORE_MAX_AGE_S at
 * `now`; a restored state produces no transition until it changes, and a
 * restored window goes on as if the agent had not stopped. NULL on ENOMEM. */
struct alert_engine *alert_engine_new(struct alert_rules *rules, const struct alert_engine_config *cfg,
				      int64_t now);
void alert_engine_free(struct alert_engine *e); /* accepts NULL */
/* Replaces the rules (consumed). Instances of rules with the same name keep
 * their state and points; the others are dropped. 0 or -ENOMEM. */
int alert_engine_swap_rules(struct alert_engine *e, struct alert_rules *rules);

/* Feeds the series of b (b may be NULL: time passes without data), evaluates
 * every instance at `now` and appends state changes to out (reset first by
 * the caller or not: appended). Writes the state file when a state changed
 * or new points arrived (once per bucket), so windows survive a restart.
 * Returns the number of transitions appended, or -ENOMEM. */
int alert_eval(struct alert_engine *e, const struct batch *b, int64_t now, struct alert_transitions *out);

struct alert_instance_info {
	const char *rule;
	const char *host;
	const char *const *group_tags;
	size_t ngroup_tags;
	enum alert_state state;
	double value;
	int64_t since;			/* state entered */
	uint64_t fingerprint;
};
/* Calls fn for every instance; returns how many. */
size_t alert_engine_states(const struct alert_engine *e,
			   void (*fn)(void *ctx, const struct alert_instance_info *i), void *ctx);

/* The alert engine's counters (core/stats.h); the status endpoint's
 * "alerts" section. */
#define ALERT_STATS_FIELDS(X)                                                            \
	X(instances, , .type = STAT_GAUGE, .help = "Rule instances (rule and group) held.") \
	X(evals, , .help = "Rule evaluations.")                                          \
	X(transitions, , .help = "State changes.")                                       \
	X(groups_refused, , .help = "New groups refused by the caps (all rules).")       \
	X(points_in, , .help = "Space-aggregated points pushed to the rings.")          \
	X(points_dropped, , .help = "Late buckets, too many buckets in one flush.")      \
	X(state_writes, , .help = "State file writes.")                                  \
	X(state_write_errors, , .help = "State file writes that failed.")                \
	X(state_points_skipped, , .help = "Instances written without points (file budget).") \
	X(restored, , .help = "Instances restored at start.")                            \
	X(points_restored, , .help = "Window points restored at start.")                 \
	X(memory_bytes, , .type = STAT_GAUGE, .help = "Rings and instances (approximate).")

struct alert_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	ALERT_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table alert_stats_table;
void alert_engine_get_stats(const struct alert_engine *e, struct alert_stats *out);

/* Appends the agent's own alert metrics to b: per instance a gauge
 * `dd_mini_agent.alerts.state` = 1 tagged rule:<name>, state:<ok|pending|
 * warning|critical|no_data> + the group tags, and a service check
 * `dd_mini_agent.alert` (OK/WARNING/CRITICAL, UNKNOWN for NO_DATA) with the
 * rendered message; plus `dd_mini_agent.alerts.groups_refused` per rule.
 * 0 or -ENOMEM. */
int alert_engine_append_metrics(const struct alert_engine *e, struct batch *b, int64_t now);

/* ---- templates ---- */

/* Renders tmpl for t into out ({{rule}} {{host}} {{value}} {{threshold}}
 * {{comparator}} {{state}} {{group.<key>}} and sections {{#is_alert}}
 * {{#is_warning}} {{#is_recovery}} {{#is_no_data}} with {{^...}} inverses).
 * Unknown variables render empty. 0 or -ENOMEM. */
int alert_render(const char *tmpl, const struct alert_transition *t, struct buf *out);
/* Formats a value for humans (integers without decimals). */
void alert_format_value(double v, char *out, size_t n);

/* ---- command line entries ---- */

/* `dd-mini-agent test-rules RULES FIXTURE`: RULES is a file or directory,
 * FIXTURE a YAML file:
 *   interval: 10            # seconds per step (default 10)
 *   start: 1700000000       # unix time of step 0 (default 1700000000)
 *   steps: 60               # default: longest values list
 *   hostname: node-1
 *   series:
 *     - name: payment_svc.memory.heap.size
 *       host: web-1                     # optional
 *       tags: [service:payment-processor]
 *       values: "100 200 _ 300+10x5"    # one per step; _ = missing; a+bxN promtool-style
 *   expect:                             # optional: checked, exit 1 on mismatch
 *     - {at: 120, rule: heap_growth_rate_high, state: CRITICAL}   # at = seconds after start
 * Prints each transition, returns the process exit code (0 ok, 1 failed
 * expectation, 2 invalid input, including an expectation that names an
 * unknown rule or state). */
int alert_cli_test_rules(const char *rules_path, const char *fixture_path, FILE *out);
/* Validates every rule file of dir, prints problems and a summary to out;
 * returns 0 when there is no error, 1 otherwise. */
int alert_cli_check(const char *dir, FILE *out);

#endif
