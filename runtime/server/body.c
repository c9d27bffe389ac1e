/*
 * Request bodies, read before anyone has looked at them, so everything here
 * is about what a client can make the server hold for free. A body's buffer
 * grows as its bytes arrive (a Content-Length claim alone buys nothing),
 * every byte of it is charged to the process-wide memory budget (a request
 * that does not fit gets 503 and may retry, instead of the process running
 * out), and the bytes must keep a minimum average rate (a trickle cannot
 * hold a buffer and a connection slot for minutes).
 */
#include <stdlib.h>
#include <string.h>

#include "core/membudget.h"
#include "server/server_internal.h"

/* Bodies up to this size get their whole buffer at once; larger ones start
 * here and double as bytes arrive. */
#define SL_BODY_FIRST (64 * 1024)

/* After a grace of body_timeout from the end of the head, a body must have
 * averaged at least this many bytes per second. 32 KiB/s is a quarter of a
 * 1 Mbit/s uplink: a 10 MiB body has over five minutes, while a client
 * dribbling a byte at a time is cut at the end of the grace. */
#define SL_BODY_MIN_RATE (32 * 1024)

static void refuse_busy(sl_conn *c)
{
    sl_srv_conn_fail(c, 503, "too many request bodies in flight, retry shortly");
}

/* Makes room for `need` body bytes, at most `limit` (doubling in between),
 * charging the growth to the budget before allocating it. */
static int body_grow(sl_conn *c, size_t need, size_t limit)
{
    if (c->body_cap >= need)
        return 0;
    size_t cap = c->body_cap ? c->body_cap * 2 : SL_BODY_FIRST;
    if (cap < need)
        cap = need;
    if (cap > limit)
        cap = limit > need ? limit : need;
    size_t extra = cap - c->body_cap;
    if (sl_membudget_reserve(extra) != 0)
        return -1;
    char *p = realloc(c->body, cap);
    if (!p) {
        sl_membudget_release(extra);
        return -1;
    }
    c->body = p;
    c->body_cap = cap;
    return 0;
}

void sl_srv_body_free(sl_conn *c)
{
    if (c->body_cap)
        sl_membudget_release(c->body_cap);
    free(c->body);
    c->body = NULL;
    c->body_len = c->body_cap = 0;
}

/* Chunk framing is not counted: only body bytes earn time. */
static size_t body_received(const sl_conn *c)
{
    return c->body_len + (c->req.chunked ? c->in_len - c->body_raw_end : 0);
}

/* Bodies must keep moving (body_timeout between reads) and, once
 * body_timeout has passed since the head, have averaged SL_BODY_MIN_RATE:
 * received >= rate * (elapsed - grace). Arms the timer for whichever comes
 * first; returns 0 when the body is already behind. */
static int arm_body_timer(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    double grace = (double)lim->body_timeout_ms / 1000.0;
    double behind_at = c->body_start + grace + (double)body_received(c) / SL_BODY_MIN_RATE;
    double left = behind_at - ev_now(c->w->loop);
    if (left <= 0)
        return 0;
    ev_timer_stop(c->w->loop, &c->timer);
    ev_timer_set(&c->timer, left < grace ? left : grace, 0.);
    ev_timer_start(c->w->loop, &c->timer);
    return 1;
}

void sl_srv_body_begin(sl_conn *c)
{
    c->state = SL_ST_BODY;
    c->body_start = ev_now(c->w->loop);
    c->body_raw_end = c->req.head_len;
    size_t early = c->in_len - c->req.head_len; /* arrived with the head */
    if (!c->req.chunked && c->req.content_length <= 0) {
        sl_srv_dispatch(c, "", 0);
        return;
    }
    if (c->req.chunked) {
        sl_chunked_init(&c->chunked);
    } else {
        /* Move the body bytes that came with the head out of the input
         * buffer; what follows them is the next (pipelined) request. */
        size_t cl = (size_t)c->req.content_length;
        size_t take = early < cl ? early : cl;
        size_t first = cl < SL_BODY_FIRST ? cl : SL_BODY_FIRST;
        if (body_grow(c, first > take ? first : take, cl) != 0) {
            refuse_busy(c);
            return;
        }
        memcpy(c->body, c->in + c->req.head_len, take);
        c->body_len = take;
        memmove(c->in + c->req.head_len, c->in + c->req.head_len + take, early - take);
        c->in_len -= take;
    }
    /* Only a client still waiting for it needs the interim response. */
    if (c->req.expect_continue && early == 0 && c->req.version_minor >= 1) {
        if (sl_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25) == 0)
            sl_srv_flush(c, 0);
    }
    sl_srv_body_progress(c);
}

int sl_srv_body_room(sl_conn *c, char **dst, size_t *room)
{
    size_t cl = (size_t)c->req.content_length;
    if (body_grow(c, c->body_len + 1, cl) != 0) {
        refuse_busy(c);
        return -1;
    }
    *dst = c->body + c->body_len;
    *room = c->body_cap - c->body_len; /* body_cap <= cl: never reads past the body */
    return 0;
}

static void chunked_progress(sl_conn *c)
{
    const sl_server_limits *lim = &c->w->cfg->table->server;
    size_t pos = c->body_raw_end;
    while (pos < c->in_len) {
        size_t consumed = 0, produced = 0;
        size_t room = c->in_len - pos;
        /* Decoded bytes never outnumber raw ones; max_body is checked
         * after each step, so the buffer stays within max_body + room. */
        if (body_grow(c, c->body_len + room, (size_t)lim->max_body_bytes + room) != 0) {
            refuse_busy(c);
            return;
        }
        int rc = sl_chunked_decode(&c->chunked, c->in + pos, room, &consumed,
                                   c->body + c->body_len, &produced);
        pos += consumed;
        c->body_len += produced;
        if (c->body_len > lim->max_body_bytes) {
            sl_srv_conn_fail(c, 413, "request body too large");
            return;
        }
        if (rc == SL_CHUNKED_ERROR) {
            sl_srv_conn_fail(c, 400, "malformed chunked body");
            return;
        }
        if (rc == SL_CHUNKED_DONE) {
            c->body_raw_end = pos;
            sl_srv_dispatch(c, c->body_len ? c->body : "", c->body_len);
            return;
        }
        if (consumed == 0)
            break;
    }
    /* Drop the raw chunk framing already decoded so a body of tiny chunks
     * cannot grow the input buffer. The head stays in place, so c->req's
     * pointers stay valid. */
    size_t head = c->req.head_len;
    if (pos > head) {
        memmove(c->in + head, c->in + pos, c->in_len - pos);
        c->in_len -= pos - head;
        pos = head;
    }
    c->body_raw_end = pos;
    if (!arm_body_timer(c))
        sl_srv_conn_fail(c, 408, "request body too slow");
}

void sl_srv_body_progress(sl_conn *c)
{
    if (c->req.chunked) {
        chunked_progress(c);
        return;
    }
    if (c->body_len < (size_t)c->req.content_length) {
        if (!arm_body_timer(c))
            sl_srv_conn_fail(c, 408, "request body too slow");
        return;
    }
    sl_srv_dispatch(c, c->body, c->body_len);
}
