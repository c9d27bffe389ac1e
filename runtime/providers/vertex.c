/*
 * Google Vertex AI. One provider serves two protocols: Google's models
 * speak Gemini's generateContent, Anthropic's Claude models Anthropic's
 * Messages through rawPredict, chosen per model (claude-* is Anthropic)
 * unless the spec's `publisher:` fixes it. The URL carries the project,
 * the location and the model; the key is an OAuth2 access token the
 * OAuth transport (auth/oauth.h) adds, so this adapter has no auth format.
 *
 *   {base}/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent
 *                                                                 :streamGenerateContent?alt=sse
 *   {base}/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict
 *                                                                    :streamRawPredict
 *
 * Anthropic on Vertex takes the Messages body without `model` (it is in
 * the URL) and with "anthropic_version": "vertex-2023-10-16" in the body
 * instead of the header; Claude's token count is the fixed model
 * count-tokens (rawPredict), whose body is the Messages request as is.
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "providers/provider.h"

#define VERTEX_ANTHROPIC_VERSION "vertex-2023-10-16"

static int serves(sl_op op)
{
    return op != SL_OP_EMBEDDINGS;
}

static sl_proto proto(sl_op op)
{
    (void)op;
    return SL_PROTO_GEMINI;
}

static int is_anthropic(const sl_provider *p, const char *model)
{
    if (p->publisher)
        return p->publisher == 2;
    return model && strncmp(model, "claude", 6) == 0;
}

static sl_proto proto_for(const sl_provider *p, const char *model, sl_op op)
{
    (void)op;
    return is_anthropic(p, model) ? SL_PROTO_ANTHROPIC : SL_PROTO_GEMINI;
}

static const char *url(const sl_call *c)
{
    const sl_provider *p = c->prov;
    int anth = is_anthropic(p, c->model);
    const char *method = anth ? (c->op == SL_OP_COUNT_TOKENS ? "rawPredict"
                                 : c->stream                 ? "streamRawPredict"
                                                             : "rawPredict")
                              : (c->stream ? "streamGenerateContent?alt=sse" : "generateContent");
    /* Anthropic counts tokens at a fixed model name; the model goes in the body. */
    const char *model = anth && c->op == SL_OP_COUNT_TOKENS ? "count-tokens" : c->model;
    char *esc = curl_easy_escape(NULL, model, 0);
    if (!esc)
        return NULL;
    const char *u = sl_arena_printf(c->arena, "%s/projects/%s/locations/%s/publishers/%s/models/%s:%s",
                                    p->base_url, p->project ? p->project : "",
                                    p->location ? p->location : "", anth ? "anthropic" : "google", esc,
                                    method);
    curl_free(esc);
    return u;
}

static void headers(const sl_call *c, sl_header_add add, void *ctx)
{
    if (is_anthropic(c->prov, c->model))
        sl_provider_anthropic_beta(c, add, ctx);
}

static int body(const sl_call *c, const char **b, size_t *len, char *err, size_t errlen)
{
    /* Gemini bodies go as they are; Claude's token count takes the
     * Messages body as is, its model included. */
    if (!is_anthropic(c->prov, c->model) || c->op == SL_OP_COUNT_TOKENS)
        return 0;
    json_t *j = json_loadb(*b, *len, 0, NULL);
    if (!json_is_object(j)) { /* our own translation or a parsed client body: cannot happen */
        json_decref(j);
        snprintf(err, errlen, "request body is not a JSON object");
        return -1;
    }
    json_object_del(j, "model");
    json_object_set_new(j, "anthropic_version", json_string(VERTEX_ANTHROPIC_VERSION));
    char *js = sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(j);
    const char *r = js ? sl_arena_strndup(c->arena, js, strlen(js)) : NULL;
    if (!r) {
        free(js);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    *len = strlen(js);
    *b = r;
    free(js);
    return 0;
}

const sl_provider_ops sl_provider_vertex = {
    .kind = "vertex",
    .serves = serves,
    .proto = proto,
    .proto_for = proto_for,
    .url = url,
    .auth_format = NULL,
    .headers = headers,
    .body = body,
    .transport = &sl_transport_curl,
};
