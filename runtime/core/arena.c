/*
 * Bump allocator for per-request memory. The first block is kept across
 * resets so a keep-alive connection serving many small requests allocates
 * from the heap once; larger requests chain extra blocks that go on reset.
 */
#include "core/arena.h"

#include <stdalign.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sl_arena_block {
    sl_arena_block *next;
    size_t size;
    size_t used;
    alignas(max_align_t) unsigned char data[];
};

static sl_arena_block *block_new(size_t size)
{
    sl_arena_block *b = malloc(sizeof(*b) + size);
    if (!b)
        return NULL;
    b->next = NULL;
    b->size = size;
    b->used = 0;
    return b;
}

struct sl_arena_cleanup {
    sl_arena_cleanup *next;
    void (*fn)(void *);
    void *arg;
};

void sl_arena_init(sl_arena *a, size_t first_size)
{
    a->head = NULL;
    a->cleanups = NULL;
    a->first_size = first_size ? first_size : 4096;
}

void *sl_arena_alloc(sl_arena *a, size_t n)
{
    const size_t align = alignof(max_align_t);
    if (n == 0)
        n = 1;
    if (n > SIZE_MAX / 2)
        return NULL;
    sl_arena_block *b = a->head;
    if (b) {
        size_t off = (b->used + align - 1) & ~(align - 1);
        if (off <= b->size && b->size - off >= n) {
            b->used = off + n;
            return b->data + off;
        }
    }
    size_t size = a->head ? a->head->size * 2 : a->first_size;
    if (size < n)
        size = n;
    sl_arena_block *nb = block_new(size);
    if (!nb)
        return NULL;
    nb->next = a->head;
    a->head = nb;
    nb->used = n;
    return nb->data;
}

char *sl_arena_strndup(sl_arena *a, const char *s, size_t n)
{
    if (n >= SIZE_MAX / 2)
        return NULL; /* n + 1 would wrap or fail anyway */
    char *p = sl_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *sl_arena_cat(sl_arena *a, ...)
{
    va_list ap;
    size_t n = 0;
    va_start(ap, a);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *))
        n += strlen(s);
    va_end(ap);
    char *p = sl_arena_alloc(a, n + 1);
    if (!p)
        return NULL;
    char *w = p;
    va_start(ap, a);
    for (const char *s = va_arg(ap, const char *); s; s = va_arg(ap, const char *)) {
        size_t l = strlen(s);
        memcpy(w, s, l);
        w += l;
    }
    va_end(ap);
    *w = '\0';
    return p;
}

/* One vsnprintf when the text fits in the current block (the usual case:
 * short header lines), a second only when it does not: formatting twice,
 * once to measure, was a visible share of a request's CPU. */
char *sl_arena_printf(sl_arena *a, const char *fmt, ...)
{
    const size_t align = alignof(max_align_t);
    va_list ap;
    sl_arena_block *b = a->head;
    if (b) {
        size_t off = (b->used + align - 1) & ~(align - 1);
        if (off < b->size) {
            size_t room = b->size - off;
            va_start(ap, fmt);
            int n = vsnprintf((char *)b->data + off, room, fmt, ap);
            va_end(ap);
            if (n < 0)
                return NULL;
            if ((size_t)n < room) {
                b->used = off + (size_t)n + 1;
                return (char *)b->data + off;
            }
        }
    }
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NULL;
    char *p = sl_arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

int sl_arena_on_reset(sl_arena *a, void (*fn)(void *), void *arg)
{
    sl_arena_cleanup *c = sl_arena_alloc(a, sizeof *c);
    if (!c)
        return -1;
    c->fn = fn;
    c->arg = arg;
    c->next = a->cleanups;
    a->cleanups = c;
    return 0;
}

void sl_arena_run_cleanups(sl_arena *a)
{
    /* Unlink first: a cleanup may itself register or run cleanups. */
    while (a->cleanups) {
        sl_arena_cleanup *c = a->cleanups;
        a->cleanups = c->next;
        c->fn(c->arg);
    }
}

void sl_arena_reset(sl_arena *a)
{
    sl_arena_run_cleanups(a);
    sl_arena_block *b = a->head;
    if (!b)
        return;
    /* Keep the oldest (first-sized) block, free the rest. */
    while (b->next) {
        sl_arena_block *next = b->next;
        free(b);
        b = next;
    }
    /* The oldest block is larger than first_size when the first request
     * began with a big allocation; keeping it would pin that request's
     * memory for the connection's whole life. */
    if (b->size > a->first_size) {
        free(b);
        a->head = NULL;
        return;
    }
    b->used = 0;
    a->head = b;
}

void sl_arena_free(sl_arena *a)
{
    sl_arena_run_cleanups(a);
    sl_arena_block *b = a->head;
    while (b) {
        sl_arena_block *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
}
