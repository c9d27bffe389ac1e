/*
 * Tests for the HTTP/1.1 request-head parser (runtime/http/request.re): the
 * status and reason for every head it must refuse, and the property the
 * connection code relies on: fed any prefix of a head, the parser says
 * INCOMPLETE (or the same error the whole head gets), never something else;
 * random mutations of valid heads never crash it. Every input is copied into
 * a heap block of exactly its length (http_request_fixture.c), so
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
#include "http_request_fixture.h"

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
