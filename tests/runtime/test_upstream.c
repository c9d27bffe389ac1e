/*
 * Tests for the upstream client (runtime/upstream/upstream.c) against a real
 * HTTP server: a small loopback server on 127.0.0.1:0 runs in the same libev
 * loop as the transfers (ev_io callbacks, blocking writes of small pieces),
 * and each test scripts how it answers: normally, in pieces released one at
 * a time by the client, silently, stalling, closing mid-body, redirecting.
 * No mocks: libcurl does real TCP, so the watchdog timeouts, the failure
 * classification and the cancel/pause paths are the ones the gateway runs.
 * Each test gets a fresh loop and upstream; AddressSanitizer's leak check
 * covers "nothing leaks".
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

/* ---- the loopback server ---------------------------------------------- */

typedef enum scenario {
    SC_HEADERS,    /* full response with a spread of headers */
    SC_PIECES,     /* chunked; each chunk sent when the client asks */
    SC_SILENT,     /* reads the request, never answers */
    SC_STALL,      /* head and part of the body, then nothing */
    SC_CLOSE_MID,  /* head with Content-Length 100, 10 bytes, close */
    SC_CLOSE_NOW,  /* reads the request and closes without a byte */
    SC_REDIRECT,   /* 302 with Location */
    SC_STATUS,     /* status/headers from the test's canned_head */
    SC_TRICKLE,    /* one body byte every 50 ms, forever */
    SC_EARLY_HINTS,/* 103 interim response, then 200 */
} scenario;

static const char *const pieces[] = {"alpha", "beta-", "gamma"};

typedef struct srv {
    struct ev_loop *loop;
    int lfd;
    int port;
    ev_io accept_io;
    scenario sc;
    const char *canned; /* SC_STATUS: whole response */
    int cfd;            /* the one client connection being served, or -1 */
    ev_io conn_io;
    ev_timer trickle;
    char req[16384];
    size_t req_len;
    int requests;       /* complete requests seen */
    char last_req[16384];
    size_t last_req_len;
    size_t body_left;   /* request body bytes still to come */
    size_t body_seen;   /* request body bytes received */
    double answered_at; /* loop time the last complete request was answered */
    int piece;          /* SC_PIECES: chunks sent */
    int peer_closed;    /* the client closed its side */
    int break_on_close; /* ev_break when the client closes */
} srv;

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

static int listen_loopback(int do_listen, int *port)
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

typedef struct fixture {
    struct ev_loop *loop;
    sl_upstream *u;
    srv s;
    sl_xfer *x;
    ev_timer guard;
    int guard_fired;
    ev_timer resume_timer;

    /* what the callbacks saw */
    int heads, datas, dones;
    int status;
    char content_type[128];
    int has_content_type;
    char pass[4096];
    int retry_after;
    char data[4096];
    size_t data_len;
    char first_delivery[256];
    size_t first_delivery_len;
    char second_delivery[256];
    size_t second_delivery_len;
    sl_xfer_result result;
    char detail[256];

    /* how the callbacks behave */
    int lockstep;         /* ask the server for the next piece from on_data */
    int cancel_in_head;
    int cancel_in_data;   /* on the first piece */
    int cancel_in_done;
    int pause_first;      /* SL_XFER_PAUSE once, resume after resume_after s */
    double resume_after;
    int abort_in_data;    /* return 0 */
} fixture;

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

static const sl_xfer_callbacks cbs = {on_head, on_data, on_done};

static void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    fixture *f = t->data;
    f->guard_fired = 1;
    ev_break(loop, EVBREAK_ONE);
}

static int setup(void **state)
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

static int teardown(void **state)
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

static sl_xfer_spec spec_for(fixture *f, const char *path, char *url, size_t url_cap)
{
    snprintf(url, url_cap, "http://127.0.0.1:%d%s", f->s.port, path);
    return (sl_xfer_spec){.url = url, .connect_ms = 0, .first_byte_ms = 2000, .idle_ms = 2000,
                          .total_ms = 0};
}

/* Starts the transfer and runs the loop until on_done (or the server sees
 * the client close, when asked), failing after max_s seconds. */
static void run(fixture *f, const sl_xfer_spec *sp, double max_s)
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

static double now_s(fixture *f)
{
    ev_now_update(f->loop);
    return ev_now(f->loop);
}

/* ---- tests -------------------------------------------------------------- */

static void test_ok_in_pieces(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_PIECES;
    f->lockstep = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/chat/completions", url, sizeof url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Authorization: Bearer up-key");
    sp.headers = h;
    const char body[] = "{\"model\":\"m\",\"stream\":true}";
    sp.body = body;
    sp.body_len = sizeof body - 1;
    run(f, &sp, 3.0);
    curl_slist_free_all(h);

    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_string_equal(f->detail, "");
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->content_type, "text/event-stream");
    /* Each chunk reached on_data on its own, as it arrived: nothing waited
     * for the end of the response. */
    assert_int_equal(f->datas, 3);
    assert_int_equal(f->data_len, 15);
    assert_memory_equal(f->data, "alphabeta-gamma", 15);
    assert_int_equal(f->first_delivery_len, 5);
    assert_memory_equal(f->first_delivery, "alpha", 5);
    /* The request went out as specified. */
    assert_int_equal(f->s.requests, 1);
    assert_true(strncmp(f->s.last_req, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    assert_non_null(strstr(f->s.last_req, "\r\nAuthorization: Bearer up-key\r\n"));
    assert_non_null(strstr(f->s.last_req, "\r\nContent-Type: application/json\r\n"));
    assert_int_equal(memcmp(f->s.last_req + f->s.last_req_len - (sizeof body - 1), body,
                            sizeof body - 1), 0);
}

static void test_head_filtering(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_HEADERS;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/get", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->content_type, "application/json; charset=utf-8");
    assert_int_equal(f->retry_after, 7);
    assert_int_equal(f->data_len, 11);
    assert_memory_equal(f->data, "{\"ok\":true}", 11);
    /* A GET when there is no body. */
    assert_true(strncmp(f->s.last_req, "GET /get HTTP/1.1\r\n", 19) == 0);

    /* Rate-limit and request-id headers pass, values trimmed, names as
     * sent; nothing else does. */
    const char *kept[] = {
        "x-ratelimit-remaining-requests: 99\r\n", "X-RateLimit-Limit-Tokens: 1000\r\n",
        "anthropic-ratelimit-requests-limit: 50\r\n", "request-id: req_123\r\n",
        "x-upstream-request-id: abc-def\r\n", "openai-processing-ms: 12\r\n", "Retry-After: 7\r\n",
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        if (!strstr(f->pass, kept[i]))
            fail_msg("missing '%s' in passthrough:\n%s", kept[i], f->pass);
        total += strlen(kept[i]);
    }
    assert_int_equal(strlen(f->pass), total);
    const char *dropped[] = {"Set-Cookie", "secret", "Connection", "Keep-Alive", "Server", "Via",
                             "Content-Length", "Content-Type"};
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        if (strstr(f->pass, dropped[i]))
            fail_msg("'%s' must not pass:\n%s", dropped[i], f->pass);
}

static void run_status(fixture *f, const char *canned)
{
    f->s.sc = SC_STATUS;
    f->s.canned = canned;
    f->dones = f->heads = f->datas = 0;
    f->data_len = 0;
    f->retry_after = -2;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/s", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
}

static void test_status_and_retry_after(void **state)
{
    fixture *f = *state;
    run_status(f, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 429);
    assert_int_equal(f->retry_after, 30);
    assert_false(f->has_content_type);
    assert_int_equal(f->datas, 0);

    run_status(f, "HTTP/1.1 503 Service Unavailable\r\n"
                  "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: 2\r\n\r\nno");
    assert_int_equal(f->status, 503);
    assert_int_equal(f->retry_after, -1);
    assert_memory_equal(f->data, "no", 2);

    run_status(f, "HTTP/1.1 529 Overloaded\r\nretry-after: 0\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 529);
    assert_int_equal(f->retry_after, 0);

    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: -5\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: 12abc\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: 99999999\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 200);
    assert_int_equal(f->retry_after, -1);
    assert_string_equal(f->pass, "");
    /* All on one kept-alive connection. */
    assert_int_equal(f->s.requests, 7);
}

static void test_interim_response_ignored(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_EARLY_HINTS;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->pass, "x-upstream-request-id: final\r\n");
    assert_int_equal(f->retry_after, -1);
    assert_memory_equal(f->data, "ok", 2);
}

/* A bare CR (or another control byte) inside a header value must never
 * reach the client: a client that treats CR as a line end would see a
 * header the upstream smuggled in. Such headers are dropped whole. */
static void test_head_values_validated(void **state)
{
    fixture *f = *state;
    char big[400];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char canned[2048];
    snprintf(canned, sizeof canned,
             "HTTP/1.1 200 OK\r\n"
             "x-request-id: abc\rSet-Cookie: session=stolen\r\n"
             "x-ratelimit-remaining-requests: 5\x01\r\n"
             "x-ratelimit-reset-requests: 1s\x7f\r\n"
             "anthropic-ratelimit-tokens-limit: 10 \r 20\r\n"
             "request-id: %s\r\n"
             "x-ratelimit-limit-requests:\t60\t\r\n"
             "retry-after-ms: 1500\r\n"
             "Content-Length: 2\r\n\r\nok",
             big);
    run_status(f, canned);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->pass, "x-ratelimit-limit-requests: 60\r\nretry-after-ms: 1500\r\n");
    assert_null(strchr(f->pass, '\x01'));
    assert_null(strstr(f->pass, "stolen"));
}

/* Only request ids, rate limits and Retry-After pass: identifiers of the
 * operator's upstream account (organisation, project) and everything
 * else the provider sends stay behind the gateway. */
static void test_head_allow_list(void **state)
{
    fixture *f = *state;
    run_status(f, "HTTP/1.1 200 OK\r\n"
                  "openai-organization: org-secret\r\n"
                  "openai-project: proj_secret\r\n"
                  "openai-version: 2020-10-01\r\n"
                  "anthropic-organization-id: 0000-secret\r\n"
                  "x-goog-upload-url: https://secret\r\n"
                  "cf-ray: 8f00secret\r\n"
                  "Strict-Transport-Security: max-age=1\r\n"
                  "x-request-id-extra: secret\r\n"
                  "request-idx: secret\r\n"
                  "x-ratelimit-remaining-tokens: 99\r\n"
                  "Content-Length: 0\r\n\r\n");
    assert_string_equal(f->pass, "x-ratelimit-remaining-tokens: 99\r\n");
}

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

static void test_redirect_not_followed(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_REDIRECT;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/models", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 302);
    assert_null(strstr(f->pass, "Location"));
    assert_int_equal(f->data_len, 5);
    assert_memory_equal(f->data, "moved", 5);
    assert_int_equal(f->s.requests, 1);
    assert_null(strstr(f->s.last_req, "/elsewhere"));
}

static void test_large_body_no_expect_wait(void **state)
{
    fixture *f = *state;
    /* Long-context requests run to megabytes. curl would send them with
     * "Expect: 100-continue" and then wait up to a second for a "100" that
     * many servers never send; the body must go out at once instead. */
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t big = 3u << 20;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'b', big);
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/messages", url, sizeof url);
    sp.body = body;
    sp.body_len = big;
    double t0 = now_s(f);
    run(f, &sp, 5.0);
    double took = now_s(f) - t0;
    free(body);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->s.body_seen, big);
    assert_null(strcasestr(f->s.last_req, "expect:"));
    assert_true(took < 0.8);
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

static void test_only_http_schemes(void **state)
{
    fixture *f = *state;
    /* The URL comes from the spec, but curl must still refuse anything that
     * is not HTTP(S). */
    sl_xfer_spec sp = {.url = "file:///etc/hostname", .first_byte_ms = 1000, .idle_ms = 1000};
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_ERROR);
    assert_int_equal(f->heads + f->datas, 0);
}

static void test_result_names(void **state)
{
    assert_string_equal(sl_xfer_result_name(SL_XFER_OK), "ok");
    assert_string_equal(sl_xfer_result_name(SL_XFER_CONNECT), "connect");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_FIRST_BYTE), "first_byte_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_IDLE), "idle_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_TOTAL), "total_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_RESET), "reset");
    assert_string_equal(sl_xfer_result_name(SL_XFER_ERROR), "error");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TLS), "tls");
}

static int group_setup(void **state)
{
    /* Loopback only: a proxy from the environment must not intercept. */
    static const char *const vars[] = {"http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
                                       "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++)
        unsetenv(vars[i]);
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

static int group_teardown(void **state)
{
    curl_global_cleanup();
    return 0;
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_names),
        T(test_ok_in_pieces),
        T(test_head_filtering),
        T(test_status_and_retry_after),
        T(test_interim_response_ignored),
        T(test_head_values_validated),
        T(test_head_allow_list),
        T(test_connect_refused),
        T(test_first_byte_timeout),
        T(test_idle_timeout),
        T(test_total_timeout),
        T(test_reset_mid_body),
        T(test_reset_before_any_byte),
        T(test_cancel_in_on_data),
        T(test_cancel_in_on_head),
        T(test_cancel_before_anything),
        T(test_cancel_in_on_done),
        T(test_cancel_in_on_done_after_timeout),
        T(test_abort_from_on_data),
        T(test_pause_resume_redelivers),
        T(test_pause_longer_than_idle),
        T(test_redirect_not_followed),
        T(test_large_body_no_expect_wait),
        T(test_connect_timeout),
        T(test_only_http_schemes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
