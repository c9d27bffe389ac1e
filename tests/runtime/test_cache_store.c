/*
 * Tests for the cache store (runtime/cache/store.c) with an injected
 * clock: hits and misses, replacement, TTL expiry (and that expired
 * answers stop holding bytes), LRU eviction by the byte cap with recency
 * refreshed by hits, the largest entry, an entry held by a reader
 * surviving its eviction, and the semantic index (nearest by cosine within
 * one context, the threshold, vectors counted in the byte cap).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "cache/cache.h"

static void key(uint8_t k[SL_CACHE_KEY_LEN], int n)
{
    memset(k, 0, SL_CACHE_KEY_LEN);
    snprintf((char *)k, SL_CACHE_KEY_LEN, "key-%d", n);
    k[8] = (uint8_t)(n * 37); /* spread over buckets */
}

static int put(sl_cache_store *s, int n, size_t len, int64_t now)
{
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, n);
    char data[4096];
    memset(data, 'a' + n % 26, sizeof data);
    sl_cache_meta m = {.status = 200, .provider = 1, .cost_micros = n};
    return sl_cache_put(s, k, &m, data, len, NULL, now);
}

/* 1 when n is stored (a lookup: counts a hit or a miss). */
static int has(sl_cache_store *s, int n, int64_t now)
{
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, n);
    const sl_cache_entry *e = sl_cache_get(s, k, now);
    if (e) {
        assert_int_equal(sl_cache_entry_meta(e)->cost_micros, n);
        sl_cache_entry_release(e);
    }
    return e != NULL;
}

static void test_hit_miss_replace(void **state)
{
    (void)state;
    sl_cache_store *s = sl_cache_store_new(1 << 20, 60000);
    assert_false(has(s, 1, 0));
    sl_cache_count_miss(s);
    assert_int_equal(put(s, 1, 100, 0), 0);
    assert_true(has(s, 1, 10));
    assert_int_equal(put(s, 1, 200, 20), 0);
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, 1);
    const sl_cache_entry *e = sl_cache_get(s, k, 30);
    size_t len;
    sl_cache_entry_data(e, &len);
    assert_int_equal(len, 200);
    sl_cache_entry_release(e);
    sl_cache_stats st;
    sl_cache_store_stats(s, 30, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 1); /* counted by the caller */
    assert_int_equal(st.entries, 1);
    sl_cache_store_free(s);
}

static void test_ttl(void **state)
{
    (void)state;
    sl_cache_store *s = sl_cache_store_new(1 << 20, 1000);
    put(s, 1, 100, 0);
    put(s, 2, 100, 500);
    assert_true(has(s, 1, 999));
    assert_false(has(s, 1, 1000)); /* a ttl of 1000 ms: gone at 1000 */
    assert_true(has(s, 2, 1499));
    sl_cache_stats st;
    sl_cache_store_stats(s, 1500, &st); /* expiry frees the bytes without a lookup */
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_int_equal(st.evicted_ttl, 2);
    assert_int_equal(st.evicted_lru, 0);
    sl_cache_store_free(s);
}

static void test_lru(void **state)
{
    (void)state;
    sl_cache_store *s = sl_cache_store_new(16384, 60000);
    size_t max = sl_cache_store_max_entry(s);
    assert_true(max > 3000 && max < 4096);
    assert_int_equal(put(s, 99, max + 1, 0), -1); /* a quarter of the store at most */
    for (int i = 0; i < 4; i++)
        assert_int_equal(put(s, i, 3000, i), 0);
    sl_cache_stats st;
    sl_cache_store_stats(s, 10, &st);
    assert_true(st.entries <= 4 && st.bytes <= 16384);
    int held = (int)st.entries;
    /* Touch the oldest still held so it becomes the most recent. */
    int oldest = 4 - held;
    assert_true(has(s, oldest, 20));
    assert_int_equal(put(s, 10, 3000, 30), 0);
    assert_true(has(s, oldest, 40));        /* refreshed by the hit: kept */
    assert_false(has(s, oldest + 1, 40));   /* the least recently used went */
    assert_true(has(s, 10, 40));
    sl_cache_store_stats(s, 40, &st);
    assert_true(st.evicted_lru >= 1);
    assert_true(st.bytes <= 16384);
    sl_cache_store_free(s);
}

static void test_held_entry_survives_eviction(void **state)
{
    (void)state;
    sl_cache_store *s = sl_cache_store_new(16384, 1000);
    put(s, 1, 3000, 0);
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, 1);
    const sl_cache_entry *e = sl_cache_get(s, k, 0);
    assert_non_null(e);
    for (int i = 2; i < 10; i++) /* evicts entry 1 */
        put(s, i, 3000, 0);
    assert_false(has(s, 1, 0));
    size_t len;
    const char *d = sl_cache_entry_data(e, &len);
    assert_int_equal(len, 3000);
    assert_int_equal(d[0], 'b'); /* still readable (ASan would catch a use after free) */
    sl_cache_entry_release(e);
    sl_cache_store_free(s);
}

static int put_vec(sl_cache_store *s, int n, const char *ctx, const float *v, uint32_t dim)
{
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, n);
    sl_cache_vec vec = {.v = v, .dim = dim};
    memcpy(vec.ctx, ctx, strlen(ctx));
    sl_cache_meta m = {.status = 200, .cost_micros = n};
    return sl_cache_put(s, k, &m, "answer", 6, &vec, 0);
}

static void test_nearest(void **state)
{
    (void)state;
    sl_cache_store *s = sl_cache_store_new(1 << 20, 60000);
    const float a[4] = {1, 0, 0, 0}, b[4] = {0, 2, 0, 0}, c[4] = {0.6f, 0.8f, 0, 0};
    assert_int_equal(put_vec(s, 1, "ctx-one", a, 4), 0);
    assert_int_equal(put_vec(s, 2, "ctx-one", b, 4), 0); /* stored at unit length */
    assert_int_equal(put_vec(s, 3, "ctx-two", a, 4), 0);
    sl_cache_vec q = {.v = c, .dim = 4};
    memcpy(q.ctx, "ctx-one", 7);
    double sim = 0;
    uint8_t k[SL_CACHE_KEY_LEN];
    key(k, 99);
    assert_null(sl_cache_get(s, k, 0)); /* the exact miss the stage counts first */
    const sl_cache_entry *e = sl_cache_nearest(s, &q, 0.7, 0, &sim);
    assert_non_null(e);
    assert_int_equal(sl_cache_entry_meta(e)->cost_micros, 2); /* 0.8 beats 0.6 */
    assert_true(sim > 0.799 && sim < 0.801);
    sl_cache_entry_release(e);
    assert_null(sl_cache_nearest(s, &q, 0.9, 0, &sim)); /* below the threshold */
    const float far[4] = {0, 0, 1, 0};
    q.v = far;
    assert_null(sl_cache_nearest(s, &q, 0.1, 0, &sim));
    memcpy(q.ctx, "ctx-two", 7); /* another context sees only its own */
    q.v = c;
    e = sl_cache_nearest(s, &q, 0.5, 0, &sim);
    assert_non_null(e);
    assert_int_equal(sl_cache_entry_meta(e)->cost_micros, 3);
    sl_cache_entry_release(e);
    sl_cache_stats st;
    sl_cache_store_stats(s, 0, &st);
    assert_int_equal(st.hits, 2);
    assert_int_equal(st.misses, 0);
    /* A vector too large for a quarter of the store is refused. */
    sl_cache_store *small = sl_cache_store_new(4096, 60000);
    static float big[1024];
    big[0] = 1;
    assert_int_equal(put_vec(small, 1, "x", big, 1024), -1);
    assert_int_equal(put_vec(small, 1, "x", big, 8), 0);
    sl_cache_store_free(small);
    sl_cache_store_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_miss_replace),
        cmocka_unit_test(test_ttl),
        cmocka_unit_test(test_lru),
        cmocka_unit_test(test_held_entry_survives_eviction),
        cmocka_unit_test(test_nearest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
