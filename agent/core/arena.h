/*
 * arena.h - bump allocator for many small objects freed together.
 *
 * Blocks are malloc'ed on demand (default 64 KiB; larger requests get their own
 * block). arena_free returns every block to the allocator. Not thread-safe.
 */
#ifndef DDMA_CORE_ARENA_H
#define DDMA_CORE_ARENA_H

#include <stddef.h>

#include "core/sv.h"

struct arena_block;

struct arena {
	struct arena_block *head;
	size_t block_size;
	size_t bytes; /* bytes handed out + block overhead, for accounting */
};

void arena_init(struct arena *a, size_t block_size);
/* Frees every block; the arena can be used again afterwards. Accepts NULL. */
void arena_done(struct arena *a);
/* Returns 16-byte aligned memory, or NULL when malloc fails. */
void *arena_alloc(struct arena *a, size_t n);
/* The same aligned to `align` (a power of two, at most 16): strings take 1,
 * pointer arrays 8, so that many small copies do not each round up to 16
 * bytes (a flush of 1M series copies ~4M strings). */
void *arena_alloc_align(struct arena *a, size_t n, size_t align);
/* Copies the view and NUL-terminates it (byte-aligned); NULL when malloc
 * fails. */
char *arena_strndup(struct arena *a, const char *s, size_t n);
static inline char *arena_svdup(struct arena *a, struct sv s)
{
	return arena_strndup(a, s.p ? s.p : "", s.n);
}

#endif
