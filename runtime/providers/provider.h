/*
 * Provider adapters: everything that differs between provider kinds sits
 * behind one ops struct, so the attempt path never switches on a kind.
 * An adapter says which operations its kind serves, which wire protocol it
 * speaks for each, the upstream URL of an operation, how the provider key
 * is presented and which extra headers go with it, and how the request
 * travels (libcurl for real providers, in process for the mock). Presets
 * (groq, azure, bedrock...) are further rows of the same table.
 */
#ifndef SLUICE_PROVIDER_H
#define SLUICE_PROVIDER_H

#include <stddef.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/proto.h"
#include "http/http.h"
#include "table.h"
#include "upstream/upstream.h"

struct ev_loop;

/* One upstream call as an adapter sees it. */
typedef struct sl_call {
    sl_arena *arena;                /* the exchange's: URLs and header lines live here */
    const sl_provider *prov;
    sl_op op;
    sl_proto client;                /* the protocol the client speaks */
    const sl_http_request *req;     /* the client's request: headers an adapter may forward */
    const char *model;              /* upstream model name */
    int stream;
    const char *body;               /* the body as it goes upstream (after ops->body) */
    size_t body_len;
} sl_call;

/* How a request travels. Both transports drive the same callbacks, so the
 * attempt and relay stages cannot tell them apart. */
typedef struct sl_transport {
    void *(*start)(struct ev_loop *loop, sl_upstream *up, const sl_xfer_spec *spec,
                   const sl_xfer_callbacks *cb, void *ctx);
    void (*cancel)(void *xfer);
    void (*resume)(void *xfer);
} sl_transport;

/* Appends one header line; the adapter never sees the list itself. */
typedef void (*sl_header_add)(void *ctx, const char *line);

typedef struct sl_provider_ops {
    const char *kind;
    /* Does this kind serve `op` at all? */
    int (*serves)(sl_op op);
    /* The wire protocol it speaks for `op`. */
    sl_proto (*proto)(sl_op op);
    /* ...or, when set, for `op` to this provider's `model` (Vertex AI
     * speaks Gemini to Google's models and Anthropic to Claude). */
    sl_proto (*proto_for)(const sl_provider *p, const char *model, sl_op op);
    /* The upstream URL (in c->arena), NULL when memory runs out. Built
     * from the spec and the protocol's own parameters only: nothing of the
     * client's query string is forwarded. */
    const char *(*url)(const sl_call *c);
    /* printf format turning the provider's secret into its auth header
     * line ("Authorization: Bearer %s"), or NULL when the kind has none. */
    const char *auth_format;
    /* Protocol headers besides auth and content type (may be NULL). */
    void (*headers)(const sl_call *c, sl_header_add add, void *ctx);
    const sl_transport *transport;
    /* Kinds whose wire format is not their protocol's own (bedrock: an
     * Anthropic body reshaped, event-stream frames; vertex: Anthropic's
     * body without model) adapt at the edge; all
     * NULL for the others. body: the protocol body -> the wire body (in
     * c->arena); 0, or -1 with err (the request cannot be sent). */
    int (*body)(const sl_call *c, const char **body, size_t *len, char *err, size_t errlen);
    /* A whole answer (any status) -> the protocol's shape, in place. */
    void (*response)(const sl_call *c, int status, sl_buf *body);
    /* A stream decoder placed before every relay filter: new (NULL when
     * memory runs out; freed with the arena), feed and finish as sl_filter's. */
    void *(*stream_new)(const sl_call *c);
    int (*stream_feed)(void *st, const char *p, size_t n, sl_buf *out);
    int (*stream_finish)(void *st, sl_buf *out);
    const char *(*stream_error)(void *st); /* why the decoder failed, or NULL */
} sl_provider_ops;

const sl_provider_ops *sl_provider_ops_of(sl_kind k);

/* Does provider p serve op: its kind does, and its preset (if it narrows
 * the kind's operations) lists it. */
int sl_provider_serves(const sl_provider *p, sl_op op);
/* The provider's auth header format: its preset's, else its kind's; NULL
 * when it presents no key. */
const char *sl_provider_auth_format(const sl_provider *p);
/* Adds the preset's extra header lines (sl_provider.headers), each copied
 * into c->arena (NULL on exhaustion, which `add` reports). */
void sl_provider_extra_headers(const sl_call *c, sl_header_add add, void *ctx);
/* Every header line of a request to c->prov, in order: content type, no
 * Expect (curl would wait a round trip for 100-continue), our user agent,
 * the request id (so the provider's logs carry the id the client and our
 * log have), Accept for SSE streams, `auth` (NULL: none), the kind's protocol
 * headers and the preset's extra lines. Copies go into c->arena. */
void sl_provider_request_headers(const sl_call *c, const char *request_id, const char *auth,
                                 sl_header_add add, void *ctx);

/* `sluice --provider-url NAME=URL`: points provider NAME (in a writable
 * copy of the compiled providers) at URL instead of the spec's base_url,
 * so an operator can aim a baked binary at a staging upstream or a local
 * test server. URLs come only from the spec or the operator's command line,
 * never from a request. 0, or -1 with err filled. */
int sl_provider_set_url(sl_provider *provs, uint32_t n, const char *arg, char *err, size_t errlen);

/* Loads every file the providers' tls: settings name (CA bundles, client
 * certificates and keys, which must match), as sluicec did, so a gateway
 * started where a file is missing or broken stops at once. 0, or -1 with
 * err naming the provider and the file. */
int sl_provider_check_tls(const sl_provider *provs, uint32_t n, char *err, size_t errlen);

/* Shared by the adapters. */
extern const sl_transport sl_transport_curl;
extern const sl_provider_ops sl_provider_openai, sl_provider_anthropic, sl_provider_gemini,
    sl_provider_mock, sl_provider_bedrock, sl_provider_vertex;
/* The protocol provider p speaks for op to model (proto_for, else proto). */
sl_proto sl_provider_proto(const sl_provider *p, const char *model, sl_op op);
/* Anthropic's forwarded request headers (anthropic-beta), shared with
 * Anthropic on Vertex AI. */
void sl_provider_anthropic_beta(const sl_call *c, sl_header_add add, void *ctx);

#endif
