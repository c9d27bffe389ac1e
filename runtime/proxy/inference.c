/*
 * Request-side stages of an inference call (see inference.h). Each step
 * that refuses ends the exchange through sl_exchange_fail(), the one exit.
 */
#include "proxy/inference.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "cache/cache.h"
#include "core/sat.h"
#include "core/utf8.h"
#include "guard/guard.h"
#include "json/json_out.h"
#include "json/json_top.h"
#include "proxy/admission.h"
#include "proxy/admit.h"
#include "proxy/exchange.h"
#include "proxy/forward.h"
#include "proxy/legacy.h"
#include "proxy/proxy.h"
#include "proxy/rstate.h"
#include "proxy/surface.h"
#include "translate/fit.h"
#include "translate/translate.h"
#include "upstream/upstream.h"

/* Parses the body; 0, or -1 after answering. */
static int parse_body(sl_exchange *x)
{
    json_error_t jerr;
    x->json = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, &jerr);
    if (!x->json) /* jansson reports some failed allocations as syntax
                   * errors: a second parse tells them apart */
        x->json = json_loadb(x->body, x->body_len, JSON_REJECT_DUPLICATES, &jerr);
    /* jansson reports a failed allocation as out_of_memory, or (inside its
     * unpacking) as an error with no text at all: neither is the client's
     * fault. */
    if (!x->json && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
        sl_exchange_fail(x, 503, "overloaded", NULL, "out of memory; retry shortly");
        return -1;
    }
    if (!x->json) {
        sl_exchange_fail(x, 400, "invalid_json", NULL, "request body is not valid JSON: %s (line %d, column %d)",
                         jerr.text, jerr.line, jerr.column);
        return -1;
    }
    if (!json_is_object(x->json)) {
        sl_exchange_fail(x, 400, "invalid_request", NULL, "request body must be a JSON object");
        return -1;
    }
    return 0;
}

/* The client's body is re-serialised from x->json (legacy conversion,
 * an injected output limit). */
static int reserialise(sl_exchange *x)
{
    char *js = sl_json_dumps(x->json, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (!js) {
        sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
        return -1;
    }
    x->body_len = strlen(js);
    x->body = sl_arena_strndup(x->arena, js, x->body_len);
    free(js);
    if (!x->body) {
        sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
        return -1;
    }
    /* client_model pointed into the old JSON only through x->json, which
     * is unchanged: still valid. */
    return 0;
}

/* The model name: from the path for Gemini, else the body's "model". */
static int read_model(sl_exchange *x, size_t *model_len)
{
    const sl_http_request *req = x->req;
    if (x->op == SL_OP_GENERATE) {
        /* /v1beta/models/{model}:generateContent | :streamGenerateContent */
        const char *m = req->path + 15;
        size_t mn = req->path_len - 15;
        const char *colon = memchr(m, ':', mn);
        size_t verb_len = colon ? mn - (size_t)(colon - m) - 1 : 0;
        const char *verb = colon ? colon + 1 : "";
        if (!colon || colon == m) {
            sl_exchange_fail(x, 404, NULL, NULL, "expected /v1beta/models/{model}:generateContent");
            return -1;
        }
        if (verb_len == 21 && memcmp(verb, "streamGenerateContent", 21) == 0) {
            x->stream = 1;
        } else if (!(verb_len == 15 && memcmp(verb, "generateContent", 15) == 0)) {
            sl_exchange_fail(x, 404, NULL, NULL, "only :generateContent and :streamGenerateContent are served");
            return -1;
        }
        int n = 0;
        char *name = curl_easy_unescape(NULL, m, (int)(colon - m), &n);
        x->client_model = name ? sl_arena_strndup(x->arena, name, (size_t)n) : NULL;
        curl_free(name);
        if (!x->client_model) {
            sl_exchange_fail(x, 500, NULL, NULL, "out of memory");
            return -1;
        }
        *model_len = (size_t)n;
        return 0;
    }
    json_t *model = json_object_get(x->json, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        sl_exchange_fail(x, 400, "invalid_request", NULL, "'model' is required and must be a string");
        return -1;
    }
    x->client_model = json_string_value(model);
    *model_len = json_string_length(model);
    x->stream = json_is_true(json_object_get(x->json, "stream"));
    return 0;
}

/* Budgeted keys get an output limit written into requests without one. */
static int key_budgeted(const sl_exchange *x)
{
    const sl_table *t = x->t;
    return x->key >= 0 && (t->keys[x->key].budget.per != SL_PERIOD_NONE ||
                           (t->keys[x->key].team >= 0 && t->teams[t->keys[x->key].team].budget.per != SL_PERIOD_NONE));
}

/* The top-level members the scanned path reads, and two whose presence
 * sends a request to the full parse. */
enum { TOP_MODEL, TOP_STREAM, TOP_MAX_TOKENS, TOP_MAX_COMPLETION_TOKENS, TOP_STREAM_OPTIONS, TOP_REASONING_EFFORT, TOP_N };
static const char *const top_names[TOP_N] = {"model", "stream", "max_tokens", "max_completion_tokens",
                                             "stream_options", "reasoning_effort"};

/* An output limit member read as admit.c reads it: 0 when absent or null,
 * 1 with *v for a whole number in 1..SL_MAX_OUTPUT_TOKENS, -1 for anything
 * else (the full path then words the refusal). */
static int scanned_limit(const char *b, sl_json_span s, int64_t *v)
{
    if (!s.end)
        return 0;
    const char *p = b + s.start;
    size_t n = s.end - s.start;
    if (n == 4 && memcmp(p, "null", 4) == 0)
        return 0;
    if (n > 9)
        return -1;
    int64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        r = r * 10 + (p[i] - '0');
    }
    if (r < 1 || r > SL_MAX_OUTPUT_TOKENS)
        return -1;
    *v = r;
    return 1;
}

/* A chat or messages request to its own protocol with no guardrails and
 * no cache needs only its model, stream flag and output limit until a
 * target's fitting or a translation asks for more (sl_exchange_json): the
 * body is scanned (json/json_top.h), not parsed, and goes upstream as the
 * client's bytes. 1 when scanned, 0 when it must be parsed: the scan was
 * unsure, or a member needs the parsed form (stream_options, a reasoning
 * effort, a limit to inject or to refuse). */
static int scan_body(sl_exchange *x)
{
    if (x->legacy || x->t->guard || x->t->cache_ops)
        return 0;
    int openai = x->op == SL_OP_CHAT && x->surface == SL_PROTO_OPENAI;
    if (!openai && !(x->op == SL_OP_MESSAGES && x->surface == SL_PROTO_ANTHROPIC))
        return 0;
    sl_json_span m[TOP_N];
    if (sl_json_top_scan(x->body, x->body_len, top_names, TOP_N, m) != SL_JSON_TOP_OK)
        return 0;
    if (m[TOP_STREAM_OPTIONS].end || m[TOP_REASONING_EFFORT].end)
        return 0;
    const char *model;
    size_t mlen;
    if (sl_json_span_plain_string(x->body, m[TOP_MODEL], &model, &mlen) != 0 || mlen == 0)
        return 0;
    int64_t a = 0, b = 0;
    int ra = openai ? scanned_limit(x->body, m[TOP_MAX_COMPLETION_TOKENS], &a) : 0;
    int rb = scanned_limit(x->body, m[TOP_MAX_TOKENS], &b);
    if (ra < 0 || rb < 0 || (ra && rb && a != b))
        return 0;
    if (!ra && !rb && key_budgeted(x))
        return 0; /* the limit gets written into the body */
    char *cm = sl_arena_strndup(x->arena, model, mlen);
    if (!cm)
        return 0; /* the full path answers the shortage */
    x->client_model = cm;
    x->stream = sl_json_span_is_true(x->body, m[TOP_STREAM]);
    x->scanned = 1;
    x->scanned_limit_given = ra || rb;
    x->scanned_limit = ra ? a : rb ? b : SL_DEFAULT_OUTPUT_TOKENS;
    return 1;
}

/* Routes and checks the key's scope. 0, or -1 after answering. */
static int route(sl_exchange *x, size_t model_len)
{
    const sl_table *t = x->t;
    int entry = sl_route_lookup(t, x->client_model, model_len);
    if (entry < 0) {
        sl_exchange_fail(x, 404, "model_not_found", NULL, "model '%s' is not served by this gateway",
                         x->client_model);
        return -1;
    }
    x->entry = entry;
    if (!sl_auth_allows(t, x->key, (uint32_t)entry)) {
        sl_exchange_fail(x, 403, "model_not_allowed", NULL, "this API key may not use model '%s'", x->client_model);
        return -1;
    }
    return 0;
}

/* Tools and images the request carries (translate/fit.h), worked out once
 * and only when a target might lack them: the walk is over the whole body. */
static uint32_t request_needs(sl_exchange *x, uint32_t *needs, int *known)
{
    if (!*known) {
        json_t *j = sl_exchange_json((sl_exchange *)x);
        *needs = j ? sl_fit_needs(x->surface, j) : 0;
        *known = 1;
    }
    return *needs;
}

/* Filters the plan to targets that serve the operation (and take the
 * tools or images the request carries, when the catalog knows), have their
 * provider's key (an optional provider may lack it) and, under a USD
 * budget, have a price; hands the priced plan to admission, which goes
 * upstream when it says so (perhaps after Redis has). 0, or -1 after
 * answering. */
static int plan_and_admit(sl_exchange *x)
{
    const sl_table *t = x->t;
    int entry = x->entry;
    sl_attempt all[SL_MAX_ATTEMPTS], plan[SL_MAX_ATTEMPTS];
    sl_router *router = sl_proxy_router(x->w);
    if (!router) { /* the worker's set-up ran out of memory */
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "router unavailable; retry shortly");
        return -1;
    }
    size_t n = sl_route_plan(router, (uint32_t)entry, all, SL_MAX_ATTEMPTS), kept = 0;
    const sl_provider *skipped = NULL, *keyless = NULL;
    const char *keyless_var = NULL;
    /* What the request needs that a model the catalog knows may lack:
     * looked at only when some target lacks tools or images. */
    int no_needs = x->op == SL_OP_EMBEDDINGS || x->op == SL_OP_COUNT_TOKENS;
    uint32_t needs = 0;
    int needs_known = 0;
    const sl_attempt *lacking = NULL;
    uint32_t lacks = 0;
    for (size_t i = 0; i < n; i++) {
        const sl_target *tg = &t->targets[all[i].target];
        uint32_t pi = tg->provider;
        const sl_provider *p = &t->providers[pi];
        const char *var = sl_proxy_provider_keyless(t, pi);
        if (!sl_provider_serves(p, x->op)) {
            skipped = p;
        } else if (!no_needs && (tg->caps & SL_CAP_KNOWN) && (~tg->caps & (SL_CAP_TOOLS | SL_CAP_VISION)) &&
                   (request_needs(x, &needs, &needs_known) & ~tg->caps)) {
            if (!lacking) {
                lacking = &all[i];
                lacks = needs & ~tg->caps;
            }
        } else if (var) {
            keyless = p;
            keyless_var = var;
        } else {
            plan[kept++] = all[i];
        }
    }
    if (kept == 0 && keyless) {
        sl_exchange_fail(x, 503, "provider_key_missing", NULL,
                         "model '%s' is served by provider '%s', whose API key variable %s is not set "
                         "on this gateway",
                         x->client_model, keyless->name, keyless_var);
        return -1;
    }
    if (kept == 0 && lacking) {
        const sl_target *tg = &t->targets[lacking->target];
        sl_exchange_fail(x, 400, "unsupported_input", NULL,
                         "model '%s' is served by '%s/%s', which does not accept %s (per the model "
                         "catalog); no other target of this model does",
                         x->client_model, t->providers[tg->provider].name,
                         sl_route_upstream_model(t, lacking, x->client_model),
                         lacks & SL_CAP_TOOLS ? (lacks & SL_CAP_VISION ? "tools or images" : "tools") : "images");
        return -1;
    }
    if (kept == 0) {
        sl_exchange_fail(x, 400, "unsupported_route", NULL,
                         "model '%s' is served by provider '%s', which does not speak the %s API", x->client_model,
                         skipped ? skipped->name : "?", sl_proto_name(x->surface));
        return -1;
    }

    /* One output limit for admission and the upstream request alike. */
    sl_limit lim;
    char err[160];
    if (x->scanned) { /* as sl_admit_output_limit reads it (scan_body); no thinking budget */
        lim = (sl_limit){.output = x->scanned_limit, .worst = x->scanned_limit, .given = x->scanned_limit_given};
    } else if (sl_admit_output_limit(x->json, x->op, x->surface, key_budgeted(x), &lim, err, sizeof err) != 0) {
        sl_exchange_fail(x, 400, "invalid_request", NULL, "%s", err);
        return -1;
    }
    if (lim.injected && reserialise(x) != 0)
        return -1;

    int64_t in = sl_usage_estimate_tokens(x->body_len + x->prev_bytes);
    sl_usage_counts worst = {.input = in, .output = lim.worst};
    int unpriced;
    int64_t est_usd = sl_admit_price_plan(t, plan, &kept, x->client_model, &worst,
                                          sl_gov_usd_budget_applies(t, x->key), &unpriced);
    if (kept == 0) {
        const sl_target *tg = &t->targets[unpriced];
        sl_attempt a = {.entry = (uint32_t)entry, .target = (uint32_t)unpriced};
        sl_exchange_fail(x, 400, "model_not_priced", NULL,
                         "model '%s' (provider '%s', upstream model '%s') has no price in this gateway's spec, "
                         "and this key's budget is in USD",
                         x->client_model, t->providers[tg->provider].name,
                         sl_route_upstream_model(t, &a, x->client_model));
        return -1;
    }
    sl_admission_run(x, plan, kept, est_usd, sl_sat_add_count(in, lim.worst));
    return 0;
}

/* Everything after the cache stage. */
static void serve(sl_exchange *x)
{
    plan_and_admit(x);
}

void sl_inference_handle(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                         size_t len)
{
    sl_exchange *x = sl_exchange_new(c, ep->op, (sl_proto)ep->surface, req, body, len);
    if (!x) {
        sl_surface_error(c, (sl_proto)ep->surface, 503, "overloaded", "Retry-After: 1\r\n",
                         "out of memory; retry shortly");
        return;
    }
    x->legacy = ep->legacy;
    sl_auth_status as = sl_auth_identify(x->t, req, sl_conn_peer(c), &x->key);
    if (as != SL_AUTH_OK) {
        /* The head check normally refused already; this covers a server
         * without it. One message for every refused key. */
        sl_exchange_fail(x, 401, "invalid_api_key", NULL, "%s", sl_dispatch_refusal(c, as));
        return;
    }
    if (!scan_body(x) && parse_body(x) != 0)
        return;
    if (x->legacy) {
        char err[160];
        json_t *chat = sl_legacy_to_chat(x->json, err, sizeof err);
        if (!chat) {
            sl_exchange_fail(x, 400, "invalid_request", NULL, "%s", err);
            return;
        }
        json_decref(x->json);
        x->json = chat;
        if (reserialise(x) != 0)
            return;
    }
    size_t model_len = x->scanned ? strlen(x->client_model) : 0;
    if (!x->scanned && read_model(x, &model_len) != 0)
        return;
    /* A routed name becomes a URL segment, a ledger key and a log field:
     * anything but valid UTF-8 is refused before admission. */
    if (!sl_utf8_valid(x->client_model, model_len)) {
        x->client_model = NULL; /* not logged either */
        sl_exchange_fail(x, 400, "invalid_request", NULL, "'model' must be valid UTF-8");
        return;
    }
    x->client_usage = x->surface == SL_PROTO_OPENAI &&
                      json_is_true(json_object_get(json_object_get(x->json, "stream_options"), "include_usage"));
    if (x->surface == SL_PROTO_RESPONSES) {
        /* Hosted tools a client offers are dropped in translation; the
         * client learns which from a header. */
        char names[256];
        if (sl_translate_dropped_tools(x->json, names, sizeof names) > 0)
            x->dropped_tools = sl_arena_printf(x->arena, "x-sluice-dropped-tools: %s\r\n", names);
        sl_rstate_begin(x); /* store, previous_response_id */
    }
    /* Guardrails on the request, before the cache key is made and before
     * any budget is reserved. */
    if (x->t->guard && x->t->guard->ops->request(x, model_len) != 0)
        return;
    if (route(x, model_len) != 0)
        return;
    /* Before admission: a cached answer costs nothing against budgets. */
    if (x->t->cache_ops && (!x->guard || x->t->guard->ops->cacheable(x->guard)) &&
        x->t->cache_ops->lookup(x, serve))
        return; /* answered, or serve() follows its embeddings lookup */
    serve(x);
}
