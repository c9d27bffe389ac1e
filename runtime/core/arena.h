/*
 * Per-request arena: one bump allocator whose lifetime is one HTTP exchange.
 * Everything a request needs on the hot path (header copies, URLs, response
 * heads) comes from here and is released by one sl_arena_reset(), so there
 * is no per-object free to forget and no fragmentation across requests.
 */
#ifndef SLUICE_ARENA_H
#define SLUICE_ARENA_H

#include <stddef.h>

typedef struct sl_arena_block sl_arena_block;
typedef struct sl_arena_cleanup sl_arena_cleanup;

typedef struct sl_arena {
    sl_arena_block *head;   /* current block; older blocks chained behind */
    size_t first_size;      /* size of the block kept across resets */
    sl_arena_cleanup *cleanups; /* run last-registered first */
} sl_arena;

void sl_arena_init(sl_arena *a, size_t first_size);
/* NULL only when malloc fails. Alignment is max_align_t. */
void *sl_arena_alloc(sl_arena *a, size_t n);
char *sl_arena_strndup(sl_arena *a, const char *s, size_t n);
/* The strings up to a NULL, joined, in the arena; NULL on allocation
 * failure. What a per-request URL or header line needs, without printf's
 * format parsing (a visible share of a request's instructions). */
char *sl_arena_cat(sl_arena *a, ...) __attribute__((sentinel));
/* printf into the arena; NULL on allocation failure. */
char *sl_arena_printf(sl_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Registers fn(arg) to run when the arena's request ends: heap members of
 * a request (curl lists, JSON values, translators) are released by the same
 * event that frees its arena memory, so no exit path can forget one. The
 * record lives in the arena itself. 0, or -1 when memory runs out (fn is
 * then NOT registered and the caller must release arg itself). */
int sl_arena_on_reset(sl_arena *a, void (*fn)(void *), void *arg);
/* Runs the registered cleanups now, newest first, and forgets them. For a
 * request that ends before its arena is reset (its response still queued). */
void sl_arena_run_cleanups(sl_arena *a);
/* Runs the cleanups, then frees every block but the first, which is kept
 * for the next request. */
void sl_arena_reset(sl_arena *a);
void sl_arena_free(sl_arena *a);

#endif
