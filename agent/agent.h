/*
 * agent.h - the composition root: owns every module, wires their callbacks,
 * runs the flush schedule, reload and ordered shutdown. The only file that
 * includes every module header. Called by main.c.
 *
 * Threading: everything runs on one libevent loop thread.
 */
#ifndef DDMA_AGENT_H
#define DDMA_AGENT_H

#include "config/config.h"

struct agent;

/* Consumes cfg (the agent owns it from now on, also on failure).
 * Returns NULL when a listener or the intake cannot be set up (logged). */
/* *exit_code: 78 for invalid alert rules / notifiers, 1 otherwise. */
struct agent *agent_new(struct agent_config *cfg, int *exit_code);
/* Runs until SIGINT/SIGTERM; returns the process exit code. */
int agent_run(struct agent *a);
void agent_free(struct agent *a);

#endif
