/*
 * diskq.h - the durable payload queue (forwarder_storage_max_size_in_bytes
 * > 0): every payload is on disk before it counts as queued, and its file is
 * removed only once the payload is acknowledged (2xx) or dropped with a
 * counted reason (docs/RELIABILITY.md F5, S2).
 *
 * One file per payload under `dir` (created 0700): "<seq:016x>.ddq", written
 * as "<name>.tmp" with mode 0600, fsync'ed and renamed; diskq_sync fsyncs the
 * directory once for all files put since the last call (the forwarder calls it
 * once per flush). File = fixed little-endian header (magic, CRC32 of
 * everything after the CRC field, endpoint, encoding, points, lengths,
 * created, endpoint path) + the compressed body. The API key is never
 * written (it is added to the request when sent).
 *
 * Each file is either "loaded" (its payload is also in the forwarder's memory
 * or in flight) or not (on disk only). Total bytes are capped: to make room
 * the oldest files that are not loaded are removed and counted as evicted.
 * Corrupted files (bad magic, size, CRC, name, unknown path) are counted,
 * reported through the callback with their name and reason, and removed;
 * stray *.tmp files from a crash are removed at open; anything else in the
 * directory (other names, directories, links) is left alone and reported once.
 *
 * Blocking file I/O on the caller's thread (the loop). No logging: problems
 * are counted, returned, or passed to the report callback.
 */
#ifndef DDMA_FORWARD_DISKQ_H
#define DDMA_FORWARD_DISKQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "forward/payload.h"

struct diskq_stats {
	size_t bytes;			/* on disk now (file sizes) */
	size_t files;
	uint64_t points;		/* records in the files now */
	uint64_t unloaded_points;	/* ... of which in files not loaded */
	uint64_t recovered_files;	/* found valid at open */
	uint64_t recovered_points;
	uint64_t written;		/* files written */
	uint64_t written_bytes;		/* bytes of the files written */
	uint64_t syncs;			/* fsync calls (files and directory) */
	double write_seconds;		/* wall time writing, syncing, renaming */
	uint64_t read;			/* files read back */
	uint64_t removed;		/* files removed after delivery or a drop */
	uint64_t evicted_files;		/* removed to stay under the cap */
	uint64_t evicted_points;
	uint64_t corrupted_files;	/* found invalid (open or read) */
	uint64_t corrupted_points;	/* known from the index (read), else 0 */
	uint64_t write_errors;		/* full disk, permissions, ... */
};

/* Called with a file name (relative to the directory) and what is wrong. */
typedef void (*diskq_report_fn)(void *arg, const char *name, const char *what);

/* Creates dir if needed, removes *.tmp, indexes and validates existing files
 * (counted as recovered, or corrupted and removed); they start not loaded.
 * report may be NULL. NULL on error with a message in err. */
struct diskq *diskq_open(const char *dir, size_t max_bytes, diskq_report_fn report, void *arg,
			 char *err, size_t errlen);
void diskq_close(struct diskq *q); /* keeps the files; accepts NULL */
void diskq_set_max_bytes(struct diskq *q, size_t max_bytes);

/* Writes p (not consumed) as a new file, marked loaded or not, evicting the
 * oldest files that are not loaded if needed. 0, or -errno when it could not
 * be stored (-EFBIG when p alone is over the cap, -ENOSPC when only loaded
 * files are left to evict); a failure is counted in write_errors. */
int diskq_put(struct diskq *q, const struct payload *p, bool loaded);
/* fsyncs the directory if files were added since the last call: only then
 * are the renames durable. 0 or -errno. */
int diskq_sync(struct diskq *q);
/* Reads and validates the newest file that is not loaded and marks it
 * loaded. 0 with *out set (caller owns it), -ENOENT when none. Corrupted
 * files are counted, reported, removed and skipped. */
int diskq_load_newest(struct diskq *q, struct payload **out);
/* The same for the oldest file that is not loaded (remote write's order). */
int diskq_load_oldest(struct diskq *q, struct payload **out);
/* The payload of file seq left memory but stays queued on disk. */
void diskq_unload(struct diskq *q, uint64_t seq);
/* Removes the file of seq (delivered or dropped and counted). -ENOENT if unknown. */
int diskq_remove(struct diskq *q, uint64_t seq);

void diskq_get_stats(const struct diskq *q, struct diskq_stats *out);
/* Largest seq on disk + 1 (0 if empty): the forwarder continues numbering from it. */
uint64_t diskq_next_seq(const struct diskq *q);

/* Serialisation, exposed for tests and fuzzing. */
int diskq_encode(const struct payload *p, uint8_t **out, size_t *outlen);
int diskq_decode(const uint8_t *data, size_t len, struct payload **out);

#endif
