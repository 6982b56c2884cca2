/*
 * loadgen.c - DogStatsD load generator for the benchmarks (bench/run.sh).
 *
 * Sends deterministic DogStatsD lines over UDP (or a Unix datagram socket)
 * with sendmmsg, --lines-per-datagram lines per datagram joined by '\n'.
 * Context c (0 <= c < --contexts, or the line number with --unique) is
 * "loadgen.metric.<c % 100>|#ctx:<c / 100>,t1:v..,t2:v.." (with no tags the
 * name is loadgen.metric.<c>); the type is a function of the metric name, so
 * each name has one type. An aggregator therefore sees at most
 * --contexts contexts. Each "ctx:" value is shared by 100 contexts and each
 * tag set by 10 (the t1 value repeats every 10 contexts of a name).
 * --unique-tags makes the first tag "instance_id:<c>" instead: a distinct tag
 * set per context, like a per-object tag (with --unique, every line a new
 * context with its own tag set; with --tags-per-line 0, --unique gives every
 * line its own metric name instead); counters always carry the value 1, so the sum of all
 * counters equals the number of counter lines sent. The context of each line
 * is drawn from a xorshift generator seeded with --seed.
 *
 * --senders K sends from K sockets (K source ports) in turn, like K clients.
 * Prints one key=value summary line on stdout. Standalone tool: no agent code.
 */
#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "lines.h"

#define MAX_BATCH 64
#define MAX_TYPES 6
#define MAX_TAGS 64
#define MAX_LINE 1024
#define MAX_SENDERS 64

struct opts {
	const char *host, *port, *socket_path;
	unsigned lpd, tags, batch, senders;
	uint64_t contexts, lines, seed;
	double rate, duration;
	bool unique, unique_tags;
	size_t max_datagram;
	const char *types[MAX_TYPES];
	unsigned ntypes;
};

static uint64_t rng_state;

static uint64_t rng_next(void)
{
	return line_rng_next(&rng_state);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* One line for context c; returns its length (no newline). */
static size_t write_line(const struct opts *o, char *out, uint64_t c)
{
	const struct line_shape shape = { o->tags, o->unique_tags, o->types, o->ntypes };

	return (size_t)(line_write(out, &shape, c, &rng_state) - out);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: loadgen [--host H] [--port P | --socket PATH] [--lines-per-datagram 20]\n"
		"  [--contexts 10000] [--tags-per-line 3] [--rate LINES_PER_S (0 = max)]\n"
		"  [--duration S | --lines N] [--type c|g|ms|h|s|d|mix|c,g,...] [--unique]\n"
		"  [--unique-tags]"
		" [--seed 1] [--max-datagram 8192] [--batch 64] [--senders 1]\n");
	exit(2);
}

static void parse_types(struct opts *o, const char *spec)
{
	static const char *const all[] = { "c", "g", "ms", "h", "s", "d" };
	char buf[64], *save = NULL, *tok;

	o->ntypes = 0;
	if (strcmp(spec, "mix") == 0) {
		for (unsigned i = 0; i < MAX_TYPES; i++)
			o->types[o->ntypes++] = all[i];
		return;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		unsigned i;

		for (i = 0; i < MAX_TYPES && strcmp(tok, all[i]) != 0; i++)
			;
		if (i == MAX_TYPES || o->ntypes == MAX_TYPES) {
			fprintf(stderr, "loadgen: bad --type %s\n", spec);
			exit(2);
		}
		o->types[o->ntypes++] = all[i];
	}
	if (o->ntypes == 0)
		usage();
}

static void parse_opts(struct opts *o, int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' }, { "port", 1, 0, 'p' }, { "socket", 1, 0, 'S' },
		{ "lines-per-datagram", 1, 0, 'l' }, { "contexts", 1, 0, 'c' },
		{ "tags-per-line", 1, 0, 't' }, { "rate", 1, 0, 'r' },
		{ "duration", 1, 0, 'd' }, { "lines", 1, 0, 'n' }, { "type", 1, 0, 'T' },
		{ "unique", 0, 0, 'u' }, { "unique-tags", 0, 0, 'U' }, { "seed", 1, 0, 's' },
		{ "max-datagram", 1, 0, 'm' }, { "batch", 1, 0, 'b' }, { "senders", 1, 0, 'k' },
		{ 0, 0, 0, 0 },
	};
	int ch;

	*o = (struct opts){ .host = "127.0.0.1", .port = "8125", .lpd = 20, .tags = 3,
			    .batch = MAX_BATCH, .contexts = 10000, .seed = 1,
			    .max_datagram = 8192, .senders = 1 };
	parse_types(o, "c");
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'H': o->host = optarg; break;
		case 'p': o->port = optarg; break;
		case 'S': o->socket_path = optarg; break;
		case 'l': o->lpd = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'c': o->contexts = strtoull(optarg, NULL, 10); break;
		case 't': o->tags = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'r': o->rate = strtod(optarg, NULL); break;
		case 'd': o->duration = strtod(optarg, NULL); break;
		case 'n': o->lines = strtoull(optarg, NULL, 10); break;
		case 'T': parse_types(o, optarg); break;
		case 'u': o->unique = true; break;
		case 'U': o->unique_tags = true; break;
		case 's': o->seed = strtoull(optarg, NULL, 10); break;
		case 'm': o->max_datagram = strtoul(optarg, NULL, 10); break;
		case 'b': o->batch = (unsigned)strtoul(optarg, NULL, 10); break;
		case 'k': o->senders = (unsigned)strtoul(optarg, NULL, 10); break;
		default: usage();
		}
	}
	if (o->lpd == 0 || o->contexts == 0 || o->tags > MAX_TAGS || o->batch == 0 ||
	    o->batch > MAX_BATCH || o->senders == 0 || o->senders > MAX_SENDERS || o->max_datagram < MAX_LINE || o->max_datagram > 65507)
		usage();
	if (o->lines == 0 && o->duration <= 0)
		o->lines = 1000000;
	rng_state = o->seed ? o->seed * 0x9E3779B97F4A7C15ull : 1;
}

static int open_target(const struct opts *o)
{
	struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
	int fd, sndbuf = 4 << 20, rc;

	if (o->socket_path) {
		struct sockaddr_un sun = { .sun_family = AF_UNIX };

		snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", o->socket_path);
		fd = socket(AF_UNIX, SOCK_DGRAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			fprintf(stderr, "loadgen: connect %s: %s\n", o->socket_path, strerror(errno));
			exit(1);
		}
		return fd;
	}
	rc = getaddrinfo(o->host, o->port, &hints, &res);
	if (rc != 0) {
		fprintf(stderr, "loadgen: %s:%s: %s\n", o->host, o->port, gai_strerror(rc));
		exit(1);
	}
	fd = socket(res->ai_family, SOCK_DGRAM, 0);
	if (fd < 0 || connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
		fprintf(stderr, "loadgen: connect %s:%s: %s\n", o->host, o->port, strerror(errno));
		exit(1);
	}
	freeaddrinfo(res);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	return fd;
}

struct run {
	uint64_t lines, datagrams, bytes, errors, next_unique;
};

/* Fills one datagram; returns its length and the lines in it. */
static size_t fill_datagram(const struct opts *o, struct run *r, char *d, uint64_t room,
			    unsigned *nlines)
{
	size_t len = 0;
	unsigned n = 0;
	char line[MAX_LINE];

	while (n < o->lpd && n < room) {
		uint64_t c = o->unique ? r->next_unique : rng_next() % o->contexts;
		size_t ll = write_line(o, line, c);

		if (n > 0 && len + 1 + ll > o->max_datagram)
			break;
		if (n > 0)
			d[len++] = '\n';
		memcpy(d + len, line, ll);
		len += ll;
		n++;
		r->next_unique++;
	}
	*nlines = n;
	return len;
}

/* Sends one sendmmsg batch; returns lines sent. */
static uint64_t send_batch(const struct opts *o, struct run *r, int fd, unsigned ndg,
			   uint64_t room)
{
	static char bufs[MAX_BATCH][65536];
	struct mmsghdr msgs[MAX_BATCH];
	struct iovec iov[MAX_BATCH];
	unsigned lines[MAX_BATCH], k, done = 0;
	uint64_t total = 0;

	memset(msgs, 0, sizeof(msgs));
	for (k = 0; k < ndg && total < room; k++) {
		iov[k].iov_base = bufs[k];
		iov[k].iov_len = fill_datagram(o, r, bufs[k], room - total, &lines[k]);
		msgs[k].msg_hdr.msg_iov = &iov[k];
		msgs[k].msg_hdr.msg_iovlen = 1;
		total += lines[k];
	}
	ndg = k;
	while (done < ndg) {
		int rc = sendmmsg(fd, msgs + done, ndg - done, 0);

		if (rc < 0) {
			if (errno == EINTR)
				continue;
			r->errors++;	/* e.g. ECONNREFUSED: nobody listening; skip one */
			done++;
			continue;
		}
		for (int i = 0; i < rc; i++) {
			r->lines += lines[done + (unsigned)i];
			r->bytes += iov[done + (unsigned)i].iov_len;
			r->datagrams++;
		}
		done += (unsigned)rc;
	}
	return total;
}

static void sleep_until(double t)
{
	struct timespec ts;
	double now = now_s();

	if (t <= now)
		return;
	ts.tv_sec = (time_t)(t - now);
	ts.tv_nsec = (long)((t - now - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
	struct opts o;
	struct run r = { 0 };
	unsigned batch;
	double t0, elapsed;
	uint64_t queued = 0;
	int fds[MAX_SENDERS];
	unsigned next = 0;

	parse_opts(&o, argc, argv);
	/* --senders K: K sockets (K source ports), batches sent round-robin, so
	 * a receiver with K SO_REUSEPORT sockets sees the load spread by the
	 * kernel's address hash, as with K client processes. */
	for (unsigned i = 0; i < o.senders; i++)
		fds[i] = open_target(&o);
	batch = o.batch;
	/* At a fixed rate keep each batch under ~1 ms of traffic. */
	if (o.rate > 0 && o.rate / o.lpd / 1000 < batch)
		batch = o.rate / o.lpd / 1000 < 1 ? 1 : (unsigned)(o.rate / o.lpd / 1000);
	t0 = now_s();
	for (;;) {
		uint64_t room = o.lines ? o.lines - queued : UINT64_MAX;

		elapsed = now_s() - t0;
		if (room == 0 || (o.duration > 0 && elapsed >= o.duration))
			break;
		if (o.rate > 0)
			sleep_until(t0 + (double)queued / o.rate);
		queued += send_batch(&o, &r, fds[next], batch, room);
		next = (next + 1) % o.senders;
	}
	elapsed = now_s() - t0;
	printf("lines_sent=%llu datagrams_sent=%llu bytes_sent=%llu send_errors=%llu "
	       "seconds=%.3f lines_per_s=%.0f\n",
	       (unsigned long long)r.lines, (unsigned long long)r.datagrams,
	       (unsigned long long)r.bytes, (unsigned long long)r.errors, elapsed,
	       elapsed > 0 ? (double)r.lines / elapsed : 0.0);
	for (unsigned i = 0; i < o.senders; i++)
		close(fds[i]);
	return 0;
}
