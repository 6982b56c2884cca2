/*
 * diskq.c - see diskq.h. The index (seq, file size, points, loaded) is kept in
 * memory sorted by seq, so the cap, "newest first" and removal by seq need no
 * directory scans.
 */
#include "forward/diskq.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <zlib.h>

#include "core/search.h"

#define MAGIC "DDMAQ001"
#define HDR_FIXED 66
#define MAX_PATH_LEN 64
#define FORMAT_VERSION 1
#define MAX_FILE_BYTES (256u << 20)

struct entry {
	uint64_t seq;
	size_t size;
	uint32_t npoints;
	bool loaded;
};

struct diskq {
	char *dir;
	int dirfd;
	size_t max_bytes;
	struct entry *ent;	/* sorted by seq */
	size_t n, cap;
	bool dirty;		/* renames not yet made durable by diskq_sync */
	diskq_report_fn report;
	void *report_arg;
	struct diskq_stats st;
};

static void put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static void put_u32(uint8_t *p, uint32_t v) { for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static void put_u64(uint8_t *p, uint64_t v) { for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i)); }
static uint16_t get_u16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }

static uint32_t get_u32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
	return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

int diskq_encode(const struct payload *p, uint8_t **out, size_t *outlen)
{
	const struct fwd_endpoint_info *info = fwd_endpoint_info(p->ep);
	if (!info)
		return -EINVAL;
	size_t plen = strlen(info->path);
	size_t total = HDR_FIXED + plen + p->len;
	uint8_t *b = malloc(total);
	if (!b)
		return -ENOMEM;
	memcpy(b, MAGIC, 8);
	put_u32(b + 12, FORMAT_VERSION);
	put_u32(b + 16, (uint32_t)p->ep);
	put_u32(b + 20, (uint32_t)p->enc);
	put_u32(b + 24, p->npoints);
	put_u32(b + 28, p->attempts);
	put_u64(b + 32, p->seq);
	put_u64(b + 40, (uint64_t)p->created);
	put_u64(b + 48, p->raw_len);
	put_u64(b + 56, p->len);
	put_u16(b + 64, (uint16_t)plen);
	memcpy(b + HDR_FIXED, info->path, plen);
	if (p->len)
		memcpy(b + HDR_FIXED + plen, p->data, p->len);
	uLong crc = crc32(0L, Z_NULL, 0);
	crc = crc32(crc, b + 12, (uInt)(total - 12));
	put_u32(b + 8, (uint32_t)crc);
	*out = b;
	*outlen = total;
	return 0;
}

/* Decodes one file; on failure *why names the problem. */
static int decode_why(const uint8_t *b, size_t len, struct payload **out, const char **why)
{
	*why = NULL;
	if (len < HDR_FIXED || len > MAX_FILE_BYTES)
		*why = len < HDR_FIXED ? "truncated header" : "larger than 256 MiB";
	else if (memcmp(b, MAGIC, 8) != 0)
		*why = "bad magic";
	else if ((uint32_t)crc32(crc32(0L, Z_NULL, 0), b + 12, (uInt)(len - 12)) != get_u32(b + 8))
		*why = "checksum mismatch";
	else if (get_u32(b + 12) != FORMAT_VERSION)
		*why = "unknown format version";
	if (*why)
		return -EBADMSG;
	size_t plen = get_u16(b + 64);
	uint64_t blen = get_u64(b + 56);
	if (plen > MAX_PATH_LEN || HDR_FIXED + plen > len || blen != len - HDR_FIXED - plen) {
		*why = "length mismatch";
		return -EBADMSG;
	}
	char path[MAX_PATH_LEN + 1];
	memcpy(path, b + HDR_FIXED, plen);
	path[plen] = 0;
	int ep = fwd_endpoint_by_path(path);
	uint32_t enc = get_u32(b + 20);
	if (ep < 0 || (uint32_t)ep != get_u32(b + 16) || enc > COMPRESS_SNAPPY) {
		*why = "unknown endpoint or encoding";
		return -EBADMSG;
	}
	struct payload *p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->data = malloc(blen ? blen : 1);
	if (!p->data) {
		free(p);
		return -ENOMEM;
	}
	memcpy(p->data, b + HDR_FIXED + plen, blen);
	p->len = blen;
	p->ep = (enum fwd_endpoint)ep;
	p->enc = (enum compressor_kind)enc;
	p->npoints = get_u32(b + 24);
	p->attempts = get_u32(b + 28);
	p->seq = get_u64(b + 32);
	p->created = (int64_t)get_u64(b + 40);
	p->raw_len = get_u64(b + 48);
	*out = p;
	return 0;
}

int diskq_decode(const uint8_t *b, size_t len, struct payload **out)
{
	const char *why;
	return decode_why(b, len, out, &why);
}

/* ---- files ---- */

static int read_all(int dirfd, const char *name, uint8_t **out, size_t *outlen, const char **why)
{
	int fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0) {
		*why = strerror(errno);
		return -errno;
	}
	struct stat st;
	int rc = 0;
	uint8_t *b = NULL;
	if (fstat(fd, &st) < 0)
		rc = -errno;
	else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size > MAX_FILE_BYTES)
		rc = -EBADMSG;
	else if (!(b = malloc((size_t)st.st_size + 1)))
		rc = -ENOMEM;
	*why = rc == -EBADMSG ? "not a regular file or too large" : rc < 0 ? strerror(-rc) : NULL;
	size_t got = 0;
	while (rc == 0 && got < (size_t)st.st_size) {
		ssize_t r = read(fd, b + got, (size_t)st.st_size - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			rc = r < 0 ? -errno : -EBADMSG;
			*why = r < 0 ? strerror(errno) : "shorter than its size";
		} else {
			got += (size_t)r;
		}
	}
	close(fd);
	if (rc < 0) {
		free(b);
		return rc;
	}
	*out = b;
	*outlen = got;
	return 0;
}

static int write_all(int fd, const uint8_t *b, size_t n)
{
	while (n) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static void file_name(char *out, size_t n, uint64_t seq, const char *suffix)
{
	snprintf(out, n, "%016llx.%s", (unsigned long long)seq, suffix);
}

static void report(struct diskq *q, const char *name, const char *what)
{
	if (q->report)
		q->report(q->report_arg, name, what);
}

static int index_add(struct diskq *q, uint64_t seq, size_t size, uint32_t npoints, bool loaded)
{
	if (q->n == q->cap) {
		size_t nc = q->cap ? q->cap * 2 : 64;
		struct entry *e = realloc(q->ent, nc * sizeof(*e));
		if (!e)
			return -ENOMEM;
		q->ent = e;
		q->cap = nc;
	}
	size_t i = q->n;
	while (i > 0 && q->ent[i - 1].seq > seq) {
		q->ent[i] = q->ent[i - 1];
		i--;
	}
	q->ent[i] = (struct entry){ seq, size, npoints, loaded };
	q->n++;
	q->st.files++;
	q->st.bytes += size;
	q->st.points += npoints;
	if (!loaded)
		q->st.unloaded_points += npoints;
	return 0;
}

DEFINE_LOWER_BOUND(entry_lower_bound, struct entry, uint64_t, seq)

/* Index of seq, or -1. */
static long index_find(const struct diskq *q, uint64_t seq)
{
	size_t lo = entry_lower_bound(q->ent, q->n, seq);
	return lo < q->n && q->ent[lo].seq == seq ? (long)lo : -1;
}

static void set_loaded(struct diskq *q, size_t i, bool loaded)
{
	if (q->ent[i].loaded == loaded)
		return;
	q->ent[i].loaded = loaded;
	if (loaded)
		q->st.unloaded_points -= q->ent[i].npoints;
	else
		q->st.unloaded_points += q->ent[i].npoints;
}

static void index_remove(struct diskq *q, size_t i)
{
	set_loaded(q, i, true);
	q->st.files--;
	q->st.bytes -= q->ent[i].size;
	q->st.points -= q->ent[i].npoints;
	memmove(&q->ent[i], &q->ent[i + 1], (q->n - i - 1) * sizeof(*q->ent));
	q->n--;
}

static void unlink_seq(struct diskq *q, uint64_t seq)
{
	char name[64];
	file_name(name, sizeof(name), seq, "ddq");
	unlinkat(q->dirfd, name, 0);
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t nl = strlen(name), sl = strlen(suffix);
	return nl > sl && strcmp(name + nl - sl, suffix) == 0;
}

/* A name this queue writes: 16 lowercase hex digits + suffix. */
static bool queue_name(const char *name, const char *suffix)
{
	if (strlen(name) != 16 + strlen(suffix) || strcmp(name + 16, suffix) != 0)
		return false;
	for (int i = 0; i < 16; i++)
		if (!strchr("0123456789abcdef", name[i]))
			return false;
	return true;
}

/* The payload in queue file `name` (its size in *len), whose sequence number
 * must be the one the name says. On failure *out is NULL and *why says why
 * (NULL when out of memory or unknown). */
static int read_file(struct diskq *q, const char *name, struct payload **out, size_t *len,
		     const char **why)
{
	uint8_t *b = NULL;
	struct payload *p = NULL;
	*len = 0;
	*why = NULL;
	int rc = read_all(q->dirfd, name, &b, len, why);
	if (rc == 0)
		rc = decode_why(b, *len, &p, why);
	free(b);
	char want[64];
	if (rc == 0) {
		file_name(want, sizeof(want), p->seq, "ddq");
		if (strcmp(want, name) != 0) {
			payload_free(p);
			p = NULL;
			rc = -EBADMSG;
			*why = "sequence number does not match the file name";
		}
	}
	*out = p;
	return rc;
}

/* Validates one existing directory entry at open. */
static void scan_one(struct diskq *q, const char *name)
{
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return;
	struct stat st;
	bool regular = fstatat(q->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
	if (!regular || !(queue_name(name, ".ddq") || queue_name(name, ".tmp"))) {
		report(q, name, regular ? "not a queue file name, left alone"
					: "not a regular file, left alone");
		return;
	}
	if (has_suffix(name, ".tmp")) {
		unlinkat(q->dirfd, name, 0);
		return;
	}
	struct payload *p;
	size_t len;
	const char *why;
	int rc = read_file(q, name, &p, &len, &why);
	if (rc == 0 && index_add(q, p->seq, len, p->npoints, false) == 0) {
		q->st.recovered_files++;
		q->st.recovered_points += p->npoints;
	} else if (rc != -ENOMEM) {
		q->st.corrupted_files++;
		report(q, name, why ? why : "unreadable");
		unlinkat(q->dirfd, name, 0);
	}
	payload_free(p);
}

static int mkdir_p(const char *dir)
{
	char tmp[4096];
	if (strlen(dir) >= sizeof(tmp))
		return -ENAMETOOLONG;
	strcpy(tmp, dir);
	for (char *s = tmp + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = 0;
		if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(tmp, 0700) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

struct diskq *diskq_open(const char *dir, size_t max_bytes, diskq_report_fn report_fn, void *arg,
			 char *err, size_t errlen)
{
	int rc = mkdir_p(dir);
	if (rc < 0) {
		snprintf(err, errlen, "%s: cannot create: %s", dir, strerror(-rc));
		return NULL;
	}
	struct diskq *q = calloc(1, sizeof(*q));
	if (!q || !(q->dir = strdup(dir))) {
		free(q);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	q->max_bytes = max_bytes;
	q->report = report_fn;
	q->report_arg = arg;
	q->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (q->dirfd >= 0 && faccessat(q->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
		snprintf(err, errlen, "%s: not writable: %s", dir, strerror(errno));
		diskq_close(q);
		return NULL;
	}
	DIR *d = q->dirfd >= 0 ? fdopendir(dup(q->dirfd)) : NULL;
	if (!d) {
		snprintf(err, errlen, "%s: cannot open: %s", dir, strerror(errno));
		diskq_close(q);
		return NULL;
	}
	struct dirent *de;
	while ((de = readdir(d)))
		scan_one(q, de->d_name);
	closedir(d);
	return q;
}

void diskq_close(struct diskq *q)
{
	if (!q)
		return;
	if (q->dirfd >= 0) {
		diskq_sync(q);
		close(q->dirfd);
	}
	free(q->ent);
	free(q->dir);
	free(q);
}

void diskq_set_max_bytes(struct diskq *q, size_t max_bytes)
{
	q->max_bytes = max_bytes;
}

/* Removes the oldest files that are not loaded until need more bytes fit;
 * false when the loaded files alone leave no room. */
static bool evict_for(struct diskq *q, size_t need)
{
	size_t i = 0;
	while (q->st.bytes + need > q->max_bytes) {
		while (i < q->n && q->ent[i].loaded)
			i++;
		if (i == q->n)
			return false;
		q->st.evicted_files++;
		q->st.evicted_points += q->ent[i].npoints;
		unlink_seq(q, q->ent[i].seq);
		index_remove(q, i);
	}
	return true;
}

static double mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int write_file_timed(struct diskq *q, uint64_t seq, const uint8_t *b, size_t len);

static int write_file(struct diskq *q, uint64_t seq, const uint8_t *b, size_t len)
{
	double t0 = mono();
	int rc = write_file_timed(q, seq, b, len);
	q->st.write_seconds += mono() - t0;
	return rc;
}

static int write_file_timed(struct diskq *q, uint64_t seq, const uint8_t *b, size_t len)
{
	char tmp[64], fin[64];
	file_name(tmp, sizeof(tmp), seq, "tmp");
	file_name(fin, sizeof(fin), seq, "ddq");
	int fd = openat(q->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -errno;
	int rc = write_all(fd, b, len);
	if (rc == 0 && fdatasync(fd) < 0)
		rc = -errno;
	q->st.syncs++;
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	if (rc == 0 && renameat(q->dirfd, tmp, q->dirfd, fin) < 0)
		rc = -errno;
	if (rc < 0) {
		unlinkat(q->dirfd, tmp, 0);
		return rc;
	}
	q->dirty = true;
	return 0;
}

int diskq_put(struct diskq *q, const struct payload *p, bool loaded)
{
	uint8_t *b = NULL;
	size_t len = 0;
	int rc = diskq_encode(p, &b, &len);
	if (rc == 0 && len > q->max_bytes)
		rc = -EFBIG;
	if (rc == 0 && !evict_for(q, len))
		rc = -ENOSPC;
	if (rc == 0)
		rc = write_file(q, p->seq, b, len);
	if (rc == 0 && (rc = index_add(q, p->seq, len, p->npoints, loaded)) < 0)
		unlink_seq(q, p->seq);
	free(b);
	if (rc < 0) {
		q->st.write_errors++;
		return rc;
	}
	q->st.written++;
	q->st.written_bytes += len;
	return 0;
}

int diskq_sync(struct diskq *q)
{
	if (!q->dirty)
		return 0;
	q->dirty = false;
	q->st.syncs++;
	double t0 = mono();
	int rc = fsync(q->dirfd) < 0 ? -errno : 0;
	q->st.write_seconds += mono() - t0;
	return rc;
}

/* Loads the newest (or oldest) file that is not loaded; see diskq.h. */
static int load_one(struct diskq *q, struct payload **out, bool oldest)
{
	for (size_t k = 0, i; k < q->n; k++) {
		i = oldest ? k : q->n - 1 - k;
		struct entry e = q->ent[i];
		if (e.loaded)
			continue;
		char name[64];
		file_name(name, sizeof(name), e.seq, "ddq");
		struct payload *p;
		size_t len;
		const char *why;
		int rc = read_file(q, name, &p, &len, &why);
		if (rc == -ENOMEM)
			return rc;
		if (rc == 0) {
			set_loaded(q, i, true);
			q->st.read++;
			*out = p;
			return 0;
		}
		q->st.corrupted_files++;
		q->st.corrupted_points += e.npoints;
		report(q, name, why ? why : "unreadable");
		unlinkat(q->dirfd, name, 0);
		index_remove(q, i);
		k--;	/* one entry fewer: the next candidate has the same distance from its end */
	}
	return -ENOENT;
}

int diskq_load_newest(struct diskq *q, struct payload **out)
{
	return load_one(q, out, false);
}

int diskq_load_oldest(struct diskq *q, struct payload **out)
{
	return load_one(q, out, true);
}

void diskq_unload(struct diskq *q, uint64_t seq)
{
	long i = index_find(q, seq);
	if (i >= 0)
		set_loaded(q, (size_t)i, false);
}

int diskq_remove(struct diskq *q, uint64_t seq)
{
	long i = index_find(q, seq);
	if (i < 0)
		return -ENOENT;
	unlink_seq(q, seq);
	index_remove(q, (size_t)i);
	q->st.removed++;
	return 0;
}

void diskq_get_stats(const struct diskq *q, struct diskq_stats *out)
{
	*out = q->st;
}

uint64_t diskq_next_seq(const struct diskq *q)
{
	return q->n ? q->ent[q->n - 1].seq + 1 : 0;
}
