/*
 * Memory for one compiler run. Every node, string and table the compiler
 * builds lives in one arena that is freed in a single call when the run
 * ends, so no module has to track ownership of what another produced. A
 * growable byte buffer (slc_buf) assembles generated files and messages.
 */
#ifndef SLC_MEM_H
#define SLC_MEM_H

#include <stdarg.h>
#include <stddef.h>

typedef struct slc_chunk slc_chunk;
typedef struct slc_arena {
    slc_chunk *head;
} slc_arena;

/* Zeroed memory. Out of memory aborts: the compiler is a short-lived batch
 * tool and there is nothing useful to do with half a spec. */
void *slc_alloc(slc_arena *a, size_t size);
char *slc_strndup(slc_arena *a, const char *s, size_t len);
char *slc_strdup(slc_arena *a, const char *s);
char *slc_aprintf(slc_arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void slc_arena_free(slc_arena *a);

typedef struct slc_buf {
    char *p;      /* always NUL-terminated once anything was written */
    size_t len;
    size_t cap;
} slc_buf;

void slc_buf_putc(slc_buf *b, char c);
void slc_buf_put(slc_buf *b, const char *s, size_t len);
void slc_buf_puts(slc_buf *b, const char *s);
void slc_buf_printf(slc_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void slc_buf_vprintf(slc_buf *b, const char *fmt, va_list ap);
void slc_buf_free(slc_buf *b);
/* `s` as a JSON string literal, quotes included. Bytes that are not valid
 * UTF-8 become U+FFFD so the output always parses. */
void slc_buf_json_string(slc_buf *b, const char *s, size_t len);

/* String -> index map for lookups by name in large specs. Keys are not
 * copied (they live in the arena); the first insert of a key wins. */
typedef struct slc_strmap {
    const char **keys;
    size_t *lens;
    size_t *vals;
    size_t cap, n;
} slc_strmap;

void slc_strmap_init(slc_strmap *m, size_t expected);
/* Returns the existing value when `key` is present, else inserts `val` and
 * returns SIZE_MAX. */
size_t slc_strmap_put(slc_strmap *m, const char *key, size_t len, size_t val);
/* The value of `key`, or SIZE_MAX. */
size_t slc_strmap_get(const slc_strmap *m, const char *key, size_t len);
void slc_strmap_free(slc_strmap *m);

#endif
