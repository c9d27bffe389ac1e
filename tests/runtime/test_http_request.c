/*
 * Tests for the HTTP/1.1 request-head parser (runtime/http/request.re): the
 * fields it fills for valid heads, the status and reason for every head it
 * must refuse, the size limits at their exact edges, and the property the
 * connection code relies on: fed any prefix of a head, the parser says
 * INCOMPLETE (or the same error the whole head gets), never something else.
 * This file: valid heads and the size limits; test_http_request_reject.c:
 * refusals, prefixes and mutations. Every input is copied into a heap block
 * of exactly its length (http_request_fixture.c), so AddressSanitizer
 * catches any read past the caller's bytes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http_request_fixture.h"

/* ---- valid heads ---- */

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET /v1/models HTTP/1.1\r\nHost: localhost:4000\r\nUser-Agent: t\r\n\r\n";
    assert_int_equal(parse(s), SL_HTTP_OK);
    assert_null(why);
    assert_int_equal(req.method, SL_HTTP_GET);
    assert_span(req.method_str, req.method_len, "GET");
    assert_span(req.target, req.target_len, "/v1/models");
    assert_span(req.path, req.path_len, "/v1/models");
    assert_int_equal(req.query_len, 0);
    assert_null(req.authority);
    assert_int_equal(req.version_minor, 1);
    assert_int_equal(req.header_count, 2);
    assert_span(req.headers[0].name, req.headers[0].name_len, "Host");
    assert_span(req.headers[0].value, req.headers[0].value_len, "localhost:4000");
    assert_span(req.headers[1].name, req.headers[1].name_len, "User-Agent");
    assert_int_equal(req.content_length, -1);
    assert_int_equal(req.chunked, 0);
    assert_int_equal(req.keep_alive, 1);
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(req.head_len, strlen(s));
    /* Everything points into the caller's buffer. */
    assert_true(req.target >= buf && req.target + req.target_len <= buf + buf_len);
    assert_true(req.headers[1].value >= buf && req.headers[1].value < buf + buf_len);
}

static void test_query_string(void **state)
{
    (void)state;
    assert_int_equal(parse("GET /v1beta/models/g:generateContent?key=abc&alt=sse HTTP/1.1\r\nHost: h\r\n\r\n"),
                     SL_HTTP_OK);
    assert_span(req.path, req.path_len, "/v1beta/models/g:generateContent");
    assert_span(req.query, req.query_len, "key=abc&alt=sse");
    assert_span(req.target, req.target_len, "/v1beta/models/g:generateContent?key=abc&alt=sse");

    assert_int_equal(parse("GET /?a=1?b=/c HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.path, req.path_len, "/");
    assert_span(req.query, req.query_len, "a=1?b=/c");

    /* '?' with nothing after: empty query. */
    assert_int_equal(parse("GET /x? HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.path, req.path_len, "/x");
    assert_int_equal(req.query_len, 0);

    /* Escapes and the raw characters real clients send in queries. */
    assert_int_equal(parse("GET /a%20b/%C3%A9?ids[]=1&x={y}|z HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.path, req.path_len, "/a%20b/%C3%A9");
    assert_span(req.query, req.query_len, "ids[]=1&x={y}|z");
}

static void test_post_content_length(void **state)
{
    (void)state;
    const char *head = "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\n"
                       "Content-Type: application/json\r\nContent-Length: 13\r\n\r\n";
    char s[512];
    snprintf(s, sizeof s, "%s{\"model\":\"x\"}GET / HTTP/1.1\r\n", head);
    assert_int_equal(parse(s), SL_HTTP_OK);
    assert_int_equal(req.method, SL_HTTP_POST);
    assert_int_equal(req.content_length, 13);
    assert_int_equal(req.chunked, 0);
    assert_int_equal(req.head_len, strlen(head));
    assert_memory_equal(buf + req.head_len, "{\"model\"", 8);

    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.content_length, 0);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\ncontent-length:   007  \r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.content_length, 7);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 4611686018427387904\r\n\r\n"),
                     SL_HTTP_OK);
    assert_int_equal(req.content_length, SL_HTTP_MAX_BODY_SIZE);
}

static void test_chunked_request(void **state)
{
    (void)state;
    const char *bodies[] = {"chunked", "Chunked", "CHUNKED", "  chunked\t ", "\tchunked"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        char s[256];
        snprintf(s, sizeof s, "POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:%s\r\n\r\n5\r\n",
                 bodies[i]);
        if (parse(s) != SL_HTTP_OK)
            fail_msg("Transfer-Encoding:%s -> %s", bodies[i], why);
        assert_int_equal(req.chunked, 1);
        assert_int_equal(req.content_length, -1);
        assert_int_equal(req.head_len, strlen(s) - 3);
    }
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\ntransfer-encoding: chunked\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.chunked, 1);
}

static void test_keep_alive_rules(void **state)
{
    (void)state;
    static const struct {
        const char *version;
        const char *connection; /* NULL: no header */
        int keep_alive;
    } cases[] = {
        {"1.1", NULL, 1},
        {"1.1", "close", 0},
        {"1.1", "Close", 0},
        {"1.1", "keep-alive", 1},
        {"1.1", "Keep-Alive, CLOSE", 0},
        {"1.1", "upgrade,close", 0},
        {"1.1", " , close , ", 0},
        {"1.1", "closed", 1},
        {"1.1", "not-close", 1},
        {"1.1", "TE, Upgrade", 1},
        {"1.0", NULL, 0},
        {"1.0", "keep-alive", 1},
        {"1.0", "Keep-Alive", 1},
        {"1.0", "upgrade, keep-alive", 1},
        {"1.0", "keep-alive, close", 0},
        {"1.0", "close", 0},
        {"1.0", "keep-alives", 0},
        {"1.0", "", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char s[256];
        if (cases[i].connection)
            snprintf(s, sizeof s, "GET / HTTP/%s\r\nHost: h\r\nConnection: %s\r\n\r\n", cases[i].version,
                     cases[i].connection);
        else
            snprintf(s, sizeof s, "GET / HTTP/%s\r\nHost: h\r\n\r\n", cases[i].version);
        assert_int_equal(parse(s), SL_HTTP_OK);
        if (req.keep_alive != cases[i].keep_alive)
            fail_msg("HTTP/%s Connection: %s -> keep_alive %d", cases[i].version,
                     cases[i].connection ? cases[i].connection : "(none)", req.keep_alive);
    }
    /* Several Connection headers are one list. */
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"),
                     SL_HTTP_OK);
    assert_int_equal(req.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: upgrade\r\nConnection: keep-alive\r\n\r\n"),
                     SL_HTTP_OK);
    assert_int_equal(req.keep_alive, 1);
}

static void test_expect_continue(void **state)
{
    (void)state;
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"),
                     SL_HTTP_OK);
    assert_int_equal(req.expect_continue, 1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nexpect:  100-Continue \r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.expect_continue, 1);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue-ish\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.expect_continue, 0);
    assert_int_equal(parse("POST / HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.expect_continue, 0);
    /* RFC 9110 10.1.1: ignored in HTTP/1.0. */
    assert_int_equal(parse("POST / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.expect_continue, 0);
}

static void test_header_values(void **state)
{
    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX-A: \t v a\tl \t \r\nX-Empty:\r\n"
                           "X-Spaces:    \r\nX-Tight:v\r\nX-Obs: caf\xc3\xa9\r\n"
                           "Authorization: Bearer sk-abc==\r\n\r\n"),
                     SL_HTTP_OK);
    assert_int_equal(req.header_count, 7);
    assert_header("x-a", "v a\tl");
    assert_header("X-EMPTY", "");
    assert_header("x-spaces", "");
    assert_header("X-Tight", "v");
    assert_header("x-obs", "caf\xc3\xa9");
    assert_header("authorization", "Bearer sk-abc==");
    /* Names keep the client's case; lookup ignores it. */
    assert_span(req.headers[1].name, req.headers[1].name_len, "X-A");
    assert_null(sl_http_find_header(&req, "X-Missing"));
    assert_null(sl_http_find_header(&req, "X-"));
    assert_null(sl_http_find_header(&req, "X-Tigh"));
    /* Token characters in names. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nx!#$%&'*+-.^_`|~9: 1\r\n\r\n"), SL_HTTP_OK);
    assert_header("X!#$%&'*+-.^_`|~9", "1");
    /* First of several same-named headers. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: h\r\nX-R: 1\r\nx-r: 2\r\n\r\n"), SL_HTTP_OK);
    assert_header("x-r", "1");
}

static void test_methods(void **state)
{
    (void)state;
    static const struct {
        const char *m;
        sl_http_method want;
    } cases[] = {
        {"GET", SL_HTTP_GET},         {"HEAD", SL_HTTP_HEAD},       {"POST", SL_HTTP_POST},
        {"PUT", SL_HTTP_PUT},         {"DELETE", SL_HTTP_DELETE},   {"OPTIONS", SL_HTTP_OPTIONS},
        {"PATCH", SL_HTTP_PATCH},     {"get", SL_HTTP_OTHER},       {"Post", SL_HTTP_OTHER},
        {"GETS", SL_HTTP_OTHER},      {"GE", SL_HTTP_OTHER},        {"TRACE", SL_HTTP_OTHER},
        {"M-SEARCH", SL_HTTP_OTHER},  {"PROPFIND", SL_HTTP_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        char s[128];
        snprintf(s, sizeof s, "%s /x HTTP/1.1\r\nHost: h\r\n\r\n", cases[i].m);
        assert_int_equal(parse(s), SL_HTTP_OK);
        if (req.method != cases[i].want)
            fail_msg("%s -> %d", cases[i].m, req.method);
        assert_span(req.method_str, req.method_len, cases[i].m);
    }
}

static void test_target_forms(void **state)
{
    (void)state;
    assert_int_equal(parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.method, SL_HTTP_OPTIONS);
    assert_span(req.target, req.target_len, "*");
    assert_span(req.path, req.path_len, "*");

    assert_int_equal(parse("GET http://example.com:8080/a/b?x=1 HTTP/1.1\r\nHost: other\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.authority, req.authority_len, "example.com:8080");
    assert_span(req.path, req.path_len, "/a/b");
    assert_span(req.query, req.query_len, "x=1");
    assert_span(req.target, req.target_len, "http://example.com:8080/a/b?x=1");

    assert_int_equal(parse("GET https://[::1] HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.authority, req.authority_len, "[::1]");
    assert_span(req.path, req.path_len, "/");
    assert_int_equal(req.query_len, 0);

    assert_int_equal(parse("GET http://h?q HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.path, req.path_len, "/");
    assert_span(req.query, req.query_len, "q");

    assert_int_equal(parse("GET // HTTP/1.1\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_span(req.path, req.path_len, "//");
}

static void test_versions(void **state)
{
    (void)state;
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.version_minor, 0);
    assert_int_equal(req.header_count, 0);
    assert_int_equal(req.keep_alive, 0);
    /* A higher 1.x is read as 1.1 and so needs Host. */
    assert_int_equal(parse("GET / HTTP/1.9\r\nHost: h\r\n\r\n"), SL_HTTP_OK);
    assert_int_equal(req.version_minor, 1);
    assert_int_equal(req.keep_alive, 1);
    assert_int_equal(parse("GET / HTTP/1.2\r\n\r\n"), -400);
}

static void test_host_values(void **state)
{
    (void)state;
    const char *ok[] = {"example.com", "example.com:443", "127.0.0.1:4000", "[::1]:4000", "[v1.x]",
                        "", "localhost:", "xn--bcher-kva.example", "a%41b"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        char s[128];
        snprintf(s, sizeof s, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", ok[i]);
        if (parse(s) != SL_HTTP_OK)
            fail_msg("Host: %s -> %s", ok[i], why);
        assert_header("host", ok[i]);
    }
}

static void test_leading_empty_lines(void **state)
{
    (void)state;
    const char *s = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    assert_int_equal(parse(s), SL_HTTP_OK);
    assert_int_equal(req.head_len, strlen(s));
    assert_span(req.method_str, req.method_len, "GET");
    assert_int_equal(parse("\r\n"), SL_HTTP_INCOMPLETE);
    assert_int_equal(parse("\r\n\r"), SL_HTTP_INCOMPLETE);
    assert_int_equal(parse("\n"), -400);
    assert_int_equal(parse("\r\n\nGET / HTTP/1.1\r\n"), -400);
}

/* ---- limits ---- */

static char *make_head_with_headers(size_t extra)
{
    size_t cap = 64 + extra * 32;
    char *s = malloc(cap);
    assert_non_null(s);
    size_t n = (size_t)snprintf(s, cap, "GET / HTTP/1.1\r\nHost: h\r\n");
    for (size_t i = 0; i < extra; i++)
        n += (size_t)snprintf(s + n, cap - n, "X-H%zu: v%zu\r\n", i, i);
    snprintf(s + n, cap - n, "\r\n");
    return s;
}

static void test_header_count_limit(void **state)
{
    (void)state;
    char *s = make_head_with_headers(SL_HTTP_MAX_HEADERS - 1); /* Host + 99 = 100 */
    assert_int_equal(parse(s), SL_HTTP_OK);
    assert_int_equal(req.header_count, SL_HTTP_MAX_HEADERS);
    assert_header("x-h98", "v98");
    /* max_headers above the array size is clamped, not trusted. */
    assert_int_equal(parse_n(s, strlen(s), BIG_HEAD, 1000), SL_HTTP_OK);
    free(s);

    s = make_head_with_headers(SL_HTTP_MAX_HEADERS);
    assert_int_equal(parse(s), -431);
    assert_string_equal(why, "too many header fields");
    assert_int_equal(parse_n(s, strlen(s), BIG_HEAD, 1000), -431);
    free(s);

    s = make_head_with_headers(4);
    assert_int_equal(parse_n(s, strlen(s), BIG_HEAD, 5), SL_HTTP_OK);
    assert_int_equal(req.header_count, 5);
    assert_int_equal(parse_n(s, strlen(s), BIG_HEAD, 4), -431);
    /* Reported as soon as the extra line is in, before the head ends. */
    assert_int_equal(parse_n(s, strlen(s) - 2, BIG_HEAD, 4), -431);
    free(s);

    assert_int_equal(parse_n("GET / HTTP/1.0\r\n\r\n", 18, BIG_HEAD, 0), SL_HTTP_OK);
    assert_int_equal(parse_n("GET / HTTP/1.1\r\nHost: h\r\n\r\n", 27, BIG_HEAD, 0), -431);
}

static void test_max_head(void **state)
{
    (void)state;
    const char *s = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: aaaaaaaaaa\r\n\r\n";
    size_t n = strlen(s);
    /* Exactly max_head bytes: fine, and bytes past it do not matter. */
    assert_int_equal(parse_n(s, n, n, SL_HTTP_MAX_HEADERS), SL_HTTP_OK);
    assert_int_equal(req.head_len, n);
    char *more = malloc(n + 100);
    memcpy(more, s, n);
    memset(more + n, 'z', 100);
    assert_int_equal(parse_n(more, n + 100, n, SL_HTTP_MAX_HEADERS), SL_HTTP_OK);
    assert_int_equal(req.head_len, n);
    free(more);
    /* One byte over: the head has not ended within max_head. */
    assert_int_equal(parse_n(s, n, n - 1, SL_HTTP_MAX_HEADERS), -431);
    assert_string_equal(why, "request head too large");
    /* Incomplete with len < max_head waits; len == max_head refuses. */
    assert_int_equal(parse_n(s, n - 1, n, SL_HTTP_MAX_HEADERS), SL_HTTP_INCOMPLETE);
    assert_int_equal(parse_n(s, n - 1, n - 1, SL_HTTP_MAX_HEADERS), -431);
    assert_int_equal(parse_n(s, 30, 30, SL_HTTP_MAX_HEADERS), -431);
    assert_int_equal(parse_n(s, 30, 31, SL_HTTP_MAX_HEADERS), SL_HTTP_INCOMPLETE);
    /* max_head ends inside the request line: that line is too long. */
    assert_int_equal(parse_n(s, n, 10, SL_HTTP_MAX_HEADERS), -414);
    assert_int_equal(parse_n(s, 0, 0, SL_HTTP_MAX_HEADERS), -414);
    assert_int_equal(parse_n(s, 0, 1, SL_HTTP_MAX_HEADERS), SL_HTTP_INCOMPLETE);
}

static char *make_long_line(size_t line_len, const char *rest)
{
    /* "GET /aaaa HTTP/1.1" with line_len bytes before the CRLF. */
    size_t fixed = strlen("GET / HTTP/1.1");
    size_t n = line_len + 2 + strlen(rest);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memcpy(s, "GET /", 5);
    memset(s + 5, 'a', line_len - fixed);
    memcpy(s + 5 + line_len - fixed, " HTTP/1.1\r\n", 11);
    strcpy(s + line_len + 2, rest);
    return s;
}

static void test_request_line_limit(void **state)
{
    (void)state;
    char *s = make_long_line(SL_HTTP_MAX_REQUEST_LINE, "Host: h\r\n\r\n");
    assert_int_equal(parse(s), SL_HTTP_OK);
    assert_int_equal(req.target_len, SL_HTTP_MAX_REQUEST_LINE - strlen("GET  HTTP/1.1"));
    free(s);

    s = make_long_line(SL_HTTP_MAX_REQUEST_LINE + 1, "Host: h\r\n\r\n");
    assert_int_equal(parse(s), -414);
    assert_string_equal(why, "request line too long");
    /* Known as soon as the line passes the limit, with no CRLF in sight. */
    assert_int_equal(parse_n(s, SL_HTTP_MAX_REQUEST_LINE + 2, BIG_HEAD, SL_HTTP_MAX_HEADERS), -414);
    assert_int_equal(parse_n(s, SL_HTTP_MAX_REQUEST_LINE, BIG_HEAD, SL_HTTP_MAX_HEADERS),
                     SL_HTTP_INCOMPLETE);
    free(s);

    /* The limit applies after skipped empty lines, not from byte 0. */
    char *line = make_long_line(SL_HTTP_MAX_REQUEST_LINE, "Host: h\r\n\r\n");
    size_t n = strlen(line);
    s = malloc(n + 5);
    memcpy(s, "\r\n\r\n", 4);
    memcpy(s + 4, line, n + 1);
    assert_int_equal(parse(s), SL_HTTP_OK);
    free(line);
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_simple_get, teardown),
        cmocka_unit_test_teardown(test_query_string, teardown),
        cmocka_unit_test_teardown(test_post_content_length, teardown),
        cmocka_unit_test_teardown(test_chunked_request, teardown),
        cmocka_unit_test_teardown(test_keep_alive_rules, teardown),
        cmocka_unit_test_teardown(test_expect_continue, teardown),
        cmocka_unit_test_teardown(test_header_values, teardown),
        cmocka_unit_test_teardown(test_methods, teardown),
        cmocka_unit_test_teardown(test_target_forms, teardown),
        cmocka_unit_test_teardown(test_versions, teardown),
        cmocka_unit_test_teardown(test_host_values, teardown),
        cmocka_unit_test_teardown(test_leading_empty_lines, teardown),
        cmocka_unit_test_teardown(test_header_count_limit, teardown),
        cmocka_unit_test_teardown(test_max_head, teardown),
        cmocka_unit_test_teardown(test_request_line_limit, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
