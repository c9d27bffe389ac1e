/* bench-loadgen's HTTP/1.1 response parser: the status line and the
 * framing headers, Content-Length, chunked and read-until-close bodies, and
 * for SSE bodies the time to the first byte and the count of events
 * (blank-line terminated) as they arrive. */
#define _GNU_SOURCE /* memmem */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen.h"

/* ---- response parsing --------------------------------------------------- */

static void body_bytes(conn *c, const char *p, size_t n)
{
    if (!n)
        return;
    if (!c->got_body) {
        c->got_body = 1;
        hist_add(&h_ttfb, (mono() - c->intended) * 1e6);
    }
    for (size_t i = 0; i < n; i++) {
        char ch = p[i];
        if (ch == '\r')
            continue;
        if (ch == '\n') {
            if (c->prev_nl) {
                c->events++;
                c->prev_nl = 0;
                continue;
            }
            c->prev_nl = 1;
        } else {
            c->prev_nl = 0;
        }
    }
}

static int parse_head(conn *c)
{
    /* status line */
    char *h = c->head;
    if (c->head_len < 12 || strncmp(h, "HTTP/1.", 7) != 0)
        return -1;
    c->status = atoi(h + 9);
    if (h[7] == '0')
        c->close_after = 1;
    int has_len = 0;
    char *end = h + c->head_len;
    char *l = memmem(h, c->head_len, "\r\n", 2) + 2;
    while (l < end - 2) {
        char *e = memmem(l, (size_t)(end - l), "\r\n", 2);
        if (!e)
            break;
        size_t len = (size_t)(e - l);
        char *colon = memchr(l, ':', len);
        if (colon) {
            size_t nl = (size_t)(colon - l);
            char *v = colon + 1;
            while (v < e && *v == ' ')
                v++;
            size_t vl = (size_t)(e - v);
            if (nl == 14 && strncasecmp(l, "content-length", 14) == 0) {
                c->remaining = strtoull(v, NULL, 10);
                has_len = 1;
            } else if (nl == 17 && strncasecmp(l, "transfer-encoding", 17) == 0) {
                if (vl >= 7 && strncasecmp(e - 7, "chunked", 7) == 0)
                    c->chunked = 1;
            } else if (nl == 10 && strncasecmp(l, "connection", 10) == 0) {
                if (vl >= 5 && strncasecmp(v, "close", 5) == 0)
                    c->close_after = 1;
            }
        }
        l = e + 2;
    }
    if (c->chunked)
        c->phase = P_CHUNK_SIZE;
    else if (has_len)
        c->phase = c->remaining ? P_BODY_LEN : P_DONE;
    else if (c->status == 204 || c->status == 304)
        c->phase = P_DONE;
    else {
        c->phase = P_BODY_EOF;
        c->close_after = 1;
    }
    return 0;
}

/* Feeds received bytes through the response state machine (loadgen.h). */
int feed(conn *c, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        switch (c->phase) {
        case P_HEAD: {
            /* copy until the blank line; the head is small */
            while (i < n) {
                if (c->head_len >= sizeof c->head - 1)
                    return -1;
                c->head[c->head_len++] = p[i++];
                if (c->head_len >= 4 && memcmp(c->head + c->head_len - 4, "\r\n\r\n", 4) == 0) {
                    c->head[c->head_len] = 0;
                    if (parse_head(c) != 0)
                        return -1;
                    break;
                }
            }
            break;
        }
        case P_BODY_LEN: {
            size_t take = n - i < c->remaining ? n - i : (size_t)c->remaining;
            body_bytes(c, p + i, take);
            i += take;
            c->remaining -= take;
            if (!c->remaining)
                c->phase = P_DONE;
            break;
        }
        case P_BODY_EOF:
            body_bytes(c, p + i, n - i);
            i = n;
            break;
        case P_CHUNK_SIZE: {
            char ch = p[i++];
            if (ch == '\n') {
                if (c->chunk_size_digits == 0)
                    return -1;
                c->chunk_size_digits = 0;
                c->in_ext = 0;
                c->trailer_line_len = 0;
                c->phase = c->remaining ? P_CHUNK_DATA : P_TRAILER;
            } else if (!c->in_ext) {
                int d = ch >= '0' && ch <= '9' ? ch - '0'
                        : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                        : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
                if (d >= 0) {
                    if (++c->chunk_size_digits > 15)
                        return -1;
                    c->remaining = c->remaining * 16 + (uint64_t)d;
                } else if (ch == ';' || ch == '\r' || ch == ' ' || ch == '\t') {
                    c->in_ext = 1; /* CR, or an extension we ignore, up to LF */
                } else {
                    return -1;
                }
            }
            break;
        }
        case P_CHUNK_DATA: {
            size_t take = n - i < c->remaining ? n - i : (size_t)c->remaining;
            body_bytes(c, p + i, take);
            i += take;
            c->remaining -= take;
            if (!c->remaining)
                c->phase = P_CHUNK_CRLF;
            break;
        }
        case P_CHUNK_CRLF:
            if (p[i++] == '\n')
                c->phase = P_CHUNK_SIZE;
            break;
        case P_TRAILER:
            if (p[i] == '\n') {
                if (c->trailer_line_len == 0)
                    c->phase = P_DONE;
                c->trailer_line_len = 0;
            } else if (p[i] != '\r') {
                c->trailer_line_len++;
            }
            i++;
            break;
        case P_DONE:
            return -1; /* bytes after a complete response we did not ask for */
        }
        if (c->phase == P_DONE && i == n)
            return 1;
    }
    return c->phase == P_DONE ? 1 : 0;
}
