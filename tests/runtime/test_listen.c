/*
 * Tests for server/listen.c: listen addresses, the address check every
 * socket not bound by this process goes through (hand-off, systemd), and
 * the sd_listen_fds rules (only for this pid, variables removed after).
 */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/listen.h"

static void test_parse(void **state)
{
    struct sockaddr_storage ss;
    socklen_t len;
    char out[80];
    assert_int_equal(sl_listen_parse("127.0.0.1:4000", &ss, &len), 0);
    sl_listen_format(&ss, out, sizeof out);
    assert_string_equal(out, "127.0.0.1:4000");
    assert_int_equal(sl_listen_parse("localhost:80", &ss, &len), 0);
    sl_listen_format(&ss, out, sizeof out);
    assert_string_equal(out, "127.0.0.1:80");
    assert_int_equal(sl_listen_parse("[::1]:4000", &ss, &len), 0);
    sl_listen_format(&ss, out, sizeof out);
    assert_string_equal(out, "[::1]:4000");
    assert_int_equal(sl_listen_parse("127.0.0.1", &ss, &len), -1);
    assert_int_equal(sl_listen_parse("127.0.0.1:99999", &ss, &len), -1);
    assert_int_equal(sl_listen_parse("example.com:80", &ss, &len), -1);
    assert_int_equal(sl_listen_parse("[::1:80", &ss, &len), -1);
}

static int open_any(struct sockaddr_storage *ss)
{
    socklen_t len;
    char err[128];
    assert_int_equal(sl_listen_parse("127.0.0.1:0", ss, &len), 0);
    int fd = sl_listen_open(ss, len, err, sizeof err);
    assert_true(fd >= 0);
    socklen_t l = sizeof *ss;
    getsockname(fd, (struct sockaddr *)ss, &l);
    return fd;
}

static void test_loopback(void **state)
{
    (void)state;
    struct sockaddr_storage ss;
    socklen_t len;
    static const char *const yes[] = {"127.0.0.1:1", "127.9.8.7:1", "localhost:1", "[::1]:1"};
    static const char *const no[] = {"0.0.0.0:1", "10.0.0.1:1", "128.0.0.1:1", "[::]:1", "[::ffff:127.0.0.1]:1"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        assert_int_equal(sl_listen_parse(yes[i], &ss, &len), 0);
        if (!sl_listen_is_loopback(&ss))
            fail_msg("%s should be loopback", yes[i]);
    }
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
        assert_int_equal(sl_listen_parse(no[i], &ss, &len), 0);
        if (sl_listen_is_loopback(&ss))
            fail_msg("%s should not be loopback", no[i]);
    }
}

static void test_matches(void **state)
{
    struct sockaddr_storage ss, other;
    socklen_t len;
    char why[200];
    int fd = open_any(&ss);
    assert_int_equal(sl_listen_matches(fd, &ss, why, sizeof why), 1);
    assert_int_equal(sl_listen_parse("127.0.0.1:1", &other, &len), 0);
    assert_int_equal(sl_listen_matches(fd, &other, why, sizeof why), 0);
    assert_non_null(strstr(why, "this gateway on 127.0.0.1:1"));
    /* Same port, other family: not the same socket address. */
    assert_int_equal(sl_listen_parse("[::1]:0", &other, &len), 0);
    assert_int_equal(sl_listen_matches(fd, &other, why, sizeof why), 0);
    close(fd);

    int pipefd[2];
    assert_int_equal(pipe(pipefd), 0);
    assert_int_equal(sl_listen_matches(pipefd[0], &ss, why, sizeof why), 0);
    assert_non_null(strstr(why, "not a stream socket"));
    close(pipefd[0]);
    close(pipefd[1]);
}

static void test_systemd(void **state)
{
    int fds[4];
    char err[128], pid[32];
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    assert_int_equal(sl_listen_systemd(fds, 4, err, sizeof err), 0);
    /* Meant for another process: ignored and left alone. */
    setenv("LISTEN_PID", "1", 1);
    setenv("LISTEN_FDS", "1", 1);
    assert_int_equal(sl_listen_systemd(fds, 4, err, sizeof err), 0);
    assert_non_null(getenv("LISTEN_FDS"));
    setenv("LISTEN_PID", "x", 1);
    assert_int_equal(sl_listen_systemd(fds, 4, err, sizeof err), -1);

    snprintf(pid, sizeof pid, "%ld", (long)getpid());
    setenv("LISTEN_PID", pid, 1);
    setenv("LISTEN_FDS", "9", 1);
    assert_int_equal(sl_listen_systemd(fds, 4, err, sizeof err), -1);
    assert_non_null(strstr(err, "at most 4"));

    /* fd 3 is where systemd puts the first socket; only when it is free
     * here can the test put one there. */
    if (fcntl(3, F_GETFD) == -1) {
        struct sockaddr_storage ss;
        int fd = open_any(&ss);
        assert_int_equal(dup2(fd, 3), 3);
        close(fd);
        fcntl(3, F_SETFL, fcntl(3, F_GETFL) & ~O_NONBLOCK);
        setenv("LISTEN_PID", pid, 1);
        setenv("LISTEN_FDS", "1", 1);
        assert_int_equal(sl_listen_systemd(fds, 4, err, sizeof err), 1);
        assert_int_equal(fds[0], 3);
        assert_true(fcntl(3, F_GETFL) & O_NONBLOCK);
        assert_true(fcntl(3, F_GETFD) & FD_CLOEXEC);
        assert_null(getenv("LISTEN_PID"));
        assert_null(getenv("LISTEN_FDS"));
        assert_int_equal(sl_listen_matches(3, &ss, err, sizeof err), 1);
        close(3);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse),
        cmocka_unit_test(test_loopback),
        cmocka_unit_test(test_matches),
        cmocka_unit_test(test_systemd),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
