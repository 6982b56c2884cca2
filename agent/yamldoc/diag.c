/*
 * diag.c - see diag.h.
 * Threading: a struct config_diag belongs to one load, one thread.
 */
#include "yamldoc/diag.h"

#include <stddef.h>

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
