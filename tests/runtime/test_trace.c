/*
 * Unit tests for the span side of runtime/trace: W3C traceparent parsing
 * (strict lowercase hex, no all-zero ids, version rules), tracing inert
 * when not started, and a started tracer continuing the client's trace
 * in the traceparent it sends upstream.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <string.h>

#include "trace/trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static void test_parse(void **state)
{
    (void)state;
    uint8_t t[16], s[8];
    assert_int_equal(sl_trace_parse_parent(TP, strlen(TP), t, s), 0);
    assert_int_equal(t[0], 0x4b);
    assert_int_equal(t[15], 0x36);
    assert_int_equal(s[0], 0x00);
    assert_int_equal(s[7], 0xb7);
    static const char *const bad[] = {
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* uppercase */
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero span */
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x", /* 00 with more */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(sl_trace_parse_parent(bad[i], strlen(bad[i]), t, s), -1);
    const char *later = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-abc";
    assert_int_equal(sl_trace_parse_parent(later, strlen(later), t, s), 0);
}

static void test_inert_without_start(void **state)
{
    (void)state;
    sl_arena a;
    sl_arena_init(&a, 4096);
    assert_false(sl_trace_enabled());
    assert_null(sl_trace_begin(&a, TP, strlen(TP)));
    assert_null(sl_trace_try_begin(NULL, &a));
    sl_trace_try_end(NULL, NULL);
    sl_trace_finish(NULL, NULL, NULL);
    sl_arena_free(&a);
}

static void test_continues_client_trace(void **state)
{
    (void)state;
    char err[128];
    /* Nothing listens on the discard port: spans are dropped and counted. */
    assert_int_equal(sl_trace_start("http://127.0.0.1:9", "unit", err, sizeof err), 0);
    assert_true(sl_trace_enabled());
    sl_arena a;
    sl_arena_init(&a, 4096);
    sl_trace_req *t = sl_trace_begin(&a, TP, strlen(TP));
    assert_non_null(t);
    const char *h1 = sl_trace_try_begin(t, &a);
    assert_non_null(h1);
    assert_int_equal(strlen(h1), strlen("traceparent: ") + 55);
    assert_memory_equal(h1, "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-", 49);
    assert_memory_equal(h1 + strlen(h1) - 3, "-01", 3);
    assert_memory_not_equal(h1 + 49, "00f067aa0ba902b7", 16);
    sl_span_info fail = {.op = "chat", .request_model = "m", .error_type = "503", .http_status = 503};
    sl_trace_try_end(t, &fail);
    const char *h2 = sl_trace_try_begin(t, &a);
    assert_string_not_equal(h1, h2); /* a new client span per try */
    sl_span_info ok = {.op = "chat", .request_model = "m", .http_status = 200};
    sl_trace_try_end(t, &ok);
    sl_span_info u = {.have_usage = 1, .input = 3, .output = 4};
    sl_trace_finish(t, &ok, &u);

    /* Without a client traceparent: a fresh trace. */
    sl_trace_req *t2 = sl_trace_begin(&a, "garbage", 7);
    const char *h3 = sl_trace_try_begin(t2, &a);
    assert_memory_not_equal(h3 + 16, "4bf92f3577b34da6a3ce929d0e0e4736", 32);
    sl_trace_finish(t2, &ok, NULL);
    sl_trace_stop();
    assert_int_equal(sl_trace_dropped(), 5); /* 2 tries + server, 1 try + server */
    assert_false(sl_trace_enabled());
    sl_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_inert_without_start),
        cmocka_unit_test(test_continues_client_trace),
    };
    curl_global_init(CURL_GLOBAL_DEFAULT);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
