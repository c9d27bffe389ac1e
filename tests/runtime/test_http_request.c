/*
 * Tests for the HTTP/1.1 request-head parser (runtime/http/request.re): the
 * fields it fills for valid heads, the status and reason for every head it
 * must refuse, the size limits at their exact edges, and the property the
 * connection code relies on: fed any prefix of a head, the parser says
 * INCOMPLETE (or the same error the whole head gets), never something else.
 * Every input is copied into a heap block of exactly its length, so
 * AddressSanitizer catches any read past the caller's bytes.
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

#define BIG_HEAD ((size_t)1 << 20)

static char *buf;
static size_t buf_len;
static sl_http_request req;
static sl_http_header req_headers[SL_HTTP_MAX_HEADERS];
static const char *why;

/* Parse s[0..n) from a fresh exact-size heap copy kept until the next call. */
static int parse_n(const char *s, size_t n, size_t max_head, size_t max_headers)
{
    free(buf);
    buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    buf_len = n;
    why = NULL;
    req.headers = req_headers;
    req.header_cap = SL_HTTP_MAX_HEADERS;
    return sl_http_parse_request(buf, n, max_head, max_headers, &req, &why);
}

static int parse(const char *s)
{
    return parse_n(s, strlen(s), BIG_HEAD, SL_HTTP_MAX_HEADERS);
}

static int teardown(void **state)
{
    (void)state;
    free(buf);
    buf = NULL;
    return 0;
}

static void assert_span(const char *p, size_t n, const char *want)
{
    if (n != strlen(want) || (n && memcmp(p, want, n) != 0))
        fail_msg("got \"%.*s\" (%zu), want \"%s\"", (int)n, p ? p : "", n, want);
}

static void assert_header(const char *name, const char *want)
{
    const sl_http_header *h = sl_http_find_header(&req, name);
    if (h == NULL)
        fail_msg("header %s missing", name);
    assert_span(h->value, h->value_len, want);
}

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

/* ---- rejections ---- */

typedef struct reject_case {
    const char *head;
    int status;
    const char *why; /* expected reason, or NULL to skip the check */
} reject_case;

#define H11 "GET / HTTP/1.1\r\nHost: h\r\n"
#define P11 "POST / HTTP/1.1\r\nHost: h\r\n"

static const reject_case rejects[] = {
    /* line endings and bytes */
    {"GET / HTTP/1.1\n\n", -400, "bare LF"},
    {"GET / HTTP/1.1\r\nHost: h\n\r\n", -400, "bare LF"},
    {"GET / HTTP/1.1\r\nHost: h\r\n\n", -400, "bare LF"},
    {"GET / HTTP/1.1\rHost: h\r\n\r\n", -400, "bare CR"},
    {"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", -400, "bare CR"},
    {H11 "X: a\rb\r\n\r\n", -400, "bare CR"},
    {H11 "\r\r\n", -400, NULL},
    {H11 "X: a\x01" "b\r\n\r\n", -400, "control character"},
    {H11 "X: a\x7f\r\n\r\n", -400, "control character"},
    {H11 "X: \x1b[0m\r\n\r\n", -400, "control character"},
    {"GET /\x01 HTTP/1.1\r\nHost: h\r\n\r\n", -400, "control character"},
    {"GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    /* request line */
    {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", -400, NULL},
    {"GET /\tHTTP/1.1\r\nHost: h\r\n\r\n", -400, NULL},
    {"GET / HTTP/1.1\t\r\nHost: h\r\n\r\n", -400, NULL},
    {"GET /\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"GET HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"/ HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"GET / HTTP/1.1 extra\r\nHost: h\r\n\r\n", -400, "malformed request line"},
    {"\r\n \r\n", -400, "malformed request line"},
    /* version */
    {"GET / http/1.1\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/1\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/1.\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/11\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTPS/1.1\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/2\r\nHost: h\r\n\r\n", -400, "malformed HTTP version"},
    {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", -505, "unsupported HTTP version"},
    {"GET / HTTP/3.0\r\nHost: h\r\n\r\n", -505, "unsupported HTTP version"},
    {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", -505, "unsupported HTTP version"},
    {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -505, "unsupported HTTP version"},
    /* target */
    {"GET foo HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET /a#frag HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET /a%2 HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET /a?b=% HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", -400, "'*' target without OPTIONS"},
    {"OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n", -400, "malformed request target"},
    {"GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET http:/a HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET 1http://h/ HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET http://h/a#b HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET http://h{}/ HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET http://user@h/ HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    {"GET http://h/a%g0 HTTP/1.1\r\nHost: h\r\n\r\n", -400, "malformed request target"},
    /* header lines */
    {H11 "X-A : 1\r\n\r\n", -400, "whitespace before colon"},
    {H11 "X-A\t: 1\r\n\r\n", -400, "whitespace before colon"},
    {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", -400, "whitespace before colon"},
    {H11 "X-A 1\r\n\r\n", -400, "malformed header line"},
    {H11 "X-A\r\n\r\n", -400, "malformed header line"},
    {H11 ": 1\r\n\r\n", -400, "empty header name"},
    {H11 "X@Y: 1\r\n\r\n", -400, "malformed header line"},
    {H11 "X(Y): 1\r\n\r\n", -400, "malformed header line"},
    {H11 "X\xc3\xa9: 1\r\n\r\n", -400, "malformed header line"},
    {H11 "X-A: 1\r\n continued\r\n\r\n", -400, "obs-fold or whitespace before header"},
    {H11 "X-A: 1\r\n\tcontinued\r\n\r\n", -400, "obs-fold or whitespace before header"},
    {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", -400, "obs-fold or whitespace before header"},
    /* Content-Length */
    {P11 "Content-Length: abc\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length:\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length:   \r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: -1\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: +1\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 1 2\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 0x10\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 1.0\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 5, 5\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 5,5\r\n\r\n", -400, "invalid Content-Length"},
    {P11 "Content-Length: 4611686018427387905\r\n\r\n", -400, "Content-Length too large"},
    {P11 "Content-Length: 9223372036854775808\r\n\r\n", -400, "Content-Length too large"},
    {P11 "Content-Length: 99999999999999999999999999\r\n\r\n", -400, "Content-Length too large"},
    {P11 "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", -400, "duplicate Content-Length"},
    {P11 "Content-Length: 5\r\ncontent-length: 6\r\n\r\n", -400, "duplicate Content-Length"},
    {P11 "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", -400, "Content-Length with Transfer-Encoding"},
    {P11 "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n", -400, "Content-Length with Transfer-Encoding"},
    {P11 "Transfer-Encoding: chunked\r\nContent-Length: x\r\n\r\n", -400, "Content-Length with Transfer-Encoding"},
    /* Transfer-Encoding */
    {P11 "Transfer-Encoding: chunked,\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: ,chunked\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: gzip, chunked\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: chunked, chunked\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: chunked, gzip\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: chunked;q=1\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: chun ked\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: \"chunked\"\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding:\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: \xc3\xa9\r\n\r\n", -400, "invalid Transfer-Encoding"},
    {P11 "Transfer-Encoding: gzip\r\n\r\n", -501, "unsupported transfer coding"},
    {P11 "Transfer-Encoding: identity\r\n\r\n", -501, "unsupported transfer coding"},
    {P11 "Transfer-Encoding: chunkedx\r\n\r\n", -501, "unsupported transfer coding"},
    {P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", -400, "duplicate Transfer-Encoding"},
    {P11 "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n", -501, "unsupported transfer coding"},
    {P11 "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n\r\n", -400, "duplicate Transfer-Encoding"},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400, "Transfer-Encoding in HTTP/1.0"},
    {"POST / HTTP/1.0\r\nTransfer-Encoding: gzip\r\n\r\n", -400, "Transfer-Encoding in HTTP/1.0"},
    /* Host */
    {"GET / HTTP/1.1\r\n\r\n", -400, "missing Host"},
    {"GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", -400, "missing Host"},
    {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400, "duplicate Host"},
    {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -400, "duplicate Host"},
    {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400, "invalid Host"},
    {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400, "invalid Host"},
    {"GET / HTTP/1.1\r\nHost: user@a\r\n\r\n", -400, "invalid Host"},
    {"GET / HTTP/1.1\r\nHost: a:80x\r\n\r\n", -400, "invalid Host"},
    {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400, "invalid Host"},
};

static void test_rejections(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rejects / sizeof *rejects; i++) {
        const reject_case *c = &rejects[i];
        int rc = parse(c->head);
        if (rc != c->status)
            fail_msg("case %zu %s: got %d (%s), want %d", i, c->head, rc, why ? why : "-", c->status);
        if (why == NULL)
            fail_msg("case %zu: no reason", i);
        if (c->why && strcmp(why, c->why) != 0)
            fail_msg("case %zu %s: reason \"%s\", want \"%s\"", i, c->head, why, c->why);
    }
}

/* A prefix of a refused head is INCOMPLETE or already refused the same way. */
static void test_rejections_incremental(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rejects / sizeof *rejects; i++) {
        const reject_case *c = &rejects[i];
        size_t n = strlen(c->head);
        for (size_t k = 0; k < n; k++) {
            int rc = parse_n(c->head, k, BIG_HEAD, SL_HTTP_MAX_HEADERS);
            if (rc != SL_HTTP_INCOMPLETE && rc != c->status)
                fail_msg("case %zu split %zu: got %d (%s), want INCOMPLETE or %d", i, k, rc,
                         why ? why : "-", c->status);
        }
    }
}

static void test_null_byte(void **state)
{
    (void)state;
#define WITH_LEN(s) {s, sizeof(s) - 1}
    static const struct {
        const char *s;
        size_t n;
    } cases[] = {
        WITH_LEN("GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n"),
        WITH_LEN("GET / HTTP/1.1\r\nHost: h\r\nX\0: a\r\n\r\n"),
        WITH_LEN("GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n"),
        WITH_LEN("G\0T / HTTP/1.1\r\nHost: h\r\n\r\n"),
        WITH_LEN("\0"),
        WITH_LEN("GET / HTTP/1.1\r\nHost: h\r\n\0\r\n"),
        WITH_LEN("GET / HTTP/1.1\r\nHost: h\0\r\n\r\n"),
        WITH_LEN("GET / HTTP/1.1\r\nHost: h\r\nX: \0\r\n\r\n"),
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int rc = parse_n(cases[i].s, cases[i].n, BIG_HEAD, SL_HTTP_MAX_HEADERS);
        if (rc != -400)
            fail_msg("case %zu: got %d", i, rc);
    }
    /* Refused as soon as the NUL is seen. */
    assert_int_equal(parse_n("GET / HTTP/1.1\r\nHost: h\r\nX: a\0", 30, BIG_HEAD, SL_HTTP_MAX_HEADERS), -400);
    assert_string_equal(why, "NUL byte");
}

static void test_null_why(void **state)
{
    (void)state;
    static const char bad[] = "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n";
    static const char good[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    req.headers = req_headers;
    req.header_cap = SL_HTTP_MAX_HEADERS;
    assert_int_equal(sl_http_parse_request(bad, sizeof bad - 1, BIG_HEAD, 100, &req, NULL), -400);
    assert_int_equal(sl_http_parse_request(good, sizeof good - 1, BIG_HEAD, 100, &req, NULL), SL_HTTP_OK);
    assert_int_equal(sl_http_parse_request(good, 5, BIG_HEAD, 100, &req, NULL), SL_HTTP_INCOMPLETE);
    /* An empty buffer, even without storage behind it. */
    assert_int_equal(sl_http_parse_request(NULL, 0, BIG_HEAD, 100, &req, &why), SL_HTTP_INCOMPLETE);
    assert_null(why);
}

static void test_early_errors(void **state)
{
    (void)state;
    /* Refused before the head is complete: no need to wait for CRLFCRLF. */
    assert_int_equal(parse(P11 "Content-Length: 1\r\nContent-Length: 1\r\n"), -400);
    assert_int_equal(parse("GET / HTTP/1.1\n"), -400);
    assert_int_equal(parse("GET / HTTP/2.0\r\n"), -505);
    assert_int_equal(parse("GET  "), -400);
    assert_int_equal(parse(H11 " "), -400);
    /* Missing Host can only be known at the end. */
    assert_int_equal(parse("GET / HTTP/1.1\r\nX: y\r\n"), SL_HTTP_INCOMPLETE);
}

/* ---- incremental parsing ---- */

static const char *valid_heads[] = {
    "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /v1/models?limit=10 HTTP/1.1\r\nHost: localhost:4000\r\nAuthorization: Bearer sk-x\r\n"
    "Accept: */*\r\nConnection: close\r\n\r\n",
    "POST /v1/chat/completions HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\n"
    "Content-Length: 1234\r\nExpect: 100-continue\r\nX-Empty:\r\nX-Ws: \t a b \t\r\n\r\n",
    "POST /v1/messages HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nanthropic-version: 2023-06-01\r\n\r\n",
    "GET / HTTP/1.0\r\n\r\n",
    "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    "\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET http://example.com/x?y HTTP/1.1\r\nHost: example.com\r\n\r\n",
};

static void test_every_split_point(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof valid_heads / sizeof *valid_heads; i++) {
        const char *s = valid_heads[i];
        size_t n = strlen(s);
        assert_int_equal(parse(s), SL_HTTP_OK);
        sl_http_request full = req;
        for (size_t k = 0; k < n; k++) {
            int rc = parse_n(s, k, BIG_HEAD, SL_HTTP_MAX_HEADERS);
            if (rc != SL_HTTP_INCOMPLETE)
                fail_msg("head %zu split %zu: got %d (%s)", i, k, rc, why ? why : "-");
        }
        /* Complete again, with pipelined bytes after it. */
        char *more = malloc(n + 16);
        memcpy(more, s, n);
        memcpy(more + n, "GET / HTTP/1.1\r\n", 16);
        assert_int_equal(parse_n(more, n + 16, BIG_HEAD, SL_HTTP_MAX_HEADERS), SL_HTTP_OK);
        free(more);
        assert_int_equal(req.head_len, n);
        assert_int_equal(req.head_len, full.head_len);
        assert_int_equal(req.header_count, full.header_count);
        assert_int_equal(req.method, full.method);
        assert_int_equal(req.content_length, full.content_length);
        assert_int_equal(req.chunked, full.chunked);
        assert_int_equal(req.keep_alive, full.keep_alive);
        assert_int_equal(req.expect_continue, full.expect_continue);
        assert_int_equal(req.version_minor, full.version_minor);
        assert_int_equal(req.target_len, full.target_len);
    }
}

/* ---- robustness ---- */

static uint32_t rng_state = 12345;
static uint32_t rng(void)
{
    /* xorshift: no wrapping arithmetic for -fsanitize=integer to flag. */
    rng_state ^= (rng_state & 0x7ffffu) << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= (rng_state & 0x7ffffffu) << 5;
    return rng_state >> 8;
}

/* Mutated heads: whatever comes back, nothing is read out of bounds and an
 * OK result only ever points inside the buffer. */
static void test_mutations(void **state)
{
    (void)state;
    static const unsigned char alphabet[] = {'\r', '\n', ' ', '\t', ':', '\0', ',', '/', '?', '%',
                                             'a', '0', 'G', 0x7f, 0x80, 0xff, ';', '*'};
    int ok = 0, errors = 0, incomplete = 0;
    for (int iter = 0; iter < 20000; iter++) {
        const char *base = valid_heads[rng() % (sizeof valid_heads / sizeof *valid_heads)];
        size_t n = strlen(base);
        char m[512];
        memcpy(m, base, n);
        int edits = 1 + (int)(rng() % 3);
        for (int e = 0; e < edits; e++) {
            size_t at = rng() % n;
            switch (rng() % 3) {
            case 0:
                m[at] = (char)alphabet[rng() % sizeof alphabet];
                break;
            case 1: /* delete */
                memmove(m + at, m + at + 1, n - at - 1);
                n--;
                break;
            default: /* insert */
                if (n + 1 < sizeof m) {
                    memmove(m + at + 1, m + at, n - at);
                    m[at] = (char)alphabet[rng() % sizeof alphabet];
                    n++;
                }
            }
        }
        size_t max_head = 16 + rng() % 256;
        int rc = parse_n(m, n, max_head, 1 + rng() % SL_HTTP_MAX_HEADERS);
        if (rc == SL_HTTP_OK) {
            ok++;
            assert_true(req.head_len <= n && req.head_len <= max_head);
            assert_true(req.head_len >= 4);
            assert_memory_equal(buf + req.head_len - 4, "\r\n\r\n", 4);
            for (size_t h = 0; h < req.header_count; h++) {
                assert_true(req.headers[h].name >= buf);
                assert_true(req.headers[h].value + req.headers[h].value_len <= buf + req.head_len);
                assert_true(req.headers[h].name_len > 0);
            }
        } else if (rc == SL_HTTP_INCOMPLETE) {
            incomplete++;
            assert_true(n < max_head);
        } else {
            errors++;
            assert_non_null(why);
            assert_true(rc == -400 || rc == -414 || rc == -431 || rc == -501 || rc == -505);
        }
    }
    /* The corpus exercises all three outcomes. */
    assert_true(ok > 0 && errors > 0 && incomplete > 0);
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
        cmocka_unit_test_teardown(test_rejections, teardown),
        cmocka_unit_test_teardown(test_rejections_incremental, teardown),
        cmocka_unit_test_teardown(test_null_byte, teardown),
        cmocka_unit_test_teardown(test_null_why, teardown),
        cmocka_unit_test_teardown(test_early_errors, teardown),
        cmocka_unit_test_teardown(test_every_split_point, teardown),
        cmocka_unit_test_teardown(test_mutations, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
