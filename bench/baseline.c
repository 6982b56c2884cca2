/*
 * baseline.c - receive-only baseline for the benchmarks (bench/run.sh).
 *
 * Does what the agent's receive path must do at minimum and nothing else:
 * poll, then recvmmsg in batches (--batch datagrams of --buffer-size bytes,
 * the agent's defaults 64 x 8192, at most 16 batches per wakeup, like
 * agent/net) and count lines. Reads the kernel drop counter at exit from
 * SO_MEMINFO, as the agent does when it reports (neither asks for an
 * SO_RXQ_OVFL control message per datagram). On SIGTERM/SIGINT, or after --idle-exit
 * seconds without traffic (once traffic started), it reads what is still
 * queued and prints one key=value line with its counters and its own CPU time.
 *
 * --coalesce-us US (default 0; bench/run.sh passes the agent's 200) batches
 * wake-ups as agent/net does (agent/net/net_int.h): while the datagrams read
 * over windows of at least 4 ms come fast enough that US microseconds gather
 * 4 or more, a read that empties the socket queue is followed by a sleep of
 * US before polling again, so the floor pays for as many wake-ups as the
 * agent and the ratio measures the agent's own work per line.
 *
 * --work-per-line NS (default 0) adds NS nanoseconds of busy work per line
 * received (a clock_gettime spin after each datagram is counted): a receiver
 * that does a known amount of user-mode work, for measuring how a burst's CPU
 * per line responds to work per line (docs/PERFORMANCE.md). The
 * figures bench/run.sh reports as "baseline" are always taken with 0.
 *
 * Prints "listening port=N" on stdout once bound. Standalone: no agent code.
 */
#include <errno.h>
#include <getopt.h>
#include <linux/sock_diag.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_BATCHES_PER_WAKE 16
/* agent/net/net_int.h: NET_COALESCE_MIN_DGRAMS, NET_RATE_WINDOW_NS */
#define COALESCE_MIN_DGRAMS 4
#define COALESCE_WINDOW_S 0.004

struct counters {
	uint64_t lines, datagrams, bytes, truncated;
};

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int open_socket(const char *host, const char *port, const char *path, int rcvbuf)
{
	int fd;

	if (path) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", path);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
			goto fail;
	} else {
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM, .ai_flags = AI_PASSIVE }, *res;
		int rc = getaddrinfo(host, port, &hints, &res);

		if (rc != 0) {
			fprintf(stderr, "baseline: %s:%s: %s\n", host, port, gai_strerror(rc));
			exit(1);
		}
		fd = socket(res->ai_family, SOCK_DGRAM | SOCK_NONBLOCK, 0);
		if (fd < 0)
			goto fail;
		if (rcvbuf > 0 &&
		    setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcvbuf, sizeof(rcvbuf)) != 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
		if (bind(fd, res->ai_addr, res->ai_addrlen) != 0)
			goto fail;
		freeaddrinfo(res);
	}
	return fd;
fail:
	fprintf(stderr, "baseline: bind %s: %s\n", path ? path : port, strerror(errno));
	exit(1);
}

static uint64_t count_lines(const char *p, size_t len)
{
	const char *end = p + len, *nl;
	uint64_t n = 0;

	if (len == 0)
		return 0;
	while ((nl = memchr(p, '\n', (size_t)(end - p))) != NULL) {
		n++;
		p = nl + 1;
	}
	return n + (p < end);	/* last line without a trailing newline */
}

static double work_per_line_ns;

static int64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --work-per-line: spins for lines x work_per_line_ns. */
static void work(uint64_t lines)
{
	int64_t until = now_ns() + (int64_t)((double)lines * work_per_line_ns);

	while (now_ns() < until)
		;
}

static void account(struct counters *c, struct mmsghdr *m)
{
	struct msghdr *h = &m->msg_hdr;
	uint64_t n;

	c->datagrams++;
	c->bytes += m->msg_len;
	if (h->msg_flags & MSG_TRUNC) {
		c->truncated++;
		return;
	}
	n = count_lines(h->msg_iov->iov_base, m->msg_len);
	c->lines += n;
	if (work_per_line_ns > 0)
		work(n);
}

/* Reads up to max_batches batches; returns datagrams read. */
static unsigned read_batches(int fd, struct mmsghdr *msgs, unsigned batch, struct counters *c,
			     unsigned max_batches)
{
	unsigned total = 0;

	for (unsigned b = 0; b < max_batches; b++) {
		int got;

		got = recvmmsg(fd, msgs, batch, MSG_DONTWAIT, NULL);
		if (got <= 0)
			break;
		for (int i = 0; i < got; i++)
			account(c, &msgs[i]);
		total += (unsigned)got;
		if ((unsigned)got < batch)
			break;
	}
	return total;
}

static uint64_t meminfo_drops(int fd)
{
	uint32_t mi[SK_MEMINFO_VARS] = { 0 };
	socklen_t len = sizeof(mi);

	if (getsockopt(fd, SOL_SOCKET, SO_MEMINFO, mi, &len) != 0 ||
	    len <= SK_MEMINFO_DROPS * sizeof(uint32_t))
		return 0;
	return mi[SK_MEMINFO_DROPS];
}

static void report(int fd, const struct counters *c, double wall)
{
	struct rusage ru;
	double user, sys;
	uint64_t drops = meminfo_drops(fd);

	getrusage(RUSAGE_SELF, &ru);
	user = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6;
	sys = (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
	printf("lines=%llu datagrams=%llu bytes=%llu truncated=%llu kernel_drops=%llu "
	       "cpu_user=%.3f cpu_sys=%.3f cpu=%.3f wall=%.3f\n",
	       (unsigned long long)c->lines, (unsigned long long)c->datagrams,
	       (unsigned long long)c->bytes, (unsigned long long)c->truncated,
	       (unsigned long long)drops, user, sys, user + sys, wall);
}

/* batch messages, each with one buffer of bufsize bytes; allocated once,
 * released by free_msgs. */
static struct mmsghdr *alloc_msgs(unsigned batch, size_t bufsize)
{
	struct mmsghdr *msgs = calloc(batch, sizeof(*msgs));
	struct iovec *iov = calloc(batch, sizeof(*iov));
	char *bufs = malloc(batch * bufsize);

	if (!msgs || !iov || !bufs) {
		free(msgs);
		free(iov);
		free(bufs);
		return NULL;
	}
	for (unsigned i = 0; i < batch; i++) {
		iov[i] = (struct iovec){ bufs + i * bufsize, bufsize };
		msgs[i].msg_hdr.msg_iov = &iov[i];
		msgs[i].msg_hdr.msg_iovlen = 1;
	}
	return msgs;
}

static void free_msgs(struct mmsghdr *msgs)
{
	free(msgs[0].msg_hdr.msg_iov->iov_base);
	free(msgs[0].msg_hdr.msg_iov);
	free(msgs);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' }, { "socket", 1, 0, 'S' },
		{ "batch", 1, 0, 'b' }, { "buffer-size", 1, 0, 'B' }, { "rcvbuf", 1, 0, 'r' },
		{ "idle-exit", 1, 0, 'i' }, { "work-per-line", 1, 0, 'w' },
		{ "coalesce-us", 1, 0, 'c' }, { 0, 0, 0, 0 },
	};
	const char *host = "127.0.0.1", *port = "8125", *path = NULL;
	unsigned batch = 64;
	size_t bufsize = 8192;
	int rcvbuf = 0, ch, fd;
	double idle_exit = 0, t0, last_rx, coalesce_s = 0, win_start = 0;
	uint64_t win_dgrams = 0;
	bool coalesce = false;
	struct counters c = { 0 };
	struct mmsghdr *msgs;
	struct sigaction sa = { .sa_handler = on_signal };
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof(ss);

	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': host = optarg; break;
		case 'p': port = optarg; break;
		case 'S': path = optarg; break;
		case 'b': batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'B': bufsize = strtoul(optarg, NULL, 10); break;
		case 'r': rcvbuf = atoi(optarg); break;
		case 'i': idle_exit = strtod(optarg, NULL); break;
		case 'w': work_per_line_ns = strtod(optarg, NULL); break;
		case 'c': coalesce_s = strtod(optarg, NULL) / 1e6; break;
		default:
			fprintf(stderr, "usage: baseline [--host H] [--port P | --socket PATH] "
					"[--batch 64] [--buffer-size 8192] [--rcvbuf BYTES] "
					"[--idle-exit S] [--work-per-line NS] [--coalesce-us US]\n");
			return 2;
		}
	}
	if (batch == 0 || batch > 1024 || bufsize == 0 || bufsize > (1 << 20))
		return 2;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	fd = open_socket(host, port, path, rcvbuf);
	msgs = alloc_msgs(batch, bufsize);
	if (!msgs)
		return 1;
	getsockname(fd, (struct sockaddr *)&ss, &sslen);
	printf("listening port=%d\n", path ? 0 :
	       ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port));
	fflush(stdout);
	t0 = last_rx = now_s();
	while (!stop) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		unsigned got = poll(&pfd, 1, 100) > 0 ?
			read_batches(fd, msgs, batch, &c, MAX_BATCHES_PER_WAKE) : 0;

		if (got > 0) {
			last_rx = now_s();
			win_dgrams += got;
			if (last_rx - win_start >= COALESCE_WINDOW_S) {
				coalesce = (double)win_dgrams * coalesce_s >=
					   COALESCE_MIN_DGRAMS * (last_rx - win_start);
				win_start = last_rx;
				win_dgrams = 0;
			}
		}
		if (coalesce_s > 0 && coalesce && got > 0 && got < batch) {
			struct timespec ts = { 0, (long)(coalesce_s * 1e9) };

			nanosleep(&ts, NULL);
		}
		if (idle_exit > 0 && c.datagrams > 0 && now_s() - last_rx >= idle_exit)
			break;
	}
	while (read_batches(fd, msgs, batch, &c, MAX_BATCHES_PER_WAKE) > 0)
		;
	report(fd, &c, now_s() - t0);
	fflush(stdout);
	free_msgs(msgs);
	close(fd);
	if (path)
		unlink(path);
	return 0;
}
