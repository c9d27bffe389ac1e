/*
 * The client connection state machine. A connection moves through HEAD ->
 * BODY -> HANDLING -> (response out) and back to HEAD for keep-alive; every
 * protocol violation is answered with the fitting status and the
 * connection closed, because after a framing error nothing later on that
 * connection can be trusted (request smuggling lives in that gap). Until a
 * handler has seen the head, nobody knows who is on the other end, so the
 * server spends little on a connection before that: the head hook runs
 * before any body byte is read, idle keep-alive connections that never
 * authenticated are the first to go when slots run short, and a request
 * answered early is drained briefly and closed rather than read.
 */
#include <errno.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/server_internal.h"

/* How long a connection answered before its request was read keeps
 * discarding input before it closes. Closing with unread bytes makes the
 * kernel send a reset, which can destroy the response on its way to a
 * client that is still sending (nginx's lingering close, with a short cap:
 * the body it discards is one nobody wanted). */
#define SL_LINGER_MS 2000

/* Open client connections across all workers: max_connections is a
 * process-wide limit. */
static atomic_uint open_conns;

static void conn_try_parse(sl_conn *c);

unsigned sl_srv_conn_total(void) { return atomic_load(&open_conns); }
unsigned sl_conn_open_total(void) { return atomic_load(&open_conns); }

sl_arena *sl_conn_arena(sl_conn *c) { return &c->arena; }
sl_worker *sl_conn_worker(sl_conn *c) { return c->w; }
const char *sl_conn_peer(sl_conn *c) { return c->peer; }
const char *sl_conn_request_id(sl_conn *c) { return c->request_id; }
void sl_conn_set_authenticated(sl_conn *c) { c->authenticated = 1; }

void sl_conn_set_exchange(sl_conn *c, void *exchange, const sl_conn_hooks *hooks)
{
    c->exchange = exchange;
    c->hooks = hooks;
}

void sl_srv_timer_arm(sl_conn *c, uint32_t timeout_ms)
{
    ev_timer_stop(c->w->loop, &c->timer);
    if (timeout_ms) {
        ev_timer_set(&c->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(c->w->loop, &c->timer);
    }
}

/* ---- idle keep-alive queues ------------------------------------------- */

/* An idle keep-alive connection keeps no buffers: thousands of idle
 * clients would otherwise pin 4 KiB of input, the arena's first block and
 * the last response each. The next request allocates them again, which
 * costs two mallocs against that memory for the connection's idle life. */
static void release_buffers(sl_conn *c)
{
    if (c->in_len == 0) {
        free(c->in);
        c->in = NULL;
        c->in_cap = 0;
    }
    if (sl_buf_pending(&c->out) == 0)
        sl_buf_free(&c->out);
    sl_arena_free(&c->arena);
}

static void idle_enter(sl_conn *c)
{
    sl_worker *w = c->w;
    release_buffers(c);
    int q = c->authenticated ? SL_IDLE_AUTHED : SL_IDLE_ANON;
    c->idle_queue = q;
    c->idle_next = NULL;
    c->idle_prev = w->idle_tail[q];
    if (w->idle_tail[q])
        w->idle_tail[q]->idle_next = c;
    else
        w->idle_head[q] = c;
    w->idle_tail[q] = c;
    atomic_fetch_add_explicit(&w->idle_count[q], 1, memory_order_relaxed);
}

static void idle_leave(sl_conn *c)
{
    int q = c->idle_queue;
    if (q < 0)
        return;
    sl_worker *w = c->w;
    if (c->idle_prev)
        c->idle_prev->idle_next = c->idle_next;
    else
        w->idle_head[q] = c->idle_next;
    if (c->idle_next)
        c->idle_next->idle_prev = c->idle_prev;
    else
        w->idle_tail[q] = c->idle_prev;
    c->idle_next = c->idle_prev = NULL;
    c->idle_queue = -1;
    atomic_fetch_sub_explicit(&w->idle_count[q], 1, memory_order_relaxed);
}

int sl_srv_shed_idle(sl_worker *w)
{
    for (int q = 0; q < SL_IDLE_QUEUES; q++) {
        sl_conn *c = w->idle_head[q];
        if (c) {
            sl_log(SL_LOG_DEBUG, "client %s: idle connection closed to free a slot", c->peer);
            sl_srv_conn_close(c);
            return 1;
        }
    }
    return 0;
}

unsigned sl_srv_drain_deadline(sl_worker *w)
{
    unsigned idle = 0, cut = 0, arriving = 0;
    sl_conn *c = w->conns;
    while (c) {
        sl_conn *next = c->next;
        int queued = 0;
        if (c->state == SL_ST_HEAD && c->in_len == 0 && sl_buf_pending(&c->out) == 0 &&
            (ioctl(c->fd, FIONREAD, &queued) != 0 || queued == 0)) {
            idle++;
            sl_srv_conn_close(c);
        } else if (c->state == SL_ST_HEAD || c->state == SL_ST_BODY) {
            /* A request is on its way: closing now would lose it, so it is
             * read and answered (with Connection: close) first. */
            arriving++;
        } else {
            cut++;
            sl_srv_conn_close(c);
        }
        c = next;
    }
    if (idle || cut || arriving)
        sl_log_warn("worker %d: drain deadline: %u idle keep-alive connection(s) closed, %u "
                    "in-flight cut, %u arriving request(s) still answered",
                    w->id, idle, cut, arriving);
    return arriving;
}

/* ---- lifecycle ---------------------------------------------------------- */

void sl_srv_conn_close(sl_conn *c)
{
    if (c->state == SL_ST_CLOSING)
        return;
    c->state = SL_ST_CLOSING;
    sl_worker *w = c->w;
    if (c->exchange && c->hooks && c->hooks->abort) {
        void *ex = c->exchange;
        c->exchange = NULL;
        c->hooks->abort(ex);
    }
    idle_leave(c);
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->timer);
    sl_srv_tls_detach(c);
    close(c->fd);
    if (c->prev)
        c->prev->next = c->next;
    else
        w->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    w->conn_count--;
    atomic_fetch_sub(&open_conns, 1);
    free(c->in);
    sl_srv_body_free(c);
    sl_buf_free(&c->out);
    sl_arena_free(&c->arena);
    free(c);
    if (w->stopping && w->conn_count == 0)
        ev_break(w->loop, EVBREAK_ONE);
}

/* The body is a tiny JSON error both SDK families parse. */
void sl_srv_conn_fail(sl_conn *c, int status, const char *why)
{
    char body[256];
    int busy = status == 503;
    int n = snprintf(body, sizeof body, "{\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}",
                     busy ? "overloaded_error" : "invalid_request_error", why);
    c->keep_alive = 0;
    c->linger = 1;
    c->state = SL_ST_HANDLING;
    ev_io_stop(c->w->loop, &c->rio);
    sl_srv_timer_arm(c, 0);
    if (!c->request_id[0])
        sl_reqid_new(c->request_id);
    sl_log(SL_LOG_INFO, "client %s: %d %s request_id=%s", c->peer, status, why, c->request_id);
    sl_conn_respond(c, status, "application/json", busy ? "Retry-After: 1\r\n" : NULL, body,
                    (size_t)n);
}

static void conn_start_request(sl_conn *c)
{
    c->state = SL_ST_HEAD;
    c->streaming = c->stream_chunked = c->response_done = c->head_only = c->linger = 0;
    c->close_sent = 0;
    c->request_id[0] = '\0';
    memset(&c->req, 0, sizeof c->req);
    sl_srv_body_free(c);
    sl_arena_reset(&c->arena);
}

static void linger_start(sl_conn *c)
{
    c->state = SL_ST_LINGER;
    sl_srv_body_free(c);
    sl_srv_tls_close_write(c);
    if (shutdown(c->fd, SHUT_WR) != 0) {
        sl_srv_conn_close(c);
        return;
    }
    if (!ev_is_active(&c->rio))
        ev_io_start(c->w->loop, &c->rio);
    sl_srv_timer_arm(c, SL_LINGER_MS);
}

static void linger_read(sl_conn *c)
{
    char sink[4096];
    /* Bounded per wake-up so one client cannot hog the loop; the watcher
     * is level-triggered, so the rest is read on the next turn. */
    for (int i = 0; i < 64; i++) {
        ssize_t n = recv(c->fd, sink, sizeof sink, 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        sl_srv_conn_close(c); /* the client closed (or reset) its side */
        return;
    }
}

void sl_srv_after_response(sl_conn *c)
{
    c->response_done = 0;
    /* While draining, a connection whose response went out without
     * Connection: close (its head left before the drain began) is not
     * closed now: its client may already be sending the next request on
     * it. That request is answered with Connection: close instead; an idle
     * one is closed at the drain deadline. */
    if (!c->keep_alive || (c->w->stopping && c->close_sent)) {
        if (c->linger)
            linger_start(c);
        else
            sl_srv_conn_close(c);
        return;
    }
    /* Drop this request's bytes; keep any pipelined ones. */
    size_t end = c->body_raw_end;
    if (end > c->in_len)
        end = c->in_len;
    memmove(c->in, c->in + end, c->in_len - end);
    c->in_len -= end;
    c->body_raw_end = 0;
    conn_start_request(c);
    sl_srv_read_resume(c);
    const sl_server_limits *lim = &c->w->cfg->table->server;
    sl_srv_timer_arm(c, c->in_len ? lim->header_timeout_ms : lim->keepalive_timeout_ms);
    if (c->in_len)
        conn_try_parse(c);
    else
        idle_enter(c);
}

/* A pointer into the first len bytes at `from` (or just past them) moves
 * to the same offset at `to`; any other (a static "/", NULL) stays. */
static void follow(const char **ptr, uintptr_t from, size_t len, const char *to)
{
    uintptr_t a = (uintptr_t)*ptr;
    if (*ptr && a >= from && a - from <= len)
        *ptr = to + (a - from);
}

/* While a request is handled the input buffer only has to hold pipelined
 * bytes and notice the client leaving, so it moves to a buffer with a
 * little room past them: 4 KiB per request in flight adds up at thousands
 * in flight. The parsed head's pointers follow the bytes (parsing it again
 * for that was 2,000 instructions per request); when there is no memory
 * for the new buffer the old one simply stays. */
static void shrink_in(sl_conn *c)
{
    size_t want = c->in_len + 512;
    if (c->in_cap < want + 1024)
        return;
    char *p = malloc(want);
    if (!p)
        return;
    memcpy(p, c->in, c->in_len);
    uintptr_t from = (uintptr_t)c->in;
    size_t len = c->in_len;
    sl_http_request *r = &c->req;
    follow(&r->method_str, from, len, p);
    follow(&r->target, from, len, p);
    follow(&r->path, from, len, p);
    follow(&r->query, from, len, p);
    follow(&r->authority, from, len, p);
    for (size_t i = 0; i < r->header_count; i++) {
        follow(&r->headers[i].name, from, len, p);
        follow(&r->headers[i].value, from, len, p);
    }
    free(c->in);
    c->in = p;
    c->in_cap = want;
}

void sl_srv_dispatch(sl_conn *c, const char *body, size_t len)
{
    shrink_in(c);
    c->state = SL_ST_HANDLING;
    sl_srv_timer_arm(c, 0);
    c->w->cfg->handlers->request(c, &c->req, body, len);
}

/* Parses the head in c->in into c->req. The headers land in the worker's
 * scratch array and, once the head is complete, move to the connection's
 * arena, so a connection holds only the headers it was sent. */
static int parse_head(sl_conn *c, const char **why)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    c->req.headers = c->w->head_scratch;
    c->req.header_cap = SL_HTTP_MAX_HEADERS;
    int rc = sl_http_parse_request(c->in, c->in_len, lim->max_header_bytes, lim->max_headers,
                                   &c->req, why);
    if (rc != SL_HTTP_OK) {
        c->req.headers = NULL;
        c->req.header_cap = 0;
        return rc;
    }
    size_t n = c->req.header_count;
    sl_http_header *kept = sl_arena_alloc(&c->arena, (n ? n : 1) * sizeof *kept);
    if (!kept) {
        c->req.headers = NULL;
        c->req.header_cap = c->req.header_count = 0;
        *why = "out of memory, retry shortly";
        return -503;
    }
    memcpy(kept, c->w->head_scratch, n * sizeof *kept);
    c->req.headers = kept;
    c->req.header_cap = n;
    return SL_HTTP_OK;
}

int sl_srv_grow_in(sl_conn *c, size_t need)
{
    if (c->in_cap >= need)
        return 0;
    size_t cap = c->in_cap ? c->in_cap : 4096;
    while (cap < need)
        cap *= 2;
    char *old = c->in;
    char *p = realloc(c->in, cap);
    if (!p)
        return -1;
    c->in = p;
    c->in_cap = cap;
    if (p != old && c->state == SL_ST_BODY) {
        /* c->req points into the buffer: parse the (complete, already
         * validated) head again so its pointers follow the move. */
        const char *why;
        if (parse_head(c, &why) != SL_HTTP_OK)
            return -1;
    }
    return 0;
}

/* ---- input ---------------------------------------------------------------- */

/* The head is in. The head hook decides before the body costs anything. */
static void head_complete(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    const sl_handlers *h = c->w->cfg->handlers;
    c->keep_alive = c->req.keep_alive;
    c->head_only = c->req.method == SL_HTTP_HEAD;
    const sl_http_header *rid = sl_http_find_header(&c->req, "x-request-id");
    sl_reqid_take(c->request_id, rid ? rid->value : NULL, rid ? rid->value_len : 0);
    if (c->req.content_length > 0 && (uint64_t)c->req.content_length > lim->max_body_bytes) {
        sl_srv_conn_fail(c, 413, "request body too large");
        return;
    }
    if (h->head) {
        c->state = SL_ST_HANDLING;
        sl_srv_timer_arm(c, 0);
        /* Whatever the hook answers goes out with Connection: close: the
         * body it did not want may still be on the wire. */
        int keep_alive = c->keep_alive;
        c->keep_alive = 0;
        sl_head_verdict v = h->head(c, &c->req);
        if (v == SL_HEAD_DONE || c->response_done || c->broken) {
            c->linger = 1;
            if (!c->response_done && !c->broken) {
                sl_log_warn("head handler returned DONE without a response");
                sl_srv_conn_fail(c, 500, "internal error");
            }
            return;
        }
        c->keep_alive = keep_alive;
    }
    sl_srv_body_begin(c);
}

static void conn_try_parse(sl_conn *c)
{
    const char *why = "bad request";
    int rc = parse_head(c, &why);
    if (rc == SL_HTTP_INCOMPLETE)
        return;
    if (rc < 0) {
        sl_srv_conn_fail(c, -rc, why);
        return;
    }
    head_complete(c);
}

/* Makes room in the input buffer; 0 when there is none to be had now. */
static int in_room(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    if (c->in_cap - c->in_len < 1024 && c->state != SL_ST_HANDLING) {
        size_t limit = (size_t)lim->max_header_bytes + 4096;
        if (c->state == SL_ST_BODY) /* chunked: decoding keeps it short */
            limit = c->in_len + 65536;
        if (sl_srv_grow_in(c, c->in_len + 4096 > limit ? c->in_len + 1024 : c->in_len + 4096) != 0) {
            sl_srv_conn_fail(c, 503, "out of memory, retry shortly");
            return 0;
        }
    }
    if (c->in_cap == c->in_len) {
        /* Handling a request with a full buffer of pipelined bytes: stop
         * reading until the response is out. */
        ev_io_stop(c->w->loop, &c->rio);
        return 0;
    }
    return 1;
}

static void read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sl_conn *c = io->data;
    const sl_server_limits *lim = &c->w->cfg->table->server;
    if (c->state == SL_ST_LINGER) {
        linger_read(c);
        return;
    }
    for (;;) {
        /* Content-Length bodies go straight into the body buffer, never
         * past their end: what follows is the next request's. */
        int into_body = c->state == SL_ST_BODY && !c->req.chunked;
        char *dst;
        size_t room;
        if (into_body) {
            if (sl_srv_body_room(c, &dst, &room) != 0)
                return;
        } else {
            if (!in_room(c))
                return;
            dst = c->in + c->in_len;
            room = c->in_cap - c->in_len;
        }
        ssize_t n = sl_srv_recv(c, dst, room);
        if (n > 0) {
            if (into_body) {
                c->body_len += (size_t)n;
                sl_srv_body_progress(c);
            } else {
                int was_empty = c->in_len == 0 && c->state == SL_ST_HEAD;
                c->in_len += (size_t)n;
                if (was_empty) {
                    idle_leave(c);
                    sl_srv_timer_arm(c, lim->header_timeout_ms);
                }
                if (c->state == SL_ST_HANDLING)
                    continue; /* pipelined: parsed after the response */
                if (c->state == SL_ST_BODY) {
                    sl_srv_body_progress(c);
                } else if (!memchr(dst, '\n', (size_t)n) && c->in_len < lim->max_header_bytes) {
                    /* No new line yet: the head cannot have completed, and
                     * re-scanning it per byte would be quadratic. */
                } else {
                    conn_try_parse(c);
                }
            }
            /* A short read drained the socket: skip the recv that would only
             * say EAGAIN (the watcher is level-triggered, so anything that
             * arrives later still wakes us). Not so under TLS: a short read
             * is one record's worth, and more may wait. */
            if (((size_t)n < room && !c->tls) || c->state == SL_ST_HANDLING)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error: the client is gone; abort whatever it asked for. */
        sl_srv_conn_close(c);
        return;
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_conn *c = t->data;
    if (c->handshaking) {
        sl_log(SL_LOG_DEBUG, "client %s: TLS handshake timeout", c->peer);
        sl_srv_conn_close(c);
        return;
    }
    if (c->state == SL_ST_LINGER || (c->state == SL_ST_HEAD && c->in_len == 0)) {
        sl_srv_conn_close(c); /* lingered long enough, or idle keep-alive */
        return;
    }
    if (c->state == SL_ST_HEAD || c->state == SL_ST_BODY)
        sl_srv_conn_fail(c, 408, c->state == SL_ST_HEAD ? "request header timeout"
                                                        : "request body timeout");
}

int sl_srv_conn_open(sl_worker *w, int fd, const char *peer, int tls)
{
    sl_conn *c = calloc(1, sizeof *c);
    if (!c) {
        close(fd);
        return -1;
    }
    c->w = w;
    c->fd = fd;
    c->idle_queue = -1;
    snprintf(c->peer, sizeof c->peer, "%s", peer);
    sl_arena_init(&c->arena, 4096);
    ev_io_init(&c->rio, read_cb, fd, EV_READ);
    ev_io_init(&c->wio, sl_srv_write_cb, fd, EV_WRITE);
    ev_init(&c->timer, timer_cb);
    c->rio.data = c->wio.data = c->timer.data = c;
    c->next = w->conns;
    if (w->conns)
        w->conns->prev = c;
    w->conns = c;
    w->conn_count++;
    atomic_fetch_add(&open_conns, 1);
    conn_start_request(c);
    ev_io_start(w->loop, &c->rio);
    sl_srv_timer_arm(c, w->cfg->table->server.header_timeout_ms);
    if (tls && sl_srv_tls_attach(c) != 0) {
        /* Nothing sensible can be said before a handshake: just close. */
        sl_srv_conn_close(c);
        return -1;
    }
    return 0;
}
