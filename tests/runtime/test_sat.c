/*
 * Unit tests for runtime/core/sat.{c,h}: saturating money and token
 * arithmetic at the limits of int64 (INT64_MAX, INT64_MIN, 0, -1) and with
 * prices up to 1e12 micro-USD per million tokens, the range a spec can
 * write. Run under UBSan, any wrap would also abort the test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "core/sat.h"

#define MAX INT64_MAX
#define MIN INT64_MIN

static void test_add(void **state)
{
    (void)state;
    assert_true(sl_sat_add(1, 2) == 3);
    assert_true(sl_sat_add(MAX, 1) == MAX);
    assert_true(sl_sat_add(MAX, MAX) == MAX);
    assert_true(sl_sat_add(MAX, 0) == MAX);
    assert_true(sl_sat_add(MAX, -1) == MAX - 1);
    assert_true(sl_sat_add(MIN, -1) == MIN);
    assert_true(sl_sat_add(MIN, MIN) == MIN);
    assert_true(sl_sat_add(MIN, MAX) == -1);
    assert_true(sl_sat_add(-1, 0) == -1);
    assert_true(sl_sat_add(0, 0) == 0);
}

static void test_sub(void **state)
{
    (void)state;
    assert_true(sl_sat_sub(5, 7) == -2);
    assert_true(sl_sat_sub(MAX, -1) == MAX);
    assert_true(sl_sat_sub(MIN, 1) == MIN);
    assert_true(sl_sat_sub(0, MIN) == MAX);
    assert_true(sl_sat_sub(-1, MIN) == MAX);
    assert_true(sl_sat_sub(-2, MAX) == MIN);
    assert_true(sl_sat_sub(MAX, MAX) == 0);
}

static void test_mul(void **state)
{
    (void)state;
    assert_true(sl_sat_mul(3, 4) == 12);
    assert_true(sl_sat_mul(MAX, 2) == MAX);
    assert_true(sl_sat_mul(MAX, -2) == MIN);
    assert_true(sl_sat_mul(MIN, -1) == MAX);
    assert_true(sl_sat_mul(MIN, 1) == MIN);
    assert_true(sl_sat_mul(-1, -1) == 1);
    assert_true(sl_sat_mul(MIN, 0) == 0);
    assert_true(sl_sat_mul(0, MAX) == 0);
    assert_true(sl_sat_mul((int64_t)1 << 32, (int64_t)1 << 31) == MAX);
}

static void test_count(void **state)
{
    (void)state;
    assert_true(sl_sat_count(-1) == 0);
    assert_true(sl_sat_count(MIN) == 0);
    assert_true(sl_sat_count(0) == 0);
    assert_true(sl_sat_count(MAX) == MAX);
    assert_true(sl_sat_add_count(MAX, MAX) == MAX);
    assert_true(sl_sat_add_count(MIN, 5) == 5);
    assert_true(sl_sat_add_count(-1, -1) == 0);
    assert_true(sl_sat_add_count(MAX, MIN) == MAX);
}

static void test_cost_plain(void **state)
{
    (void)state;
    /* USD 3.00 per Mtok: 1000 tokens cost 3000 micro-USD. */
    assert_true(sl_sat_cost(1000, 3000000) == 3000);
    assert_true(sl_sat_cost(1, 3000000) == 3);
    /* Rounded half up: 1 token at 0.5 micro-USD/token = 0.5 -> 1. */
    assert_true(sl_sat_cost(1, 500000) == 1);
    assert_true(sl_sat_cost(1, 499999) == 0);
    assert_true(sl_sat_cost(0, 1000000000000) == 0);
    assert_true(sl_sat_cost(MAX, 0) == 0);
    /* A price of 1 micro-USD per Mtok never overflows, whatever the count. */
    assert_true(sl_sat_cost(MAX, 1) == MAX / 1000000 + 1);
}

static void test_cost_negatives_are_zero(void **state)
{
    (void)state;
    assert_true(sl_sat_cost(-1, 3000000) == 0);
    assert_true(sl_sat_cost(MIN, 3000000) == 0);
    assert_true(sl_sat_cost(1000, -1) == 0);
    assert_true(sl_sat_cost(MIN, MIN) == 0);
    int64_t t[] = {MIN, 1000};
    int64_t p[] = {MAX, 3000000};
    assert_true(sl_sat_cost_dot(t, p, 2) == 3000);
}

static void test_cost_saturates(void **state)
{
    (void)state;
    /* The reported bypass: max_tokens near INT64_MAX at USD 15/Mtok. The
     * old 128-bit sum was cast to int64 and came out negative. */
    assert_true(sl_sat_cost(9223371936854775808LL - 1, 15000000) == MAX);
    assert_true(sl_sat_cost(MAX, MAX) == MAX);
    assert_true(sl_sat_cost(MAX, 1000000000000) == MAX);
    /* Just below the edge: tokens * 1e12 / 1e6 = tokens * 1e6. */
    int64_t edge = MAX / 1000000;
    assert_true(sl_sat_cost(edge, 1000000000000) == edge * 1000000);
    assert_true(sl_sat_cost(edge + 1, 1000000000000) == MAX);
    int64_t t[] = {MAX, MAX, MAX, MAX};
    int64_t p[] = {MAX, MAX, MAX, MAX};
    assert_true(sl_sat_cost_dot(t, p, 4) == MAX);
    /* Two terms that fit on their own but not together. */
    int64_t t2[] = {MAX / 2 + 1, MAX / 2 + 1};
    int64_t p2[] = {1000000, 1000000};
    assert_true(sl_sat_cost_dot(t2, p2, 2) == MAX);
}

static void test_cost_rounds_once(void **state)
{
    (void)state;
    /* Four terms of 0.4 micro-USD each: 1.6 rounds to 2 when summed first;
     * rounding each term would give 0. */
    int64_t t[] = {1, 1, 1, 1};
    int64_t p[] = {400000, 400000, 400000, 400000};
    assert_true(sl_sat_cost_dot(t, p, 4) == 2);
    assert_true(sl_sat_cost_dot(t, p, 0) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_add),
        cmocka_unit_test(test_sub),
        cmocka_unit_test(test_mul),
        cmocka_unit_test(test_count),
        cmocka_unit_test(test_cost_plain),
        cmocka_unit_test(test_cost_negatives_are_zero),
        cmocka_unit_test(test_cost_saturates),
        cmocka_unit_test(test_cost_rounds_once),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
