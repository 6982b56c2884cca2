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

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * Wake-up coalescing. A read that empties the socket queue before a full
 * batch sends the thread back to sleep until the next datagram: one sleep
 * and wake-up (several microseconds in a VM, more than parsing a datagram)
 * per few datagrams. When the traffic is dense enough that a sleep of
 * NET_COALESCE_NS gathers at least NET_COALESCE_MIN_DGRAMS datagrams
 * (20,000 datagrams/s: 400k lines/s at 20 lines per datagram, or 20k
 * single-line datagrams/s), the thread sleeps NET_COALESCE_NS (plus the
 * kernel's timer slack) after such a read, so that its next wake-up finds
 * that much traffic queued. The rate is the datagrams read over windows of
 * at least NET_RATE_WINDOW_NS: senders batch their datagrams (a client's
 * flush, loadgen's 1 ms ticks), and a window of several batches keeps the
 * rate steady where a shorter one would see a batch or none. Slower traffic is read as it comes: a sleep
 * there gathers a datagram or two and costs more than the wake-ups it saves.
 * At the fastest sender measured (~8.5M lines/s, 20 lines per datagram)
 * 200 us queue ~90 datagrams, well inside the kernel's default socket
 * buffer; a command to the pipeline waits at most that long.
 */
#define NET_COALESCE_NS 200000
#define NET_COALESCE_MIN_DGRAMS 4
#define NET_RATE_WINDOW_NS 4000000

/* True when dgrams datagrams read over elapsed_ns (> 0) are dense enough
 * for coalescing. */
static inline bool net_coalesce_pays(uint64_t dgrams, int64_t elapsed_ns)
{
	return elapsed_ns > 0 &&
	       dgrams * NET_COALESCE_NS >= (uint64_t)NET_COALESCE_MIN_DGRAMS * (uint64_t)elapsed_ns;
}

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
