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

/* libcurl 7.88's threaded resolver hands the multi handle a socketpair to
 * watch, says CURL_POLL_REMOVE and closes it without the close-socket
 * callback. A watcher kept on it (as idle connection sockets' are) stayed
 * active on the closed descriptor: when the number next served another
 * socket whose watcher stopped before its close, libev re-armed epoll for
 * the stale watcher on a closed descriptor and aborted ("invalid fd found
 * in epoll_ctl"). The name is unresolvable by definition (RFC 6761), so
 * the transfer fails at the resolver; then the lowest free numbers each
 * get a socket watched for writing, stopped and closed, as a gateway's
 * client connections are. */
static void ignore_io(struct ev_loop *loop, ev_io *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
}

static void test_resolver_socket_not_left_watched(void **state)
{
    fixture *f = *state;
    sl_xfer_spec sp = {.url = "http://sluice-test.invalid:1/", .connect_ms = 1000, .first_byte_ms = 2000,
                       .idle_ms = 2000};
    run(f, &sp, 10.0);
    assert_int_equal(f->dones, 1);
    assert_int_not_equal(f->result, SL_XFER_OK);
    int sv[8][2];
    ev_io w[8][2];
    for (int i = 0; i < 8; i++) {
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv[i]), 0);
        for (int j = 0; j < 2; j++) {
            ev_io_init(&w[i][j], ignore_io, sv[i][j], EV_WRITE);
            ev_io_start(f->loop, &w[i][j]);
        }
    }
    ev_run(f->loop, EVRUN_NOWAIT); /* registers them with epoll */
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 2; j++) {
            ev_io_stop(f->loop, &w[i][j]);
            close(sv[i][j]);
        }
    ev_run(f->loop, EVRUN_NOWAIT); /* aborted here */
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
        T(test_resolver_socket_not_left_watched),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
