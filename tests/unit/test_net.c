/*
 * test_net.c - unit tests for agent/net: real sockets on a real event_base.
 *
 * UDP tests pick a free port by binding a throwaway socket on 127.0.0.1:0 (and
 * checking ::1 for the same port), then closing it before net_new.
 */
#include <criterion/criterion.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "net/net.h"
#include "net/net_int.h"

#define MAXD 512

struct rx {
	unsigned n;
	unsigned ntrunc;
	size_t len[MAXD];
	bool trunc[MAXD];
	char data[MAXD][128];	/* first bytes of each datagram */
	bool nul_ok;		/* buf[len] == 0 every time */
	struct net *pause_me;	/* pause from the callback after the first datagram */
	unsigned max_batch;	/* the most datagrams one callback got */
};

static struct event_base *base;
static char tmpdir[64];

static void on_one(struct rx *r, const char *buf, size_t len, bool truncated)
{
	if (r->n == 0)
		r->nul_ok = true;
	if (buf[len] != '\0')
		r->nul_ok = false;
	if (r->n < MAXD) {
		r->len[r->n] = len;
		r->trunc[r->n] = truncated;
		snprintf(r->data[r->n], sizeof(r->data[0]), "%.*s", (int)(len < 127 ? len : 127),
			 buf);
	}
	r->n++;
	r->ntrunc += truncated;
	if (r->pause_me)
		net_pause(r->pause_me);
}

/* net's callback: a batch, recorded datagram by datagram. */
static void on_dgram(void *ctx, const struct net_dgram *d, unsigned n)
{
	struct rx *r = ctx;
	if (r && n > r->max_batch)
		r->max_batch = n;
	for (unsigned i = 0; i < n; i++)
		on_one(r, d[i].buf, d[i].len, d[i].truncated);
}

static void setup(void)
{
	base = event_base_new();
	cr_assert_not_null(base);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/ddma-net-XXXXXX");
	cr_assert_not_null(mkdtemp(tmpdir));
}

static void teardown(void)
{
	event_base_free(base);
	rmdir(tmpdir);
}

TestSuite(net, .init = setup, .fini = teardown);

static int bind_probe(int family, int port)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t len;
	int fd = socket(family, SOCK_DGRAM, 0);

	if (fd < 0)
		return -1;
	if (family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		a->sin_port = htons((uint16_t)port);
		a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		len = sizeof(*a);
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
		int one = 1;

		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
		len = sizeof(*a);
	}
	if (bind(fd, (struct sockaddr *)&ss, len) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* A port free on both 127.0.0.1 and ::1 right now. */
static int free_port(void)
{
	for (int tries = 0; tries < 50; tries++) {
		struct sockaddr_in a;
		socklen_t len = sizeof(a);
		int fd4 = bind_probe(AF_INET, 0), fd6, port;

		cr_assert(fd4 >= 0);
		getsockname(fd4, (struct sockaddr *)&a, &len);
		port = ntohs(a.sin_port);
		fd6 = bind_probe(AF_INET6, port);
		close(fd4);
		if (fd6 >= 0) {
			close(fd6);
			return port;
		}
	}
	cr_assert_fail("no free port");
	return 0;
}

static struct net_config udp_cfg(char **hosts, size_t nhosts, int port)
{
	struct net_config c = {
		.bind_hosts = hosts, .nbind_hosts = nhosts, .port = port,
		.socket_path = "", .socket_mode = 0660, .buffer_size = 8192,
		.recv_batch = 64,
	};
	return c;
}

static void send_to(int family, int port, const void *p, size_t len)
{
	struct sockaddr_in a4 = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				  .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)port),
				   .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(family, SOCK_DGRAM, 0);
	ssize_t rc;

	cr_assert(fd >= 0);
	if (family == AF_INET)
		rc = sendto(fd, p, len, 0, (struct sockaddr *)&a4, sizeof(a4));
	else
		rc = sendto(fd, p, len, 0, (struct sockaddr *)&a6, sizeof(a6));
	cr_assert_eq(rc, (ssize_t)len, "sendto: %s", strerror(errno));
	close(fd);
}

static void send_uds(const char *path, const void *p, size_t len)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	cr_assert(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(sendto(fd, p, len, 0, (struct sockaddr *)&a, sizeof(a)), (ssize_t)len,
		     "sendto %s: %s", path, strerror(errno));
	close(fd);
}

/* Runs the loop until r->n >= want or 2 s pass. */
static void pump(struct rx *r, unsigned want)
{
	for (int i = 0; i < 2000 && r->n < want; i++) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		if (r->n < want)
			usleep(1000);
	}
}

/* The tests' usual listener: UDP on 127.0.0.1 only. */
static char *lo4[] = { "127.0.0.1" };

/* net_new for a config that must open. */
static struct net *open_net(const struct net_config *c, struct rx *r)
{
	char err[256] = "";
	struct net *n = net_new(base, c, on_dgram, r, err, sizeof(err));

	cr_assert_not_null(n, "%s", err);
	return n;
}

/* Runs the loop for about 50 ms whatever arrives: time for a reader that
 * should stay quiet to show that it does not. */
static void spin_idle(void)
{
	for (int i = 0; i < 50; i++) {
		event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
		usleep(1000);
	}
}

/* Runs the loop until want datagrams are in, expecting exactly that many. */
static void expect_received(struct rx *r, unsigned want)
{
	pump(r, want);
	cr_assert_eq(r->n, want, "received %u, want %u", r->n, want);
}

/* The usual listener on a free port, what it received and its config: a
 * test changes c between listener_init and listener_open. */
struct listener {
	int port;
	struct net_config c;
	struct rx r;
	struct net *n;
};

static void listener_init(struct listener *u)
{
	memset(u, 0, sizeof(*u));
	u->port = free_port();
	u->c = udp_cfg(lo4, 1, u->port);
}

static void listener_open(struct listener *u)
{
	u->n = open_net(&u->c, &u->r);
}

/* Sends the string s to the listener, one datagram. */
static void listener_send(const struct listener *u, const char *s)
{
	send_to(AF_INET, u->port, s, strlen(s));
}

/* Coalescing is on from 20,000 datagrams/s (a 200 us sleep gathers 4). */
Test(net, coalescing_starts_at_four_datagrams_per_sleep)
{
	static const struct {
		uint64_t dgrams;
		int64_t ns;
		bool pays;
	} rows[] = {
		{ 80, 4000000, true },		/* 20k/s: the threshold */
		{ 79, 4000000, false },
		{ 200, 4000000, true },		/* 1M lines/s at 20 per datagram */
		{ 40, 4000000, false },		/* 200k lines/s at 20 per datagram */
		{ 800, 4000000, true },		/* 200k single-line datagrams/s */
		{ 1700, 4000000, true },	/* a burst */
		{ 1, 4000000, false },
		{ 0, 4000000, false },
		{ 8, 0, false },		/* no time elapsed: no rate */
		{ 100, 5000000, true },
		{ 99, 5000000, false },
	};
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		cr_expect_eq(net_coalesce_pays(rows[i].dgrams, rows[i].ns), rows[i].pays,
			     "%llu datagrams in %lld ns", (unsigned long long)rows[i].dgrams,
			     (long long)rows[i].ns);
}

Test(net, udp_v4_receives_datagrams_and_counts)
{
	struct listener u;
	struct net_stats st;

	listener_init(&u);
	listener_open(&u);
	cr_assert_eq(net_udp_port(u.n), u.port);
	listener_send(&u, "a.b:1|c");
	listener_send(&u, "x:2|g\ny:3|g");
	listener_send(&u, "z:1|ms");
	expect_received(&u.r, 3);
	cr_assert_str_eq(u.r.data[0], "a.b:1|c");
	cr_assert_str_eq(u.r.data[1], "x:2|g\ny:3|g");
	cr_assert_str_eq(u.r.data[2], "z:1|ms");
	cr_assert(u.r.nul_ok);
	cr_assert_eq(u.r.max_batch, 3, "the three queued datagrams come in one callback");
	net_get_stats(u.n, &st);
	cr_assert_eq(st.udp_packets, 3);
	cr_assert_eq(st.udp_bytes, 24);
	cr_assert_eq(st.uds_packets, 0);
	cr_assert_eq(st.truncated, 0);
	cr_assert_eq(st.kernel_drops, 0);
	cr_assert_eq(st.recv_errors, 0);
	cr_assert_eq(st.sockets, 1);
	net_free(u.n);
}

Test(net, udp_v6_and_v4_default_hosts)
{
	int port = free_port();
	struct net_config c = udp_cfg(NULL, 0, port); /* defaults: 127.0.0.1 and ::1 */
	struct rx r = { 0 };
	struct net_stats st;
	struct net *n = open_net(&c, &r);

	net_get_stats(n, &st);
	cr_assert_eq(st.sockets, 2);
	send_to(AF_INET6, port, "six:1|c", 7);
	pump(&r, 1);
	send_to(AF_INET, port, "four:1|c", 8);
	expect_received(&r, 2);
	cr_assert_str_eq(r.data[0], "six:1|c");
	cr_assert_str_eq(r.data[1], "four:1|c");
	net_get_stats(n, &st);
	cr_assert_eq(st.udp_packets, 2);
	cr_assert_eq(st.udp_bytes, 15);
	net_free(n);
}

Test(net, duplicate_bind_hosts_open_one_socket)
{
	char *hosts[] = { "127.0.0.1", "::1", "127.0.0.1" };
	struct net_config c = udp_cfg(hosts, 3, free_port());
	struct rx r = { 0 };
	struct net_stats st;
	struct net *n = open_net(&c, &r);

	net_get_stats(n, &st);
	cr_assert_eq(st.sockets, 2);
	net_free(n);
}

Test(net, reuseport_lets_two_pipelines_share_a_port)
{
	char *hosts[] = { "127.0.0.1" };
	struct net_config c = udp_cfg(hosts, 1, free_port());
	struct rx r1 = { 0 }, r2 = { 0 };
	char err[256] = "";
	struct net *a = net_new(base, &c, on_dgram, &r1, err, sizeof(err));
	struct net *b = net_new(base, &c, on_dgram, &r2, err, sizeof(err));

	cr_assert_not_null(a, "%s", err);
	cr_assert_not_null(b, "%s", err);
	cr_assert_eq(net_udp_port(a), net_udp_port(b));
	net_free(b);
	net_free(a);
}

Test(net, bind_error_names_address_and_errno)
{
	int port = free_port();
	int busy = bind_probe(AF_INET, port); /* no SO_REUSEPORT: blocks our bind */
	char *hosts[] = { "127.0.0.1" };
	struct net_config c = udp_cfg(hosts, 1, port);
	char err[256] = "", want[64];
	struct net *n;

	cr_assert(busy >= 0);
	n = net_new(base, &c, on_dgram, NULL, err, sizeof(err));
	close(busy);
	cr_assert_null(n);
	snprintf(want, sizeof(want), "bind udp 127.0.0.1:%d: ", port);
	cr_assert(strstr(err, want) != NULL, "err: %s", err);
	cr_assert(strstr(err, strerror(EADDRINUSE)) != NULL, "err: %s", err);
	cr_assert(strstr(err, "errno 98") != NULL, "err: %s", err);
}

Test(net, port_out_of_range_is_an_error)
{
	struct net_config c = udp_cfg(NULL, 0, 70000);
	char err[256] = "";

	cr_assert_null(net_new(base, &c, on_dgram, NULL, err, sizeof(err)));
	cr_assert(strstr(err, "70000") != NULL, "err: %s", err);
}

Test(net, port_zero_and_no_socket_means_no_listener)
{
	struct net_config c = udp_cfg(NULL, 0, 0);
	struct net_stats st;
	char err[256] = "";
	struct net *n = net_new(base, &c, on_dgram, NULL, err, sizeof(err));

	cr_assert_not_null(n, "%s", err);
	net_get_stats(n, &st);
	cr_assert_eq(st.sockets, 0);
	cr_assert_eq(net_udp_port(n), 0);
	net_free(n);
}

Test(net, truncated_datagram_is_flagged_and_counted)
{
	struct listener u;
	struct net_stats st;
	char big[300];

	listener_init(&u);
	u.c.buffer_size = 100;
	listener_open(&u);
	memset(big, 'x', sizeof(big));
	send_to(AF_INET, u.port, big, 100);	/* exactly fits: not truncated */
	send_to(AF_INET, u.port, big, 101);
	send_to(AF_INET, u.port, big, 300);
	expect_received(&u.r, 3);
	cr_assert_eq(u.r.len[0], 100);
	cr_assert_not(u.r.trunc[0]);
	cr_assert_eq(u.r.len[1], 100);
	cr_assert(u.r.trunc[1]);
	cr_assert_eq(u.r.len[2], 100);
	cr_assert(u.r.trunc[2]);
	cr_assert(u.r.nul_ok);
	net_get_stats(u.n, &st);
	cr_assert_eq(st.truncated, 2);
	cr_assert_eq(st.udp_packets, 3);
	cr_assert_eq(st.udp_bytes, 300);
	net_free(u.n);
}

static struct net_config uds_cfg(const char *path, unsigned mode)
{
	struct net_config c = {
		.port = 0, .socket_path = (char *)path, .socket_mode = mode,
		.buffer_size = 8192, .recv_batch = 64,
	};
	return c;
}

Test(net, uds_receives_applies_mode_and_unlinks)
{
	char path[128];
	struct rx r = { 0 };
	struct net_stats st;
	struct stat sb;
	struct net_config c;
	struct net *n;

	snprintf(path, sizeof(path), "%s/dsd.sock", tmpdir);
	c = uds_cfg(path, 0620);
	n = open_net(&c, &r);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert(S_ISSOCK(sb.st_mode));
	cr_assert_eq(sb.st_mode & 07777, 0620, "mode %o", sb.st_mode & 07777);
	send_uds(path, "uds.metric:1|c|#a:b", 19);
	expect_received(&r, 1);
	cr_assert_str_eq(r.data[0], "uds.metric:1|c|#a:b");
	net_get_stats(n, &st);
	cr_assert_eq(st.uds_packets, 1);
	cr_assert_eq(st.uds_bytes, 19);
	cr_assert_eq(st.udp_packets, 0);
	cr_assert_eq(st.sockets, 1);
	net_free(n);
	cr_assert_eq(stat(path, &sb), -1);
	cr_assert_eq(errno, ENOENT);
}

Test(net, stale_socket_file_is_replaced)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	char err[256] = "";
	struct rx r = { 0 };
	struct stat before;
	struct net_config c;
	struct net *n;
	int fd = socket(AF_UNIX, SOCK_DGRAM, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s/stale.sock", tmpdir);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	close(fd); /* the file stays: a stale socket */
	cr_assert_eq(stat(a.sun_path, &before), 0);
	c = uds_cfg(a.sun_path, 0600);
	n = net_new(base, &c, on_dgram, &r, err, sizeof(err));
	/* bind() onto an existing path fails with EADDRINUSE: success means the
	 * stale file was removed (tmpfs may reuse the inode number). */
	cr_assert_not_null(n, "%s", err);
	send_uds(a.sun_path, "s:1|c", 5);
	expect_received(&r, 1);
	net_free(n);
	cr_assert_eq(access(a.sun_path, F_OK), -1);
}

Test(net, regular_file_at_socket_path_is_kept_and_refused)
{
	char path[128], err[256] = "";
	struct net_config c;
	FILE *f;

	snprintf(path, sizeof(path), "%s/notasocket", tmpdir);
	f = fopen(path, "w");
	cr_assert_not_null(f);
	fputs("keep me", f);
	fclose(f);
	c = uds_cfg(path, 0600);
	cr_assert_null(net_new(base, &c, on_dgram, NULL, err, sizeof(err)));
	cr_assert(strstr(err, "not a socket") != NULL, "err: %s", err);
	cr_assert(strstr(err, path) != NULL, "err: %s", err);
	cr_assert_eq(access(path, F_OK), 0);
	unlink(path);
}

Test(net, live_socket_at_path_is_not_stolen)
{
	char path[128], err[256] = "";
	struct rx r = { 0 };
	struct net_config c;
	struct net *first, *second;

	snprintf(path, sizeof(path), "%s/live.sock", tmpdir);
	c = uds_cfg(path, 0600);
	first = net_new(base, &c, on_dgram, &r, err, sizeof(err));
	cr_assert_not_null(first, "%s", err);
	second = net_new(base, &c, on_dgram, &r, err, sizeof(err));
	cr_assert_null(second);
	cr_assert(strstr(err, "another process is listening") != NULL, "err: %s", err);
	send_uds(path, "still:1|c", 9); /* first one still owns the path */
	expect_received(&r, 1);
	net_free(first);
}

Test(net, socket_path_too_long_is_an_error)
{
	char path[200], err[256] = "";
	struct net_config c;

	memset(path, 'a', sizeof(path) - 1);
	path[0] = '/';
	path[sizeof(path) - 1] = '\0';
	c = uds_cfg(path, 0600);
	cr_assert_null(net_new(base, &c, on_dgram, NULL, err, sizeof(err)));
	cr_assert(strstr(err, "path longer than 107 bytes") != NULL, "err: %s", err);
}

Test(net, kernel_drops_counted_exactly)
{
	struct listener u;
	struct net_stats st;
	char pkt[1000];
	const unsigned sent = 200;
	size_t got;

	listener_init(&u);
	u.c.so_rcvbuf = 1; /* the kernel's minimum: a few datagrams */
	listener_open(&u);
	memset(pkt, 'd', sizeof(pkt));
	for (unsigned i = 0; i < sent - 1; i++)
		send_to(AF_INET, u.port, pkt, sizeof(pkt)); /* nobody reads: most dropped */
	got = net_drain(u.n, 1000); /* reads everything queued, now */
	cr_assert_eq(got, u.r.n);
	/* Exact already, although no datagram followed the last drops. */
	net_get_stats(u.n, &st);
	cr_assert_gt(st.kernel_drops, 0);
	cr_assert_lt(u.r.n, sent - 1);
	cr_assert_eq(u.r.n + st.kernel_drops, sent - 1, "received %u + drops %llu != %u", u.r.n,
		     (unsigned long long)st.kernel_drops, sent - 1);
	/* Reading the counter again (after another datagram, and twice) counts
	 * no drop twice. */
	listener_send(&u, "last:1|c");
	pump(&u.r, u.r.n + 1);
	net_get_stats(u.n, &st);
	cr_assert_eq(u.r.n + st.kernel_drops, sent, "received %u + drops %llu != %u", u.r.n,
		     (unsigned long long)st.kernel_drops, sent);
	net_get_stats(u.n, &st);
	cr_assert_eq(u.r.n + st.kernel_drops, sent);
	cr_assert_str_eq(u.r.data[u.r.n - 1], "last:1|c");
	net_free(u.n);
}

Test(net, one_wakeup_reads_at_most_max_batches)
{
	struct listener u;
	const unsigned sent = 100, batch = 2;

	listener_init(&u);
	u.c.recv_batch = batch;
	u.c.so_rcvbuf = 1 << 20;
	listener_open(&u);
	for (unsigned i = 0; i < sent; i++)
		listener_send(&u, "m:1|c");
	event_base_loop(base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
	cr_assert_eq(u.r.n, batch * NET_MAX_BATCHES_PER_WAKE);
	expect_received(&u.r, sent);
	net_free(u.n);
}

Test(net, pause_stops_reading_resume_and_drain_read_the_rest)
{
	struct listener u;

	listener_init(&u);
	listener_open(&u);
	net_pause(u.n);
	listener_send(&u, "p:1|c");
	listener_send(&u, "q:1|c");
	spin_idle();
	cr_assert_eq(u.r.n, 0);
	cr_assert_eq(net_drain(u.n, 1), 2); /* works while paused */
	cr_assert_eq(u.r.n, 2);
	listener_send(&u, "after:1|c");
	cr_assert_eq(net_resume(u.n), 0);
	expect_received(&u.r, 3);
	cr_assert_str_eq(u.r.data[2], "after:1|c");
	net_free(u.n);
}

Test(net, pause_from_callback_delivers_the_batch_then_stops)
{
	struct listener u;

	listener_init(&u);
	u.c.recv_batch = 2;
	listener_open(&u);
	u.r.pause_me = u.n;
	for (int i = 0; i < 5; i++)
		listener_send(&u, "x:1|c");
	spin_idle();
	cr_assert_eq(u.r.n, 2); /* the batch in hand, nothing after */
	u.r.pause_me = NULL;
	cr_assert_eq(net_resume(u.n), 0);
	expect_received(&u.r, 5);
	net_free(u.n);
}

Test(net, free_accepts_null)
{
	struct net_stats st;

	net_free(NULL);
	net_pause(NULL);
	cr_assert_eq(net_resume(NULL), 0);
	cr_assert_eq(net_drain(NULL, 1), 0);
	cr_assert_eq(net_udp_port(NULL), 0);
	net_get_stats(NULL, &st);
	cr_assert_eq(st.sockets, 0);
}
