/*
 * net.c - DogStatsD listeners: lifecycle and the recvmmsg receive loop.
 * See net.h for the contract; sockets are opened by net_sock.c.
 *
 * Called by agent.c (one net per receive pipeline). Owns its sockets, their
 * libevent events, the UDS path it created and one set of receive buffers
 * (recv_batch x (buffer_size + 1) bytes, shared by its sockets since all run
 * on one thread). Threading: everything on the thread running `base`.
 */
#include "net/net.h"
#include "core/mem.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <linux/sock_diag.h>

#include "core/log.h"
#include "net/net_int.h"

#define MAX_SOCKETS 64	/* bind addresses after resolution; far above any real use */

struct net_sock {
	struct net *net;
	struct event *ev;
	int fd;
	bool is_uds;
	uint32_t drops_seen;	/* the socket's drop counter when last read */
	uint64_t drops;		/* its drops so far, summed over wraps */
	struct sockaddr_storage addr;	/* UDP: bound address (for de-duplication) */
	socklen_t addrlen;
};

struct net {
	struct event_base *base;
	net_batch_fn fn;
	void *ctx;
	struct net_sock socks[MAX_SOCKETS];
	unsigned nsocks;
	char *uds_path;		/* set when we created the socket file */
	dev_t uds_dev;
	ino_t uds_ino;
	unsigned batch;
	size_t bufsize;
	char *bufs;		/* batch x (bufsize + 1) */
	struct iovec *iov;
	struct mmsghdr *msgs;
	struct net_dgram *dg;	/* the batch handed to fn */
	bool paused;
	/* Wake-up coalescing (net_int.h): the current rate window's start
	 * (CLOCK_MONOTONIC ns) and datagrams, and whether the last window's
	 * traffic was dense. */
	int64_t win_start;
	uint64_t win_dgrams;
	bool coalesce;
	struct net_stats st;
	int udp_port;
};

/* ---- receive ---- */

static void deliver(struct net *n, struct net_sock *s, unsigned got)
{
	for (unsigned i = 0; i < got; i++) {
		struct msghdr *h = &n->msgs[i].msg_hdr;
		size_t len = n->msgs[i].msg_len;
		char *b = h->msg_iov->iov_base;
		bool trunc = (h->msg_flags & MSG_TRUNC) != 0;

		if (len > n->bufsize)
			len = n->bufsize;
		b[len] = '\0';
		if (s->is_uds) {
			n->st.uds_packets++;
			n->st.uds_bytes += len;
		} else {
			n->st.udp_packets++;
			n->st.udp_bytes += len;
		}
		if (trunc)
			n->st.truncated++;
		n->dg[i] = (struct net_dgram){ b, len, trunc };
	}
	if (got)
		n->fn(n->ctx, n->dg, got);
}

/* Reads up to max_batches recvmmsg batches. Returns datagrams read. */
static size_t read_socket(struct net *n, struct net_sock *s, unsigned max_batches)
{
	bool was_paused = n->paused;
	size_t total = 0;

	for (unsigned i = 0; i < max_batches; i++) {
		int got = recvmmsg(s->fd, n->msgs, n->batch, MSG_DONTWAIT, NULL);

		if (got < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				n->st.recv_errors++;
				log_limited(LOG_LVL_WARN, "net: recvmmsg: %s", strerror(errno));
			}
			break;
		}
		deliver(n, s, (unsigned)got);
		total += (unsigned)got;
		/* A short batch means the queue is empty (or was, a moment ago);
		 * a callback may have paused us. */
		if ((unsigned)got < n->batch || n->paused != was_paused)
			break;
	}
	return total;
}

static int64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void on_readable(evutil_socket_t fd, short what, void *arg)
{
	struct net_sock *s = arg;
	struct net *n = s->net;
	size_t got = read_socket(n, s, NET_MAX_BATCHES_PER_WAKE);

	(void)fd;
	(void)what;
	if (!got)
		return;
	int64_t now = mono_ns();
	n->win_dgrams += got;
	if (now - n->win_start >= NET_RATE_WINDOW_NS) {
		n->coalesce = net_coalesce_pays(n->win_dgrams, now - n->win_start);
		n->win_start = now;
		n->win_dgrams = 0;
	}
	if (n->coalesce && got < n->batch && !n->paused) {
		struct timespec ts = { 0, NET_COALESCE_NS };

		nanosleep(&ts, NULL);
	}
}

size_t net_drain(struct net *n, unsigned max_batches)
{
	size_t total = 0;

	if (!n)
		return 0;
	for (unsigned i = 0; i < n->nsocks; i++)
		total += read_socket(n, &n->socks[i], max_batches);
	return total;
}

/* ---- lifecycle ---- */

static int alloc_buffers(struct net *n, const struct net_config *cfg)
{
	n->batch = cfg->recv_batch ? cfg->recv_batch : NET_RECV_BATCH_DEFAULT;
	if (n->batch > NET_RECV_BATCH_MAX)
		n->batch = NET_RECV_BATCH_MAX;
	n->bufsize = cfg->buffer_size ? cfg->buffer_size : NET_BUFFER_SIZE_DEFAULT;
	if (n->bufsize < NET_BUFFER_SIZE_MIN)
		n->bufsize = NET_BUFFER_SIZE_MIN;
	if (n->bufsize > NET_BUFFER_SIZE_MAX)
		n->bufsize = NET_BUFFER_SIZE_MAX;
	n->bufs = malloc(n->batch * (n->bufsize + 1));
	n->iov = calloc(n->batch, sizeof(*n->iov));
	n->msgs = calloc(n->batch, sizeof(*n->msgs));
	n->dg = calloc(n->batch, sizeof(*n->dg));
	if (!n->bufs || !n->iov || !n->msgs || !n->dg)
		return -ENOMEM;
	/* the kernel writes these on the first burst: faulted in now (mem.h) */
	mem_prefault(n->bufs, n->batch * (n->bufsize + 1));
	for (unsigned i = 0; i < n->batch; i++) {
		struct msghdr *h = &n->msgs[i].msg_hdr;

		n->iov[i].iov_base = n->bufs + i * (n->bufsize + 1);
		n->iov[i].iov_len = n->bufsize;
		h->msg_iov = &n->iov[i];
		h->msg_iovlen = 1;
	}
	return 0;
}

static int add_sock(struct net *n, int fd, bool is_uds, char *err, size_t errlen)
{
	struct net_sock *s = &n->socks[n->nsocks];

	s->net = n;
	s->fd = fd;
	s->is_uds = is_uds;
	s->drops_seen = 0;
	s->drops = 0;
	s->ev = event_new(n->base, fd, EV_READ | EV_PERSIST, on_readable, s);
	if (!s->ev || event_add(s->ev, NULL) != 0) {
		snprintf(err, errlen, "net: cannot register socket on the event loop");
		if (s->ev)
			event_free(s->ev);
		close(fd);
		return -ENOMEM;
	}
	n->nsocks++;
	return 0;
}

static bool already_bound(const struct net *n, const struct addrinfo *ai)
{
	for (unsigned i = 0; i < n->nsocks; i++) {
		const struct net_sock *s = &n->socks[i];

		if (!s->is_uds && s->addrlen == ai->ai_addrlen &&
		    memcmp(&s->addr, ai->ai_addr, ai->ai_addrlen) == 0)
			return true;
	}
	return false;
}

/* An IPv6 address this host cannot provide (IPv6 disabled): skippable. */
static bool ipv6_unavailable(const struct addrinfo *ai, int rc)
{
	const struct sockaddr_in6 *a6 = (const struct sockaddr_in6 *)ai->ai_addr;

	if (ai->ai_family != AF_INET6)
		return false;
	if (rc == -EAFNOSUPPORT)
		return true;
	return rc == -EADDRNOTAVAIL &&
	       (IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr) || IN6_IS_ADDR_UNSPECIFIED(&a6->sin6_addr));
}

/* Opens every address host resolves to. *skipped counts IPv6 addresses left
 * out because the host has no IPv6. 0 or -errno. */
static int open_host(struct net *n, const char *host, const struct net_config *cfg,
		     unsigned *skipped, char *err, size_t errlen)
{
	struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_DGRAM,
				  .ai_protocol = IPPROTO_UDP,
				  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
	struct addrinfo *res, *ai;
	char port[16];
	int rc;

	snprintf(port, sizeof(port), "%d", cfg->port);
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		snprintf(err, errlen, "bind udp %s:%d: cannot resolve: %s", host, cfg->port,
			 gai_strerror(rc));
		return -EINVAL;
	}
	for (ai = res, rc = 0; ai && rc == 0; ai = ai->ai_next) {
		int fd;

		if (already_bound(n, ai) || ai->ai_addrlen > sizeof(struct sockaddr_storage))
			continue;
		if (n->nsocks == MAX_SOCKETS) {
			snprintf(err, errlen, "bind udp %s: more than %d addresses", host,
				 MAX_SOCKETS);
			rc = -E2BIG;
			break;
		}
		fd = net_open_udp(ai->ai_addr, ai->ai_addrlen, cfg->so_rcvbuf, err, errlen);
		if (fd < 0 && ipv6_unavailable(ai, fd)) {
			log_warn("net: %s; skipping it (IPv6 unavailable)", err);
			(*skipped)++;
			continue;
		}
		if (fd < 0) {
			rc = fd;
			break;
		}
		memcpy(&n->socks[n->nsocks].addr, ai->ai_addr, ai->ai_addrlen);
		n->socks[n->nsocks].addrlen = ai->ai_addrlen;
		rc = add_sock(n, fd, false, err, errlen);
	}
	freeaddrinfo(res);
	return rc;
}

static int open_udp_all(struct net *n, const struct net_config *cfg, char *err,
			size_t errlen)
{
	static const char *const any[] = { "0.0.0.0", "::" };
	static const char *const local[] = { "127.0.0.1", "::1" };
	const char *const *hosts = (const char *const *)cfg->bind_hosts;
	size_t nhosts = cfg->nbind_hosts;
	unsigned skipped = 0;
	int rc;

	if (cfg->port < 0 || cfg->port > 65535) {
		snprintf(err, errlen, "dogstatsd_port %d out of range 0..65535", cfg->port);
		return -EINVAL;
	}
	if (cfg->non_local) {
		hosts = any;
		nhosts = 2;
	} else if (nhosts == 0) {
		hosts = local;
		nhosts = 2;
	}
	for (size_t i = 0; i < nhosts; i++)
		if ((rc = open_host(n, hosts[i], cfg, &skipped, err, errlen)) < 0)
			return rc;
	if (n->nsocks == 0) {
		if (skipped == 0)
			snprintf(err, errlen, "bind udp: no address to bind");
		return -EADDRNOTAVAIL;
	}
	return 0;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
		return 0;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

static int open_uds(struct net *n, const struct net_config *cfg, char *err, size_t errlen)
{
	int fd;

	if (n->nsocks == MAX_SOCKETS) {
		snprintf(err, errlen, "uds %s: too many sockets", cfg->socket_path);
		return -E2BIG;
	}
	fd = net_open_uds(cfg->socket_path, cfg->socket_mode & 07777, cfg->so_rcvbuf,
			  &n->uds_dev, &n->uds_ino, err, errlen);
	if (fd < 0)
		return fd;
	n->uds_path = strdup(cfg->socket_path);
	if (!n->uds_path) {
		unlink(cfg->socket_path);
		close(fd);
		snprintf(err, errlen, "uds %s: out of memory", cfg->socket_path);
		return -ENOMEM;
	}
	return add_sock(n, fd, true, err, errlen);
}

struct net *net_new(struct event_base *base, const struct net_config *cfg,
		    net_batch_fn fn, void *ctx, char *err, size_t errlen)
{
	struct net *n = calloc(1, sizeof(*n));

	if (!n) {
		snprintf(err, errlen, "net: out of memory");
		return NULL;
	}
	n->base = base;
	n->fn = fn;
	n->ctx = ctx;
	if (alloc_buffers(n, cfg) < 0) {
		snprintf(err, errlen, "net: out of memory for %u x %zu byte buffers",
			 n->batch, n->bufsize);
		goto fail;
	}
	if (cfg->port != 0 && open_udp_all(n, cfg, err, errlen) < 0)
		goto fail;
	if (n->nsocks > 0)
		n->udp_port = bound_port(n->socks[0].fd);
	if (cfg->socket_path && cfg->socket_path[0] && open_uds(n, cfg, err, errlen) < 0)
		goto fail;
	n->st.sockets = n->nsocks;
	return n;
fail:
	net_free(n);
	return NULL;
}

static void unlink_ours(struct net *n)
{
	struct stat st;

	/* Only if the file is still the socket we created (not a successor's). */
	if (stat(n->uds_path, &st) == 0 && st.st_dev == n->uds_dev &&
	    st.st_ino == n->uds_ino)
		unlink(n->uds_path);
}

void net_free(struct net *n)
{
	if (!n)
		return;
	for (unsigned i = 0; i < n->nsocks; i++) {
		event_free(n->socks[i].ev);
		close(n->socks[i].fd);
	}
	if (n->uds_path) {
		unlink_ours(n);
		free(n->uds_path);
	}
	free(n->bufs);
	free(n->iov);
	free(n->msgs);
	free(n->dg);
	free(n);
}

void net_pause(struct net *n)
{
	if (!n || n->paused)
		return;
	for (unsigned i = 0; i < n->nsocks; i++)
		event_del(n->socks[i].ev);
	n->paused = true;
}

int net_resume(struct net *n)
{
	if (!n || !n->paused)
		return 0;
	for (unsigned i = 0; i < n->nsocks; i++)
		if (event_add(n->socks[i].ev, NULL) != 0)
			return -ENOMEM;
	n->paused = false;
	return 0;
}

/* The kernel's drop counter of s (SO_MEMINFO): every datagram it could not
 * queue on this socket since the socket was created, a cumulative u32 (a new
 * socket starts at 0). */
static uint32_t socket_drops(const struct net_sock *s)
{
	uint32_t mi[SK_MEMINFO_VARS];
	socklen_t len = sizeof(mi);

	if (getsockopt(s->fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0 ||
	    len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
		return 0;
	return mi[SK_MEMINFO_DROPS];
}

void net_get_stats(struct net *n, struct net_stats *out)
{
	if (!n) {
		memset(out, 0, sizeof(*out));
		return;
	}
	*out = n->st;
	for (unsigned i = 0; i < n->nsocks; i++) {
		struct net_sock *s = &n->socks[i];
		uint32_t v = socket_drops(s);

		/* the (wrapping) difference: exact while read at least once
		 * per 2^32 drops (the pipeline publishes every 100 ms) */
		s->drops += (uint32_t)(v - s->drops_seen);
		s->drops_seen = v;
		out->kernel_drops += s->drops;
	}
}

int net_udp_port(const struct net *n)
{
	return n ? n->udp_port : 0;
}
