/*
 * Anthropic Messages. base_url has no version (as the Anthropic SDK's
 * does not). Claude Code and the SDK send anthropic-version and
 * anthropic-beta; those are forwarded when the client speaks Anthropic,
 * and every other client gets the version sluice is written against. The
 * only query parameter the protocol defines, beta=true, is kept; nothing
 * else of the client's query reaches the provider.
 */
#include <string.h>

#include "providers/provider.h"

static int serves(sl_op op)
{
    return op != SL_OP_EMBEDDINGS;
}

static sl_proto proto(sl_op op)
{
    (void)op;
    return SL_PROTO_ANTHROPIC;
}

static int client_asks_beta(const sl_call *c)
{
    size_t n;
    const char *v = c->client == SL_PROTO_ANTHROPIC ? sl_http_query_param(c->req, "beta", &n) : NULL;
    return v && n == 4 && memcmp(v, "true", 4) == 0;
}

static const char *url(const sl_call *c)
{
    const char *path = c->op == SL_OP_COUNT_TOKENS ? "/v1/messages/count_tokens" : "/v1/messages";
    return sl_arena_cat(c->arena, c->prov->base_url, path, client_asks_beta(c) ? "?beta=true" : "",
                        (char *)NULL);
}

static void forward(const sl_call *c, const char *name, sl_header_add add, void *ctx)
{
    const sl_http_header *h = sl_http_find_header(c->req, name);
    if (h)
        add(ctx, sl_arena_printf(c->arena, "%s: %.*s", name, (int)h->value_len, h->value));
}

void sl_provider_anthropic_beta(const sl_call *c, sl_header_add add, void *ctx)
{
    if (c->client == SL_PROTO_ANTHROPIC)
        forward(c, "anthropic-beta", add, ctx);
}

static void headers(const sl_call *c, sl_header_add add, void *ctx)
{
    if (c->client == SL_PROTO_ANTHROPIC && sl_http_find_header(c->req, "anthropic-version"))
        forward(c, "anthropic-version", add, ctx);
    else
        add(ctx, "anthropic-version: 2023-06-01");
    sl_provider_anthropic_beta(c, add, ctx);
}

const sl_provider_ops sl_provider_anthropic = {
    .kind = "anthropic",
    .serves = serves,
    .proto = proto,
    .url = url,
    .auth_format = "x-api-key: %s",
    .headers = headers,
    .transport = &sl_transport_curl,
};
