/*
 * OpenAI-kind providers (OpenAI itself and every server that copies its
 * API: vLLM, Ollama, LM Studio, ...). base_url includes the version, as the
 * OpenAI SDK's does, so the operation path is appended as is.
 */
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

/* A provider marked `responses: true` serves Responses requests itself;
 * everything else chat-like arrives translated to Chat Completions. */
static const char *url(const sl_call *c)
{
    return sl_arena_printf(c->arena, "%s%s", c->prov->base_url,
                           c->op == SL_OP_EMBEDDINGS                       ? "/embeddings"
                           : c->op == SL_OP_RESPONSES && c->prov->responses ? "/responses"
                                                                            : "/chat/completions");
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
