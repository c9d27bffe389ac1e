/*
 * Growable byte buffer with a read offset: the output queue of a client
 * connection and the accumulator for buffered upstream bodies. Owned by
 * whoever embeds it; sl_buf_free releases the storage.
 */
#ifndef SLUICE_BUF_H
#define SLUICE_BUF_H

#include <stddef.h>

typedef struct sl_buf {
    char *data;
    size_t len;   /* bytes written */
    size_t off;   /* bytes already consumed from the front */
    size_t cap;
} sl_buf;

/* 0 on success, -1 when memory runs out (the buffer is unchanged). */
int sl_buf_reserve(sl_buf *b, size_t extra);
int sl_buf_append(sl_buf *b, const void *p, size_t n);
int sl_buf_appendf(sl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline size_t sl_buf_pending(const sl_buf *b) { return b->len - b->off; }
/* Drop n consumed bytes from the front; compacts lazily. */
void sl_buf_consume(sl_buf *b, size_t n);
void sl_buf_clear(sl_buf *b);
void sl_buf_free(sl_buf *b);

#endif
