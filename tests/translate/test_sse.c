/*
 * The SSE parser against the framing variations upstreams actually send:
 * every line ending, data split at every byte, multi-line data, comments,
 * events without a name, a missing final blank line, and the size cap.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate/sse.h"

typedef struct collected {
    char names[16][64];
    char datas[16][256];
    int n;
    int stop_after;  /* return 7 from the callback after this many */
} collected;

static int collect(void *ctx, const sl_sse_event *ev)
{
    collected *c = ctx;
    if (c->n < 16) {
        snprintf(c->names[c->n], sizeof c->names[0], "%.*s", (int)ev->event_len, ev->event);
        snprintf(c->datas[c->n], sizeof c->datas[0], "%.*s", (int)ev->data_len, ev->data);
        assert_int_equal(ev->data[ev->data_len], '\0');
    }
    c->n++;
    return c->stop_after && c->n >= c->stop_after ? 7 : 0;
}

/* Feeds the input whole, then in every two-piece split, then byte by byte,
 * expecting the same events each time. */
static void check_all_splits(const char *in, int want_n, const char *const *names,
                             const char *const *datas)
{
    size_t len = strlen(in);
    for (size_t split = 0; split <= len + 1; split++) {
        sl_sse p;
        sl_sse_init(&p, 0);
        collected c = {0};
        if (split <= len) {
            assert_int_equal(sl_sse_feed(&p, in, split, collect, &c), 0);
            assert_int_equal(sl_sse_feed(&p, in + split, len - split, collect, &c), 0);
        } else {
            for (size_t i = 0; i < len; i++)
                assert_int_equal(sl_sse_feed(&p, in + i, 1, collect, &c), 0);
        }
        assert_int_equal(sl_sse_finish(&p, collect, &c), 0);
        assert_int_equal(c.n, want_n);
        for (int i = 0; i < want_n; i++) {
            assert_string_equal(c.names[i], names[i]);
            assert_string_equal(c.datas[i], datas[i]);
        }
        sl_sse_free(&p);
    }
}

static void test_lf(void **state)
{
    const char *names[] = {"message_start", ""};
    const char *datas[] = {"{\"a\":1}", "[DONE]"};
    check_all_splits("event: message_start\ndata: {\"a\":1}\n\ndata: [DONE]\n\n", 2, names, datas);
}

static void test_crlf(void **state)
{
    const char *names[] = {"", ""};
    const char *datas[] = {"{\"candidates\":[]}", "x"};
    check_all_splits("data: {\"candidates\":[]}\r\n\r\ndata: x\r\n\r\n", 2, names, datas);
}

static void test_cr_only(void **state)
{
    const char *names[] = {"ping", "e2"};
    const char *datas[] = {"1", "2"};
    check_all_splits("event: ping\rdata: 1\r\revent: e2\rdata: 2\r\r", 2, names, datas);
}

static void test_multiline_data_and_comments(void **state)
{
    const char *names[] = {"", "x"};
    const char *datas[] = {"line1\nline2\n\nline4", "after"};
    check_all_splits(": keep-alive\n\ndata: line1\ndata:line2\ndata\ndata: line4\n\n"
                     ": another comment\nevent: x\nid: 7\nretry: 1000\ndata: after\n\n",
                     2, names, datas);
}

static void test_no_data_no_event(void **state)
{
    /* An event: line alone, then a blank line, dispatches nothing and the
     * name does not leak into the next event. */
    const char *names[] = {""};
    const char *datas[] = {"d"};
    check_all_splits("event: lonely\n\ndata: d\n\n", 1, names, datas);
}

static void test_missing_final_blank_line(void **state)
{
    const char *names[] = {"", ""};
    const char *datas[] = {"a", "b"};
    check_all_splits("data: a\n\ndata: b", 2, names, datas);
}

static void test_empty_data_line_dispatches(void **state)
{
    const char *names[] = {""};
    const char *datas[] = {""};
    check_all_splits("data:\n\n", 1, names, datas);
}

static void test_bom(void **state)
{
    const char *names[] = {"e"};
    const char *datas[] = {"1"};
    check_all_splits("\xEF\xBB\xBF" "event: e\ndata: 1\n\n", 1, names, datas);
}

static void test_value_space_only_first_stripped(void **state)
{
    const char *names[] = {""};
    const char *datas[] = {"  two spaces"};
    check_all_splits("data:   two spaces\n\n", 1, names, datas);
}

static void test_cap(void **state)
{
    sl_sse p;
    sl_sse_init(&p, 64);
    collected c = {0};
    char big[200];
    memset(big, 'x', sizeof big);
    assert_int_equal(sl_sse_feed(&p, "data: ", 6, collect, &c), 0);
    assert_int_equal(sl_sse_feed(&p, big, sizeof big, collect, &c), -1);
    sl_sse_free(&p);

    /* Many small lines adding up to one oversized event also fail. */
    sl_sse_init(&p, 64);
    int rc = 0;
    for (int i = 0; i < 20 && rc == 0; i++)
        rc = sl_sse_feed(&p, "data: 0123456789\n", 17, collect, &c);
    assert_int_equal(rc, -1);
    assert_int_equal(c.n, 0);
    sl_sse_free(&p);

    /* The default cap is 1 MiB: just under passes, just over fails. */
    sl_sse_init(&p, 0);
    size_t n = SL_SSE_MAX_LINE - 16;
    char *payload = malloc(n);
    memset(payload, 'y', n);
    c = (collected){0};
    assert_int_equal(sl_sse_feed(&p, "data: ", 6, collect, &c), 0);
    assert_int_equal(sl_sse_feed(&p, payload, n, collect, &c), 0);
    assert_int_equal(sl_sse_feed(&p, "\n\n", 2, collect, &c), 0);
    assert_int_equal(c.n, 1);
    assert_int_equal(sl_sse_feed(&p, "data: ", 6, collect, &c), 0);
    assert_int_equal(sl_sse_feed(&p, payload, n, collect, &c), 0);
    assert_int_equal(sl_sse_feed(&p, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy", 32, collect, &c), -1);
    free(payload);
    sl_sse_free(&p);
}

/* A line that never ends, fed in pieces: refused once it passes the cap,
 * never buffered beyond it, and the parser stays failed (a newline after
 * the refusal must not revive a truncated line as an event). */
static void test_cap_unending_line(void **state)
{
    sl_sse p;
    sl_sse_init(&p, 1000);
    collected c = {0};
    char piece[64];
    memset(piece, 'z', sizeof piece);
    int rc = 0, fed = 0;
    assert_int_equal(sl_sse_feed(&p, "data: ", 6, collect, &c), 0);
    while (rc == 0 && fed < 100) {
        rc = sl_sse_feed(&p, piece, sizeof piece, collect, &c);
        fed++;
        assert_true(sl_sse_pending(&p) <= 1000);
    }
    assert_int_equal(rc, -1);
    assert_int_equal(fed, 16); /* 6 + 15 * 64 = 966 fits; 1030 does not */
    assert_int_equal(sl_sse_pending(&p), 0);
    assert_int_equal(sl_sse_feed(&p, "\n\ndata: ok\n\n", 14, collect, &c), -1);
    assert_int_equal(sl_sse_finish(&p, collect, &c), -1);
    assert_int_equal(c.n, 0);
    sl_sse_free(&p);

    /* Comments count too: a keep-alive line is no way around the cap. */
    sl_sse_init(&p, 100);
    char big[200];
    memset(big, 'k', sizeof big);
    big[0] = ':';
    assert_int_equal(sl_sse_feed(&p, big, sizeof big, collect, &c), -1);
    sl_sse_free(&p);
}

static int fail_cb(void *ctx, const sl_sse_event *ev)
{
    (void)ctx;
    (void)ev;
    return -1;
}

static void test_callback_failure_is_final(void **state)
{
    sl_sse p;
    sl_sse_init(&p, 0);
    assert_int_equal(sl_sse_feed(&p, "data: x\n\n", 10, fail_cb, NULL), -1);
    collected c = {0};
    assert_int_equal(sl_sse_feed(&p, "data: y\n\n", 10, collect, &c), -1);
    assert_int_equal(c.n, 0);
    sl_sse_free(&p);
}

static void test_callback_stop(void **state)
{
    sl_sse p;
    sl_sse_init(&p, 0);
    collected c = {.stop_after = 1};
    const char *in = "data: 1\n\ndata: 2\n\n";
    assert_int_equal(sl_sse_feed(&p, in, strlen(in), collect, &c), 7);
    assert_int_equal(c.n, 1);
    sl_sse_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lf),
        cmocka_unit_test(test_crlf),
        cmocka_unit_test(test_cr_only),
        cmocka_unit_test(test_multiline_data_and_comments),
        cmocka_unit_test(test_no_data_no_event),
        cmocka_unit_test(test_missing_final_blank_line),
        cmocka_unit_test(test_empty_data_line_dispatches),
        cmocka_unit_test(test_bom),
        cmocka_unit_test(test_value_space_only_first_stripped),
        cmocka_unit_test(test_cap),
        cmocka_unit_test(test_callback_stop),
        cmocka_unit_test(test_cap_unending_line),
        cmocka_unit_test(test_callback_failure_is_final),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
