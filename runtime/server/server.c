/*
 * Workers and client connections. Each worker thread owns one libev loop,
 * one SO_REUSEPORT listening socket and one upstream multi handle, so the
 * kernel spreads connections across cores and nothing on the request path
 * is shared between threads. A connection moves through HEAD -> BODY ->
 * HANDLING -> (WRITING) and back to HEAD for keep-alive; every protocol
 * violation is answered with the fitting status and the connection closed,
 * because after a framing error nothing later on that connection can be
 * trusted (request smuggling lives in that gap).
 */
#define _GNU_SOURCE /* accept4 */
#include "server/server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/buf.h"
#include "core/log.h"
#include "http/http.h"
#include "proxy/dispatch.h"
#include "proxy/proxy.h"
#include "upstream/upstream.h"

enum conn_state { ST_HEAD, ST_BODY, ST_HANDLING, ST_CLOSING };

struct sl_conn {
    sl_worker *w;
    int fd;
    enum conn_state state;
    ev_io rio, wio;
    ev_timer timer;
    char peer[64];

    /* Input: the head and, for Content-Length bodies, the body itself
     * (zero-copy); never reallocated while a request is being handled
     * because sl_http_request points into it. */
    char *in;
    size_t in_len, in_cap;

    sl_http_request req;
    sl_chunked chunked;
    sl_buf chunked_body;      /* decoded chunked body */
    size_t body_raw_end;      /* offset in `in` where this request's bytes end */

    sl_buf out;
    sl_arena arena;

    void *exchange;
    const sl_conn_hooks *hooks;
    int keep_alive;
    int streaming;            /* sl_conn_stream_begin called */
    int stream_chunked;       /* body framed with chunked encoding */
    int close_after_write;
    int response_done;
    int head_only;            /* HEAD request: no body bytes on the wire */
    int broken;               /* a send failed; closing is pending */
    int authenticated;        /* a request here presented a valid key */
    ev_tstamp body_start;     /* when the head was complete */
    sl_conn *next, *prev;     /* worker's connection list */
};

struct sl_worker {
    int id;
    const sl_server_config *cfg;
    struct ev_loop *loop;
    int listen_fd;
    ev_io accept_io;
    ev_async stop_async;
    ev_timer drain_timer;
    int stopping;
    sl_upstream *upstream;
    pthread_t thread;
    sl_conn *conns;
    uint32_t conn_count;
    void *proxy_state;
    void (*proxy_state_free)(void *);
};

static sl_worker *workers;
static int worker_count;
/* Open client connections across all workers: max_connections is a
 * process-wide limit. */
static atomic_uint open_conns;

static void conn_close(sl_conn *c);
static void conn_try_parse(sl_conn *c);
static void conn_flush(sl_conn *c, int from_loop);

/* ---- small helpers ---------------------------------------------------- */

const char *sl_http_reason(int status)
{
    switch (status) {
    case 100: return "Continue";
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    case 529: return "Site Overloaded";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    default:
        return status < 300 ? "OK" : status < 400 ? "Redirection" : status < 500 ? "Client Error"
                                                                     : "Server Error";
    }
}

sl_arena *sl_conn_arena(sl_conn *c) { return &c->arena; }
sl_worker *sl_conn_worker(sl_conn *c) { return c->w; }
const char *sl_conn_peer(sl_conn *c) { return c->peer; }
size_t sl_conn_out_pending(const sl_conn *c) { return sl_buf_pending(&c->out); }
struct ev_loop *sl_worker_loop(sl_worker *w) { return w->loop; }
sl_upstream *sl_worker_upstream(sl_worker *w) { return w->upstream; }
const sl_table *sl_worker_table(sl_worker *w) { return w->cfg->table; }
int sl_worker_id(sl_worker *w) { return w->id; }
int sl_worker_count(void) { return worker_count; }
void *sl_worker_proxy_state(sl_worker *w) { return w->proxy_state; }
void sl_worker_set_proxy_state(sl_worker *w, void *state, void (*free_fn)(void *))
{
    w->proxy_state = state;
    w->proxy_state_free = free_fn;
}

void sl_conn_set_exchange(sl_conn *c, void *exchange, const sl_conn_hooks *hooks)
{
    c->exchange = exchange;
    c->hooks = hooks;
}

void sl_conn_set_authenticated(sl_conn *c)
{
    c->authenticated = 1;
}

static double ms(uint32_t v) { return (double)v / 1000.0; }

static void timer_arm(sl_conn *c, uint32_t timeout_ms)
{
    ev_timer_stop(c->w->loop, &c->timer);
    if (timeout_ms) {
        ev_timer_set(&c->timer, ms(timeout_ms), 0.);
        ev_timer_start(c->w->loop, &c->timer);
    }
}

/* ---- output ----------------------------------------------------------- */

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sl_conn *c = w->data;
    if (c->broken) {
        conn_close(c);
        return;
    }
    conn_flush(c, 1);
}

static void after_response(sl_conn *c);

/* Sends what is queued. Called from the loop (from_loop = 1) it may close
 * the connection on a hard error or move on to the next request. Called
 * from the proxy's side (respond, stream writes) it never does either
 * synchronously: the proxy may still be unwinding its own callbacks, so
 * those steps are fed back to the loop through the write watcher. */
static void conn_flush(sl_conn *c, int from_loop)
{
    while (sl_buf_pending(&c->out) > 0) {
        ssize_t n = send(c->fd, c->out.data + c->out.off, sl_buf_pending(&c->out), MSG_NOSIGNAL);
        if (n > 0) {
            sl_buf_consume(&c->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!ev_is_active(&c->wio))
                ev_io_start(c->w->loop, &c->wio);
            return;
        }
        if (from_loop) {
            conn_close(c);
        } else {
            c->broken = 1;
            ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        }
        return;
    }
    if (ev_is_active(&c->wio))
        ev_io_stop(c->w->loop, &c->wio);
    if (c->response_done) {
        if (from_loop)
            after_response(c);
        else
            ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return;
    }
    if (c->exchange && c->hooks && c->hooks->drained)
        c->hooks->drained(c->exchange);
}

static int queue_head(sl_conn *c, int status, const char *ctype, const char *headers,
                      long long content_length, int chunked)
{
    sl_buf *o = &c->out;
    size_t mark = o->len; /* on failure nothing of this head stays queued */
    int rc = sl_buf_appendf(o, "HTTP/1.%d %d %s\r\n", c->req.version_minor == 0 ? 0 : 1, status,
                            sl_http_reason(status));
    if (ctype)
        rc |= sl_buf_appendf(o, "Content-Type: %s\r\n", ctype);
    if (content_length >= 0)
        rc |= sl_buf_appendf(o, "Content-Length: %lld\r\n", content_length);
    if (chunked)
        rc |= sl_buf_append(o, "Transfer-Encoding: chunked\r\n", 28);
    if (headers)
        rc |= sl_buf_append(o, headers, strlen(headers));
    if (!c->keep_alive || c->w->stopping)
        rc |= sl_buf_append(o, "Connection: close\r\n\r\n", 21);
    else if (c->req.version_minor == 0)
        rc |= sl_buf_append(o, "Connection: keep-alive\r\n\r\n", 26);
    else
        rc |= sl_buf_append(o, "\r\n", 2);
    if (rc) {
        o->len = mark;
        return -1;
    }
    return 0;
}

void sl_conn_respond(sl_conn *c, int status, const char *ctype, const char *headers,
                     const char *body, size_t len)
{
    c->exchange = NULL;
    c->hooks = NULL;
    if (c->broken) {
        ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return;
    }
    int rc = queue_head(c, status, ctype, headers, (long long)len, 0);
    if (rc == 0 && !c->head_only)
        rc = sl_buf_append(&c->out, body, len);
    if (rc != 0) {
        c->broken = 1;
        ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return;
    }
    c->response_done = 1;
    conn_flush(c, 0);
}

int sl_conn_stream_begin(sl_conn *c, int status, const char *ctype, const char *headers)
{
    /* HTTP/1.0 has no chunked encoding: delimit the body by closing. */
    c->streaming = 1;
    c->stream_chunked = c->req.version_minor >= 1;
    if (!c->stream_chunked)
        c->keep_alive = 0;
    if (queue_head(c, status, ctype, headers, -1, c->stream_chunked) != 0) {
        c->broken = 1;
        ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return -1;
    }
    conn_flush(c, 0);
    return c->broken ? -1 : 0;
}

int sl_conn_stream_write(sl_conn *c, const char *data, size_t len)
{
    if (c->broken)
        return -1;
    if (len == 0 || c->head_only)
        return 0;
    int rc = 0;
    size_t mark = c->out.len;
    if (c->stream_chunked) {
        rc |= sl_buf_appendf(&c->out, "%zx\r\n", len);
        rc |= sl_buf_append(&c->out, data, len);
        rc |= sl_buf_append(&c->out, "\r\n", 2);
    } else {
        rc |= sl_buf_append(&c->out, data, len);
    }
    if (rc) {
        /* A half-queued chunk would corrupt the framing: drop it and give
         * up on this connection. */
        c->out.len = mark;
        c->broken = 1;
        ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return -1;
    }
    conn_flush(c, 0);
    return c->broken ? -1 : 0;
}

void sl_conn_stream_end(sl_conn *c, int clean)
{
    c->exchange = NULL;
    c->hooks = NULL;
    if (c->broken) {
        /* The head or a chunk could not be queued: close, write nothing. */
        ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return;
    }
    if (!clean) {
        c->keep_alive = 0;
    } else if (c->stream_chunked && !c->head_only) {
        if (sl_buf_append(&c->out, "0\r\n\r\n", 5) != 0)
            c->keep_alive = 0;
    }
    c->response_done = 1;
    conn_flush(c, 0);
}

/* ---- connection lifecycle -------------------------------------------- */

static void conn_close(sl_conn *c)
{
    if (c->state == ST_CLOSING)
        return;
    c->state = ST_CLOSING;
    sl_worker *w = c->w;
    if (c->exchange && c->hooks && c->hooks->abort) {
        void *ex = c->exchange;
        c->exchange = NULL;
        c->hooks->abort(ex);
    }
    ev_io_stop(w->loop, &c->rio);
    ev_io_stop(w->loop, &c->wio);
    ev_timer_stop(w->loop, &c->timer);
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
    sl_buf_free(&c->out);
    sl_buf_free(&c->chunked_body);
    sl_arena_free(&c->arena);
    free(c);
    if (w->stopping && w->conn_count == 0)
        ev_break(w->loop, EVBREAK_ONE);
}

/* Answers a framing or limit error and closes: the rest of the byte stream
 * cannot be trusted. The body is a tiny JSON error both SDK families parse. */
static void conn_fail(sl_conn *c, int status, const char *why)
{
    char body[256];
    int n = snprintf(body, sizeof body,
                     "{\"error\":{\"type\":\"invalid_request_error\",\"message\":\"%s\"}}", why);
    c->keep_alive = 0;
    c->state = ST_HANDLING;
    ev_io_stop(c->w->loop, &c->rio);
    timer_arm(c, 0);
    sl_log(SL_LOG_INFO, "client %s: %d %s", c->peer, status, why);
    sl_conn_respond(c, status, "application/json", NULL, body, (size_t)n);
}

static void conn_start_request(sl_conn *c)
{
    c->state = ST_HEAD;
    c->streaming = c->stream_chunked = c->response_done = c->head_only = 0;
    c->close_after_write = 0;
    memset(&c->req, 0, sizeof c->req);
    sl_buf_clear(&c->chunked_body);
    sl_arena_reset(&c->arena);
}

static void after_response(sl_conn *c)
{
    c->response_done = 0;
    if (!c->keep_alive || c->w->stopping) {
        conn_close(c);
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
    if (!ev_is_active(&c->rio))
        ev_io_start(c->w->loop, &c->rio);
    const sl_server_limits *lim = &c->w->cfg->table->server;
    timer_arm(c, c->in_len ? lim->header_timeout_ms : lim->keepalive_timeout_ms);
    if (c->in_len)
        conn_try_parse(c);
}

static void dispatch(sl_conn *c, const char *body, size_t body_len)
{
    c->state = ST_HANDLING;
    timer_arm(c, 0);
    c->head_only = c->req.method == SL_HTTP_HEAD;
    sl_dispatch_request(c, &c->req, body, body_len);
}

static int grow_in(sl_conn *c, size_t need)
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
    if (p != old && c->state == ST_BODY) {
        /* c->req points into the buffer: parse the (complete, already
         * validated) head again so its pointers follow the move. */
        const char *why;
        const sl_server_limits *lim = &c->w->cfg->table->server;
        sl_http_parse_request(c->in, c->in_len, lim->max_header_bytes, lim->max_headers, &c->req, &why);
    }
    return 0;
}

/* Bodies must keep moving (body_timeout between reads) and also arrive at
 * a minimum average rate, so a client dribbling a byte just inside the
 * idle timeout cannot hold a connection for hours: the whole body gets
 * body_timeout plus one second per SL_MIN_BODY_RATE bytes. Returns 0 when
 * the deadline has passed. */
#define SL_MIN_BODY_RATE (64 * 1024)

static int arm_body_timer(sl_conn *c, uint64_t bytes_so_far)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    uint64_t expect = c->req.chunked ? bytes_so_far : (uint64_t)c->req.content_length;
    double allowed = (double)lim->body_timeout_ms / 1000.0 + (double)expect / SL_MIN_BODY_RATE;
    double left = c->body_start + allowed - ev_now(c->w->loop);
    if (left <= 0)
        return 0;
    double idle = (double)lim->body_timeout_ms / 1000.0;
    ev_timer_stop(c->w->loop, &c->timer);
    ev_timer_set(&c->timer, left < idle ? left : idle, 0.);
    ev_timer_start(c->w->loop, &c->timer);
    return 1;
}

static void body_progress(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    if (!c->req.chunked) {
        size_t need = c->req.head_len + (size_t)c->req.content_length;
        if (c->in_len < need) {
            if (!arm_body_timer(c, c->in_len - c->req.head_len))
                conn_fail(c, 408, "request body too slow");
            return;
        }
        c->body_raw_end = need;
        dispatch(c, c->in + c->req.head_len, (size_t)c->req.content_length);
        return;
    }
    /* Chunked: decode what arrived since last time into chunked_body. */
    size_t pos = c->body_raw_end;
    while (pos < c->in_len) {
        size_t consumed = 0, produced = 0;
        size_t room = c->in_len - pos;
        if (sl_buf_reserve(&c->chunked_body, room) != 0) {
            conn_fail(c, 500, "out of memory");
            return;
        }
        int rc = sl_chunked_decode(&c->chunked, c->in + pos, room, &consumed,
                                   c->chunked_body.data + c->chunked_body.len, &produced);
        pos += consumed;
        c->chunked_body.len += produced;
        if (c->chunked_body.len > lim->max_body_bytes) {
            conn_fail(c, 413, "request body too large");
            return;
        }
        if (rc == SL_CHUNKED_ERROR) {
            conn_fail(c, 400, "malformed chunked body");
            return;
        }
        if (rc == SL_CHUNKED_DONE) {
            c->body_raw_end = pos;
            dispatch(c, c->chunked_body.data ? c->chunked_body.data : "", c->chunked_body.len);
            return;
        }
        if (consumed == 0)
            break;
    }
    /* Drop the raw chunk framing already decoded so a body of tiny chunks
     * cannot grow the input buffer far beyond max_body. The head stays in
     * place, so c->req's pointers stay valid. */
    size_t head = c->req.head_len;
    if (pos > head) {
        memmove(c->in + head, c->in + pos, c->in_len - pos);
        c->in_len -= pos - head;
        pos = head;
    }
    c->body_raw_end = pos;
    if (!arm_body_timer(c, c->chunked_body.len + 4096))
        conn_fail(c, 408, "request body too slow");
}

static void conn_try_parse(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    if (c->state == ST_HEAD) {
        const char *why = "bad request";
        int rc = sl_http_parse_request(c->in, c->in_len, lim->max_header_bytes, lim->max_headers,
                                       &c->req, &why);
        if (rc == SL_HTTP_INCOMPLETE)
            return;
        if (rc < 0) {
            conn_fail(c, -rc, why);
            return;
        }
        c->keep_alive = c->req.keep_alive;
        if (c->req.content_length > 0 && (uint64_t)c->req.content_length > lim->max_body_bytes) {
            conn_fail(c, 413, "request body too large");
            return;
        }
        if (c->req.expect_continue && (c->req.content_length > 0 || c->req.chunked) &&
            c->req.version_minor >= 1) {
            if (sl_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
                conn_flush(c, 0);
        }
        c->state = ST_BODY;
        c->body_start = ev_now(c->w->loop);
        c->body_raw_end = c->req.head_len;
        if (c->req.chunked) {
            sl_chunked_init(&c->chunked);
        } else if (c->req.content_length <= 0) {
            c->body_raw_end = c->req.head_len;
            dispatch(c, "", 0);
            return;
        } else if (grow_in(c, c->req.head_len + (size_t)c->req.content_length) != 0) {
            conn_fail(c, 500, "out of memory");
            return;
        }
    }
    if (c->state == ST_BODY)
        body_progress(c);
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sl_conn *c = w->data;
    const sl_server_limits *lim = &c->w->cfg->table->server;
    for (;;) {
        if (c->in_cap - c->in_len < 1024 && c->state != ST_HANDLING) {
            size_t limit = (size_t)lim->max_header_bytes + 4096;
            if (c->state == ST_BODY && c->req.chunked)
                limit = c->in_len + 65536;
            if (grow_in(c, c->in_len + 4096 > limit ? c->in_len + 1024 : c->in_len + 4096) != 0) {
                conn_fail(c, 500, "out of memory");
                return;
            }
        }
        if (c->in_cap == c->in_len) {
            /* Handling a request with a full buffer of pipelined bytes:
             * stop reading until the response is out. */
            ev_io_stop(loop, &c->rio);
            return;
        }
        size_t room = c->in_cap - c->in_len;
        ssize_t n = recv(c->fd, c->in + c->in_len, room, 0);
        if (n > 0) {
            int was_empty = c->in_len == 0 && c->state == ST_HEAD;
            c->in_len += (size_t)n;
            if (was_empty)
                timer_arm(c, lim->header_timeout_ms);
            if (c->state == ST_HANDLING)
                continue; /* pipelined: parsed after the response */
            if (c->state == ST_BODY && c->req.chunked) {
                body_progress(c);
            } else if (c->state == ST_HEAD && !memchr(c->in + c->in_len - n, '\n', (size_t)n) &&
                       c->in_len < lim->max_header_bytes) {
                /* No new line yet: the head cannot have completed, and
                 * re-scanning it per byte would be quadratic. */
            } else {
                conn_try_parse(c);
            }
            if (c->state == ST_CLOSING)
                return;
            /* A short read drained the socket: skip the recv that would only
             * say EAGAIN (the watcher is level-triggered, so anything that
             * arrives later still wakes us). */
            if ((size_t)n < room || c->state == ST_HANDLING)
                return;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error: the client is gone; abort whatever it asked for. */
        conn_close(c);
        return;
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_conn *c = t->data;
    if (c->state == ST_HEAD && c->in_len == 0) {
        conn_close(c); /* idle keep-alive connection */
        return;
    }
    if (c->state == ST_HEAD || c->state == ST_BODY) {
        conn_fail(c, 408, c->state == ST_HEAD ? "request header timeout" : "request body timeout");
        return;
    }
}

/* ---- accept ----------------------------------------------------------- */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, n, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, n, "[%s]:%d", host, port);
    } else {
        snprintf(out, n, "unix");
    }
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sl_worker *w = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(w->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                sl_log_warn("accept: %s", strerror(errno));
            return;
        }
        if (atomic_load(&open_conns) >= w->cfg->table->server.max_connections) {
            /* Over the limit: a fast, explicit refusal beats a queue. */
            /* Built per refusal (workers share no mutable state); the
             * length is computed, never typed. */
            static const char busy_body[] =
                "{\"error\":{\"type\":\"overloaded_error\",\"message\":\"too many connections\"}}\n";
            char busy[256];
            int busy_len = snprintf(busy, sizeof busy,
                                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                                    "Content-Length: %zu\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                                    sizeof busy_body - 1, busy_body);
            ssize_t ignored = send(fd, busy, (size_t)busy_len, MSG_NOSIGNAL);
            (void)ignored;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        sl_conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        format_peer(&ss, c->peer, sizeof c->peer);
        sl_arena_init(&c->arena, 4096);
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        ev_init(&c->timer, timer_cb);
        c->rio.data = c->wio.data = c->timer.data = c;
        c->next = w->conns;
        if (w->conns)
            w->conns->prev = c;
        w->conns = c;
        w->conn_count++;
        atomic_fetch_add(&open_conns, 1);
        conn_start_request(c);
        ev_io_start(loop, &c->rio);
        timer_arm(c, w->cfg->table->server.header_timeout_ms);
    }
}

/* ---- listen address ----------------------------------------------------- */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon;
    memset(ss, 0, sizeof *ss);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    char *endp;
    long port = strtol(colon + 1, &endp, 10);
    if (*endp || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

static int open_listener(struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "bind/listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- workers and shutdown --------------------------------------------- */

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_worker *w = t->data;
    sl_log_warn("worker %d: drain deadline reached with %u connection(s) open", w->id,
                w->conn_count);
    while (w->conns)
        conn_close(w->conns);
    ev_break(loop, EVBREAK_ONE);
}

/* Stop accepting; idle connections close now, busy ones after their
 * response (after_response sees `stopping`). */
static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sl_worker *w = a->data;
    if (w->stopping)
        return;
    w->stopping = 1;
    ev_io_stop(loop, &w->accept_io);
    close(w->listen_fd);
    w->listen_fd = -1;
    sl_conn *c = w->conns;
    while (c) {
        sl_conn *next = c->next;
        if (c->state == ST_HEAD && c->in_len == 0 && sl_buf_pending(&c->out) == 0)
            conn_close(c);
        c = next;
    }
    if (w->conn_count == 0) {
        ev_break(loop, EVBREAK_ONE);
        return;
    }
    ev_timer_init(&w->drain_timer, drain_timeout_cb, ms(w->cfg->drain_ms), 0.);
    w->drain_timer.data = w;
    ev_timer_start(loop, &w->drain_timer);
}

static void *worker_main(void *arg)
{
    sl_worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}


static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    sl_log_info("signal %d: draining (deadline %u ms)", s->signum, workers[0].cfg->drain_ms);
    for (int i = 0; i < worker_count; i++)
        ev_async_send(workers[i].loop, &workers[i].stop_async);
    ev_signal_stop(loop, s);
}

int sl_server_run(const sl_server_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen(cfg->listen, &ss, &sslen) != 0) {
        snprintf(err, errlen, "cannot parse listen address '%s' (want HOST:PORT or [V6]:PORT)",
                 cfg->listen);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);

    worker_count = cfg->workers < 1 ? 1 : cfg->workers;
    workers = calloc((size_t)worker_count, sizeof *workers);
    if (!workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int i = 0; i < worker_count; i++) {
        sl_worker *w = &workers[i];
        w->id = i;
        w->cfg = cfg;
        w->listen_fd = open_listener(&ss, sslen, err, errlen);
        if (w->listen_fd < 0)
            return -1;
        if (i == 0) {
            /* With port 0 the first bind picks the port; the others share it. */
            getsockname(w->listen_fd, (struct sockaddr *)&ss, &sslen);
        }
        w->loop = i == 0 ? ev_default_loop(EVFLAG_AUTO) : ev_loop_new(EVFLAG_AUTO);
        if (!w->loop) {
            snprintf(err, errlen, "cannot create event loop");
            return -1;
        }
        w->upstream = sl_upstream_new(w->loop);
        if (!w->upstream) {
            snprintf(err, errlen, "cannot create upstream client");
            return -1;
        }
        ev_io_init(&w->accept_io, accept_cb, w->listen_fd, EV_READ);
        w->accept_io.data = w;
        ev_io_start(w->loop, &w->accept_io);
        ev_async_init(&w->stop_async, stop_cb);
        w->stop_async.data = w;
        ev_async_start(w->loop, &w->stop_async);
        sl_proxy_worker_init(w);
    }

    char where[128];
    format_peer(&ss, where, sizeof where);
    sl_log_info("sluice listening on %s (%d worker%s, spec %.12s)", where, worker_count,
                worker_count == 1 ? "" : "s", cfg->table->spec_sha256);
    /* A line tests and scripts can wait for. */
    fprintf(stderr, "sluice listening on %s\n", where);
    fflush(stderr);

    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_start(workers[0].loop, &sigterm);
    ev_signal_start(workers[0].loop, &sigint);

    for (int i = 1; i < worker_count; i++) {
        if (pthread_create(&workers[i].thread, NULL, worker_main, &workers[i]) != 0) {
            snprintf(err, errlen, "cannot start worker thread");
            return -1;
        }
    }
    ev_run(workers[0].loop, 0);
    for (int i = 1; i < worker_count; i++)
        pthread_join(workers[i].thread, NULL);

    for (int i = 0; i < worker_count; i++) {
        sl_worker *w = &workers[i];
        if (w->proxy_state_free)
            w->proxy_state_free(w->proxy_state);
        sl_upstream_free(w->upstream);
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        if (i != 0)
            ev_loop_destroy(w->loop);
    }
    ev_loop_destroy(workers[0].loop);
    free(workers);
    workers = NULL;
    sl_log_info("sluice stopped");
    return 0;
}
