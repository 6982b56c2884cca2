/*
 * compress.h - request body compression: zlib-framed deflate ("deflate", the
 * default), gzip, zstd or none; and the matching bounded decompression (tests,
 * fuzzing, disk queue checks). deflate and gzip are compressed by libdeflate
 * and decompressed by zlib.
 *
 * Caller: forward/encode.c, on the agent's main thread (the flush); tests,
 * fuzzers and bench/flushcost. Pure functions on memory; no I/O, no logging.
 * Thread-safe: the deflate/gzip compressors (one per level, ~1 MB each) are
 * kept per calling thread until the process exits.
 */
#ifndef DDMA_FORWARD_COMPRESS_H
#define DDMA_FORWARD_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* COMPRESS_SNAPPY (block format) is for Prometheus remote write only. */
enum compressor_kind { COMPRESS_ZLIB, COMPRESS_GZIP, COMPRESS_ZSTD, COMPRESS_NONE, COMPRESS_SNAPPY };

/* Content-Encoding header value; NULL for COMPRESS_NONE. */
const char *compress_encoding_name(enum compressor_kind k);

/* Compresses in[0..n) into a new malloc'd buffer (*out, *outlen). level <= 0
 * picks the library default (6 for deflate/gzip, where levels outside 1..9
 * also mean 6; 3 for zstd). 0 or -ENOMEM / -EINVAL. */
int compress_buf(enum compressor_kind k, int level, const void *in, size_t n,
		 uint8_t **out, size_t *outlen);

/* The same for the concatenation of parts[0..nparts) (the encoders compress a
 * window of records between a prefix and a suffix): zstd streams the parts;
 * deflate/gzip copy them into one temporary buffer first when more than one
 * is non-empty (~20 ms per 140 MB). Decompresses to the same bytes as
 * compress_buf of the concatenation. The
 * body is trimmed to its size when that saves more than half of the bound. */
struct compress_part {
	const void *p;
	size_t n;
};
int compress_parts(enum compressor_kind k, int level, const struct compress_part *parts,
		   size_t nparts, uint8_t **out, size_t *outlen);

/* Decompresses into a new malloc'd buffer, NUL-terminated for convenience.
 * Output larger than max_out gives -EFBIG; malformed input -EINVAL. */
int decompress_buf(enum compressor_kind k, const void *in, size_t n, size_t max_out,
		   uint8_t **out, size_t *outlen);

#endif
