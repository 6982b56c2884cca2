/*
 * log.h - the agent's logger. Used only at the edges (main, agent, net,
 * forward, config, status); parse/aggr/alert count and return codes instead.
 *
 * Writes one line per message to stderr (default) or to log_file. Thread-safe
 * (one write(2) per line). log_ratelimited() lets a call site emit at most
 * `burst` messages per `interval` seconds and reports how many it suppressed.
 */
#ifndef DDMA_CORE_LOG_H
#define DDMA_CORE_LOG_H

#include <stdint.h>

enum log_level { LOG_LVL_TRACE, LOG_LVL_DEBUG, LOG_LVL_INFO, LOG_LVL_WARN, LOG_LVL_ERROR, LOG_LVL_OFF };

/* Parses "trace|debug|info|warn|warning|error|critical|off"; -1 if unknown. */
int log_level_parse(const char *s);
const char *log_level_name(enum log_level lvl);

/* Sets the threshold and destination (NULL or "" = stderr). 0 or -errno. */
int log_setup(enum log_level lvl, const char *path);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* Closes a log file opened by log_setup. */
void log_close(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct log_ratelimit {
	int64_t window_start; /* seconds, monotonic */
	unsigned count;
	unsigned suppressed;
};
/* Returns 1 if the caller may log now; counts suppressed messages otherwise. */
int log_ratelimit_ok(struct log_ratelimit *rl, unsigned burst, unsigned interval_s);

#define log_trace(...) log_msg(LOG_LVL_TRACE, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)

/* Rate-limited logging: at most 5 messages per 10 s from one call site. */
#define log_limited(lvl, ...)                                      \
	do {                                                       \
		static struct log_ratelimit rl_;                   \
		if (log_ratelimit_ok(&rl_, 5, 10))                 \
			log_msg((lvl), __VA_ARGS__);               \
	} while (0)

#endif
