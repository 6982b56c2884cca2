/*
 * compress.c - see compress.h. libdeflate compresses deflate/gzip, zlib
 * decompresses them (streaming, bounded); libzstd for zstd.
 */
#include "compress.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libdeflate.h>
#include <snappy-c.h>
#include <zlib.h>
#include <zstd.h>

const char *compress_encoding_name(enum compressor_kind k)
{
	switch (k) {
	case COMPRESS_ZLIB: return "deflate";
	case COMPRESS_GZIP: return "gzip";
	case COMPRESS_ZSTD: return "zstd";
	case COMPRESS_NONE: return NULL;
	case COMPRESS_SNAPPY: return "snappy";
	}
	return NULL;
}

static int concat(const struct compress_part *v, size_t nv, size_t n, uint8_t **out,
		  size_t *outlen)
{
	uint8_t *p = malloc(n + 1);
	if (!p)
		return -ENOMEM;
	size_t at = 0;
	for (size_t i = 0; i < nv; i++) {
		if (v[i].n)
			memcpy(p + at, v[i].p, v[i].n);
		at += v[i].n;
	}
	p[n] = 0;
	*out = p;
	*outlen = n;
	return 0;
}

/* Hands over p (cap bytes, len used), shrunk when that frees over half. */
static void give(uint8_t *p, size_t cap, size_t len, uint8_t **out, size_t *outlen)
{
	if (len < cap / 2) {
		uint8_t *q = realloc(p, len ? len : 1);
		if (q)
			p = q;
	}
	*out = p;
	*outlen = len;
}

/*
 * deflate and gzip with libdeflate's whole-buffer compressor: at level 6 it
 * needs about two thirds of the CPU of zlib's deflate for a few percent more
 * bytes (docs/PERFORMANCE.md). The wire format is zlib's: RFC 1950 framing
 * for "deflate", RFC 1952 for "gzip".
 *
 * A libdeflate compressor holds about 1 MB of tables, so one per level is made
 * on first use and kept (thread-local: the agent compresses on its main thread
 * only, from the flush callback through the forwarder's encoders; tests and
 * fuzzers are single-threaded; any other thread calling this gets its own).
 * They live until the process exits. Several parts are copied into one
 * temporary buffer first (libdeflate takes one input): ~20 ms per 140 MB;
 * after the first flush glibc serves these allocations from the heap.
 */
static _Thread_local struct libdeflate_compressor *compressors[10];

static struct libdeflate_compressor *compressor_for(int level)
{
	if (level <= 0 || level > 9)
		level = 6; /* zlib's Z_DEFAULT_COMPRESSION */
	if (!compressors[level])
		compressors[level] = libdeflate_alloc_compressor(level);
	return compressors[level];
}

/* The parts as one buffer: the only non-empty part itself (*tmp NULL), or a
 * new malloc'd copy of their concatenation in *tmp. NULL when out of memory. */
static const void *assemble(const struct compress_part *v, size_t nv, size_t n, uint8_t **tmp)
{
	const void *only = "";
	size_t nonempty = 0;
	*tmp = NULL;
	for (size_t i = 0; i < nv; i++)
		if (v[i].n) {
			only = v[i].p;
			nonempty++;
		}
	if (nonempty <= 1)
		return only;
	uint8_t *p = malloc(n);
	if (!p)
		return NULL;
	size_t at = 0;
	for (size_t i = 0; i < nv; i++) {
		if (v[i].n)
			memcpy(p + at, v[i].p, v[i].n);
		at += v[i].n;
	}
	*tmp = p;
	return p;
}

static int deflate_compress(bool gzip, int level, const struct compress_part *v, size_t nv,
			    size_t n, uint8_t **out, size_t *outlen)
{
	struct libdeflate_compressor *c = compressor_for(level);
	if (!c)
		return -ENOMEM;
	size_t cap = gzip ? libdeflate_gzip_compress_bound(c, n) : libdeflate_zlib_compress_bound(c, n);
	uint8_t *p = malloc(cap), *tmp = NULL;
	const void *in = p ? assemble(v, nv, n, &tmp) : NULL;
	if (!in) {
		free(p);
		return -ENOMEM;
	}
	size_t len = gzip ? libdeflate_gzip_compress(c, in, n, p, cap)
			  : libdeflate_zlib_compress(c, in, n, p, cap);
	free(tmp);
	if (len == 0) { /* no room: cannot happen within the bound */
		free(p);
		return -EINVAL;
	}
	give(p, cap, len, out, outlen);
	return 0;
}

static int zstd_compress(int level, const struct compress_part *v, size_t nv, size_t n,
			 uint8_t **out, size_t *outlen)
{
	ZSTD_CCtx *cc = ZSTD_createCCtx();
	size_t cap = ZSTD_compressBound(n) + 512;
	uint8_t *p = malloc(cap);
	if (!cc || !p) {
		ZSTD_freeCCtx(cc);
		free(p);
		return -ENOMEM;
	}
	size_t r = ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level > 0 ? level : 3);
	/* the size in the frame header, as ZSTD_compress writes it */
	if (!ZSTD_isError(r))
		r = ZSTD_CCtx_setPledgedSrcSize(cc, n);
	ZSTD_outBuffer ob = { p, cap, 0 };
	for (size_t i = 0; i < nv && !ZSTD_isError(r); i++) {
		ZSTD_inBuffer ib = { v[i].p, v[i].n, 0 };
		while (!ZSTD_isError(r) && ib.pos < ib.size && ob.pos < ob.size)
			r = ZSTD_compressStream2(cc, &ob, &ib, ZSTD_e_continue);
		if (!ZSTD_isError(r) && ib.pos < ib.size)
			r = (size_t)-1; /* out of room: cannot happen within the bound */
	}
	ZSTD_inBuffer end = { NULL, 0, 0 };
	size_t before = SIZE_MAX;
	if (!ZSTD_isError(r))
		r = 1; /* ZSTD_e_end at least once */
	while (!ZSTD_isError(r) && r != 0 && ob.pos != before) {
		before = ob.pos;
		r = ZSTD_compressStream2(cc, &ob, &end, ZSTD_e_end);
	}
	ZSTD_freeCCtx(cc);
	if (ZSTD_isError(r) || r != 0) {
		free(p);
		return -EINVAL;
	}
	give(p, cap, ob.pos, out, outlen);
	return 0;
}

/* Snappy's block format (what Prometheus remote write sends): one buffer in. */
static int snappy_compress_parts(const struct compress_part *parts, size_t nparts, size_t n,
				 uint8_t **out, size_t *outlen)
{
	uint8_t *raw = NULL;
	size_t rawlen = n;
	const void *in = nparts == 1 ? parts[0].p : NULL;
	if (nparts != 1) {
		int rc = concat(parts, nparts, n, &raw, &rawlen);
		if (rc < 0)
			return rc;
		in = raw;
	}
	size_t cap = snappy_max_compressed_length(n);
	uint8_t *p = malloc(cap + 1);
	int rc = p ? 0 : -ENOMEM;
	if (p && snappy_compress(in ? in : "", n, (char *)p, &cap) != SNAPPY_OK)
		rc = -EINVAL;
	free(raw);
	if (rc < 0) {
		free(p);
		return rc;
	}
	*out = p;
	*outlen = cap;
	return 0;
}

static int snappy_decompress(const void *in, size_t n, size_t max_out, uint8_t **out,
			     size_t *outlen)
{
	size_t len;
	if (snappy_uncompressed_length(in, n, &len) != SNAPPY_OK)
		return -EINVAL;
	if (len > max_out)
		return -EFBIG;
	uint8_t *p = malloc(len + 1);
	if (!p)
		return -ENOMEM;
	if (snappy_uncompress(in, n, (char *)p, &len) != SNAPPY_OK) {
		free(p);
		return -EINVAL;
	}
	p[len] = 0;
	*out = p;
	*outlen = len;
	return 0;
}

int compress_parts(enum compressor_kind k, int level, const struct compress_part *parts,
		   size_t nparts, uint8_t **out, size_t *outlen)
{
	size_t n = 0;
	for (size_t i = 0; i < nparts; i++) {
		if (parts[i].n > UINT32_MAX - n)
			return -EINVAL;
		n += parts[i].n;
	}
	switch (k) {
	case COMPRESS_NONE:
		return concat(parts, nparts, n, out, outlen);
	case COMPRESS_ZLIB:
		return deflate_compress(false, level, parts, nparts, n, out, outlen);
	case COMPRESS_GZIP:
		return deflate_compress(true, level, parts, nparts, n, out, outlen);
	case COMPRESS_ZSTD:
		return zstd_compress(level, parts, nparts, n, out, outlen);
	case COMPRESS_SNAPPY:
		return snappy_compress_parts(parts, nparts, n, out, outlen);
	}
	return -EINVAL;
}

int compress_buf(enum compressor_kind k, int level, const void *in, size_t n,
		 uint8_t **out, size_t *outlen)
{
	if (n > UINT32_MAX)
		return -EINVAL;
	struct compress_part one = { in, n };
	return compress_parts(k, level, &one, 1, out, outlen);
}

static int grow(uint8_t **p, size_t *cap, size_t need, size_t max_out)
{
	if (need <= *cap)
		return 0;
	size_t nc = *cap ? *cap : 4096;
	while (nc < need)
		nc *= 2;
	if (nc > max_out + 1)
		nc = max_out + 1;
	if (nc < need)
		return -EFBIG;
	uint8_t *q = realloc(*p, nc);
	if (!q)
		return -ENOMEM;
	*p = q;
	*cap = nc;
	return 0;
}

static int zlib_decompress(const void *in, size_t n, size_t max_out, uint8_t **out, size_t *outlen)
{
	z_stream zs;
	memset(&zs, 0, sizeof(zs));
	/* 32 + 15: accept zlib or gzip framing */
	if (inflateInit2(&zs, 47) != Z_OK)
		return -ENOMEM;
	uint8_t *p = NULL;
	size_t cap = 0, len = 0;
	int rc = Z_OK, err = 0;
	zs.next_in = (Bytef *)(uintptr_t)in;
	zs.avail_in = (uInt)n;
	while (rc != Z_STREAM_END) {
		if ((err = grow(&p, &cap, len + 4096 > max_out + 1 ? max_out + 1 : len + 4096, max_out)) < 0)
			break;
		if (len >= cap) {
			err = -EFBIG;
			break;
		}
		zs.next_out = p + len;
		zs.avail_out = (uInt)(cap - len);
		rc = inflate(&zs, Z_NO_FLUSH);
		len = zs.total_out;
		if (len > max_out) {
			err = -EFBIG;
			break;
		}
		if (rc != Z_OK && rc != Z_STREAM_END) {
			err = rc == Z_MEM_ERROR ? -ENOMEM : -EINVAL;
			break;
		}
		if (rc == Z_OK && zs.avail_in == 0 && zs.avail_out != 0) {
			err = -EINVAL; /* truncated */
			break;
		}
	}
	inflateEnd(&zs);
	if (!err && (err = grow(&p, &cap, len + 1, max_out + 1)) == 0) {
		p[len] = 0;
		*out = p;
		*outlen = len;
		return 0;
	}
	free(p);
	return err;
}

static int zstd_decompress(const void *in, size_t n, size_t max_out, uint8_t **out, size_t *outlen)
{
	ZSTD_DStream *ds = ZSTD_createDStream();
	if (!ds)
		return -ENOMEM;
	ZSTD_initDStream(ds);
	uint8_t *p = NULL;
	size_t cap = 0;
	ZSTD_inBuffer ib = { in, n, 0 };
	ZSTD_outBuffer ob = { NULL, 0, 0 };
	int err = 0;
	size_t r = 1;
	while (r != 0) {
		if (ob.pos == ob.size) {
			if ((err = grow(&p, &cap, ob.pos + 4096 > max_out + 1 ? max_out + 1 : ob.pos + 4096, max_out)) < 0)
				break;
			if (ob.pos >= cap) {
				err = -EFBIG;
				break;
			}
			ob.dst = p;
			ob.size = cap;
		}
		size_t before_in = ib.pos, before_out = ob.pos;
		r = ZSTD_decompressStream(ds, &ob, &ib);
		if (ZSTD_isError(r)) {
			err = -EINVAL;
			break;
		}
		if (ob.pos > max_out) {
			err = -EFBIG;
			break;
		}
		if (r != 0 && ib.pos == ib.size && ob.pos < ob.size &&
		    before_in == ib.pos && before_out == ob.pos) {
			err = -EINVAL; /* truncated frame */
			break;
		}
	}
	ZSTD_freeDStream(ds);
	if (!err && (err = grow(&p, &cap, ob.pos + 1, max_out + 1)) == 0) {
		p[ob.pos] = 0;
		*out = p;
		*outlen = ob.pos;
		return 0;
	}
	free(p);
	return err;
}

int decompress_buf(enum compressor_kind k, const void *in, size_t n, size_t max_out,
		   uint8_t **out, size_t *outlen)
{
	if (n > UINT32_MAX)
		return -EINVAL;
	switch (k) {
	case COMPRESS_NONE:
		if (n > max_out)
			return -EFBIG;
		return compress_buf(COMPRESS_NONE, 0, in, n, out, outlen);
	case COMPRESS_ZLIB:
	case COMPRESS_GZIP:
		return zlib_decompress(in, n, max_out, out, outlen);
	case COMPRESS_ZSTD:
		return zstd_decompress(in, n, max_out, out, outlen);
	case COMPRESS_SNAPPY:
		return snappy_decompress(in, n, max_out, out, outlen);
	}
	return -EINVAL;
}
