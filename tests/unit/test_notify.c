/*
 * test_notify.c - notification bodies (Slack, PagerDuty Events v2,
 * Alertmanager webhook v4) compared exactly, notifier config validation,
 * URL redaction, and real delivery to an in-process libevent evhttp server:
 * retry on 500, Retry-After on 429, give-up on 400 (and no resolve after it),
 * expiry at max_age, order, the spool across a restart, the reload hand-over,
 * the token bucket delaying.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <dirent.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "forward/http.h"
#include "notify/notify.h"
#include "yamldoc/yamldoc.h"

static char *lk[] = { "team" }, *lv[] = { "payments" };
static char *notify_names[] = { "hook" };
static struct alert_rule rule = {
	.name = "heap_growth_rate_high", .label_keys = lk, .label_values = lv, .nlabels = 1,
	.notify = notify_names, .nnotify = 1,
};
static const char *groups[] = { "service:payment-processor" };

static struct alert_transition firing(void)
{
	struct alert_transition t = {
		.rule = &rule, .rule_name = "heap_growth_rate_high", .host = "web-1", .group_tags = groups,
		.ngroup_tags = 1, .from = ALERT_PENDING, .to = ALERT_CRITICAL, .notify = true, .value = 12582912,
		.threshold = 10485760, .comparator = ">", .ts = 1700000100, .since = 1700000100,
		.fingerprint = 0x1234, .fingerprint_hex = "0000000000001234",
		.message = "heap grew 12582912 > 10485760",
	};
	return t;
}

static int64_t now_s(void)
{
	return (int64_t)time(NULL);
}

static struct alert_transition resolved(void)
{
	struct alert_transition t = firing();
	t.from = ALERT_CRITICAL;
	t.to = ALERT_OK;
	t.resolved = true;
	t.value = 1024;
	t.threshold = 8388608;
	t.ts = 1700000400;
	t.message = "recovered";
	return t;
}

enum body_kind { BODY_SLACK, BODY_PAGERDUTY, BODY_WEBHOOK };

static struct buf body;

static void body_init(void)
{
	buf_init(&body);
}

static void body_done(void)
{
	buf_done(&body);
}

TestSuite(notify, .init = body_init, .fini = body_done);

/* The body a notifier of this kind renders for t (arg: PagerDuty's routing
 * key, the webhook's receiver name); rendering must succeed. The text stays
 * valid until the next call. */
static const char *render(enum body_kind kind, struct alert_transition t, const char *arg)
{
	int rc = -1;

	buf_reset(&body);
	switch (kind) {
	case BODY_SLACK:
		rc = notify_body_slack(&t, &body);
		break;
	case BODY_PAGERDUTY:
		rc = notify_body_pagerduty(&t, arg, &body);
		break;
	case BODY_WEBHOOK:
		rc = notify_body_webhook(&t, arg, &body);
		break;
	}
	cr_assert_eq(rc, 0, "kind %d", kind);
	return body.p;
}

/* Each needle is in the body (a NULL ends the list). */
static void expect_in_body(const char *b, ...)
{
	va_list ap;
	va_start(ap, b);
	for (const char *n; (n = va_arg(ap, const char *));)
		cr_assert(strstr(b, n), "%s not in %s", n, b);
	va_end(ap);
}

Test(notify, slack_body)
{
	cr_assert_str_eq(render(BODY_SLACK, firing(), NULL),
		"{\"text\":\":rotating_light: [CRITICAL] heap grew 12582912 > 10485760\",\"blocks\":["
		"{\"type\":\"section\",\"text\":{\"type\":\"mrkdwn\",\"text\":\":rotating_light: [CRITICAL] heap grew 12582912 > 10485760\"}},"
		"{\"type\":\"context\",\"elements\":[{\"type\":\"mrkdwn\",\"text\":\"rule `heap_growth_rate_high` | host `web-1` | "
		"value 12582912 | fingerprint 0000000000001234\"}]}]}");
	const char *b = render(BODY_SLACK, resolved(), NULL);
	cr_assert(strncmp(b, "{\"text\":\":white_check_mark: [RESOLVED] recovered\"", 49) == 0, "%s", b);
}

Test(notify, pagerduty_body)
{
	cr_assert_str_eq(render(BODY_PAGERDUTY, firing(), "R0UT1NGKEY"),
		"{\"routing_key\":\"R0UT1NGKEY\",\"event_action\":\"trigger\",\"dedup_key\":\"0000000000001234\","
		"\"payload\":{\"summary\":\"heap grew 12582912 > 10485760\",\"source\":\"web-1\",\"severity\":\"critical\","
		"\"timestamp\":\"2023-11-14T22:15:00Z\",\"component\":\"heap_growth_rate_high\",\"custom_details\":{"
		"\"rule\":\"heap_growth_rate_high\",\"state\":\"CRITICAL\",\"previous_state\":\"PENDING\",\"value\":12582912,"
		"\"comparator\":\">\",\"threshold\":10485760,\"group\":{\"service\":\"payment-processor\"},"
		"\"labels\":{\"team\":\"payments\"}}}}");
	expect_in_body(render(BODY_PAGERDUTY, resolved(), "R0UT1NGKEY"),
		       "\"event_action\":\"resolve\",\"dedup_key\":\"0000000000001234\"",
		       "\"severity\":\"critical\"", NULL);
	struct alert_transition t = firing();
	t.to = ALERT_WARNING;
	expect_in_body(render(BODY_PAGERDUTY, t, "k"), "\"severity\":\"warning\"", NULL);
}

Test(notify, webhook_body_is_alertmanager_v4)
{
	const char *labels = "{\"alertname\":\"heap_growth_rate_high\",\"service\":\"payment-processor\",\"host\":\"web-1\","
			     "\"team\":\"payments\",\"severity\":\"critical\"}";
	const char *ann = "{\"summary\":\"heap grew 12582912 > 10485760\",\"value\":\"12582912\",\"comparator\":\">\",\"threshold\":\"10485760\","
			  "\"state\":\"CRITICAL\"}";
	char want[2048];
	snprintf(want, sizeof(want),
		 "{\"version\":\"4\",\"groupKey\":\"{}:{alertname=\\\"heap_growth_rate_high\\\"}\",\"truncatedAlerts\":0,"
		 "\"status\":\"firing\",\"receiver\":\"ops-webhook\",\"groupLabels\":{\"alertname\":\"heap_growth_rate_high\"},"
		 "\"commonLabels\":%s,\"commonAnnotations\":%s,\"externalURL\":\"\",\"alerts\":[{\"status\":\"firing\","
		 "\"labels\":%s,\"annotations\":%s,\"startsAt\":\"2023-11-14T22:15:00Z\",\"endsAt\":\"0001-01-01T00:00:00Z\","
		 "\"generatorURL\":\"\",\"fingerprint\":\"0000000000001234\"}]}",
		 labels, ann, labels, ann);
	cr_assert_str_eq(render(BODY_WEBHOOK, firing(), "ops-webhook"), want);
	expect_in_body(render(BODY_WEBHOOK, resolved(), "ops-webhook"), "\"status\":\"resolved\"",
		       "\"startsAt\":\"2023-11-14T22:15:00Z\",\"endsAt\":\"2023-11-14T22:20:00Z\"", NULL);
}

Test(notify, redaction_and_time)
{
	char s[128];
	notify_redact_url("https://hooks.slack.com/services/T0/B0/secret", s, sizeof(s));
	cr_assert_str_eq(s, "https://hooks.slack.com/...");
	notify_redact_url("http://user:pw@127.0.0.1:9093", s, sizeof(s));
	cr_assert_str_eq(s, "http://127.0.0.1:9093");
	notify_redact_url("http://h/x?token=1", s, sizeof(s));
	cr_assert_str_eq(s, "http://h/...");
	notify_format_time(0, s, sizeof(s));
	cr_assert_str_eq(s, "0001-01-01T00:00:00Z");
}

struct msgs {
	char text[8][512];
	size_t n;
	unsigned errors;
};

static void collect(void *ctx, bool is_error, const char *msg)
{
	struct msgs *m = ctx;
	if (m->n < 8)
		snprintf(m->text[m->n++], sizeof(m->text[0]), "%s%s", is_error ? "E " : "W ", msg);
}

static struct notifier_set *set_from(const char *yaml, struct msgs *m, struct event_base *base,
				     struct http_client *http, struct ydoc **doc)
{
	char err[256];
	cr_assert_eq(ydoc_load_buffer("n.yaml", yaml, strlen(yaml), doc, err, sizeof(err)), 0, "%s", err);
	struct config_diag d = { .report = collect, .ctx = m };
	struct notifier_set *s = notify_new(base, http, ynode_get((*doc)->root, "notifiers"), "n.yaml", &d);
	m->errors = d.errors;
	return s;
}

Test(notify, config_validation)
{
	struct msgs m = { 0 };
	struct ydoc *doc = NULL;
	struct notifier_set *s = set_from("notifiers:\n"
					  "  a: {type: slack, url: \"https://hooks.slack.com/x\"}\n"
					  "  b: {type: pagerduty, routing_key: k}\n"
					  "  c: {type: webhook, url: \"http://127.0.0.1:9093/\", send_resolved: false, x: 1}\n",
					  &m, NULL, NULL, &doc);
	cr_assert_not_null(s);
	cr_assert_eq(m.errors, 0);
	cr_assert_eq(m.n, 1);
	cr_assert_str_eq(m.text[0], "W n.yaml:4: notifiers.c.x: unknown key (ignored)");
	cr_assert_eq(notify_count(s), 3);
	cr_assert(notify_has(s, "b"));
	cr_assert_not(notify_has(s, "d"));

	struct alert_rules rs = { .v = &rule, .n = 1 };
	char *names[] = { "a", "zz" };
	unsigned lines[] = { 7, 8 };
	struct alert_rule r2 = { .name = "x", .file = "rules.yaml", .notify = names, .notify_lines = lines, .nnotify = 2 };
	rs.v = &r2;
	struct config_diag d = { .report = collect, .ctx = &m };
	cr_assert_eq(notify_check_rules(s, &rs, &d), 1);
	cr_assert_str_eq(m.text[1], "E rules.yaml:8: notify: rule x: unknown notifier 'zz' (define it under notifiers:)");
	notify_free(s);
	ydoc_free(doc);

	struct msgs m2 = { 0 };
	s = set_from("notifiers:\n  a: {type: teams, url: \"https://x\"}\n  b: {type: pagerduty}\n"
		     "  c: {type: slack, url: \"ftp://x\"}\n", &m2, NULL, NULL, &doc);
	cr_assert_null(s);
	cr_assert_eq(m2.errors, 3, "%u: %s / %s / %s / %s", m2.errors, m2.text[0], m2.text[1], m2.text[2], m2.text[3]);
	cr_assert_str_eq(m2.text[0], "E n.yaml:2: notifiers.a.type: expected slack|pagerduty|webhook");
	cr_assert_str_eq(m2.text[1], "E n.yaml:3: notifiers.b.routing_key: missing");
	cr_assert_str_eq(m2.text[2], "E n.yaml:4: notifiers.c.url: expected an http:// or https:// URL");
	ydoc_free(doc);
}

/* ---- a real HTTP receiver in this process ---- */

struct server {
	struct event_base *base;
	int script[8];		/* status per request; 0 = 202 */
	int retry_after[8];
	size_t nreq;
	double at[8];
	char body[8][4096];
	char ctype[64];
};

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct server *sv = arg;
	size_t i = sv->nreq < 8 ? sv->nreq : 7;
	struct evbuffer *in = evhttp_request_get_input_buffer(req);
	size_t n = evbuffer_get_length(in);
	if (n >= sizeof(sv->body[0]))
		n = sizeof(sv->body[0]) - 1;
	evbuffer_remove(in, sv->body[i], n);
	sv->body[i][n] = '\0';
	const char *ct = evhttp_find_header(evhttp_request_get_input_headers(req), "Content-Type");
	snprintf(sv->ctype, sizeof(sv->ctype), "%s", ct ? ct : "");
	sv->at[i] = mono();
	int status = sv->script[i] ? sv->script[i] : 202;
	if (sv->retry_after[i]) {
		char v[16];
		snprintf(v, sizeof(v), "%d", sv->retry_after[i]);
		evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", v);
	}
	sv->nreq++;
	evhttp_send_reply(req, status, "x", NULL);
}

/* A receiver, an HTTP client and a notifier set "hook" of `type` on one loop. */
struct rig {
	struct server sv;
	struct evhttp *h;
	int port;
	struct http_client *http;
	struct notifier_set *s;
	struct ydoc *doc;
	char yaml[256];
	double t0;
};

static void rig_set(struct rig *r, const char *yaml, int64_t max_age, const char *spool)
{
	struct msgs m = { 0 };
	r->s = set_from(yaml, &m, r->sv.base, r->http, &r->doc);
	cr_assert_not_null(r->s);
	struct notify_options o = { .rate_per_s = 1, .burst = 10, .queue_max = 10, .max_age_s = max_age,
				    .backoff_unit_s = 0.05, .backoff_max_s = 60, .retry_after_max_s = 300,
				    .timeout_ms = 5000 };
	notify_set_options(r->s, &o);
	if (spool)
		cr_assert_geq(notify_spool_open(r->s, spool), 0);
}

static void rig_up(struct rig *r, const char *type, int64_t max_age, const char *spool)
{
	r->sv.base = event_base_new();
	r->h = evhttp_new(r->sv.base);
	evhttp_set_gencb(r->h, handle, &r->sv);
	struct evhttp_bound_socket *bs = evhttp_bind_socket_with_handle(r->h, "127.0.0.1", 0);
	cr_assert_not_null(bs);
	struct sockaddr_in sa;
	socklen_t sl = sizeof(sa);
	getsockname(evhttp_bound_socket_get_fd(bs), (struct sockaddr *)&sa, &sl);
	r->port = ntohs(sa.sin_port);
	snprintf(r->yaml, sizeof(r->yaml), "notifiers:\n  hook: {type: %s, url: \"http://127.0.0.1:%d/hook\", routing_key: k}\n",
		 type, r->port);
	struct http_client_config hc = { 0 };
	r->http = http_client_new(r->sv.base, &hc);
	cr_assert_not_null(r->http);
	rig_set(r, r->yaml, max_age, spool);
	r->t0 = mono();
}

static void poll_done(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	struct rig *r = arg;
	struct notify_stats st;
	notify_stats_total(r->s, &st);
	if (st.queued == 0)
		event_base_loopbreak(r->sv.base);
}

/* Runs the loop until nothing is queued or limit_s passed; returns the totals. */
static struct notify_stats rig_run(struct rig *r, double limit_s)
{
	struct event *poll = event_new(r->sv.base, -1, EV_PERSIST, poll_done, r);
	struct timeval tv = { 0, 20000 };
	struct timeval limit = { (time_t)limit_s, (suseconds_t)((limit_s - (double)(time_t)limit_s) * 1e6) };
	event_add(poll, &tv);
	event_base_loopexit(r->sv.base, &limit);
	event_base_dispatch(r->sv.base);
	event_free(poll);
	struct notify_stats st;
	notify_stats_total(r->s, &st);
	return st;
}

/* Hands the rig's set these transitions in order ('t' the firing one, 'T'
 * the same that must queue one delivery, 'r' its resolve), then runs the
 * loop as rig_run does. */
static struct notify_stats rig_send(struct rig *r, const char *which, double limit_s)
{
	for (const char *w = which; *w; w++) {
		struct alert_transition t = *w == 'r' ? resolved() : firing();
		int queued = notify_transition(r->s, &t, now_s());
		if (*w == 'T')
			cr_assert_eq(queued, 1, "transition %zu of %s", (size_t)(w - which), which);
	}
	return rig_run(r, limit_s);
}

/* The totals are as want says: "name=value ..." with struct notify_stats
 * field names; counters it does not name are not checked. */
static void expect_counts(const struct notify_stats *st, const char *want)
{
	const char *w = want;
	char name[32];
	unsigned long long v;
	int used;

	for (; sscanf(w, " %31[a-z_]=%llu%n", name, &v, &used) == 2; w += used) {
		const struct stat_field *f = NULL;
		for (size_t i = 0; i < notify_stats_table.n && !f; i++)
			if (strcmp(notify_stats_table.f[i].name, name) == 0)
				f = &notify_stats_table.f[i];
		cr_assert_not_null(f, "no notify_stats counter %s", name);
		cr_assert_eq(stat_get(f, st, 0), v, "%s (of %s)", name, want);
	}
	cr_assert_eq(*w, '\0', "unparsed: %s", w);
}

/* A reload: a new set from yaml adopts the old one's queues and counters. */
static void rig_reload(struct rig *r, const char *yaml)
{
	struct notifier_set *old = r->s;
	struct ydoc *olddoc = r->doc;

	rig_set(r, yaml, 3600, NULL);
	notify_adopt(r->s, old);
	notify_free(old);
	ydoc_free(olddoc);
}

static void rig_down(struct rig *r)
{
	http_client_free(r->http); /* first, as agent.c does */
	notify_free(r->s);
	evhttp_free(r->h);
	event_base_free(r->sv.base);
	ydoc_free(r->doc);
}

static void all(int *script, int status)
{
	for (int i = 0; i < 8; i++)
		script[i] = status;
}

Test(notify, retries_500_and_honours_retry_after_on_429)
{
	struct rig r = { .sv = { .script = { 500, 429, 0 }, .retry_after = { 0, 1, 0 } } };
	rig_up(&r, "webhook", 3600, NULL);
	struct notify_stats st = rig_send(&r, "T", 15);
	cr_assert_eq(r.sv.nreq, 3);
	expect_counts(&st, "sent=1 retried=2 failed=0 queued=0");
	/* 500 -> backoff 0.05 * 2^1 = 0.1 s; 429 -> Retry-After: 1 s */
	cr_assert_geq(r.sv.at[1] - r.sv.at[0], 0.09, "%f", r.sv.at[1] - r.sv.at[0]);
	cr_assert_lt(r.sv.at[1] - r.sv.at[0], 0.9, "%f", r.sv.at[1] - r.sv.at[0]);
	cr_assert_geq(r.sv.at[2] - r.sv.at[1], 0.95, "%f", r.sv.at[2] - r.sv.at[1]);
	cr_assert_str_eq(r.sv.ctype, "application/json");
	cr_assert_str_eq(r.sv.body[0], r.sv.body[2]);
	cr_assert(strstr(r.sv.body[2], "\"version\":\"4\""), "%s", r.sv.body[2]);
	cr_assert(strstr(r.sv.body[2], "\"receiver\":\"hook\""), "%s", r.sv.body[2]);
	rig_down(&r);
}

/* A refused trigger is given up at once, and its resolve is not sent. */
Test(notify, gives_up_on_400_and_suppresses_its_resolve)
{
	struct rig r = { .sv = { .script = { 400 } } };
	rig_up(&r, "pagerduty", 3600, NULL);
	struct notify_stats st = rig_send(&r, "Tr", 5);
	cr_assert_eq(r.sv.nreq, 1);
	expect_counts(&st, "failed=1 suppressed=1 retried=0 queued=0");
	cr_assert(strstr(r.sv.body[0], "\"routing_key\":\"k\""), "%s", r.sv.body[0]);
	/* a resolve queued after the give-up is not sent either; a new trigger is */
	r.sv.script[1] = 0;
	st = rig_send(&r, "rt", 5);
	expect_counts(&st, "suppressed=2 sent=1");
	cr_assert_eq(r.sv.nreq, 2);
	rig_down(&r);
}

/* Retried with backoff until older than max_age, then dropped and counted. */
Test(notify, retries_until_max_age)
{
	struct rig r = { 0 };
	all(r.sv.script, 503);
	rig_up(&r, "slack", 1, NULL);
	struct notify_stats st = rig_send(&r, "t", 8);
	expect_counts(&st, "expired=1 failed=0 queued=0");
	cr_assert_geq(r.sv.nreq, 3);
	cr_assert_geq(st.retried, 3);
	rig_down(&r);
}

/* One destination's notifications go out in order: a resolve never
 * overtakes its trigger while the trigger is being retried. */
Test(notify, trigger_before_resolve)
{
	struct rig r = { .sv = { .script = { 503, 503, 0, 0 } } };
	rig_up(&r, "webhook", 3600, NULL);
	struct notify_stats st = rig_send(&r, "tr", 10);
	cr_assert_eq(st.sent, 2);
	cr_assert_eq(r.sv.nreq, 4);
	expect_in_body(r.sv.body[2], "\"status\":\"firing\"", NULL);
	expect_in_body(r.sv.body[3], "\"status\":\"resolved\"", NULL);
	rig_down(&r);
}

static size_t count_spool(const char *dir)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	struct dirent *de;
	while (d && (de = readdir(d)) != NULL)
		n += strstr(de->d_name, ".ntf") != NULL;
	if (d)
		closedir(d);
	return n;
}

/* What was not delivered at a stop is delivered, in order, after a start. */
Test(notify, spool_survives_a_restart)
{
	char dir[] = "/tmp/notify_spool_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct rig r = { 0 };
	all(r.sv.script, 503);
	rig_up(&r, "webhook", 3600, dir);
	struct notify_stats st = rig_send(&r, "tr", 0.5);
	cr_assert_eq(st.queued, 2);
	cr_assert_geq(r.sv.nreq, 1);
	rig_down(&r);
	cr_assert_eq(count_spool(dir), 2);

	struct rig r2 = { 0 };
	rig_up(&r2, "webhook", 3600, dir);
	st = rig_run(&r2, 5);
	cr_assert_eq(st.sent, 2);
	cr_assert_eq(r2.sv.nreq, 2);
	expect_in_body(r2.sv.body[0], "\"status\":\"firing\"", NULL);
	expect_in_body(r2.sv.body[1], "\"status\":\"resolved\"", NULL);
	cr_assert_eq(count_spool(dir), 0);
	rig_down(&r2);

	/* a queued notification for a notifier that is gone is dropped, counted */
	FILE *f;
	char path[128];
	snprintf(path, sizeof(path), "%s/00000000000000aa.ntf", dir);
	f = fopen(path, "w");
	fprintf(f, "ddma-notification 1\ndest gone\ntype slack\ncreated 1\naction trigger\nfingerprint 0000000000000001\n\n{}");
	fclose(f);
	snprintf(path, sizeof(path), "%s/00000000000000ab.ntf", dir);
	f = fopen(path, "w");
	fprintf(f, "garbage");
	fclose(f);
	struct rig r3 = { 0 };
	rig_up(&r3, "webhook", 3600, dir);
	st = rig_run(&r3, 0.2);
	cr_assert_eq(st.dropped, 2);
	cr_assert_eq(count_spool(dir), 0);
	rig_down(&r3);
	rmdir(dir);
}

/* A trigger given up before a restart still keeps its resolve unsent. */
Test(notify, given_up_trigger_survives_a_restart)
{
	char dir[] = "/tmp/notify_lost_XXXXXX";
	cr_assert_not_null(mkdtemp(dir));
	struct rig r = { .sv = { .script = { 400 } } };
	rig_up(&r, "webhook", 3600, dir);
	struct notify_stats st = rig_send(&r, "t", 5);
	cr_assert_eq(st.failed, 1);
	rig_down(&r);

	struct rig r2 = { 0 };
	rig_up(&r2, "webhook", 3600, dir);
	st = rig_send(&r2, "r", 1);
	cr_assert_eq(st.suppressed, 1);
	cr_assert_eq(r2.sv.nreq, 0);
	st = rig_send(&r2, "tr", 5); /* a new trigger is sent, and so is its resolve */
	cr_assert_eq(st.sent, 2);
	rig_down(&r2);
	char path[128];
	snprintf(path, sizeof(path), "%s/lost", dir);
	unlink(path);
	rmdir(dir);
}

/* A reload hands the queue (even the request in flight) and the counters to
 * the new set; a notifier the reload removed has its queue dropped, counted. */
Test(notify, reload_keeps_queue_and_counters)
{
	struct rig r = { .sv = { .script = { 503, 503, 503, 0 } } };
	rig_up(&r, "webhook", 3600, NULL);
	struct notify_stats st = rig_send(&r, "t", 0.2);
	cr_assert_eq(st.queued, 1);
	cr_assert_geq(st.retried, 1);
	uint64_t retried = st.retried;
	rig_reload(&r, r.yaml);
	st = rig_run(&r, 5);
	cr_assert_eq(st.sent, 1);
	cr_assert_geq(st.retried, retried);
	cr_assert_eq(r.sv.nreq, 4);

	all(r.sv.script, 503);
	r.sv.nreq = 0;
	struct alert_transition t = firing();
	notify_transition(r.s, &t, now_s());
	rig_reload(&r, "notifiers:\n  other: {type: slack, url: \"http://127.0.0.1:9/\"}\n");
	st = rig_run(&r, 0.3);
	expect_counts(&st, "sent=1 dropped=1 queued=0");
	rig_down(&r);
}

/* The token bucket delays, it does not drop. */
Test(notify, rate_limit_delays)
{
	struct rig r = { 0 };
	rig_up(&r, "webhook", 3600, NULL);
	struct notify_options o;
	notify_get_options(r.s, &o);
	o.burst = 2;
	notify_set_options(r.s, &o);
	struct notify_stats st = rig_send(&r, "tttt", 6);
	cr_assert_eq(st.sent, 4);
	cr_assert_geq(st.rate_limited, 2);
	cr_assert_geq(r.sv.at[3] - r.sv.at[0], 0.9, "%f", r.sv.at[3] - r.sv.at[0]);
	rig_down(&r);
}
