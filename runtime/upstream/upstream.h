/*
 * Upstream HTTP client: one libcurl multi handle per worker loop, driven by
 * libev through curl's socket and timer callbacks, so thousands of provider
 * requests share one thread and the connection cache. Each transfer has its
 * own watchdog (first byte, idle between chunks) rather than trusting curl's
 * coarse low-speed limits, and redirects are never followed: the URL comes
 * from the compiled spec and nowhere else.
 */
#ifndef SLUICE_UPSTREAM_H
#define SLUICE_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "table.h" /* sl_http2, sl_provider_tls */

struct ev_loop;
struct curl_slist;
struct sl_arena;

typedef struct sl_upstream sl_upstream;
typedef struct sl_xfer sl_xfer;

typedef enum sl_xfer_result {
    SL_XFER_OK = 0,            /* complete response (any HTTP status) */
    SL_XFER_CONNECT,           /* could not connect / resolve */
    SL_XFER_TIMEOUT_FIRST_BYTE,
    SL_XFER_TIMEOUT_IDLE,
    SL_XFER_TIMEOUT_TOTAL,
    SL_XFER_RESET,             /* connection dropped or response truncated */
    SL_XFER_ERROR,             /* anything else (protocol, out of memory) */
    SL_XFER_TLS,               /* TLS failed: certificate not trusted, name mismatch,
                                  client certificate refused, handshake alert */
    SL_XFER_AUTH,              /* no access token for the provider (auth/oauth.h):
                                  the detail says what the token endpoint did */
} sl_xfer_result;

const char *sl_xfer_result_name(sl_xfer_result r);

/* The response head as the provider sent it. `passthrough` holds the header
 * lines worth returning to the client ("Name: value\r\n"...): only request
 * ids (x-request-id, request-id, openai-processing-ms) and rate-limit
 * headers (x-ratelimit-*, anthropic-ratelimit-*, retry-after,
 * retry-after-ms), names as sent, values trimmed; a header whose name is
 * not a token or whose value holds CR, LF, NUL or another control byte,
 * or is over 256 bytes, is dropped whole. At most 3 KiB in all. */
typedef struct sl_xfer_head {
    int status;
    const char *content_type;   /* NULL when absent */
    const char *passthrough;
    size_t passthrough_len;
    int retry_after_s;          /* -1 when absent or unparsable */
} sl_xfer_head;

/* Returned by on_data to make curl hold the data and pause the transfer
 * until sl_xfer_resume(). */
#define SL_XFER_PAUSE ((size_t)-1)

typedef struct sl_xfer_callbacks {
    void (*on_head)(void *ctx, const sl_xfer_head *head);
    /* Body bytes as they arrive (curl has undone transfer coding). Return
     * n to accept, SL_XFER_PAUSE to hold them, 0 to abort the transfer. */
    size_t (*on_data)(void *ctx, const char *p, size_t n);
    /* Called exactly once unless the transfer was cancelled. The xfer is
     * freed when this returns. `detail` is libcurl's account of a failure
     * (for the gateway's log: it may name the upstream host). */
    void (*on_done)(void *ctx, sl_xfer_result result, const char *detail);
} sl_xfer_callbacks;

typedef struct sl_xfer_spec {
    const char *url;
    const struct curl_slist *headers;  /* caller keeps it alive until done */
    const char *body;                  /* NULL: GET */
    size_t body_len;
    uint32_t connect_ms, first_byte_ms, idle_ms, total_ms;
    const sl_provider_tls *tls;        /* the provider's trust settings, or NULL */
    sl_http2 http2;
    const sl_provider *provider;       /* for transports that add its auth (OAuth) */
} sl_xfer_spec;

/* A header list for sl_xfer_spec.headers whose nodes and lines live in
 * an arena that outlives the transfer: curl_slist_append's malloc and
 * strdup per line, and the frees after, were a visible share of a
 * request's allocations. `failed` is set when a line could not be added,
 * so the caller fails the request rather than send it without, say, the
 * provider key or Content-Type. Zero-initialised it is an empty list. */
typedef struct sl_xfer_headers {
    struct curl_slist *head, *tail;
    int failed;
} sl_xfer_headers;

void sl_xfer_headers_add(sl_xfer_headers *h, struct sl_arena *a, const char *line);

sl_upstream *sl_upstream_new(struct ev_loop *loop);
void sl_upstream_free(sl_upstream *u);
/* Transfers currently running on this upstream. */
unsigned sl_upstream_active(const sl_upstream *u);

/* NULL when the transfer cannot be created (out of memory). */
sl_xfer *sl_xfer_start(sl_upstream *u, const sl_xfer_spec *spec, const sl_xfer_callbacks *cb,
                       void *ctx);
/* Stops the transfer; no callback is called afterwards. Safe from inside
 * this transfer's own callbacks. */
void sl_xfer_cancel(sl_xfer *x);
/* Resumes a transfer paused by SL_XFER_PAUSE. */
void sl_xfer_resume(sl_xfer *x);

#endif
