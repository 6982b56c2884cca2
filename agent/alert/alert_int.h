/*
 * alert_int.h - private to agent/alert: the engine's instance and per-rule
 * runtime structures shared by engine.c, state.c and export.c.
 * This file is private to the alert module; nothing outside agent/alert
 * includes it.
 */
#ifndef DDMA_ALERT_INT_H
#define DDMA_ALERT_INT_H

#include "alert/alert.h"

#define INST_ACC_MAX 8		/* distinct bucket timestamps per flush per instance */
#define INST_KEY_MAX 2048	/* canonical group key length cap */

struct apoint {
	int64_t ts;
	double v;
};

/* Points of one flush for one instance, before space aggregation. */
struct aacc {
	int64_t ts;
	double sum, min, max;
	uint32_t n;
};

struct inst {
	char *key;			/* canonical group key: "k:v" joined by '\x1f', "" ungrouped */
	uint64_t key_hash;
	char *host;
	char **gtags;			/* "k:v" sorted by key (host: included when grouped by host) */
	size_t ngtags;
	uint64_t fp;
	char fp_hex[17];
	enum alert_state state;
	enum alert_state prev_state;	/* before the last transition */
	enum alert_state level;		/* OK, WARNING or CRITICAL: the firing level */
	enum alert_state pending_level;	/* WARNING or CRITICAL: what a PENDING waits for */
	int64_t state_since;
	int64_t cond_since;		/* escalation condition true since (0 = not) */
	int64_t recover_since;		/* de-escalation condition true since (0 = not) */
	int64_t firing_since;
	int64_t last_notified;
	int64_t last_data;		/* `now` of the last flush that brought points */
	double value;
	struct apoint *ring;
	size_t rcap, rhead, rn;		/* oldest at rhead */
	struct aacc acc[INST_ACC_MAX];
	size_t nacc;
};

/* The ring's i-th point, oldest first. */
static inline struct apoint *ring_at(const struct inst *in, size_t i)
{
	return &in->ring[(in->rhead + i) % in->rcap];
}

/* Appends a point, dropping the oldest when the ring is full. */
static inline void ring_push(struct inst *in, int64_t ts, double v)
{
	if (in->rn == in->rcap) {
		in->rhead = (in->rhead + 1) % in->rcap;
		in->rn--;
	}
	*ring_at(in, in->rn) = (struct apoint){ ts, v };
	in->rn++;
}

struct rule_rt {
	const struct alert_rule *rule;
	struct inst **v;
	size_t n, cap;
	uint64_t refused;
};

struct alert_engine {
	struct alert_rules *rules;
	struct rule_rt *rt;		/* one per rule, same order */
	char *state_path;
	char *hostname;
	int64_t resolution;
	size_t max_groups;
	struct apoint *scratch;		/* ALERT_MAX_RING points for evaluation */
	double *vals;
	bool dirty;
	int64_t last_now;		/* `now` of the last alert_eval (or of alert_engine_new) */
	struct alert_stats stats;
};

/* engine.c */
struct inst *inst_new(const struct alert_engine *e, const struct alert_rule *r, const char *key,
		      const char *series_host);
void inst_free(struct inst *in);
int rt_add(struct rule_rt *rt, struct inst *in);
size_t ring_cap_for(const struct alert_engine *e, const struct alert_rule *r);
int inst_resize_ring(struct inst *in, size_t cap);

/* eval.c */
enum alert_op alert_op_negate(enum alert_op op);	/* ">" -> "<=" ... */
/* The threshold and comparator that decided the instance's current state. */
void inst_decision(const struct alert_rule *r, const struct inst *in, double *thr, enum alert_op *op);

/* state.c */
int state_write(struct alert_engine *e, int64_t now);
int state_restore(struct alert_engine *e, int64_t now);

#endif
