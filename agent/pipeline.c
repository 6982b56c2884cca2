/*
 * pipeline.c - a receive pipeline thread (see pipeline.h).
 *
 * The thread runs its own event_base: the sockets' read events (net.c, at
 * most NET_MAX_BATCHES_PER_WAKE recvmmsg calls per socket per wakeup, so a
 * command waits for at most that much parsing), an eventfd that carries
 * commands from the main thread, and a 100 ms timer that publishes stats.
 * Commands are synchronous: one slot, the caller waits on a condition
 * variable until the pipeline has run it (only the main thread calls).
 * A collect runs in steps of COLLECT_STEP contexts (aggr_collect_begin/step/
 * end), each step a zero-timeout event, so the sockets are read between two
 * steps; the caller is released after the last one. The cardinality report
 * (PCMD_TOP, GET /status) runs in steps of TOP_STEP contexts the same way.
 */
#include "pipeline.h"

#include <errno.h>
#include <event2/event.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "ingest/ingest.h"

#define PUBLISH_MS 100
#define STOP_DRAIN_BATCHES 64
/* Contexts a collect step visits (~0.5 ms at 1M contexts): between two steps
 * the loop reads the sockets, so a collect of 1M contexts holds receiving
 * for one step, not for the whole walk (~40 ms: longer than the kernel's
 * default socket buffer lasts at 200k lines/s). */
#define COLLECT_STEP 16384
#define TOP_STEP 65536	/* contexts per step of the cardinality report */

enum pcmd { PCMD_NONE, PCMD_COLLECT, PCMD_RECONFIGURE, PCMD_STOP_RECEIVING, PCMD_TOP, PCMD_EXIT };

struct pipeline {
	unsigned index;
	struct event_base *base;
	struct net *net;
	struct dsd_parser *parser;
	struct aggr *aggr;
	struct event *cmd_ev, *pub_ev;
	struct event *step_ev;		/* next collect or top step, a zero timeout */
	struct aggr_top_walk *top_walk;	/* during PCMD_TOP */
	int cmd_fd;			/* eventfd: main -> pipeline */
	int udp_port;
	pthread_t thread;
	bool running;
	/* pipeline thread only */
	struct agent_clock clock;
	int64_t now;			/* receive time of the datagram being parsed */
	int64_t floor;			/* `now` of the last collect: no sample is stamped earlier */
	uint64_t collects;
	double last_collect_s;		/* longest single hold-up (step) of the last collect */
	/* shared, under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	enum pcmd cmd;
	bool done;
	union {
		struct { int64_t now; bool final; struct aggr_out *out; } collect;
		const struct aggr_config *cfg;
		struct { struct aggr_top_entry *v; size_t n, got; } top;
	} arg;
	struct pipeline_stats pub;
};

/* ---- receive path (pipeline thread) ---- */

/* A receive batch: one clock read, then the ingest loop over its datagrams. */
static void on_batch(void *ctx, const struct net_dgram *d, unsigned n)
{
	struct pipeline *p = ctx;
	struct dsd_datagram dg[NET_RECV_BATCH_MAX];
	size_t k = 0;
	for (unsigned i = 0; i < n && i < NET_RECV_BATCH_MAX; i++)
		if (!d[i].truncated) /* counted by net; never half-parsed */
			dg[k++] = (struct dsd_datagram){ d[i].buf, d[i].len };
	if (!k)
		return;
	int64_t t = agent_clock_now(&p->clock);
	p->now = t < p->floor ? p->floor : t;
	ingest_batch(p->parser, p->aggr, dg, k, p->now);
}

/* ---- stats publication and commands (pipeline thread) ---- */

static void publish(struct pipeline *p)
{
	struct pipeline_stats s;
	net_get_stats(p->net, &s.net);
	s.parse = *dsd_parser_stats(p->parser);
	aggr_get_stats(p->aggr, &s.aggr);
	s.collects = p->collects;
	s.last_collect_s = p->last_collect_s;
	pthread_mutex_lock(&p->mu);
	p->pub = s;
	pthread_mutex_unlock(&p->mu);
}

static void on_publish(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	publish(arg);
}

/* Tells the main thread the command it is waiting for has run. */
static void complete(struct pipeline *p, bool published)
{
	if (!published)
		publish(p);
	pthread_mutex_lock(&p->mu);
	p->cmd = PCMD_NONE;
	p->done = true;
	pthread_cond_signal(&p->cv);
	pthread_mutex_unlock(&p->mu);
}

/* One step of the collect in progress; the last one completes the command. */
static bool collect_step(struct pipeline *p)
{
	double t0 = mono_now();
	bool last = aggr_collect_step(p->aggr, COLLECT_STEP);
	if (last) {
		p->arg.collect.out = aggr_collect_end(p->aggr);
		p->collects++;
	}
	double held = mono_now() - t0;
	if (held > p->last_collect_s)
		p->last_collect_s = held;
	return last;
}

/* One step of the report in progress (TOP_STEP contexts); the last one
 * fills the caller's rows. At 1M contexts the walk takes tens of ms: in one
 * go it held receiving up for all of them. */
static bool top_step(struct pipeline *p)
{
	if (!aggr_top_step(p->aggr, p->top_walk, TOP_STEP))
		return false;
	p->arg.top.got = aggr_top_end(p->top_walk, p->arg.top.v);
	p->top_walk = NULL;
	return true;
}

/* The next step of the command in progress (a collect, or the report when a
 * walk is open), after the loop looked at the sockets; the last step
 * completes the command. */
static void on_step(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;
	static const struct timeval zero = { 0, 0 };
	(void)fd;
	(void)what;
	if (!(p->top_walk ? top_step(p) : collect_step(p))) {
		event_add(p->step_ev, &zero);
		return;
	}
	complete(p, false);
}

/* Starts a collect; its steps run from on_step, the sockets read
 * between two of them. A final collect (shutdown: the sockets are
 * paused already) runs in one go. Returns true when it completed. */
static bool collect_begin(struct pipeline *p)
{
	static const struct timeval zero = { 0, 0 };
	if (p->arg.collect.now > p->floor)
		p->floor = p->arg.collect.now;
	p->last_collect_s = 0;
	if (p->arg.collect.final) {
		double t0 = mono_now();
		p->arg.collect.out = aggr_collect(p->aggr, p->arg.collect.now, true);
		p->last_collect_s = mono_now() - t0;
		p->collects++;
		return true;
	}
	if (aggr_collect_begin(p->aggr, p->arg.collect.now, false) < 0)
		return true; /* out of memory: out stays NULL, nothing was taken */
	event_add(p->step_ev, &zero);
	return false;
}

/* Starts the cardinality report; its steps run from on_step, like a
 * collect's. Returns true when it completed (out of memory: got stays 0). */
static bool top_begin(struct pipeline *p)
{
	static const struct timeval zero = { 0, 0 };
	if (!(p->top_walk = aggr_top_begin(p->aggr, p->arg.top.n)))
		return true;
	event_add(p->step_ev, &zero);
	return false;
}

/* Runs cmd; false when it goes on in later loop iterations (collect and top
 * steps). */
static bool run_command(struct pipeline *p, enum pcmd cmd)
{
	switch (cmd) {
	case PCMD_COLLECT:
		return collect_begin(p);
	case PCMD_RECONFIGURE:
		aggr_reconfigure(p->aggr, p->arg.cfg);
		break;
	case PCMD_STOP_RECEIVING:
		net_pause(p->net);
		net_drain(p->net, STOP_DRAIN_BATCHES);
		break;
	case PCMD_TOP:
		return top_begin(p);
	case PCMD_EXIT:
		event_base_loopbreak(p->base);
		break;
	case PCMD_NONE:
		break;
	}
	return true;
}

static void on_command(evutil_socket_t fd, short what, void *arg)
{
	struct pipeline *p = arg;
	uint64_t v;
	(void)what;
	if (read(fd, &v, sizeof(v)) < 0)
		return; /* EAGAIN: a spurious wakeup */
	pthread_mutex_lock(&p->mu);
	enum pcmd cmd = p->cmd;
	pthread_mutex_unlock(&p->mu);
	if (cmd == PCMD_NONE)
		return;
	if (run_command(p, cmd))
		complete(p, cmd == PCMD_EXIT); /* no stats after EXIT: the loop is ending */
}

static void *thread_main(void *arg)
{
	struct pipeline *p = arg;
	event_base_dispatch(p->base);
	return NULL;
}

/* Main thread: hands cmd to the pipeline and waits until it ran. */
static void call(struct pipeline *p, enum pcmd cmd)
{
	uint64_t one = 1;
	pthread_mutex_lock(&p->mu);
	p->cmd = cmd;
	p->done = false;
	pthread_mutex_unlock(&p->mu);
	while (write(p->cmd_fd, &one, sizeof(one)) < 0 && errno == EINTR)
		;
	pthread_mutex_lock(&p->mu);
	while (!p->done)
		pthread_cond_wait(&p->cv, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

/* ---- API (main thread) ---- */

struct aggr_out *pipeline_collect(struct pipeline *p, int64_t now, bool final)
{
	p->arg.collect.now = now;
	p->arg.collect.final = final;
	p->arg.collect.out = NULL;
	call(p, PCMD_COLLECT);
	return p->arg.collect.out;
}

void pipeline_reconfigure(struct pipeline *p, const struct aggr_config *cfg)
{
	p->arg.cfg = cfg;
	call(p, PCMD_RECONFIGURE);
}

void pipeline_stop_receiving(struct pipeline *p)
{
	call(p, PCMD_STOP_RECEIVING);
}

size_t pipeline_top(struct pipeline *p, struct aggr_top_entry *out, size_t n)
{
	p->arg.top.v = out;
	p->arg.top.n = n;
	p->arg.top.got = 0;
	call(p, PCMD_TOP);
	return p->arg.top.got;
}

void pipeline_get_stats(struct pipeline *p, struct pipeline_stats *out)
{
	pthread_mutex_lock(&p->mu);
	*out = p->pub;
	pthread_mutex_unlock(&p->mu);
}

int pipeline_udp_port(const struct pipeline *p)
{
	return p->udp_port;
}

static int setup(struct pipeline *p, const struct net_config *ncfg, char *err, size_t errlen)
{
	struct net_config nc = *ncfg;
	if (p->index > 0)
		nc.socket_path = NULL; /* the Unix socket belongs to pipeline 0 */
	p->net = net_new(p->base, &nc, on_batch, p, err, errlen);
	if (!p->net)
		return -EINVAL;
	p->udp_port = net_udp_port(p->net);
	p->cmd_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (p->cmd_fd < 0) {
		snprintf(err, errlen, "pipeline %u: eventfd: %s", p->index, strerror(errno));
		return -errno;
	}
	struct timeval iv = { 0, PUBLISH_MS * 1000 };
	p->cmd_ev = event_new(p->base, p->cmd_fd, EV_READ | EV_PERSIST, on_command, p);
	p->pub_ev = event_new(p->base, -1, EV_PERSIST, on_publish, p);
	p->step_ev = event_new(p->base, -1, 0, on_step, p);
	if (!p->cmd_ev || !p->pub_ev || !p->step_ev || event_add(p->cmd_ev, NULL) < 0 ||
	    event_add(p->pub_ev, &iv) < 0) {
		snprintf(err, errlen, "pipeline %u: cannot set up its events", p->index);
		return -ENOMEM;
	}
	publish(p);
	return 0;
}

/* The thread starts with every signal blocked: they are the main thread's. */
static int start_thread(struct pipeline *p)
{
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&p->thread, NULL, thread_main, p);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0)
		return -rc;
	p->running = true;
	return 0;
}

struct pipeline *pipeline_new(unsigned index, const struct net_config *net,
			      const struct dsd_limits *limits, const struct aggr_config *aggr,
			      struct taglimit *tl, char *err, size_t errlen)
{
	struct pipeline *p = calloc(1, sizeof(*p));
	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->index = index;
	p->cmd_fd = -1;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	p->base = event_base_new();
	p->parser = dsd_parser_new(limits);
	p->aggr = aggr_new_shared(aggr, tl);
	if (!p->base || !p->parser || !p->aggr) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	aggr_reserve(p->aggr);
	if (setup(p, net, err, errlen) < 0)
		goto fail;
	int rc = start_thread(p);
	if (rc < 0) {
		snprintf(err, errlen, "pipeline %u: cannot start its thread: %s", index, strerror(-rc));
		goto fail;
	}
	return p;
fail:
	pipeline_free(p);
	return NULL;
}

void pipeline_free(struct pipeline *p)
{
	if (!p)
		return;
	if (p->running) {
		call(p, PCMD_EXIT);
		pthread_join(p->thread, NULL);
	}
	if (p->cmd_ev)
		event_free(p->cmd_ev);
	if (p->pub_ev)
		event_free(p->pub_ev);
	if (p->step_ev)
		event_free(p->step_ev);
	aggr_top_end(p->top_walk, NULL);
	net_free(p->net);
	if (p->cmd_fd >= 0)
		close(p->cmd_fd);
	if (p->base)
		event_base_free(p->base);
	aggr_free(p->aggr);
	dsd_parser_free(p->parser);
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

/* ---- sums ---- */

void pipeline_stats_add(struct pipeline_stats *sum, const struct pipeline_stats *x)
{
	stat_table_add(&net_stats_table, &sum->net, &x->net);
	stat_table_add(&dsd_stats_table, &sum->parse, &x->parse);
	stat_table_add(&aggr_stats_table, &sum->aggr, &x->aggr);
	sum->collects += x->collects;
	if (x->last_collect_s > sum->last_collect_s)
		sum->last_collect_s = x->last_collect_s;
}
