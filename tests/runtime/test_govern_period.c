/*
 * Unit tests for the budget-period arithmetic of runtime/govern/govern.c
 * (sl_gov_period_start): UTC days, ISO weeks starting on Monday, calendar
 * months. The named instants are the last second of a period and the first
 * of the next, with the expected starts written out as literals (checked
 * with `date -u -d`), including leap and non-leap Februaries (2000, 2023,
 * 2024, 2100), years whose ISO week straddles New Year, and 2038 past the
 * 32-bit time_t limit. A sweep over every hour of 2023-2025 then checks each
 * start against gmtime, an oracle the implementation does not use for days
 * and weeks: the start is at midnight, on a Monday (weeks) or the 1st
 * (months), no later than the instant and in the same day, week or month.
 * The end-to-end counterpart, the real gateway crossing these boundaries
 * under libfaketime, is tests/e2e/limits.test.mjs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <time.h>

#include "govern/govern.h"

#define DAY 86400LL

typedef struct {
    const char *what;  /* the instant, for failure messages */
    int64_t now, want;
} instant;

static void check(sl_period per, const instant *c, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int64_t got = sl_gov_period_start(per, c[i].now);
        if (got != c[i].want)
            fail_msg("%s: period start %lld, want %lld", c[i].what, (long long)got, (long long)c[i].want);
    }
}

#define CHECK(per, cases) check(per, cases, sizeof cases / sizeof cases[0])

static void test_day_boundaries(void **state)
{
    (void)state;
    static const instant c[] = {
        {"2024-02-28 23:59:59", 1709164799, 1709164799 - (DAY - 1)},
        {"2024-02-29 00:00:00 (leap day)", 1709164800, 1709164800},
        {"2024-02-29 23:59:59", 1709251199, 1709164800},
        {"2024-03-01 00:00:00", 1709251200, 1709251200},
        {"2024-12-31 23:59:59", 1735689599, 1735689600 - DAY},
        {"2025-01-01 00:00:00", 1735689600, 1735689600},
        {"1970-01-01 00:00:00", 0, 0},
        {"1970-01-01 23:59:59", DAY - 1, 0},
        {"2038-01-19 03:14:08 (past 32-bit time_t)", 2147483648LL, 2147385600LL + DAY},
    };
    CHECK(SL_PERIOD_DAY, c);
}

static void test_week_boundaries(void **state)
{
    (void)state;
    /* ISO 8601: weeks start on Monday 00:00:00 UTC, whatever the year. */
    static const instant c[] = {
        {"Sun 2024-03-03 23:59:59", 1709510399, 1708905600},  /* Mon 2024-02-26 */
        {"Mon 2024-03-04 00:00:00", 1709510400, 1709510400},
        {"Sat 2024-03-02 23:59:59", 1709423999, 1708905600},
        {"Sun 2024-03-03 00:00:00", 1709424000, 1708905600},  /* Sunday is not a week start */
        {"Tue 2024-12-31 23:59:59", 1735689599, 1735516800},  /* Mon 2024-12-30 */
        {"Wed 2025-01-01 00:00:00", 1735689600, 1735516800},  /* same week across New Year */
        {"Sun 2025-01-05 23:59:59", 1736121599, 1735516800},
        {"Mon 2025-01-06 00:00:00", 1736121600, 1736121600},
        {"Thu 2026-12-31 23:59:59", 1798761599, 1798416000},  /* Mon 2026-12-28 */
        {"Sun 2027-01-03 23:59:59", 1799020799, 1798416000},
        {"Thu 1970-01-01 00:00:00", 0, -3 * DAY},             /* Mon 1969-12-29 */
        {"Sun 1970-01-04 23:59:59", 4 * DAY - 1, -3 * DAY},
        {"Mon 1970-01-05 00:00:00", 4 * DAY, 4 * DAY},
        {"Tue 2038-01-19 03:14:08", 2147483648LL, 2147385600LL},  /* Mon 2038-01-18 */
    };
    CHECK(SL_PERIOD_WEEK, c);
}

static void test_month_boundaries(void **state)
{
    (void)state;
    static const instant c[] = {
        {"2023-02-28 23:59:59 (not a leap year)", 1677628799, 1675209600},
        {"2023-03-01 00:00:00", 1677628800, 1677628800},
        {"2024-02-28 23:59:59 (leap year)", 1709164799, 1706745600},
        {"2024-02-29 00:00:00", 1709164800, 1706745600},
        {"2024-02-29 23:59:59", 1709251199, 1706745600},
        {"2024-03-01 00:00:00", 1709251200, 1709251200},
        {"2000-02-29 23:59:59 (leap: divisible by 400)", 951868799, 949363200},
        {"2100-02-28 23:59:59 (not leap: divisible by 100)", 4107542399LL, 4105123200LL},
        {"2100-03-01 00:00:00", 4107542400LL, 4107542400LL},
        {"2024-12-31 23:59:59", 1735689599, 1733011200},
        {"2025-01-01 00:00:00", 1735689600, 1735689600},
        {"2038-01-19 03:14:08", 2147483648LL, 2145916800LL},
    };
    CHECK(SL_PERIOD_MONTH, c);
}

/* Every hour (and the second before it) from 2023-01-01 to 2026-01-01,
 * against gmtime. */
static void test_sweep_against_gmtime(void **state)
{
    (void)state;
    for (int64_t h = 1672531200; h < 1767225600; h += 3600) {
        for (int64_t now = h - 1; now <= h; now++) {
            struct tm tn, ts;
            time_t tt = (time_t)now;
            gmtime_r(&tt, &tn);

            int64_t d = sl_gov_period_start(SL_PERIOD_DAY, now);
            tt = (time_t)d;
            gmtime_r(&tt, &ts);
            assert_true(ts.tm_hour == 0 && ts.tm_min == 0 && ts.tm_sec == 0);
            assert_true(ts.tm_year == tn.tm_year && ts.tm_yday == tn.tm_yday);

            int64_t w = sl_gov_period_start(SL_PERIOD_WEEK, now);
            tt = (time_t)w;
            gmtime_r(&tt, &ts);
            assert_int_equal(ts.tm_wday, 1); /* Monday */
            assert_true(ts.tm_hour == 0 && ts.tm_min == 0 && ts.tm_sec == 0);
            assert_true(w <= now && now - w < 7 * DAY);

            int64_t m = sl_gov_period_start(SL_PERIOD_MONTH, now);
            tt = (time_t)m;
            gmtime_r(&tt, &ts);
            assert_true(ts.tm_mday == 1 && ts.tm_hour == 0 && ts.tm_min == 0 && ts.tm_sec == 0);
            assert_true(ts.tm_year == tn.tm_year && ts.tm_mon == tn.tm_mon);
        }
    }
}

static void test_no_calendar_period(void **state)
{
    (void)state;
    assert_int_equal(sl_gov_period_start(SL_PERIOD_TOTAL, 1709164799), 0);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_NONE, 1709164799), 0);
}

/* The one wall clock governance reads is the system's. */
static void test_now_is_the_wall_clock(void **state)
{
    (void)state;
    int64_t before = (int64_t)time(NULL);
    int64_t now = sl_gov_now();
    int64_t after = (int64_t)time(NULL);
    assert_true(before <= now && now <= after);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_day_boundaries),
        cmocka_unit_test(test_week_boundaries),
        cmocka_unit_test(test_month_boundaries),
        cmocka_unit_test(test_sweep_against_gmtime),
        cmocka_unit_test(test_no_calendar_period),
        cmocka_unit_test(test_now_is_the_wall_clock),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
