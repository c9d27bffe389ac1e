/*
 * The exchange's life (see exchange.h): creation with its arena cleanup,
 * the access log, accounting, and the single finish every exit uses.
 */
#include "proxy/exchange.h"

#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"
#include "core/accesslog.h"
#include "core/log.h"
#include "core/membudget.h"
#include "core/sat.h"
#include "core/str.h"
#include "guard/guard.h"
#include "ledger/ledger.h"
#include "proxy/admission.h"
#include "proxy/proxy.h"
#include "proxy/surface.h"
#include "rstore/rstore.h"
#include "trace/trace.h"

/* The response held until its ledger row is committed. Heap-allocated
 * because the ledger may report after the client (and with it the
 * exchange's arena) is gone. */
typedef struct sl_hold {
    sl_exchange *x;
    int cancelled;
} sl_hold;

void sl_exchange_release(sl_exchange *x)
{
    sl_admission_cancel(x);
    ev_timer_stop(sl_worker_loop(x->w), &x->backoff);
    if (x->xfer) {
        x->transport->cancel(x->xfer);
        x->xfer = NULL;
    }
    sl_buf_free(&x->last_body);
    sl_buf_free(&x->resp);
    sl_membudget_release(x->resp_charged);
    x->resp_charged = 0;
    sl_relay_free(&x->relay);
    free(x->xbody);
    x->xbody = NULL;
    if (x->json) {
        json_decref(x->json);
        x->json = NULL;
    }
    json_decref(x->xjson);
    x->xjson = NULL;
    json_decref(x->prev_context);
    x->prev_context = NULL;
    sl_rstore_rec_free(x->store_rec);
    x->store_rec = NULL;
    if (x->hold) {
        /* Already settled; only the last bytes were waiting. */
        x->hold->cancelled = 1;
        x->hold = NULL;
    }
    free(x->held_body);
    x->held_body = NULL;
}

static void cleanup(void *p)
{
    sl_exchange_release(p);
}

sl_exchange *sl_exchange_new(sl_conn *c, sl_op op, sl_proto surface, const sl_http_request *req,
                             const char *body, size_t body_len)
{
    sl_arena *arena = sl_conn_arena(c);
    sl_exchange *x = sl_arena_alloc(arena, sizeof *x);
    if (!x)
        return NULL;
    memset(x, 0, sizeof *x);
    x->conn = c;
    x->w = sl_conn_worker(c);
    x->t = sl_worker_table(x->w);
    x->arena = arena;
    x->op = op;
    x->surface = surface;
    sl_str_copy(x->request_id, sizeof x->request_id, sl_conn_request_id(c));
    x->req = req;
    x->body = body;
    x->body_len = body_len;
    x->key = -1;
    x->entry = -1;
    x->retry_after_s = -1;
    x->started = ev_time();
    x->metrics = sl_proxy_metrics(x->w);
    const sl_http_header *tp = sl_http_find_header(req, "traceparent");
    x->trace = sl_trace_begin(arena, tp ? tp->value : NULL, tp ? tp->value_len : 0);
    sl_metrics_request_begin(x->metrics);
    ev_init(&x->backoff, NULL);
    if (sl_arena_on_reset(arena, cleanup, x) != 0)
        return NULL;
    return x;
}

/* ---- accounting --------------------------------------------------------------
 *
 * Every admitted request is settled exactly once: its reservation is
 * replaced by the real cost, or, when the provider reported nothing, by an
 * estimate from what was sent and delivered (marked as such), and one
 * ledger row is queued. */

static sl_ledger_row *account(sl_exchange *x, const sl_finish *f, sl_ledger_row *r)
{
    if ((!x->admitted && !x->cache_hit) || x->accounted)
        return NULL;
    x->accounted = 1;
    sl_usage_counts u = {0};
    int estimated = 0;
    int ok = f->status >= 200 && f->status < 300;
    if (x->cache_hit) {
        /* Answered from the cache: nothing used, nothing reserved. */
    } else if (f->usage && f->usage->have) {
        u = *f->usage;
        /* A stream cut short reports only what its first event said
         * (Anthropic's message_start says output_tokens: 1): charge at
         * least one token per event that went out. */
        if (x->streaming && !f->complete && u.output < f->events) {
            u.output = f->events;
            estimated = 1;
        }
    } else if (x->streaming || (ok && x->prov && x->op != SL_OP_COUNT_TOKENS)) {
        /* Delivered without a usage report: never free. */
        u.input = sl_usage_estimate_tokens(x->body_len);
        u.output = x->streaming ? (f->usage && f->usage->output ? f->usage->output : f->events)
                                : sl_usage_estimate_tokens(f->delivered);
        estimated = 1;
    }
    int priced = 0;
    int64_t cost = 0;
    if (x->prov && !x->cache_hit)
        cost = sl_gov_cost(x->t, (uint16_t)(x->prov - x->t->providers), x->upstream_model, &u, &priced);
    int64_t tokens = sl_usage_total(&u);

    memset(r, 0, sizeof *r);
    r->ts_ms = (int64_t)(x->started * 1000.0);
    if (x->key >= 0) {
        const sl_key *k = &x->t->keys[x->key];
        sl_str_copy(r->key, sizeof r->key, k->name);
        if (k->team >= 0)
            sl_str_copy(r->team, sizeof r->team, x->t->teams[k->team].name);
    }
    sl_str_copy(r->model, sizeof r->model, x->client_model);
    sl_str_copy(r->provider, sizeof r->provider, x->prov ? x->prov->name : NULL);
    sl_str_copy(r->upstream_model, sizeof r->upstream_model, x->upstream_model);
    r->status = f->status;
    r->input_tokens = u.input;
    r->output_tokens = u.output;
    r->cache_read_tokens = u.cache_read;
    r->cache_write_tokens = u.cache_write;
    r->cost_micros = cost;
    r->latency_ms = (ev_time() - x->started) * 1000.0;
    r->ttfb_ms = x->ttfb_ms;
    r->attempts = x->attempts.tries;
    r->stream = x->stream;
    r->estimated = estimated;
    if (x->guard)
        x->t->guard->ops->ledger(x->guard, r->guardrails, sizeof r->guardrails);
    if (x->store_rec && ok) {
        /* Written in the row's transaction; the answer waits for it. */
        r->extra = (sl_ledger_extra){sl_rstore_rec_write, sl_rstore_rec_free, x->store_rec};
        x->store_rec = NULL;
    }
    r->cache_hit = x->cache_hit;
    r->cache_saved_micros = x->cache_saved;
    if (x->admitted)
        sl_admission_settle(x, cost, tokens, r);
    else
        sl_admission_publish(x, r); /* a cached answer: the row, no spend */
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

/* ---- the finish ---------------------------------------------------------------- */

static void send_final(sl_exchange *x, int kind, int status, const char *ctype, const char *headers,
                       char *body, size_t len, const char *error)
{
    sl_conn *c = x->conn;
    sl_proto surface = x->surface;
    sl_exchange_release(x);
    switch ((sl_finish_kind)kind) {
    case SL_FINISH_RESPOND:
        sl_conn_respond(c, status, ctype ? ctype : "application/json", headers, body ? body : "", len);
        break;
    case SL_FINISH_STREAM_END:
        sl_conn_stream_end(c, 1);
        break;
    case SL_FINISH_STREAM_ABORT: {
        char ev[1024];
        size_t n = sl_surface_stream_error(surface, error ? error : "upstream stream failed", ev, sizeof ev);
        sl_conn_stream_write(c, ev, n);
        sl_conn_stream_end(c, 0);
        break;
    }
    case SL_FINISH_GONE:
        break;
    }
    free(body);
}

static void hold_done(void *ctx)
{
    sl_hold *h = ctx;
    if (!h->cancelled) {
        sl_exchange *x = h->x;
        x->hold = NULL;
        char *body = x->held_body;
        x->held_body = NULL;
        send_final(x, x->held_kind, x->held_status, x->held_ctype, x->held_headers, body, x->held_len,
                   NULL);
    }
    free(h);
}

/* Successful answers to budgeted keys keep their last bytes until the
 * ledger row is committed, so a kill -9 cannot lose spend the client saw. */
static int hold_for_ledger(sl_exchange *x, const sl_finish *f, const sl_ledger_row *r)
{
    sl_ledger *l = sl_proxy_ledger();
    sl_ledger_notifier *n = sl_proxy_notifier(x->w);
    int mode = sl_proxy_ledger_wait();
    /* A stored response waits too: a client may continue it with
     * previous_response_id as soon as it has its id. */
    int stored = r && r->extra.write;
    int wait = mode == SL_LEDGER_WAIT_ALL || (mode == SL_LEDGER_WAIT_BUDGET && key_has_budget(x->t, x->key)) ||
               stored;
    if (!r || !l || !n || !wait || f->kind == SL_FINISH_GONE || f->kind == SL_FINISH_STREAM_ABORT ||
        (!stored && sl_sat_add_count(sl_sat_add_count(r->input_tokens, r->output_tokens),
                                     sl_sat_add_count(r->cache_read_tokens, r->cache_write_tokens)) <= 0))
        return 0;
    sl_hold *h = malloc(sizeof *h);
    if (!h)
        return 0;
    h->x = x;
    h->cancelled = 0;
    x->held_kind = f->kind;
    x->held_status = f->status;
    x->held_ctype = f->ctype;
    x->held_headers = f->headers;
    x->held_body = f->body;
    x->held_len = f->len;
    if (sl_ledger_submit(l, r, n, hold_done, h) != 0) {
        x->held_body = NULL;
        free(h);
        return 0;
    }
    x->hold = h;
    return 1;
}

/* Seconds spent waiting on upstreams and backoffs so far: what the
 * overhead figure leaves out. */
static double upstream_s(const sl_exchange *x, ev_tstamp now)
{
    double up = x->waited_s;
    if (x->try_started > 0)
        up += now - x->try_started;
    if (x->wait_started > 0)
        up += now - x->wait_started;
    return up;
}

/* One observation per request; the per-try ones come from forward.c. */
static void record(sl_exchange *x, const sl_finish *f, const sl_ledger_row *r)
{
    ev_tstamp now = ev_time();
    sl_metrics_request m = {
        .entry = x->entry, .provider = x->prov ? (int)(x->prov - x->t->providers) : -1, .key = x->key,
        .surface = x->surface, .op = x->op, .legacy = x->legacy, .status = f->status,
        .stream = x->streaming, .duration_s = now - x->started, .ttft_s = -1,
        .retries = x->attempts.retries, .fallbacks = x->attempts.fallbacks,
    };
    m.overhead_s = m.duration_s - upstream_s(x, now);
    if (x->streaming)
        m.ttft_s = x->ttfb_ms / 1000.0;
    if (r) {
        m.input = r->input_tokens;
        m.output = r->output_tokens;
        m.cache_read = r->cache_read_tokens;
        m.cache_write = r->cache_write_tokens;
        m.cost_micros = r->cost_micros;
    }
    sl_metrics_request_end(x->metrics, &m);
}

/* error_type of the access log and traces: empty on success; a stream cut
 * after its head went out; the transport failure behind a 502/504 sluice
 * made itself; otherwise the status. */
const char *sl_exchange_error_type(const sl_exchange *x, int status, int aborted, char *buf,
                                   size_t cap)
{
    if (aborted)
        return "stream_aborted";
    if (status < 400 && status >= 200)
        return NULL;
    if ((status == 502 || status == 504) && x->last_result != SL_XFER_OK)
        return sl_xfer_result_name(x->last_result);
    snprintf(buf, cap, "%d", status);
    return buf;
}

static void access_log(sl_exchange *x, const sl_finish *f, const sl_ledger_row *r)
{
    if (!sl_log_access)
        return;
    ev_tstamp now = ev_time();
    const sl_http_request *q = x->req;
    const sl_key *k = x->key >= 0 ? &x->t->keys[x->key] : NULL;
    char ebuf[16];
    sl_access_record a = {
        .request_id = x->request_id, .peer = sl_conn_peer(x->conn),
        .method = q->method_str, .method_len = q->method_len, .path = q->path, .path_len = q->path_len,
        .key = k ? k->name : NULL, .team = k && k->team >= 0 ? x->t->teams[k->team].name : NULL,
        .surface = sl_proto_name(x->surface), .model = x->client_model,
        .entry = x->entry >= 0 ? x->t->models[x->entry].name : NULL,
        .provider = x->prov ? x->prov->name : NULL,
        .upstream_model = x->prov ? x->upstream_model : NULL,
        .error_type = sl_exchange_error_type(x, f->status, f->kind == SL_FINISH_STREAM_ABORT, ebuf,
                                             sizeof ebuf),
        .status = f->status, .attempts = x->attempts.tries, .stream = x->stream, .cache = x->cache_result,
        .ms = (now - x->started) * 1000.0, .ttft_ms = x->streaming ? x->ttfb_ms : -1,
    };
    a.upstream_ms = upstream_s(x, now) * 1000.0;
    a.overhead_ms = a.ms - a.upstream_ms;
    if (r) {
        a.have_usage = 1;
        a.input = r->input_tokens;
        a.output = r->output_tokens;
        a.cache_read = r->cache_read_tokens;
        a.cache_write = r->cache_write_tokens;
        a.cost_micros = r->cost_micros;
    }
    char stamp[SL_LOG_TIME_MAX];
    sl_log_time(stamp, sizeof stamp);
    char line[SL_ACCESS_LINE_MAX];
    size_t n = sl_access_get_format() == SL_ACCESS_JSON ? sl_access_format_json(line, stamp, &a)
                                                         : sl_access_format_text(line, stamp, &a);
    sl_access_write(line, n);
}

/* The server span, and the last try's usage (what was settled). */
static void trace_finish(sl_exchange *x, const sl_finish *f, const sl_ledger_row *r)
{
    if (!x->trace)
        return;
    char ebuf[16];
    sl_span_info s = {
        .op = sl_metrics_op_name(x->op, x->legacy), .provider = x->prov ? x->prov->name : NULL,
        .request_model = x->client_model, .response_model = x->prov ? x->upstream_model : NULL,
        .error_type = sl_exchange_error_type(x, f->status, f->kind == SL_FINISH_STREAM_ABORT, ebuf,
                                             sizeof ebuf),
        .request_id = x->request_id, .stream = x->stream, .http_status = f->status,
    };
    sl_span_info u = {0};
    if (r) {
        u.have_usage = 1;
        u.input = r->input_tokens;
        u.output = r->output_tokens;
        u.cache_read = r->cache_read_tokens;
        u.cache_write = r->cache_write_tokens;
    }
    sl_trace_finish(x->trace, &s, &u);
}

void sl_exchange_finish(sl_exchange *x, sl_finish *f)
{
    if (f->kind == SL_FINISH_GONE)
        sl_attempts_abandon(&x->attempts);
    /* On the stack: everything that takes the row (ledger queue, Redis
     * stream, backlog) copies it before this returns; in the arena it took
     * 1.1 KB of the block every connection keeps. */
    sl_ledger_row row;
    sl_ledger_row *r = account(x, f, &row);
    if (x->cache)
        x->t->cache_ops->finish(x, f, r ? r->cost_micros : 0);
    access_log(x, f, r);
    if (!x->finished) {
        x->finished = 1;
        record(x, f, r);
        trace_finish(x, f, r);
    }
    int ok = f->status >= 200 && f->status < 300;
    if (ok && hold_for_ledger(x, f, r))
        return;
    if (r && (!sl_proxy_ledger() || sl_ledger_submit(sl_proxy_ledger(), r, NULL, NULL, NULL) != 0) &&
        r->extra.free)
        r->extra.free(r->extra.arg); /* the ledger did not take it */
    send_final(x, f->kind, f->status, f->ctype, f->headers, f->body, f->len, f->error);
}

void sl_exchange_fail(sl_exchange *x, int status, const char *code, const char *headers,
                      const char *fmt, ...)
{
    char *body = malloc(2048);
    size_t n = 0;
    if (body) {
        va_list ap;
        va_start(ap, fmt);
        n = sl_surface_error_vbody(x->surface, status, code, body, 2048, fmt, ap);
        va_end(ap);
    }
    sl_finish f = {.kind = SL_FINISH_RESPOND, .status = status, .ctype = "application/json",
                   .headers = headers, .body = body, .len = n};
    sl_exchange_finish(x, &f);
}

json_t *sl_exchange_json(sl_exchange *x)
{
    /* The scan accepted only bodies jansson accepts: failing here is out
     * of memory. */
    if (!x->json)
        x->json = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, NULL);
    return x->json;
}

const char *sl_exchange_headers(sl_exchange *x, const char *extra)
{
    const sl_model_entry *e = x->attempts.plan_len ? sl_attempts_entry(&x->attempts) : NULL;
    char tries[24];
    size_t i = sizeof tries;
    unsigned long long t = x->attempts.tries > 0 ? (unsigned long long)x->attempts.tries : 0;
    tries[--i] = '\0';
    do {
        tries[--i] = (char)('0' + t % 10);
        t /= 10;
    } while (t);
    /* Joined, not printed: this runs for every response. */
    return sl_arena_cat(x->arena, "x-sluice-model: ", e ? e->name : "-", "\r\nx-sluice-provider: ",
                        x->prov ? x->prov->name : "-", "\r\nx-sluice-attempts: ", tries + i, "\r\n",
                        /* a provider serving the Responses API runs its hosted tools */
                        x->dropped_tools && x->up_proto != SL_PROTO_RESPONSES ? x->dropped_tools : "",
                        x->cache_header ? x->cache_header : "", extra ? extra : "", (char *)NULL);
}
