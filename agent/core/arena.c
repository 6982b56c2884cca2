/*
 * arena.c - see arena.h.
 */
#include "core/arena.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct arena_block {
	struct arena_block *next;
	size_t size;
	size_t used;
	_Alignas(16) unsigned char data[];
};

void arena_init(struct arena *a, size_t block_size)
{
	a->head = NULL;
	a->block_size = block_size ? block_size : 64 * 1024;
	a->bytes = 0;
}

void arena_done(struct arena *a)
{
	if (!a)
		return;
	struct arena_block *b = a->head;
	while (b) {
		struct arena_block *next = b->next;
		free(b);
		b = next;
	}
	a->head = NULL;
	a->bytes = 0;
}

void *arena_alloc_align(struct arena *a, size_t n, size_t align)
{
	if (n == 0)
		n = 1;
	struct arena_block *b = a->head;
	size_t pad = b ? (0 - b->used) & (align - 1) : 0;
	if (!b || b->size - b->used < pad || b->size - b->used - pad < n) {
		size_t size = n > a->block_size / 4 ? n : a->block_size;
		struct arena_block *nb = malloc(sizeof(*nb) + size);
		if (!nb)
			return NULL;
		nb->size = size;
		nb->used = 0;
		a->bytes += sizeof(*nb) + size;
		if (b && size == n && b->size - b->used >= 256) {
			/* A big one-off: keep filling the current block. */
			nb->next = b->next;
			b->next = nb;
			nb->used = n;
			return nb->data;
		}
		nb->next = b;
		a->head = nb;
		b = nb;
		pad = 0;
	}
	void *p = b->data + b->used + pad;
	b->used += pad + n;
	return p;
}

void *arena_alloc(struct arena *a, size_t n)
{
	return arena_alloc_align(a, n, 16);
}

char *arena_strndup(struct arena *a, const char *s, size_t n)
{
	char *p = arena_alloc_align(a, n + 1, 1);
	if (!p)
		return NULL;
	if (n)
		memcpy(p, s, n);
	p[n] = '\0';
	return p;
}
