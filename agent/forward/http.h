/*
 * http.h - asynchronous HTTP client: libcurl's multi interface driven by the
 * agent's libevent loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION).
 * Sending never blocks the loop; connections are reused. Used by the
 * forwarder and by the notifiers. The only code (with forward/) that
 * includes curl.
 *
 * Threading: loop thread only.
 */
#ifndef DDMA_FORWARD_HTTP_H
#define DDMA_FORWARD_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;

struct http_client_config {
	const char *ca_file;		/* NULL/"" = system store */
	const char *cert_file;		/* client certificate and key (PEM); NULL = none */
	const char *key_file;
	bool skip_ssl_validation;	/* default false: verify peer and host */
	const char *proxy_http;		/* NULL = none / curl's environment handling off */
	const char *proxy_https;
	const char *no_proxy;
	size_t max_response_bytes;	/* body bytes kept; more are read and discarded; default 64 KiB */
	const char *user_agent;		/* default "dd-mini-agent/<version>" */
};

struct http_request {
	const char *method;		/* "POST" (default), "GET", "PUT" */
	const char *url;
	const char *const *headers;	/* "Name: value" lines */
	size_t nheaders;
	const void *body;
	size_t body_len;
	long timeout_ms;		/* whole transfer; 0 = 20 s */
};

struct http_response {
	long status;			/* HTTP status, 0 on a transport error */
	int transport_error;		/* curl code, 0 when a response was received */
	const char *error;		/* human text for a transport error */
	double retry_after_s;		/* Retry-After in seconds, -1 when absent */
	const char *body;		/* first max_response_bytes of the body, NUL-terminated */
	size_t body_len;
	double elapsed_s;
};

/* Called once per request, on the loop thread. resp and its strings are valid
 * only during the call. */
typedef void (*http_done_fn)(void *arg, const struct http_response *resp);

struct http_client *http_client_new(struct event_base *base, const struct http_client_config *cfg);
void http_client_free(struct http_client *c); /* cancels in-flight requests (done is not called) */

/* Copies the request (url, headers, body) and starts it. 0 or -errno. */
int http_client_send(struct http_client *c, const struct http_request *req, http_done_fn done, void *arg);
size_t http_client_inflight(const struct http_client *c);

#endif
