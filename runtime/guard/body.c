/*
 * Guardrails on JSON (see guard.h): the request stage over the client's
 * body, whole response bodies, and the stream filter, all in the client's
 * protocol, so one walk over JSON string values serves every surface
 * (OpenAI Chat, Anthropic, Gemini, Responses, legacy completions) and
 * covers tool arguments (strings holding JSON) and tool results alike.
 * Identifiers, names (tools, functions, participants), roles, model names
 * and base64 payloads are not text and are skipped.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/guard_internal.h"
#include "json/json_out.h"
#include "metrics/metrics.h"
#include "proxy/exchange.h"
#include "route/route.h"

/* ---- walking JSON ----------------------------------------------------------- */

static int skip_key(const char *k)
{
    static const char *const skip[] = {"model", "role", "type", "object", "data", "file_data", "mime_type",
                                       "mimeType", "media_type", "signature", "encrypted_content",
                                       "finish_reason", "stop_reason", "finishReason", "status",
                                       "system_fingerprint", "service_tier", "modelVersion", "event", "name"};
    if (!k)
        return 0;
    size_t n = strlen(k);
    if (n >= 2 && strcmp(k + n - 2, "id") == 0)
        return 1; /* id, tool_call_id, call_id, item_id, tool_use_id, responseId */
    if (n >= 2 && strcmp(k + n - 2, "Id") == 0)
        return 1;
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++)
        if (strcmp(k, skip[i]) == 0)
            return 1;
    return 0;
}

typedef int (*str_fn)(void *ctx, json_t *s, const char *path);

/* Calls fn on every scannable string under j with its path ("a.0.b"), or
 * "" when path is NULL (whole bodies need none, and building it costs). */
static int walk(json_t *j, const char *key, sl_buf *path, str_fn fn, void *ctx, int depth)
{
    /* jansson refuses documents nested deeper, so every string it parsed
     * is reached; anything deeper fails closed rather than unscanned. */
    if (depth > JSON_PARSER_MAX_DEPTH)
        return -1;
    if (json_is_string(j)) {
        if (skip_key(key) || strncmp(json_string_value(j), "data:", 5) == 0)
            return 0;
        return fn(ctx, j, path && path->data ? path->data : "");
    }
    size_t mark = path ? path->len : 0;
    int rc = 0;
    if (json_is_object(j)) {
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) {
            if (skip_key(k))
                continue;
            if (path) {
                path->len = mark;
                if (sl_buf_appendf(path, "%s%s", mark ? "." : "", k) != 0)
                    return -1;
            }
            if ((rc = walk(v, k, path, fn, ctx, depth + 1)) != 0)
                break;
        }
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) {
            if (path) {
                path->len = mark;
                if (sl_buf_appendf(path, "%s%zu", mark ? "." : "", i) != 0)
                    return -1;
            }
            if ((rc = walk(v, key, path, fn, ctx, depth + 1)) != 0)
                break;
        }
    }
    if (path) {
        path->len = mark;
        if (path->data)
            path->data[mark] = '\0';
    }
    return rc;
}

typedef struct whole {
    sl_guard_req *g;
    sl_guard_dir dir;
    int changed;
    sl_buf out;
} whole;

static int whole_str(void *ctx, json_t *s, const char *path)
{
    (void)path;
    whole *w = ctx;
    size_t used;
    sl_buf_clear(&w->out);
    int rc = sl_guard_text(w->g, w->dir, json_string_value(s), json_string_length(s), 1, &w->out, &used);
    if (rc != 0)
        return rc;
    if (w->out.len != json_string_length(s) || memcmp(w->out.data ? w->out.data : "", json_string_value(s), w->out.len) != 0) {
        if (json_string_setn(s, w->out.data ? w->out.data : "", w->out.len) != 0)
            return -1;
        w->changed = 1;
    }
    return 0;
}

/* 0, 1 blocked, -1 memory; *changed when a string was rewritten. */
static int guard_json(sl_guard_req *g, sl_guard_dir dir, json_t *j, int *changed)
{
    whole w = {.g = g, .dir = dir};
    int rc = walk(j, NULL, NULL, whole_str, &w, 0);
    sl_buf_free(&w.out);
    *changed = w.changed;
    return rc;
}

/* ---- the request stage ---------------------------------------------------------- */

static void free_req(void *p)
{
    sl_guard_req_free(p);
}

static int guard_request(sl_exchange *x, size_t model_len)
{
    const sl_guard_spec *gs = x->t->guard;
    int entry = sl_route_lookup(x->t, x->client_model, model_len);
    if (entry < 0)
        return 0; /* routing answers the 404 */
    uint32_t rails = gs->model_rails ? gs->model_rails[entry] : 0;
    if (x->key >= 0) {
        const sl_key *k = &x->t->keys[x->key];
        rails |= gs->key_rails ? gs->key_rails[x->key] : 0;
        if (k->team >= 0 && gs->team_rails)
            rails |= gs->team_rails[k->team];
    }
    if (!rails)
        return 0;
    x->guard = sl_guard_req_new(gs, rails);
    if (!x->guard || sl_arena_on_reset(x->arena, free_req, x->guard) != 0) {
        sl_guard_req_free(x->guard);
        x->guard = NULL;
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
        return -1;
    }
    if (!sl_guard_active(x->guard, SL_GUARD_REQUEST))
        return 0;
    int changed = 0;
    int rc = guard_json(x->guard, SL_GUARD_REQUEST, x->json, &changed);
    if (rc == 1) {
        sl_exchange_fail(x, 400, "guardrail_blocked", NULL, "%s", sl_guard_message(x->guard));
        return -1;
    }
    if (rc != 0) {
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
        return -1;
    }
    if (!changed)
        return 0;
    /* Pass-through sends x->body: it must carry the redacted text. */
    char *js = sl_json_dumps(x->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    char *nb = js ? sl_arena_strndup(x->arena, js, strlen(js)) : NULL;
    if (nb) {
        x->body_len = strlen(js);
        x->body = nb;
    }
    free(js);
    if (!nb) {
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
        return -1;
    }
    return 0;
}

static int guard_request_json(sl_guard_req *g, void *json, char *msg, size_t cap)
{
    if (!sl_guard_active(g, SL_GUARD_REQUEST))
        return 0;
    int changed;
    int rc = guard_json(g, SL_GUARD_REQUEST, json, &changed);
    if (rc == 1)
        snprintf(msg, cap, "%s", sl_guard_message(g));
    return rc;
}

/* ---- whole responses ------------------------------------------------------------ */

static int guard_body(sl_guard_req *g, char **body, size_t *len, char *msg, size_t cap)
{
    if (!sl_guard_active(g, SL_GUARD_RESPONSE) || !*body)
        return 0;
    json_t *j = json_loadb(*body, *len, 0, NULL);
    if (!j)
        return 0; /* not JSON: nothing of ours to read */
    int changed = 0;
    int rc = guard_json(g, SL_GUARD_RESPONSE, j, &changed);
    if (rc == 1)
        snprintf(msg, cap, "%s", sl_guard_message(g));
    if (rc == 0 && changed) {
        char *nb = sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!nb) {
            rc = -1;
        } else {
            free(*body);
            *body = nb;
            *len = strlen(nb);
        }
    }
    json_decref(j);
    return rc;
}

/* ---- streams -------------------------------------------------------------------- */

struct sl_guard_chan {
    sl_guard_chan *next;
    char *path;
    sl_buf held;        /* undecided text of this channel */
    sl_buf tmpl_event;  /* the last event carrying it: its name ... */
    sl_buf tmpl_data;   /* ... and data, the shape a flush is sent in */
    int seen;
};

void sl_guard_stream_reset(sl_guard_req *g)
{
    for (sl_guard_chan *c = g->chans, *n; c; c = n) {
        n = c->next;
        if (c->held.data)
            memset(c->held.data, 0, c->held.cap);
        sl_buf_free(&c->held);
        sl_buf_free(&c->tmpl_event);
        sl_buf_free(&c->tmpl_data);
        free(c->path);
        free(c);
    }
    g->chans = NULL;
    sl_sse_free(&g->sse);
    sl_sse_init(&g->sse, 0);
    g->failed = 0;
}

static sl_guard_chan *chan_of(sl_guard_req *g, const char *path)
{
    for (sl_guard_chan *c = g->chans; c; c = c->next)
        if (strcmp(c->path, path) == 0)
            return c;
    sl_guard_chan *c = calloc(1, sizeof *c);
    if (!c || !(c->path = strdup(path))) {
        free(c);
        return NULL;
    }
    c->next = g->chans;
    g->chans = c;
    return c;
}

static int emit(sl_buf *out, const char *ev, size_t evlen, const char *data, size_t dlen)
{
    if (evlen && (sl_buf_append(out, "event: ", 7) || sl_buf_append(out, ev, evlen) || sl_buf_append(out, "\n", 1)))
        return -1;
    for (;;) {
        const char *nl = memchr(data, '\n', dlen);
        size_t l = nl ? (size_t)(nl - data) : dlen;
        if (sl_buf_append(out, "data: ", 6) || sl_buf_append(out, data, l) || sl_buf_append(out, "\n", 1))
            return -1;
        if (!nl)
            break;
        data += l + 1;
        dlen -= l + 1;
    }
    return sl_buf_append(out, "\n", 1);
}

typedef struct ev_ctx {
    sl_guard_req *g;
    sl_buf out;
    int changed;
    const sl_sse_event *ev;
    sl_buf *dst;        /* the filter's output */
    const char *target; /* flush: the channel's path; others become "" */
    const char *text;
    size_t text_len;
} ev_ctx;

/* Whether a string in a stream event is a piece of a longer text (a
 * delta), whose neighbours are in other events: a `delta` member anywhere
 * on its path (OpenAI chunks, Anthropic content_block_delta, Responses
 * *.delta events), a Gemini candidate part, or a legacy completion chunk's
 * choices.N.text. Other strings (tool names in start events, the whole
 * text of a Responses *.done or completed event) are complete values,
 * decided in their own event: holding part of one back would need a
 * second start or done event to release it. */
static int delta_path(const char *path)
{
    if (strncmp(path, "candidates.", 11) == 0)
        return 1;
    if (strncmp(path, "choices.", 8) == 0) {
        const char *p = path + 8;
        while (*p >= '0' && *p <= '9')
            p++;
        if (strcmp(p, ".text") == 0)
            return 1;
    }
    for (const char *p = path; (p = strstr(p, "delta")); p += 5)
        if ((p == path || p[-1] == '.') && (p[5] == '\0' || p[5] == '.'))
            return 1;
    return 0;
}

/* A complete string value in a stream event, decided at once. */
static int stream_whole_str(ev_ctx *e, json_t *s)
{
    size_t used;
    sl_buf_clear(&e->out);
    int rc = sl_guard_text(e->g, SL_GUARD_RESPONSE, json_string_value(s), json_string_length(s), 1, &e->out, &used);
    if (rc != 0 || !e->g->transform)
        return rc;
    if (e->out.len != json_string_length(s) || memcmp(e->out.data ? e->out.data : "", json_string_value(s), e->out.len)) {
        if (json_string_setn(s, e->out.data ? e->out.data : "", e->out.len) != 0)
            return -1;
        e->changed = 1;
    }
    return 0;
}

static int stream_str(void *ctx, json_t *s, const char *path)
{
    ev_ctx *e = ctx;
    sl_guard_req *g = e->g;
    if (!delta_path(path))
        return stream_whole_str(e, s);
    sl_guard_chan *c = chan_of(g, path);
    if (!c || sl_buf_append(&c->held, json_string_value(s), json_string_length(s)) != 0)
        return -1;
    c->seen = 1;
    size_t used;
    sl_buf_clear(&e->out);
    int rc = sl_guard_text(g, SL_GUARD_RESPONSE, c->held.data ? c->held.data : "", c->held.len, 0, &e->out, &used);
    if (rc != 0)
        return rc;
    if (used) {
        memmove(c->held.data, c->held.data + used, c->held.len - used);
        c->held.len -= used;
    }
    if (!g->transform)
        return 0;
    sl_buf_clear(&c->tmpl_event);
    sl_buf_clear(&c->tmpl_data);
    if (sl_buf_append(&c->tmpl_event, e->ev->event, e->ev->event_len) != 0 ||
        sl_buf_append(&c->tmpl_data, e->ev->data, e->ev->data_len) != 0)
        return -1;
    if (e->out.len != json_string_length(s) || memcmp(e->out.data ? e->out.data : "", json_string_value(s), e->out.len)) {
        if (json_string_setn(s, e->out.data ? e->out.data : "", e->out.len) != 0)
            return -1;
        e->changed = 1;
    }
    return 0;
}

/* The flush event: the channel's text in its place, every other text
 * emptied (the template is the upstream's event as it came, and what it
 * carried went out already). */
static int flush_str(void *ctx, json_t *s, const char *path)
{
    ev_ctx *e = ctx;
    int mine = strcmp(path, e->target) == 0;
    return json_string_setn(s, mine ? e->text : "", mine ? e->text_len : 0) != 0 ? -1 : 0;
}

/* A flush event carries text only: the usage and the finish its template
 * may have carried (Gemini's last chunk has both) went out already. */
static void strip_ends(json_t *j, int depth)
{
    if (depth > JSON_PARSER_MAX_DEPTH)
        return;
    if (json_is_object(j)) {
        json_object_del(j, "usageMetadata");
        json_object_del(j, "usage");
        json_object_del(j, "finishReason");
        if (json_object_get(j, "finish_reason"))
            json_object_set_new(j, "finish_reason", json_null());
        const char *k;
        json_t *v;
        json_object_foreach(j, k, v) strip_ends(v, depth + 1);
    } else if (json_is_array(j)) {
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) strip_ends(v, depth + 1);
    }
}

/* The channel's held text, decided now, in an event shaped like the last
 * one that carried it. */
static int flush(sl_guard_req *g, sl_guard_chan *c, sl_buf *out)
{
    if (!c->held.len)
        return 0;
    sl_buf text = {0};
    size_t used;
    int rc = sl_guard_text(g, SL_GUARD_RESPONSE, c->held.data, c->held.len, 1, &text, &used);
    memset(c->held.data, 0, c->held.len);
    c->held.len = 0;
    json_t *j = rc == 0 && text.len ? json_loadb(c->tmpl_data.data, c->tmpl_data.len, 0, NULL) : NULL;
    if (j) {
        ev_ctx e = {.g = g, .target = c->path, .text = text.data, .text_len = text.len};
        sl_buf path = {0};
        char *js = NULL;
        rc = walk(j, NULL, &path, flush_str, &e, 0);
        strip_ends(j, 0);
        if (rc == 0 && !(js = sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)))
            rc = -1;
        if (rc == 0)
            rc = emit(out, c->tmpl_event.data ? c->tmpl_event.data : "", c->tmpl_event.len, js, strlen(js));
        free(js);
        sl_buf_free(&path);
        json_decref(j);
    }
    sl_buf_free(&text);
    return rc;
}

static int on_event(void *ctx, const sl_sse_event *ev)
{
    ev_ctx *e = ctx;
    sl_guard_req *g = e->g;
    for (sl_guard_chan *c = g->chans; c; c = c->next)
        c->seen = 0;
    e->ev = ev;
    e->changed = 0;
    json_t *j = ev->data_len ? json_loadb(ev->data, ev->data_len, 0, NULL) : NULL;
    sl_buf path = {0};
    int rc = j ? walk(j, NULL, &path, stream_str, e, 0) : 0;
    sl_buf_free(&path);
    if (rc != 0) {
        json_decref(j);
        return -1;
    }
    if (g->transform) {
        sl_buf *dst = e->dst;
        for (sl_guard_chan *c = g->chans; c && rc == 0; c = c->next)
            if (!c->seen && c->held.len)
                rc = flush(g, c, dst);
        if (rc == 0 && e->changed) {
            char *js = sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
            rc = js ? emit(dst, ev->event, ev->event_len, js, strlen(js)) : -1;
            free(js);
        } else if (rc == 0) {
            rc = emit(dst, ev->event, ev->event_len, ev->data, ev->data_len);
        }
    }
    json_decref(j);
    return rc ? -1 : 0;
}

static int guard_stream_begin(sl_guard_req *g, int *transform)
{
    sl_guard_stream_reset(g);
    if (!sl_guard_active(g, SL_GUARD_RESPONSE))
        return 0;
    g->transform = sl_guard_rewrites(g, SL_GUARD_RESPONSE);
    *transform = g->transform;
    return 1;
}

static int guard_stream_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    sl_guard_req *g = st;
    ev_ctx e = {.g = g, .dst = out};
    int rc = g->failed ? -1 : sl_sse_feed(&g->sse, p, n, on_event, &e);
    sl_buf_free(&e.out);
    if (rc != 0) {
        g->failed = 1;
        if (!g->msg[0])
            snprintf(g->msg, sizeof g->msg, "guardrail scan failed (malformed event or out of memory)");
        return -1;
    }
    return 0;
}

static int guard_stream_finish(void *st, sl_buf *out)
{
    sl_guard_req *g = st;
    ev_ctx e = {.g = g, .dst = out};
    int rc = g->failed ? -1 : sl_sse_finish(&g->sse, on_event, &e);
    sl_buf_free(&e.out);
    for (sl_guard_chan *c = g->chans; c && rc == 0; c = c->next)
        rc = g->transform ? flush(g, c, out) : 0;
    return rc ? -1 : 0;
}

/* ---- ledger and metrics ------------------------------------------------------------ */

static const char *const kind_names[SL_GDET_COUNT + 1] = {"email", "phone", "card", "iban", "ssn",
                                                           "ipv4",  "ipv6",  "secrets", "deny"};

static const char *guard_message(const sl_guard_req *g)
{
    return g->msg[0] ? g->msg : "blocked by a guardrail";
}

static void guard_ledger(const sl_guard_req *g, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (int k = 0; k <= SL_GDET_COUNT && cap; k++)
        if (g->fired & (1u << k)) {
            int w = snprintf(buf + n, cap - n, "%s%s", n ? "," : "", kind_names[k]);
            if (w < 0 || (size_t)w >= cap - n)
                break;
            n += (size_t)w;
        }
}

static int guard_metrics(const sl_table *t, sl_buf *o)
{
    static const char *const acts[] = {"none", "log", "redact", "block"};
    int rc = sl_metrics_text_family(o, "sluice_guardrail_hits_total", "counter",
                                    "Guardrail detections by guardrail, detector, direction and action");
    const sl_guard_spec *gs = t->guard;
    for (uint32_t r = 0; r < gs->rail_count && r < 32; r++)
        for (int k = 0; k <= SL_GDET_COUNT; k++)
            for (int d = 0; d < 2; d++) {
                uint64_t v = sl_guard_hits(r, k, (sl_guard_dir)d);
                if (!v)
                    continue;
                int n = 0;
                int a = d ? gs->rails[r].response : gs->rails[r].request;
                rc |= sl_metrics_text_begin(o, "sluice_guardrail_hits_total");
                rc |= sl_metrics_text_label(o, &n, "guardrail", gs->rails[r].name);
                rc |= sl_metrics_text_label(o, &n, "detector", kind_names[k]);
                rc |= sl_metrics_text_label(o, &n, "direction", d ? "response" : "request");
                rc |= sl_metrics_text_label(o, &n, "action", acts[a & 3]);
                rc |= sl_metrics_text_end(o, n, (double)v);
            }
    return rc ? -1 : 0;
}

static int guard_cacheable(const sl_guard_req *g)
{
    return !sl_guard_active(g, SL_GUARD_RESPONSE);
}

const sl_guard_ops sl_guard_runtime_ops = {
    .request = guard_request,
    .request_json = guard_request_json,
    .body = guard_body,
    .stream_begin = guard_stream_begin,
    .stream_feed = guard_stream_feed,
    .stream_finish = guard_stream_finish,
    .message = guard_message,
    .ledger = guard_ledger,
    .metrics = guard_metrics,
    .cacheable = guard_cacheable,
};
