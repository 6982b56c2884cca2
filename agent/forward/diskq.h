/*
 * diskq.h - the optional on-disk spill of the retry queue
 * (forwarder_storage_max_size_in_bytes > 0), so payloads survive a restart
 * or a crash (RELIABILITY.md F5, S2).
 *
 * One file per payload under `dir` (created 0700): "<seq:016x>.ddq", written
 * as "<name>.tmp" with mode 0600, fsync'ed, renamed, directory fsync'ed.
 * File = fixed little-endian header (magic, CRC32 of everything after the
 * CRC field, endpoint, encoding, points, lengths, created, endpoint path) +
 * the compressed body. The API key is never written (it is added to the
 * request when sent). Total bytes are capped: the oldest files are removed
 * and counted. Corrupted files (bad magic, size, CRC, unknown path) are
 * counted and removed; stray *.tmp files from a crash are removed at open.
 *
 * Blocking file I/O on the caller's thread (the loop; payloads are small and
 * this only runs during outages). No logging: errors are counted/returned.
 */
#ifndef DDMA_FORWARD_DISKQ_H
#define DDMA_FORWARD_DISKQ_H

#include <stddef.h>
#include <stdint.h>

#include "forward/payload.h"

struct diskq_stats {
	size_t bytes;			/* on disk now (file sizes) */
	size_t files;
	uint64_t points;		/* records in the files now */
	uint64_t recovered_files;	/* found valid at open */
	uint64_t recovered_points;
	uint64_t written;		/* files written */
	uint64_t read;			/* files read back */
	uint64_t evicted_files;		/* removed to stay under the cap */
	uint64_t evicted_points;
	uint64_t corrupted_files;	/* found invalid (open or read) */
	uint64_t corrupted_points;	/* when the header was readable, else 0 */
	uint64_t write_errors;		/* full disk, permissions, ... */
	uint64_t write_error_points;
};

/* Creates dir if needed, removes *.tmp, indexes and validates existing files
 * (counted as recovered or corrupted). NULL on error with a message in err. */
struct diskq *diskq_open(const char *dir, size_t max_bytes, char *err, size_t errlen);
void diskq_close(struct diskq *q); /* keeps the files; accepts NULL */
void diskq_set_max_bytes(struct diskq *q, size_t max_bytes);

/* Writes p (not consumed) as a new file, evicting the oldest files first if
 * needed. 0, or -errno when it could not be stored (counted in write_errors;
 * -EFBIG when p alone is over the cap). Evictions are reported through
 * evicted_files/evicted_points. */
int diskq_put(struct diskq *q, const struct payload *p);
/* Reads, validates and removes the newest file. 0 with *out set (caller owns
 * it), -ENOENT when empty. Corrupted files are counted, removed and skipped. */
int diskq_pop_newest(struct diskq *q, struct payload **out);

void diskq_get_stats(const struct diskq *q, struct diskq_stats *out);
/* Largest seq on disk + 1 (0 if empty): the forwarder continues numbering from it. */
uint64_t diskq_next_seq(const struct diskq *q);

/* Serialisation, exposed for tests and fuzzing. */
int diskq_encode(const struct payload *p, uint8_t **out, size_t *outlen);
int diskq_decode(const uint8_t *data, size_t len, struct payload **out);

#endif
