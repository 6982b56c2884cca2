/*
 * net_int.h - private to agent/net: socket opening helpers shared by net.c
 * (lifecycle, receive loop) and net_sock.c (socket(), setsockopt, bind).
 *
 * Helpers return a file descriptor (>= 0) or a negative errno and write a
 * message naming the address into err. They log only warnings that do not
 * fail the call (e.g. a receive buffer smaller than requested).
 *
 * Threading: called from net_new on the loop thread.
 */
#ifndef DDMA_NET_NET_INT_H
#define DDMA_NET_NET_INT_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/* Formats "127.0.0.1:8125" or "[::1]:8125" into out. */
void net_format_addr(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen);

/* Opens a non-blocking UDP socket bound to sa with SO_REUSEPORT, IPV6_V6ONLY
 * (IPv6) and the receive buffer. fd or -errno. */
int net_open_udp(const struct sockaddr *sa, socklen_t salen, int rcvbuf,
		 char *err, size_t errlen);

/* Opens a non-blocking Unix datagram socket bound to path (replacing a stale
 * socket file), chmod'ed to mode; sets *dev and *ino of the created file.
 * fd or -errno. */
int net_open_uds(const char *path, unsigned mode, int rcvbuf, dev_t *dev, ino_t *ino,
		 char *err, size_t errlen);

#endif
