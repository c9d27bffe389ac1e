/*
 * Endpoint rows and the two entry points (see dispatch.h).
 */
#include "proxy/dispatch.h"

#include <string.h>

#include "auth/auth.h"
#include "core/log.h"
#include "handlers/handlers.h"
#include "proxy/inference.h"
#include "proxy/surface.h"

#define M(m) (1u << (m))
#define GET (M(SL_HTTP_GET) | M(SL_HTTP_HEAD))
#define POST M(SL_HTTP_POST)
#define ANY (~0u)

static const sl_endpoint endpoints[] = {
    {GET, 0, "/healthz", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_healthz},
    /* Claude Code probes HEAD / before its first request. */
    {GET, 0, "/", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_service},
    {GET, 0, "/metrics", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_ADMIN, sl_handle_metrics},
    {ANY, 1, "/admin/", 1, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_ADMIN, sl_handle_admin},
    {POST, 1, "/v1/chat/completions", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_CLIENT, sl_inference_handle},
    {POST, 1, "/v1/messages", 0, SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT, sl_inference_handle},
    {POST, 1, "/v1/messages/count_tokens", 0, SL_OP_COUNT_TOKENS, SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT,
     sl_inference_handle},
    /* Legacy completions are served by chat targets; see proxy/legacy.c. */
    {POST, 1, "/v1/completions", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 1, SL_EP_CLIENT, sl_inference_handle},
    {POST, 1, "/v1/responses", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT, sl_inference_handle},
    /* Stored responses: GET, DELETE, .../input_items, .../cancel (the
     * handler answers 405 for the rest). */
    {GET | POST | M(SL_HTTP_DELETE), 0, "/v1/responses/", 1, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT,
     sl_handle_responses},
    {POST, 1, "/v1/embeddings", 0, SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, 0, SL_EP_CLIENT, sl_inference_handle},
    {POST, 1, "/v1beta/models/", 1, SL_OP_GENERATE, SL_PROTO_GEMINI, 0, SL_EP_CLIENT, sl_inference_handle},
    {GET, 0, "/v1/models", 0, SL_OP_CHAT, -1, 0, SL_EP_CLIENT, sl_handle_models},
};

static int path_matches(const sl_endpoint *ep, const sl_http_request *r)
{
    size_t n = strlen(ep->path);
    if (ep->prefix)
        return r->path_len > n && memcmp(r->path, ep->path, n) == 0;
    return r->path_len == n && memcmp(r->path, ep->path, n) == 0;
}

const sl_endpoint *sl_dispatch_find(const sl_http_request *req, int *wrong_method)
{
    *wrong_method = 0;
    for (size_t i = 0; i < sizeof endpoints / sizeof *endpoints; i++) {
        const sl_endpoint *ep = &endpoints[i];
        if (!path_matches(ep, req))
            continue;
        if (ep->methods & M(req->method))
            return ep;
        if (ep->strict_method) {
            *wrong_method = 1;
            return ep;
        }
    }
    return NULL;
}

sl_proto sl_dispatch_surface(const sl_endpoint *ep, const sl_http_request *req)
{
    if (ep && ep->surface >= 0)
        return (sl_proto)ep->surface;
    return sl_http_find_header(req, "anthropic-version") ? SL_PROTO_ANTHROPIC : SL_PROTO_OPENAI;
}

const char *sl_dispatch_refusal(sl_conn *c, int auth_status)
{
    sl_auth_status as = (sl_auth_status)auth_status;
    if (as == SL_AUTH_MISSING)
        return "missing API key (send Authorization: Bearer, x-api-key or x-goog-api-key)";
    sl_log_info("refused key from %s: %s", sl_conn_peer(c),
                as == SL_AUTH_EXPIRED   ? "expired"
                : as == SL_AUTH_ADDRESS ? "address not allowed"
                                        : "unknown key");
    return "invalid API key";
}

int sl_dispatch_authenticate(sl_conn *c, sl_proto surface, const sl_http_request *req, int *key)
{
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    sl_auth_status as = sl_auth_identify(t, req, sl_conn_peer(c), key);
    if (as == SL_AUTH_OK) {
        if (*key >= 0)
            sl_conn_set_authenticated(c);
        return 0;
    }
    sl_surface_error(c, surface, 401, "invalid_api_key", NULL, "%s", sl_dispatch_refusal(c, as));
    return -1;
}

static void not_found(sl_conn *c, const sl_http_request *req)
{
    sl_surface_error(c, sl_dispatch_surface(NULL, req), 404, NULL, NULL, "no route for %.*s %.*s",
                     (int)req->method_len, req->method_str, (int)(req->path_len > 200 ? 200 : req->path_len),
                     req->path);
}

static void wrong_method(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req)
{
    sl_surface_error(c, sl_dispatch_surface(ep, req), 405, NULL,
                     ep->methods == POST ? "Allow: POST\r\n" : "Allow: GET\r\n", "use %s for %.*s",
                     ep->methods == POST ? "POST" : "GET", (int)(req->path_len > 200 ? 200 : req->path_len),
                     req->path);
}

/* Before the body: refuse what cannot succeed whatever the body says, so
 * an unauthenticated client never gets a body buffer. */
sl_head_verdict sl_dispatch_head(sl_conn *c, const sl_http_request *req)
{
    int bad_method;
    const sl_endpoint *ep = sl_dispatch_find(req, &bad_method);
    /* A 404 or 405 without a body keeps the connection (pipelined
     * clients); with one, it is answered now and the body never read. */
    int has_body = req->chunked || req->content_length > 0;
    if (!ep || (bad_method && ep->auth != SL_EP_ADMIN)) {
        if (!has_body)
            return SL_HEAD_CONTINUE; /* sl_dispatch_request answers */
        if (!ep)
            not_found(c, req);
        else
            wrong_method(c, ep, req);
        return SL_HEAD_DONE;
    }
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    if (ep->auth == SL_EP_CLIENT) {
        int key;
        if (sl_dispatch_authenticate(c, sl_dispatch_surface(ep, req), req, &key) != 0)
            return SL_HEAD_DONE;
    } else if (ep->auth == SL_EP_ADMIN) {
        if (t->has_admin && !sl_auth_is_admin(t, req)) {
            sl_surface_error(c, SL_PROTO_OPENAI, 401, "invalid_api_key", NULL, "admin key required");
            return SL_HEAD_DONE;
        }
        if (t->has_admin)
            sl_conn_set_authenticated(c);
    }
    return SL_HEAD_CONTINUE;
}

void sl_dispatch_request(sl_conn *c, const sl_http_request *req, const char *body, size_t len)
{
    int bad_method;
    const sl_endpoint *ep = sl_dispatch_find(req, &bad_method);
    if (!ep) {
        not_found(c, req);
        return;
    }
    if (bad_method && ep->auth != SL_EP_ADMIN) {
        wrong_method(c, ep, req);
        return;
    }
    ep->handler(c, ep, req, body, len);
}
