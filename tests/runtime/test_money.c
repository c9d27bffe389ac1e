/*
 * Unit tests for runtime/core/money.c: micro-USD as decimal USD, negative
 * amounts (the old "%lld.%06lld" of micros/1e6 and micros%1e6 printed
 * -0.5 USD as "0.-500000"), the int64 extremes and short buffers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/money.h"

static void check(int64_t micros, const char *want)
{
    char buf[SL_MONEY_MAX];
    int n = sl_money_format(micros, buf, sizeof buf);
    assert_string_equal(buf, want);
    assert_int_equal(n, (int)strlen(want));
}

static void test_positive(void **state)
{
    (void)state;
    check(0, "0.000000");
    check(1, "0.000001");
    check(999999, "0.999999");
    check(1000000, "1.000000");
    check(12345678, "12.345678");
    check(500000000, "500.000000");
}

static void test_negative(void **state)
{
    (void)state;
    check(-1, "-0.000001");
    check(-500000, "-0.500000");
    check(-1000000, "-1.000000");
    check(-12345678, "-12.345678");
}

static void test_extremes(void **state)
{
    (void)state;
    check(INT64_MAX, "9223372036854.775807");
    check(INT64_MIN, "-9223372036854.775808");
    assert_int_equal(strlen("-9223372036854.775808") + 1, 22);
    assert_true(SL_MONEY_MAX >= 22);
}

static void test_short_buffer(void **state)
{
    (void)state;
    char buf[8];
    memset(buf, 'x', sizeof buf);
    assert_int_equal(sl_money_format(12345678, buf, sizeof buf), -1);
    assert_string_equal(buf, "");
    assert_int_equal(sl_money_format(0, buf, 0), -1);
    /* Exactly fits: "1.000000" is 8 bytes plus the NUL. */
    char nine[9];
    assert_int_equal(sl_money_format(1000000, nine, sizeof nine), 8);
    assert_string_equal(nine, "1.000000");
    assert_int_equal(sl_money_format(1000000, nine, 8), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_positive),
        cmocka_unit_test(test_negative),
        cmocka_unit_test(test_extremes),
        cmocka_unit_test(test_short_buffer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
