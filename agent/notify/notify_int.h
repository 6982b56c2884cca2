/*
 * notify_int.h - private to agent/notify: the destination, delivery and set
 * structures shared by notify.c (configuration, counters) and queue.c (the
 * durable per-destination queues, delivery, spool files, reload hand-over).
 */
#ifndef DDMA_NOTIFY_INT_H
#define DDMA_NOTIFY_INT_H

#include "notify/notify.h"

#define NOTIFY_MAX_DESTS 256
#define NOTIFY_LOST_FPS 64		/* triggers given up, per destination */
#define SPOOL_MAX_FILE (4u << 20)
#define SPOOL_MAGIC "ddma-notification 1\n"

struct delivery {
	struct dest *d;
	char *body;
	size_t len;
	uint64_t seq;			/* spool file <seq>.ntf; 0 = not on disk */
	int64_t created;
	bool resolve;			/* a resolve (PagerDuty resolve, webhook resolved) */
	char fp[17];
	int attempt;
	struct delivery *next;
	struct notifier_set *oset;	/* set keeping it while orphaned in flight (d == NULL) */
};

struct dest {
	char *name;
	enum notify_type type;
	char *url;
	char *routing_key;
	char redacted[160];
	bool send_resolved;
	double tokens;
	int64_t refill_at;
	struct notify_stats st;
	struct notifier_set *set;
	struct delivery *head, *tail;	/* FIFO: only the head is sent */
	bool busy;			/* the head is in flight */
	struct event *timer;		/* next attempt (backoff, Retry-After, token) */
	char lost[NOTIFY_LOST_FPS][17];	/* triggers never delivered: their resolves are not sent */
	size_t nlost;
};

struct notifier_set {
	struct event_base *base;
	struct http_client *http;
	struct dest *d;
	size_t n;
	struct notify_options opt;
	char *spool;			/* directory of queued notifications; NULL = memory only */
	uint64_t seq;
	struct notify_stats retired;	/* counters of destinations a reload removed */
	struct delivery *orphans;	/* in flight for a destination a reload removed */
	bool draining;			/* notify_drain: no new attempt starts */
	void (*drain_done)(void *);	/* called once nothing is in flight, then cleared */
	void *drain_arg;
};

/* queue.c */
void dest_queue_free(struct dest *d);	/* frees queued deliveries and the timer, keeps files */
void notify_orphans_free(struct notifier_set *s);

#endif
