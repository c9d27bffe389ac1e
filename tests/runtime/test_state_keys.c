/*
 * Unit tests for runtime/state/keys.c and runtime/state/url.c: Redis key
 * names (escaping keeps one name from reaching into another's keys),
 * period buckets and their expiry, the admission script's answers, and
 * the Redis URL parser shared by sluicec and `sluice --redis`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "state/keys.h"
#include "state/url.h"

/* 2024-01-01 00:00:00 UTC, a Monday. */
#define JAN1 1704067200LL
#define DAY 86400

static void test_key_names(void **state)
{
    (void)state;
    char k[SL_STATE_KEY_MAX];
    assert_int_equal(sl_state_key(k, sizeof k, "sluice:prod:", 0, "alice", "b", SL_PERIOD_DAY, JAN1), 32);
    assert_string_equal(k, "sluice:prod:k:alice:b:1704067200");
    sl_state_key(k, sizeof k, "p:", 1, "platform", "r", SL_PERIOD_MONTH, JAN1);
    assert_string_equal(k, "p:t:platform:r:1704067200");
    sl_state_key(k, sizeof k, "p:", 0, "alice", "b", SL_PERIOD_TOTAL, 0);
    assert_string_equal(k, "p:k:alice:b:total");
    sl_state_key(k, sizeof k, "p:", 0, "alice", "q", SL_PERIOD_NONE, 0);
    assert_string_equal(k, "p:k:alice:q");
}

/* A key named "a:b:1" must not share keys with a key named "a". */
static void test_key_escaping(void **state)
{
    (void)state;
    char k[SL_STATE_KEY_MAX];
    sl_state_key(k, sizeof k, "p:", 0, "a:q", "q", SL_PERIOD_NONE, 0);
    assert_string_equal(k, "p:k:a%3Aq:q");
    sl_state_key(k, sizeof k, "p:", 0, "50%", "q", SL_PERIOD_NONE, 0);
    assert_string_equal(k, "p:k:50%25:q");
}

static void test_key_too_long(void **state)
{
    (void)state;
    char k[24];
    assert_int_equal(sl_state_key(k, sizeof k, "sluice:prod:", 0, "alice", "b", SL_PERIOD_DAY, JAN1), 0);
    assert_int_equal(sl_state_key(k, 12, "sluice:", 0, "alice", "q", SL_PERIOD_NONE, 0), 0);
    /* Exactly fitting: 12 characters and the NUL. */
    assert_int_equal(sl_state_key(k, 12, "sl:", 0, "alice", "q", SL_PERIOD_NONE, 0), 0);
    assert_int_equal(sl_state_key(k, 13, "sl:", 0, "alice", "q", SL_PERIOD_NONE, 0), 12);
}

static void test_period_end(void **state)
{
    (void)state;
    assert_int_equal(sl_state_period_end(SL_PERIOD_DAY, JAN1), JAN1 + DAY);
    assert_int_equal(sl_state_period_end(SL_PERIOD_WEEK, JAN1), JAN1 + 7 * DAY);
    /* January has 31 days, February 2024 29. */
    assert_int_equal(sl_state_period_end(SL_PERIOD_MONTH, JAN1), JAN1 + 31 * DAY);
    assert_int_equal(sl_state_period_end(SL_PERIOD_MONTH, JAN1 + 31 * DAY), JAN1 + 60 * DAY);
    /* December rolls into the next year. */
    assert_int_equal(sl_state_period_end(SL_PERIOD_MONTH, JAN1 - 31 * DAY), JAN1);
    assert_int_equal(sl_state_period_end(SL_PERIOD_TOTAL, 0), 0);
    assert_int_equal(sl_state_bucket_expireat(SL_PERIOD_DAY, JAN1), JAN1 + 2 * DAY);
    assert_int_equal(sl_state_bucket_expireat(SL_PERIOD_TOTAL, 0), 0);
}

static void test_answers(void **state)
{
    (void)state;
    sl_state_answer a;
    int64_t ok[] = {0};
    assert_int_equal(sl_state_answer_of(ok, 1, &a), 0);
    assert_int_equal(a.result, SL_STATE_GRANTED);
    int64_t rate[] = {1, 2500, 2};
    assert_int_equal(sl_state_answer_of(rate, 3, &a), 0);
    assert_int_equal(a.result, SL_STATE_REFUSED);
    assert_int_equal(a.verdict, SL_GOV_RATE_LIMITED);
    assert_int_equal(a.retry_after_s, 3);
    assert_string_equal(a.why, "team request rate limit reached");
    int64_t budget[] = {2, 1};
    assert_int_equal(sl_state_answer_of(budget, 2, &a), 0);
    assert_int_equal(a.verdict, SL_GOV_BUDGET);
    assert_string_equal(a.why, "key token budget exhausted");
    int64_t cold[] = {3};
    assert_int_equal(sl_state_answer_of(cold, 1, &a), 0);
    assert_int_equal(a.result, SL_STATE_COLD);
    /* A day at most, whatever the server says. */
    int64_t far[] = {1, INT64_MAX, 0};
    assert_int_equal(sl_state_answer_of(far, 3, &a), 0);
    assert_int_equal(a.retry_after_s, 86400);
}

static void test_bad_answers(void **state)
{
    (void)state;
    sl_state_answer a;
    int64_t v[] = {4, 0, 0};
    assert_int_equal(sl_state_answer_of(v, 0, &a), -1);
    assert_int_equal(sl_state_answer_of(v, 1, &a), -1);
    int64_t ok_long[] = {0, 1};
    assert_int_equal(sl_state_answer_of(ok_long, 2, &a), -1);
    int64_t which[] = {2, 4};
    assert_int_equal(sl_state_answer_of(which, 2, &a), -1);
    int64_t neg[] = {1, -5, 0};
    assert_int_equal(sl_state_answer_of(neg, 3, &a), -1);
    int64_t cold_long[] = {3, 0};
    assert_int_equal(sl_state_answer_of(cold_long, 2, &a), -1);
    int64_t short_rate[] = {1, 5};
    assert_int_equal(sl_state_answer_of(short_rate, 2, &a), -1);
}

static void test_clamp(void **state)
{
    (void)state;
    assert_int_equal(sl_state_clamp(-1), 0);
    assert_int_equal(sl_state_clamp(42), 42);
    assert_int_equal(sl_state_clamp(INT64_MAX), SL_STATE_AMOUNT_MAX);
}

static void test_url(void **state)
{
    (void)state;
    char host[SL_REDIS_HOST_MAX], err[160];
    uint16_t port;
    uint32_t db;
    assert_int_equal(sl_redis_url_parse("redis://10.0.0.5:6380/3", host, &port, &db, err, sizeof err), 0);
    assert_string_equal(host, "10.0.0.5");
    assert_int_equal(port, 6380);
    assert_int_equal(db, 3);
    assert_int_equal(sl_redis_url_parse("redis://cache", host, &port, &db, err, sizeof err), 0);
    assert_string_equal(host, "cache");
    assert_int_equal(port, 6379);
    assert_int_equal(db, 0);
    assert_int_equal(sl_redis_url_parse("redis://[::1]:7000/", host, &port, &db, err, sizeof err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 7000);
}

static void test_url_refused(void **state)
{
    (void)state;
    char host[SL_REDIS_HOST_MAX], err[160];
    uint16_t port;
    uint32_t db;
    static const char *const bad[] = {
        "", "http://cache", "redis://", "redis://:6379", "redis://cache:0", "redis://cache:65536",
        "redis://cache:x", "redis://cache/x", "redis://cache/1?x=1", "redis://[::1", "redis://a b",
        "redis://cache:6379/70000", "redis://cache:99999999999",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sl_redis_url_parse(bad[i], host, &port, &db, err, sizeof err), -1);
    /* Credentials are refused without being repeated. */
    assert_int_equal(sl_redis_url_parse("redis://u:hunter2@cache", host, &port, &db, err, sizeof err), -1);
    assert_null(strstr(err, "hunter2"));
    assert_int_equal(sl_redis_url_parse("rediss://cache", host, &port, &db, err, sizeof err), -1);
    assert_non_null(strstr(err, "TLS"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_names),   cmocka_unit_test(test_key_escaping),
        cmocka_unit_test(test_key_too_long), cmocka_unit_test(test_period_end),
        cmocka_unit_test(test_answers),     cmocka_unit_test(test_bad_answers),
        cmocka_unit_test(test_clamp),       cmocka_unit_test(test_url),
        cmocka_unit_test(test_url_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
