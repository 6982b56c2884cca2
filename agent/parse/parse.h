/*
 * parse.h - the DogStatsD parser: one datagram in, callbacks out.
 *
 * Pure: no allocation per line (scratch arrays are allocated once by
 * dsd_parser_new), no logging, no globals, no locale. Every rejected message
 * bumps one counter in dsd_stats.errors[] for its reason and parsing goes on
 * with the next line. The accepted syntax: docs/DOGSTATSD.md.
 *
 * Views handed to the sink point into the datagram (which the parser may
 * modify in place, e.g. to unescape "\\n" in event text) or into the parser's
 * scratch arrays; they are valid only until the callback returns.
 *
 * One parser per receive pipeline (thread); a parser is not thread-safe.
 */
#ifndef DDMA_PARSE_PARSE_H
#define DDMA_PARSE_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/metric.h"
#include "core/stats.h"
#include "parse/keyhash.h"
#include "core/sv.h"

/* Caps on what a sender controls. Exceeding one rejects the line with its reason. */
struct dsd_limits {
	size_t max_name_len;   /* bytes of a metric name / check name; default 1024 */
	size_t max_tags;       /* tags on one message; default 256 */
	size_t max_tag_len;    /* bytes of one tag; default 1024 */
	size_t max_values;     /* values in one multi-value metric message; default 1024 */
};
#define DSD_LIMITS_DEFAULT ((struct dsd_limits){ 1024, 256, 1024, 1024 })

struct dsd_metric {
	struct sv name;
	enum metric_type type;
	const double *values;	/* nvalues >= 1 parsed values (not for sets) */
	size_t nvalues;
	struct sv set_member;	/* METRIC_SET: the whole raw value (may contain ':') */
	bool explicit_sign;	/* a value was written with a leading '+' or '-' */
	double sample_rate;	/* in (0,1]; 1 when absent or out of range */
	const struct sv *tags;	/* as sent, in order, duplicates kept */
	size_t ntags;
	int64_t timestamp;	/* |T field; 0 = none */
	struct sv container_id; /* |c: */
	struct sv external_data; /* |e: */
	struct sv cardinality;	 /* |card: */
	/* Everything after the type field, as sent (from its '|', or empty):
	 * with name and type it determines every field above except the values.
	 * For the seen-line cache (dsd_parse_cached). */
	struct sv raw_suffix;
	/* The line may be remembered by (name, type, raw_suffix): not a set, no
	 * |T field, no sample rate outside (0,1] (those are counted per line). */
	bool cacheable;
	/* keyhash.h dsd_key_hash(type, name, raw_suffix) when the parser computed
	 * it (a line of dsd_parse_cached's walk that may be cached), else {0, 0}. */
	struct dsd_key key;
};

struct dsd_event {
	struct sv title;	/* "\\n" already turned into '\n', as in text */
	struct sv text;		/* "\\n" already turned into '\n' */
	int64_t timestamp;	/* 0 = none (the receiver uses receive time) */
	struct sv hostname;
	bool has_hostname;
	struct sv aggregation_key;
	struct sv source_type;
	enum event_priority priority;
	enum event_alert_type alert_type;
	const struct sv *tags;
	size_t ntags;
	struct sv container_id;
};

struct dsd_service_check {
	struct sv name;
	enum check_status status;
	int64_t timestamp;	/* 0 = none */
	struct sv hostname;
	bool has_hostname;
	struct sv message;
	const struct sv *tags;
	size_t ntags;
	struct sv container_id;
};

struct dsd_sink {
	void (*metric)(void *ctx, const struct dsd_metric *m);
	void (*event)(void *ctx, const struct dsd_event *e);
	void (*service_check)(void *ctx, const struct dsd_service_check *sc);
};

/* Rejection reasons. Names (dsd_error_name) are stable: they appear in logs,
 * /status, /metrics and the agent's own metrics. */
enum dsd_error {
	DSD_ERR_EMPTY_NAME,	   /* metric: nothing before ':' */
	DSD_ERR_NO_VALUE,	   /* metric: no ':' / no value at all */
	DSD_ERR_BAD_VALUE,	   /* metric: value not a number */
	DSD_ERR_NAN_INF,	   /* metric: NaN or Inf */
	DSD_ERR_NO_TYPE,	   /* metric: missing |type */
	DSD_ERR_BAD_TYPE,	   /* metric: unknown type */
	DSD_ERR_BAD_SAMPLE_RATE,   /* metric: non-numeric @rate */
	DSD_ERR_BAD_TIMESTAMP,	   /* metric: T, Tabc, T-5, T0 */
	DSD_ERR_NAME_TOO_LONG,	   /* any: name over max_name_len */
	DSD_ERR_TOO_MANY_TAGS,	   /* any: more than max_tags */
	DSD_ERR_TAG_TOO_LONG,	   /* any: a tag over max_tag_len */
	DSD_ERR_TOO_MANY_VALUES,   /* metric: more than max_values */
	DSD_ERR_NUL_BYTE,	   /* any: NUL byte in the message */
	DSD_ERR_INVALID_UTF8,	   /* any: name or tag not valid UTF-8 */
	DSD_ERR_EVENT_HEADER,	   /* event: malformed _e{a,b}: header */
	DSD_ERR_EVENT_LENGTH,	   /* event: lengths do not match the message */
	DSD_ERR_EVENT_EMPTY_TITLE, /* event: title length 0 */
	DSD_ERR_CHECK_FORMAT,	   /* service check: missing fields */
	DSD_ERR_CHECK_EMPTY_NAME,  /* service check: empty name */
	DSD_ERR_CHECK_STATUS,	   /* service check: status not 0..3 */
	DSD_ERR_COUNT
};

/* The parser's counters (core/stats.h). metric/event/check errors are
 * per-kind totals of errors[], as Datadog's agent counts them. */
#define DSD_STATS_FIELDS(X)                                                              \
	X(datagrams, , .key = "datagrams_parsed", .help = "Datagrams parsed (not truncated).") \
	X(bytes, , .key = "bytes_parsed", .help = "Bytes of the datagrams parsed.")       \
	X(lines, , .help = "Messages parsed (non-empty lines).", .prom = "lines_total",   \
	  .tele = "dogstatsd.lines")                                                     \
	X(metric_lines, , .help = "Metric messages accepted.")                           \
	X(samples, [METRIC_TYPE_COUNT], .help = "Metric values accepted, by type.",     \
	  .prom = "samples_total", .tele = "dogstatsd.samples", .label = "type",         \
	  .elem = dsd_stats_type_name)                                                   \
	X(events, , .help = "Events accepted.", .prom = "events_total",                  \
	  .tele = "dogstatsd.events")                                                    \
	X(service_checks, , .help = "Service checks accepted.",                          \
	  .prom = "service_checks_total", .tele = "dogstatsd.service_checks")            \
	X(rate_out_of_range, , .help = "Sample rates outside (0,1], taken as 1.")        \
	X(errors, [DSD_ERR_COUNT], .key = "parse_errors",                               \
	  .help = "Messages rejected, by reason.", .prom = "parse_errors_total",         \
	  .tele = "dogstatsd.parse_errors", .label = "reason", .elem = dsd_stats_error_name) \
	X(metric_errors, , .key = "metric_parse_errors", .help = "Metric messages rejected.") \
	X(event_errors, , .key = "event_parse_errors", .help = "Events rejected.")       \
	X(check_errors, , .key = "service_check_parse_errors",                          \
	  .help = "Service checks rejected.")

struct dsd_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	DSD_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table dsd_stats_table;
/* metric_type_name and dsd_error_name by index, for the table */
const char *dsd_stats_type_name(int i);
const char *dsd_stats_error_name(int i);

const char *dsd_error_name(enum dsd_error e);

struct dsd_parser *dsd_parser_new(const struct dsd_limits *lim);
void dsd_parser_free(struct dsd_parser *p); /* accepts NULL */

/* Parses one datagram. buf may be modified in place. Never fails: problems are
 * counted in the parser's stats. */
void dsd_parse(struct dsd_parser *p, char *buf, size_t len, const struct dsd_sink *sink, void *ctx);

const struct dsd_stats *dsd_parser_stats(const struct dsd_parser *p);

/*
 * dsd_parse with the seen-line fast path (how the parser walks the lines:
 * parse.c, dsd_parse_batch). A cache candidate is a metric line that is not
 * a set, whose name + raw suffix is at most DSD_CACHE_KEY_MAX bytes, in a
 * datagram without NUL bytes; the parser splits it and computes its key
 * (keyhash.h) before validating anything. ops may be NULL (then this is
 * dsd_parse); otherwise:
 *
 * - seen(ctx, m): m has only name, type, values, nvalues, explicit_sign,
 *   raw_suffix and key set. true: the callee recognised the exact (name,
 *   type, raw_suffix) of a line it received earlier through sink->metric with
 *   m->cacheable, and applied the values; the parser counts the line as the
 *   full parse would. false: the full parse and sink->metric (key set).
 * - seen_run(ctx, l, n) (optional): the same decision for n consecutive
 *   candidates with one plain value each; applies the longest prefix it
 *   recognises, in order, and returns its length. The line after the prefix
 *   is fully parsed without being offered to seen.
 * - prefetch(ctx, hashes, n, lines_next) (optional) changes nothing
 *   observable: it may start loading what seen will need. Each window's
 *   hashes come twice: lines_next false once the window is split, true right
 *   before its lines are parsed.
 */
#define DSD_CACHE_KEY_MAX 512	/* name + raw suffix bytes of a cacheable key */
/* A line of a run (dsd_cache_ops.seen_run). */
struct dsd_seen_line {
	struct dsd_key key;
	double value;
	uint8_t type;		/* enum metric_type, never METRIC_SET */
	bool explicit_sign;
};
struct dsd_cache_ops {
	bool (*seen)(void *ctx, const struct dsd_metric *m);
	void (*prefetch)(void *ctx, const uint64_t *hashes, size_t n, bool lines_next);
	size_t (*seen_run)(void *ctx, const struct dsd_seen_line *l, size_t n);
};
void dsd_parse_cached(struct dsd_parser *p, char *buf, size_t len, const struct dsd_sink *sink,
		      const struct dsd_cache_ops *ops, void *ctx);

/* dsd_parse_cached of each datagram of one receive batch in turn (callbacks
 * in the same order). Each buf may be modified in place. */
struct dsd_datagram {
	char *buf;
	size_t len;
};
void dsd_parse_batch(struct dsd_parser *p, const struct dsd_datagram *d, size_t n,
		     const struct dsd_sink *sink, const struct dsd_cache_ops *ops, void *ctx);

/* The walk that splits lines and computes AES keys comes in two encodings
 * of the same code: baseline x86-64 and, where the CPU has AVX2 and BMI2,
 * x86-64-v3 (fewer instructions). Chosen before main(); tests turn it off
 * to compare (not while a parser runs). Returns whether v3 is in use. */
bool dsd_parse_use_v3(bool on);

#endif
