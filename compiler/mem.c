/*
 * Arena and growable buffer used by every compiler module; see mem.h for
 * why the compiler allocates this way.
 */
#include "mem.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct slc_chunk {
    slc_chunk *next;
    size_t used, cap;
    _Alignas(16) unsigned char data[];
};

enum { SLC_CHUNK_MIN = 64 * 1024 };

void *slc_alloc(slc_arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    slc_chunk *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > SLC_CHUNK_MIN ? size : SLC_CHUNK_MIN;
        c = malloc(sizeof *c + cap);
        if (!c)
            abort();
        c->used = 0;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += size;
    memset(p, 0, size);
    return p;
}

char *slc_strndup(slc_arena *a, const char *s, size_t len)
{
    char *p = slc_alloc(a, len + 1);
    if (len)
        memcpy(p, s, len);
    p[len] = '\0';
    return p;
}

char *slc_strdup(slc_arena *a, const char *s)
{
    return slc_strndup(a, s, strlen(s));
}

char *slc_aprintf(slc_arena *a, const char *fmt, ...)
{
    slc_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    slc_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    char *p = slc_strndup(a, b.p ? b.p : "", b.len);
    slc_buf_free(&b);
    return p;
}

void slc_arena_free(slc_arena *a)
{
    slc_chunk *c = a->head;
    while (c) {
        slc_chunk *next = c->next;
        free(c);
        c = next;
    }
    a->head = NULL;
}

static void reserve(slc_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p)
        abort();
    b->p = p;
    b->cap = cap;
}

void slc_buf_put(slc_buf *b, const char *s, size_t len)
{
    reserve(b, len);
    if (len)
        memcpy(b->p + b->len, s, len);
    b->len += len;
    b->p[b->len] = '\0';
}

void slc_buf_putc(slc_buf *b, char c)
{
    slc_buf_put(b, &c, 1);
}

void slc_buf_puts(slc_buf *b, const char *s)
{
    slc_buf_put(b, s, strlen(s));
}

void slc_buf_vprintf(slc_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    reserve(b, (size_t)n);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void slc_buf_printf(slc_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    slc_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

void slc_buf_free(slc_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}
