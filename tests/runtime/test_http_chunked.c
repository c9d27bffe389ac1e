/*
 * Tests for the chunked body decoder (runtime/http/chunked.c). Every valid
 * body is decoded four ways (in one call, one byte per call, split in two at
 * every point, and in place) and must give the same bytes and stop at the
 * same place, leaving pipelined data alone; every malformed body must fail
 * both in one call and byte by byte. Inputs are copied into exact-size heap
 * blocks so AddressSanitizer catches reads past them.
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

typedef struct decoded {
    int rc;
    size_t consumed;
    char *body;
    size_t body_len;
} decoded;

/* Feed in[0..n) in pieces of at most step bytes (0: one call), continuing
 * after AGAIN, stopping at DONE or ERROR. */
static decoded decode_steps(const char *in, size_t n, size_t step)
{
    decoded d = {SL_CHUNKED_AGAIN, 0, malloc(n + 1), 0};
    assert_non_null(d.body);
    sl_chunked c;
    sl_chunked_init(&c);
    size_t off = 0;
    do {
        size_t piece = step == 0 || n - off < step ? n - off : step;
        char *chunk = malloc(piece ? piece : 1);
        assert_non_null(chunk);
        memcpy(chunk, in + off, piece);
        size_t used = 99999, made = 99999;
        d.rc = sl_chunked_decode(&c, chunk, piece, &used, d.body + d.body_len, &made);
        assert_true(used <= piece);
        assert_true(made <= used);
        if (d.rc == SL_CHUNKED_AGAIN)
            assert_int_equal(used, piece);
        free(chunk);
        off += used;
        d.body_len += made;
    } while (d.rc == SL_CHUNKED_AGAIN && off < n);
    d.consumed = off;
    return d;
}

/* Feed in two calls, split at k. */
static decoded decode_split(const char *in, size_t n, size_t k)
{
    decoded d = {SL_CHUNKED_AGAIN, 0, malloc(n + 1), 0};
    assert_non_null(d.body);
    sl_chunked c;
    sl_chunked_init(&c);
    size_t used, made;
    d.rc = sl_chunked_decode(&c, in, k, &used, d.body, &made);
    d.consumed = used;
    d.body_len = made;
    if (d.rc == SL_CHUNKED_AGAIN) {
        assert_int_equal(used, k);
        d.rc = sl_chunked_decode(&c, in + k, n - k, &used, d.body + made, &made);
        d.consumed += used;
        d.body_len += made;
    }
    return d;
}

static void check_valid(const char *in, size_t n, const char *want_body, size_t want_len, size_t want_consumed)
{
    static const size_t steps[] = {0, 1, 2, 3, 7, 64};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        decoded d = decode_steps(in, n, steps[s]);
        if (d.rc != SL_CHUNKED_DONE || d.consumed != want_consumed || d.body_len != want_len ||
            memcmp(d.body, want_body, want_len) != 0)
            fail_msg("step %zu on \"%.*s\": rc %d consumed %zu (want %zu) body %zu bytes (want %zu)",
                     steps[s], (int)n, in, d.rc, d.consumed, want_consumed, d.body_len, want_len);
        free(d.body);
    }
    for (size_t k = 0; k <= n; k++) {
        decoded d = decode_split(in, n, k);
        if (d.rc != SL_CHUNKED_DONE || d.consumed != want_consumed || d.body_len != want_len ||
            memcmp(d.body, want_body, want_len) != 0)
            fail_msg("split %zu on \"%.*s\": rc %d consumed %zu body %zu bytes", k, (int)n, in, d.rc,
                     d.consumed, d.body_len);
        free(d.body);
    }
    /* In place: out == in. */
    char *copy = malloc(n ? n : 1);
    memcpy(copy, in, n);
    sl_chunked c;
    sl_chunked_init(&c);
    size_t used, made;
    assert_int_equal(sl_chunked_decode(&c, copy, n, &used, copy, &made), SL_CHUNKED_DONE);
    assert_int_equal(used, want_consumed);
    assert_int_equal(made, want_len);
    assert_memory_equal(copy, want_body, want_len);
    free(copy);
}

#define VALID(in, body) check_valid(in, sizeof(in) - 1, body, sizeof(body) - 1, sizeof(in) - 1)

static void test_simple(void **state)
{
    (void)state;
    VALID("5\r\nhello\r\n0\r\n\r\n", "hello");
    VALID("0\r\n\r\n", "");
    VALID("000\r\n\r\n", "");
    VALID("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", "hello world");
    VALID("1\r\na\r\n1\r\nb\r\n1\r\nc\r\n0\r\n\r\n", "abc");
    /* Hex digits of both cases, leading zeros, 16 digits. */
    VALID("a\r\n0123456789\r\nA\r\n0123456789\r\n0\r\n\r\n", "01234567890123456789");
    VALID("0000000000000003\r\nxyz\r\n0000000000000000\r\n\r\n", "xyz");
    /* Data is opaque: CR, LF, NUL and "0\r\n\r\n" inside a chunk are data. */
    VALID("9\r\n0\r\n\r\n\0\r\n\n\r\n0\r\n\r\n", "0\r\n\r\n\0\r\n\n");
}

static void test_extensions(void **state)
{
    (void)state;
    VALID("5;foo=bar\r\nhello\r\n0\r\n\r\n", "hello");
    VALID("5 ;foo\r\nhello\r\n0\r\n\r\n", "hello");
    VALID("5\t \t;foo\r\nhello\r\n0\r\n\r\n", "hello");
    VALID("5; a=1; b=\"x y;z\"\r\nhello\r\n0;last\r\n\r\n", "hello");
    VALID("5;\r\nhello\r\n0\r\n\r\n", "hello");
    VALID("5;caf\xc3\xa9\r\nhello\r\n0\r\n\r\n", "hello");
}

static void test_trailers(void **state)
{
    (void)state;
    VALID("5\r\nhello\r\n0\r\nX-Checksum: abc\r\n\r\n", "hello");
    VALID("0\r\nA: 1\r\nB:2\r\nC:\r\nD: \t x y \t\r\n\r\n", "");
    VALID("0\r\nx!#$%&'*+-.^_`|~9: v\r\n\r\n", "");
}

static void test_large_chunk(void **state)
{
    (void)state;
    size_t len = 100000;
    char *in = malloc(len + 64);
    char *want = malloc(len);
    for (size_t i = 0; i < len; i++)
        want[i] = (char)('a' + i % 26);
    int h = snprintf(in, 64, "%zx\r\n", len);
    memcpy(in + h, want, len);
    memcpy(in + h + len, "\r\n0\r\n\r\n", 7);
    size_t n = (size_t)h + len + 7;
    static const size_t steps[] = {0, 1, 1000, 4096, 65536};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        decoded d = decode_steps(in, n, steps[s]);
        assert_int_equal(d.rc, SL_CHUNKED_DONE);
        assert_int_equal(d.consumed, n);
        assert_int_equal(d.body_len, len);
        assert_memory_equal(d.body, want, len);
        free(d.body);
    }
    free(in);
    free(want);
}

static void test_pipelined(void **state)
{
    (void)state;
    static const char in[] = "3\r\nabc\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.1\r\n";
    size_t n = sizeof in - 1, body_end = n - strlen("GET / HTTP/1.1\r\n");
    check_valid(in, n, "abc", 3, body_end);

    /* After DONE the decoder consumes nothing more. */
    sl_chunked c;
    sl_chunked_init(&c);
    char out[64];
    size_t used, made;
    assert_int_equal(sl_chunked_decode(&c, in, n, &used, out, &made), SL_CHUNKED_DONE);
    assert_int_equal(used, body_end);
    assert_int_equal(sl_chunked_decode(&c, in + used, n - used, &used, out, &made), SL_CHUNKED_DONE);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);

    /* Pipelined bytes that look like chunked data are still left alone. */
    static const char twice[] = "0\r\n\r\n0\r\n\r\n";
    check_valid(twice, sizeof twice - 1, "", 0, 5);
}

static void test_empty_and_again(void **state)
{
    (void)state;
    sl_chunked c;
    sl_chunked_init(&c);
    char out[16];
    size_t used = 1, made = 1;
    assert_int_equal(sl_chunked_decode(&c, "", 0, &used, out, &made), SL_CHUNKED_AGAIN);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);
    /* Partial pieces report what they produced so far. */
    assert_int_equal(sl_chunked_decode(&c, "5\r\nhel", 6, &used, out, &made), SL_CHUNKED_AGAIN);
    assert_int_equal(used, 6);
    assert_int_equal(made, 3);
    assert_memory_equal(out, "hel", 3);
    assert_int_equal(sl_chunked_decode(&c, "lo\r\n", 4, &used, out, &made), SL_CHUNKED_AGAIN);
    assert_int_equal(made, 2);
    assert_int_equal(sl_chunked_decode(&c, "0\r\n\r", 4, &used, out, &made), SL_CHUNKED_AGAIN);
    assert_int_equal(sl_chunked_decode(&c, "\n", 1, &used, out, &made), SL_CHUNKED_DONE);
    assert_int_equal(used, 1);
    /* init makes a finished decoder reusable for the next body. */
    sl_chunked_init(&c);
    assert_int_equal(sl_chunked_decode(&c, "0\r\n\r\n", 5, &used, out, &made), SL_CHUNKED_DONE);
}

/* ---- malformed bodies ---- */

static void check_error(const char *in, size_t n)
{
    static const size_t steps[] = {0, 1, 2, 5};
    for (size_t s = 0; s < sizeof steps / sizeof *steps; s++) {
        decoded d = decode_steps(in, n, steps[s]);
        if (d.rc != SL_CHUNKED_ERROR)
            fail_msg("step %zu on \"%.*s\": rc %d, want ERROR", steps[s], (int)n, in, d.rc);
        free(d.body);
    }
}

#define MALFORMED(in) check_error(in, sizeof(in) - 1)

static void test_bad_sizes(void **state)
{
    (void)state;
    MALFORMED("\r\n");             /* no digits */
    MALFORMED(";ext\r\n");
    MALFORMED("-5\r\nhello\r\n0\r\n\r\n");
    MALFORMED("+5\r\nhello\r\n0\r\n\r\n");
    MALFORMED("0x5\r\nhello\r\n0\r\n\r\n");
    MALFORMED(" 5\r\nhello\r\n0\r\n\r\n");
    MALFORMED("\t5\r\nhello\r\n0\r\n\r\n");
    MALFORMED("5 \r\nhello\r\n0\r\n\r\n");  /* trailing space without ';' */
    MALFORMED("5\t\r\nhello\r\n0\r\n\r\n");
    MALFORMED("5 5\r\nhello\r\n0\r\n\r\n");
    MALFORMED("g\r\n");
    MALFORMED("5g\r\nhello\r\n0\r\n\r\n");
    MALFORMED("5,\r\n");
    MALFORMED("00000000000000005\r\nhello\r\n0\r\n\r\n"); /* 17 digits */
    MALFORMED("4000000000000001\r\n");                    /* over 2^62 */
    MALFORMED("FFFFFFFFFFFFFFFF\r\n");
    MALFORMED("10000000000000000\r\n");
    MALFORMED("5\n\nhello\r\n0\r\n\r\n"); /* bare LF */
    MALFORMED("5\rhello\r\n0\r\n\r\n");   /* bare CR */
    MALFORMED("5\r\r\nhello\r\n0\r\n\r\n");
    MALFORMED("\0\r\n");
    MALFORMED("5;a\x01\r\nhello\r\n0\r\n\r\n");
    MALFORMED("5;a\0\r\nhello\r\n0\r\n\r\n");
    MALFORMED("5;a\nhello\r\n0\r\n\r\n");
    MALFORMED("5;a\x7f\r\nhello\r\n0\r\n\r\n");

    /* The largest size is accepted (the data would follow). */
    sl_chunked c;
    sl_chunked_init(&c);
    size_t used, made;
    char out[32];
    assert_int_equal(sl_chunked_decode(&c, "4000000000000000\r\nab", 20, &used, out, &made), SL_CHUNKED_AGAIN);
    assert_int_equal(made, 2);
}

static void test_bad_data_framing(void **state)
{
    (void)state;
    MALFORMED("5\r\nhelloX\r\n0\r\n\r\n"); /* data longer than its size */
    MALFORMED("5\r\nhell\r\n0\r\n\r\n");   /* shorter: "\r" is data, "\n0" not CRLF */
    MALFORMED("5\r\nhello\n0\r\n\r\n");
    MALFORMED("5\r\nhello\r0\r\n\r\n");
    MALFORMED("5\r\nhello\r\r\n0\r\n\r\n");
    MALFORMED("5\r\nhello0\r\n\r\n");
    MALFORMED("5\r\nhello\r\n\r\n");       /* empty size line after data */
    MALFORMED("0\r\n\n");                  /* bare LF ending the body */
    MALFORMED("0\n\r\n");
    MALFORMED("0\r\n\r\r");
    MALFORMED("0\r\n\rX");
}

static void test_bad_trailers(void **state)
{
    (void)state;
    MALFORMED("0\r\n continued\r\n\r\n");   /* obs-fold / leading whitespace */
    MALFORMED("0\r\n\tX: 1\r\n\r\n");
    MALFORMED("0\r\nA: 1\r\n folded\r\n\r\n");
    MALFORMED("0\r\nX-T 1\r\n\r\n");        /* no colon */
    MALFORMED("0\r\nX T: 1\r\n\r\n");
    MALFORMED("0\r\nX-T : 1\r\n\r\n");
    MALFORMED("0\r\n: 1\r\n\r\n");
    MALFORMED("0\r\nX@T: 1\r\n\r\n");
    MALFORMED("0\r\nX: a\nb\r\n\r\n");
    MALFORMED("0\r\nX: a\rb\r\n\r\n");
    MALFORMED("0\r\nX: a\r\n\n");
    MALFORMED("0\r\nX: \x01\r\n\r\n");
    MALFORMED("0\r\nX: \0\r\n\r\n");
    MALFORMED("0\r\nX\r\n\r\n");
}

static char *repeat_line(const char *head, char fill, size_t fill_len, const char *tail, size_t *len)
{
    size_t h = strlen(head), t = strlen(tail);
    char *s = malloc(h + fill_len + t);
    assert_non_null(s);
    memcpy(s, head, h);
    memset(s + h, fill, fill_len);
    memcpy(s + h + fill_len, tail, t);
    *len = h + fill_len + t;
    return s;
}

static void test_size_line_limit(void **state)
{
    (void)state;
    /* "5;" + pad + "\r\n" is exactly SL_CHUNKED_MAX_LINE bytes: accepted. */
    size_t n;
    char *s = repeat_line("5;", 'x', SL_CHUNKED_MAX_LINE - 4, "\r\nhello\r\n0\r\n\r\n", &n);
    check_valid(s, n, "hello", 5, n);
    free(s);
    s = repeat_line("5;", 'x', SL_CHUNKED_MAX_LINE - 3, "\r\nhello\r\n0\r\n\r\n", &n);
    check_error(s, n);
    free(s);
    /* Refused once past the limit, without waiting for the CR. */
    s = repeat_line("5;", 'x', SL_CHUNKED_MAX_LINE, "", &n);
    decoded d = decode_steps(s, n, 0);
    assert_int_equal(d.rc, SL_CHUNKED_ERROR);
    free(d.body);
    free(s);
    /* The limit is per line, not per body. */
    s = repeat_line("1;", 'x', SL_CHUNKED_MAX_LINE - 4, "\r\na\r\n", &n);
    char *body = malloc(3 * n + 5);
    memcpy(body, s, n);
    memcpy(body + n, s, n);
    memcpy(body + 2 * n, s, n);
    memcpy(body + 3 * n, "0\r\n\r\n", 5);
    check_valid(body, 3 * n + 5, "aaa", 3, 3 * n + 5);
    free(body);
    free(s);
}

static void test_trailer_limit(void **state)
{
    (void)state;
    /* "X: " + pad + "\r\n" + "\r\n" is exactly SL_CHUNKED_MAX_TRAILER bytes. */
    size_t n;
    char *s = repeat_line("0\r\nX: ", 'v', SL_CHUNKED_MAX_TRAILER - 7, "\r\n\r\n", &n);
    check_valid(s, n, "", 0, n);
    free(s);
    s = repeat_line("0\r\nX: ", 'v', SL_CHUNKED_MAX_TRAILER - 6, "\r\n\r\n", &n);
    check_error(s, n);
    free(s);
    /* The cap is on all trailer lines together. */
    char many[SL_CHUNKED_MAX_TRAILER + 64];
    size_t m = (size_t)snprintf(many, sizeof many, "0\r\n");
    while (m < SL_CHUNKED_MAX_TRAILER + 8)
        m += (size_t)snprintf(many + m, sizeof many - m, "A: 123456789\r\n");
    m += (size_t)snprintf(many + m, sizeof many - m, "\r\n");
    check_error(many, m);
}

static void test_error_is_sticky(void **state)
{
    (void)state;
    sl_chunked c;
    sl_chunked_init(&c);
    char out[32];
    size_t used, made;
    assert_int_equal(sl_chunked_decode(&c, "3\r\nabcX", 7, &used, out, &made), SL_CHUNKED_ERROR);
    assert_int_equal(used, 6); /* stops at the bad byte */
    assert_int_equal(made, 3);
    assert_int_equal(sl_chunked_decode(&c, "\r\n0\r\n\r\n", 7, &used, out, &made), SL_CHUNKED_ERROR);
    assert_int_equal(used, 0);
    assert_int_equal(made, 0);
}

static uint32_t rng_state = 777;
static uint32_t rng(void)
{
    /* xorshift: no wrapping arithmetic for -fsanitize=integer to flag. */
    rng_state ^= (rng_state & 0x7ffffu) << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= (rng_state & 0x7ffffffu) << 5;
    return rng_state >> 8;
}

/* Random valid bodies of random chunk sizes, fed in random pieces. */
static void test_random_bodies(void **state)
{
    (void)state;
    for (int iter = 0; iter < 300; iter++) {
        char in[8192], want[4096];
        size_t n = 0, w = 0;
        int chunks = (int)(rng() % 8);
        for (int k = 0; k < chunks; k++) {
            size_t sz = 1 + rng() % 300;
            n += (size_t)snprintf(in + n, sizeof in - n, rng() % 2 ? "%zx" : "%zX", sz);
            if (rng() % 4 == 0)
                n += (size_t)snprintf(in + n, sizeof in - n, " ; ext=\"v\"");
            memcpy(in + n, "\r\n", 2);
            n += 2;
            for (size_t b = 0; b < sz; b++)
                in[n++] = want[w++] = (char)(rng() & 0xff);
            memcpy(in + n, "\r\n", 2);
            n += 2;
        }
        n += (size_t)snprintf(in + n, sizeof in - n, "0\r\n%s\r\nNEXT", rng() % 2 ? "T: x\r\n" : "");
        size_t end = n - 4;

        sl_chunked c;
        sl_chunked_init(&c);
        char out[8192];
        size_t off = 0, o = 0;
        int rc = SL_CHUNKED_AGAIN;
        while (rc == SL_CHUNKED_AGAIN) {
            assert_true(off < n);
            size_t piece = 1 + rng() % 50;
            if (piece > n - off)
                piece = n - off;
            size_t used, made;
            rc = sl_chunked_decode(&c, in + off, piece, &used, out + o, &made);
            off += used;
            o += made;
        }
        assert_int_equal(rc, SL_CHUNKED_DONE);
        assert_int_equal(off, end);
        assert_int_equal(o, w);
        assert_memory_equal(out, want, w);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple),
        cmocka_unit_test(test_extensions),
        cmocka_unit_test(test_trailers),
        cmocka_unit_test(test_large_chunk),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_empty_and_again),
        cmocka_unit_test(test_bad_sizes),
        cmocka_unit_test(test_bad_data_framing),
        cmocka_unit_test(test_bad_trailers),
        cmocka_unit_test(test_size_line_limit),
        cmocka_unit_test(test_trailer_limit),
        cmocka_unit_test(test_error_is_sticky),
        cmocka_unit_test(test_random_bodies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
