/*
 * stats.h - a module's counters, declared once.
 *
 * A module lists its counters in one X-macro, <MODULE>_STATS_FIELDS(X), with
 * one entry per counter:
 *
 *   X(field, dim, .help = "...", .prom = "...", ...)
 *
 * field is the struct member, dim is empty for a scalar or [N] for an array
 * of N counters, and the rest are designated initializers of struct
 * stat_field (the attributes below; omitted ones are NULL / STAT_COUNTER).
 * From that list come the stats struct (every member a uint64_t:
 * STATS_MEMBER) and its descriptor table (STATS_DESC), and from the table
 * everything that handles the counters one by one: sums over pipelines
 * (stat_table_add), /status JSON, /metrics, the `status` text (status/render.c),
 * the agent's own telemetry (telemetry.c) and its debug log line (agent.c).
 * Modules the status module does not know (forwarder, alerts, notifiers)
 * reach it through stat_table_foreach.
 *
 * Fields that share a /metrics name (one per label value) are adjacent in
 * the list, so the name's HELP and TYPE are written once.
 */
#ifndef DDMA_CORE_STATS_H
#define DDMA_CORE_STATS_H

#include <stddef.h>
#include <stdint.h>

enum stat_type {
	STAT_COUNTER,	/* cumulative since start: a delta per flush in telemetry */
	STAT_GAUGE,	/* a level now */
};

struct stat_field {
	const char *name;	/* the struct member (set by STATS_DESC) */
	size_t offset;		/* of its first uint64_t (set by STATS_DESC) */
	size_t n;		/* 1, or the array's length (set by STATS_DESC) */
	enum stat_type type;
	const char *key;	/* /status JSON key; NULL: name */
	const char *title;	/* `status` label; NULL: the key, humanised */
	const char *help;	/* what it counts; the /metrics HELP text */
	const char *prom;	/* /metrics name after "dd_mini_agent_"; NULL: not there */
	const char *tele;	/* telemetry metric after "dd_mini_agent."; NULL: not sent */
	const char *label;	/* scalar: a "key:value" label (/metrics) and tag
				 * (telemetry); array: the label key */
	const char *(*elem)(int i); /* array: the label value of element i */
	double scale;		/* stat_value = the count x scale (0: 1), e.g. 1e-6 for
				 * microseconds shown as seconds */
};

struct stat_table {
	const struct stat_field *f;
	size_t n;
};

/* For the struct: #define X(f, dim, ...) STATS_MEMBER(f, dim) */
#define STATS_MEMBER(f, dim) uint64_t f dim;
/* For the table: #define X(f, dim, ...) STATS_DESC(struct T, f, __VA_ARGS__) */
#define STATS_DESC(T, f, ...)                                                        \
	{ .name = #f, .offset = offsetof(T, f),                                      \
	  .n = sizeof(((T *)0)->f) / sizeof(uint64_t), __VA_ARGS__ },
#define STATS_TABLE(arr) { arr, sizeof(arr) / sizeof(arr[0]) }

/* Element i of field f in the stats struct s. */
static inline uint64_t stat_get(const struct stat_field *f, const void *s, size_t i)
{
	return ((const uint64_t *)((const char *)s + f->offset))[i];
}

/* The field's elements added up (a scalar's value). */
uint64_t stat_total(const struct stat_field *f, const void *s);

static inline const char *stat_key(const struct stat_field *f)
{
	return f->key ? f->key : f->name;
}

/* Element i of f in its unit (scaled). */
static inline double stat_value(const struct stat_field *f, const void *s, size_t i)
{
	return (double)stat_get(f, s, i) * (f->scale ? f->scale : 1);
}

/* Calls fn(arg, name, value) for each scalar (name = its key) and each array
 * element (name = "<key>_<label value>"), values scaled. */
void stat_table_foreach(const struct stat_table *t, const void *s,
			void (*fn)(void *arg, const char *name, double v), void *arg);

/* sum += x, field by field, for structs described by t. */
void stat_table_add(const struct stat_table *t, void *sum, const void *x);

#endif
