/*
 * Tests for server/handoff.c with both sides in one process: the running
 * instance's side on a libev loop in a thread, the new instance's side on
 * the test thread. A refusal leaves the old side serving and offering
 * again; only READY makes it let go; the control socket is 0600, a live
 * one is never taken over by a fresh start, a stale one is, and the path
 * is removed only by the instance that still owns it.
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "server/handoff.h"

static struct ev_loop *loop;
static sl_handoff *old_side;
static atomic_long taken_pid;
static char dir[64], path[96];
static int lfds[3];
static struct sockaddr_storage addr;

static void on_taken(void *ud, long pid)
{
    atomic_store(&taken_pid, pid);
    ev_break(loop, EVBREAK_ALL);
}

static ev_async stopper;

static void stop_cb(struct ev_loop *l, ev_async *a, int revents) { ev_break(l, EVBREAK_ALL); }

static void *run_loop(void *arg)
{
    ev_run(loop, 0);
    return NULL;
}

static int setup(void **state)
{
    snprintf(dir, sizeof dir, "/tmp/sl-handoff-XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/s.db.ctl", dir);
    socklen_t len;
    char err[128];
    assert_int_equal(sl_listen_parse("127.0.0.1:0", &addr, &len), 0);
    for (int i = 0; i < 3; i++) {
        lfds[i] = sl_listen_open(&addr, len, err, sizeof err);
        assert_true(lfds[i] >= 0);
        if (i == 0)
            getsockname(lfds[0], (struct sockaddr *)&addr, &len);
    }
    loop = ev_loop_new(EVFLAG_AUTO);
    ev_async_init(&stopper, stop_cb);
    ev_async_start(loop, &stopper);
    atomic_store(&taken_pid, 0);
    return 0;
}

static int teardown(void **state)
{
    for (int i = 0; i < 3; i++)
        close(lfds[i]);
    ev_loop_destroy(loop);
    unlink(path);
    rmdir(dir);
    return 0;
}

static void test_refuse_then_take(void **state)
{
    char err[256];
    old_side = sl_handoff_serve(loop, path, on_taken, NULL, err, sizeof err);
    assert_non_null(old_side);
    sl_handoff_offer(old_side, lfds, 3, "127.0.0.1:x");
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    assert_int_equal(st.st_mode & 0777, 0600);
    pthread_t t;
    pthread_create(&t, NULL, run_loop, NULL);

    /* A fresh start at the same path is refused while the old one lives. */
    struct ev_loop *other = ev_loop_new(EVFLAG_AUTO);
    assert_null(sl_handoff_serve(other, path, on_taken, NULL, err, sizeof err));
    assert_non_null(strstr(err, "--upgrade-from"));
    ev_loop_destroy(other);

    sl_handoff_client c;
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), 0);
    assert_int_equal(c.nfds, 3);
    assert_int_equal(c.old_pid, (long)getpid());
    assert_string_equal(c.listen, "127.0.0.1:x");
    char why[200];
    for (int i = 0; i < 3; i++)
        assert_int_equal(sl_listen_matches(c.fds[i], &addr, why, sizeof why), 1);
    sl_handoff_refuse(&c, "listen address differs");
    assert_int_equal(c.nfds, 0);
    usleep(50 * 1000);
    assert_int_equal(atomic_load(&taken_pid), 0);

    /* Still offering after the refusal; READY lets it go. */
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), 0);
    assert_int_equal(c.nfds, 3);
    assert_int_equal(sl_handoff_commit(&c, err, sizeof err), 0);
    pthread_join(t, NULL);
    assert_int_equal(atomic_load(&taken_pid), (long)getpid());
    for (int i = 0; i < c.nfds; i++)
        close(c.fds[i]);
    /* Once handed over it offers nothing more. */
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), -1);
    sl_handoff_close(old_side);
    assert_int_equal(stat(path, &st), -1);
}

static void test_new_instance_replaces_path(void **state)
{
    char err[256];
    old_side = sl_handoff_serve(loop, path, on_taken, NULL, err, sizeof err);
    assert_non_null(old_side);
    sl_handoff_offer(old_side, lfds, 1, "a");
    pthread_t t;
    pthread_create(&t, NULL, run_loop, NULL);
    sl_handoff_client c;
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), 0);
    assert_int_equal(sl_handoff_commit(&c, err, sizeof err), 0);
    pthread_join(t, NULL);
    close(c.fds[0]);
    /* The new instance puts its socket at the path before the old one
     * exits: the old one must not remove it. */
    struct ev_loop *l2 = ev_loop_new(EVFLAG_AUTO);
    sl_handoff *new_side = sl_handoff_serve(l2, path, on_taken, NULL, err, sizeof err);
    assert_non_null(new_side);
    sl_handoff_close(old_side);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    sl_handoff_close(new_side);
    assert_int_equal(stat(path, &st), -1);
    ev_loop_destroy(l2);
}

static void test_stale_path_and_no_instance(void **state)
{
    char err[256];
    sl_handoff_client c;
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "no running instance answers"));
    /* A socket file nobody listens on (a killed instance's) is replaced. */
    int fd = socket(AF_UNIX, SOCK_SEQPACKET, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    assert_true(strlen(path) < sizeof a.sun_path);
    memcpy(a.sun_path, path, strlen(path) + 1);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    close(fd);
    sl_handoff *h = sl_handoff_serve(loop, path, on_taken, NULL, err, sizeof err);
    assert_non_null(h);
    /* Not offering yet (still starting): a connecting instance is told so. */
    pthread_t t;
    pthread_create(&t, NULL, run_loop, NULL);
    assert_int_equal(sl_handoff_connect(path, &c, err, sizeof err), -1);
    assert_non_null(strstr(err, "still starting"));
    ev_async_send(loop, &stopper);
    pthread_join(t, NULL);
    sl_handoff_close(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_refuse_then_take, setup, teardown),
        cmocka_unit_test_setup_teardown(test_new_instance_replaces_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_path_and_no_instance, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
