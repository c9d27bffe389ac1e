/*
 * Tests for the upstream client (runtime/upstream/upstream.c): how a
 * transfer fails against a real loopback server (upstream_fixture.c):
 * refused and hanging connects, the first-byte, idle and total watchdogs,
 * connections reset before or during the body. See test_upstream.c.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream/upstream.h"
#include "upstream_fixture.h"

static void test_connect_refused(void **state)
{
    fixture *f = *state;
    /* Bound but not listening: the port is ours and connecting is refused. */
    int port;
    int fd = listen_loopback(0, &port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    sl_xfer_spec sp = {.url = url, .connect_ms = 1000, .first_byte_ms = 1000, .idle_ms = 1000};
    run(f, &sp, 3.0);
    close(fd);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_CONNECT);
    assert_int_equal(f->heads, 0);
    assert_int_equal(f->datas, 0);
    assert_true(strlen(f->detail) > 0);
}

static void test_first_byte_timeout(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_SILENT;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.first_byte_ms = 200;
    sp.idle_ms = 5000;
    double t0 = now_s(f);
    run(f, &sp, 3.0);
    double took = now_s(f) - t0;
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_TIMEOUT_FIRST_BYTE);
    assert_string_equal(f->detail, sl_xfer_result_name(SL_XFER_TIMEOUT_FIRST_BYTE));
    assert_int_equal(f->heads, 0);
    assert_int_equal(f->s.requests, 1); /* the request did reach the server */
    assert_true(took >= 0.19);
    assert_true(took < 1.5);
}

static void test_idle_timeout(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STALL;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.first_byte_ms = 5000;
    sp.idle_ms = 200;
    double t0 = now_s(f);
    run(f, &sp, 3.0);
    double took = now_s(f) - t0;
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_TIMEOUT_IDLE);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->data_len, 10);
    assert_memory_equal(f->data, "0123456789", 10);
    assert_true(took >= 0.19);
    assert_true(took < 1.5);
}

static void test_total_timeout(void **state)
{
    fixture *f = *state;
    /* Bytes keep coming, so neither watchdog fires; the total cap does. */
    f->s.sc = SC_TRICKLE;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.first_byte_ms = 1000;
    sp.idle_ms = 1000;
    sp.total_ms = 400;
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_TIMEOUT_TOTAL);
    assert_true(f->data_len >= 2);
}

static void test_reset_mid_body(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_CLOSE_MID;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_RESET);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->data_len, 10);
}

static void test_reset_before_any_byte(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_CLOSE_NOW;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_RESET);
    assert_int_equal(f->heads, 0);
}

static void test_connect_timeout(void **state)
{
    fixture *f = *state;
    /* A listener whose accept queue is full drops SYNs, so a connect to it
     * hangs like one to a black-holed address, without leaving loopback. */
    int port;
    int lfd = listen_loopback(0, &port);
    assert_int_equal(listen(lfd, 0), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(fill[i], (struct sockaddr *)&a, sizeof a);
    }
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    sl_xfer_spec sp = {.url = url, .connect_ms = 200, .first_byte_ms = 5000, .idle_ms = 5000};
    double t0 = now_s(f);
    run(f, &sp, 4.0);
    double took = now_s(f) - t0;
    for (int i = 0; i < 4; i++)
        close(fill[i]);
    close(lfd);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_CONNECT);
    assert_true(took < 2.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_connect_refused),
        T(test_first_byte_timeout),
        T(test_idle_timeout),
        T(test_total_timeout),
        T(test_reset_mid_body),
        T(test_reset_before_any_byte),
        T(test_connect_timeout),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
