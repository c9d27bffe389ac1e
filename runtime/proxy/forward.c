/*
 * One try after another (see forward.h). Same-protocol traffic is a
 * pass-through: the body goes upstream byte for byte except the top-level
 * "model" value, spliced in place when the spec renames it, and the usage
 * request sluice adds. A streamed 2xx answer is relayed as each piece
 * arrives; anything else (non-stream bodies, error statuses) is held until
 * complete so a failed try can still move to the next target before the
 * client has seen a byte. Once bytes have gone out, a failure ends the
 * stream with an error event in the client's protocol and a truncated
 * body, never a clean-looking end.
 */
#include "proxy/forward.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "cache/cache.h"
#include "json/json_out.h"
#include "core/log.h"
#include "core/membudget.h"
#include "core/str.h"
#include "guard/guard.h"
#include "json/json_scan.h"
#include "proxy/proxy.h"
#include "proxy/rstate.h"
#include "route/health.h"
#include "trace/trace.h"
#include "translate/fit.h"
#include "translate/translate.h"

/* Largest non-streamed upstream body held before answering. */
#define MAX_BUFFERED_BODY (64u * 1024 * 1024)

static const sl_xfer_callbacks xfer_cb;
static const sl_conn_hooks conn_hooks;

/* ---- the upstream request ------------------------------------------------- */

/* A copy of the client's request re-serialised with the upstream model
 * and, with force_usage, stream_options.include_usage on: for the rare
 * bodies the byte-level edits below cannot handle. */
static int reserialise(sl_exchange *x, int force_usage, const char **out, size_t *out_len)
{
    json_t *j = sl_exchange_json(x);
    json_t *copy = j ? json_deep_copy(j) : NULL;
    if (!copy)
        return -1;
    json_object_set_new(copy, "model", json_string(x->upstream_model));
    if (force_usage) {
        json_t *so = json_object_get(copy, "stream_options");
        if (!so)
            json_object_set_new(copy, "stream_options", json_pack("{s:b}", "include_usage", 1));
        else if (json_is_object(so))
            json_object_set_new(so, "include_usage", json_true());
        /* anything else is the client's error: the provider answers it */
    }
    char *js = sl_json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(copy);
    if (!js)
        return -1;
    *out_len = strlen(js);
    *out = sl_arena_strndup(x->arena, js, *out_len);
    free(js);
    return *out ? 0 : -1;
}

/* The member right after the opening brace, every other byte left alone. */
static int insert_usage(sl_exchange *x, const char **body, size_t *len)
{
    static const char opt[] = "\"stream_options\":{\"include_usage\":true},";
    const char *b = *body;
    size_t n = *len, i = 0;
    while (i < n && b[i] != '{')
        i++;
    if (i == n)
        return 0;
    char *nb = sl_arena_alloc(x->arena, n + sizeof opt);
    if (!nb)
        return -1;
    memcpy(nb, b, i + 1);
    memcpy(nb + i + 1, opt, sizeof opt - 1);
    memcpy(nb + i + sizeof opt, b + i + 1, n - i - 1);
    *len = n + sizeof opt - 1;
    nb[*len] = '\0';
    *body = nb;
    return 0;
}

/* The client's bytes with the model replaced when the spec renames it.
 * OpenAI streams report usage only when asked, and the ledger needs it
 * whatever the client asked: sluice asks, and the relay hides the answer
 * from a client that did not. */
static int passthrough_body(sl_exchange *x, const char **out, size_t *out_len)
{
    int force = x->stream && x->op == SL_OP_CHAT && x->up_proto == SL_PROTO_OPENAI && !x->client_usage &&
                !(x->prov->quirks & SL_QUIRK_NO_STREAM_OPTIONS);
    if (force && json_object_get(x->json, "stream_options"))
        return reserialise(x, 1, out, out_len); /* the client's own stream_options */
    const char *b = x->body;
    size_t n = x->body_len;
    if (force && insert_usage(x, &b, &n) != 0)
        return -1;
    if (strcmp(x->upstream_model, x->client_model) == 0) {
        *out = b;
        *out_len = n;
        return 0;
    }
    size_t s, e;
    char *quoted = sl_json_quote(x->arena, x->upstream_model, strlen(x->upstream_model));
    if (!quoted)
        return -1;
    if (sl_json_find_member(b, n, "model", &s, &e) != 0)
        return reserialise(x, force, out, out_len); /* escaped member names */
    char *nb = sl_json_splice(x->arena, b, n, s, e, quoted, strlen(quoted), out_len);
    *out = nb;
    return nb ? 0 : -1;
}

/* The same-protocol body fitted to the target's model (translate/fit.h).
 * A shallow copy of the parsed request is fitted, so a request that needs
 * no change keeps its bytes and costs no serialisation; one that does is
 * re-serialised like any renamed body. */
static int fit_passthrough(sl_exchange *x, const sl_target *tg, const char **body, size_t *len)
{
    if (!(tg->caps & SL_CAP_KNOWN) && !(x->prov->quirks && x->up_proto == SL_PROTO_OPENAI))
        return 0;
    json_t *j = sl_exchange_json(x);
    json_t *copy = j ? json_copy(j) : NULL;
    if (!copy)
        return -1;
    int rc = 0;
    if (sl_fit_request(x->up_proto, copy, tg->caps, tg->max_output, x->prov->quirks) > 0) {
        if (x->up_proto != SL_PROTO_GEMINI)
            json_object_set_new(copy, "model", json_string(x->upstream_model));
        else
            json_object_del(copy, "model");
        int force = x->stream && x->op == SL_OP_CHAT && x->up_proto == SL_PROTO_OPENAI && !x->client_usage &&
                    !(x->prov->quirks & SL_QUIRK_NO_STREAM_OPTIONS);
        if (force) {
            json_t *so = json_object_get(copy, "stream_options");
            json_t *so2 = json_is_object(so) ? json_copy(so) : json_object();
            json_object_set_new(so2, "include_usage", json_true());
            json_object_set_new(copy, "stream_options", so2);
        }
        char *js = sl_json_dumps(copy, JSON_COMPACT | JSON_PRESERVE_ORDER);
        rc = -1;
        if (js) {
            *len = strlen(js);
            *body = sl_arena_strndup(x->arena, js, *len);
            rc = *body ? 0 : -1;
            free(js);
        }
    }
    json_decref(copy);
    return rc;
}

static void add_header(void *ctx, const char *line)
{
    sl_exchange *x = ctx;
    sl_xfer_headers_add(&x->headers, x->arena, line);
}

/* count_tokens where the provider cannot count: an estimate, said so. */
static void answer_token_estimate(sl_exchange *x)
{
    char *body = malloc(64);
    int n = body ? snprintf(body, 64, "{\"input_tokens\":%ld}", sl_translate_estimate_tokens(x->json)) : 0;
    sl_finish f = {.kind = SL_FINISH_RESPOND, .status = 200, .ctype = "application/json",
                   .headers = sl_exchange_headers(x, "x-sluice-estimate: true\r\n"), .body = body,
                   .len = n > 0 ? (size_t)n : 0, .complete = 1};
    sl_exchange_finish(x, &f);
}

static void try_start(void *ctx, const sl_attempt *a)
{
    sl_exchange *x = ctx;
    const sl_table *t = x->t;
    const sl_target *tg = &t->targets[a->target];
    x->prov = &t->providers[tg->provider];
    x->pops = sl_provider_ops_of(x->prov->kind);
    x->transport = x->prov->oauth ? x->prov->oauth->ops->transport : x->pops->transport;
    x->upstream_model = sl_route_upstream_model(t, a, x->client_model);
    /* A Responses request to a provider that serves the Responses API
     * passes through; the kind's protocol otherwise. */
    x->up_proto = x->op == SL_OP_RESPONSES && x->prov->responses
                      ? SL_PROTO_RESPONSES
                      : sl_provider_proto(x->prov, x->upstream_model, x->op);
    x->status = 0;
    sl_relay_free(&x->relay);

    /* Bedrock speaks Anthropic bodies but has no count_tokens of that shape. */
    if (x->op == SL_OP_COUNT_TOKENS && (x->up_proto != SL_PROTO_ANTHROPIC || x->prov->kind == SL_KIND_BEDROCK)) {
        answer_token_estimate(x);
        return;
    }
    const char *body;
    size_t body_len;
    if (x->up_proto != x->surface) {
        /* A Responses client's request carries its earlier turns here. */
        json_t *req = x->surface == SL_PROTO_RESPONSES ? sl_rstate_request(x) : sl_exchange_json(x);
        if (!req && x->surface != SL_PROTO_RESPONSES) {
            sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
            return;
        }
        if (!req)
            return; /* answered */
        if (req != x->json && x->guard) {
            /* Earlier turns from the store went through no guardrail yet. */
            char msg[256];
            int g = x->t->guard->ops->request_json(x->guard, req, msg, sizeof msg);
            if (g != 0) {
                if (g == 1)
                    sl_exchange_fail(x, 400, "guardrail_blocked", NULL, "%s", msg);
                else
                    sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
                return;
            }
        }
        char err[256] = "";
        free(x->xbody);
        x->xbody = sl_translate_request_fit(x->surface, x->up_proto, req, x->upstream_model, x->stream,
                                            tg->caps, tg->max_output, x->prov->quirks, err, sizeof err);
        if (!x->xbody) {
            sl_exchange_fail(x, 400, "invalid_request", NULL, "%s", err[0] ? err : "request cannot be translated");
            return;
        }
        body = x->xbody;
        body_len = strlen(x->xbody);
    } else if (x->up_proto == SL_PROTO_GEMINI) {
        body = x->body; /* the model is in the URL */
        body_len = x->body_len;
    } else if (passthrough_body(x, &body, &body_len) != 0) {
        sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
        return;
    }
    if (x->up_proto == x->surface && fit_passthrough(x, tg, &body, &body_len) != 0) {
        sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
        return;
    }
    sl_call call = {.arena = x->arena, .prov = x->prov, .op = x->op, .client = x->surface,
                    .req = x->req, .model = x->upstream_model, .stream = x->stream};
    if (x->pops->body) {
        char err[256] = "";
        if (x->pops->body(&call, &body, &body_len, err, sizeof err) != 0) {
            sl_exchange_fail(x, 400, "invalid_request", NULL, "%s", err);
            return;
        }
    }
    call.body = body;
    call.body_len = body_len;
    if (x->stream) {
        /* A kind whose stream is not its protocol's SSE decodes it first. */
        sl_filter pre = {.name = "upstream framing", .feed = x->pops->stream_feed,
                         .finish = x->pops->stream_finish,
                         .st = x->pops->stream_new ? x->pops->stream_new(&call) : NULL};
        if (x->pops->stream_new && !pre.st) {
            sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
            return;
        }
        sl_relay_cfg cfg = {.up = x->up_proto, .client = x->surface, .legacy = x->legacy,
                            .pre = pre.st ? &pre : NULL, .pre_detail = x->pops->stream_error,
                            .strip_usage = x->surface == SL_PROTO_OPENAI && !x->client_usage,
                            .client_model = x->client_model, .guard = x->guard,
                            .gops = x->guard ? x->t->guard->ops : NULL};
        if (sl_relay_init(&x->relay, &cfg) != 0) {
            sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
            return;
        }
        sl_rstate_stream_init(x);
        /* Last, so it records what the client receives. */
        sl_filter cf;
        if (x->cache && (x->t->cache_ops->stream_filter(x, &cf) != 0 || sl_relay_add(&x->relay, &cf) != 0))
            x->cache = NULL;
    }
    const char *url = x->pops->url(&call);
    x->headers = (sl_xfer_headers){0}; /* an earlier try's stay in the arena */
    sl_provider_request_headers(&call, x->request_id, sl_proxy_auth_line(tg->provider), add_header, x);
    const char *traceparent = sl_trace_try_begin(x->trace, x->arena);
    if (traceparent)
        add_header(x, traceparent);
    if (!url || !x->headers.head || x->headers.failed) {
        sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
        return;
    }
    sl_xfer_spec spec = {
        .url = url,
        .headers = x->headers.head,
        .body = body,
        .body_len = body_len,
        .connect_ms = x->prov->connect_ms,
        .first_byte_ms = x->prov->first_byte_ms,
        .idle_ms = x->prov->idle_ms,
        .total_ms = x->prov->total_ms,
        .tls = x->prov->tls,
        .http2 = x->prov->http2,
        .provider = x->prov,
    };
    x->try_started = ev_time();
    x->xfer = x->transport->start(sl_worker_loop(x->w), sl_worker_upstream(x->w), &spec, &xfer_cb, x);
    if (!x->xfer)
        sl_exchange_fail(x, 500, NULL, NULL, "cannot start upstream request");
}

/* ---- waiting and giving up ------------------------------------------------ */

static void backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    sl_exchange *x = t->data;
    x->waited_s += ev_time() - x->wait_started;
    x->wait_started = 0;
    sl_attempts_resume(&x->attempts);
}

static void try_wait(void *ctx, uint32_t ms)
{
    sl_exchange *x = ctx;
    x->wait_started = ev_time();
    ev_timer_set(&x->backoff, (double)ms / 1000.0, 0.);
    ev_timer_start(sl_worker_loop(x->w), &x->backoff);
}

/* Answers with the best failure kept: the last upstream HTTP answer
 * unchanged (translated for a client of another protocol), or sluice's own
 * 502/504 naming every failed try. */
static void try_exhausted(void *ctx)
{
    sl_exchange *x = ctx;
    if (x->last_status) {
        sl_finish f = {.kind = SL_FINISH_RESPOND, .status = x->last_status,
                       .ctype = x->last_ctype ? x->last_ctype : "application/json",
                       .headers = sl_exchange_headers(x, x->last_pass), .body = x->last_body.data,
                       .len = x->last_body.len};
        memset(&x->last_body, 0, sizeof x->last_body);
        sl_relay_error_body(x->last_proto, x->surface, &f.status, &f.body, &f.len, &f.ctype);
        sl_exchange_finish(x, &f);
        return;
    }
    int timeout = x->last_result == SL_XFER_TIMEOUT_FIRST_BYTE || x->last_result == SL_XFER_TIMEOUT_IDLE ||
                  x->last_result == SL_XFER_TIMEOUT_TOTAL;
    sl_exchange_fail(x, timeout ? 504 : 502, "upstream_failed", sl_exchange_headers(x, NULL),
                     "all upstream attempts failed: %s", sl_attempts_failures(&x->attempts));
}

static const sl_attempt_ops attempt_ops = {try_start, try_wait, try_exhausted};

void sl_forward_plan(sl_exchange *x, const sl_attempt *plan, size_t n)
{
    unsigned seed = (unsigned)(uintptr_t)x ^ (unsigned)sl_health_now_ms();
    sl_attempts_init(&x->attempts, x->t, plan, n, &attempt_ops, x, seed, x->arena);
    ev_init(&x->backoff, backoff_cb);
    x->backoff.data = x;
}

void sl_forward_begin(sl_exchange *x)
{
    sl_conn_set_exchange(x->conn, x, &conn_hooks);
    sl_attempts_begin(&x->attempts);
}

/* ---- transfer callbacks ---------------------------------------------------- */

/* The host of a provider's base URL, for server.address. */
static const char *url_host(sl_arena *a, const char *url)
{
    const char *h = strstr(url, "://");
    h = h ? h + 3 : url;
    size_t n = strcspn(h, "/?#");
    if (n && h[0] != '[') {
        const char *colon = memchr(h, ':', n);
        if (colon)
            n = (size_t)(colon - h);
    } else if (n) {
        const char *close = memchr(h, ']', n);
        if (close)
            n = (size_t)(close - h) + 1;
    }
    return n ? sl_arena_printf(a, "%.*s", (int)n, h) : NULL;
}

/* The try's client span: what was asked of whom and how it ended. */
static void trace_try(sl_exchange *x, sl_metrics_result r)
{
    char ebuf[16];
    const char *err = NULL;
    if (r >= SL_MET_ATTEMPT_3XX && r <= SL_MET_ATTEMPT_5XX) {
        snprintf(ebuf, sizeof ebuf, "%d", x->status);
        err = ebuf;
    } else if (r != SL_MET_ATTEMPT_OK) {
        err = sl_metrics_result_name(r);
    }
    sl_span_info s = {
        .op = sl_metrics_op_name(x->op, x->legacy), .provider = x->prov ? x->prov->name : NULL,
        .request_model = x->upstream_model,
        .response_model = r == SL_MET_ATTEMPT_OK ? x->upstream_model : NULL,
        .server_address = x->prov && x->prov->base_url[0] ? url_host(x->arena, x->prov->base_url) : NULL,
        .error_type = err, .request_id = x->request_id, .stream = x->stream,
        .http_status = x->status,
    };
    sl_trace_try_end(x->trace, &s);
}

/* The try is over: its upstream wait and its outcome per target. */
static void try_ended(sl_exchange *x, sl_metrics_result r)
{
    if (x->try_started > 0)
        x->waited_s += ev_time() - x->try_started;
    x->try_started = 0;
    const sl_attempt *a = sl_attempts_current(&x->attempts);
    sl_metrics_attempt(x->metrics, (int)a->entry, x->prov ? (int)(x->prov - x->t->providers) : -1, r);
    if (x->trace)
        trace_try(x, r);
}

static sl_metrics_result xfer_result(sl_xfer_result r)
{
    switch (r) {
    case SL_XFER_CONNECT: return SL_MET_ATTEMPT_CONNECT;
    case SL_XFER_TIMEOUT_FIRST_BYTE:
    case SL_XFER_TIMEOUT_IDLE:
    case SL_XFER_TIMEOUT_TOTAL: return SL_MET_ATTEMPT_TIMEOUT;
    case SL_XFER_RESET: return SL_MET_ATTEMPT_RESET;
    default: return SL_MET_ATTEMPT_ERROR;
    }
}

static void on_head(void *ctx, const sl_xfer_head *h)
{
    sl_exchange *x = ctx;
    x->status = h->status;
    x->content_type = h->content_type ? sl_arena_strndup(x->arena, h->content_type, strlen(h->content_type)) : NULL;
    x->passthrough = sl_arena_strndup(x->arena, h->passthrough, h->passthrough_len);
    x->retry_after_s = h->retry_after_s;
}

static size_t on_data(void *ctx, const char *p, size_t n)
{
    sl_exchange *x = ctx;
    if (!(x->stream && x->status >= 200 && x->status < 300)) {
        /* Held whole (for translation, or in case a retry needs it): one
         * request is capped, and all of them together draw on the process
         * memory budget that request bodies use too. */
        if (x->resp.len + n > MAX_BUFFERED_BODY)
            return 0;
        if (sl_membudget_reserve(n) != 0) {
            x->over_budget = 1;
            return 0;
        }
        x->resp_charged += n;
        if (sl_buf_append(&x->resp, p, n) != 0)
            return 0;
        return n;
    }
    if (sl_conn_out_pending(x->conn) > SL_CONN_HIGH_WATER)
        return SL_XFER_PAUSE;
    const char *out;
    size_t on;
    if (sl_relay_feed(&x->relay, p, n, &out, &on) != 0)
        return 0; /* x->relay.error says why; on_done reports it */
    if (on == 0)
        return n;
    if (!x->streaming) {
        /* First client bytes of a good stream: commit to this try. From
         * here on a failure can no longer move to another target. */
        x->streaming = 1;
        x->ttfb_ms = (ev_time() - x->started) * 1000.0;
        const char *ct = x->relay.xl || x->relay.reframed || !x->content_type ? "text/event-stream"
                                                                               : x->content_type;
        if (sl_conn_stream_begin(x->conn, x->status, ct, sl_exchange_headers(x, x->passthrough)) != 0)
            return 0;
    }
    if (sl_conn_stream_write(x->conn, out, on) != 0)
        return 0; /* client gone: the abort hook follows from the loop */
    return n;
}

static void stream_done(sl_exchange *x, sl_xfer_result r)
{
    int clean = r == SL_XFER_OK && !x->relay.error;
    if (clean) {
        const char *out = NULL;
        size_t on = 0;
        /* A finish that fails leaves out unset: nothing more is written. */
        if (sl_relay_finish(&x->relay, &out, &on) != 0)
            clean = 0;
        else if (on && sl_conn_stream_write(x->conn, out, on) != 0)
            clean = 0;
        if (clean)
            sl_rstate_stream_end(x);
    }
    /* A guardrail that stopped the stream is no fault of the provider. */
    int guarded = x->guard && x->relay.error && strcmp(x->relay.error, "guardrail") == 0;
    sl_attempts_report(&x->attempts, clean || guarded);
    sl_usage_counts u;
    int64_t events;
    sl_relay_usage(&x->relay, &u, &events);
    sl_finish f = {.kind = clean ? SL_FINISH_STREAM_END : SL_FINISH_STREAM_ABORT,
                   .status = clean ? x->status : 502, .usage = &u, .events = events, .complete = clean};
    char msg[256];
    if (!clean) {
        if (guarded)
            snprintf(msg, sizeof msg, "%s", x->t->guard->ops->message(x->guard));
        else
            snprintf(msg, sizeof msg, "upstream stream from provider '%s' failed: %s", x->prov->name,
                     x->relay.detail  ? x->relay.detail
                     : x->relay.error ? "malformed stream"
                     : r == SL_XFER_OK ? "truncated stream" : sl_xfer_result_name(r));
        sl_log_warn("%s", msg);
        f.error = msg;
    }
    sl_exchange_finish(x, &f);
}

/* A failed try as the client's error message lists it. */
static const char *why_failed(sl_xfer_result r, const char *detail)
{
    if (r == SL_XFER_AUTH) /* written for the client: status and OAuth error code only */
        return detail;
    if (r == SL_XFER_TLS)
        return "TLS with the upstream failed (certificate or handshake; the gateway log says why)";
    return sl_xfer_result_name(r);
}

static void on_done(void *ctx, sl_xfer_result r, const char *detail)
{
    sl_exchange *x = ctx;
    /* The operator needs libcurl's reason (untrusted issuer, name
     * mismatch, refused client certificate); the client learns that TLS
     * failed, not details that may name the upstream host. */
    if (r == SL_XFER_TLS)
        sl_log_warn("provider '%s': TLS with the upstream failed: %s", x->prov->name, detail);
    x->xfer = NULL;
    try_ended(x, x->over_budget ? SL_MET_ATTEMPT_ERROR
                 : r == SL_XFER_OK && !(x->streaming && x->relay.error) ? sl_metrics_result_of_status(x->status)
                                                                         : xfer_result(r));
    if (x->streaming) {
        stream_done(x, r);
        return;
    }
    if (x->guard && x->relay.error && strcmp(x->relay.error, "guardrail") == 0) {
        /* Blocked before anything reached the client: a plain refusal,
         * not a failure of the provider to retry elsewhere. */
        sl_attempts_abandon(&x->attempts);
        sl_exchange_fail(x, 400, "guardrail_blocked", NULL, "%s", x->t->guard->ops->message(x->guard));
        return;
    }
    if (x->over_budget) {
        /* Not the provider's fault: no circuit report, no retry. */
        sl_attempts_abandon(&x->attempts);
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n",
                         "the gateway is holding too much response data; retry shortly");
        return;
    }
    if (r == SL_XFER_OK && x->pops->response && !(x->status >= 300 && x->status < 400)) {
        /* Into the adapter's protocol before any decision reads it. */
        sl_call call = {.arena = x->arena, .prov = x->prov, .op = x->op, .client = x->surface,
                        .req = x->req, .model = x->upstream_model, .stream = x->stream};
        x->pops->response(&call, x->status, &x->resp);
    }
    if (r == SL_XFER_OK && x->status >= 300 && x->status < 400) {
        /* Redirects are never followed (the spec alone names upstreams),
         * and their bodies may name internal hosts: report, don't relay. */
        sl_attempts_report(&x->attempts, 0);
        sl_buf_clear(&x->resp);
        sl_exchange_fail(x, 502, "upstream_redirect", sl_exchange_headers(x, NULL),
                         "provider '%s' answered with a redirect (HTTP %d), which sluice does not follow",
                         x->prov->name, x->status);
        return;
    }
    if (r == SL_XFER_OK) {
        sl_attempts_report(&x->attempts, !sl_attempts_status_is_target_failure(x->status));
        if (sl_attempts_retry_status(&x->attempts, x->status)) {
            /* Keep this answer in case it is the last word. */
            sl_buf_free(&x->last_body);
            x->last_body = x->resp;
            memset(&x->resp, 0, sizeof x->resp);
            x->last_status = x->status;
            x->last_proto = x->up_proto;
            x->last_ctype = x->content_type; /* in the arena: it stays */
            x->last_pass = x->passthrough;
            x->last_result = SL_XFER_OK;
            char why[32];
            snprintf(why, sizeof why, "HTTP %d", x->status);
            sl_attempts_next(&x->attempts, x->prov->name, why, x->retry_after_s);
            return;
        }
        /* The final answer, success or not. */
        if (x->ttfb_ms == 0)
            x->ttfb_ms = (ev_time() - x->started) * 1000.0;
        sl_finish f = {.kind = SL_FINISH_RESPOND, .status = x->status,
                       .ctype = x->content_type ? x->content_type : "application/json",
                       .headers = sl_exchange_headers(x, x->passthrough), .body = x->resp.data,
                       .len = x->resp.len, .complete = 1};
        memset(&x->resp, 0, sizeof x->resp);
        sl_usage_counts u = {0};
        if (x->status >= 200 && x->status < 300) {
            sl_relay_cfg cfg = {.up = x->up_proto, .client = x->surface, .legacy = x->legacy,
                                .client_model = x->client_model, .guard = x->guard,
                                .gops = x->guard ? x->t->guard->ops : NULL};
            char err[256] = "";
            int rb = sl_relay_body(&cfg, &f.body, &f.len, &u, err, sizeof err);
            if (rb == -2) {
                free(f.body);
                sl_exchange_fail(x, 400, "guardrail_blocked", NULL, "%s", err);
                return;
            }
            if (rb != 0) {
                free(f.body);
                sl_exchange_fail(x, 502, "bad_upstream_response", NULL,
                                 "provider '%s' sent a response sluice cannot read: %s", x->prov->name, err);
                return;
            }
            if (x->up_proto != x->surface)
                f.ctype = "application/json";
            sl_rstate_body(x, &f.body, &f.len);
        } else {
            sl_relay_error_body(x->up_proto, x->surface, &f.status, &f.body, &f.len, &f.ctype);
        }
        f.usage = &u;
        f.delivered = f.len;
        sl_exchange_finish(x, &f);
        return;
    }
    sl_attempts_report(&x->attempts, 0);
    sl_buf_clear(&x->resp);
    /* A transport failure supersedes an older HTTP answer: the client
     * should hear about the most recent state of the world. */
    x->last_status = 0;
    x->last_result = r;
    /* A stream decoder that refused the first frames says why (a Bedrock
     * exception before any text). */
    const char *why = x->relay.detail ? x->relay.detail : why_failed(r, detail);
    if (sl_attempts_retry_xfer(&x->attempts, r)) {
        sl_attempts_next(&x->attempts, x->prov->name, why, -1);
        return;
    }
    sl_attempts_note(&x->attempts, x->prov->name, why);
    try_exhausted(x);
}

static const sl_xfer_callbacks xfer_cb = {on_head, on_data, on_done};

/* ---- connection hooks -------------------------------------------------------- */

static void hook_abort(void *ex)
{
    sl_exchange *x = ex;
    if (x->hold) {
        sl_exchange_release(x); /* settled already; only the last bytes waited */
        return;
    }
    if (x->xfer)
        try_ended(x, SL_MET_ATTEMPT_CANCELLED);
    sl_usage_counts u;
    int64_t events;
    sl_relay_usage(&x->relay, &u, &events);
    sl_finish f = {.kind = SL_FINISH_GONE, .status = 499, /* as nginx logs it */
                   .usage = &u, .events = events};
    sl_exchange_finish(x, &f);
}

static void hook_drained(void *ex)
{
    sl_exchange *x = ex;
    if (x->xfer)
        x->transport->resume(x->xfer);
}

static const sl_conn_hooks conn_hooks = {hook_abort, hook_drained};
