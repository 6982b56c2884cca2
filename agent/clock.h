/*
 * clock.h - the agent's clock for bucketing and flushing.
 *
 * Wall-clock seconds that never go backwards. A forward jump is followed.
 * After a backward jump the clock goes on from where it was at the monotonic
 * clock's pace until the wall clock catches up, so a bucket is never reopened
 * after its flush (which would send a second point for the same series and
 * timestamp, and the intake keeps only one) and flushes keep their
 * one-per-interval rhythm. One struct agent_clock per thread (not shared);
 * a pipeline additionally never stamps a sample earlier than the `now` of its
 * last collect (pipeline.c), so two threads' clocks cannot reopen a bucket.
 * Coarse clocks: a vDSO read of a few ns, called once per datagram.
 */
#ifndef DDMA_AGENT_CLOCK_H
#define DDMA_AGENT_CLOCK_H

#include <stdint.h>
#include <time.h>

struct agent_clock {
	int64_t last;	/* last value returned */
	int64_t mono;	/* the monotonic second it was read at */
};

static inline int64_t agent_clock_now(struct agent_clock *c)
{
	struct timespec w, m;
	clock_gettime(CLOCK_REALTIME_COARSE, &w);
	clock_gettime(CLOCK_MONOTONIC_COARSE, &m);
	int64_t t = w.tv_sec;
	if (t < c->last)
		t = c->last + (m.tv_sec - c->mono);
	c->last = t;
	c->mono = m.tv_sec;
	return t;
}

/* Monotonic seconds, for measuring durations (flush, collect). */
static inline double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
