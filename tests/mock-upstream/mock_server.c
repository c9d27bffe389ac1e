/* The mock upstream's HTTP/1.1 server: one libev loop, non-blocking
 * sockets, keep-alive and pipelining, Content-Length and chunked request
 * bodies, `Expect: 100-continue`. A parsed request goes to mu_api_handle(),
 * which returns a reply plan; this file plays the plan back with timers so
 * that delays, slow streams, truncation and stalls happen on the wire
 * exactly as planned. It notes in the call log when the client goes away
 * before a plan finished, which is how tests observe that a gateway
 * cancelled an upstream request. The parser is strict rather than lenient:
 * a gateway that sends malformed HTTP should fail its tests here. */
#define _GNU_SOURCE
#include "mock_upstream.h"

#include <ev.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MU_HEAD_MAX (64u * 1024u)
#define MU_BODY_MAX (64u * 1024u * 1024u)

/* ---- buffers ---------------------------------------------------------- */

static void buf_consume(mu_buf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
    } else {
        memmove(b->p, b->p + n, b->len - n);
        b->len -= n;
    }
    if (b->p)
        b->p[b->len] = '\0';
}

/* ---- connections ------------------------------------------------------ */

enum conn_state { ST_HEAD, ST_BODY, ST_RESPOND, ST_STALL };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

typedef struct conn {
    struct conn *prev, *next;
    mu_server *srv;
    int fd;
    ev_io rw, ww;
    ev_timer timer;
    enum conn_state state;
    mu_buf in, out;
    size_t out_off;

    /* the request being read */
    char *method, *target;
    json_t *headers;
    size_t head_len;
    int chunked;
    size_t content_length;
    int close_after;
    int sent_continue;
    enum chunk_state ch;
    size_t cpos, ch_left;
    mu_buf body;

    /* the reply being played */
    mu_reply reply;
    size_t step;
    int delay_done;
} conn;

struct mu_server {
    struct ev_loop *loop;
    int fd;
    ev_io accept_w;
    conn *conns;
};

static void conn_free(conn *c)
{
    mu_server *s = c->srv;
    ev_io_stop(s->loop, &c->rw);
    ev_io_stop(s->loop, &c->ww);
    ev_timer_stop(s->loop, &c->timer);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    close(c->fd);
    mu_buf_free(&c->in);
    mu_buf_free(&c->out);
    mu_buf_free(&c->body);
    free(c->method);
    free(c->target);
    json_decref(c->headers);
    mu_reply_free(&c->reply);
    free(c);
}

/* The peer went away (or a write failed) before the reply finished: record
 * it for the tests, then drop the connection. */
static void conn_lost(conn *c)
{
    if ((c->state == ST_RESPOND || c->state == ST_STALL) && c->reply.call)
        json_object_set_new(c->reply.call, "closed_early", json_true());
    conn_free(c);
}

static void request_reset(conn *c)
{
    free(c->method);
    free(c->target);
    json_decref(c->headers);
    c->method = c->target = NULL;
    c->headers = NULL;
    c->head_len = c->content_length = c->cpos = c->ch_left = 0;
    c->chunked = c->sent_continue = 0;
    c->ch = CH_SIZE;
    c->body.len = 0;
}

/* Returns 1 when everything is written, 0 when waiting for the socket,
 * -1 when the connection is gone (c is freed). */
static int conn_flush(conn *c)
{
    while (c->out_off < c->out.len) {
        ssize_t n = send(c->fd, c->out.p + c->out_off, c->out.len - c->out_off,
                         MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->srv->loop, &c->ww);
            return 0;
        } else {
            conn_lost(c);
            return -1;
        }
    }
    c->out.len = c->out_off = 0;
    ev_io_stop(c->srv->loop, &c->ww);
    return 1;
}

static void process_input(conn *c);

static void plan_finished(conn *c)
{
    mu_reply *r = &c->reply;
    if (r->call && r->end == MU_END_DONE)
        json_object_set_new(r->call, "completed", json_true());
    switch (r->end) {
    case MU_END_STALL:
        c->state = ST_STALL; /* wait for the peer to give up */
        return;
    case MU_END_RESET: {
        struct linger lg = {1, 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        conn_free(c);
        return;
    }
    case MU_END_CUT:
        conn_free(c);
        return;
    case MU_END_DONE:
        break;
    }
    int close_now = r->close || c->close_after;
    mu_reply_free(r);
    c->step = 0;
    c->delay_done = 0;
    if (close_now) {
        conn_free(c);
        return;
    }
    c->state = ST_HEAD;
    process_input(c); /* a pipelined request may already be buffered */
}

static void plan_run(conn *c)
{
    mu_reply *r = &c->reply;
    while (c->step < r->n) {
        mu_step *s = &r->steps[c->step];
        if (s->delay_ms && !c->delay_done) {
            ev_timer_set(&c->timer, s->delay_ms / 1000.0, 0.);
            ev_timer_start(c->srv->loop, &c->timer);
            return;
        }
        c->delay_done = 0;
        c->step++;
        if (s->len == 0)
            continue;
        mu_buf_add(&c->out, s->data, s->len);
        /* One write per step, so that events planned apart leave apart. */
        int rc = conn_flush(c);
        if (rc <= 0)
            return; /* gone, or on_write resumes the plan */
    }
    plan_finished(c);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    conn *c = w->data;
    c->delay_done = 1;
    plan_run(c);
}

static void on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = w->data;
    if (conn_flush(c) == 1 && c->state == ST_RESPOND && !ev_is_active(&c->timer))
        plan_run(c);
}

/* A reply for a request the parser rejected; the connection closes after. */
static void reject(conn *c, int status, const char *message)
{
    json_t *j = json_pack("{s:{s:s,s:s}}", "error", "message", message, "type",
                          "invalid_request_error");
    char *body = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    mu_reply_free(&c->reply);
    c->reply.close = 1;
    mu_reply_head(&c->reply, 0, status, "application/json", (long)strlen(body), NULL);
    mu_reply_data(&c->reply, 0, body, strlen(body));
    free(body);
    c->reply.end = MU_END_DONE;
    c->state = ST_RESPOND;
    c->step = 0;
    c->in.len = 0; /* whatever follows is not trusted */
    plan_run(c);
}

static int is_tchar(int ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
           (ch >= '0' && ch <= '9') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

/* Parses the request line and headers in c->in[0..head_len). Returns 0, or
 * an HTTP status to reject with (message in *why). */
static int parse_head(conn *c, const char **why)
{
    char *p = c->in.p, *end = c->in.p + c->head_len - 2; /* keep last CRLF */
    char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (!eol) {
        *why = "bad request line";
        return 400;
    }
    char *sp1 = memchr(p, ' ', (size_t)(eol - p));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(eol - sp1 - 1)) : NULL;
    if (!sp1 || !sp2 || sp1 == p || sp2 == sp1 + 1) {
        *why = "bad request line";
        return 400;
    }
    for (char *q = p; q < sp1; q++)
        if (!is_tchar((unsigned char)*q)) {
            *why = "bad method";
            return 400;
        }
    size_t vlen = (size_t)(eol - sp2 - 1);
    int http10;
    if (vlen == 8 && !memcmp(sp2 + 1, "HTTP/1.1", 8)) {
        http10 = 0;
    } else if (vlen == 8 && !memcmp(sp2 + 1, "HTTP/1.0", 8)) {
        http10 = 1;
    } else {
        *why = "unsupported HTTP version";
        return 400;
    }
    c->method = strndup(p, (size_t)(sp1 - p));
    c->target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (c->target[0] != '/') {
        *why = "request target must be an absolute path";
        return 400;
    }
    c->headers = json_object();
    int have_cl = 0, have_te = 0, keep_alive = 0, close = 0;
    for (p = eol + 2; p < end; p = eol + 2) {
        eol = memmem(p, (size_t)(end + 2 - p), "\r\n", 2);
        char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) {
            *why = "bad header line";
            return 400;
        }
        for (char *q = p; q < colon; q++) {
            if (!is_tchar((unsigned char)*q)) {
                *why = "bad header name"; /* also catches obs-fold */
                return 400;
            }
            *q = (char)((*q >= 'A' && *q <= 'Z') ? *q + 32 : *q);
        }
        char *v = colon + 1, *ve = eol;
        while (v < ve && (*v == ' ' || *v == '\t'))
            v++;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        char *name = strndup(p, (size_t)(colon - p));
        char *value = strndup(v, (size_t)(ve - v));
        json_t *old = json_object_get(c->headers, name);
        if (old) { /* repeated fields fold into one list, as RFC 9110 allows */
            mu_buf j = {0};
            mu_buf_printf(&j, "%s, %s", json_string_value(old), value);
            json_object_set_new(c->headers, name, json_string(j.p));
            mu_buf_free(&j);
        } else {
            json_object_set_new(c->headers, name, json_string(value));
        }
        if (!strcmp(name, "content-length")) {
            char *e;
            errno = 0;
            unsigned long long n = strtoull(value, &e, 10);
            if (have_cl || !*value || *e || errno || value[0] == '-' || value[0] == '+') {
                free(name);
                free(value);
                *why = "bad content-length";
                return 400;
            }
            if (n > MU_BODY_MAX) {
                free(name);
                free(value);
                *why = "body too large";
                return 413;
            }
            c->content_length = (size_t)n;
            have_cl = 1;
        } else if (!strcmp(name, "transfer-encoding")) {
            size_t n = strlen(value);
            if (n < 7 || strcasecmp(value + n - 7, "chunked")) {
                free(name);
                free(value);
                *why = "unsupported transfer-encoding";
                return 501;
            }
            have_te = 1;
        } else if (!strcmp(name, "connection")) {
            if (strcasestr(value, "close"))
                close = 1;
            if (strcasestr(value, "keep-alive"))
                keep_alive = 1;
        }
        free(name);
        free(value);
    }
    if (have_cl && have_te) {
        *why = "both content-length and transfer-encoding";
        return 400;
    }
    c->chunked = have_te;
    c->close_after = close || (http10 && !keep_alive);
    return 0;
}

/* Decodes as much of a chunked body as is buffered. Returns 1 when the
 * body is complete (c->cpos is then the end of the request), 0 for more,
 * or an HTTP status to reject with. */
static int decode_chunked(conn *c, const char **why)
{
    for (;;) {
        char *p = c->in.p + c->cpos;
        size_t avail = c->in.len - c->cpos;
        char *eol;
        switch (c->ch) {
        case CH_SIZE: {
            eol = memmem(p, avail, "\r\n", 2);
            if (!eol) {
                if (avail > 1024) {
                    *why = "chunk size line too long";
                    return 400;
                }
                return 0;
            }
            char *e;
            errno = 0;
            unsigned long long n = strtoull(p, &e, 16);
            if (e == p || errno || (e < eol && *e != ';' && *e != ' ' && *e != '\t')) {
                *why = "bad chunk size";
                return 400;
            }
            if (n > MU_BODY_MAX || c->body.len + n > MU_BODY_MAX) {
                *why = "body too large";
                return 413;
            }
            c->cpos += (size_t)(eol + 2 - p);
            c->ch_left = (size_t)n;
            c->ch = n ? CH_DATA : CH_TRAILER;
            break;
        }
        case CH_DATA: {
            size_t take = avail < c->ch_left ? avail : c->ch_left;
            mu_buf_add(&c->body, p, take);
            c->cpos += take;
            c->ch_left -= take;
            if (c->ch_left)
                return 0;
            c->ch = CH_DATA_END;
            break;
        }
        case CH_DATA_END:
            if (avail < 2)
                return 0;
            if (p[0] != '\r' || p[1] != '\n') {
                *why = "chunk not followed by CRLF";
                return 400;
            }
            c->cpos += 2;
            c->ch = CH_SIZE;
            break;
        case CH_TRAILER:
            eol = memmem(p, avail, "\r\n", 2);
            if (!eol)
                return 0;
            c->cpos += (size_t)(eol + 2 - p);
            if (eol == p)
                return 1; /* the empty line ends the trailer section */
            break;
        }
    }
}

static void dispatch(conn *c, size_t consumed)
{
    mu_request rq = {
        .method = c->method,
        .target = c->target,
        .headers = c->headers,
        .body = c->body.p ? c->body.p : "",
        .body_len = c->body.len,
    };
    mu_reply_free(&c->reply);
    c->reply.close = c->close_after;
    mu_api_handle(&rq, &c->reply);
    buf_consume(&c->in, consumed);
    request_reset(c);
    c->state = ST_RESPOND;
    c->step = 0;
    c->delay_done = 0;
    plan_run(c);
}

static void process_input(conn *c)
{
    const char *why = NULL;
    int rc;
    if (c->state == ST_HEAD) {
        char *e = c->in.len ? memmem(c->in.p, c->in.len, "\r\n\r\n", 4) : NULL;
        if (!e) {
            if (c->in.len > MU_HEAD_MAX)
                reject(c, 431, "request header section too large");
            return;
        }
        c->head_len = (size_t)(e + 4 - c->in.p);
        if (c->head_len > MU_HEAD_MAX) {
            reject(c, 431, "request header section too large");
            return;
        }
        if ((rc = parse_head(c, &why))) {
            reject(c, rc, why);
            return;
        }
        c->state = ST_BODY;
        c->cpos = c->head_len;
        c->ch = CH_SIZE;
        json_t *exp = json_object_get(c->headers, "expect");
        if (exp && !strcasecmp(json_string_value(exp), "100-continue")) {
            size_t have = c->in.len - c->head_len;
            if (c->chunked || have < c->content_length) {
                mu_buf_str(&c->out, "HTTP/1.1 100 Continue\r\n\r\n");
                c->sent_continue = 1;
                if (conn_flush(c) < 0)
                    return;
            }
        }
    }
    if (c->state != ST_BODY)
        return;
    if (c->chunked) {
        rc = decode_chunked(c, &why);
        if (rc == 0)
            return;
        if (rc != 1) {
            reject(c, rc, why);
            return;
        }
        dispatch(c, c->cpos);
    } else {
        if (c->in.len - c->head_len < c->content_length)
            return;
        c->body.len = 0;
        mu_buf_add(&c->body, c->in.p + c->head_len, c->content_length);
        dispatch(c, c->head_len + c->content_length);
    }
}

static void on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    conn *c = w->data;
    char buf[65536];
    ssize_t n = recv(c->fd, buf, sizeof buf, 0);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (n <= 0) {
        conn_lost(c);
        return;
    }
    if (c->in.len + (size_t)n > MU_BODY_MAX + MU_HEAD_MAX + 65536) {
        conn_free(c); /* a peer flooding us mid-reply */
        return;
    }
    mu_buf_add(&c->in, buf, (size_t)n);
    if (c->state == ST_HEAD || c->state == ST_BODY)
        process_input(c);
}

static void on_accept(struct ev_loop *loop, ev_io *w, int revents)
{
    mu_server *s = w->data;
    for (;;) {
        int fd = accept4(s->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of descriptors: try on the next event */
        }
        int one = 1;
        /* Streamed events must leave at once, not wait for Nagle. */
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c)
            abort();
        c->srv = s;
        c->fd = fd;
        ev_io_init(&c->rw, on_read, fd, EV_READ);
        ev_io_init(&c->ww, on_write, fd, EV_WRITE);
        ev_timer_init(&c->timer, on_timer, 0., 0.);
        c->rw.data = c->ww.data = c->timer.data = c;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        ev_io_start(loop, &c->rw);
    }
}

/* listen_addr is HOST:PORT or [V6]:PORT; port 0 picks a free one, and the
 * address actually bound is written to `bound`. */
mu_server *mu_server_start(struct ev_loop *loop, const char *listen_addr,
                           char *bound, size_t bound_len, char *err, size_t errlen)
{
    char host[256];
    const char *colon = strrchr(listen_addr, ':');
    if (!colon || colon == listen_addr || !colon[1]) {
        snprintf(err, errlen, "--listen wants HOST:PORT, got '%s'", listen_addr);
        return NULL;
    }
    size_t hl = (size_t)(colon - listen_addr);
    const char *h = listen_addr;
    if (h[0] == '[' && hl >= 2 && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    if (hl >= sizeof host) {
        snprintf(err, errlen, "host too long");
        return NULL;
    }
    memcpy(host, h, hl);
    host[hl] = '\0';

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(host, colon + 1, &hints, &ai);
    if (gai) {
        snprintf(err, errlen, "%s: %s", listen_addr, gai_strerror(gai));
        return NULL;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, 1024) < 0) {
        snprintf(err, errlen, "%s: %s", listen_addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return NULL;
    }
    freeaddrinfo(ai);

    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *in = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof ip);
        port = ntohs(in->sin_port);
        snprintf(bound, bound_len, "%s:%d", ip, port);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof ip);
        port = ntohs(in6->sin6_port);
        snprintf(bound, bound_len, "[%s]:%d", ip, port);
    }

    mu_server *s = calloc(1, sizeof *s);
    if (!s)
        abort();
    s->loop = loop;
    s->fd = fd;
    ev_io_init(&s->accept_w, on_accept, fd, EV_READ);
    s->accept_w.data = s;
    ev_io_start(loop, &s->accept_w);
    return s;
}

void mu_server_stop(mu_server *s)
{
    if (!s)
        return;
    while (s->conns)
        conn_free(s->conns);
    ev_io_stop(s->loop, &s->accept_w);
    close(s->fd);
    free(s);
}
