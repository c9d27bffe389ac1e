/*
 * Tests for the growable byte buffer (runtime/core/buf.c): appends keep
 * every byte in order across growth, consumption from the front and lazy
 * compaction never lose or reorder pending bytes, and impossible sizes fail
 * with -1 leaving the buffer as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "core/buf.h"

/* A request no allocator can satisfy must come back as -1, which under
 * AddressSanitizer needs malloc to be allowed to return NULL. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static void test_zero_init_and_append(void **state)
{
    sl_buf b = {0};
    assert_int_equal(sl_buf_pending(&b), 0);
    assert_int_equal(sl_buf_append(&b, "hello", 5), 0);
    assert_int_equal(sl_buf_append(&b, " world", 6), 0);
    assert_int_equal(sl_buf_pending(&b), 11);
    assert_memory_equal(b.data + b.off, "hello world", 11);
    /* Zero-length appends are no-ops, even with a NULL pointer. */
    assert_int_equal(sl_buf_append(&b, NULL, 0), 0);
    assert_int_equal(sl_buf_pending(&b), 11);
    sl_buf_free(&b);
    assert_null(b.data);
    assert_int_equal(b.cap, 0);
    assert_int_equal(b.len, 0);
    /* Free of an empty buffer, twice, is fine. */
    sl_buf_free(&b);
}

static void test_growth_preserves_bytes(void **state)
{
    sl_buf b = {0};
    unsigned char expect[70000];
    for (size_t i = 0; i < sizeof expect; i++)
        expect[i] = (unsigned char)(i * 7 + 3);
    /* Odd-sized pieces so appends straddle every capacity doubling. */
    size_t off = 0;
    while (off < sizeof expect) {
        size_t piece = 1 + off % 997;
        if (piece > sizeof expect - off)
            piece = sizeof expect - off;
        assert_int_equal(sl_buf_append(&b, expect + off, piece), 0);
        off += piece;
    }
    assert_int_equal(sl_buf_pending(&b), sizeof expect);
    assert_true(b.cap >= sizeof expect);
    assert_memory_equal(b.data, expect, sizeof expect);
    sl_buf_free(&b);
}

static void test_consume_and_reuse(void **state)
{
    sl_buf b = {0};
    assert_int_equal(sl_buf_append(&b, "abcdefghij", 10), 0);
    sl_buf_consume(&b, 3);
    assert_int_equal(sl_buf_pending(&b), 7);
    assert_memory_equal(b.data + b.off, "defghij", 7);
    /* Consuming everything rewinds, so the space is reused from the start. */
    sl_buf_consume(&b, 7);
    assert_int_equal(sl_buf_pending(&b), 0);
    assert_int_equal(b.off, 0);
    assert_int_equal(b.len, 0);
    /* Over-consuming is clamped rather than underflowing pending. */
    assert_int_equal(sl_buf_append(&b, "xy", 2), 0);
    sl_buf_consume(&b, 100);
    assert_int_equal(sl_buf_pending(&b), 0);
    sl_buf_free(&b);
}

static void test_compaction_on_reserve(void **state)
{
    sl_buf b = {0};
    char fill[1024];
    memset(fill, 'f', sizeof fill);
    assert_int_equal(sl_buf_append(&b, fill, 1000), 0);
    size_t cap = b.cap;
    /* Free 900 bytes at the front; appending 500 fits after compaction
     * without growing, and the pending bytes stay in order. */
    memcpy(b.data + 900, "0123456789", 10);
    sl_buf_consume(&b, 900);
    assert_int_equal(sl_buf_append(&b, fill, 500), 0);
    assert_int_equal(b.cap, cap);
    assert_int_equal(b.off, 0);
    assert_int_equal(sl_buf_pending(&b), 600);
    assert_memory_equal(b.data, "0123456789", 10);
    sl_buf_free(&b);
}

static void test_queue_simulation(void **state)
{
    /* A connection's output queue: interleaved appends and partial sends;
     * the bytes drained must be exactly the bytes queued, in order. */
    sl_buf b = {0};
    unsigned char out[50000];
    size_t produced = 0, drained = 0;
    unsigned seed = 12345;
    while (drained < sizeof out) {
        seed = seed * 1103515245u + 12345u;
        size_t w = (seed >> 16) % 300;
        if (produced + w > sizeof out)
            w = sizeof out - produced;
        unsigned char tmp[300];
        for (size_t i = 0; i < w; i++)
            tmp[i] = (unsigned char)((produced + i) % 251);
        assert_int_equal(sl_buf_append(&b, tmp, w), 0);
        produced += w;
        seed = seed * 1103515245u + 12345u;
        size_t r = (seed >> 16) % 400;
        if (r > sl_buf_pending(&b))
            r = sl_buf_pending(&b);
        if (produced == sizeof out)
            r = sl_buf_pending(&b);
        memcpy(out + drained, b.data + b.off, r);
        sl_buf_consume(&b, r);
        drained += r;
    }
    for (size_t i = 0; i < sizeof out; i++)
        assert_int_equal(out[i], i % 251);
    /* Lazy compaction bounds the storage to a small multiple of the
     * largest backlog, not the total traffic. */
    assert_true(b.cap <= 4096);
    sl_buf_free(&b);
}

static void test_appendf(void **state)
{
    sl_buf b = {0};
    assert_int_equal(sl_buf_appendf(&b, "HTTP/1.1 %d %s\r\n", 200, "OK"), 0);
    assert_int_equal(sl_buf_appendf(&b, "Content-Length: %zu\r\n", (size_t)12345), 0);
    const char expect[] = "HTTP/1.1 200 OK\r\nContent-Length: 12345\r\n";
    assert_int_equal(sl_buf_pending(&b), sizeof expect - 1);
    assert_memory_equal(b.data, expect, sizeof expect - 1);
    /* Formatted output larger than the current capacity. */
    assert_int_equal(sl_buf_appendf(&b, "%05000d", 1), 0);
    assert_int_equal(sl_buf_pending(&b), sizeof expect - 1 + 5000);
    assert_int_equal(b.data[b.len - 1], '1');
    assert_int_equal(b.data[b.len - 2], '0');
    /* An empty format appends nothing. */
    size_t before = b.len;
    assert_int_equal(sl_buf_appendf(&b, "%s", ""), 0);
    assert_int_equal(b.len, before);
    sl_buf_free(&b);
}

static void test_huge_reserve_fails_unchanged(void **state)
{
    sl_buf b = {0};
    assert_int_equal(sl_buf_append(&b, "keep", 4), 0);
    char *data = b.data;
    size_t cap = b.cap;
    assert_int_equal(sl_buf_reserve(&b, SIZE_MAX), -1);
    assert_int_equal(sl_buf_reserve(&b, SIZE_MAX / 2), -1);
    assert_int_equal(sl_buf_append(&b, "x", SIZE_MAX), -1);
    /* Passes the overflow guard; realloc itself fails. */
    assert_int_equal(sl_buf_reserve(&b, SIZE_MAX / 4), -1);
    assert_ptr_equal(b.data, data);
    assert_int_equal(b.cap, cap);
    assert_int_equal(sl_buf_pending(&b), 4);
    assert_memory_equal(b.data, "keep", 4);
    /* Reserving what is already there is free. */
    assert_int_equal(sl_buf_reserve(&b, 0), 0);
    assert_int_equal(sl_buf_reserve(&b, cap - 4), 0);
    assert_int_equal(b.cap, cap);
    sl_buf_free(&b);
}

static void test_clear(void **state)
{
    sl_buf b = {0};
    assert_int_equal(sl_buf_append(&b, "abc", 3), 0);
    sl_buf_consume(&b, 1);
    size_t cap = b.cap;
    sl_buf_clear(&b);
    assert_int_equal(sl_buf_pending(&b), 0);
    assert_int_equal(b.cap, cap); /* storage kept for reuse */
    assert_int_equal(sl_buf_append(&b, "z", 1), 0);
    assert_memory_equal(b.data, "z", 1);
    sl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_zero_init_and_append),
        cmocka_unit_test(test_growth_preserves_bytes),
        cmocka_unit_test(test_consume_and_reuse),
        cmocka_unit_test(test_compaction_on_reserve),
        cmocka_unit_test(test_queue_simulation),
        cmocka_unit_test(test_appendf),
        cmocka_unit_test(test_huge_reserve_fails_unchanged),
        cmocka_unit_test(test_clear),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
