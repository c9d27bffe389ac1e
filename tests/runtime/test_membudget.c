/*
 * Tests for the process-wide memory budget (runtime/core/membudget.c): a
 * reservation fits or is refused whole, the limit can be changed (0 = no
 * limit) with bytes in use, and threads racing for the last bytes never
 * push the total past the limit nor lose a byte of accounting.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>

#include "core/membudget.h"

static int reset(void **state)
{
    assert_int_equal(sl_membudget_used(), 0);
    sl_membudget_set_limit(SL_MEMBUDGET_DEFAULT);
    return 0;
}

static void test_default_limit(void **state)
{
    assert_int_equal(sl_membudget_reserve(SL_MEMBUDGET_DEFAULT), 0);
    assert_int_equal(sl_membudget_used(), SL_MEMBUDGET_DEFAULT);
    assert_int_equal(sl_membudget_reserve(1), -1);
    sl_membudget_release(SL_MEMBUDGET_DEFAULT);
    assert_int_equal(sl_membudget_used(), 0);
}

static void test_refused_whole(void **state)
{
    sl_membudget_set_limit(1000);
    assert_int_equal(sl_membudget_reserve(600), 0);
    assert_int_equal(sl_membudget_reserve(500), -1); /* nothing charged */
    assert_int_equal(sl_membudget_used(), 600);
    assert_int_equal(sl_membudget_reserve(400), 0); /* exactly to the limit */
    assert_int_equal(sl_membudget_reserve(1), -1);
    sl_membudget_release(1000);
    assert_int_equal(sl_membudget_reserve(1001), -1);
    assert_int_equal(sl_membudget_reserve(SIZE_MAX), -1); /* no wrap-around */
    assert_int_equal(sl_membudget_used(), 0);
}

static void test_limit_changes(void **state)
{
    sl_membudget_set_limit(0); /* no limit, still counted */
    assert_int_equal(sl_membudget_reserve((size_t)1 << 40), 0);
    assert_int_equal(sl_membudget_used(), (size_t)1 << 40);
    sl_membudget_set_limit(4096); /* below what is in use: refuse until released */
    assert_int_equal(sl_membudget_reserve(1), -1);
    sl_membudget_release((size_t)1 << 40);
    assert_int_equal(sl_membudget_reserve(4096), 0);
    sl_membudget_release(4096);
}

#define THREADS 4
#define ROUNDS 20000
static atomic_int over_limit;

static void *racer(void *arg)
{
    size_t n = (size_t)(uintptr_t)arg;
    for (int i = 0; i < ROUNDS; i++) {
        if (sl_membudget_reserve(n) == 0) {
            if (sl_membudget_used() > 10000)
                atomic_store(&over_limit, 1);
            sl_membudget_release(n);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    sl_membudget_set_limit(10000);
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, racer, (void *)(uintptr_t)(3000 + i * 7)), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    assert_int_equal(atomic_load(&over_limit), 0);
    assert_int_equal(sl_membudget_used(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_default_limit, reset),
        cmocka_unit_test_setup(test_refused_whole, reset),
        cmocka_unit_test_setup(test_limit_changes, reset),
        cmocka_unit_test_setup(test_threads, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
