/*
 * Tests for the client-facing error shapes (runtime/proxy/surface.c). Every
 * body is parsed back with jansson and checked against the shape each
 * provider's SDK expects: OpenAI {"error":{"message","type","param","code"}},
 * Anthropic {"type":"error","error":{"type","message"}}, Gemini
 * {"error":{"code","message","status"}}; stream error events must be SSE
 * frames whose data line is one valid JSON document.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "proxy/surface.h"

static json_t *body(sl_proto s, int status, const char *code, const char *msg)
{
    char buf[4096];
    memset(buf, 'Z', sizeof buf);
    size_t n = sl_surface_error_body(s, status, code, msg, buf, sizeof buf);
    assert_true(n < sizeof buf);
    assert_int_equal(buf[n], '\0');
    assert_int_equal(strlen(buf), n);
    json_error_t err;
    json_t *j = json_loadb(buf, n, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("invalid JSON (%s) in: %s", err.text, buf);
    assert_true(json_is_object(j));
    return j;
}

static const char *str(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v))
        fail_msg("member '%s' is not a string", key);
    return json_string_value(v);
}

static void test_names(void **state)
{
    assert_string_equal(sl_proto_name(SL_PROTO_OPENAI), "openai");
    assert_string_equal(sl_proto_name(SL_PROTO_ANTHROPIC), "anthropic");
    assert_string_equal(sl_proto_name(SL_PROTO_GEMINI), "gemini");
    assert_string_equal(sl_proto_name(SL_PROTO_RESPONSES), "responses");
}

static void test_openai_shape(void **state)
{
    static const struct { int status; const char *type; } cases[] = {
        {400, "invalid_request_error"}, {401, "authentication_error"},
        {403, "permission_error"},      {404, "not_found_error"},
        {405, "invalid_request_error"}, {413, "invalid_request_error"},
        {429, "rate_limit_error"},      {500, "server_error"},
        {502, "server_error"},          {503, "server_error"},
        {504, "server_error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = body(SL_PROTO_OPENAI, cases[i].status, "model_not_found", "no such model");
        assert_int_equal(json_object_size(j), 1);
        json_t *e = json_object_get(j, "error");
        assert_true(json_is_object(e));
        assert_int_equal(json_object_size(e), 4);
        assert_string_equal(str(e, "message"), "no such model");
        assert_string_equal(str(e, "type"), cases[i].type);
        assert_true(json_is_null(json_object_get(e, "param")));
        assert_string_equal(str(e, "code"), "model_not_found");
        json_decref(j);
    }
    /* Without a code, "code" is present and null. */
    json_t *j = body(SL_PROTO_OPENAI, 500, NULL, "boom");
    json_t *e = json_object_get(j, "error");
    assert_non_null(json_object_get(e, "code"));
    assert_true(json_is_null(json_object_get(e, "code")));
    json_decref(j);
}

static void test_anthropic_shape(void **state)
{
    static const struct { int status; const char *type; } cases[] = {
        {400, "invalid_request_error"}, {401, "authentication_error"},
        {403, "permission_error"},      {404, "not_found_error"},
        {405, "invalid_request_error"}, {413, "request_too_large"},
        {429, "rate_limit_error"},      {500, "api_error"},
        {502, "api_error"},             {503, "overloaded_error"},
        {529, "overloaded_error"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = body(SL_PROTO_ANTHROPIC, cases[i].status, "ignored", "bad thing");
        assert_int_equal(json_object_size(j), 2);
        assert_string_equal(str(j, "type"), "error");
        json_t *e = json_object_get(j, "error");
        assert_true(json_is_object(e));
        assert_int_equal(json_object_size(e), 2);
        assert_string_equal(str(e, "type"), cases[i].type);
        assert_string_equal(str(e, "message"), "bad thing");
        json_decref(j);
    }
}

static void test_gemini_shape(void **state)
{
    static const struct { int status; const char *st; } cases[] = {
        {400, "INVALID_ARGUMENT"},  {401, "UNAUTHENTICATED"},   {403, "PERMISSION_DENIED"},
        {404, "NOT_FOUND"},         {429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"},
        {502, "INTERNAL"},          {503, "UNAVAILABLE"},        {504, "DEADLINE_EXCEEDED"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *j = body(SL_PROTO_GEMINI, cases[i].status, NULL, "nope");
        assert_int_equal(json_object_size(j), 1);
        json_t *e = json_object_get(j, "error");
        assert_true(json_is_object(e));
        assert_int_equal(json_object_size(e), 3);
        assert_true(json_is_integer(json_object_get(e, "code")));
        assert_int_equal(json_integer_value(json_object_get(e, "code")), cases[i].status);
        assert_string_equal(str(e, "message"), "nope");
        assert_string_equal(str(e, "status"), cases[i].st);
        json_decref(j);
    }
}

static void test_message_escaping(void **state)
{
    const char *msg = "model \"gpt\\4\" not found\nline two\r\ttab \x01 /slash/ "
                      "caf\xc3\xa9 \xe6\xa8\xa1\xe5\x9e\x8b";
    for (int s = 0; s < 3; s++) {
        json_t *j = body((sl_proto)s, 404, "c", msg);
        assert_string_equal(str(json_object_get(j, "error"), "message"), msg);
        json_decref(j);
    }
    /* Empty message. */
    json_t *j = body(SL_PROTO_OPENAI, 400, NULL, "");
    assert_string_equal(str(json_object_get(j, "error"), "message"), "");
    json_decref(j);
}

static void test_long_message_truncated_validly(void **state)
{
    /* Messages longer than the body allows are cut, never into an escape
     * sequence or the middle of a UTF-8 character: the body stays valid. */
    char msg[3000];
    const char *units[] = {"\"", "\\", "\n", "\x01", "\xc3\xa9", "\xe6\xa8\xa1", "\xf0\x9f\x9a\x80", "a"};
    for (size_t u = 0; u < sizeof units / sizeof *units; u++) {
        for (size_t shift = 0; shift < 4; shift++) {
            size_t o = 0;
            for (; o < shift; o++)
                msg[o] = 'x';
            size_t ul = strlen(units[u]);
            while (o + ul < sizeof msg) {
                memcpy(msg + o, units[u], ul);
                o += ul;
            }
            msg[o] = '\0';
            for (int s = 0; s < 3; s++) {
                json_t *j = body((sl_proto)s, 500, NULL, msg);
                const char *m = str(json_object_get(j, "error"), "message");
                size_t ml = strlen(m);
                assert_true(ml > 100);
                /* What is kept is a prefix of the original message. */
                assert_memory_equal(m, msg, ml);
                json_decref(j);
            }
        }
    }
}

static void test_invalid_utf8_replaced(void **state)
{
    /* A message the caller already cut mid-character (vsnprintf into a
     * fixed buffer), or with stray bytes, still yields valid JSON. */
    const char *msg = "cut \xe6\xa8";
    for (int s = 0; s < 3; s++) {
        json_t *j = body((sl_proto)s, 400, NULL, msg);
        assert_string_equal(str(json_object_get(j, "error"), "message"),
                            "cut \xef\xbf\xbd\xef\xbf\xbd");
        json_decref(j);
        j = body((sl_proto)s, 400, NULL, "lone \xff\x80 bytes \xc3\xa9 ok");
        assert_string_equal(str(json_object_get(j, "error"), "message"),
                            "lone \xef\xbf\xbd\xef\xbf\xbd bytes \xc3\xa9 ok");
        json_decref(j);
    }
}

static void test_small_buffer(void **state)
{
    /* The result is always NUL-terminated and the length fits. */
    char buf[16];
    size_t n = sl_surface_error_body(SL_PROTO_OPENAI, 400, NULL, "a long message here", buf,
                                     sizeof buf);
    assert_int_equal(n, sizeof buf - 1);
    assert_int_equal(strlen(buf), n);
}

/* Splits an SSE frame into its fields and checks the data is JSON. */
static json_t *parse_event(const char *frame, size_t n, const char *want_event)
{
    assert_int_equal(strlen(frame), n);
    /* One event: ends with a blank line, no blank line before that. */
    assert_true(n >= 2);
    assert_memory_equal(frame + n - 2, "\n\n", 2);
    assert_ptr_equal(strstr(frame, "\n\n"), frame + n - 2);
    assert_null(strchr(frame, '\r'));
    const char *event = NULL, *data = NULL;
    size_t event_len = 0, data_len = 0;
    const char *p = frame;
    while (*p && *p != '\n') {
        const char *eol = strchr(p, '\n');
        assert_non_null(eol);
        if (strncmp(p, "event: ", 7) == 0) {
            assert_null(event);
            event = p + 7;
            event_len = (size_t)(eol - event);
        } else if (strncmp(p, "data: ", 6) == 0) {
            assert_null(data); /* a single data line */
            data = p + 6;
            data_len = (size_t)(eol - data);
        } else {
            fail_msg("unexpected SSE line: %.*s", (int)(eol - p), p);
        }
        p = eol + 1;
    }
    if (want_event) {
        assert_non_null(event);
        assert_int_equal(event_len, strlen(want_event));
        assert_memory_equal(event, want_event, event_len);
    } else {
        assert_null(event);
    }
    assert_non_null(data);
    json_error_t err;
    json_t *j = json_loadb(data, data_len, JSON_REJECT_DUPLICATES, &err);
    if (!j)
        fail_msg("invalid JSON in SSE data (%s): %.*s", err.text, (int)data_len, data);
    return j;
}

static void test_stream_errors(void **state)
{
    const char *msg = "upstream \"ant\" failed:\nreset\n\ndata: injected";
    char buf[2048];

    size_t n = sl_surface_stream_error(SL_PROTO_OPENAI, msg, buf, sizeof buf);
    json_t *j = parse_event(buf, n, NULL);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(str(e, "message"), msg);
    assert_string_equal(str(e, "type"), "server_error");
    assert_true(json_is_null(json_object_get(e, "param")));
    json_decref(j);

    n = sl_surface_stream_error(SL_PROTO_ANTHROPIC, msg, buf, sizeof buf);
    j = parse_event(buf, n, "error");
    assert_string_equal(str(j, "type"), "error");
    e = json_object_get(j, "error");
    assert_string_equal(str(e, "type"), "api_error");
    assert_string_equal(str(e, "message"), msg);
    json_decref(j);

    /* Responses: an `error` event, on which the SDK raises. */
    n = sl_surface_stream_error(SL_PROTO_RESPONSES, msg, buf, sizeof buf);
    j = parse_event(buf, n, "error");
    assert_string_equal(str(j, "type"), "error");
    assert_string_equal(str(j, "message"), msg);
    assert_string_equal(str(j, "code"), "server_error");
    json_decref(j);

    n = sl_surface_stream_error(SL_PROTO_GEMINI, msg, buf, sizeof buf);
    j = parse_event(buf, n, NULL);
    e = json_object_get(j, "error");
    assert_true(json_is_integer(json_object_get(e, "code")));
    assert_string_equal(str(e, "message"), msg);
    assert_true(json_is_string(json_object_get(e, "status")));
    json_decref(j);
}

static void test_stream_error_long_message(void **state)
{
    char msg[2000];
    for (size_t i = 0; i + 2 < sizeof msg; i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);
    msg[sizeof msg - 2] = '\0';
    for (int s = 0; s < 3; s++) {
        char buf[2048];
        size_t n = sl_surface_stream_error((sl_proto)s, msg, buf, sizeof buf);
        json_t *j = parse_event(buf, n, s == SL_PROTO_ANTHROPIC ? "error" : NULL);
        json_decref(j);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_openai_shape),
        cmocka_unit_test(test_anthropic_shape),
        cmocka_unit_test(test_gemini_shape),
        cmocka_unit_test(test_message_escaping),
        cmocka_unit_test(test_long_message_truncated_validly),
        cmocka_unit_test(test_invalid_utf8_replaced),
        cmocka_unit_test(test_small_buffer),
        cmocka_unit_test(test_stream_errors),
        cmocka_unit_test(test_stream_error_long_message),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
