/*
 * test_diskq.c - the disk queue (forward/diskq.h): atomic files that stay
 * until removed, reload after reopen, newest first, CRC mismatch detection
 * (named and counted), foreign entries left alone, byte cap evicting the
 * oldest unloaded files only, modes 0600/0700, stray .tmp removal, write
 * errors counted; and through the forwarder: every payload is on disk when
 * fwd_submit returns, a drain with the intake down keeps them without the
 * API key.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <stddef.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "forward/diskq.h"
#include "forward/forward.h"

static char dir[256];

static void mkdir_tmp(void)
{
	snprintf(dir, sizeof(dir), "/tmp/ddma-diskq-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	strcat(dir, "/q");
}

static void rm_rf(void)
{
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	cr_assert_eq(system(cmd), 0);
}

static struct payload *mk(uint64_t seq, const char *body, uint32_t pts)
{
	struct payload *p = calloc(1, sizeof(*p));
	p->ep = seq % 2 ? FWD_EP_SERIES_V1 : FWD_EP_CHECKS;
	p->enc = COMPRESS_ZSTD;
	p->seq = seq;
	p->len = strlen(body);
	p->data = (uint8_t *)strdup(body);
	p->raw_len = 1000 + seq;
	p->npoints = pts;
	p->created = 1700000000 + (int64_t)seq;
	p->attempts = 3;
	return p;
}

static size_t count_files(const char *suffix)
{
	DIR *d = opendir(dir);
	cr_assert_not_null(d);
	size_t n = 0;
	struct dirent *de;
	while ((de = readdir(d))) {
		size_t l = strlen(de->d_name);
		if (l > strlen(suffix) && strcmp(de->d_name + l - strlen(suffix), suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* What the report callback was told. */
struct reports {
	char lines[16][160];
	int n;
};

static void on_report(void *arg, const char *name, const char *what)
{
	struct reports *r = arg;
	if (r->n < 16)
		snprintf(r->lines[r->n++], sizeof(r->lines[0]), "%s: %s", name, what);
}

static struct diskq *open_q(size_t cap, struct reports *r)
{
	char err[256];
	struct diskq *q = diskq_open(dir, cap, r ? on_report : NULL, r, err, sizeof(err));
	cr_assert_not_null(q, "%s", err);
	return q;
}

static void put(struct diskq *q, uint64_t seq, const char *body, uint32_t pts, bool loaded)
{
	struct payload *p = mk(seq, body, pts);
	cr_assert_eq(diskq_put(q, p, loaded), 0, "put %llu", (unsigned long long)seq);
	payload_free(p);
}

/* An empty queue in a fresh directory, capped at 1 MiB. */
static struct diskq *empty_queue(void)
{
	mkdir_tmp();
	return open_q(1 << 20, NULL);
}

/* An empty_queue() given files 1..n, each "payload-bytes" with pts points,
 * none loaded. */
static struct diskq *fresh_queue(uint64_t n, uint32_t pts)
{
	struct diskq *q = empty_queue();
	for (uint64_t s = 1; s <= n; s++)
		put(q, s, "payload-bytes", pts, false);
	return q;
}

/* The diskq_stats counters expect_stats() reads, by name. */
#define DQ_STAT(f) { #f, offsetof(struct diskq_stats, f), sizeof(((struct diskq_stats *)0)->f) }
static const struct {
	const char *name;
	size_t off, size;
} dq_stats[] = {
	DQ_STAT(bytes), DQ_STAT(files), DQ_STAT(points), DQ_STAT(unloaded_points),
	DQ_STAT(recovered_files), DQ_STAT(recovered_points), DQ_STAT(written), DQ_STAT(syncs),
	DQ_STAT(removed), DQ_STAT(evicted_files), DQ_STAT(evicted_points),
	DQ_STAT(corrupted_files), DQ_STAT(corrupted_points), DQ_STAT(write_errors),
};

static uint64_t dq_stat(const struct diskq_stats *st, const char *name)
{
	for (size_t i = 0; i < sizeof(dq_stats) / sizeof(dq_stats[0]); i++) {
		if (strcmp(dq_stats[i].name, name) != 0)
			continue;
		const char *at = (const char *)st + dq_stats[i].off;
		uint64_t v64;
		size_t vz;
		if (dq_stats[i].size == sizeof(v64)) {
			memcpy(&v64, at, sizeof(v64));
			return v64;
		}
		memcpy(&vz, at, sizeof(vz));
		return vz;
	}
	cr_assert_fail("no diskq_stats counter %s", name);
	return 0;
}

/* The queue's counters are as want says: "name=value ..." with the
 * struct diskq_stats field names; counters it does not name are not checked. */
static void expect_stats(const struct diskq *q, const char *want)
{
	struct diskq_stats st;
	char name[32];
	unsigned long long v;
	int used;

	diskq_get_stats(q, &st);
	const char *w = want;
	for (; sscanf(w, " %31[a-z_]=%llu%n", name, &v, &used) == 2; w += used)
		cr_assert_eq(dq_stat(&st, name), v, "%s (of %s)", name, want);
	cr_assert_eq(*w, '\0', "unparsed: %s", w);
}

/* The next payload the queue hands out, newest or oldest first, is seq's. */
static void expect_next(struct diskq *q, bool newest, uint64_t seq, const char *why)
{
	struct payload *p;
	cr_assert_eq(newest ? diskq_load_newest(q, &p) : diskq_load_oldest(q, &p), 0, "%s", why);
	cr_assert_eq(p->seq, seq, "%s", why);
	payload_free(p);
}

Test(diskq, write_reload_newest_first_files_stay_until_removed)
{
	struct diskq *q = empty_queue();
	for (uint64_t s = 1; s <= 3; s++)
		put(q, s, s == 2 ? "second body" : "body", (uint32_t)s * 10, true);
	/* loaded files are counted in memory, not in unloaded_points; one
	 * fdatasync per file, the directory not yet */
	expect_stats(q, "files=3 points=60 unloaded_points=0 written=3 syncs=3");
	cr_assert_eq(diskq_sync(q), 0);
	cr_assert_eq(diskq_sync(q), 0);
	/* one directory fsync for all three, none when nothing changed */
	expect_stats(q, "syncs=4");
	cr_assert_eq(count_files(".ddq"), 3);
	cr_assert_eq(count_files(".tmp"), 0);
	diskq_close(q);

	q = open_q(1 << 20, NULL);
	expect_stats(q, "recovered_files=3 recovered_points=60 unloaded_points=60");
	cr_assert_eq(diskq_next_seq(q), 4);
	struct payload *p;
	for (uint64_t s = 3; s >= 1; s--) {
		cr_assert_eq(diskq_load_newest(q, &p), 0);
		cr_assert_eq(p->seq, s);
		cr_assert_eq(p->npoints, s * 10);
		cr_assert_eq(p->ep, s % 2 ? FWD_EP_SERIES_V1 : FWD_EP_CHECKS);
		cr_assert_eq(p->enc, COMPRESS_ZSTD);
		cr_assert_eq(p->raw_len, 1000 + s);
		cr_assert_eq(p->created, 1700000000 + (int64_t)s);
		cr_assert_eq(p->attempts, 3);
		const char *want = s == 2 ? "second body" : "body";
		cr_assert_eq(p->len, strlen(want));
		cr_assert_eq(memcmp(p->data, want, p->len), 0);
		payload_free(p);
	}
	cr_assert_eq(diskq_load_newest(q, &p), -ENOENT);
	cr_assert_eq(count_files(".ddq"), 3, "loading never deletes");
	expect_stats(q, "unloaded_points=0");
	/* an unloaded payload is handed out again */
	diskq_unload(q, 2);
	expect_next(q, true, 2, "unloaded");
	/* acknowledged: the file goes */
	cr_assert_eq(diskq_remove(q, 3), 0);
	cr_assert_eq(diskq_remove(q, 3), -ENOENT);
	cr_assert_eq(count_files(".ddq"), 2);
	expect_stats(q, "files=2 points=30 removed=1");
	diskq_close(q);
	/* a crash between load and acknowledgement: still there after reopening */
	q = open_q(1 << 20, NULL);
	expect_stats(q, "recovered_files=2 unloaded_points=30");
	diskq_close(q);
	rm_rf();
}

static void flip_byte(const char *name, off_t at)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	int fd = open(path, O_RDWR);
	cr_assert_geq(fd, 0, "%s", path);
	unsigned char c;
	cr_assert_eq(pread(fd, &c, 1, at), 1);
	c ^= 0x40;
	cr_assert_eq(pwrite(fd, &c, 1, at), 1);
	close(fd);
}

Test(diskq, checksum_mismatch_detected_named_and_counted)
{
	struct diskq *q = fresh_queue(3, 7);
	/* corrupt one while closed (body byte) and one while open (header byte) */
	flip_byte("0000000000000001.ddq", 70);
	diskq_close(q);
	struct reports r = { 0 };
	q = open_q(1 << 20, &r);
	/* the points of a corrupt file found at open are unknown */
	expect_stats(q, "recovered_files=2 corrupted_files=1 corrupted_points=0");
	cr_assert_eq(r.n, 1);
	cr_assert_str_eq(r.lines[0], "0000000000000001.ddq: checksum mismatch");
	cr_assert_eq(count_files(".ddq"), 2);
	flip_byte("0000000000000003.ddq", 30);
	expect_next(q, true, 2, "corrupted newest file must be skipped");
	/* points known from the index when found while running */
	expect_stats(q, "corrupted_files=2 corrupted_points=7 files=1");
	cr_assert_eq(r.n, 2);
	cr_assert_str_eq(r.lines[1], "0000000000000003.ddq: checksum mismatch");
	cr_assert_eq(count_files(".ddq"), 1);
	diskq_close(q);
	rm_rf();
}

Test(diskq, other_entries_left_alone_and_named)
{
	mkdir_tmp();
	struct diskq *q = open_q(1 << 20, NULL);
	put(q, 1, "one", 1, false);
	diskq_close(q);
	char path[512];
	snprintf(path, sizeof(path), "%s/0000000000000002.ddq", dir);
	cr_assert_eq(mkdir(path, 0700), 0);
	snprintf(path, sizeof(path), "%s/README", dir);
	FILE *f = fopen(path, "w");
	fputs("keep me", f);
	fclose(f);
	snprintf(path, sizeof(path), "%s/0000000000000003.ddq", dir);
	cr_assert_eq(symlink("/etc/passwd", path), 0);
	struct reports r = { 0 };
	q = open_q(1 << 20, &r);
	/* foreign entries are not queue files */
	expect_stats(q, "recovered_files=1 corrupted_files=0");
	cr_assert_eq(r.n, 3, "each foreign entry named once");
	int dirs = 0, readme = 0, links = 0;
	for (int i = 0; i < r.n; i++) {
		dirs += strcmp(r.lines[i], "0000000000000002.ddq: not a regular file, left alone") == 0;
		links += strcmp(r.lines[i], "0000000000000003.ddq: not a regular file, left alone") == 0;
		readme += strcmp(r.lines[i], "README: not a queue file name, left alone") == 0;
	}
	cr_assert_eq(dirs + links + readme, 3);
	diskq_close(q);
	struct stat sb;
	snprintf(path, sizeof(path), "%s/0000000000000002.ddq", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert(S_ISDIR(sb.st_mode));
	snprintf(path, sizeof(path), "%s/README", dir);
	cr_assert_eq(stat(path, &sb), 0);
	snprintf(path, sizeof(path), "%s/0000000000000003.ddq", dir);
	cr_assert_eq(lstat(path, &sb), 0);
	rm_rf();
}

Test(diskq, decode_rejects_garbage)
{
	struct payload *p = mk(4, "abc", 1), *back = NULL;
	uint8_t *b;
	size_t n;
	cr_assert_eq(diskq_encode(p, &b, &n), 0);
	cr_assert_eq(diskq_decode(b, n, &back), 0);
	payload_free(back);
	cr_assert_eq(diskq_decode(b, n - 1, &back), -EBADMSG);
	cr_assert_eq(diskq_decode(b, 10, &back), -EBADMSG);
	for (size_t i = 0; i < n; i++) {
		b[i] ^= 1;
		cr_assert_eq(diskq_decode(b, n, &back), -EBADMSG, "flip at %zu accepted", i);
		b[i] ^= 1;
	}
	free(b);
	payload_free(p);
}

Test(diskq, cap_evicts_oldest_unloaded_only)
{
	mkdir_tmp();
	char body[1000];
	memset(body, 'z', sizeof(body) - 1);
	body[sizeof(body) - 1] = 0;
	/* each file is ~1080 bytes: a 4000-byte cap holds 3 */
	struct diskq *q = open_q(4000, NULL);
	for (uint64_t s = 1; s <= 10; s++) {
		put(q, s, body, 5, false);
		struct diskq_stats st;
		diskq_get_stats(q, &st);
		cr_assert_leq(st.bytes, 4000);
	}
	expect_stats(q, "files=3 evicted_files=7 evicted_points=35");
	cr_assert_eq(count_files(".ddq"), 3);
	expect_next(q, true, 10, "the newest kept");
	struct payload *p;
	/* 10 is loaded (in memory): 8 and 9 make room, 10 never does */
	put(q, 11, body, 5, true);
	put(q, 12, body, 5, true);
	p = mk(13, body, 5);
	cr_assert_eq(diskq_put(q, p, true), -ENOSPC, "loaded files are not evicted");
	payload_free(p);
	expect_stats(q, "evicted_files=9 write_errors=1 files=3");
	/* a payload alone over the cap is refused and counted */
	char *huge = malloc(5000);
	memset(huge, 'h', 4999);
	huge[4999] = 0;
	p = mk(14, huge, 9);
	cr_assert_eq(diskq_put(q, p, false), -EFBIG);
	payload_free(p);
	free(huge);
	expect_stats(q, "write_errors=2");
	diskq_close(q);
	rm_rf();
}

Test(diskq, modes_tmp_cleanup_and_write_errors)
{
	mkdir_tmp();
	struct diskq *q = open_q(1 << 20, NULL);
	struct stat sb;
	cr_assert_eq(stat(dir, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0700);
	put(q, 1, "x", 1, false);
	char path[512];
	snprintf(path, sizeof(path), "%s/0000000000000001.ddq", dir);
	cr_assert_eq(stat(path, &sb), 0);
	cr_assert_eq(sb.st_mode & 0777, 0600);
	diskq_close(q);
	/* a crash left a temp file: removed at open */
	snprintf(path, sizeof(path), "%s/0000000000000009.tmp", dir);
	FILE *f = fopen(path, "w");
	fputs("partial", f);
	fclose(f);
	q = open_q(1 << 20, NULL);
	cr_assert_eq(count_files(".tmp"), 0);
	/* the directory vanishes: writes fail and are counted, no crash */
	rm_rf();
	struct payload *p = mk(2, "y", 4);
	cr_assert_lt(diskq_put(q, p, true), 0);
	payload_free(p);
	expect_stats(q, "write_errors=1");
	diskq_close(q);
	/* unusable path: open fails with a message */
	char err[256];
	cr_assert_null(diskq_open("/proc/self/nope/q", 100, NULL, NULL, err, sizeof(err)));
	cr_assert(strstr(err, "/proc/self/nope/q") != NULL);
}

static void drained(void *arg)
{
	event_base_loopbreak(arg);
}

static int file_contains(const char *path, const char *needle)
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f);
	static char buf[1 << 20];
	size_t n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	size_t nl = strlen(needle);
	for (size_t i = 0; i + nl <= n; i++)
		if (memcmp(buf + i, needle, nl) == 0)
			return 1;
	return 0;
}

static void collect_stat(void *arg, const char *name, double v)
{
	double *out = arg;
	if (strcmp(name, "points_submitted") == 0)
		out[0] = v;
	else if (strcmp(name, "points_queued") == 0)
		out[1] = v;
	else if (strcmp(name, "points_dropped_shutdown") == 0)
		out[2] = v;
	else if (strcmp(name, "points_delivered") == 0)
		out[3] = v;
	else if (strcmp(name, "disk_write_seconds") == 0)
		out[4] = v;
}

/* Through the forwarder: intake unreachable, drain persists, no API key on disk. */
Test(diskq, forwarder_persists_without_api_key)
{
	mkdir_tmp();
	struct event_base *base = event_base_new();
	struct fwd_config cfg = {
		.api_key = "SECRETKEY-0123456789abcdef", .dd_url = "http://127.0.0.1:9",
		.timeout_s = 1, .retry_queue_max_bytes = 1 << 20, .storage_max_bytes = 1 << 20,
		.storage_path = dir, .backoff_base = 2, .backoff_factor = 2, .backoff_max = 64,
		.compressor = COMPRESS_NONE, .max_points_per_payload = 2,
	};
	char err[256];
	struct fwd *f = fwd_new(base, &cfg, err, sizeof(err));
	cr_assert_not_null(f, "%s", err);
	struct batch *b = batch_new();
	static const char *const tags[] = { "api_key:SECRETKEY-0123456789abcdef-not" };
	for (int i = 0; i < 5; i++) {
		struct series s = { .name = "m", .host = "h", .tags = tags, .ntags = 0,
				    .kind = SERIES_GAUGE, .ts = 10 * i, .value = i };
		batch_add_series(b, &s);
	}
	cr_assert_eq(fwd_submit(f, b, 1000), 0);
	batch_free(b);
	/* durable when fwd_submit returns, before anything was sent */
	cr_assert_eq(count_files(".ddq"), 3);
	struct fwd_stats st0;
	fwd_get_stats(f, &st0);
	cr_assert_eq(st0.disk_files, 3);
	cr_assert_eq(st0.points_queued, 5, "loaded files are not counted twice");
	cr_assert_eq(st0.disk_syncs, 4, "3 files + 1 directory fsync");
	fwd_drain(f, 0.5, drained, base);
	event_base_dispatch(base);
	struct fwd_stats st;
	fwd_get_stats(f, &st);
	cr_assert_eq(st.points_submitted, 5);
	cr_assert_eq(st.points_delivered, 0);
	cr_assert_eq(st.points_queued, 5, "all 5 points persisted");
	cr_assert_eq(st.disk_files, 3);
	cr_assert_geq(st.transport_errors, 1);
	uint64_t dropped = 0;
	for (int i = 0; i < FWD_DROP_COUNT; i++)
		dropped += st.points_dropped[i];
	cr_assert_eq(st.points_submitted + st.points_recovered,
		     st.points_delivered + dropped + st.points_queued);
	double named[5] = { -1, -1, -1, -1, -1 };
	stat_table_foreach(&fwd_stats_table, &st, collect_stat, named);
	cr_assert_eq(named[0], 5);
	cr_assert_eq(named[1], 5);
	cr_assert_eq(named[2], 0);
	cr_assert_eq(named[3], 0);
	/* kept in microseconds, shown in seconds; 4 fsyncs take some */
	cr_assert(st.disk_write_us > 0 && named[4] == (double)st.disk_write_us * 1e-6, "%g", named[4]);
	fwd_free(f);
	DIR *d = opendir(dir);
	struct dirent *de;
	int files = 0;
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.')
			continue;
		char path[600];
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		cr_assert_not(file_contains(path, "SECRETKEY"), "API key written to %s", path);
		struct stat sb;
		stat(path, &sb);
		cr_assert_eq(sb.st_mode & 0777, 0600);
		files++;
	}
	closedir(d);
	cr_assert_eq(files, 3);
	event_base_free(base);
	/* a new forwarder recovers them */
	base = event_base_new();
	f = fwd_new(base, &cfg, err, sizeof(err));
	fwd_get_stats(f, &st);
	cr_assert_eq(st.points_recovered, 5);
	cr_assert_eq(st.points_queued, 5);
	fwd_free(f);
	event_base_free(base);
	rm_rf();
}

Test(diskq, oldest_first_skips_corrupted_files)
{
	struct diskq *q = fresh_queue(5, 1);
	flip_byte("0000000000000001.ddq", 30);
	flip_byte("0000000000000002.ddq", 30);
	flip_byte("0000000000000005.ddq", 30);
	expect_next(q, false, 3, "the two corrupted oldest files are skipped");
	expect_next(q, false, 4, "oldest first");
	struct payload *p;
	cr_assert_eq(diskq_load_oldest(q, &p), -ENOENT);
	expect_stats(q, "corrupted_files=3 files=2");
	/* newest first skips several corrupted files in a row too */
	diskq_close(q);
	rm_rf();
	q = fresh_queue(4, 1);
	flip_byte("0000000000000004.ddq", 30);
	flip_byte("0000000000000003.ddq", 30);
	expect_next(q, true, 2, "the two corrupted newest files are skipped");
	expect_next(q, true, 1, "newest first");
	diskq_close(q);
	rm_rf();
}
