/*
 * The semantic cache's embeddings call (see cache.h): one OpenAI-shaped
 * POST /v1/embeddings to the rule's provider, built through that
 * provider's adapter and sent on the worker's own upstream (libcurl multi
 * on the worker's loop), exactly as an inference try travels: same URL
 * rules (spec or --provider-url), same key header, same timeouts. Only
 * the answer's first vector is read.
 */
#include "cache/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "json/json_out.h"
#include "providers/provider.h"
#include "proxy/exchange.h"
#include "proxy/proxy.h"

/* An embeddings answer is a few KiB to a few hundred; more is not one. */
#define MAX_ANSWER (4u << 20)
#define MAX_DIM 16384u

struct sl_cache_embed {
    const sl_transport *tr;
    void *xfer;
    sl_arena *arena; /* the exchange's: the header lines live there */
    sl_xfer_headers headers;
    char *body;
    sl_buf resp;
    int status;
    sl_cache_embed_done done;
    void *ctx;
};

static void add_header(void *ctx, const char *line)
{
    sl_cache_embed *e = ctx;
    sl_xfer_headers_add(&e->headers, e->arena, line);
}

static void on_head(void *ctx, const sl_xfer_head *h)
{
    ((sl_cache_embed *)ctx)->status = h->status;
}

static size_t on_data(void *ctx, const char *p, size_t n)
{
    sl_cache_embed *e = ctx;
    if (e->resp.len + n > MAX_ANSWER || sl_buf_append(&e->resp, p, n) != 0)
        return 0;
    return n;
}

/* data[0].embedding as floats; NULL when the answer is not one. */
static float *vector(const sl_buf *b, uint32_t *dim)
{
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    json_t *v = json_object_get(json_array_get(json_object_get(j, "data"), 0), "embedding");
    size_t n = json_array_size(v);
    float *out = n && n <= MAX_DIM ? malloc(n * sizeof *out) : NULL;
    for (size_t i = 0; out && i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x)) {
            free(out);
            out = NULL;
        } else {
            out[i] = (float)json_number_value(x);
        }
    }
    json_decref(j);
    *dim = out ? (uint32_t)n : 0;
    return out;
}

static void on_done(void *ctx, sl_xfer_result r, const char *detail)
{
    (void)detail;
    sl_cache_embed *e = ctx;
    e->xfer = NULL;
    uint32_t dim = 0;
    float *v = r == SL_XFER_OK && e->status >= 200 && e->status < 300 ? vector(&e->resp, &dim) : NULL;
    char why[64];
    if (!v)
        snprintf(why, sizeof why, "%s", r != SL_XFER_OK ? sl_xfer_result_name(r)
                                        : e->status < 200 || e->status > 299 ? "HTTP error"
                                                                            : "no embedding in the answer");
    e->done(e->ctx, v, dim, v ? NULL : why);
    free(v);
}

static const sl_xfer_callbacks callbacks = {on_head, on_data, on_done};

sl_cache_embed *sl_cache_embed_start(struct sl_exchange *x, uint32_t provider, const char *model, const char *text,
                                     size_t len, sl_cache_embed_done done, void *ctx)
{
    const sl_provider *p = &x->t->providers[provider];
    const sl_provider_ops *ops = sl_provider_ops_of(p->kind);
    if (!sl_provider_serves(p, SL_OP_EMBEDDINGS)) /* its kind and its preset */
        return NULL;
    sl_cache_embed *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->tr = p->oauth ? p->oauth->ops->transport : ops->transport; /* Entra ID: a fetched token */
    e->done = done;
    e->ctx = ctx;
    e->arena = x->arena;
    json_t *j = json_pack("{s:s,s:s%}", "model", model, "input", text, len);
    e->body = j ? sl_json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    sl_call call = {.arena = x->arena, .prov = p, .op = SL_OP_EMBEDDINGS, .client = SL_PROTO_OPENAI,
                    .req = x->req, .model = model, .stream = 0};
    const char *url = ops->url(&call);
    sl_provider_request_headers(&call, x->request_id, sl_proxy_auth_line(provider), add_header, e);
    if (!e->body || !url || e->headers.failed) {
        sl_cache_embed_free(e);
        return NULL;
    }
    sl_xfer_spec spec = {.url = url, .headers = e->headers.head, .body = e->body, .body_len = strlen(e->body),
                         .connect_ms = p->connect_ms, .first_byte_ms = p->first_byte_ms, .idle_ms = p->idle_ms,
                         .total_ms = p->total_ms, .provider = p};
    e->xfer = e->tr->start(sl_worker_loop(x->w), sl_worker_upstream(x->w), &spec, &callbacks, e);
    if (!e->xfer) {
        sl_cache_embed_free(e);
        return NULL;
    }
    return e;
}

void sl_cache_embed_free(sl_cache_embed *e)
{
    if (!e)
        return;
    if (e->xfer)
        e->tr->cancel(e->xfer);
    free(e->body);
    sl_buf_free(&e->resp);
    free(e);
}
