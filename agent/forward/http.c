/*
 * http.c - see http.h. The classic curl multi_socket + libevent pairing:
 * curl tells us which fds to watch (sock_cb) and when to wake it (timer_cb);
 * libevent calls back into curl_multi_socket_action; finished transfers are
 * collected with curl_multi_info_read and reported through `done`.
 *
 * Hostile responses: at most max_response_bytes of the body are kept; a body
 * more than HARD_BODY_FACTOR times larger aborts the transfer (the status is
 * still reported); the whole transfer is bounded by timeout_ms.
 */
#include "forward/http.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/event_struct.h>

#include "ddma_config.h"

#define DEFAULT_MAX_RESPONSE (64 * 1024)
#define HARD_BODY_FACTOR 16
#define DEFAULT_TIMEOUT_MS 20000

struct sock_ctx {
	struct event ev;
	curl_socket_t fd;
	struct http_client *c;
	struct sock_ctx *prev, *next;
};

struct req {
	struct http_client *c;
	CURL *easy;
	struct curl_slist *hdrs;
	char *url;
	char *body;
	http_done_fn done;
	void *arg;
	char *resp;
	size_t resp_len, resp_total;
	int body_capped;
	double retry_after;
	char errbuf[CURL_ERROR_SIZE];
	struct req *prev, *next;
};

struct http_client {
	struct event_base *base;
	CURLM *multi;
	struct event *timer;
	char *ca_file, *cert_file, *key_file, *proxy_http, *proxy_https, *no_proxy, *user_agent;
	bool skip_ssl_validation;
	size_t max_resp;
	struct req *reqs;
	struct sock_ctx *socks;
	size_t inflight;
};

static void check_done(struct http_client *c);

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void sock_event(evutil_socket_t fd, short what, void *arg)
{
	struct sock_ctx *s = arg;
	struct http_client *c = s->c;
	int running = 0;
	int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
	curl_multi_socket_action(c->multi, fd, flags, &running);
	check_done(c);
}

static void sock_free(struct http_client *c, struct sock_ctx *s)
{
	event_del(&s->ev);
	if (s->prev)
		s->prev->next = s->next;
	else
		c->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	free(s);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
	struct http_client *c = userp;
	struct sock_ctx *s = socketp;
	if (what == CURL_POLL_REMOVE) {
		if (s)
			sock_free(c, s);
		curl_multi_assign(c->multi, fd, NULL);
		return 0;
	}
	if (!s) {
		s = calloc(1, sizeof(*s));
		if (!s)
			return -1;
		s->fd = fd;
		s->c = c;
		s->next = c->socks;
		if (c->socks)
			c->socks->prev = s;
		c->socks = s;
		curl_multi_assign(c->multi, fd, s);
	} else {
		event_del(&s->ev);
	}
	short ev = (short)((what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
	event_assign(&s->ev, c->base, fd, ev, sock_event, s);
	event_add(&s->ev, NULL);
	return 0;
}

static void timer_event(evutil_socket_t fd, short what, void *arg)
{
	struct http_client *c = arg;
	int running = 0;
	curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	check_done(c);
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
	struct http_client *c = userp;
	if (timeout_ms < 0) {
		evtimer_del(c->timer);
		return 0;
	}
	struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
	evtimer_add(c->timer, &tv);
	return 0;
}

struct http_client *http_client_new(struct event_base *base, const struct http_client_config *cfg)
{
	static int global_done;
	if (!global_done) {
		if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
			return NULL;
		global_done = 1;
	}
	struct http_client *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->base = base;
	c->multi = curl_multi_init();
	c->timer = evtimer_new(base, timer_event, c);
	c->ca_file = dup_or_null(cfg->ca_file);
	c->cert_file = dup_or_null(cfg->cert_file);
	c->key_file = dup_or_null(cfg->key_file);
	c->proxy_http = dup_or_null(cfg->proxy_http);
	c->proxy_https = dup_or_null(cfg->proxy_https);
	c->no_proxy = dup_or_null(cfg->no_proxy);
	c->user_agent = strdup(cfg->user_agent && *cfg->user_agent ? cfg->user_agent
							   : "dd-mini-agent/" DDMA_VERSION);
	c->skip_ssl_validation = cfg->skip_ssl_validation;
	c->max_resp = cfg->max_response_bytes ? cfg->max_response_bytes : DEFAULT_MAX_RESPONSE;
	if (!c->multi || !c->timer || !c->user_agent) {
		http_client_free(c);
		return NULL;
	}
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
	curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
	curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
	curl_multi_setopt(c->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 4L);
	curl_multi_setopt(c->multi, CURLMOPT_MAXCONNECTS, 8L);
	return c;
}

static void req_free(struct req *r)
{
	if (!r)
		return;
	if (r->easy)
		curl_easy_cleanup(r->easy);
	curl_slist_free_all(r->hdrs);
	free(r->url);
	free(r->body);
	free(r->resp);
	free(r);
}

static void req_unlink(struct http_client *c, struct req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		c->reqs = r->next;
	if (r->next)
		r->next->prev = r->prev;
	c->inflight--;
}

void http_client_free(struct http_client *c)
{
	if (!c)
		return;
	while (c->reqs) {
		struct req *r = c->reqs;
		req_unlink(c, r);
		curl_multi_remove_handle(c->multi, r->easy);
		req_free(r);
	}
	if (c->multi)
		curl_multi_cleanup(c->multi);
	while (c->socks)
		sock_free(c, c->socks);
	if (c->timer)
		event_free(c->timer);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->proxy_http);
	free(c->proxy_https);
	free(c->no_proxy);
	free(c->user_agent);
	free(c);
}

size_t http_client_inflight(const struct http_client *c)
{
	return c ? c->inflight : 0;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct req *r = userdata;
	size_t n = size * nmemb;
	size_t max = r->c->max_resp;
	if (r->resp_len < max) {
		size_t take = n < max - r->resp_len ? n : max - r->resp_len;
		memcpy(r->resp + r->resp_len, ptr, take);
		r->resp_len += take;
		r->resp[r->resp_len] = 0;
	}
	r->resp_total += n;
	if (r->resp_total > max * HARD_BODY_FACTOR) {
		r->body_capped = 1;
		return 0; /* abort: the status is all we need */
	}
	return n;
}

/* Retry-After: delta-seconds or an HTTP-date (RFC 9110 10.2.3). */
static double parse_retry_after(const char *v, size_t n)
{
	char tmp[128];
	while (n && isspace((unsigned char)*v))
		v++, n--;
	while (n && isspace((unsigned char)v[n - 1]))
		n--;
	if (n == 0 || n >= sizeof(tmp))
		return -1;
	memcpy(tmp, v, n);
	tmp[n] = 0;
	char *end;
	if (isdigit((unsigned char)tmp[0])) {
		errno = 0;
		double s = strtod(tmp, &end);
		return (*end == 0 && errno == 0 && s >= 0) ? s : -1;
	}
	time_t t = curl_getdate(tmp, NULL);
	if (t < 0)
		return -1;
	double d = difftime(t, time(NULL));
	return d > 0 ? d : 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userdata)
{
	struct req *r = userdata;
	size_t n = size * nitems;
	static const char key[] = "retry-after:";
	if (n >= 5 && strncmp(buf, "HTTP/", 5) == 0)
		r->retry_after = -1; /* a new response (after 1xx) */
	else if (n > sizeof(key) - 1 && strncasecmp(buf, key, sizeof(key) - 1) == 0)
		r->retry_after = parse_retry_after(buf + sizeof(key) - 1, n - (sizeof(key) - 1));
	return n;
}

static void setup_tls_proxy(struct http_client *c, CURL *e, const char *url)
{
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, c->skip_ssl_validation ? 0L : 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, c->skip_ssl_validation ? 0L : 2L);
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->cert_file && c->key_file) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	}
	const char *proxy = strncasecmp(url, "https:", 6) == 0 ? c->proxy_https : c->proxy_http;
	/* "" disables curl's own reading of http_proxy & co: only our config counts */
	curl_easy_setopt(e, CURLOPT_PROXY, proxy ? proxy : "");
	if (c->no_proxy)
		curl_easy_setopt(e, CURLOPT_NOPROXY, c->no_proxy);
}

static int setup_easy(struct http_client *c, struct req *r, const struct http_request *q)
{
	CURL *e = r->easy;
	const char *m = q->method ? q->method : "POST";
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, r);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	curl_easy_setopt(e, CURLOPT_USERAGENT, c->user_agent);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : (long)DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : (long)DEFAULT_TIMEOUT_MS);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	setup_tls_proxy(c, e, r->url);
	if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
		if (strcmp(m, "POST") != 0)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	}
	for (size_t i = 0; i < q->nheaders; i++) {
		struct curl_slist *h = curl_slist_append(r->hdrs, q->headers[i]);
		if (!h)
			return -ENOMEM;
		r->hdrs = h;
	}
	/* no "Expect: 100-continue" round trip */
	struct curl_slist *h = curl_slist_append(r->hdrs, "Expect:");
	if (!h)
		return -ENOMEM;
	r->hdrs = h;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	return 0;
}

int http_client_send(struct http_client *c, const struct http_request *q, http_done_fn done, void *arg)
{
	if (!c || !q || !q->url)
		return -EINVAL;
	struct req *r = calloc(1, sizeof(*r));
	if (!r)
		return -ENOMEM;
	r->c = c;
	r->done = done;
	r->arg = arg;
	r->retry_after = -1;
	r->url = strdup(q->url);
	r->body = malloc(q->body_len ? q->body_len : 1);
	r->resp = malloc(c->max_resp + 1);
	r->easy = curl_easy_init();
	if (!r->url || !r->body || !r->resp || !r->easy) {
		req_free(r);
		return -ENOMEM;
	}
	r->resp[0] = 0;
	if (q->body_len)
		memcpy(r->body, q->body, q->body_len);
	int rc = setup_easy(c, r, q);
	if (rc < 0) {
		req_free(r);
		return rc;
	}
	if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
		req_free(r);
		return -ENOMEM;
	}
	r->next = c->reqs;
	if (c->reqs)
		c->reqs->prev = r;
	c->reqs = r;
	c->inflight++;
	return 0;
}

static void finish(struct http_client *c, struct req *r, CURLcode code)
{
	struct http_response resp = { .retry_after_s = r->retry_after };
	long status = 0;
	double t = 0;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &t);
	if (code == CURLE_OK || (r->body_capped && status > 0)) {
		resp.status = status;
	} else {
		resp.transport_error = (int)code;
		resp.error = r->errbuf[0] ? r->errbuf : curl_easy_strerror(code);
	}
	resp.body = r->resp;
	resp.body_len = r->resp_len;
	resp.elapsed_s = t;
	req_unlink(c, r);
	curl_multi_remove_handle(c->multi, r->easy);
	if (r->done)
		r->done(r->arg, &resp);
	req_free(r);
}

static void check_done(struct http_client *c)
{
	CURLMsg *msg;
	int left;
	while ((msg = curl_multi_info_read(c->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		char *priv = NULL;
		CURLcode code = msg->data.result;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		struct req *r = (struct req *)(void *)priv;
		if (r)
			finish(c, r, code);
	}
}
