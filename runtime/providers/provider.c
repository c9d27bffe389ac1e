/*
 * The adapter table: provider kind -> ops, and the libcurl transport the
 * real providers share.
 */
#include "providers/provider.h"

static void *curl_start(struct ev_loop *loop, sl_upstream *up, const sl_xfer_spec *spec,
                        const sl_xfer_callbacks *cb, void *ctx)
{
    (void)loop;
    return sl_xfer_start(up, spec, cb, ctx);
}

static void curl_cancel(void *x) { sl_xfer_cancel(x); }
static void curl_resume(void *x) { sl_xfer_resume(x); }

const sl_transport sl_transport_curl = {curl_start, curl_cancel, curl_resume};

const sl_provider_ops *sl_provider_ops_of(sl_kind k)
{
    switch (k) {
    case SL_KIND_OPENAI: return &sl_provider_openai;
    case SL_KIND_ANTHROPIC: return &sl_provider_anthropic;
    case SL_KIND_GEMINI: return &sl_provider_gemini;
    case SL_KIND_MOCK: return &sl_provider_mock;
    }
    return &sl_provider_openai;
}
