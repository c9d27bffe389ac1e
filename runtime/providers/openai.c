/*
 * OpenAI-kind providers (OpenAI itself and every server that copies its
 * API: vLLM, Ollama, LM Studio, ...). base_url includes the version, as the
 * OpenAI SDK's does, so the operation path is appended as is. Presets of
 * this protocol (groq, azure, ...) differ only in table fields: auth
 * header, URL style, operations served, quirks.
 */
#include <curl/curl.h>

#include "providers/provider.h"

/* Chat-style operations of other protocols arrive translated. */
static int serves(sl_op op)
{
    (void)op;
    return 1;
}

static sl_proto proto(sl_op op)
{
    (void)op;
    return SL_PROTO_OPENAI;
}

/* Azure OpenAI names the deployment in the path (the spec's, or the
 * upstream model name, percent-escaped: a glob entry passes the client's
 * spelling through) and wants api-version in the query. */
static const char *azure_url(const sl_call *c, const char *path)
{
    const char *dep = c->prov->deployment ? c->prov->deployment : c->model;
    char *esc = curl_easy_escape(NULL, dep, 0);
    if (!esc)
        return NULL;
    const char *u = sl_arena_printf(c->arena, "%s/openai/deployments/%s%s?api-version=%s",
                                    c->prov->base_url, esc, path,
                                    c->prov->api_version ? c->prov->api_version : "");
    curl_free(esc);
    return u;
}

/* A provider marked `responses: true` serves Responses requests itself;
 * everything else chat-like arrives translated to Chat Completions. */
static const char *url(const sl_call *c)
{
    const char *path = c->op == SL_OP_EMBEDDINGS                       ? "/embeddings"
                       : c->op == SL_OP_RESPONSES && c->prov->responses ? "/responses"
                                                                        : "/chat/completions";
    if (c->prov->url_style == SL_URL_AZURE)
        return azure_url(c, path);
    return sl_arena_cat(c->arena, c->prov->base_url, path, (char *)NULL);
}

const sl_provider_ops sl_provider_openai = {
    .kind = "openai",
    .serves = serves,
    .proto = proto,
    .url = url,
    .auth_format = "Authorization: Bearer %s",
    .headers = NULL,
    .transport = &sl_transport_curl,
};
