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
struct notify_sources;

/* Consumes cfg (the agent owns it from now on, also on failure).
 * Returns NULL when a listener or the intake cannot be set up (logged). */
/* *exit_code: 78 for invalid alert rules / notifiers, 1 otherwise. */
struct agent *agent_new(struct agent_config *cfg, int *exit_code);
/* Runs until SIGINT/SIGTERM; returns the process exit code. */
int agent_run(struct agent *a);
void agent_free(struct agent *a);
/* Where notify_load reads alert rules and notifiers for cfg (borrowed: valid
 * while cfg is); shared by start-up, reload and check-config. */
void agent_notify_sources(const struct agent_config *cfg, struct notify_sources *src);

#endif
