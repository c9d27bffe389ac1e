/*
 * The output side of a connection: response heads, whole and streamed
 * bodies, and the send queue. Handlers call in here from anywhere in their
 * own callbacks, so nothing here closes the connection or starts the next
 * request synchronously; those steps go back to the loop through the write
 * watcher, where no handler frame is on the stack.
 */
#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "server/server_internal.h"

size_t sl_conn_out_pending(const sl_conn *c) { return sl_buf_pending(&c->out); }

void sl_srv_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sl_conn *c = w->data;
    if (c->broken) {
        sl_srv_conn_close(c);
        return;
    }
    sl_srv_flush(c, 1);
}

/* Sends what is queued. Called from the loop (from_loop = 1) it may close
 * the connection on a hard error or move on to the next request. Called
 * from a handler's side (respond, stream writes) it never does either
 * synchronously: the handler may still be unwinding its own callbacks, so
 * those steps are fed back to the loop through the write watcher. */
void sl_srv_flush(sl_conn *c, int from_loop)
{
    while (sl_buf_pending(&c->out) > 0) {
        ssize_t n = sl_srv_send(c, c->out.data + c->out.off, sl_buf_pending(&c->out));
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
            sl_srv_conn_close(c);
        } else {
            c->broken = 1;
            ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        }
        return;
    }
    /* TLS may still hold sealed records (the handshake's, or the end of
     * this response): they are output too. */
    int held = sl_srv_send_records(c);
    if (held > 0) {
        if (!ev_is_active(&c->wio))
            ev_io_start(c->w->loop, &c->wio);
        return;
    }
    if (held < 0) {
        if (from_loop) {
            sl_srv_conn_close(c);
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
            sl_srv_after_response(c);
        else
            ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
        return;
    }
    if (c->exchange && c->hooks && c->hooks->drained)
        c->hooks->drained(c->exchange);
}

static void fail_later(sl_conn *c)
{
    c->broken = 1;
    ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
}

/* Stream bytes go out once the callbacks of this loop iteration are done,
 * through the write watcher (fed, so it runs even while not watching the
 * socket): libcurl hands over each HTTP chunk of an upstream read on its
 * own, and a read that carries several events then costs one send, not
 * one per event. A failed send closes the connection from the loop. */
static void flush_soon(sl_conn *c)
{
    ev_feed_event(c->w->loop, &c->wio, EV_WRITE);
}

static int append_str(sl_buf *o, const char *s) { return sl_buf_append(o, s, strlen(s)); }

static int append_dec(sl_buf *o, unsigned long long v)
{
    char d[24];
    size_t i = sizeof d;
    do {
        d[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return sl_buf_append(o, d + i, sizeof d - i);
}

static int append_hex_line(sl_buf *o, size_t v)
{
    char d[24];
    size_t i = sizeof d;
    d[--i] = '\n';
    d[--i] = '\r';
    do {
        d[--i] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    return sl_buf_append(o, d + i, sizeof d - i);
}

/* Appends rather than formats: the head goes out with every response, and
 * printf-style formatting was a visible share of a request's CPU. */
static int queue_head(sl_conn *c, int status, const char *ctype, const char *headers,
                      long long content_length, int chunked)
{
    sl_buf *o = &c->out;
    size_t mark = o->len; /* on failure nothing of this head stays queued */
    int rc = append_str(o, c->req.version_minor == 0 ? "HTTP/1.0 " : "HTTP/1.1 ");
    rc |= append_dec(o, status < 0 ? 0u : (unsigned)status);
    rc |= sl_buf_append(o, " ", 1);
    rc |= append_str(o, sl_http_reason(status));
    rc |= sl_buf_append(o, "\r\n", 2);
    if (ctype) {
        rc |= sl_buf_append(o, "Content-Type: ", 14);
        rc |= append_str(o, ctype);
        rc |= sl_buf_append(o, "\r\n", 2);
    }
    if (content_length >= 0) {
        rc |= sl_buf_append(o, "Content-Length: ", 16);
        rc |= append_dec(o, (unsigned long long)content_length);
        rc |= sl_buf_append(o, "\r\n", 2);
    }
    if (chunked)
        rc |= sl_buf_append(o, "Transfer-Encoding: chunked\r\n", 28);
    if (headers)
        rc |= sl_buf_append(o, headers, strlen(headers));
    /* Every answer names its request, errors before the head was read too. */
    if (!c->request_id[0])
        sl_reqid_new(c->request_id);
    rc |= sl_buf_append(o, "x-request-id: ", 14);
    rc |= append_str(o, c->request_id);
    rc |= sl_buf_append(o, "\r\n", 2);
    if (!c->keep_alive || c->w->stopping) {
        rc |= sl_buf_append(o, "Connection: close\r\n\r\n", 21);
        c->close_sent = 1;
    }
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
        fail_later(c);
        return;
    }
    c->response_done = 1;
    sl_srv_flush(c, 0);
}

int sl_conn_stream_begin(sl_conn *c, int status, const char *ctype, const char *headers)
{
    /* HTTP/1.0 has no chunked encoding: delimit the body by closing. */
    c->streaming = 1;
    c->stream_chunked = c->req.version_minor >= 1;
    if (!c->stream_chunked)
        c->keep_alive = 0;
    if (queue_head(c, status, ctype, headers, -1, c->stream_chunked) != 0) {
        fail_later(c);
        return -1;
    }
    flush_soon(c); /* with the first event, in one send */
    return 0;
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
        rc |= append_hex_line(&c->out, len); /* the chunk size, once per event */
        rc |= sl_buf_append(&c->out, data, len);
        rc |= sl_buf_append(&c->out, "\r\n", 2);
    } else {
        rc |= sl_buf_append(&c->out, data, len);
    }
    if (rc) {
        /* A half-queued chunk would corrupt the framing: drop it and give
         * up on this connection. */
        c->out.len = mark;
        fail_later(c);
        return -1;
    }
    flush_soon(c);
    return 0;
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
    sl_srv_flush(c, 0);
}
