/*
 * parse.h - the DogStatsD parser: windows of lines in, messages out.
 *
 * Pure: no allocation per line (scratch arrays are allocated once by
 * dsd_parser_new), no logging, no globals, no locale. Every rejected message
 * bumps one counter in dsd_stats.errors[] for its reason and parsing goes on
 * with the next line. The accepted syntax: docs/DOGSTATSD.md.
 *
 * Views in a parsed message point into the datagram (which the parser may
 * modify in place, e.g. to unescape "\\n" in event text) or into the parser's
 * scratch arrays; they are valid until the parser's next call.
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
	 * with name and type it determines every field above except the values
	 * (the seen-line cache's key). */
	struct sv raw_suffix;
	/* The line may be remembered by (name, type, raw_suffix): not a set, no
	 * |T field, no sample rate outside (0,1] (those are counted per line). */
	bool cacheable;
	/* keyhash.h dsd_key_hash(type, name, raw_suffix) when the split computed
	 * it (a cache candidate), else {0, 0}. */
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

/* dsd_parse's receiver of each accepted message. */
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

/*
 * The parser is two steps the caller drives (agent/ingest/ingest.c): split
 * a window of lines, then parse each line that needs it.
 *
 * dsd_split_begin starts on a batch of datagrams (each buf may be modified
 * in place); dsd_split_next returns the next window of up to DSD_WINDOW_MAX
 * lines of one datagram (n = 0: the batch is done). A window stays valid
 * until the second dsd_split_next after the one that returned it, so the
 * caller can look one window ahead. Empty lines are skipped and counted
 * nowhere; every other line must then go through dsd_parse_line or
 * dsd_count_cached(_run) exactly once, in order.
 *
 * With `keys`, a metric line that is not a set, whose name + raw suffix is
 * at most DSD_CACHE_KEY_MAX bytes, in a datagram without NUL bytes, is a
 * cache candidate: its record holds its key (keyhash.h dsd_key_hash of
 * type, name, raw suffix), type, and, for DSD_LINE_SIMPLE (one plain
 * value), the value and sign. h[] lists lane a of the candidates' keys in
 * order (for prefetching). Nothing is validated yet.
 */
#define DSD_CACHE_KEY_MAX 512	/* name + raw suffix bytes of a cacheable key */
#define DSD_WINDOW_MAX 64	/* lines in one window */
enum dsd_line_kind {
	DSD_LINE_FULL,		/* only the full parse */
	DSD_LINE_CAND,		/* a cache candidate (dsd_line_metric reads its values) */
	DSD_LINE_SIMPLE,	/* a cache candidate with one plain value, in its record */
};
struct dsd_seen_line {
	struct dsd_key key;
	double value;
	uint8_t type;		/* enum metric_type, never METRIC_SET */
	bool explicit_sign;
	uint8_t kind;		/* enum dsd_line_kind; the fields above: candidates only */
};
struct dsd_window {
	size_t n;
	struct dsd_seen_line line[DSD_WINDOW_MAX];
	uint64_t h[DSD_WINDOW_MAX];
	size_t nh;
};
struct dsd_datagram {
	char *buf;
	size_t len;
};
void dsd_split_begin(struct dsd_parser *p, const struct dsd_datagram *d, size_t n, bool keys);
struct dsd_window *dsd_split_next(struct dsd_parser *p);

/* What dsd_parse_line accepted: kind says which member is set. */
enum dsd_msg_kind { DSD_MSG_NONE, DSD_MSG_METRIC, DSD_MSG_EVENT, DSD_MSG_CHECK };
union dsd_msg {
	struct dsd_metric metric;
	struct dsd_event event;
	struct dsd_service_check check;
};

/* The full parse of line i of w: the message into out, or DSD_MSG_NONE when
 * it is rejected (counted under its reason). A candidate's metric carries its
 * key. Views into the scratch arrays (tags, values) last until the next
 * dsd_parse_line or dsd_line_metric on p. */
enum dsd_msg_kind dsd_parse_line(struct dsd_parser *p, struct dsd_window *w, size_t i,
				 union dsd_msg *out);

/* A candidate's cache view: name, type, values, nvalues, explicit_sign,
 * raw_suffix and key set, nothing else. false when its values do not parse
 * (the full parse reports why). */
bool dsd_line_metric(struct dsd_parser *p, struct dsd_window *w, size_t i, struct dsd_metric *out);

/* Lines taken by the seen-line cache instead of dsd_parse_line, counted as
 * their full parse would count them (the cache took them because the same
 * name and suffix were accepted before): lines i..i+n of w, DSD_LINE_SIMPLE
 * each, or the candidate dsd_line_metric gave as m. */
void dsd_count_cached_run(struct dsd_parser *p, const struct dsd_window *w, size_t i, size_t n);
void dsd_count_cached(struct dsd_parser *p, const struct dsd_metric *m);

/* Every line of one datagram through dsd_parse_line and the sink (no cache).
 * buf may be modified in place. */
void dsd_parse(struct dsd_parser *p, char *buf, size_t len, const struct dsd_sink *sink, void *ctx);

const struct dsd_stats *dsd_parser_stats(const struct dsd_parser *p);

/* The walk that splits lines and computes AES keys comes in two encodings
 * of the same code: baseline x86-64 and, where the CPU has AVX2 and BMI2,
 * x86-64-v3 (fewer instructions). Chosen before main(); tests turn it off
 * to compare (not while a parser runs). Returns whether v3 is in use. */
bool dsd_parse_use_v3(bool on);

#endif
