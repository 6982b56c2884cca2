/*
 * log.c - see log.h. One write(2) per line so lines from threads never mix.
 */
#include "core/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static enum log_level threshold = LOG_LVL_INFO;
static int log_fd = 2;

static const char *const names[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "OFF" };

int log_level_parse(const char *s)
{
	static const struct { const char *n; int l; } map[] = {
		{ "trace", LOG_LVL_TRACE }, { "debug", LOG_LVL_DEBUG }, { "info", LOG_LVL_INFO },
		{ "warn", LOG_LVL_WARN },   { "warning", LOG_LVL_WARN }, { "error", LOG_LVL_ERROR },
		{ "critical", LOG_LVL_ERROR }, { "off", LOG_LVL_OFF },
	};
	if (!s)
		return -1;
	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (strcasecmp(s, map[i].n) == 0)
			return map[i].l;
	return -1;
}

const char *log_level_name(enum log_level lvl)
{
	return (unsigned)lvl <= LOG_LVL_OFF ? names[lvl] : "?";
}

int log_setup(enum log_level lvl, const char *path)
{
	threshold = lvl;
	if (path && *path) {
		int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0)
			return -errno;
		log_close();
		log_fd = fd;
	}
	return 0;
}

void log_set_level(enum log_level lvl)
{
	threshold = lvl;
}

enum log_level log_get_level(void)
{
	return threshold;
}

void log_close(void)
{
	if (log_fd > 2)
		close(log_fd);
	log_fd = 2;
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
	if (lvl < threshold || lvl >= LOG_LVL_OFF)
		return;
	char line[2048];
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	int n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
			 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
			 tm.tm_sec, ts.tv_nsec / 1000000, names[lvl]);
	va_list ap;
	va_start(ap, fmt);
	int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	va_end(ap);
	if (m < 0)
		m = 0;
	size_t len = (size_t)n + ((size_t)m < sizeof(line) - (size_t)n - 1 ? (size_t)m : sizeof(line) - (size_t)n - 2);
	line[len++] = '\n';
	ssize_t w;
	do {
		w = write(log_fd, line, len);
	} while (w < 0 && errno == EINTR);
}

int log_ratelimit_ok(struct log_ratelimit *rl, unsigned burst, unsigned interval_s)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	if (ts.tv_sec - rl->window_start >= (int64_t)interval_s) {
		if (rl->suppressed)
			log_msg(LOG_LVL_WARN, "(%u similar messages suppressed)", rl->suppressed);
		rl->window_start = ts.tv_sec;
		rl->count = 0;
		rl->suppressed = 0;
	}
	if (rl->count < burst) {
		rl->count++;
		return 1;
	}
	rl->suppressed++;
	return 0;
}
