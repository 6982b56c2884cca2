/*
 * diag.h - the error sink of every loader of a YAML file (agent.yaml in
 * config/, rule files in alert/, notifiers in notify/): each problem is one
 * "file:line: key: message", counted as an error or a warning and handed to
 * an optional callback. Loaders never log on their own.
 */
#ifndef DDMA_YAMLDOC_DIAG_H
#define DDMA_YAMLDOC_DIAG_H

#include <stdbool.h>

struct config_diag {
	void (*report)(void *ctx, bool is_error, const char *msg);
	void *ctx;
	unsigned errors;
	unsigned warnings;
};

/* Counts one "file:line: ..." message as an error or a warning and hands it
 * to diag->report when set. NULL diag: nothing. */
void config_diag_add(struct config_diag *diag, bool is_error, const char *msg);

#endif
