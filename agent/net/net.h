/*
 * net.h - DogStatsD listeners: UDP (v4/v6) and a Unix datagram socket.
 *
 * Reads with recvmmsg in batches into buffers of dogstatsd_buffer_size bytes,
 * detects truncated datagrams (MSG_TRUNC), reads the kernel's per-socket drop
 * counter (SO_MEMINFO) and hands each recvmmsg batch of datagrams to a
 * callback. Registers its sockets on the given libevent base. Logs bind
 * errors (an edge module).
 *
 * Sockets: one UDP socket per bind address (bind_host entries are resolved
 * with getaddrinfo and de-duplicated; non_local binds 0.0.0.0 and :: instead,
 * the IPv6 one with IPV6_V6ONLY), each with SO_REUSEPORT so that N pipelines
 * can each call net_new on the same port; one Unix datagram socket when
 * socket_path is set. A stale socket file at socket_path is removed only if it
 * is a socket nobody listens on; anything else at that path is an error. The
 * socket file gets socket_mode (chmod after bind) and is unlinked by net_free
 * if it is still the one this net created. An IPv6 address that the host
 * cannot provide (EAFNOSUPPORT, or EADDRNOTAVAIL for ::1 / ::) is skipped with
 * a warning when another UDP socket could be opened; every other bind error
 * fails net_new.
 *
 * Receive: recv_batch datagrams per recvmmsg into buffers allocated once
 * (recv_batch x buffer_size bytes), at most NET_MAX_BATCHES_PER_WAKE calls per
 * readiness event so one busy socket cannot starve the loop (libevent is
 * level-triggered: the rest is read on the next iteration).
 *
 * Kernel drops: net_get_stats reads each socket's cumulative drop counter
 * (SO_MEMINFO), so the figure is exact at the time it is read (the pipeline
 * publishes every 100 ms, far more often than the u32 counter can wrap). Not
 * from the SO_RXQ_OVFL control message: with it the kernel runs its cmsg
 * code for every datagram, and once the socket has dropped, writes a cmsg
 * for every datagram, for a number nobody needs per datagram.
 *
 * recvmmsg writes each message's msg_len and msg_flags, and nothing else of
 * the headers set up once in net_new changes (no control messages), so
 * nothing is reset between batches.
 *
 * Ownership: a net owns its sockets, events and buffers; cfg is only read
 * during net_new. Threading: all callbacks on the loop thread that owns
 * `base`; one net per thread.
 */
#ifndef DDMA_NET_NET_H
#define DDMA_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/stats.h"

struct event_base;

/* One datagram of a batch. buf is writable and valid only during the
 * callback; buf[len] is a NUL byte (the buffers have one spare byte).
 * truncated: the datagram was larger than the buffer, len = bytes received
 * (already counted; the callback should not parse it). */
struct net_dgram {
	char *buf;
	size_t len;
	bool truncated;
};
/* The datagrams of one recvmmsg batch, d[0..n) in arrival order, in one call
 * (a parser can then overlap them). The callback may call net_pause but
 * must not call net_free. */
typedef void (*net_batch_fn)(void *ctx, const struct net_dgram *d, unsigned n);

/* The receive counters (core/stats.h), summed over the sockets. */
#define NET_STATS_FIELDS(X)                                                              \
	X(udp_packets, , .title = "UDP packets", .help = "Datagrams received.",        \
	  .prom = "packets_total", .tele = "dogstatsd.packets", .label = "transport:udp") \
	X(uds_packets, , .title = "UDS packets", .help = "Datagrams received.",        \
	  .prom = "packets_total", .tele = "dogstatsd.packets", .label = "transport:uds") \
	X(udp_bytes, , .title = "UDP bytes", .help = "Bytes received.",                \
	  .prom = "bytes_total", .tele = "dogstatsd.bytes", .label = "transport:udp")    \
	X(uds_bytes, , .title = "UDS bytes", .help = "Bytes received.",                \
	  .prom = "bytes_total", .tele = "dogstatsd.bytes", .label = "transport:uds")    \
	X(truncated, , .title = "Truncated datagrams",                                  \
	  .help = "Datagrams longer than dogstatsd_buffer_size.",                       \
	  .prom = "truncated_datagrams_total", .tele = "dogstatsd.truncated")           \
	X(kernel_drops, ,                                                               \
	  .help = "Datagrams dropped by the kernel (SO_MEMINFO drops of the sockets).", \
	  .prom = "kernel_drops_total", .tele = "dogstatsd.kernel_drops")               \
	X(recv_errors, , .title = "Receive errors", .help = "recvmmsg calls that failed.", \
	  .prom = "recv_errors_total", .tele = "dogstatsd.recv_errors")                 \
	X(sockets, , .type = STAT_GAUGE, .help = "Open listening sockets.")

struct net_stats {
#define X(f, dim, ...) STATS_MEMBER(f, dim)
	NET_STATS_FIELDS(X)
#undef X
};
extern const struct stat_table net_stats_table;

/* recvmmsg calls per socket per readiness callback. */
#define NET_MAX_BATCHES_PER_WAKE 16
/* Bounds applied to cfg->recv_batch and cfg->buffer_size (0 = default). */
#define NET_RECV_BATCH_DEFAULT 64
#define NET_RECV_BATCH_MAX 1024	/* UIO_MAXIOV */
#define NET_BUFFER_SIZE_DEFAULT 8192
#define NET_BUFFER_SIZE_MIN 64
#define NET_BUFFER_SIZE_MAX (1 << 20)

/* The dogstatsd receive side of agent.yaml (config/ fills it in; conf.d/agent.yaml
 * documents each key). */
struct net_config {
	char **bind_hosts;	/* bind_host; default {"127.0.0.1", "::1"} ("localhost") */
	size_t nbind_hosts;
	int port;		/* dogstatsd_port, 8125; 0 = UDP off */
	bool non_local;		/* dogstatsd_non_local_traffic: bind 0.0.0.0 and :: */
	char *socket_path;	/* dogstatsd_socket, "" = off */
	unsigned socket_mode;	/* dogstatsd_socket_mode, octal string "0660" in YAML; default 0660 */
	size_t buffer_size;	/* dogstatsd_buffer_size, 8192 */
	int so_rcvbuf;		/* dogstatsd_so_rcvbuf, 0 = OS default */
	unsigned pipeline_count; /* dogstatsd_pipeline_count, 1 */
	unsigned recv_batch;	/* dogstatsd_recv_batch: datagrams per recvmmsg, 64 */
};
#define NET_CONFIG_DEFAULT ((struct net_config){ .port = 8125, .socket_mode = 0660, \
	.buffer_size = NET_BUFFER_SIZE_DEFAULT, .pipeline_count = 1, .recv_batch = NET_RECV_BATCH_DEFAULT })

/* Opens and binds every configured socket. On error returns NULL and writes a
 * message into err. */
struct net *net_new(struct event_base *base, const struct net_config *cfg,
		    net_batch_fn fn, void *ctx, char *err, size_t errlen);
void net_free(struct net *n); /* closes sockets, unlinks the UDS path it created */
/* Stops reading (shutdown) without closing; net_free still needed. Datagrams
 * keep queueing in the kernel (and are dropped there once the buffer is full).
 * Datagrams already received in the current batch are still delivered. */
void net_pause(struct net *n);
/* Undoes net_pause. 0 or -errno (event_add failure). */
int net_resume(struct net *n);
/* Reads what is queued on every socket now, without waiting, through the
 * callback (e.g. before the final flush at shutdown), at most max_batches
 * recvmmsg calls per socket. Works while paused. Returns datagrams read. */
size_t net_drain(struct net *n, unsigned max_batches);
/* On the loop thread, like the callbacks: it folds the sockets' drop
 * counters into n. */
void net_get_stats(struct net *n, struct net_stats *out);
/* Bound UDP port of the first UDP socket, 0 when none. */
int net_udp_port(const struct net *n);

#endif
