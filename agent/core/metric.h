/*
 * metric.h - metric kinds shared by parser, aggregator and encoders. Types only.
 */
#ifndef DDMA_CORE_METRIC_H
#define DDMA_CORE_METRIC_H

/* What a DogStatsD client sends (the `|type` field). */
enum metric_type {
	METRIC_COUNT,	     /* c  */
	METRIC_GAUGE,	     /* g  */
	METRIC_TIMING,	     /* ms */
	METRIC_HISTOGRAM,    /* h  */
	METRIC_SET,	     /* s  */
	METRIC_DISTRIBUTION, /* d  */
	METRIC_TYPE_COUNT
};

/* What the intake receives (Datadog's series types). */
enum series_kind {
	SERIES_GAUGE,
	SERIES_RATE,
	SERIES_COUNT,
};

enum event_priority { EVENT_PRIORITY_NORMAL, EVENT_PRIORITY_LOW };
enum event_alert_type { EVENT_ALERT_INFO, EVENT_ALERT_ERROR, EVENT_ALERT_WARNING, EVENT_ALERT_SUCCESS };
enum check_status { CHECK_OK = 0, CHECK_WARNING = 1, CHECK_CRITICAL = 2, CHECK_UNKNOWN = 3 };

const char *metric_type_name(enum metric_type t);	   /* "count", "gauge", ... */
const char *series_kind_name(enum series_kind k);	   /* "gauge", "rate", "count" */
const char *event_priority_name(enum event_priority p);   /* "normal", "low" */
const char *event_alert_type_name(enum event_alert_type t); /* "info", "error", ... */

#endif
