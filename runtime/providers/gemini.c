/*
 * Google Gemini (generativelanguage API). The model is a URL path segment
 * here, so it is percent-escaped: the spec and the route lookup bound the
 * name, but a glob entry passes the client's spelling through.
 */
#include <curl/curl.h>

#include "providers/provider.h"

static int serves(sl_op op)
{
    return op != SL_OP_EMBEDDINGS;
}

static sl_proto proto(sl_op op)
{
    (void)op;
    return SL_PROTO_GEMINI;
}

static const char *url(const sl_call *c)
{
    char *esc = curl_easy_escape(NULL, c->model, 0);
    if (!esc)
        return NULL;
    const char *u = sl_arena_cat(c->arena, c->prov->base_url, "/v1beta/models/", esc, ":",
                                 c->stream ? "streamGenerateContent?alt=sse" : "generateContent", (char *)NULL);
    curl_free(esc);
    return u;
}

const sl_provider_ops sl_provider_gemini = {
    .kind = "gemini",
    .serves = serves,
    .proto = proto,
    .url = url,
    .auth_format = "x-goog-api-key: %s",
    .headers = NULL,
    .transport = &sl_transport_curl,
};
