/*
 * net_sock.c - opens the listening sockets for net.c: UDP (v4/v6) and Unix
 * datagram. See net_int.h (private to agent/net).
 *
 * Owns nothing beyond the descriptors it returns (the caller closes them).
 * Threading: called from net_new on the loop thread; no shared state.
 */
#include "net/net_int.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

void net_format_addr(const struct sockaddr *sa, socklen_t salen, char *out, size_t outlen)
{
	char host[NI_MAXHOST], serv[NI_MAXSERV];

	if (getnameinfo(sa, salen, host, sizeof(host), serv, sizeof(serv),
			NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
		snprintf(out, outlen, "(unprintable address)");
		return;
	}
	if (sa->sa_family == AF_INET6)
		snprintf(out, outlen, "[%s]:%s", host, serv);
	else
		snprintf(out, outlen, "%s:%s", host, serv);
}

/* SO_RCVBUFFORCE passes rmem_max when we have CAP_NET_ADMIN; otherwise the
 * kernel clamps SO_RCVBUF to rmem_max, which we report. */
static void set_rcvbuf(int fd, int want, const char *what)
{
	int got = 0;
	socklen_t len = sizeof(got);

	if (want <= 0)
		return;
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) != 0 &&
	    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want)) != 0) {
		log_warn("net: %s: setting SO_RCVBUF to %d failed: %s", what, want,
			 strerror(errno));
		return;
	}
	/* The kernel doubles the value for bookkeeping overhead. */
	if (getsockopt(fd, SOL_SOCKET, SO_RCVBUF, &got, &len) == 0 && got / 2 < want)
		log_warn("net: %s: dogstatsd_so_rcvbuf %d requested, kernel granted %d "
			 "(raise net.core.rmem_max or run with CAP_NET_ADMIN)",
			 what, want, got / 2);
}

static int set_int(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val)) == 0 ? 0 : -errno;
}

static int fail(int fd, int rc, char *err, size_t errlen, const char *what,
		const char *step)
{
	snprintf(err, errlen, "%s %s: %s (errno %d)", step, what, strerror(-rc), -rc);
	if (fd >= 0)
		close(fd);
	return rc;
}

int net_open_udp(const struct sockaddr *sa, socklen_t salen, int rcvbuf,
		 char *err, size_t errlen)
{
	char what[INET6_ADDRSTRLEN + 16];
	int fd, rc;

	net_format_addr(sa, salen, what, sizeof(what));
	fd = socket(sa->sa_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
	if (fd < 0)
		return fail(-1, -errno, err, errlen, what, "udp socket for");
	if ((rc = set_int(fd, SOL_SOCKET, SO_REUSEPORT, 1)) < 0)
		return fail(fd, rc, err, errlen, what, "SO_REUSEPORT on udp");
	if (sa->sa_family == AF_INET6 &&
	    (rc = set_int(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1)) < 0)
		return fail(fd, rc, err, errlen, what, "IPV6_V6ONLY on udp");
	set_rcvbuf(fd, rcvbuf, what);
	if (bind(fd, sa, salen) != 0)
		return fail(fd, -errno, err, errlen, what, "bind udp");
	return fd;
}

/* A socket file nobody is bound to refuses connections: then it is stale.
 * 0 = stale, -EADDRINUSE = someone listens, other -errno = cannot tell. */
static int probe_stale(const struct sockaddr_un *sun)
{
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	int rc;

	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sun, sizeof(*sun));
	if (rc == 0)
		rc = -EADDRINUSE;
	else
		rc = (errno == ECONNREFUSED || errno == ENOENT) ? 0 : -errno;
	close(fd);
	return rc;
}

static int remove_stale(const struct sockaddr_un *sun, char *err, size_t errlen)
{
	const char *path = sun->sun_path;
	struct stat st;
	int rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : fail(-1, -errno, err, errlen, path, "stat uds");
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(err, errlen, "uds %s: exists and is not a socket; not removing it",
			 path);
		return -EEXIST;
	}
	rc = probe_stale(sun);
	if (rc == -EADDRINUSE) {
		snprintf(err, errlen, "uds %s: another process is listening on it", path);
		return rc;
	}
	if (rc < 0)
		return fail(-1, rc, err, errlen, path, "probe uds");
	if (unlink(path) != 0 && errno != ENOENT)
		return fail(-1, -errno, err, errlen, path, "remove stale uds");
	log_info("net: removed stale socket file %s", path);
	return 0;
}

int net_open_uds(const char *path, unsigned mode, int rcvbuf, dev_t *dev, ino_t *ino,
		 char *err, size_t errlen)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	struct stat st;
	int fd, rc;

	if (strlen(path) >= sizeof(sun.sun_path)) {
		snprintf(err, errlen, "uds %s: path longer than %zu bytes", path,
			 sizeof(sun.sun_path) - 1);
		return -ENAMETOOLONG;
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((rc = remove_stale(&sun, err, errlen)) < 0)
		return rc;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(-1, -errno, err, errlen, path, "uds socket for");
	set_rcvbuf(fd, rcvbuf, path);
	if (bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		return fail(fd, -errno, err, errlen, path, "bind uds");
	if (chmod(path, mode) != 0 || stat(path, &st) != 0) {
		rc = -errno;
		unlink(path);
		return fail(fd, rc, err, errlen, path, "chmod uds");
	}
	*dev = st.st_dev;
	*ino = st.st_ino;
	return fd;
}
