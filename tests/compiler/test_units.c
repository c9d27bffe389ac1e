/*
 * Unit parsers: exact integer results for decimal input, and a reason for
 * every rejection.
 */
#include "helpers.h"
#include "units.h"

static void durations(void **state)
{
    char err[128];
    uint32_t ms;
    assert_int_equal(slc_parse_duration_ms("200ms", 5, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 200);
    assert_int_equal(slc_parse_duration_ms("2s", 2, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 2000);
    assert_int_equal(slc_parse_duration_ms("1m", 2, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 60000);
    assert_int_equal(slc_parse_duration_ms("1h", 2, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 3600000);
    assert_int_equal(slc_parse_duration_ms("1.5s", 4, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1500);
    assert_int_equal(slc_parse_duration_ms("0.001s", 6, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 1);
    assert_int_equal(slc_parse_duration_ms("0s", 2, &ms, err, sizeof err), 0);
    assert_int_equal(ms, 0);
}

static void bad_durations(void **state)
{
    char err[128];
    uint32_t ms = 7;
    assert_int_equal(slc_parse_duration_ms("200", 3, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "needs a unit"));
    assert_int_equal(slc_parse_duration_ms("2x", 2, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown unit 'x'"));
    assert_int_equal(slc_parse_duration_ms("1.5ms", 5, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "whole number of milliseconds"));
    assert_int_equal(slc_parse_duration_ms("0.0001s", 7, &ms, err, sizeof err), -1);
    assert_int_equal(slc_parse_duration_ms("-1s", 3, &ms, err, sizeof err), -1);
    assert_int_equal(slc_parse_duration_ms("", 0, &ms, err, sizeof err), -1);
    assert_int_equal(slc_parse_duration_ms(".5s", 3, &ms, err, sizeof err), -1);
    assert_int_equal(slc_parse_duration_ms("2000h", 5, &ms, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
    assert_int_equal(slc_parse_duration_ms("99999999999999999999s", 21, &ms, err, sizeof err), -1);
    assert_int_equal(ms, 7);
}

static void money(void **state)
{
    char err[128];
    int64_t v;
    assert_int_equal(slc_parse_money_micros("20", 2, &v, err, sizeof err), 0);
    assert_int_equal(v, 20000000);
    assert_int_equal(slc_parse_money_micros("20.5", 4, &v, err, sizeof err), 0);
    assert_int_equal(v, 20500000);
    /* 0.30 is not exactly representable as a double; the result must be. */
    assert_int_equal(slc_parse_money_micros("0.30", 4, &v, err, sizeof err), 0);
    assert_int_equal(v, 300000);
    assert_int_equal(slc_parse_money_micros("0.000001", 8, &v, err, sizeof err), 0);
    assert_int_equal(v, 1);
    assert_int_equal(slc_parse_money_micros("3.750000000", 11, &v, err, sizeof err), 0);
    assert_int_equal(v, 3750000);
    assert_int_equal(slc_parse_money_micros("0", 1, &v, err, sizeof err), 0);
    assert_int_equal(v, 0);
}

static void bad_money(void **state)
{
    char err[128];
    int64_t v;
    assert_int_equal(slc_parse_money_micros("-5", 2, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "negative"));
    assert_int_equal(slc_parse_money_micros("0.1234567", 9, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "6 decimal"));
    assert_int_equal(slc_parse_money_micros("1e3", 3, &v, err, sizeof err), -1);
    assert_int_equal(slc_parse_money_micros("$5", 2, &v, err, sizeof err), -1);
    assert_int_equal(slc_parse_money_micros("5.", 2, &v, err, sizeof err), -1);
    assert_int_equal(slc_parse_money_micros("1000000000000", 13, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "too large"));
}

static void sizes(void **state)
{
    char err[128];
    uint64_t v;
    assert_int_equal(slc_parse_size("1024", 4, &v, err, sizeof err), 0);
    assert_int_equal(v, 1024);
    assert_int_equal(slc_parse_size("16KiB", 5, &v, err, sizeof err), 0);
    assert_int_equal(v, 16384);
    assert_int_equal(slc_parse_size("10MiB", 5, &v, err, sizeof err), 0);
    assert_int_equal(v, 10485760);
    assert_int_equal(slc_parse_size("2GiB", 4, &v, err, sizeof err), 0);
    assert_int_equal(v, 2147483648ull);
    assert_int_equal(slc_parse_size("7B", 2, &v, err, sizeof err), 0);
    assert_int_equal(v, 7);
    assert_int_equal(slc_parse_size("16kb", 4, &v, err, sizeof err), -1);
    assert_non_null(strstr(err, "unknown unit 'kb'"));
    assert_int_equal(slc_parse_size("1.5MiB", 6, &v, err, sizeof err), -1);
    assert_int_equal(slc_parse_size("KiB", 3, &v, err, sizeof err), -1);
    assert_int_equal(slc_parse_size("99999999999GiB", 14, &v, err, sizeof err), -1);
}

static void times(void **state)
{
    char err[128];
    int64_t t;
    assert_int_equal(slc_parse_time_unix("1970-01-01", 10, &t, err, sizeof err), 0);
    assert_int_equal(t, 0);
    assert_int_equal(slc_parse_time_unix("2027-01-01", 10, &t, err, sizeof err), 0);
    assert_int_equal(t, 1798761600);
    assert_int_equal(slc_parse_time_unix("2024-02-29T12:30:00Z", 20, &t, err, sizeof err), 0);
    assert_int_equal(t, 1709209800);
    assert_int_equal(slc_parse_time_unix("2026-06-30T12:00:00+02:00", 25, &t, err, sizeof err), 0);
    assert_int_equal(t, 1782813600);
    assert_int_equal(slc_parse_time_unix("2026-06-30T12:00:00.250-01:30", 29, &t, err, sizeof err), 0);
    assert_int_equal(t, 1782826200); /* 13:30 UTC */
    assert_int_equal(slc_parse_time_unix("2023-02-29", 10, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "no such date"));
    assert_int_equal(slc_parse_time_unix("2026-06-30T12:00:00", 19, &t, err, sizeof err), -1);
    assert_non_null(strstr(err, "zone"));
    assert_int_equal(slc_parse_time_unix("next year", 9, &t, err, sizeof err), -1);
    assert_int_equal(slc_parse_time_unix("2026-13-01", 10, &t, err, sizeof err), -1);
}

static void ints(void **state)
{
    int64_t v;
    assert_int_equal(slc_parse_int("42", 2, &v), 0);
    assert_int_equal(v, 42);
    assert_int_equal(slc_parse_int("-3", 2, &v), 0);
    assert_int_equal(v, -3);
    assert_int_equal(slc_parse_int("4.0", 3, &v), -1);
    assert_int_equal(slc_parse_int("-", 1, &v), -1);
    assert_int_equal(slc_parse_int("99999999999999999999", 20, &v), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(durations), cmocka_unit_test(bad_durations), cmocka_unit_test(money),
        cmocka_unit_test(bad_money), cmocka_unit_test(sizes),         cmocka_unit_test(times),
        cmocka_unit_test(ints),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
