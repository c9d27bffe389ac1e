/* The mock upstream's byte buffers and reply plans (mock_upstream.h): how
 * the provider logic (mock_api.c) builds a response as timed writes --
 * status line and headers, body pieces framed as chunks when the reply is
 * chunked, the final chunk -- for the HTTP server (mock_server.c) to play
 * back. Nothing here touches a socket or a timer. */
#define _GNU_SOURCE
#include "mock_upstream.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- buffers ---------------------------------------------------------- */

void mu_buf_add(mu_buf *b, const void *data, size_t len)
{
    if (b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + len + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "mock-upstream: out of memory\n");
            abort();
        }
        b->p = p;
        b->cap = cap;
    }
    if (len)
        memcpy(b->p + b->len, data, len);
    b->len += len;
    b->p[b->len] = '\0'; /* callers may treat the buffer as a C string */
}

void mu_buf_str(mu_buf *b, const char *s) { mu_buf_add(b, s, strlen(s)); }

void mu_buf_printf(mu_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    char *tmp = malloc((size_t)n + 1);
    if (!tmp)
        abort();
    va_start(ap, fmt);
    vsnprintf(tmp, (size_t)n + 1, fmt, ap);
    va_end(ap);
    mu_buf_add(b, tmp, (size_t)n);
    free(tmp);
}

void mu_buf_free(mu_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- reply plans ------------------------------------------------------ */

static void reply_push(mu_reply *r, unsigned delay_ms, char *data, size_t len)
{
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 8;
        mu_step *s = realloc(r->steps, cap * sizeof *s);
        if (!s)
            abort();
        r->steps = s;
        r->cap = cap;
    }
    r->steps[r->n++] = (mu_step){delay_ms, data, len};
}

static const char *status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return "Status";
    }
}

/* content_length < 0 selects chunked framing for the body steps. */
void mu_reply_head(mu_reply *r, unsigned delay_ms, int status,
                   const char *content_type, long content_length,
                   const char *extra_headers)
{
    mu_buf b = {0};
    mu_buf_printf(&b, "HTTP/1.1 %d %s\r\nServer: mock-upstream\r\n", status,
                  status_text(status));
    if (content_type)
        mu_buf_printf(&b, "Content-Type: %s\r\n", content_type);
    if (content_length >= 0) {
        mu_buf_printf(&b, "Content-Length: %ld\r\n", content_length);
        r->chunked = 0;
    } else {
        mu_buf_str(&b, "Transfer-Encoding: chunked\r\n");
        r->chunked = 1;
    }
    if (extra_headers)
        mu_buf_str(&b, extra_headers);
    mu_buf_str(&b, r->close ? "Connection: close\r\n\r\n" : "Connection: keep-alive\r\n\r\n");
    reply_push(r, delay_ms, b.p, b.len);
}

void mu_reply_data(mu_reply *r, unsigned delay_ms, const char *data, size_t len)
{
    mu_buf b = {0};
    if (r->chunked) {
        if (len == 0) { /* a zero-size chunk would end the body */
            reply_push(r, delay_ms, NULL, 0);
            return;
        }
        mu_buf_printf(&b, "%zx\r\n", len);
        mu_buf_add(&b, data, len);
        mu_buf_str(&b, "\r\n");
    } else {
        mu_buf_add(&b, data, len);
    }
    reply_push(r, delay_ms, b.p, b.len);
}

void mu_reply_finish(mu_reply *r)
{
    if (r->chunked) {
        char *end = strdup("0\r\n\r\n");
        if (!end)
            abort();
        reply_push(r, 0, end, 5);
    }
}

void mu_reply_free(mu_reply *r)
{
    for (size_t i = 0; i < r->n; i++)
        free(r->steps[i].data);
    free(r->steps);
    json_decref(r->call);
    memset(r, 0, sizeof *r);
}
