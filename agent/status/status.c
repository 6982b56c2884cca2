/*
 * status.c - the status HTTP server and the `status` command line client.
 * Rendering lives in render.c.
 *
 * A small HTTP/1.x server on an evconnlistener, so that the endpoint cannot
 * take the agent down with it: one GET per connection (answered with
 * Connection: close), at most STATUS_MAX_CONNS connections at a time (then
 * accepting stops until one ends: more clients wait in the kernel's
 * backlog), STATUS_DEADLINE_S for the whole request
 * and its answer (not per byte), a request head of at most
 * STATUS_MAX_HEAD bytes, and when accept fails for lack of descriptors or
 * memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) accepting pauses for
 * STATUS_PAUSE_S instead of spinning. Reaching the cap and accept errors are
 * each logged at most once per STATUS_LOG_EVERY_S, with how often they
 * happened meanwhile.
 */
#include "status/status.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"

#define STATUS_LOG_EVERY_S 10.0
#define STR_(x) #x
#define STR(x) STR_(x)

/* One kind of trouble, logged once per interval. */
struct every {
	double last;
	unsigned long seen;	/* since the last line */
};

struct conn {
	struct status *s;
	struct bufferevent *bev;
	struct event *deadline;
	bool answered;
	struct conn *prev, *next;
};

struct status {
	struct event_base *base;
	struct evconnlistener *lev;
	struct event *resume;
	status_snapshot_fn fn;
	void *ctx;
	int port;
	unsigned nconns;
	struct conn *conns;
	bool paused;
	struct every at_cap, accept_err;
};

/* True (and resets the count, returned in *seen) when e may log now. */
static bool log_due(struct every *e, unsigned long *seen)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	double now = (double)ts.tv_sec + ts.tv_nsec / 1e9;
	e->seen++;
	if (e->last > 0 && now - e->last < STATUS_LOG_EVERY_S)
		return false;
	e->last = now;
	*seen = e->seen;
	e->seen = 0;
	return true;
}

static void conn_free(struct conn *c)
{
	struct status *s = c->s;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->nconns--;
	bufferevent_free(c->bev);
	event_free(c->deadline);
	free(c);
	if (s->nconns == STATUS_MAX_CONNS - 1 && !s->paused)
		evconnlistener_enable(s->lev);
}

static void reply(struct conn *c, int code, const char *reason, const char *type, const struct buf *body)
{
	struct evbuffer *out = bufferevent_get_output(c->bev);
	size_t len = body && body->p ? body->len : 0;
	evbuffer_add_printf(out,
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
			    "Connection: close\r\n\r\n",
			    code, reason, type, len, code == 405 ? "Allow: GET\r\n" : "");
	if (len)
		evbuffer_add(out, body->p, len);
	c->answered = true;
}

static void reply_error(struct conn *c, int code, const char *reason)
{
	struct buf body;
	buf_init(&body);
	buf_puts(&body, reason);
	buf_puts(&body, "\n");
	reply(c, code, reason, "text/plain", &body);
	buf_done(&body);
}

/* GET path[?query]: /health, /status[?format=text], /metrics. */
static void route(struct conn *c, const char *target)
{
	struct status *s = c->s;
	struct buf body;
	size_t plen = strcspn(target, "?#");
	const char *query = target[plen] == '?' ? target + plen + 1 : "";
	buf_init(&body);
	if (plen == 7 && !strncmp(target, "/health", 7)) {
		buf_puts(&body, "ok\n");
		reply(c, 200, "OK", "text/plain", &body);
		buf_done(&body);
		return;
	}
	bool metrics = plen == 8 && !strncmp(target, "/metrics", 8);
	if (!metrics && !(plen == 7 && !strncmp(target, "/status", 7))) {
		reply_error(c, 404, "Not Found");
		return;
	}
	struct status_snapshot *snap = calloc(1, sizeof(*snap));
	if (!snap) {
		reply_error(c, 500, "Internal Server Error");
		return;
	}
	s->fn(s->ctx, snap);
	if (metrics) {
		status_render_prometheus(snap, &body);
		reply(c, 200, "OK", "text/plain; version=0.0.4", &body);
	} else if (strstr(query, "format=text")) {
		status_render_text(snap, &body);
		reply(c, 200, "OK", "text/plain", &body);
	} else {
		status_render_json(snap, &body);
		reply(c, 200, "OK", "application/json", &body);
	}
	free(snap);
	buf_done(&body);
}

/* Parses the request line once the whole head has arrived. */
static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	if (c->answered) {
		evbuffer_drain(in, evbuffer_get_length(in));
		return;
	}
	struct evbuffer_ptr end = evbuffer_search(in, "\r\n\r\n", 4, NULL);
	if (end.pos < 0)
		end = evbuffer_search(in, "\n\n", 2, NULL);
	if (end.pos < 0) {
		if (evbuffer_get_length(in) > STATUS_MAX_HEAD)
			reply_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	if ((size_t)end.pos > STATUS_MAX_HEAD) {
		reply_error(c, 431, "Request Header Fields Too Large");
		return;
	}
	char line[512];
	size_t n = 0;
	char *l = evbuffer_readln(in, &n, EVBUFFER_EOL_CRLF);
	if (l && n < sizeof(line))
		memcpy(line, l, n + 1);
	free(l);
	char method[16], target[400], version[16];
	if (!l || n >= sizeof(line) ||
	    sscanf(line, "%15s %399s %15s", method, target, version) != 3 || strncmp(version, "HTTP/1.", 7)) {
		reply_error(c, 400, "Bad Request");
		return;
	}
	if (strcmp(method, "GET") != 0)
		reply_error(c, 405, "Method Not Allowed");
	else
		route(c, target);
}

/* Answer written: our side is closed, and what the client still sends is
 * read and discarded until it closes too (or the deadline), so that unread
 * bytes do not turn the close into a reset that loses the answer. */
static void on_write(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	if (c->answered && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	conn_free(arg);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
	log_limited(LOG_LVL_DEBUG, "status: a request took longer than %d s, connection closed",
		    STATUS_DEADLINE_S);
	conn_free(arg);
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa, int salen,
		      void *arg)
{
	struct status *s = arg;
	if (s->nconns >= STATUS_MAX_CONNS) { /* not reached: accepting stops at the cap */
		evutil_closesocket(fd);
		return;
	}
	struct conn *c = calloc(1, sizeof(*c));
	struct bufferevent *bev = c ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
	struct event *dl = bev ? evtimer_new(s->base, on_deadline, c) : NULL;
	struct timeval tv = { STATUS_DEADLINE_S, 0 };
	if (!dl) {
		if (bev)
			bufferevent_free(bev);
		else
			evutil_closesocket(fd);
		free(c);
		log_limited(LOG_LVL_WARN, "status: out of memory, connection closed");
		return;
	}
	c->s = s;
	c->bev = bev;
	c->deadline = dl;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	bufferevent_setwatermark(bev, EV_READ, 0, STATUS_MAX_HEAD + 1);
	bufferevent_setcb(bev, on_read, on_write, on_event, c);
	bufferevent_enable(bev, EV_READ | EV_WRITE);
	evtimer_add(dl, &tv);
	unsigned long seen;
	if (s->nconns == STATUS_MAX_CONNS) {
		if (log_due(&s->at_cap, &seen))
			log_warn("status: %u connections open (the cap), new ones wait (reached %lu time%s "
				 "in %.0f s)", s->nconns, seen, seen == 1 ? "" : "s", STATUS_LOG_EVERY_S);
		evconnlistener_disable(lev);
	}
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
	struct status *s = arg;
	s->paused = false;
	if (s->nconns < STATUS_MAX_CONNS)
		evconnlistener_enable(s->lev);
}

/* accept() failed: out of descriptors or memory pauses accepting (the
 * pending connection would make the listener readable again at once). */
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
	struct status *s = arg;
	int err = EVUTIL_SOCKET_ERROR();
	bool pause = err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
	unsigned long seen;
	if (log_due(&s->accept_err, &seen))
		log_warn("status: accept: %s%s (%lu accept error%s in %.0f s)", strerror(err),
			 pause ? "; accepting pauses " STR(STATUS_PAUSE_S) " s each time" : "", seen,
			 seen == 1 ? "" : "s", STATUS_LOG_EVERY_S);
	if (pause) {
		struct timeval tv = { STATUS_PAUSE_S, 0 };
		evconnlistener_disable(lev);
		s->paused = true;
		evtimer_add(s->resume, &tv);
	}
}

static struct evconnlistener *listen_on(struct status *s, const struct status_config *cfg, char *err,
					size_t errlen)
{
	char port[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE }, *res = NULL;
	snprintf(port, sizeof(port), "%d", cfg->port);
	int rc = getaddrinfo(cfg->host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "status endpoint: cannot listen on %s:%d: %s", cfg->host, cfg->port,
			 gai_strerror(rc));
		return NULL;
	}
	struct evconnlistener *lev = NULL;
	int e = 0;
	for (struct addrinfo *ai = res; ai && !lev; ai = ai->ai_next) {
		lev = evconnlistener_new_bind(s->base, on_accept, s,
					      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC,
					      128, ai->ai_addr, (int)ai->ai_addrlen);
		if (!lev)
			e = errno;
	}
	freeaddrinfo(res);
	if (!lev)
		snprintf(err, errlen, "status endpoint: cannot listen on %s:%d: %s", cfg->host, cfg->port,
			 strerror(e));
	return lev;
}

struct status *status_new(struct event_base *base, const struct status_config *cfg,
			  status_snapshot_fn fn, void *ctx, char *err, size_t errlen)
{
	struct status *s = calloc(1, sizeof(*s));
	if (!s || !(s->resume = evtimer_new(base, on_resume, s))) {
		free(s);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->base = base;
	s->fn = fn;
	s->ctx = ctx;
	s->lev = listen_on(s, cfg, err, errlen);
	if (!s->lev) {
		event_free(s->resume);
		free(s);
		return NULL;
	}
	evconnlistener_set_error_cb(s->lev, on_accept_error);
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = evconnlistener_get_fd(s->lev);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
		if (ss.ss_family == AF_INET)
			s->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
		else if (ss.ss_family == AF_INET6)
			s->port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return s;
}

void status_free(struct status *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_free(s->conns);
	evconnlistener_free(s->lev);
	event_free(s->resume);
	free(s);
}

int status_port(const struct status *s)
{
	return s ? s->port : 0;
}

int status_cli(const char *host, int port, const char *path)
{
	char portstr[16];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res = NULL;
	snprintf(portstr, sizeof(portstr), "%d", port);
	int rc = getaddrinfo(host, portstr, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "dd-mini-agent status: %s: %s\n", host, gai_strerror(rc));
		return 1;
	}
	int fd = -1;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, 0);
		if (fd < 0)
			continue;
		struct timeval tv = { 5, 0 };
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		fprintf(stderr,
			"dd-mini-agent status: cannot reach the agent at %s:%d (%s); is it running "
			"with status_port set?\n",
			host, port, strerror(errno));
		return 1;
	}
	char req[512];
	int n = snprintf(req, sizeof(req), "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n", path, host);
	if (write(fd, req, (size_t)n) != n) {
		close(fd);
		fprintf(stderr, "dd-mini-agent status: write failed\n");
		return 1;
	}
	struct buf resp;
	buf_init(&resp);
	char tmp[4096];
	ssize_t r;
	while ((r = read(fd, tmp, sizeof(tmp))) > 0 && resp.len < (16u << 20))
		buf_append(&resp, tmp, (size_t)r);
	close(fd);
	const char *body = resp.p ? strstr(resp.p, "\r\n\r\n") : NULL;
	if (!body || strncmp(resp.p, "HTTP/1.", 7) != 0 || strncmp(resp.p + 9, "200", 3) != 0) {
		fprintf(stderr, "dd-mini-agent status: unexpected answer from %s:%d\n", host, port);
		buf_done(&resp);
		return 1;
	}
	fputs(body + 4, stdout);
	buf_done(&resp);
	return 0;
}
