/*
 * sdnotify.h - systemd's notification protocol through Debian's libsystemd
 * (sd_notify), compiled out when built without it. Called by agent.c only.
 */
#ifndef DDMA_SDNOTIFY_H
#define DDMA_SDNOTIFY_H

#include <stdint.h>

#include "ddma_config.h"

#if HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
static inline void sdnotify_send(const char *state)
{
	sd_notify(0, state);
}
/* WatchdogSec in microseconds, 0 when the watchdog is off. */
static inline uint64_t sdnotify_watchdog_usec(void)
{
	uint64_t usec = 0;
	return sd_watchdog_enabled(0, &usec) > 0 ? usec : 0;
}
#else
static inline void sdnotify_send(const char *state)
{
	(void)state;
}
static inline uint64_t sdnotify_watchdog_usec(void)
{
	return 0;
}
#endif

#endif
