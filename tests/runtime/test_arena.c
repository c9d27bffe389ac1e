/*
 * Tests for the per-request arena (runtime/core/arena.c): every pointer is
 * max_align_t aligned, allocations that outgrow a block chain new ones
 * without moving earlier data, a reset keeps exactly the first block for the
 * next request, sizes no allocator could satisfy fail with NULL instead
 * of wrapping around, and registered cleanups run exactly once, newest
 * first, before the memory they may point into is released.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdalign.h>
#include <stdio.h>
#include <string.h>

#include "core/arena.h"
#include "core/str.h"

/* The huge-size test asks malloc for more than AddressSanitizer allows by
 * default; the contract is "NULL when malloc fails", so let it fail. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

/* Test-only view of the private block header: the chain is what reset and
 * growth are about, and counting blocks is the only way to see it. */
struct sl_arena_block {
    sl_arena_block *next;
    size_t size;
    size_t used;
};

static size_t block_count(const sl_arena *a)
{
    size_t n = 0;
    for (const sl_arena_block *b = a->head; b; b = b->next)
        n++;
    return n;
}

static void test_alignment(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 256);
    for (size_t n = 1; n < 200; n += 7) {
        void *p = sl_arena_alloc(&a, n);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % alignof(max_align_t), 0);
        memset(p, 0xab, n);
    }
    /* Zero-byte requests still give distinct, aligned, usable pointers. */
    void *z1 = sl_arena_alloc(&a, 0), *z2 = sl_arena_alloc(&a, 0);
    assert_non_null(z1);
    assert_non_null(z2);
    assert_ptr_not_equal(z1, z2);
    assert_int_equal((uintptr_t)z2 % alignof(max_align_t), 0);
    sl_arena_free(&a);
}

static void test_default_first_size(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 0);
    assert_int_equal(a.first_size, 4096);
    assert_null(a.head); /* nothing allocated until first use */
    assert_non_null(sl_arena_alloc(&a, 10));
    assert_int_equal(a.head->size, 4096);
    sl_arena_free(&a);
    assert_null(a.head);
}

static void test_growth_keeps_data(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    char *ptrs[100];
    for (int i = 0; i < 100; i++) {
        ptrs[i] = sl_arena_alloc(&a, 50);
        assert_non_null(ptrs[i]);
        memset(ptrs[i], 'a' + i % 26, 50);
    }
    assert_true(block_count(&a) > 1);
    /* Earlier allocations never move or get overwritten by later ones. */
    for (int i = 0; i < 100; i++)
        for (int k = 0; k < 50; k++)
            assert_int_equal(ptrs[i][k], 'a' + i % 26);
    /* Blocks grow geometrically, so 100 allocations need few blocks. */
    assert_true(block_count(&a) <= 8);
    sl_arena_free(&a);
}

static void test_large_alloc_gets_own_block(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 64);
    char *small = sl_arena_alloc(&a, 16);
    memcpy(small, "0123456789abcde", 16);
    char *big = sl_arena_alloc(&a, 100000);
    assert_non_null(big);
    memset(big, 'x', 100000);
    assert_true(a.head->size >= 100000);
    assert_memory_equal(small, "0123456789abcde", 16);
    sl_arena_free(&a);
}

static void test_reset_keeps_first_block(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 256);
    char *first = sl_arena_alloc(&a, 8);
    sl_arena_block *first_block = a.head;
    for (int i = 0; i < 50; i++)
        assert_non_null(sl_arena_alloc(&a, 100));
    assert_true(block_count(&a) > 1);

    sl_arena_reset(&a);
    assert_int_equal(block_count(&a), 1);
    assert_ptr_equal(a.head, first_block);
    assert_int_equal(a.head->size, 256);
    assert_int_equal(a.head->used, 0);
    /* The next request starts at the beginning of the same block. */
    assert_ptr_equal(sl_arena_alloc(&a, 8), first);

    /* Reset of an empty arena and double reset are harmless. */
    sl_arena_reset(&a);
    sl_arena_reset(&a);
    sl_arena_free(&a);
    sl_arena empty;
    sl_arena_init(&empty, 64);
    sl_arena_reset(&empty);
    assert_null(empty.head);
    sl_arena_free(&empty);
}

static void test_reset_after_oversized_first_alloc(void **state)
{
    /* A request whose very first allocation is larger than first_size gets
     * a block of that size as its oldest block; keeping it across resets
     * would pin the largest request's memory for the connection's life.
     * The block kept for the next request is at most first_size. */
    sl_arena a;
    sl_arena_init(&a, 256);
    assert_non_null(sl_arena_alloc(&a, 1 << 20));
    assert_non_null(sl_arena_alloc(&a, 16));
    sl_arena_reset(&a);
    assert_true(a.head == NULL || a.head->size <= 256);
    char *p = sl_arena_strndup(&a, "next request", 12);
    assert_string_equal(p, "next request");
    assert_int_equal(a.head->size, 256);
    sl_arena_reset(&a);
    assert_int_equal(block_count(&a), 1);
    sl_arena_free(&a);
}

static void test_many_request_cycles(void **state)
{
    /* A keep-alive connection: many requests, one arena, bounded memory. */
    sl_arena a;
    sl_arena_init(&a, 512);
    for (int r = 0; r < 200; r++) {
        for (int i = 0; i <= r % 17; i++) {
            char *s = sl_arena_printf(&a, "req %d item %d", r, i);
            assert_non_null(s);
        }
        sl_arena_reset(&a);
        assert_int_equal(block_count(&a), 1);
        assert_int_equal(a.head->size, 512);
    }
    sl_arena_free(&a);
}

static void test_strndup(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 64);
    const char src[] = "hello, world";
    char *s = sl_arena_strndup(&a, src, 5);
    assert_string_equal(s, "hello");
    /* Embedded NULs are copied, not stopped at: n is the length. */
    char *t = sl_arena_strndup(&a, "a\0b", 3);
    assert_memory_equal(t, "a\0b", 4);
    char *e = sl_arena_strndup(&a, src, 0);
    assert_string_equal(e, "");
    /* Longer than a block. */
    char big[1000];
    memset(big, 'q', sizeof big);
    char *b = sl_arena_strndup(&a, big, sizeof big);
    assert_int_equal(strlen(b), sizeof big);
    sl_arena_free(&a);
}

static void test_printf(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 32);
    char *s = sl_arena_printf(&a, "%s/%d/%.*s", "model", 42, 3, "abcdef");
    assert_string_equal(s, "model/42/abc");
    char *empty = sl_arena_printf(&a, "%s", "");
    assert_string_equal(empty, "");
    /* Output longer than the first block. */
    char *long_s = sl_arena_printf(&a, "%0500d", 7);
    assert_int_equal(strlen(long_s), 500);
    assert_int_equal(long_s[499], '7');
    assert_string_equal(s, "model/42/abc");
    sl_arena_free(&a);
}

static void test_cat(void **state)
{
    (void)state;
    sl_arena a;
    sl_arena_init(&a, 64);
    assert_string_equal(sl_arena_cat(&a, "http://h:1", "/v1", "/chat/completions", (char *)NULL),
                        "http://h:1/v1/chat/completions");
    assert_string_equal(sl_arena_cat(&a, "", (char *)NULL), "");
    assert_string_equal(sl_arena_cat(&a, (char *)NULL), "");
    /* Past the first block: a new one, the old string intact. */
    char big[200];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    char *first = sl_arena_cat(&a, "a", "b", (char *)NULL);
    char *p = sl_arena_cat(&a, big, "!", (char *)NULL);
    assert_int_equal(strlen(p), sizeof big);
    assert_int_equal(p[sizeof big - 1], '!');
    assert_string_equal(first, "ab");
    sl_arena_free(&a);
}

/* sl_str_copy cuts like snprintf("%s") and takes NULL for "". */
static void test_str_copy(void **state)
{
    (void)state;
    char b[5];
    sl_str_copy(b, sizeof b, "abc");
    assert_string_equal(b, "abc");
    sl_str_copy(b, sizeof b, "abcdefgh");
    assert_string_equal(b, "abcd");
    sl_str_copy(b, sizeof b, NULL);
    assert_string_equal(b, "");
    sl_str_copy(b, 1, "xyz");
    assert_string_equal(b, "");
}

static void test_huge_sizes_fail_cleanly(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 64);
    char *keep = sl_arena_strndup(&a, "still here", 10);
    assert_null(sl_arena_alloc(&a, SIZE_MAX));
    assert_null(sl_arena_alloc(&a, SIZE_MAX - 64));
    assert_null(sl_arena_alloc(&a, SIZE_MAX / 2 + 1));
    /* Passes the overflow guard, then malloc itself must say no. */
    assert_null(sl_arena_alloc(&a, SIZE_MAX / 2));
    assert_null(sl_arena_strndup(&a, "x", SIZE_MAX));
    /* The arena is still usable and intact after the failures. */
    assert_string_equal(keep, "still here");
    assert_non_null(sl_arena_alloc(&a, 16));
    sl_arena_reset(&a);
    assert_int_equal(block_count(&a), 1);
    sl_arena_free(&a);
}

/* ---- cleanups ---- */

typedef struct trail {
    int order[16];
    int n;
    sl_arena *arena; /* for cleanups that act on their arena */
} trail;

typedef struct mark {
    trail *t;
    int id;
} mark;

static void note(void *arg)
{
    mark *m = arg;
    assert_true(m->t->n < 16);
    m->t->order[m->t->n++] = m->id;
}

static void test_cleanups_newest_first_on_reset(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    trail t = {.n = 0};
    mark m[3] = {{&t, 1}, {&t, 2}, {&t, 3}};
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_arena_on_reset(&a, note, &m[i]), 0);
    assert_int_equal(t.n, 0); /* nothing runs before the request ends */
    sl_arena_reset(&a);
    assert_int_equal(t.n, 3);
    assert_int_equal(t.order[0], 3);
    assert_int_equal(t.order[1], 2);
    assert_int_equal(t.order[2], 1);
    /* Forgotten once run: the next request starts with none. */
    sl_arena_reset(&a);
    sl_arena_free(&a);
    assert_int_equal(t.n, 3);
}

static void test_cleanups_run_on_free(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    trail t = {.n = 0};
    mark m = {&t, 7};
    assert_int_equal(sl_arena_on_reset(&a, note, &m), 0);
    sl_arena_free(&a);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.order[0], 7);
}

static void test_run_cleanups_once(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    trail t = {.n = 0};
    mark m[2] = {{&t, 1}, {&t, 2}};
    sl_arena_on_reset(&a, note, &m[0]);
    sl_arena_on_reset(&a, note, &m[1]);
    /* A request that ends before its arena is reset. */
    sl_arena_run_cleanups(&a);
    assert_int_equal(t.n, 2);
    sl_arena_run_cleanups(&a);
    sl_arena_reset(&a);
    sl_arena_free(&a);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.order[0], 2);
    assert_int_equal(t.order[1], 1);
}

/* A cleanup's argument may live in the arena itself, even in a block
 * chained after the first: cleanups run before any block is freed. */
typedef struct in_arena {
    trail *t;
    char text[200];
} in_arena;

static void check_text(void *arg)
{
    in_arena *x = arg;
    for (size_t i = 0; i < sizeof x->text; i++)
        assert_int_equal(x->text[i], 'k');
    x->t->order[x->t->n++] = 42;
}

static void test_cleanup_argument_in_arena(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 64);
    trail t = {.n = 0};
    for (int round = 0; round < 3; round++) {
        assert_non_null(sl_arena_alloc(&a, 48));
        in_arena *x = sl_arena_alloc(&a, sizeof *x);
        assert_non_null(x);
        assert_true(block_count(&a) > 1);
        x->t = &t;
        memset(x->text, 'k', sizeof x->text);
        assert_int_equal(sl_arena_on_reset(&a, check_text, x), 0);
        if (round < 2)
            sl_arena_reset(&a);
        else
            sl_arena_free(&a);
        assert_int_equal(t.n, round + 1);
    }
}

/* Cleanups that register or run cleanups while cleanups run. */
static void register_more(void *arg)
{
    mark *m = arg;
    static mark late;
    late = (mark){m->t, 99};
    note(m);
    assert_int_equal(sl_arena_on_reset(m->t->arena, note, &late), 0);
}

static void run_nested(void *arg)
{
    mark *m = arg;
    note(m);
    sl_arena_run_cleanups(m->t->arena);
}

static void test_cleanups_reentrant(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 128);
    trail t = {.n = 0, .arena = &a};
    mark m[3] = {{&t, 1}, {&t, 2}, {&t, 3}};
    sl_arena_on_reset(&a, note, &m[0]);
    sl_arena_on_reset(&a, register_more, &m[1]);
    sl_arena_reset(&a);
    /* Registered during the run: runs in the same pass, once. */
    assert_int_equal(t.n, 3);
    assert_int_equal(t.order[0], 2);
    assert_int_equal(t.order[1], 99);
    assert_int_equal(t.order[2], 1);

    t.n = 0;
    sl_arena_on_reset(&a, note, &m[0]);
    sl_arena_on_reset(&a, note, &m[1]);
    sl_arena_on_reset(&a, run_nested, &m[2]);
    sl_arena_free(&a);
    /* The nested run takes the rest; nothing runs twice. */
    assert_int_equal(t.n, 3);
    assert_int_equal(t.order[0], 3);
    assert_int_equal(t.order[1], 2);
    assert_int_equal(t.order[2], 1);
}

static void test_failed_registration_never_runs(void **state)
{
    /* A first block no malloc can give: the record cannot be stored, so
     * the caller is told and must release the argument itself. */
    sl_arena a;
    sl_arena_init(&a, SIZE_MAX / 2);
    trail t = {.n = 0};
    mark m = {&t, 5};
    assert_int_equal(sl_arena_on_reset(&a, note, &m), -1);
    sl_arena_reset(&a);
    sl_arena_run_cleanups(&a);
    sl_arena_free(&a);
    assert_int_equal(t.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alignment),
        cmocka_unit_test(test_cat),
        cmocka_unit_test(test_str_copy),
        cmocka_unit_test(test_default_first_size),
        cmocka_unit_test(test_growth_keeps_data),
        cmocka_unit_test(test_large_alloc_gets_own_block),
        cmocka_unit_test(test_reset_keeps_first_block),
        cmocka_unit_test(test_reset_after_oversized_first_alloc),
        cmocka_unit_test(test_many_request_cycles),
        cmocka_unit_test(test_strndup),
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_huge_sizes_fail_cleanly),
        cmocka_unit_test(test_cleanups_newest_first_on_reset),
        cmocka_unit_test(test_cleanups_run_on_free),
        cmocka_unit_test(test_run_cleanups_once),
        cmocka_unit_test(test_cleanup_argument_in_arena),
        cmocka_unit_test(test_cleanups_reentrant),
        cmocka_unit_test(test_failed_registration_never_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
