/*
 * diag.c - see diag.h.
 * Threading: a struct config_diag belongs to one load, one thread.
 */
#include "yamldoc/diag.h"

#include <limits.h>
#include <stdio.h>

void config_diag_add(struct config_diag *diag, bool is_error, const char *msg)
{
	if (!diag)
		return;
	if (is_error)
		diag->errors++;
	else
		diag->warnings++;
	if (diag->report)
		diag->report(diag->ctx, is_error, msg);
}

const char *config_diag_where(char *out, size_t len, const char *file, unsigned line)
{
	if (line)
		snprintf(out, len, "%s:%u", file, line);
	else
		snprintf(out, len, "%s", file);
	return out;
}

const char *config_diag_vformat(char *out, size_t len, const char *where, const char *fmt,
				va_list ap)
{
	int n = snprintf(out, len, "%s: ", where);

	if (n >= 0 && (size_t)n < len)
		vsnprintf(out + n, len - (size_t)n, fmt, ap);
	return out;
}

void config_diag_vaddf(struct config_diag *diag, bool is_error, const char *where,
		       const char *fmt, va_list ap)
{
	char msg[PATH_MAX + 1536];

	config_diag_add(diag, is_error, config_diag_vformat(msg, sizeof(msg), where, fmt, ap));
}
