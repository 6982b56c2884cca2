/*
 * buf.h - growable byte buffer. Owns its memory.
 *
 * Append functions return 0 or -ENOMEM; after a failure the buffer keeps what
 * it had and `failed` stays set, so a writer can check once at the end.
 */
#ifndef DDMA_CORE_BUF_H
#define DDMA_CORE_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct buf {
	char *p;
	size_t len;
	size_t cap;
	bool failed;
};

void buf_init(struct buf *b);
void buf_done(struct buf *b);	/* frees; accepts NULL */
void buf_reset(struct buf *b);	/* len = 0, keeps capacity */
int buf_reserve(struct buf *b, size_t extra);
int buf_append(struct buf *b, const void *p, size_t n);
int buf_putc(struct buf *b, char c);
int buf_puts(struct buf *b, const char *s);
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Hands the memory to the caller (NUL-terminated); the buffer is empty after. */
char *buf_steal(struct buf *b, size_t *len);

#endif
