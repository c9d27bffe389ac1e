/*
 * Request handling from a parsed HTTP request to a finished response.
 *
 * Same-protocol traffic is a pass-through: the body goes upstream byte for
 * byte except the top-level "model" value, which is spliced in place when
 * the spec renames it. A streamed 2xx answer is relayed to the client as
 * each piece arrives; anything else (non-stream bodies, error statuses) is
 * held until complete so a failed attempt can still be retried on the next
 * target before the client has seen a byte. Once bytes have gone out, an
 * upstream failure ends the stream with an error event in the client's
 * protocol and a truncated body, never a clean-looking end.
 */
#define _GNU_SOURCE /* memmem */
#include "json/json_out.h"
#include "proxy/proxy.h"

#include <curl/curl.h>
#include <ev.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "auth/auth.h"
#include "core/buf.h"
#include "core/log.h"
#include "json/json_scan.h"
#include "providers/mock.h"
#include "proxy/legacy.h"
#include "proxy/surface.h"
#include "govern/govern.h"
#include "govern/usage.h"
#include "ledger/ledger.h"
#include "route/health.h"
#include "route/route.h"
#include "translate/translate.h"
#include "upstream/upstream.h"

#define MAX_ATTEMPTS 16
/* Largest non-streamed upstream body we hold before answering. */
#define MAX_BUFFERED_BODY (64u * 1024 * 1024)

typedef enum op_kind { OP_CHAT, OP_MESSAGES, OP_COUNT_TOKENS, OP_GEMINI, OP_EMBEDDINGS } op_kind;

typedef struct sl_exchange {
    sl_conn *conn;
    sl_worker *w;
    const sl_table *t;
    sl_arena *arena;
    op_kind op;
    sl_surface surface;
    const sl_http_request *req;
    const char *body;
    size_t body_len;
    json_t *json;
    const char *client_model;
    int stream;
    int key;

    sl_attempt plan[MAX_ATTEMPTS];
    size_t plan_len;
    size_t attempt;        /* index into plan of the current attempt */
    size_t group_start;    /* the plan's entries come in groups, one per */
    size_t group_len;      /* model entry (the entry, then its fallbacks) */
    int group_try;         /* tries made within the current group */
    int probe;             /* this attempt is a half-open circuit probe */
    ev_timer backoff;
    int tries;             /* upstream attempts made */
    /* The last retryable HTTP failure, answered unchanged if nothing
     * better comes. */
    int last_status;
    sl_proto last_proto;   /* protocol of the kept answer: it may need translating */
    sl_buf last_body;
    char last_ctype[128];
    char *last_pass;
    int retry_after_s;
    sl_xfer_result last_result;
    char failures[512];    /* "provider: reason; ..." for the final error */
    size_t failures_len;

    const sl_provider *prov;
    const char *upstream_model;
    struct curl_slist *headers;
    int headers_failed;
    sl_xfer *xfer;
    int status;
    char content_type[128];
    char *passthrough;
    sl_buf resp;           /* buffered body */
    int streaming;         /* relaying to the client */
    ev_tstamp started;
    double ttfb_ms;

    /* Governance: the reservation made at admission and what we saw. */
    int admitted;
    int ask_usage;         /* inject stream_options.include_usage once */
    int strip_usage;       /* ...and hide the usage chunk from the client */
    int xlate;             /* this attempt's provider speaks another protocol */
    int xlate_bad;         /* the upstream stream did not parse */
    int legacy;            /* /v1/completions client, served as chat */
    sl_legacy_stream legacy_stream;
    sl_proto up_proto;
    sl_stream *xstream;    /* translating stream, when xlate && stream */
    char *xbody;           /* translated request body (malloc'd) */
    sl_gov_ticket ticket;
    sl_usage_stream usage_stream;
    sl_usage_counts mock_usage;
    int accounted;
    struct hold *hold;     /* waiting for the ledger commit */
    int final_kind;        /* 1 respond, 2 stream end */
    int final_status;
    const char *final_ctype, *final_hdrs;
    char *final_body;      /* malloc'd */
    size_t final_len;
} sl_exchange;

/* The response held until its ledger row is committed. Heap-allocated
 * because the ledger may report after the client (and with it the
 * exchange's arena) is gone. */
typedef struct hold {
    sl_exchange *x;
    int cancelled;
} hold;

typedef struct proxy_worker {
    sl_router *router;
    sl_ledger_notifier *notifier;
} proxy_worker;

static sl_ledger *ledger;
static int ledger_wait = SL_LEDGER_WAIT_BUDGET; /* which responses wait for their row */

static char **provider_auth;   /* per provider: auth header line, or NULL */
static uint32_t provider_count;

/* ---- set-up ------------------------------------------------------------ */

int sl_proxy_init(const sl_table *t, const sl_proxy_options *opt, char *err, size_t errlen)
{
    ledger_wait = opt->ledger_wait;
    if (opt->state_path && *opt->state_path) {
        ledger = sl_ledger_open(opt->state_path, err, errlen);
        if (!ledger)
            return -1;
    }
    if (sl_gov_init(t, ledger ? sl_ledger_restore : NULL, ledger) != 0) {
        snprintf(err, errlen, "cannot restore spend from the ledger");
        return -1;
    }
    if (ledger && sl_ledger_start(ledger) != 0) {
        snprintf(err, errlen, "cannot start the ledger thread");
        return -1;
    }
    provider_count = t->provider_count;
    provider_auth = calloc(t->provider_count ? t->provider_count : 1, sizeof *provider_auth);
    if (!provider_auth) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < t->provider_count; i++) {
        const sl_provider *p = &t->providers[i];
        if (!p->api_key_env)
            continue;
        const char *v = getenv(p->api_key_env);
        if (!v || !*v) {
            /* Not fatal: a provider without its key fails its attempts
             * (401 upstream) and fallbacks still work. Say so once. */
            sl_log_warn("provider '%s': environment variable %s is not set", p->name,
                        p->api_key_env);
            continue;
        }
        if (strpbrk(v, "\r\n")) {
            snprintf(err, errlen, "provider '%s': %s contains a line break", p->name, p->api_key_env);
            return -1;
        }
        size_t n = strlen(v) + 32;
        provider_auth[i] = malloc(n);
        if (!provider_auth[i]) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        if (p->kind == SL_KIND_ANTHROPIC)
            snprintf(provider_auth[i], n, "x-api-key: %s", v);
        else if (p->kind == SL_KIND_GEMINI)
            snprintf(provider_auth[i], n, "x-goog-api-key: %s", v);
        else
            snprintf(provider_auth[i], n, "Authorization: Bearer %s", v);
    }
    if (sl_auth_init(t) != 0 || sl_health_init(t) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

void sl_proxy_shutdown(void)
{
    sl_ledger_close(ledger); /* flushes queued rows */
    ledger = NULL;
    sl_gov_shutdown();
    sl_auth_shutdown();
    sl_health_shutdown();
    for (uint32_t i = 0; provider_auth && i < provider_count; i++)
        free(provider_auth[i]);
    free(provider_auth);
    provider_auth = NULL;
}

static void worker_free(void *p)
{
    proxy_worker *pw = p;
    if (!pw)
        return;
    sl_router_free(pw->router);
    sl_ledger_notifier_detach(pw->notifier);
    free(pw);
}

void sl_proxy_worker_init(sl_worker *w)
{
    proxy_worker *pw = calloc(1, sizeof *pw);
    if (pw) {
        pw->router = sl_router_new(sl_worker_table(w));
        if (ledger)
            pw->notifier = sl_ledger_notifier_new(ledger, sl_worker_loop(w));
    }
    sl_worker_set_proxy_state(w, pw, worker_free);
}

/* ---- small helpers ------------------------------------------------------ */

static int path_is(const sl_http_request *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

static void access_log(sl_exchange *x, int status)
{
    if (!sl_log_access)
        return;
    char line[512];
    double ms = (ev_time() - x->started) * 1000.0;
    const sl_http_request *r = x->req;
    int n = snprintf(line, sizeof line, "%s %.*s %.*s %d model=%s provider=%s upstream_model=%s attempts=%d ms=%.1f",
                     sl_conn_peer(x->conn), (int)r->method_len, r->method_str, (int)r->path_len,
                     r->path, status, x->client_model ? x->client_model : "-",
                     x->prov ? x->prov->name : "-", x->upstream_model ? x->upstream_model : "-",
                     x->tries, ms);
    if (x->key >= 0 && n > 0 && (size_t)n < sizeof line)
        n += snprintf(line + n, sizeof line - (size_t)n, " key=%s", x->t->keys[x->key].name);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    sl_log_access_line(line, n);
}

static void exchange_release(sl_exchange *x)
{
    ev_timer_stop(sl_worker_loop(x->w), &x->backoff);
    if (x->xfer) {
        sl_xfer_cancel(x->xfer);
        x->xfer = NULL;
    }
    sl_buf_free(&x->last_body);
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    sl_buf_free(&x->resp);
    sl_usage_stream_free(&x->usage_stream);
    sl_stream_free(x->xstream);
    x->xstream = NULL;
    free(x->xbody);
    x->xbody = NULL;
    sl_legacy_stream_free(&x->legacy_stream);
    if (x->json) {
        json_decref(x->json);
        x->json = NULL;
    }
}

/* ---- accounting ---------------------------------------------------------
 *
 * Every admitted request is settled exactly once: its reservation is
 * replaced by the real cost (or, when the provider reported nothing, an
 * estimate from what was delivered) and one ledger row is queued. */

static int64_t estimate_input_tokens(const sl_exchange *x)
{
    return (int64_t)((x->body_len + 3) / 4);
}

static sl_ledger_row *account(sl_exchange *x, int status, const sl_usage_counts *seen, int complete)
{
    if (!x->admitted || x->accounted)
        return NULL;
    x->accounted = 1;
    sl_usage_counts u = {0};
    int estimated = 0;
    if (seen && seen->have) {
        u = *seen;
        /* A stream cut short reports only what its first event said
         * (Anthropic's message_start says output_tokens: 1): charge at
         * least one token per event that went out. */
        if (x->streaming && !complete && u.output < x->usage_stream.events) {
            u.output = x->usage_stream.events;
            estimated = 1;
        }
    } else if (x->streaming) {
        /* Cut short without a usage report: charge what went out. */
        u.input = estimate_input_tokens(x);
        u.output = x->usage_stream.u.output ? x->usage_stream.u.output : (int64_t)x->usage_stream.events;
        estimated = 1;
    }
    int priced = 0;
    int64_t cost = 0;
    if (x->prov)
        cost = sl_gov_cost(x->t, (uint16_t)(x->prov - x->t->providers), x->upstream_model, &u, &priced);
    int64_t tokens = u.input + u.output + u.cache_read + u.cache_write;
    sl_gov_settle(&x->ticket, cost, tokens, (int64_t)time(NULL));

    sl_ledger_row *r = sl_arena_alloc(x->arena, sizeof *r);
    if (!r)
        return NULL;
    memset(r, 0, sizeof *r);
    r->ts_ms = (int64_t)(x->started * 1000.0);
    if (x->key >= 0) {
        const sl_key *k = &x->t->keys[x->key];
        snprintf(r->key, sizeof r->key, "%s", k->name);
        if (k->team >= 0)
            snprintf(r->team, sizeof r->team, "%s", x->t->teams[k->team].name);
    }
    snprintf(r->model, sizeof r->model, "%s", x->client_model ? x->client_model : "");
    snprintf(r->provider, sizeof r->provider, "%s", x->prov ? x->prov->name : "");
    snprintf(r->upstream_model, sizeof r->upstream_model, "%s", x->upstream_model ? x->upstream_model : "");
    r->status = status;
    r->input_tokens = u.input;
    r->output_tokens = u.output;
    r->cache_read_tokens = u.cache_read;
    r->cache_write_tokens = u.cache_write;
    r->cost_micros = cost;
    r->latency_ms = (ev_time() - x->started) * 1000.0;
    r->ttfb_ms = x->ttfb_ms;
    r->attempts = x->tries;
    r->stream = x->stream;
    r->estimated = estimated;
    return r;
}

static int key_has_budget(const sl_table *t, int key)
{
    if (key < 0)
        return 0;
    const sl_key *k = &t->keys[key];
    return k->budget.per != SL_PERIOD_NONE ||
           (k->team >= 0 && t->teams[k->team].budget.per != SL_PERIOD_NONE);
}

static sl_ledger_notifier *worker_notifier(sl_exchange *x)
{
    proxy_worker *pw = sl_worker_proxy_state(x->w);
    return pw ? pw->notifier : NULL;
}

/* Queue the row without waiting (failures, aborted requests). */
static void record(sl_exchange *x, int status, const sl_usage_counts *seen)
{
    sl_ledger_row *r = account(x, status, seen, 0);
    if (r && ledger)
        sl_ledger_submit(ledger, r, NULL, NULL, NULL);
}

static void complete(sl_exchange *x)
{
    sl_conn *c = x->conn;
    int kind = x->final_kind;
    int status = x->final_status;
    const char *ct = x->final_ctype, *hdrs = x->final_hdrs;
    char *body = x->final_body;
    size_t len = x->final_len;
    x->final_body = NULL;
    exchange_release(x);
    if (kind == 1) {
        sl_conn_respond(c, status, ct, hdrs, body ? body : "", len);
        free(body);
    } else {
        sl_conn_stream_end(c, 1);
    }
}

static void hold_done(void *ctx)
{
    hold *h = ctx;
    if (!h->cancelled) {
        h->x->hold = NULL;
        complete(h->x);
    }
    free(h);
}

/* A successful answer: settle, then send the last bytes once the ledger row
 * is committed (or at once when there is no ledger). */
static void deliver(sl_exchange *x, const sl_usage_counts *seen)
{
    sl_ledger_row *r = account(x, x->final_status, seen, 1);
    sl_ledger_notifier *n = worker_notifier(x);
    int wait = ledger_wait == SL_LEDGER_WAIT_ALL ||
               (ledger_wait == SL_LEDGER_WAIT_BUDGET && key_has_budget(x->t, x->key));
    if (r && ledger && wait && n &&
        (r->input_tokens + r->output_tokens + r->cache_read_tokens + r->cache_write_tokens) > 0) {
        hold *h = malloc(sizeof *h);
        if (h) {
            h->x = x;
            h->cancelled = 0;
            if (sl_ledger_submit(ledger, r, n, hold_done, h) == 0) {
                x->hold = h;
                return;
            }
            free(h);
        }
    }
    if (r && ledger)
        sl_ledger_submit(ledger, r, NULL, NULL, NULL);
    complete(x);
}

/* Headers sluice adds to every routed answer. */
static const char *sluice_headers(sl_exchange *x, const char *extra)
{
    const sl_model_entry *e = x->plan_len ? &x->t->models[x->plan[x->attempt].entry] : NULL;
    return sl_arena_printf(x->arena, "x-sluice-model: %s\r\nx-sluice-provider: %s\r\nx-sluice-attempts: %d\r\n%s",
                           e ? e->name : "-", x->prov ? x->prov->name : "-", x->tries,
                           extra ? extra : "");
}

static void fail(sl_exchange *x, int status, const char *code, const char *fmt, const char *arg)
{
    char msg[768];
    snprintf(msg, sizeof msg, fmt, arg);
    access_log(x, status);
    sl_conn *c = x->conn;
    sl_surface s = x->surface;
    const char *hdrs = x->plan_len ? sluice_headers(x, NULL) : NULL;
    record(x, status, NULL);
    exchange_release(x);
    sl_surface_error(c, s, status, code, hdrs, "%s", msg);
}

/* ---- attempts ------------------------------------------------------------
 *
 * The plan lists (entry, target) pairs grouped by entry: the requested
 * entry first, then its fallbacks. Within a group a failed try is retried
 * (up to the entry's `retry.attempts`) on the next target in rotation after
 * an exponential backoff with jitter, honouring Retry-After up to the cap;
 * when the group is spent, the next group (fallback) starts at once.
 * Targets whose circuit is open are skipped unless nothing else is left,
 * because a degraded answer beats none. */

static void start_attempt(sl_exchange *x);
static void choose_and_start(sl_exchange *x);

/* Which provider kinds can serve which operation. Chat-style operations
 * translate between protocols; embeddings exist only on OpenAI-kind
 * providers; the mock answers OpenAI and Anthropic clients. */
static int kind_serves(sl_kind k, op_kind op)
{
    switch (op) {
    case OP_EMBEDDINGS: return k == SL_KIND_OPENAI;
    case OP_GEMINI: return k != SL_KIND_MOCK;
    default: return 1;
    }
}

static sl_proto kind_proto(sl_kind k)
{
    return k == SL_KIND_ANTHROPIC ? SL_PROTO_ANTHROPIC : k == SL_KIND_GEMINI ? SL_PROTO_GEMINI
                                                                             : SL_PROTO_OPENAI;
}

static sl_usage_counts counts_from(const sl_usage *u)
{
    sl_usage_counts c = {.input = u->input_tokens, .output = u->output_tokens,
                         .cache_read = u->cache_read_tokens, .cache_write = u->cache_write_tokens,
                         .have = u->have};
    return c;
}

static int retryable_status(const sl_model_entry *e, int status)
{
    if (status < 0 || status >= 640)
        return 0;
    return (e->retry.status_bits[status / 64] >> (status % 64)) & 1;
}

static int retryable_result(const sl_model_entry *e, sl_xfer_result r)
{
    switch (r) {
    case SL_XFER_CONNECT:
    case SL_XFER_RESET:
        return e->retry.on_connect;
    case SL_XFER_TIMEOUT_FIRST_BYTE:
    case SL_XFER_TIMEOUT_TOTAL:
    case SL_XFER_TIMEOUT_IDLE:
        return e->retry.on_timeout;
    default:
        return 0;
    }
}

/* Does this status say the target itself is unwell (circuit breaker)? */
static int status_is_target_failure(int status)
{
    return status >= 500 || status == 429 || status == 408;
}

static const sl_model_entry *cur_entry(sl_exchange *x)
{
    return &x->t->models[x->plan[x->attempt].entry];
}

static void health_report(sl_exchange *x, int ok)
{
    const sl_model_entry *e = cur_entry(x);
    sl_health_report(x->plan[x->attempt].target, ok, x->probe, sl_health_now_ms(),
                     e->cooldown_failures, e->cooldown_ms);
    x->probe = 0;
}

static void note_failure(sl_exchange *x, const char *why)
{
    if (x->failures_len >= sizeof x->failures - 1)
        return;
    int n = snprintf(x->failures + x->failures_len, sizeof x->failures - x->failures_len, "%s%s: %s",
                     x->failures_len ? "; " : "", x->prov ? x->prov->name : "?", why);
    if (n > 0)
        x->failures_len += (size_t)n;
    if (x->failures_len >= sizeof x->failures)
        x->failures_len = sizeof x->failures - 1;
}

static size_t group_length(const sl_exchange *x, size_t start)
{
    size_t n = 0;
    while (start + n < x->plan_len && x->plan[start + n].entry == x->plan[start].entry)
        n++;
    return n;
}

static uint32_t backoff_ms(sl_exchange *x, int n)
{
    static _Thread_local unsigned seed;
    if (!seed)
        seed = (unsigned)(uintptr_t)x ^ (unsigned)sl_health_now_ms();
    return sl_route_backoff_ms(&cur_entry(x)->retry, n, x->retry_after_s, &seed);
}

static void backoff_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_exchange *x = t->data;
    choose_and_start(x);
}

/* Answers with the best failure we have: the last upstream HTTP answer
 * unchanged, or sluice's own 502/504 naming every failed attempt. */
static void finish_failed(sl_exchange *x)
{
    if (x->last_status) {
        sl_conn *c = x->conn;
        const char *ct = x->last_ctype[0] ? x->last_ctype : "application/json";
        const char *hdrs = sluice_headers(x, x->last_pass);
        access_log(x, x->last_status);
        int status = x->last_status;
        char *body = x->last_body.data;
        size_t len = x->last_body.len;
        x->last_body.data = NULL;
        x->last_body.len = x->last_body.cap = x->last_body.off = 0;
        if (x->last_proto != (sl_proto)x->surface) {
            /* The client speaks another protocol than the provider that
             * had the last word: the same translation a final answer gets. */
            int st = status;
            char *tb = sl_translate_error(x->last_proto, (sl_proto)x->surface, status, body ? body : "", len, &st);
            if (tb) {
                free(body);
                body = tb;
                len = strlen(tb);
                status = st;
                ct = "application/json";
            }
        }
        record(x, status, NULL);
        exchange_release(x);
        sl_conn_respond(c, status, ct, hdrs, body ? body : "", len);
        free(body);
        return;
    }
    int timeout = x->last_result == SL_XFER_TIMEOUT_FIRST_BYTE ||
                  x->last_result == SL_XFER_TIMEOUT_IDLE || x->last_result == SL_XFER_TIMEOUT_TOTAL;
    fail(x, timeout ? 504 : 502, "upstream_failed", "all upstream attempts failed: %s", x->failures);
}

/* After a retryable failure: retry within the entry, move to the next
 * fallback entry, or give up. */
static void after_failure(sl_exchange *x)
{
    curl_slist_free_all(x->headers);
    x->headers = NULL;
    const sl_model_entry *e = cur_entry(x);
    x->group_try++;
    if (x->group_try <= (int)e->retry.attempts) {
        uint32_t d = backoff_ms(x, x->group_try - 1);
        x->retry_after_s = -1;
        ev_timer_set(&x->backoff, (double)d / 1000.0, 0.);
        ev_timer_start(sl_worker_loop(x->w), &x->backoff);
        return;
    }
    x->group_start += x->group_len;
    if (x->group_start >= x->plan_len) {
        finish_failed(x);
        return;
    }
    x->group_len = group_length(x, x->group_start);
    x->group_try = 0;
    x->retry_after_s = -1;
    choose_and_start(x);
}

static int later_group_usable(sl_exchange *x, int64_t now)
{
    for (size_t i = x->group_start + x->group_len; i < x->plan_len; i++)
        if (sl_health_usable(x->plan[i].target, now))
            return 1;
    return 0;
}

static void choose_and_start(sl_exchange *x)
{
    int64_t now = sl_health_now_ms();
    for (;;) {
        for (size_t k = 0; k < x->group_len; k++) {
            size_t idx = x->group_start + ((size_t)x->group_try + k) % x->group_len;
            int probe = 0;
            if (sl_health_acquire(x->plan[idx].target, now, &probe)) {
                x->attempt = idx;
                x->probe = probe;
                start_attempt(x);
                return;
            }
        }
        /* Every target of this entry is cooling down. */
        if (!later_group_usable(x, now))
            break;
        note_failure(x, "all targets cooling down");
        x->group_start += x->group_len;
        x->group_len = group_length(x, x->group_start);
        x->group_try = 0;
    }
    x->attempt = x->group_start + (size_t)x->group_try % x->group_len;
    x->probe = 0;
    start_attempt(x);
}

static void on_head(void *ctx, const sl_xfer_head *h)
{
    sl_exchange *x = ctx;
    x->status = h->status;
    x->content_type[0] = '\0';
    if (h->content_type)
        snprintf(x->content_type, sizeof x->content_type, "%s", h->content_type);
    x->passthrough = sl_arena_strndup(x->arena, h->passthrough, h->passthrough_len);
    x->retry_after_s = h->retry_after_s;
}

/* Client bytes out of the stream translator, rewritten once more for
 * legacy completions clients. -1 when the client is gone. */
static int write_translated(sl_exchange *x, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (!x->legacy)
        return sl_conn_stream_write(x->conn, p, n);
    sl_buf lo = {0};
    sl_legacy_stream_feed(&x->legacy_stream, p, n, &lo);
    int wr = lo.len ? sl_conn_stream_write(x->conn, lo.data, lo.len) : 0;
    sl_buf_free(&lo);
    return wr;
}

static size_t on_data(void *ctx, const char *p, size_t n)
{
    sl_exchange *x = ctx;
    int relay = x->stream && x->status >= 200 && x->status < 300;
    if (!relay) {
        if (x->resp.len + n > MAX_BUFFERED_BODY || sl_buf_append(&x->resp, p, n) != 0)
            return 0;
        return n;
    }
    if (x->xstream) {
        /* Translate event by event; send whatever complete client events
         * came out. Nothing is sent until the first one exists. */
        if (sl_conn_out_pending(x->conn) > SL_CONN_HIGH_WATER)
            return SL_XFER_PAUSE;
        sl_buf out = {0};
        sl_usage_stream_feed(&x->usage_stream, p, n); /* event count: a charge floor */
        int rc = sl_stream_feed(x->xstream, p, n, &out);
        if (rc != 0) {
            sl_buf_free(&out);
            x->xlate_bad = 1;
            return 0;
        }
        if (out.len > 0) {
            if (!x->streaming) {
                x->streaming = 1;
                x->ttfb_ms = (ev_time() - x->started) * 1000.0;
                if (sl_conn_stream_begin(x->conn, x->status, "text/event-stream",
                                         sluice_headers(x, x->passthrough)) != 0) {
                    sl_buf_free(&out);
                    return 0;
                }
            }
            int wr = write_translated(x, out.data, out.len);
            sl_buf_free(&out);
            if (wr != 0)
                return 0;
        }
        return n;
    }
    if (!x->streaming) {
        /* First upstream bytes of a good stream: commit to this attempt.
         * From here on a failure can no longer move to another target. */
        x->streaming = 1;
        x->ttfb_ms = (ev_time() - x->started) * 1000.0;
        const char *ct = x->content_type[0] ? x->content_type : "text/event-stream";
        if (sl_conn_stream_begin(x->conn, x->status, ct, sluice_headers(x, x->passthrough)) != 0)
            return 0;
    }
    if (sl_conn_out_pending(x->conn) > SL_CONN_HIGH_WATER)
        return SL_XFER_PAUSE;
    if (x->strip_usage && x->up_proto == SL_PROTO_OPENAI) {
        sl_buf keep = {0};
        int rc = sl_usage_stream_relay(&x->usage_stream, p, n, &keep);
        int wr = rc == 0 && keep.len ? sl_conn_stream_write(x->conn, keep.data, keep.len) : 0;
        sl_buf_free(&keep);
        return rc == 0 && wr == 0 ? n : 0;
    }
    if (sl_conn_stream_write(x->conn, p, n) != 0)
        return 0; /* client gone: the abort hook follows from the loop */
    sl_usage_stream_feed(&x->usage_stream, p, n);
    return n;
}

static void on_done(void *ctx, sl_xfer_result r, const char *detail)
{
    sl_exchange *x = ctx;
    x->xfer = NULL;
    const sl_model_entry *e = cur_entry(x);
    if (x->streaming) {
        sl_conn *c = x->conn;
        int clean = r == SL_XFER_OK && !x->xlate_bad;
        if (clean && x->xstream) {
            sl_buf out = {0};
            int fin = sl_stream_finish(x->xstream, &out);
            write_translated(x, out.data, out.len);
            sl_buf_free(&out);
            if (fin != 0)
                clean = 0;
        }
        health_report(x, clean);
        if (clean) {
            access_log(x, x->status);
            x->final_kind = 2;
            x->final_status = x->status;
            if (x->xstream) {
                sl_usage_counts u = counts_from(sl_stream_usage(x->xstream));
                deliver(x, &u);
            } else {
                deliver(x, &x->usage_stream.u);
            }
            return;
        }
        char ev[1024], msg[256];
        snprintf(msg, sizeof msg, "upstream stream from provider '%s' failed: %s", x->prov->name,
                 x->xlate_bad ? "malformed stream"
                 : r == SL_XFER_OK ? "truncated stream" : sl_xfer_result_name(r));
        size_t n = sl_surface_stream_error(x->surface, msg, ev, sizeof ev);
        sl_log_warn("%s", msg);
        access_log(x, 502);
        if (x->xstream) {
            sl_usage_counts u = counts_from(sl_stream_usage(x->xstream));
            record(x, 502, &u);
        } else {
            record(x, 502, &x->usage_stream.u);
        }
        exchange_release(x);
        sl_conn_stream_write(c, ev, n);
        sl_conn_stream_end(c, 0);
        return;
    }
    if (r == SL_XFER_OK && x->status >= 300 && x->status < 400) {
        /* Redirects are never followed (the spec alone names upstreams),
         * and their bodies may name internal hosts: report, don't relay. */
        char msg[160];
        snprintf(msg, sizeof msg, "provider '%s' answered with a redirect (HTTP %d), which sluice does not follow",
                 x->prov->name, x->status);
        health_report(x, 0);
        sl_buf_clear(&x->resp);
        fail(x, 502, "upstream_redirect", "%s", msg);
        return;
    }
    if (r == SL_XFER_OK) {
        health_report(x, !status_is_target_failure(x->status));
        if (retryable_status(e, x->status)) {
            char why[32];
            snprintf(why, sizeof why, "HTTP %d", x->status);
            note_failure(x, why);
            /* Keep this answer in case it is the last word. */
            sl_buf_free(&x->last_body);
            x->last_body = x->resp;
            memset(&x->resp, 0, sizeof x->resp);
            x->last_status = x->status;
            x->last_proto = x->up_proto;
            snprintf(x->last_ctype, sizeof x->last_ctype, "%s", x->content_type);
            x->last_pass = x->passthrough;
            x->last_result = SL_XFER_OK;
            after_failure(x);
            return;
        }
        /* Final answer, success or not: status and body unchanged. */
        if (x->ttfb_ms == 0)
            x->ttfb_ms = (ev_time() - x->started) * 1000.0;
        access_log(x, x->status);
        x->final_kind = 1;
        x->final_status = x->status;
        x->final_ctype = x->content_type[0] ? x->content_type : "application/json";
        x->final_hdrs = sluice_headers(x, x->passthrough);
        x->final_body = x->resp.data;
        x->final_len = x->resp.len;
        x->resp.data = NULL;
        x->resp.len = x->resp.cap = x->resp.off = 0;
        sl_usage_counts u = {0};
        if (x->status >= 200 && x->status < 300)
            sl_usage_from_body(x->final_body ? x->final_body : "", x->final_len, &u);
        if (x->xlate && x->op != OP_COUNT_TOKENS) {
            char err[256] = "";
            char *tb;
            if (x->status >= 200 && x->status < 300) {
                sl_usage uu = {0};
                if (sl_translate_usage(x->up_proto, x->final_body ? x->final_body : "", x->final_len, &uu) == 0)
                    u = counts_from(&uu);
                tb = sl_translate_response(x->up_proto, (sl_proto)x->surface,
                                           x->final_body ? x->final_body : "", x->final_len,
                                           x->client_model, err, sizeof err);
                if (!tb) {
                    char msg[400];
                    snprintf(msg, sizeof msg, "provider '%s' sent a response sluice cannot read: %s",
                             x->prov->name, err);
                    free(x->final_body);
                    x->final_body = NULL;
                    fail(x, 502, "bad_upstream_response", "%s", msg);
                    return;
                }
            } else {
                int st = x->status;
                tb = sl_translate_error(x->up_proto, (sl_proto)x->surface, x->status,
                                        x->final_body ? x->final_body : "", x->final_len, &st);
                x->final_status = st;
            }
            if (tb) {
                free(x->final_body);
                x->final_body = tb;
                x->final_len = strlen(tb);
                x->final_ctype = "application/json";
            }
        }
        if (x->legacy && x->status >= 200 && x->status < 300) {
            char *lb = sl_legacy_from_chat(x->final_body ? x->final_body : "", x->final_len);
            if (lb) {
                free(x->final_body);
                x->final_body = lb;
                x->final_len = strlen(lb);
            }
        }
        deliver(x, &u);
        return;
    }
    health_report(x, 0);
    note_failure(x, sl_xfer_result_name(r));
    (void)detail;
    sl_buf_clear(&x->resp);
    /* A transport failure supersedes an older HTTP answer: the client
     * should hear about the most recent state of the world. */
    x->last_status = 0;
    x->last_result = r;
    if (retryable_result(e, r)) {
        after_failure(x);
        return;
    }
    finish_failed(x);
}

static const sl_xfer_callbacks xfer_cb = {on_head, on_data, on_done};

static void hook_abort(void *ex)
{
    sl_exchange *x = ex;
    if (x->hold) {
        /* Already settled; only the last bytes were waiting. */
        x->hold->cancelled = 1;
        x->hold = NULL;
        free(x->final_body);
        x->final_body = NULL;
        exchange_release(x);
        return;
    }
    access_log(x, 499); /* client closed the connection, as nginx logs it */
    if (x->plan_len)
        sl_health_abandon(x->plan[x->attempt].target, x->probe);
    record(x, 499, &x->usage_stream.u);
    exchange_release(x);
}

static void hook_drained(void *ex)
{
    sl_exchange *x = ex;
    if (x->xfer)
        sl_xfer_resume(x->xfer);
}

static const sl_conn_hooks conn_hooks = {hook_abort, hook_drained};

/* The body to send upstream: the client's bytes with the model replaced
 * when the spec renames it. */
static int upstream_body(sl_exchange *x, const char **out, size_t *out_len)
{
    if (x->ask_usage) {
        /* OpenAI streams report usage only when asked; the ledger needs
         * it. Insert the member right after the opening brace, leaving
         * every other byte alone. */
        static const char opt[] = "\"stream_options\":{\"include_usage\":true},";
        const char *b = x->body;
        size_t n = x->body_len, i = 0;
        while (i < n && b[i] != '{')
            i++;
        if (i < n) {
            char *nb = sl_arena_alloc(x->arena, n + sizeof opt);
            if (!nb)
                return -1;
            memcpy(nb, b, i + 1);
            memcpy(nb + i + 1, opt, sizeof opt - 1);
            memcpy(nb + i + sizeof opt, b + i + 1, n - i - 1);
            x->body = nb;
            x->body_len = n + sizeof opt - 1;
            nb[x->body_len] = '\0';
        }
        x->ask_usage = 0;
    }
    if (strcmp(x->upstream_model, x->client_model) == 0) {
        *out = x->body;
        *out_len = x->body_len;
        return 0;
    }
    size_t s, e;
    char *quoted = sl_json_quote(x->arena, x->upstream_model, strlen(x->upstream_model));
    if (!quoted)
        return -1;
    if (sl_json_find_member(x->body, x->body_len, "model", &s, &e) == 0) {
        char *b = sl_json_splice(x->arena, x->body, x->body_len, s, e, quoted, strlen(quoted), out_len);
        *out = b;
        return b ? 0 : -1;
    }
    /* Escaped member names: re-serialise (rare; keeps correctness). */
    json_object_set_new(x->json, "model", json_string(x->upstream_model));
    char *js = sl_json_dumps(x->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!js)
        return -1;
    *out_len = strlen(js);
    *out = sl_arena_strndup(x->arena, js, *out_len);
    free(js);
    return *out ? 0 : -1;
}

/* Appends a header line; on allocation failure the list is kept and the
 * attempt is marked so it fails instead of going out without, say, the
 * provider key or Content-Type. */
static void add_header(sl_exchange *x, const char *line)
{
    struct curl_slist *l = line ? curl_slist_append(x->headers, line) : NULL;
    if (l)
        x->headers = l;
    else
        x->headers_failed = 1;
}

static void forward_header(sl_exchange *x, const char *name)
{
    const sl_http_header *h = sl_http_find_header(x->req, name);
    if (!h)
        return;
    add_header(x, sl_arena_printf(x->arena, "%s: %.*s", name, (int)h->value_len, h->value));
}

static void start_attempt(sl_exchange *x)
{
    const sl_attempt *a = &x->plan[x->attempt];
    const sl_target *tg = &x->t->targets[a->target];
    x->prov = &x->t->providers[tg->provider];
    /* No model on the target: the entry's own name for exact entries (a
     * fallback to `gpt-4o-mini` asks for gpt-4o-mini), the client's name
     * for globs. */
    const sl_model_entry *e = &x->t->models[a->entry];
    x->upstream_model = tg->model ? tg->model : e->is_glob ? x->client_model : e->name;
    x->status = 0;

    if (x->prov->kind == SL_KIND_MOCK) {
        x->tries++;
        sl_mock_op op = x->legacy ? SL_MOCK_COMPLETIONS
                        : x->op == OP_CHAT ? SL_MOCK_CHAT
                        : x->op == OP_MESSAGES ? SL_MOCK_MESSAGES : SL_MOCK_COUNT_TOKENS;
        sl_mock_usage usage;
        const char *hdrs = sluice_headers(x, NULL);
        sl_conn *c = x->conn;
        sl_conn_set_exchange(c, NULL, NULL);
        access_log(x, 200);
        json_t *json = json_incref(x->json);
        const char *model = x->upstream_model;
        size_t body_len = x->body_len;
        exchange_release(x);
        sl_mock_respond(c, op, json, model, body_len, hdrs, &usage);
        sl_usage_counts u = {.input = usage.input_tokens, .output = usage.output_tokens, .have = 1};
        record(x, 200, &u);
        json_decref(json);
        return;
    }

    x->up_proto = kind_proto(x->prov->kind);
    x->xlate = x->up_proto != (sl_proto)x->surface;
    x->xlate_bad = 0;
    sl_stream_free(x->xstream);
    x->xstream = NULL;

    if (x->op == OP_COUNT_TOKENS && x->up_proto != SL_PROTO_ANTHROPIC) {
        /* Only Anthropic counts tokens for us; elsewhere say an estimate. */
        x->tries++;
        char body[64];
        int n = snprintf(body, sizeof body, "{\"input_tokens\":%ld}", sl_translate_estimate_tokens(x->json));
        access_log(x, 200);
        sl_conn *c = x->conn;
        const char *hdrs = sluice_headers(x, "x-sluice-estimate: true\r\n");
        record(x, 200, NULL);
        exchange_release(x);
        sl_conn_respond(c, 200, "application/json", hdrs, body, (size_t)n);
        return;
    }

    const char *body;
    size_t body_len;
    if (x->xlate) {
        char err[256] = "";
        free(x->xbody);
        x->xbody = sl_translate_request((sl_proto)x->surface, x->up_proto, x->json, x->upstream_model,
                                        x->stream, err, sizeof err);
        if (!x->xbody) {
            fail(x, 400, "invalid_request", "%s", err[0] ? err : "request cannot be translated");
            return;
        }
        body = x->xbody;
        body_len = strlen(x->xbody);
        if (x->stream) {
            /* created below for legacy and translated streams alike */
        }
    } else if (x->up_proto == SL_PROTO_GEMINI) {
        body = x->body; /* the model is in the URL */
        body_len = x->body_len;
    } else if (upstream_body(x, &body, &body_len) != 0) {
        fail(x, 500, NULL, "%s", "out of memory");
        return;
    }
    if (x->stream && (x->xlate || x->legacy)) {
        {
            x->xstream = sl_stream_new(x->up_proto, (sl_proto)x->surface, x->client_model);
            if (!x->xstream) {
                fail(x, 500, NULL, "%s", "out of memory");
                return;
            }
            if (x->surface == SL_SURFACE_OPENAI &&
                !json_is_true(json_object_get(json_object_get(x->json, "stream_options"), "include_usage")))
                sl_stream_set_openai_usage_chunk(x->xstream, 0);
        }
    }
    const char *url;
    const char *base = x->prov->base_url;
    switch (x->up_proto) {
    case SL_PROTO_OPENAI:
        url = sl_arena_printf(x->arena, "%s%s", base, x->op == OP_EMBEDDINGS ? "/embeddings" : "/chat/completions");
        break;
    case SL_PROTO_ANTHROPIC: {
        const char *path = x->op == OP_COUNT_TOKENS ? "/v1/messages/count_tokens" : "/v1/messages";
        if (x->surface == SL_SURFACE_ANTHROPIC && x->req->query_len > 0)
            url = sl_arena_printf(x->arena, "%s%s?%.*s", base, path, (int)x->req->query_len, x->req->query);
        else
            url = sl_arena_printf(x->arena, "%s%s", base, path);
        break;
    }
    default: {
        /* Model names are URL path segments here: escape what could
         * change the path (the spec and lookup already bound the name). */
        char *esc = curl_easy_escape(NULL, x->upstream_model, 0);
        url = esc ? sl_arena_printf(x->arena, "%s/v1beta/models/%s:%s", base, esc,
                                    x->stream ? "streamGenerateContent?alt=sse" : "generateContent")
                  : NULL;
        curl_free(esc);
        break;
    }
    }
    if (!url) {
        fail(x, 500, NULL, "%s", "out of memory");
        return;
    }

    curl_slist_free_all(x->headers);
    x->headers = NULL;
    x->headers_failed = 0;
    add_header(x, "Content-Type: application/json");
    /* curl would otherwise send Expect: 100-continue for large bodies and
     * wait a round trip (or a second) for an answer. */
    add_header(x, "Expect:");
    add_header(x, "User-Agent: sluice/" SLUICE_VERSION);
    if (x->stream)
        add_header(x, "Accept: text/event-stream");
    if (provider_auth[tg->provider])
        add_header(x, provider_auth[tg->provider]);
    if (x->prov->kind == SL_KIND_ANTHROPIC) {
        if (x->surface == SL_SURFACE_ANTHROPIC && sl_http_find_header(x->req, "anthropic-version"))
            forward_header(x, "anthropic-version");
        else
            add_header(x, "anthropic-version: 2023-06-01");
        if (x->surface == SL_SURFACE_ANTHROPIC)
            forward_header(x, "anthropic-beta");
    }
    if (!x->headers || x->headers_failed) {
        fail(x, 500, NULL, "%s", "out of memory");
        return;
    }
    sl_xfer_spec spec = {
        .url = url,
        .headers = x->headers,
        .body = body,
        .body_len = body_len,
        .connect_ms = x->prov->connect_ms,
        .first_byte_ms = x->prov->first_byte_ms,
        .idle_ms = x->prov->idle_ms,
        .total_ms = x->prov->total_ms,
    };
    x->tries++;
    x->xfer = sl_xfer_start(sl_worker_upstream(x->w), &spec, &xfer_cb, x);
    if (!x->xfer)
        fail(x, 500, NULL, "%s", "cannot start upstream request");
}

/* ---- fixed endpoints ----------------------------------------------------- */

/* A 200 with `body` (consumed) as compact JSON, member order kept. */
static void respond_json_body(sl_conn *c, json_t *body)
{
    char *js = sl_json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(body);
    if (!js) {
        sl_surface_error(c, SL_SURFACE_OPENAI, 500, NULL, NULL, "out of memory");
        return;
    }
    sl_conn_respond(c, 200, "application/json", NULL, js, strlen(js));
    free(js);
}

/* GET /healthz: liveness plus the spec's identity; `?detail=1` adds each
 * target's circuit state so operators can see what is cooling down. */
static void respond_healthz(sl_conn *c, const sl_table *t, const sl_http_request *req)
{
    json_t *body = json_pack("{s:s,s:s,s:s,s:i,s:i}", "status", "ok", "version", SLUICE_VERSION,
                             "spec_sha256", t->spec_sha256, "providers", (json_int_t)t->provider_count,
                             "models", (json_int_t)t->model_count);
    if (req->query_len >= 6 && memmem(req->query, req->query_len, "detail", 6)) {
        static const char *const names[] = {"ok", "cooling", "probing"};
        json_t *arr = json_array();
        int64_t now = sl_health_now_ms();
        for (uint32_t m = 0; m < t->model_count; m++) {
            const sl_model_entry *e = &t->models[m];
            for (uint32_t i = e->target_first; i < e->target_first + e->target_count; i++) {
                uint32_t fails;
                int64_t remaining;
                sl_health_state st = sl_health_state_of(i, now, &fails, &remaining);
                const sl_target *tg = &t->targets[i];
                json_array_append_new(arr, json_pack("{s:s,s:s,s:s?,s:s,s:i,s:i}", "model", e->name,
                                                     "provider", t->providers[tg->provider].name,
                                                     "upstream_model", tg->model, "state", names[st],
                                                     "consecutive_failures", (json_int_t)fails,
                                                     "cooldown_remaining_ms", (json_int_t)remaining));
            }
        }
        json_object_set_new(body, "targets", arr);
    }
    respond_json_body(c, body);
}

/* GET /v1/models: the exact (non-glob) entries, in the shape of the
 * surface the client speaks (Anthropic when it sends anthropic-version). */
static void respond_models(sl_conn *c, const sl_table *t, int anthropic)
{
    json_t *data = json_array();
    for (uint32_t i = 0; i < t->model_count; i++) {
        const sl_model_entry *e = &t->models[i];
        if (e->is_glob)
            continue;
        if (anthropic)
            json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:s}", "type", "model", "id", e->name,
                                                  "display_name", e->name, "created_at",
                                                  "1970-01-01T00:00:00Z"));
        else
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", e->name, "object",
                                                  "model", "created", 0, "owned_by", "sluice"));
    }
    json_t *body;
    if (anthropic) {
        size_t n = json_array_size(data);
        json_t *first = n ? json_object_get(json_array_get(data, 0), "id") : NULL;
        json_t *last = n ? json_object_get(json_array_get(data, n - 1), "id") : NULL;
        body = json_pack("{s:o,s:b,s:O?,s:O?}", "data", data, "has_more", 0, "first_id", first,
                         "last_id", last);
    } else {
        body = json_pack("{s:s,s:o}", "object", "list", "data", data);
    }
    respond_json_body(c, body);
}

/* ---- admin API ---------------------------------------------------------
 *
 * Exists only when the spec has `admin:`; authenticated by the admin key,
 * which is not a client key, so it cannot be spent on inference. Never
 * returns hashes. */

/* A time bound from the query: unix seconds or YYYY-MM-DD (UTC); 0 when
 * absent, -1 when unparsable. */
static int64_t query_time(const sl_http_request *req, const char *name)
{
    size_t vn;
    const char *raw = sl_http_query_param(req, name, &vn);
    if (!raw)
        return 0;
    char v[32];
    if (vn == 0 || vn >= sizeof v)
        return -1;
    memcpy(v, raw, vn);
    v[vn] = '\0';
    struct tm tm = {0};
    char *end = strptime(v, "%Y-%m-%d", &tm);
    if (end && *end == '\0')
        return (int64_t)timegm(&tm);
    char *e;
    long long n = strtoll(v, &e, 10);
    return *e == '\0' && n >= 0 ? (int64_t)n : -1;
}

static const char *period_name(sl_period p)
{
    static const char *const n[] = {"none", "day", "week", "month", "total"};
    return p <= SL_PERIOD_TOTAL ? n[p] : "none";
}

static json_t *usd_json(int64_t micros)
{
    char b[48];
    snprintf(b, sizeof b, "%lld.%06lld", (long long)micros / 1000000, (long long)micros % 1000000);
    return json_string(b);
}

/* Spend in the current period (since ever for holders without a budget)
 * and, when there is one, the budget with what remains of it. */
static json_t *spend_json(const sl_budget *b, const sl_gov_view *v)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "period",
                          b->per == SL_PERIOD_NONE ? "total" : period_name(b->per), "spent_micros",
                          (json_int_t)v->spent_usd, "spent_tokens", (json_int_t)v->spent_tokens,
                          "reserved_micros", (json_int_t)v->reserved_usd);
    json_object_set_new(o, "spent_usd", usd_json(v->spent_usd));
    return o;
}

static json_t *budget_json(const sl_budget *b, const sl_gov_view *v)
{
    if (b->per == SL_PERIOD_NONE)
        return json_null();
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "per", period_name(b->per), "spent_micros",
                          (json_int_t)v->spent_usd, "spent_tokens", (json_int_t)v->spent_tokens,
                          "reserved_micros", (json_int_t)v->reserved_usd);
    json_object_set_new(o, "spent_usd", usd_json(v->spent_usd));
    if (b->usd_micros >= 0) {
        json_object_set_new(o, "limit_usd", usd_json(b->usd_micros));
        int64_t rem = b->usd_micros - v->spent_usd - v->reserved_usd;
        json_object_set_new(o, "remaining_usd", usd_json(rem > 0 ? rem : 0));
    }
    if (b->tokens >= 0) {
        json_object_set_new(o, "limit_tokens", json_integer(b->tokens));
        int64_t rem = b->tokens - v->spent_tokens - v->reserved_tokens;
        json_object_set_new(o, "remaining_tokens", json_integer(rem > 0 ? rem : 0));
    }
    return o;
}


static void handle_admin(sl_conn *c, const sl_table *t, const sl_http_request *req)
{
    if (!t->has_admin) {
        sl_surface_error(c, SL_SURFACE_OPENAI, 404, NULL, NULL, "no admin API: the spec has no 'admin:'");
        return;
    }
    if (!sl_auth_is_admin(t, req)) {
        sl_surface_error(c, SL_SURFACE_OPENAI, 401, "invalid_api_key", NULL, "admin key required");
        return;
    }
    if (req->method != SL_HTTP_GET) {
        sl_surface_error(c, SL_SURFACE_OPENAI, 405, NULL, "Allow: GET\r\n", "use GET");
        return;
    }
    int64_t now = (int64_t)time(NULL);
    if (path_is(req, "/admin/keys")) {
        json_t *arr = json_array();
        for (uint32_t i = 0; i < t->key_count; i++) {
            const sl_key *k = &t->keys[i];
            sl_gov_view v;
            sl_gov_view_key((int)i, now, &v);
            json_t *models = json_array();
            if (k->all_models)
                json_array_append_new(models, json_string("*"));
            for (uint32_t m = 0; m < k->scope_count; m++)
                json_array_append_new(models, json_string(t->models[t->scopes[k->scope_first + m]].name));
            json_t *o = json_pack("{s:s,s:s?,s:o,s:{s:i,s:i},s:o,s:o,s:o}", "name", k->name, "team",
                                  k->team >= 0 ? t->teams[k->team].name : NULL, "models", models,
                                  "limits", "rpm", (json_int_t)k->limits.rpm, "tpm",
                                  (json_int_t)k->limits.tpm, "budget", budget_json(&k->budget, &v),
                                  "spend", spend_json(&k->budget, &v),
                                  "expires", k->expires_unix ? json_integer(k->expires_unix) : json_null());
            json_array_append_new(arr, o);
        }
        json_t *teams = json_array();
        for (uint32_t i = 0; i < t->team_count; i++) {
            sl_gov_view v;
            sl_gov_view_team((int)i, now, &v);
            json_array_append_new(teams, json_pack("{s:s,s:o,s:o}", "name", t->teams[i].name, "budget",
                                                   budget_json(&t->teams[i].budget, &v), "spend",
                                                   spend_json(&t->teams[i].budget, &v)));
        }
        respond_json_body(c, json_pack("{s:o,s:o}", "keys", arr, "teams", teams));
        return;
    }
    if (path_is(req, "/admin/spend")) {
        char by[16] = "key";
        size_t byn;
        const char *byv = sl_http_query_param(req, "by", &byn);
        if (byv && byn < sizeof by) {
            memcpy(by, byv, byn);
            by[byn] = '\0';
        } else if (byv) {
            by[0] = '\0'; /* too long: rejected below */
        }
        int64_t since = query_time(req, "since"), until = query_time(req, "until");
        if (since < 0 || until < 0) {
            sl_surface_error(c, SL_SURFACE_OPENAI, 400, NULL, NULL,
                             "since/until must be unix seconds or YYYY-MM-DD");
            return;
        }
        if (!ledger) {
            sl_surface_error(c, SL_SURFACE_OPENAI, 409, NULL, NULL, "the ledger is off");
            return;
        }
        char err[128] = "";
        char *js = sl_ledger_spend_json(ledger, by, since, until, err, sizeof err);
        if (!js) {
            sl_surface_error(c, SL_SURFACE_OPENAI, 400, NULL, NULL, "%s", err);
            return;
        }
        char *body = sl_arena_printf(sl_conn_arena(c), "{\"by\":\"%s\",\"since\":%lld,\"until\":%lld,\"rows\":%s}",
                                     by, (long long)since, (long long)until, js);
        free(js);
        if (!body) {
            sl_surface_error(c, SL_SURFACE_OPENAI, 500, NULL, NULL, "out of memory");
            return;
        }
        sl_conn_respond(c, 200, "application/json", NULL, body, strlen(body));
        return;
    }
    sl_surface_error(c, SL_SURFACE_OPENAI, 404, NULL, NULL, "no such admin endpoint");
}

/* ---- entry point ------------------------------------------------------- */

static const char *auth_message(sl_auth_status s)
{
    switch (s) {
    case SL_AUTH_MISSING: return "missing API key (send Authorization: Bearer, x-api-key or x-goog-api-key)";
    case SL_AUTH_EXPIRED: return "API key expired";
    case SL_AUTH_ADDRESS: return "API key not allowed from this address";
    default: return "invalid API key";
    }
}

void sl_proxy_handle(sl_conn *c, const sl_http_request *req, const char *body, size_t body_len)
{
    sl_worker *w = sl_conn_worker(c);
    const sl_table *t = sl_worker_table(w);
    int is_get = req->method == SL_HTTP_GET || req->method == SL_HTTP_HEAD;
    int is_post = req->method == SL_HTTP_POST;

    if (is_get && path_is(req, "/healthz")) {
        respond_healthz(c, t, req);
        return;
    }
    if (is_get && path_is(req, "/")) {
        /* Claude Code probes HEAD / before its first request. */
        static const char hello[] = "{\"service\":\"sluice\"}";
        sl_conn_respond(c, 200, "application/json", NULL, hello, sizeof hello - 1);
        return;
    }

    if (req->path_len >= 7 && memcmp(req->path, "/admin/", 7) == 0) {
        handle_admin(c, t, req);
        return;
    }

    op_kind op;
    sl_surface surface;
    int legacy = 0;
    if (path_is(req, "/v1/chat/completions")) {
        op = OP_CHAT;
        surface = SL_SURFACE_OPENAI;
    } else if (path_is(req, "/v1/messages")) {
        op = OP_MESSAGES;
        surface = SL_SURFACE_ANTHROPIC;
    } else if (path_is(req, "/v1/messages/count_tokens")) {
        op = OP_COUNT_TOKENS;
        surface = SL_SURFACE_ANTHROPIC;
    } else if (path_is(req, "/v1/completions")) {
        op = OP_CHAT; /* served by chat targets; see proxy/legacy.c */
        surface = SL_SURFACE_OPENAI;
        legacy = 1;
    } else if (path_is(req, "/v1/embeddings")) {
        op = OP_EMBEDDINGS;
        surface = SL_SURFACE_OPENAI;
    } else if (req->path_len > 15 && memcmp(req->path, "/v1beta/models/", 15) == 0) {
        op = OP_GEMINI;
        surface = SL_SURFACE_GEMINI;
    } else if (path_is(req, "/v1/models") && is_get) {
        int key;
        sl_auth_status as = sl_auth_identify(t, req, sl_conn_peer(c), &key);
        int anthropic = sl_http_find_header(req, "anthropic-version") != NULL;
        if (as != SL_AUTH_OK) {
            sl_surface_error(c, anthropic ? SL_SURFACE_ANTHROPIC : SL_SURFACE_OPENAI, 401,
                             "invalid_api_key", NULL, "%s", auth_message(as));
            return;
        }
        respond_models(c, t, anthropic);
        return;
    } else {
        int anthropic = sl_http_find_header(req, "anthropic-version") != NULL;
        sl_surface_error(c, anthropic ? SL_SURFACE_ANTHROPIC : SL_SURFACE_OPENAI, 404, NULL, NULL,
                         "no route for %.*s %.*s", (int)req->method_len, req->method_str,
                         (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
        return;
    }
    if (!is_post) {
        sl_surface_error(c, surface, 405, NULL, "Allow: POST\r\n", "use POST for %.*s",
                         (int)req->path_len, req->path);
        return;
    }

    sl_arena *arena = sl_conn_arena(c);
    sl_exchange *x = sl_arena_alloc(arena, sizeof *x);
    if (!x) {
        sl_surface_error(c, surface, 500, NULL, NULL, "out of memory");
        return;
    }
    memset(x, 0, sizeof *x);
    ev_init(&x->backoff, backoff_cb);
    x->backoff.data = x;
    x->retry_after_s = -1;
    x->conn = c;
    x->w = w;
    x->t = t;
    x->arena = arena;
    x->op = op;
    x->surface = surface;
    x->req = req;
    x->body = body;
    x->body_len = body_len;
    x->key = -1;
    x->started = ev_time();

    sl_auth_status as = sl_auth_identify(t, req, sl_conn_peer(c), &x->key);
    if (as != SL_AUTH_OK) {
        fail(x, 401, "invalid_api_key", "%s", auth_message(as));
        return;
    }

    json_error_t jerr;
    x->json = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!x->json) /* jansson reports some failed allocations as syntax
                   * errors: a second parse tells them apart */
        x->json = json_loadb(body, body_len, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson reports a failed allocation as out_of_memory, or (inside
     * its unpacking) as an error with no text at all: neither is the
     * client's fault. */
    if (!x->json && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
        fail(x, 503, "overloaded", "%s", "out of memory; retry shortly");
        return;
    }
    if (!x->json) {
        char msg[256];
        snprintf(msg, sizeof msg, "request body is not valid JSON: %s (line %d, column %d)", jerr.text,
                 jerr.line, jerr.column);
        fail(x, 400, "invalid_json", "%s", msg);
        return;
    }
    if (!json_is_object(x->json)) {
        fail(x, 400, "invalid_request", "%s", "request body must be a JSON object");
        return;
    }
    if (legacy) {
        char err[160];
        json_t *chat = sl_legacy_to_chat(x->json, err, sizeof err);
        if (!chat) {
            fail(x, 400, "invalid_request", "%s", err);
            return;
        }
        char *js = sl_json_dumps(chat, JSON_COMPACT | JSON_PRESERVE_ORDER);
        json_decref(x->json);
        x->json = chat;
        if (!js) {
            fail(x, 500, NULL, "%s", "out of memory");
            return;
        }
        x->body_len = strlen(js);
        x->body = sl_arena_strndup(arena, js, x->body_len);
        free(js);
        if (!x->body) {
            fail(x, 500, NULL, "%s", "out of memory");
            return;
        }
        x->legacy = 1;
    }
    size_t model_len;
    if (op == OP_GEMINI) {
        /* /v1beta/models/{model}:generateContent | :streamGenerateContent */
        const char *m = req->path + 15;
        size_t mn = req->path_len - 15;
        const char *colon = memchr(m, ':', mn);
        size_t verb_len = colon ? mn - (size_t)(colon - m) - 1 : 0;
        const char *verb = colon ? colon + 1 : "";
        if (!colon || colon == m) {
            fail(x, 404, NULL, "%s", "expected /v1beta/models/{model}:generateContent");
            return;
        }
        if (verb_len == 21 && memcmp(verb, "streamGenerateContent", 21) == 0)
            x->stream = 1;
        else if (!(verb_len == 15 && memcmp(verb, "generateContent", 15) == 0)) {
            fail(x, 404, NULL, "%s", "only :generateContent and :streamGenerateContent are served");
            return;
        }
        char *name = curl_easy_unescape(NULL, m, (int)(colon - m), NULL);
        x->client_model = name ? sl_arena_strndup(arena, name, strlen(name)) : NULL;
        curl_free(name);
        if (!x->client_model) {
            fail(x, 500, NULL, "%s", "out of memory");
            return;
        }
        model_len = strlen(x->client_model);
    } else {
        json_t *model = json_object_get(x->json, "model");
        if (!json_is_string(model) || json_string_length(model) == 0) {
            fail(x, 400, "invalid_request", "%s", "'model' is required and must be a string");
            return;
        }
        x->client_model = json_string_value(model);
        model_len = json_string_length(model);
        x->stream = json_is_true(json_object_get(x->json, "stream"));
    }
    x->ask_usage = op == OP_CHAT && x->stream && !json_object_get(x->json, "stream_options");
    x->strip_usage = x->ask_usage;

    int entry = sl_route_lookup(t, x->client_model, model_len);
    if (entry < 0) {
        fail(x, 404, "model_not_found", "model '%s' is not served by this gateway",
             x->client_model);
        return;
    }
    if (!sl_auth_allows(t, x->key, (uint32_t)entry)) {
        fail(x, 403, "model_not_allowed", "this API key may not use model '%s'", x->client_model);
        return;
    }

    sl_attempt plan[MAX_ATTEMPTS];
    proxy_worker *pw = sl_worker_proxy_state(w);
    size_t n = pw && pw->router ? sl_route_plan(pw->router, (uint32_t)entry, plan, MAX_ATTEMPTS) : 0;
    const sl_provider *skipped = NULL;
    for (size_t i = 0; i < n; i++) {
        const sl_provider *p = &t->providers[t->targets[plan[i].target].provider];
        if (kind_serves(p->kind, op))
            x->plan[x->plan_len++] = plan[i];
        else
            skipped = p;
    }
    if (x->plan_len == 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "model '%s' is served by provider '%s', which does not speak the %s API",
                 x->client_model, skipped ? skipped->name : "?", sl_surface_name(surface));
        fail(x, 400, "unsupported_route", "%s", msg);
        return;
    }
    /* Admission: rate limits, then a budget reservation for the worst
     * case (prompt size + max output at the first target's price). */
    {
        int64_t in = estimate_input_tokens(x);
        json_t *mt = json_object_get(x->json, "max_tokens");
        if (!json_is_integer(mt))
            mt = json_object_get(x->json, "max_completion_tokens");
        int64_t out = json_is_integer(mt) && json_integer_value(mt) > 0 ? (int64_t)json_integer_value(mt) : 4096;
        if (op == OP_COUNT_TOKENS)
            out = 0;
        const sl_target *tg = &t->targets[x->plan[0].target];
        const sl_model_entry *e0 = &t->models[x->plan[0].entry];
        const char *um = tg->model ? tg->model : e0->is_glob ? x->client_model : e0->name;
        sl_usage_counts est = {.input = in, .output = out};
        int priced;
        int64_t est_usd = sl_gov_cost(t, tg->provider, um, &est, &priced);
        int retry_after;
        const char *why;
        sl_gov_verdict v = sl_gov_admit(x->key, est_usd, in + out, (int64_t)time(NULL), &x->ticket,
                                        &retry_after, &why);
        if (v != SL_GOV_OK) {
            char *hdr = sl_arena_printf(arena, "Retry-After: %d\r\n", retry_after > 0 ? retry_after : 60);
            access_log(x, 429);
            exchange_release(x);
            sl_surface_error(c, surface, 429, v == SL_GOV_BUDGET ? "insufficient_quota" : "rate_limit_exceeded",
                             v == SL_GOV_RATE_LIMITED || retry_after > 0 ? hdr : NULL, "%s", why);
            return;
        }
        x->admitted = 1;
    }
    /* Overload: refuse quickly rather than queue without bound. */
    {
        int workers = sl_worker_count();
        unsigned cap = t->server.max_inflight / (unsigned)(workers > 0 ? workers : 1);
        if (cap && sl_upstream_active(sl_worker_upstream(w)) >= cap) {
            sl_gov_settle(&x->ticket, 0, 0, (int64_t)time(NULL));
            x->admitted = 0;
            access_log(x, 503);
            exchange_release(x);
            sl_surface_error(c, surface, 503, "overloaded", "Retry-After: 1\r\n",
                             "too many requests in flight; retry shortly");
            return;
        }
    }
    x->group_len = group_length(x, 0);
    sl_conn_set_exchange(c, x, &conn_hooks);
    choose_and_start(x);
}
