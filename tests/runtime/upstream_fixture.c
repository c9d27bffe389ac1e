/*
 * The loopback server and client side shared by the upstream client's tests
 * (upstream_fixture.h). The server runs in the same libev loop as the
 * transfers (ev_io callbacks, blocking writes of small pieces) and answers
 * as the test's scenario says: normally, in pieces released one at a time
 * by the client, silently, stalling, closing mid-body, redirecting.
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

/* ---- the loopback server ---------------------------------------------- */

static const char *const pieces[] = {"alpha", "beta-", "gamma"};

static void send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* the client went away: the test decides if that is ok */
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s) { send_all(fd, s, strlen(s)); }

static void srv_close_conn(srv *s)
{
    if (s->cfd < 0)
        return;
    ev_io_stop(s->loop, &s->conn_io);
    ev_timer_stop(s->loop, &s->trickle);
    close(s->cfd);
    s->cfd = -1;
}

/* SC_PIECES: the next chunk, or the last-chunk after the final piece. */
static void srv_send_next_piece(srv *s)
{
    if (s->cfd < 0)
        return;
    char line[64];
    if (s->piece < 3) {
        snprintf(line, sizeof line, "%zx\r\n%s\r\n", strlen(pieces[s->piece]), pieces[s->piece]);
        s->piece++;
        send_str(s->cfd, line);
    } else if (s->piece == 3) {
        s->piece++;
        send_str(s->cfd, "0\r\n\r\n");
    }
}

static void trickle_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    srv *s = t->data;
    if (s->cfd >= 0)
        send_str(s->cfd, "x");
}

static void srv_answer(srv *s)
{
    int fd = s->cfd;
    switch (s->sc) {
    case SC_HEADERS:
        send_str(fd, "HTTP/1.1 200 OK\r\n"
                     "Content-Type: application/json; charset=utf-8\r\n"
                     "Content-Length: 11\r\n"
                     "x-ratelimit-remaining-requests: 99  \r\n"
                     "X-RateLimit-Limit-Tokens:\t1000\r\n"
                     "anthropic-ratelimit-requests-limit: 50\r\n"
                     "request-id: req_123\r\n"
                     "x-request-id: abc-def\r\n"
                     "openai-processing-ms: 12\r\n"
                     "Set-Cookie: session=secret; Path=/\r\n"
                     "Connection: keep-alive\r\n"
                     "Keep-Alive: timeout=5\r\n"
                     "Server: upstream/1.0\r\n"
                     "Via: 1.1 somewhere\r\n"
                     "Retry-After: 7\r\n"
                     "\r\n"
                     "{\"ok\":true}");
        break;
    case SC_PIECES:
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n");
        srv_send_next_piece(s);
        break;
    case SC_SILENT:
        break;
    case SC_STALL:
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
                     "0123456789");
        break;
    case SC_CLOSE_MID:
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n"
                     "0123456789");
        srv_close_conn(s);
        break;
    case SC_CLOSE_NOW:
        srv_close_conn(s);
        break;
    case SC_REDIRECT:
        {
            char resp[512];
            snprintf(resp, sizeof resp,
                     "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:%d/elsewhere\r\n"
                     "Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nmoved", s->port);
            send_str(fd, resp);
        }
        break;
    case SC_STATUS:
        send_str(fd, s->canned);
        break;
    case SC_TRICKLE:
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n");
        ev_timer_init(&s->trickle, trickle_cb, 0.05, 0.05);
        s->trickle.data = s;
        ev_timer_start(s->loop, &s->trickle);
        break;
    case SC_EARLY_HINTS:
        send_str(fd, "HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n"
                     "x-request-id: from-103\r\nretry-after: 5\r\n\r\n");
        send_str(fd, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nx-request-id: final\r\n"
                     "Content-Length: 2\r\n\r\nok");
        break;
    }
}

/* Length of the head in req[0..len) and its Content-Length, once complete. */
static size_t head_complete(const char *req, size_t len, size_t *cl)
{
    const char *end = memmem(req, len, "\r\n\r\n", 4);
    if (!end)
        return 0;
    *cl = 0;
    for (const char *p = req; p < end; p = strstr(p, "\r\n") + 2) {
        if (strncasecmp(p, "content-length:", 15) == 0)
            *cl = strtoul(p + 15, NULL, 10);
    }
    return (size_t)(end - req) + 4;
}

static void request_done(srv *s)
{
    s->requests++;
    s->answered_at = ev_now(s->loop);
    srv_answer(s);
}

static void conn_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv *s = w->data;
    char tmp[65536];
    ssize_t r = read(s->cfd, tmp, sizeof tmp);
    if (r <= 0) {
        srv_close_conn(s);
        s->peer_closed = 1;
        if (s->break_on_close)
            ev_break(loop, EVBREAK_ONE);
        return;
    }
    const char *p = tmp;
    size_t n = (size_t)r;
    while (n > 0 && s->cfd >= 0) {
        if (s->body_left > 0) {
            /* Bodies are counted; kept (after the head) only when small. */
            size_t take = n < s->body_left ? n : s->body_left;
            if (s->last_req_len + take < sizeof s->last_req) {
                memcpy(s->last_req + s->last_req_len, p, take);
                s->last_req_len += take;
                s->last_req[s->last_req_len] = '\0';
            }
            s->body_seen += take;
            s->body_left -= take;
            p += take;
            n -= take;
            if (s->body_left == 0)
                request_done(s);
            continue;
        }
        size_t take = n < sizeof s->req - s->req_len ? n : sizeof s->req - s->req_len;
        assert_true(take > 0); /* heads in these tests are small */
        memcpy(s->req + s->req_len, p, take);
        size_t cl, head = head_complete(s->req, s->req_len + take, &cl);
        if (!head) {
            s->req_len += take;
            p += take;
            n -= take;
            continue;
        }
        size_t used = head - s->req_len; /* the rest is body or the next request */
        p += used;
        n -= used;
        memcpy(s->last_req, s->req, head);
        s->last_req[head] = '\0';
        s->last_req_len = head;
        s->req_len = 0;
        s->body_seen = 0;
        s->body_left = cl;
        if (cl == 0)
            request_done(s);
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    srv *s = w->data;
    int fd = accept(s->lfd, NULL, NULL);
    if (fd < 0)
        return;
    /* One connection at a time is all these tests need; a second one
     * replaces the first (curl only opens one per transfer here). */
    srv_close_conn(s);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    s->cfd = fd;
    s->req_len = 0;
    ev_io_init(&s->conn_io, conn_cb, fd, EV_READ);
    s->conn_io.data = s;
    ev_io_start(loop, &s->conn_io);
}

int listen_loopback(int do_listen, int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    if (do_listen)
        assert_int_equal(listen(fd, 16), 0);
    socklen_t len = sizeof a;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    *port = ntohs(a.sin_port);
    return fd;
}

/* ---- the client side -------------------------------------------------- */

static void on_head(void *ctx, const sl_xfer_head *h)
{
    fixture *f = ctx;
    f->heads++;
    f->status = h->status;
    f->has_content_type = h->content_type != NULL;
    if (h->content_type)
        snprintf(f->content_type, sizeof f->content_type, "%s", h->content_type);
    assert_non_null(h->passthrough);
    assert_true(h->passthrough_len < sizeof f->pass);
    memcpy(f->pass, h->passthrough, h->passthrough_len);
    f->pass[h->passthrough_len] = '\0';
    f->retry_after = h->retry_after_s;
    if (f->cancel_in_head)
        sl_xfer_cancel(f->x);
}

static void resume_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    fixture *f = t->data;
    sl_xfer_resume(f->x);
}

static size_t on_data(void *ctx, const char *p, size_t n)
{
    fixture *f = ctx;
    f->datas++;
    if (f->datas == 1) {
        assert_true(n < sizeof f->first_delivery);
        memcpy(f->first_delivery, p, n);
        f->first_delivery_len = n;
    } else if (f->datas == 2) {
        assert_true(n < sizeof f->second_delivery);
        memcpy(f->second_delivery, p, n);
        f->second_delivery_len = n;
    }
    if (f->cancel_in_data) {
        sl_xfer_cancel(f->x);
        /* A second cancel from the same callback is harmless. */
        sl_xfer_cancel(f->x);
        return n;
    }
    if (f->abort_in_data)
        return 0;
    if (f->pause_first && f->datas == 1) {
        ev_timer_init(&f->resume_timer, resume_cb, f->resume_after, 0.);
        f->resume_timer.data = f;
        ev_timer_start(f->loop, &f->resume_timer);
        return SL_XFER_PAUSE;
    }
    assert_true(f->data_len + n < sizeof f->data);
    memcpy(f->data + f->data_len, p, n);
    f->data_len += n;
    if (f->lockstep)
        srv_send_next_piece(&f->s);
    return n;
}

static void on_done(void *ctx, sl_xfer_result r, const char *detail)
{
    fixture *f = ctx;
    f->dones++;
    f->result = r;
    snprintf(f->detail, sizeof f->detail, "%s", detail ? detail : "(null)");
    if (f->cancel_in_done)
        sl_xfer_cancel(f->x); /* the contract: safe from any own callback */
    ev_break(f->loop, EVBREAK_ONE);
}

const sl_xfer_callbacks cbs = {on_head, on_data, on_done};

void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    fixture *f = t->data;
    f->guard_fired = 1;
    ev_break(loop, EVBREAK_ONE);
}

int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(f->loop);
    f->u = sl_upstream_new(f->loop);
    assert_non_null(f->u);
    f->s.loop = f->loop;
    f->s.cfd = -1;
    f->s.lfd = listen_loopback(1, &f->s.port);
    ev_io_init(&f->s.accept_io, accept_cb, f->s.lfd, EV_READ);
    f->s.accept_io.data = &f->s;
    ev_io_start(f->loop, &f->s.accept_io);
    ev_init(&f->s.trickle, trickle_cb);
    f->retry_after = -2;
    f->status = -1;
    *state = f;
    return 0;
}

int teardown(void **state)
{
    fixture *f = *state;
    assert_int_equal(sl_upstream_active(f->u), 0);
    sl_upstream_free(f->u);
    srv_close_conn(&f->s);
    ev_io_stop(f->loop, &f->s.accept_io);
    close(f->s.lfd);
    ev_timer_stop(f->loop, &f->resume_timer);
    ev_loop_destroy(f->loop);
    free(f);
    return 0;
}

sl_xfer_spec spec_for(fixture *f, const char *path, char *url, size_t url_cap)
{
    snprintf(url, url_cap, "http://127.0.0.1:%d%s", f->s.port, path);
    return (sl_xfer_spec){.url = url, .connect_ms = 0, .first_byte_ms = 2000, .idle_ms = 2000,
                          .total_ms = 0};
}

/* Starts the transfer and runs the loop until on_done (or the server sees
 * the client close, when asked), failing after max_s seconds. */
void run(fixture *f, const sl_xfer_spec *sp, double max_s)
{
    f->x = sl_xfer_start(f->u, sp, &cbs, f);
    assert_non_null(f->x);
    assert_int_equal(sl_upstream_active(f->u), 1);
    ev_timer_init(&f->guard, guard_cb, max_s, 0.);
    f->guard.data = f;
    ev_timer_start(f->loop, &f->guard);
    ev_run(f->loop, 0);
    ev_timer_stop(f->loop, &f->guard);
    assert_false(f->guard_fired);
}

double now_s(fixture *f)
{
    ev_now_update(f->loop);
    return ev_now(f->loop);
}

int group_setup(void **state)
{
    /* Loopback only: a proxy from the environment must not intercept. */
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

int group_teardown(void **state)
{
    curl_global_cleanup();
    return 0;
}
