/*
 * diag.h - the error sink of every loader of a YAML file (agent.yaml in
 * config/, rule files in alert/, notifiers in notify/): each problem is one
 * "file:line: key: message", counted as an error or a warning and handed to
 * an optional callback. Loaders never log on their own.
 */
#ifndef DDMA_YAMLDOC_DIAG_H
#define DDMA_YAMLDOC_DIAG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

struct config_diag {
	void (*report)(void *ctx, bool is_error, const char *msg);
	void *ctx;
	unsigned errors;
	unsigned warnings;
};

/* Counts one "file:line: ..." message as an error or a warning and hands it
 * to diag->report when set. NULL diag: nothing. */
void config_diag_add(struct config_diag *diag, bool is_error, const char *msg);

/* Writes "file:line" into out, or "file" when line is 0 (a problem with the
 * whole file, such as a missing one); returns out. */
const char *config_diag_where(char *out, size_t len, const char *file, unsigned line);

/* Writes "where: " and the printf-formatted message into out (cut to len
 * bytes); returns out. */
__attribute__((format(printf, 4, 0)))
const char *config_diag_vformat(char *out, size_t len, const char *where, const char *fmt,
				va_list ap);

/* config_diag_add of "where: " and the printf-formatted message. */
__attribute__((format(printf, 4, 0)))
void config_diag_vaddf(struct config_diag *diag, bool is_error, const char *where,
		       const char *fmt, va_list ap);

#endif
