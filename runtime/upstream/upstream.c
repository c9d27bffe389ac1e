/*
 * Transfers on a loop's libcurl multi handles: an easy handle per request
 * (pooled, options kept), its header and body callbacks, the per-transfer
 * watchdog, and the outcome of each finished one, collected with
 * curl_multi_info_read after every curl action (sl_upstream_check_done,
 * the only place on_done runs, so callers may start new transfers from
 * it). watch.c binds the multi handles to libev.
 */
#include "upstream/upstream.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/log.h"
#include "table.h"
#include "upstream/upstream_internal.h"
#include "upstream/urlcache.h"

/* Passed-through headers together (one value: pass_headers.c). Real
 * rate-limit and request-id headers are a few dozen bytes each; anything
 * longer is dropped, not truncated. */
#define SL_UPSTREAM_PASS_MAX 3072
#define SL_UPSTREAM_REUSE_LIMIT 512

struct sl_xfer {
    sl_upstream *u;
    CURL *easy;
    sl_xfer_callbacks cb;
    void *ctx;
    ev_timer watchdog;
    uint32_t first_byte_ms, idle_ms;
    sl_xfer_result forced;     /* set by the watchdog */
    int sends;                 /* times curl was about to send the request */
    int got_byte;
    int head_sent;
    int paused;
    int cancelled;
    int in_callback;
    int status;
    char content_type[128];
    int retry_after_s;
    sl_buf pass;               /* filtered response headers */
    /* "Expect:" in front of the caller's headers: curl would otherwise add
     * "Expect: 100-continue" to bodies over 1 MiB and wait up to a second
     * for a 100 that many servers never send. A node of our own keeps the
     * caller's list untouched and costs no allocation. */
    struct curl_slist no_expect;
    char no_expect_line[8];
    char errbuf[CURL_ERROR_SIZE]; /* libcurl's reason, more precise than its code's */
    int client_cert;              /* the provider presents one (see tls_refused) */
    const sl_provider_tls *tls;   /* the provider's `tls:` options set on easy */
    curl_off_t body_len;
    struct sl_xfer *up_next, **up_prev; /* on u->uploading while linked */
};


static void upload_unlink(sl_xfer *x)
{
    if (!x->up_prev)
        return;
    *x->up_prev = x->up_next;
    if (x->up_next)
        x->up_next->up_prev = x->up_prev;
    x->up_next = NULL;
    x->up_prev = NULL;
}

/* libcurl 7.88 copies a request over TLS (HTTP/1.1), or the body of an
 * HTTP/2 request, into a per-transfer upload buffer of
 * CURLOPT_UPLOAD_BUFFERSIZE bytes (16 KiB at least) and keeps it until the
 * transfer ends: against a slow upstream that is most of a request's
 * memory while it waits for the answer. Once the whole request is on the
 * wire (curl counts the body as written only after the head; with the
 * last body byte written it stops sending) the buffer is not touched
 * again, and setting the option again frees it. A request without a body
 * is left alone: its count says nothing about how much of the head went. */
static void release_uploads(sl_upstream *u)
{
    sl_xfer *x = u->uploading;
    while (x) {
        sl_xfer *next = x->up_next;
        long req = 0;
        curl_off_t sent = 0;
        curl_easy_getinfo(x->easy, CURLINFO_REQUEST_SIZE, &req);
        curl_easy_getinfo(x->easy, CURLINFO_SIZE_UPLOAD_T, &sent);
        if (req > 0 && sent >= x->body_len) {
            curl_easy_setopt(x->easy, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
            upload_unlink(x);
        }
        x = next;
    }
}

static void xfer_free(sl_xfer *x)
{
    upload_unlink(x);
    ev_timer_stop(x->u->loop, &x->watchdog);
    curl_multi_remove_handle(x->u->multi, x->easy);
    if (x->u->pooled < EASY_POOL_MAX) {
        /* Not reset (see easy_take); only what points into x goes. */
        curl_easy_setopt(x->easy, CURLOPT_ERRORBUFFER, (char *)NULL);
        curl_easy_setopt(x->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
        x->u->pool_tls[x->u->pooled] = x->tls;
        x->u->pool[x->u->pooled++] = x->easy;
    } else {
        curl_easy_cleanup(x->easy);
    }
    sl_buf_free(&x->pass);
    x->u->first->all_active--;
    if (--x->u->active == 0 && x->u != x->u->first)
        ev_timer_start(x->u->loop, &x->u->reap);
    free(x);
}

/* ---- transfers -------------------------------------------------------- */

/* In TLS 1.3 the server judges the client's certificate after the client
 * has finished its handshake and sent the request, so a refusal reaches
 * libcurl as a failed read: with an alert libcurl names (OpenSSL-based
 * servers), or as a connection closed without a byte (servers that check
 * the certificate after the handshake, such as Node's). The second looks
 * like any dropped connection, so it counts as TLS only on a connection
 * this transfer opened and that presented a client certificate. Either
 * way the attempt is retried like a connect failure (sl_attempts). */
static int tls_refused(const sl_xfer *x, CURLcode rc)
{
    if (rc != CURLE_RECV_ERROR && rc != CURLE_SEND_ERROR && rc != CURLE_GOT_NOTHING)
        return 0;
    if (strstr(x->errbuf, " alert "))
        return 1;
    long fresh = 0;
    curl_easy_getinfo(x->easy, CURLINFO_NUM_CONNECTS, &fresh);
    return x->client_cert && !x->got_byte && fresh > 0;
}

void sl_upstream_check_done(sl_upstream *u)
{
    CURLMsg *m;
    int left;
    if (u->uploading)
        release_uploads(u);
    while ((m = curl_multi_info_read(u->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        sl_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        CURLcode rc = m->data.result;
        if (x->cancelled) {
            xfer_free(x);
            continue;
        }
        sl_xfer_result r = x->forced != SL_XFER_OK ? x->forced : sl_upstream_map_curl(rc);
        int refused = x->forced == SL_XFER_OK && tls_refused(x, rc);
        if (refused)
            r = SL_XFER_TLS;
        /* prereq_cb refused curl's silent re-send: the connection died. */
        if (rc == CURLE_ABORTED_BY_CALLBACK && x->sends > 1)
            r = SL_XFER_RESET;
        /* A connection that died before any byte is a connect-class failure
         * for retry purposes only when it never connected; curl tells. */
        if (r == SL_XFER_OK && !x->head_sent) {
            r = SL_XFER_RESET;
        }
        /* curl may time out a connect attempt as OPERATION_TIMEDOUT. */
        if (rc == CURLE_OPERATION_TIMEDOUT && !x->got_byte) {
            curl_off_t connect_us = 0;
            curl_easy_getinfo(x->easy, CURLINFO_CONNECT_TIME_T, &connect_us);
            if (connect_us == 0)
                r = SL_XFER_CONNECT;
        }
        const char *detail = rc == CURLE_OK ? "" : x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        if (x->forced != SL_XFER_OK)
            detail = sl_xfer_result_name(x->forced);
        char why[CURL_ERROR_SIZE + 160];
        if (refused && !strstr(x->errbuf, " alert ")) {
            snprintf(why, sizeof why,
                     "the upstream closed the connection after the TLS handshake without "
                     "answering, which is how a server refuses a client certificate under TLS "
                     "1.3 (%s)",
                     detail);
            detail = why;
        }
        /* Counted as a callback so sl_xfer_cancel from on_done only marks
         * the xfer, which is freed right below either way. */
        x->in_callback++;
        x->cb.on_done(x->ctx, r, detail);
        xfer_free(x);
    }
}

static void emit_head(sl_xfer *x)
{
    if (x->head_sent)
        return;
    x->head_sent = 1;
    sl_xfer_head h = {
        .status = x->status,
        .content_type = x->content_type[0] ? x->content_type : NULL,
        .passthrough = x->pass.data ? x->pass.data : "",
        .passthrough_len = x->pass.len,
        .retry_after_s = x->retry_after_s,
    };
    x->in_callback++;
    x->cb.on_head(x->ctx, &h);
    x->in_callback--;
}

static void watchdog_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_xfer *x = t->data;
    if (x->cancelled) { /* deferred free from sl_xfer_cancel */
        xfer_free(x);
        return;
    }
    if (x->paused)
        return; /* a slow client is not an idle upstream */
    x->forced = x->got_byte ? SL_XFER_TIMEOUT_IDLE : SL_XFER_TIMEOUT_FIRST_BYTE;
    /* We are in a loop callback, not inside curl, so the handle can go. */
    x->in_callback++;
    x->cb.on_done(x->ctx, x->forced, sl_xfer_result_name(x->forced));
    xfer_free(x);
}

static void watchdog_kick(sl_xfer *x)
{
    uint32_t msv = x->got_byte ? x->idle_ms : x->first_byte_ms;
    ev_timer_stop(x->u->loop, &x->watchdog);
    if (msv) {
        ev_timer_set(&x->watchdog, (double)msv / 1000.0, 0.);
        ev_timer_start(x->u->loop, &x->watchdog);
    }
}

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    sl_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->cancelled)
        return 0;
    if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        /* A new status line: 1xx interim responses reset what we saw. */
        const char *sp = memchr(p, ' ', n);
        x->status = sp ? atoi(sp + 1) : 0;
        x->content_type[0] = '\0';
        x->retry_after_s = -1;
        sl_buf_clear(&x->pass);
        return n;
    }
    if (n <= 2) { /* end of head */
        if (x->status >= 200)
            emit_head(x);
        return x->cancelled ? 0 : n;
    }
    const char *colon = memchr(p, ':', n);
    if (!colon)
        return n;
    size_t name_len = (size_t)(colon - p);
    const char *v = colon + 1;
    const char *end = p + n;
    /* curl hands over one line with its CRLF (or bare LF); strip that,
     * then the optional whitespace around the value. A CR anywhere else
     * stays in the value and fails sl_upstream_header_passes. */
    if (end > v && end[-1] == '\n')
        end--;
    if (end > v && end[-1] == '\r')
        end--;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    size_t vlen = (size_t)(end - v);
    if (name_len == 12 && strncasecmp(p, "content-type", 12) == 0) {
        if (vlen < sizeof x->content_type) {
            memcpy(x->content_type, v, vlen);
            x->content_type[vlen] = '\0';
        }
        return n;
    }
    if (name_len == 11 && strncasecmp(p, "retry-after", 11) == 0) {
        char tmp[16];
        if (vlen > 0 && vlen < sizeof tmp) {
            memcpy(tmp, v, vlen);
            tmp[vlen] = '\0';
            char *e;
            long s = strtol(tmp, &e, 10);
            if (*e == '\0' && s >= 0 && s < 86400)
                x->retry_after_s = (int)s;
        }
    }
    if (sl_upstream_header_passes(p, name_len, v, vlen) &&
        x->pass.len + name_len + vlen + 4 + 9 <= SL_UPSTREAM_PASS_MAX) { /* 9: a renamed id */
        size_t mark = x->pass.len;
        /* x-request-id on the client's side is sluice's own: the
         * provider's id for the same call goes back under another name. */
        int rid = name_len == 12 && strncasecmp(p, "x-request-id", 12) == 0;
        const char *out_name = rid ? "x-upstream-request-id" : p;
        size_t out_len = rid ? 21 : name_len;
        if (sl_buf_append(&x->pass, out_name, out_len) != 0 || sl_buf_append(&x->pass, ": ", 2) != 0 ||
            sl_buf_append(&x->pass, v, vlen) != 0 || sl_buf_append(&x->pass, "\r\n", 2) != 0)
            x->pass.len = mark; /* never half a header */
    }
    return n;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    sl_xfer *x = ud;
    size_t n = size * nmemb;
    if (x->cancelled)
        return 0;
    if (!x->head_sent)
        emit_head(x);
    if (x->cancelled)
        return 0;
    x->got_byte = 1;
    x->in_callback++;
    size_t r = x->cb.on_data(x->ctx, p, n);
    x->in_callback--;
    if (x->cancelled)
        return 0;
    if (r == SL_XFER_PAUSE) {
        x->paused = 1;
        ev_timer_stop(x->u->loop, &x->watchdog);
        return CURL_WRITEFUNC_PAUSE;
    }
    watchdog_kick(x);
    return r;
}

/* libcurl re-sends a request by itself when a reused connection dies
 * before any response byte (up to 5 times). The upstream may have acted on
 * the first copy, and only the retry policy may decide to send another, so
 * the second send is refused: the transfer fails as a reset. */
static int prereq_cb(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    sl_xfer *x = ud;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    return x->sends++ ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

void sl_xfer_headers_add(sl_xfer_headers *h, sl_arena *a, const char *line)
{
    size_t n = line ? strlen(line) : 0;
    struct curl_slist *l = line ? sl_arena_alloc(a, sizeof *l) : NULL;
    char *copy = l ? sl_arena_strndup(a, line, n) : NULL;
    if (!copy) {
        h->failed = 1;
        return;
    }
    l->data = copy;
    l->next = NULL;
    if (h->tail)
        h->tail->next = l;
    else
        h->head = l;
    h->tail = l;
}

/* Whether the environment names a proxy libcurl would use: a non-empty
 * value in a variable it reads for http:// or https:// URLs (it ignores
 * HTTP_PROXY on purpose). */
static bool env_names_proxy(void)
{
    static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return true;
    }
    return false;
}

/* The options every transfer sets alike. */
static void easy_constant(sl_upstream *u, CURL *e)
{
    /* libcurl looks the proxy variables up for every transfer, five
     * getenv calls and a copy each. When none names a proxy, an empty
     * CURLOPT_PROXY and CURLOPT_NOPROXY say the same once: no proxy. When
     * one does, libcurl goes on reading them (and NO_PROXY) itself. */
    if (!env_names_proxy()) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    /* Pooled connections idle longer than providers typically keep them
     * are not reused: with re-sends refused, a stale one costs a retry. */
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 30L);
    /* (The receive buffer's size depends on the HTTP version: set per
     * transfer in sl_xfer_start.) */
    /* libcurl sends an HTTP/2 request body through an upload buffer of
     * this size per transfer (64 KiB by default, 16 KiB the least it
     * takes): at thousands of streams in flight it was most of the
     * gateway's memory. */
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    /* Set together, so every connection socket is both known to open_cb
     * and dropped by close_cb of the same multi handle (watch.c). */
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, sl_upstream_open_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, u);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, sl_upstream_close_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, u);
}

/* An easy handle for a transfer with these `tls:` options. A pooled one
 * is not curl_easy_reset: the reset, setting the constant options again
 * and the receive and upload buffers the buffer sizes then reallocate
 * were several thousand instructions per request. sl_xfer_start sets
 * every option that differs between transfers; a handle that carried
 * other `tls:` options is reset, since those cannot be unset one by one. */
static CURL *easy_take(sl_upstream *u, const sl_provider_tls *tls)
{
    if (u->pooled) {
        CURL *e = u->pool[--u->pooled];
        if (u->pool_tls[u->pooled] == tls)
            return e;
        curl_easy_reset(e);
        easy_constant(u, e);
        return e;
    }
    CURL *e = curl_easy_init();
    if (e)
        easy_constant(u, e);
    return e;
}

sl_xfer *sl_xfer_start(sl_upstream *u, const sl_xfer_spec *s, const sl_xfer_callbacks *cb, void *ctx)
{
    bool tls = strncmp(s->url, "https:", 6) == 0;
    bool h2 = tls ? s->http2 != SL_HTTP2_OFF : s->http2 == SL_HTTP2_ON;
    if (tls && !h2)
        u = sl_upstream_shard_for(u);
    sl_xfer *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    x->easy = easy_take(u, s->tls);
    if (!x->easy) {
        free(x);
        return NULL;
    }
    x->u = u;
    x->cb = *cb;
    x->ctx = ctx;
    x->retry_after_s = -1;
    x->first_byte_ms = s->first_byte_ms + s->connect_ms;
    x->idle_ms = s->idle_ms;
    CURL *e = x->easy;
    CURLU *parsed = sl_urlcache_get(&u->urls, s->url);
    curl_easy_setopt(e, CURLOPT_CURLU, parsed); /* NULL: the string below */
    if (!parsed)
        curl_easy_setopt(e, CURLOPT_URL, s->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    /* HTTP/2 over TLS is negotiated through ALPN (the server may still pick
     * HTTP/1.1); PIPEWAIT makes a new transfer wait for a connection being
     * set up to the same host and join it as a stream rather than open its
     * own. In clear text HTTP/2 is used only when the spec says the server
     * speaks it (prior knowledge), and then one connection per transfer:
     * Debian 12's libcurl (7.88) fails a second stream multiplexed onto an
     * h2c connection with "Error in the HTTP2 framing layer". */
    bool h2c = h2 && !tls;
    long version = !h2 ? CURL_HTTP_VERSION_1_1
                       : tls ? CURL_HTTP_VERSION_2TLS : CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE;
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, version);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, h2 && !h2c ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)s->total_ms);
    memcpy(x->no_expect_line, "Expect:", sizeof x->no_expect_line);
    x->no_expect.data = x->no_expect_line;
    x->no_expect.next = (struct curl_slist *)s->headers;
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, &x->no_expect);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
    /* libcurl 7.88 looks for a reusable connection by walking every
     * connection to the host, busy ones included: with thousands in flight
     * that walk dominates. Past this many active transfers no idle
     * connection is likely anyway, so open a new one and close it after.
     * Not over TLS, where that means a handshake per request: HTTP/2 shares
     * a few connections, HTTP/1.1 keeps its connections in multi handles
     * of bounded size (shard_for). h2c gets a connection of its own, see
     * above. */
    long fresh = (u->active >= SL_UPSTREAM_REUSE_LIMIT && !tls) || h2c;
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, fresh);
    /* The receive buffer lives from connect to the end of the transfer,
     * so against a slow upstream it is held while nothing arrives. Over
     * HTTP/1.1 2 KiB holds a typical non-streamed answer or a stream's
     * events in one read. Over HTTP/2 it stays at libcurl's default
     * 16 KiB, the largest DATA frame: 7.88 copies each frame into it, and
     * a frame that does not fit takes its pause path (the rest left in the
     * connection's input buffer), which with several streams answering
     * large bodies at once crashed the process (SIGSEGV in
     * curl_multi_socket_action; upstream-tls.test.mjs). */
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, h2 ? 16384L : 2048L);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, x);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    if (tls && u->share) /* TLS sessions are all it shares */
        curl_easy_setopt(e, CURLOPT_SHARE, u->share);
    x->tls = s->tls;
    if (s->tls) {
        sl_upstream_set_tls(e, s->tls);
        x->client_cert = s->tls->client_cert != NULL;
    }
    if (s->body) {
        x->body_len = (curl_off_t)s->body_len;
        /* Plain HTTP/1.1 sends a body under 64 KiB with the head, from
         * curl's request buffer: no upload buffer to release. */
        if (s->body_len > 0 && (tls || h2 || s->body_len >= 65536)) {
            x->up_next = u->uploading;
            if (x->up_next)
                x->up_next->up_prev = &x->up_next;
            x->up_prev = &u->uploading;
            u->uploading = x;
        }
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)s->body_len);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, s->body);
    } else {
        /* A kept handle may still point at an earlier transfer's body. */
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    ev_init(&x->watchdog, watchdog_cb);
    x->watchdog.data = x;
    if (curl_multi_add_handle(u->multi, e) != CURLM_OK) {
        upload_unlink(x);
        curl_easy_cleanup(e);
        free(x);
        return NULL;
    }
    u->active++;
    u->first->all_active++;
    watchdog_kick(x);
    return x;
}

void sl_xfer_cancel(sl_xfer *x)
{
    if (!x || x->cancelled)
        return;
    x->cancelled = 1;
    if (x->in_callback)
        return; /* our callback returns 0; curl fails it; check_done frees */
    if (x->u->in_action) {
        /* Inside curl for another transfer: removing handles is not
         * allowed here, so free from the loop on the next iteration. */
        ev_timer_stop(x->u->loop, &x->watchdog);
        ev_timer_set(&x->watchdog, 0., 0.);
        ev_timer_start(x->u->loop, &x->watchdog);
        return;
    }
    xfer_free(x);
}

void sl_xfer_resume(sl_xfer *x)
{
    if (!x || !x->paused || x->cancelled)
        return;
    x->paused = 0;
    watchdog_kick(x);
    x->u->in_action = 1;
    curl_easy_pause(x->easy, CURLPAUSE_CONT);
    x->u->in_action = 0;
    sl_upstream_check_done(x->u);
}
