/*
 * Tests for the upstream client (runtime/upstream/upstream.c): cancelling a
 * transfer from each of its callbacks and from outside, aborting from
 * on_data, pausing and resuming, against a real loopback server
 * (upstream_fixture.c). See test_upstream.c.
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

static void test_cancel_in_on_data(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_PIECES;
    f->cancel_in_data = 1;
    f->s.break_on_close = 1; /* curl drops the connection of a cancelled transfer */
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.first_byte_ms = 200; /* a missed cancel would show up as a timeout */
    sp.idle_ms = 200;
    run(f, &sp, 3.0);
    assert_true(f->s.peer_closed);
    assert_int_equal(f->datas, 1);
    assert_int_equal(sl_upstream_active(f->u), 0);
    /* Run the loop past both watchdog deadlines: still no on_done. */
    ev_timer_init(&f->guard, guard_cb, 0.3, 0.);
    f->guard.data = f;
    ev_timer_start(f->loop, &f->guard);
    ev_run(f->loop, 0);
    assert_int_equal(f->dones, 0);
}

static void test_cancel_in_on_head(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_HEADERS;
    f->cancel_in_head = 1;
    f->s.break_on_close = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_true(f->s.peer_closed);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->datas, 0);
    assert_int_equal(f->dones, 0);
    assert_int_equal(sl_upstream_active(f->u), 0);
}

static void test_cancel_before_anything(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_HEADERS;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    f->x = sl_xfer_start(f->u, &sp, &cbs, f);
    assert_non_null(f->x);
    sl_xfer_cancel(f->x);
    assert_int_equal(sl_upstream_active(f->u), 0);
    ev_timer_init(&f->guard, guard_cb, 0.1, 0.);
    f->guard.data = f;
    ev_timer_start(f->loop, &f->guard);
    ev_run(f->loop, 0);
    assert_int_equal(f->heads + f->datas + f->dones, 0);
    sl_xfer_cancel(NULL);
}

static void test_cancel_in_on_done(void **state)
{
    fixture *f = *state;
    /* on_done is one of the transfer's own callbacks: cancelling from it
     * (an owner tearing down on completion) must be harmless. */
    f->s.sc = SC_HEADERS;
    f->cancel_in_done = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(sl_upstream_active(f->u), 0);
}

static void test_cancel_in_on_done_after_timeout(void **state)
{
    fixture *f = *state;
    /* Same, when on_done comes from the watchdog rather than from curl. */
    f->s.sc = SC_SILENT;
    f->cancel_in_done = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.first_byte_ms = 100;
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_TIMEOUT_FIRST_BYTE);
    assert_int_equal(sl_upstream_active(f->u), 0);
}

static void test_abort_from_on_data(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_PIECES;
    f->abort_in_data = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_true(f->result != SL_XFER_OK);
    assert_int_equal(f->datas, 1);
}

static void test_pause_resume_redelivers(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_HEADERS;
    f->pause_first = 1;
    f->resume_after = 0.;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_true(f->datas >= 2);
    /* The held bytes come again, the same ones, and nothing is lost. */
    assert_true(f->first_delivery_len > 0);
    assert_int_equal(f->second_delivery_len, f->first_delivery_len);
    assert_memory_equal(f->second_delivery, f->first_delivery, f->first_delivery_len);
    assert_int_equal(f->data_len, 11);
    assert_memory_equal(f->data, "{\"ok\":true}", 11);
}

static void test_pause_longer_than_idle(void **state)
{
    fixture *f = *state;
    /* A slow client is not an idle upstream: while paused, no idle timeout. */
    f->s.sc = SC_PIECES;
    f->lockstep = 1;
    f->pause_first = 1;
    f->resume_after = 0.3;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    sp.idle_ms = 100;
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->data_len, 15);
    assert_memory_equal(f->data, "alphabeta-gamma", 15);
    assert_int_equal(f->second_delivery_len, 5);
    assert_memory_equal(f->second_delivery, "alpha", 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cancel_in_on_data),
        T(test_cancel_in_on_head),
        T(test_cancel_before_anything),
        T(test_cancel_in_on_done),
        T(test_cancel_in_on_done_after_timeout),
        T(test_abort_from_on_data),
        T(test_pause_resume_redelivers),
        T(test_pause_longer_than_idle),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
