/*
 * net.h - DogStatsD listeners: UDP (v4/v6) and a Unix datagram socket.
 *
 * Reads with recvmmsg in batches into buffers of dogstatsd_buffer_size bytes,
 * detects truncated datagrams (MSG_TRUNC), reads the kernel's per-socket drop
 * counter (SO_RXQ_OVFL) and hands each datagram to a callback. Registers its
 * sockets on the given libevent base. Logs bind errors (an edge module).
 *
 * Threading: all callbacks on the loop thread that owns `base`.
 */
#ifndef DDMA_NET_NET_H
#define DDMA_NET_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"

struct event_base;

/* buf is writable and valid only during the call. truncated: the datagram was
 * larger than the buffer (already counted; the callback should not parse it). */
typedef void (*net_datagram_fn)(void *ctx, char *buf, size_t len, bool truncated);

struct net_stats {
	uint64_t udp_packets, udp_bytes;
	uint64_t uds_packets, uds_bytes;
	uint64_t truncated;	/* datagrams longer than dogstatsd_buffer_size */
	uint64_t kernel_drops;	/* SO_RXQ_OVFL, summed over sockets */
	uint64_t recv_errors;
	unsigned sockets;	/* open listening sockets */
};

/* Opens and binds every configured socket. On error returns NULL and writes a
 * message into err. */
struct net *net_new(struct event_base *base, const struct net_config *cfg,
		    net_datagram_fn fn, void *ctx, char *err, size_t errlen);
void net_free(struct net *n); /* closes sockets, unlinks the UDS path it created */
/* Stops reading (shutdown) without closing; net_free still needed. */
void net_pause(struct net *n);
void net_get_stats(const struct net *n, struct net_stats *out);
/* Bound UDP port of the first UDP socket (useful with dogstatsd_port: 0? no:
 * with an ephemeral port for tests), 0 when none. */
int net_udp_port(const struct net *n);

#endif
