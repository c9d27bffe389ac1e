/*
 * Tests for the server core (runtime/server/) over real loopback sockets:
 * each test starts sl_server_run on a free port in a thread of its own, with
 * one worker, a copy of the unit table whose limits the test picks, and a
 * small handler set defined here (not the proxy): the head hook answers
 * 401 for /done, the request handler answers with the body's length and
 * marks the connection authenticated when the request says so. The tests
 * are about what a client can make the server hold before anyone knows who
 * it is: a refused head never costs its body, bodies are charged to the
 * memory budget as they grow, a trickled body is cut, and idle keep-alive
 * connections that never authenticated give up their slots first.
 */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core/membudget.h"
#include "server/server.h"
#include "server/server_internal.h" /* sl_srv_conn_total: wait for the server's side of a close */

#define MiB (1024 * 1024)

/* ---- the handler set ---------------------------------------------------- */

static atomic_int worker_inits, heads, requests;
static atomic_size_t last_body_len;

static int path_is(const sl_http_request *req, const char *p)
{
    return req->path_len == strlen(p) && memcmp(req->path, p, req->path_len) == 0;
}

static void t_worker_init(sl_worker *w) { atomic_fetch_add(&worker_inits, 1); }

static sl_head_verdict t_head(sl_conn *c, const sl_http_request *req)
{
    atomic_fetch_add(&heads, 1);
    if (!path_is(req, "/done"))
        return SL_HEAD_CONTINUE;
    static const char body[] = "{\"error\":\"no key\"}";
    sl_conn_respond(c, 401, "application/json", NULL, body, sizeof body - 1);
    return SL_HEAD_DONE;
}

static void t_request(sl_conn *c, const sl_http_request *req, const char *body, size_t len)
{
    atomic_fetch_add(&requests, 1);
    atomic_store(&last_body_len, len);
    if (sl_http_find_header(req, "x-auth"))
        sl_conn_set_authenticated(c);
    char out[256];
    int n = snprintf(out, sizeof out, "len=%zu", len);
    if (path_is(req, "/head")) {
        /* The parsed head, read after the input buffer was shrunk. */
        const sl_http_header *h = sl_http_find_header(req, "x-echo");
        const char *part[] = {req->method_str, " ", req->path, "?", req->query, " ", h ? h->value : ""};
        size_t plen[] = {req->method_len, 1, req->path_len, 1, req->query_len, 1, h ? h->value_len : 0};
        n = 0;
        for (size_t i = 0; i < sizeof part / sizeof *part; i++) {
            assert_true((size_t)n + plen[i] < sizeof out);
            memcpy(out + n, part[i], plen[i]); /* instrumented: a stale pointer shows */
            n += (int)plen[i];
        }
    }
    sl_conn_respond(c, 200, "text/plain", NULL, out, (size_t)n);
}

static const sl_handlers test_handlers = {t_worker_init, t_head, t_request};

/* ---- the server under test ---------------------------------------------- */

static sl_table table;
static sl_server_config cfg;
static char listen_addr[32];
static int port;
static pthread_t server_thread;
static int server_rc;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void *server_main(void *arg)
{
    char err[256] = "";
    server_rc = sl_server_run(&cfg, err, sizeof err);
    if (server_rc != 0)
        fprintf(stderr, "sl_server_run: %s\n", err);
    return NULL;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd);
    return ntohs(a.sin_port);
}

static int try_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits until the server has closed its side of every connection. */
static int no_conns_within(int timeout_ms)
{
    double until = now_ms() + timeout_ms;
    while (sl_srv_conn_total() != 0 && now_ms() < until)
        usleep(2000);
    return sl_srv_conn_total() == 0;
}

static void wait_no_conns(void) { assert_true(no_conns_within(5000)); }

/* Client sockets a test opened, closed by the teardown when a failed
 * assertion skipped the test's own close. */
static int open_fds[32];
static int open_fd_count;

static void drop(int fd)
{
    for (int i = 0; i < open_fd_count; i++) {
        if (open_fds[i] == fd) {
            open_fds[i] = open_fds[--open_fd_count];
            close(fd);
            return;
        }
    }
    fail_msg("fd %d is not a client socket", fd);
}

static int request_on(int fd, const char *extra);

static void server_start(void)
{
    port = free_port();
    snprintf(listen_addr, sizeof listen_addr, "127.0.0.1:%d", port);
    cfg = (sl_server_config){.table = &table, .handlers = &test_handlers, .listen = listen_addr,
                             .state_path = "", .workers = 1, .drain_ms = 1000};
    assert_int_equal(pthread_create(&server_thread, NULL, server_main, NULL), 0);
    /* The port is bound before the loop runs: wait for an answer, so that
     * no test races the server's start. */
    double until = now_ms() + 5000;
    int fd;
    while ((fd = try_connect()) < 0 && now_ms() < until)
        usleep(5000);
    assert_true(fd >= 0);
    assert_int_equal(request_on(fd, "Connection: close\r\n"), 200);
    close(fd);
    wait_no_conns();
    assert_int_equal(atomic_load(&worker_inits), 1);
    atomic_store(&heads, 0);
    atomic_store(&requests, 0);
}

/* Limits every test starts from; a test changes what it is about. */
static int setup(void **state)
{
    table = sl_spec;
    table.server.max_body_bytes = 4 * MiB;
    table.server.header_timeout_ms = 5000;
    table.server.body_timeout_ms = 5000;
    table.server.keepalive_timeout_ms = 30000;
    table.server.max_connections = 64;
    atomic_store(&worker_inits, 0);
    sl_membudget_set_limit(SL_MEMBUDGET_DEFAULT);
    return 0;
}

/* Stops the server whatever the test left behind, then checks that every
 * connection was closed and every body reservation given back. */
static int teardown(void **state)
{
    while (open_fd_count > 0)
        drop(open_fds[0]);
    int closed = no_conns_within(5000);
    sl_server_stop();
    pthread_join(server_thread, NULL);
    sl_membudget_set_limit(SL_MEMBUDGET_DEFAULT);
    assert_int_equal(server_rc, 0);
    assert_true(closed);
    assert_int_equal(sl_membudget_used(), 0);
    return 0;
}

/* ---- client side ----------------------------------------------------------- */

static int client(void)
{
    int fd = try_connect();
    assert_true(fd >= 0);
    assert_true(open_fd_count < (int)(sizeof open_fds / sizeof open_fds[0]));
    open_fds[open_fd_count++] = fd;
    return fd;
}

/* Sends everything; a server that answered early and closed may refuse
 * the rest (EPIPE, ECONNRESET), which the caller is told about. */
static int send_all(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        b += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_str(int fd, const char *s) { return send_all(fd, s, strlen(s)); }

static int send_zeros(int fd, size_t n)
{
    static const char zeros[16384];
    while (n > 0) {
        size_t k = n < sizeof zeros ? n : sizeof zeros;
        if (send_all(fd, zeros, k) != 0)
            return -1;
        n -= k;
    }
    return 0;
}

typedef struct response {
    int status;
    char head[2048];
    char body[512];
    double at_ms; /* when it was complete */
} response;

/* Reads one response with a Content-Length body. 0, or -1 on timeout,
 * EOF or garbage. Interim 1xx responses count as responses. */
static int read_response(int fd, response *r, int timeout_ms)
{
    char buf[4096];
    size_t len = 0;
    double until = now_ms() + timeout_ms;
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end) {
            size_t head_len = (size_t)(end - buf) + 4;
            size_t hl = head_len < sizeof r->head ? head_len : sizeof r->head - 1;
            memcpy(r->head, buf, hl);
            if (sscanf(buf, "HTTP/1.%*d %d", &r->status) != 1)
                return -1;
            const char *cl = strcasestr(r->head, "\r\ncontent-length:");
            size_t want = cl ? strtoul(cl + 17, NULL, 10) : 0;
            if (len >= head_len + want) {
                size_t bl = want < sizeof r->body ? want : sizeof r->body - 1;
                memcpy(r->body, buf + head_len, bl);
                r->at_ms = now_ms();
                return 0;
            }
        }
        int left = (int)(until - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) <= 0 || len == sizeof buf)
            return -1;
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0)
            return -1;
        len += (size_t)n;
    }
}

/* 1 when the server closed the connection (EOF or reset) within
 * timeout_ms; bytes it sends before that are discarded. */
static int closed_within(int fd, int timeout_ms)
{
    double until = now_ms() + timeout_ms;
    for (;;) {
        int left = (int)(until - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, left > 0 ? left : 0) <= 0)
            return 0;
        char buf[4096];
        ssize_t n = recv(fd, buf, sizeof buf, 0);
        if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN))
            return 1;
    }
}

static void post_head(int fd, const char *path, size_t content_length, const char *extra)
{
    char head[512];
    snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Length: %zu\r\n%s\r\n", path,
             content_length, extra ? extra : "");
    assert_int_equal(send_str(fd, head), 0);
}

static void wait_used(size_t at_least)
{
    double until = now_ms() + 3000;
    while (sl_membudget_used() < at_least && now_ms() < until)
        usleep(1000);
    assert_true(sl_membudget_used() >= at_least);
}

/* ---- the head hook --------------------------------------------------------- */

/* A request the head hook refuses is answered at once: its 3 MiB body is
 * never waited for, never buffered, and no 100 Continue invites it. */
static void test_head_done_answers_before_body(void **state)
{
    server_start();
    int fd = client();
    double t0 = now_ms();
    post_head(fd, "/done", 3 * MiB, "Expect: 100-continue\r\n");
    response r;
    assert_int_equal(read_response(fd, &r, 2000), 0);
    assert_int_equal(r.status, 401);
    assert_true(r.at_ms - t0 < 1000);
    assert_non_null(strstr(r.head, "HTTP/1.1 401 Unauthorized\r\n"));
    assert_non_null(strcasestr(r.head, "\r\nConnection: close\r\n"));
    assert_string_equal(r.body, "{\"error\":\"no key\"}");
    assert_true(closed_within(fd, 1000));
    assert_int_equal(atomic_load(&heads), 1);
    assert_int_equal(atomic_load(&requests), 0);
    assert_int_equal(sl_membudget_used(), 0);
    drop(fd);
}

/* A client that sends its body without waiting can finish sending and
 * still gets the refusal whole: the server discards what arrives for a
 * while instead of resetting the connection under the client. */
static void test_head_done_eager_client(void **state)
{
    server_start();
    int fd = client();
    post_head(fd, "/done", 3 * MiB, NULL);
    assert_int_equal(send_zeros(fd, 3 * MiB), 0);
    response r;
    assert_int_equal(read_response(fd, &r, 2000), 0);
    assert_int_equal(r.status, 401);
    assert_true(closed_within(fd, 3000));
    assert_int_equal(atomic_load(&requests), 0);
    drop(fd);
}

/* CONTINUE reads the body and calls request(); keep-alive survives, and
 * chunked bodies arrive decoded. */
static void test_head_continue_reads_body(void **state)
{
    server_start();
    int fd = client();
    post_head(fd, "/echo", 300 * 1024, NULL);
    assert_int_equal(send_zeros(fd, 300 * 1024), 0);
    response r;
    assert_int_equal(read_response(fd, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=307200");
    assert_null(strcasestr(r.head, "Connection: close"));

    assert_int_equal(send_str(fd, "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                                  "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"),
                     0);
    assert_int_equal(read_response(fd, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=11");
    assert_int_equal(atomic_load(&heads), 2);
    assert_int_equal(atomic_load(&requests), 2);
    drop(fd);
}

/* The handler reads the head after the input buffer moved to a smaller
 * one (shrink_in): every pointer followed the bytes. */
static void test_head_after_buffer_shrinks(void **state)
{
    server_start();
    int fd = client();
    assert_int_equal(send_str(fd, "GET /head?a=1 HTTP/1.1\r\nHost: t\r\nX-Echo: kept value\r\n\r\n"), 0);
    response r;
    assert_int_equal(read_response(fd, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "GET /head?a=1 kept value");
    drop(fd);
}

/* ---- the memory budget ----------------------------------------------------- */

/* A Content-Length claim costs nothing until its bytes arrive. */
static void test_body_grows_as_it_arrives(void **state)
{
    server_start();
    int fd = client();
    post_head(fd, "/echo", 4 * MiB, NULL);
    assert_int_equal(send_zeros(fd, 1000), 0);
    wait_used(1000);
    usleep(50 * 1000);
    assert_true(sl_membudget_used() <= 64 * 1024);
    drop(fd);
}

/* A body that does not fit in the budget is refused with 503, Retry-After
 * and Connection: close, and its reservation is given back. */
static void test_budget_refuses(void **state)
{
    sl_membudget_set_limit(256 * 1024);
    server_start();
    int fd = client();
    post_head(fd, "/echo", 1 * MiB, NULL);
    send_zeros(fd, 600 * 1024);
    response r;
    assert_int_equal(read_response(fd, &r, 3000), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strcasestr(r.head, "\r\nRetry-After: 1\r\n"));
    assert_non_null(strcasestr(r.head, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(r.body, "overloaded_error"));
    assert_true(closed_within(fd, 3000));
    assert_int_equal(atomic_load(&requests), 0);
    drop(fd);
    wait_no_conns();
    assert_int_equal(sl_membudget_used(), 0);
}

/* The budget is shared: a body that fits alone is refused while another
 * holds most of it, and fits again once that one is served. */
static void test_budget_is_shared(void **state)
{
    sl_membudget_set_limit(1 * MiB);
    server_start();
    const size_t cl = 600 * 1024;
    int a = client();
    post_head(a, "/echo", cl, NULL);
    assert_int_equal(send_zeros(a, 520 * 1024), 0);
    wait_used(cl); /* a's buffer has grown to its Content-Length */

    int b = client();
    post_head(b, "/echo", cl, NULL);
    send_zeros(b, 520 * 1024);
    response r;
    assert_int_equal(read_response(b, &r, 3000), 0);
    assert_int_equal(r.status, 503);
    drop(b);

    assert_int_equal(send_zeros(a, cl - 520 * 1024), 0);
    assert_int_equal(read_response(a, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body, "len=614400");
    drop(a);
    wait_no_conns();

    int c = client();
    post_head(c, "/echo", cl, NULL);
    assert_int_equal(send_zeros(c, cl), 0);
    assert_int_equal(read_response(c, &r, 3000), 0);
    assert_int_equal(r.status, 200);
    drop(c);
}

/* ---- the body rate floor --------------------------------------------------- */

/* A byte every 100 ms never trips the idle timeout, but is far below the
 * minimum rate: the body is cut with 408 right after the grace period
 * instead of being allowed time in proportion to its Content-Length. */
static void test_trickled_body_is_cut(void **state)
{
    table.server.body_timeout_ms = 400;
    server_start();
    int fd = client();
    double t0 = now_ms();
    post_head(fd, "/echo", 1 * MiB, NULL);
    response r;
    int got = -1;
    for (int i = 0; i < 40 && got != 0; i++) {
        if (send_str(fd, "x") != 0)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            got = read_response(fd, &r, 1000);
    }
    if (got != 0)
        got = read_response(fd, &r, 1000);
    assert_int_equal(got, 0);
    assert_int_equal(r.status, 408);
    assert_true(r.at_ms - t0 < 1500);
    assert_true(r.at_ms - t0 >= 350);
    assert_true(closed_within(fd, 3000));
    assert_int_equal(atomic_load(&requests), 0);
    drop(fd);
}

/* ---- connection slots ------------------------------------------------------ */

static int request_on(int fd, const char *extra)
{
    char req[256];
    snprintf(req, sizeof req, "GET /hi HTTP/1.1\r\nHost: t\r\n%s\r\n", extra);
    if (send_str(fd, req) != 0)
        return -1;
    response r;
    if (read_response(fd, &r, 2000) != 0)
        return -1;
    return r.status;
}

/* With every slot taken, a new client gets the slot of the longest-idle
 * keep-alive connection that never authenticated, then of an
 * authenticated one; connections mid-request are never shed, and only
 * when no idle one is left is the new client refused. */
static void test_idle_unauthenticated_shed_first(void **state)
{
    table.server.max_connections = 4;
    server_start();
    int a = client();
    assert_int_equal(request_on(a, "x-auth: yes\r\n"), 200); /* idle, authenticated */
    int b = client();
    assert_int_equal(request_on(b, ""), 200); /* idle, anonymous, oldest */
    int c = client();
    assert_int_equal(request_on(c, ""), 200); /* idle, anonymous */
    int d = client();
    assert_int_equal(send_str(d, "GET /slow HTTP/1.1\r\n"), 0); /* mid-head */

    int e = client(); /* takes b's slot */
    assert_true(closed_within(b, 2000));
    assert_false(closed_within(c, 100));
    assert_false(closed_within(a, 0));
    int f = client(); /* takes c's slot */
    assert_true(closed_within(c, 2000));
    assert_false(closed_within(a, 100));
    int g = client(); /* takes a's slot: no anonymous idle one is left */
    assert_true(closed_within(a, 2000));

    int h = client(); /* d, e, f, g are all busy or new: refused */
    response r;
    assert_int_equal(read_response(h, &r, 2000), 0);
    assert_int_equal(r.status, 503);
    assert_non_null(strcasestr(r.head, "\r\nRetry-After: 1\r\n"));
    assert_true(closed_within(h, 1000));
    assert_false(closed_within(d, 0));

    /* The survivors still work. */
    assert_int_equal(send_str(d, "Host: t\r\n\r\n"), 0);
    assert_int_equal(read_response(d, &r, 2000), 0);
    assert_int_equal(r.status, 200);
    assert_int_equal(request_on(e, ""), 200);
    int fds[] = {a, b, c, d, e, f, g, h};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++)
        drop(fds[i]);
}

/* ---- start-up -------------------------------------------------------------- */

static void test_needs_request_handler(void **state)
{
    static const sl_handlers none = {NULL, NULL, NULL};
    sl_server_config bad = {.table = &table, .handlers = &none, .listen = "127.0.0.1:0",
                            .workers = 1};
    char err[128] = "";
    assert_int_equal(sl_server_run(&bad, err, sizeof err), -1);
    assert_non_null(strstr(err, "handler"));
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_head_done_answers_before_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_done_eager_client, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_continue_reads_body, setup, teardown),
        cmocka_unit_test_setup_teardown(test_head_after_buffer_shrinks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_body_grows_as_it_arrives, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_refuses, setup, teardown),
        cmocka_unit_test_setup_teardown(test_budget_is_shared, setup, teardown),
        cmocka_unit_test_setup_teardown(test_trickled_body_is_cut, setup, teardown),
        cmocka_unit_test_setup_teardown(test_idle_unauthenticated_shed_first, setup, teardown),
        cmocka_unit_test_setup(test_needs_request_handler, setup),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
