/*
 * status.c - the evhttp server and the `status` command line client.
 * Rendering lives in render.c.
 */
#include "status/status.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

struct status {
	struct evhttp *http;
	struct evhttp_bound_socket *sock;
	status_snapshot_fn fn;
	void *ctx;
	int port;
};

static void reply(struct evhttp_request *req, int code, const char *type, struct buf *body)
{
	struct evbuffer *out = evbuffer_new();
	if (!out) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	evbuffer_add(out, body->p ? body->p : "", body->len);
	evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", type);
	evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", out);
	evbuffer_free(out);
}

static bool wants_text(struct evhttp_request *req)
{
	const char *q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
	return q && strstr(q, "format=text");
}

static void handle(struct evhttp_request *req, void *arg)
{
	struct status *s = arg;
	const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
	struct buf body;
	buf_init(&body);
	if (!path)
		path = "/";
	if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
		evhttp_send_error(req, 405, "Method Not Allowed");
		return;
	}
	if (strcmp(path, "/health") == 0) {
		buf_puts(&body, "ok\n");
		reply(req, 200, "text/plain", &body);
		buf_done(&body);
		return;
	}
	if (strcmp(path, "/status") != 0 && strcmp(path, "/metrics") != 0) {
		evhttp_send_error(req, 404, "Not Found");
		return;
	}
	struct status_snapshot *snap = calloc(1, sizeof(*snap));
	if (!snap) {
		evhttp_send_error(req, 500, NULL);
		return;
	}
	s->fn(s->ctx, snap);
	if (strcmp(path, "/metrics") == 0) {
		status_render_prometheus(snap, &body);
		reply(req, 200, "text/plain; version=0.0.4", &body);
	} else if (wants_text(req)) {
		status_render_text(snap, &body);
		reply(req, 200, "text/plain", &body);
	} else {
		status_render_json(snap, &body);
		reply(req, 200, "application/json", &body);
	}
	free(snap);
	buf_done(&body);
}

struct status *status_new(struct event_base *base, const struct status_config *cfg,
			  status_snapshot_fn fn, void *ctx, char *err, size_t errlen)
{
	struct status *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fn = fn;
	s->ctx = ctx;
	s->http = evhttp_new(base);
	if (!s->http) {
		snprintf(err, errlen, "evhttp_new failed");
		free(s);
		return NULL;
	}
	evhttp_set_allowed_methods(s->http, EVHTTP_REQ_GET);
	evhttp_set_max_headers_size(s->http, 8192);
	evhttp_set_max_body_size(s->http, 1024);
	evhttp_set_timeout(s->http, 10);
	evhttp_set_gencb(s->http, handle, s);
	s->sock = evhttp_bind_socket_with_handle(s->http, cfg->host, (uint16_t)cfg->port);
	if (!s->sock) {
		snprintf(err, errlen, "status endpoint: cannot listen on %s:%d: %s", cfg->host,
			 cfg->port, strerror(errno));
		evhttp_free(s->http);
		free(s);
		return NULL;
	}
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	evutil_socket_t fd = evhttp_bound_socket_get_fd(s->sock);
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
	evhttp_free(s->http);
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
