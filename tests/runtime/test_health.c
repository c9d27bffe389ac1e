/*
 * Unit tests for runtime/route/health.c: the per-target circuit breaker.
 * Time is passed in explicitly, so the state machine is tested without
 * sleeping: closed -> open after N consecutive failures -> half-open after
 * the period -> exactly one probe -> closed (success) or open again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "route/health.h"
#include "table.h"

static int setup(void **state)
{
    (void)state;
    /* sl_spec (tests/runtime/unit.yaml) has several targets. */
    return sl_health_init(&sl_spec);
}

static int teardown(void **state)
{
    (void)state;
    sl_health_shutdown();
    return 0;
}

static void fail_n(uint32_t t, int n, int64_t now, uint32_t threshold, uint32_t period)
{
    for (int i = 0; i < n; i++)
        sl_health_report(t, 0, 0, now, threshold, period);
}

static void test_closed_until_threshold(void **state)
{
    (void)state;
    int probe;
    fail_n(0, 2, 1000, 3, 500);
    assert_true(sl_health_acquire(0, 1000, &probe));
    assert_false(probe);
    uint32_t fails;
    int64_t rem;
    assert_int_equal(sl_health_state_of(0, 1000, &fails, &rem), SL_HEALTH_CLOSED);
    assert_int_equal(fails, 2);
    /* A success resets the count: two more failures do not open it. */
    sl_health_report(0, 1, 0, 1000, 3, 500);
    fail_n(0, 2, 1000, 3, 500);
    assert_true(sl_health_usable(0, 1000));
}

static void test_opens_then_probes_once(void **state)
{
    (void)state;
    int probe;
    uint32_t fails;
    int64_t rem;
    fail_n(1, 3, 1000, 3, 500);
    assert_int_equal(sl_health_state_of(1, 1000, &fails, &rem), SL_HEALTH_OPEN);
    assert_int_equal(rem, 500);
    assert_false(sl_health_usable(1, 1200));
    assert_false(sl_health_acquire(1, 1499, &probe));
    /* Period over: half-open, and only one request gets through. */
    assert_int_equal(sl_health_state_of(1, 1500, &fails, &rem), SL_HEALTH_HALF_OPEN);
    assert_true(sl_health_acquire(1, 1500, &probe));
    assert_true(probe);
    int probe2;
    assert_false(sl_health_acquire(1, 1501, &probe2));
    assert_false(sl_health_usable(1, 1501));
    /* The probe succeeds: closed again, usable by everyone. */
    sl_health_report(1, 1, 1, 1502, 3, 500);
    assert_int_equal(sl_health_state_of(1, 1502, &fails, &rem), SL_HEALTH_CLOSED);
    assert_int_equal(fails, 0);
    assert_true(sl_health_acquire(1, 1502, &probe2));
    assert_false(probe2);
}

static void test_failed_probe_reopens(void **state)
{
    (void)state;
    int probe;
    uint32_t fails;
    int64_t rem;
    fail_n(2, 3, 0, 3, 1000);
    assert_true(sl_health_acquire(2, 1000, &probe));
    assert_true(probe);
    sl_health_report(2, 0, 1, 1000, 3, 1000);
    assert_int_equal(sl_health_state_of(2, 1000, &fails, &rem), SL_HEALTH_OPEN);
    assert_int_equal(rem, 1000);
    assert_false(sl_health_acquire(2, 1999, &probe));
    assert_true(sl_health_acquire(2, 2000, &probe));
    assert_true(probe);
}

static void test_abandoned_probe_frees_the_slot(void **state)
{
    (void)state;
    int probe, probe2;
    fail_n(3, 5, 0, 0, 0); /* defaults: 5 failures, 30 s */
    assert_false(sl_health_usable(3, 29999));
    assert_true(sl_health_acquire(3, 30000, &probe));
    assert_true(probe);
    assert_false(sl_health_acquire(3, 30001, &probe2));
    /* The client went away mid-probe: someone else may probe. */
    sl_health_abandon(3, 1);
    assert_true(sl_health_acquire(3, 30002, &probe2));
    assert_true(probe2);
}

static void test_out_of_range_target_is_always_usable(void **state)
{
    (void)state;
    int probe;
    assert_true(sl_health_acquire(100000, 0, &probe));
    assert_false(probe);
    sl_health_report(100000, 0, 0, 0, 1, 1); /* ignored, no crash */
    assert_true(sl_health_usable(100000, 0));
}

/* Another replica's open circuit (shared circuits): opens a closed one
 * until then, never shortens a longer one, and the probe follows. */
static void test_open_until_from_elsewhere(void **state)
{
    (void)state;
    int probe;
    uint32_t fails;
    int64_t rem;
    sl_health_open_until(0, 2000);
    assert_int_equal(sl_health_state_of(0, 1000, &fails, &rem), SL_HEALTH_OPEN);
    assert_int_equal(rem, 1000);
    assert_int_equal(fails, 0);
    assert_false(sl_health_acquire(0, 1500, &probe));
    sl_health_open_until(0, 1800); /* shorter: ignored */
    assert_int_equal(sl_health_state_of(0, 1000, &fails, &rem), SL_HEALTH_OPEN);
    assert_int_equal(rem, 1000);
    assert_true(sl_health_acquire(0, 2000, &probe));
    assert_true(probe);
    sl_health_report(0, 1, probe, 2000, 3, 500);
    assert_int_equal(sl_health_state_of(0, 2000, &fails, &rem), SL_HEALTH_CLOSED);
    sl_health_open_until(100000, 5000); /* out of range: ignored */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_closed_until_threshold, setup, teardown),
        cmocka_unit_test_setup_teardown(test_opens_then_probes_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failed_probe_reopens, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abandoned_probe_frees_the_slot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_range_target_is_always_usable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_until_from_elsewhere, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
