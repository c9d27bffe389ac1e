/*
 * The endpoint table: {methods, path or prefix, operation, surface,
 * authentication, handler} rows, matched in order, instead of a chain of
 * ifs. The server knows nothing of it: main.c registers the two entry
 * points below as the server's handler set. The head entry point runs
 * before any body byte is read, so a request without a valid key costs a
 * parsed head and nothing more.
 */
#ifndef SLUICE_DISPATCH_H
#define SLUICE_DISPATCH_H

#include <stddef.h>

#include "core/proto.h"
#include "http/http.h"
#include "server/server.h"

typedef enum sl_endpoint_auth {
    SL_EP_PUBLIC,   /* no key (healthz, the service probe) */
    SL_EP_CLIENT,   /* a client key when the spec has keys */
    SL_EP_ADMIN,    /* the admin key (the handler checks: it also answers 404 without admin:) */
} sl_endpoint_auth;

typedef struct sl_endpoint sl_endpoint;
typedef void (*sl_endpoint_fn)(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req,
                               const char *body, size_t len);

struct sl_endpoint {
    unsigned methods;        /* bit (1 << sl_http_method) for each accepted method */
    int strict_method;       /* 1: other methods get 405; 0: other methods fall through */
    const char *path;
    int prefix;              /* path is a prefix */
    sl_op op;
    int surface;             /* sl_proto, or -1: Anthropic when anthropic-version is sent */
    int legacy;
    sl_endpoint_auth auth;
    sl_endpoint_fn handler;
};

/* The row serving `req`, or NULL (404). *wrong_method is set when a row
 * matched the path but not the method (405). */
const sl_endpoint *sl_dispatch_find(const sl_http_request *req, int *wrong_method);
/* The surface errors for `req` are answered in. */
sl_proto sl_dispatch_surface(const sl_endpoint *ep, const sl_http_request *req);

/* The server's handler set entries (server/server.h). */
sl_head_verdict sl_dispatch_head(sl_conn *c, const sl_http_request *req);
void sl_dispatch_request(sl_conn *c, const sl_http_request *req, const char *body, size_t len);

/* 401 in the surface's shape, with one message for every refused key (the
 * reason goes to the log, never to the client: telling "expired" from
 * "unknown" would confirm a key is genuine). Returns 0 when authenticated. */
int sl_dispatch_authenticate(sl_conn *c, sl_proto surface, const sl_http_request *req, int *key);
/* The client-facing message for a refusal, after logging its reason. */
const char *sl_dispatch_refusal(sl_conn *c, int auth_status);

#endif
