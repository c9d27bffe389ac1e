/*
 * Arena and growable buffer used by every compiler module; see mem.h for
 * why the compiler allocates this way.
 */
#include "mem.h"

#include <stdbool.h>
#include <stdint.h>

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

void slc_buf_json_string(slc_buf *b, const char *s, size_t len)
{
    slc_buf_putc(b, '"');
    size_t i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            slc_buf_putc(b, '\\');
            slc_buf_putc(b, (char)c);
            i++;
        } else if (c == '\n') {
            slc_buf_puts(b, "\\n");
            i++;
        } else if (c == '\t') {
            slc_buf_puts(b, "\\t");
            i++;
        } else if (c < 0x20 || c == 0x7f) {
            slc_buf_printf(b, "\\u%04x", c);
            i++;
        } else if (c < 0x80) {
            slc_buf_putc(b, (char)c);
            i++;
        } else {
            size_t n = (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3
                     : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
            bool ok = n && i + n <= len;
            for (size_t k = 1; ok && k < n; k++)
                ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok) {
                slc_buf_put(b, s + i, n);
                i += n;
            } else {
                slc_buf_puts(b, "\\ufffd");
                i++;
            }
        }
    }
    slc_buf_putc(b, '"');
}

static uint64_t hash_bytes(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

void slc_strmap_init(slc_strmap *m, size_t expected)
{
    size_t cap = 16;
    while (cap < expected * 2)
        cap *= 2;
    m->keys = calloc(cap, sizeof *m->keys);
    m->lens = calloc(cap, sizeof *m->lens);
    m->vals = calloc(cap, sizeof *m->vals);
    if (!m->keys || !m->lens || !m->vals)
        abort();
    m->cap = cap;
    m->n = 0;
}

static size_t slot(const slc_strmap *m, const char *key, size_t len)
{
    size_t i = (size_t)hash_bytes(key, len) & (m->cap - 1);
    while (m->keys[i] && !(m->lens[i] == len && memcmp(m->keys[i], key, len) == 0))
        i = (i + 1) & (m->cap - 1);
    return i;
}

size_t slc_strmap_put(slc_strmap *m, const char *key, size_t len, size_t val)
{
    if ((m->n + 1) * 2 > m->cap) {
        slc_strmap old = *m;
        slc_strmap_init(m, old.cap);
        for (size_t i = 0; i < old.cap; i++)
            if (old.keys[i])
                slc_strmap_put(m, old.keys[i], old.lens[i], old.vals[i]);
        slc_strmap_free(&old);
    }
    size_t i = slot(m, key, len);
    if (m->keys[i])
        return m->vals[i];
    m->keys[i] = key;
    m->lens[i] = len;
    m->vals[i] = val;
    m->n++;
    return SIZE_MAX;
}

size_t slc_strmap_get(const slc_strmap *m, const char *key, size_t len)
{
    if (!m->cap)
        return SIZE_MAX;
    size_t i = slot(m, key, len);
    return m->keys[i] ? m->vals[i] : SIZE_MAX;
}

void slc_strmap_free(slc_strmap *m)
{
    free(m->keys);
    free(m->lens);
    free(m->vals);
    memset(m, 0, sizeof *m);
}
