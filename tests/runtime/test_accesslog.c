/*
 * Unit tests for the access-log formatters (runtime/core/accesslog.c): the
 * JSON line is one valid object with every field of a scripted request,
 * client strings cannot break out of their field or the line, invalid
 * UTF-8 becomes U+FFFD, the worst-case line still fits, and the text line
 * keeps the shape it always had plus the request id.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "core/accesslog.h"

static sl_access_record scripted(void)
{
    sl_access_record r = {
        .request_id = "req-1", .peer = "127.0.0.1:5555", .method = "POST", .method_len = 4,
        .path = "/v1/chat/completions", .path_len = 20, .key = "alice", .team = "platform",
        .surface = "openai", .model = "smart", .entry = "smart", .provider = "anthropic",
        .upstream_model = "claude-sonnet-4-5", .status = 200, .attempts = 2, .stream = 1,
        .have_usage = 1, .input = 12, .output = 34, .cache_read = 5, .cache_write = 6,
        .cost_micros = 1234567, .ms = 12.5, .overhead_ms = 0.25, .upstream_ms = 12.25, .ttft_ms = 3.5,
    };
    return r;
}

static json_t *parse_line(const char *line, size_t n)
{
    assert_true(n > 0);
    assert_int_equal(line[n - 1], '\n');
    assert_null(memchr(line, '\n', n - 1));
    json_error_t e;
    json_t *j = json_loadb(line, n - 1, 0, &e);
    if (!j)
        fail_msg("not JSON: %s: %s", e.text, line);
    assert_true(json_is_object(j));
    return j;
}

static void test_json_fields(void **state)
{
    (void)state;
    sl_access_record r = scripted();
    char line[SL_ACCESS_LINE_MAX];
    size_t n = sl_access_format_json(line, "2025-01-31T12:00:00.000Z", &r);
    json_t *j = parse_line(line, n);
    assert_string_equal(json_string_value(json_object_get(j, "time")), "2025-01-31T12:00:00.000Z");
    assert_string_equal(json_string_value(json_object_get(j, "request_id")), "req-1");
    assert_string_equal(json_string_value(json_object_get(j, "key")), "alice");
    assert_string_equal(json_string_value(json_object_get(j, "team")), "platform");
    assert_string_equal(json_string_value(json_object_get(j, "surface")), "openai");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "smart");
    assert_string_equal(json_string_value(json_object_get(j, "entry")), "smart");
    assert_string_equal(json_string_value(json_object_get(j, "provider")), "anthropic");
    assert_string_equal(json_string_value(json_object_get(j, "upstream_model")), "claude-sonnet-4-5");
    assert_int_equal(json_integer_value(json_object_get(j, "attempts")), 2);
    assert_int_equal(json_integer_value(json_object_get(j, "status")), 200);
    assert_true(json_is_true(json_object_get(j, "stream")));
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_in")), 12);
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_out")), 34);
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_cache_read")), 5);
    assert_int_equal(json_integer_value(json_object_get(j, "tokens_cache_write")), 6);
    assert_true(strstr(line, "\"cost_usd\":1.234567,") != NULL);
    assert_true(json_real_value(json_object_get(j, "ttft_ms")) == 3.5);
    assert_true(json_real_value(json_object_get(j, "overhead_ms")) == 0.25);
    assert_true(json_real_value(json_object_get(j, "upstream_ms")) == 12.25);
    assert_null(json_object_get(j, "error_type"));
    json_decref(j);
}

static void test_json_absent_fields(void **state)
{
    (void)state;
    sl_access_record r = {.request_id = "x", .method = "GET", .method_len = 3, .path = "/v1/models",
                          .path_len = 10, .status = 404, .ttft_ms = -1, .error_type = "404"};
    char line[SL_ACCESS_LINE_MAX];
    json_t *j = parse_line(line, sl_access_format_json(line, "t", &r));
    assert_null(json_object_get(j, "key"));
    assert_null(json_object_get(j, "ttft_ms"));
    assert_null(json_object_get(j, "tokens_in"));
    assert_string_equal(json_string_value(json_object_get(j, "error_type")), "404");
    json_decref(j);
}

static void test_json_escaping(void **state)
{
    (void)state;
    sl_access_record r = scripted();
    /* A forged field and line, a quote, a backslash, ESC, a C1 control,
     * U+2028, invalid UTF-8 (a lone continuation, an overlong '/'). */
    static const char model[] = "m\",\"key\":\"admin\"}\n{\"x\\\x1b\xc2\x9b\xe2\x80\xa8\x80\xc0\xaf\xc3\xa9";
    r.model = model;
    char line[SL_ACCESS_LINE_MAX];
    size_t n = sl_access_format_json(line, "t", &r);
    json_t *j = parse_line(line, n);
    assert_string_equal(json_string_value(json_object_get(j, "key")), "alice");
    assert_string_equal(json_string_value(json_object_get(j, "model")),
                        "m\",\"key\":\"admin\"}\n{\"x\\\x1b\xc2\x9b\xe2\x80\xa8"
                        "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xc3\xa9");
    assert_true(strstr(line, "\\u001b\\u009b\\u2028") != NULL);
    json_decref(j);

    char esc[64];
    assert_int_equal(sl_access_json_escape(esc, sizeof esc, "a\tb\rc", 5), 7);
    assert_string_equal(esc, "a\\tb\\rc");
    /* Cut between whole escapes. */
    assert_int_equal(sl_access_json_escape(esc, 8, "ab\x01\x02", 4), 2 + 0);
    assert_string_equal(esc, "ab");
}

static void test_json_worst_case_fits(void **state)
{
    (void)state;
    static char bad[1000];
    memset(bad, 0x01, sizeof bad - 1);
    sl_access_record r = scripted();
    r.model = r.upstream_model = r.request_id = r.peer = r.entry = r.key = r.team = r.provider = bad;
    r.path = bad;
    r.path_len = sizeof bad - 1;
    r.error_type = bad;
    char line[SL_ACCESS_LINE_MAX];
    size_t n = sl_access_format_json(line, "t", &r);
    assert_true(n < SL_ACCESS_LINE_MAX);
    /* Too long for every field to be whole, but still one valid line. */
    assert_int_equal(line[n - 1], '\n');
    assert_int_equal(line[n - 2], '}');
}

static void test_text_line(void **state)
{
    (void)state;
    sl_access_record r = scripted();
    r.model = "a b\n";
    char line[SL_ACCESS_LINE_MAX];
    size_t n = sl_access_format_text(line, "2025-01-31T12:00:00.000Z", &r);
    assert_int_equal(n, strlen(line));
    assert_string_equal(line, "2025-01-31T12:00:00.000Z 127.0.0.1:5555 POST /v1/chat/completions 200 "
                              "model=a\\x20b\\x0a provider=anthropic upstream_model=claude-sonnet-4-5 "
                              "attempts=2 ms=12.5 key=alice request_id=req-1\n");
    r.key = NULL;
    r.model = NULL;
    sl_access_format_text(line, "T", &r);
    assert_string_equal(line, "T 127.0.0.1:5555 POST /v1/chat/completions 200 model=- provider=anthropic "
                              "upstream_model=- attempts=2 ms=12.5 request_id=req-1\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields),
        cmocka_unit_test(test_json_absent_fields),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_json_worst_case_fits),
        cmocka_unit_test(test_text_line),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
