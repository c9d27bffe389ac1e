/*
 * The response side of an exchange as a chain of body filters (h2o's
 * output filters are the model): upstream bytes go in, client bytes come
 * out. Observers look at the bytes without changing them (usage and event
 * counting), transformers rewrite them (usage-chunk stripping, protocol
 * translation, legacy completions). A pass-through stream has only an
 * observer and costs no copy. New response-side capabilities (guardrails,
 * cache fill, metrics) are new filters here, not new branches elsewhere.
 *
 * Whole (non-stream) bodies take the same decisions in one call:
 * sl_relay_body().
 */
#ifndef SLUICE_RELAY_H
#define SLUICE_RELAY_H

#include <stddef.h>

#include "core/buf.h"
#include "core/proto.h"
#include "govern/usage.h"
#include "proxy/legacy.h"
#include "translate/translate.h"

struct sl_guard_ops;
struct sl_guard_req;

typedef struct sl_filter {
    const char *name;
    int observer;  /* sees bytes, produces none */
    /* Transformers append to out; 0, SL_FILTER_UNCHANGED when the output
     * is the input as it is (out untouched: nothing is copied), or -1 when
     * the stream cannot go on. */
    int (*feed)(void *st, const char *p, size_t n, sl_buf *out);
    /* Upstream ended cleanly; -1 when the stream was truncated. May be NULL. */
    int (*finish)(void *st, sl_buf *out);
    void *st;
} sl_filter;

#define SL_FILTER_UNCHANGED 1

#define SL_RELAY_MAX_FILTERS 6

/* How one response reaches the client. */
typedef struct sl_relay_cfg {
    sl_proto up;            /* what the provider speaks */
    sl_proto client;        /* what the client speaks */
    int legacy;             /* /v1/completions client, served as chat */
    int strip_usage;        /* sluice asked an OpenAI upstream for usage the client did not */
    const char *client_model;
    /* Decodes the provider's stream framing into `up`'s SSE before every
     * other filter (bedrock's event stream), or NULL. */
    const sl_filter *pre;
    /* Why `pre` failed (for the client's error and the log), or NULL. */
    const char *(*pre_detail)(void *st);
    /* Guardrails on the response (NULL: none apply). */
    const struct sl_guard_ops *gops;
    struct sl_guard_req *guard;
} sl_relay_cfg;

typedef struct sl_relay {
    sl_filter f[SL_RELAY_MAX_FILTERS];
    size_t n;
    sl_buf scratch[2];
    sl_usage_stream usage;   /* observes the upstream bytes */
    sl_stream *xl;           /* translator, when the protocols differ */
    sl_legacy_stream legacy;
    const char *error;       /* the filter that failed */
    const char *detail;      /* its account of why (the `pre` filter's), or NULL */
    const char *(*pre_detail)(void *st);
    int reframed;            /* a `pre` filter rewrites the framing: the client gets SSE */
} sl_relay;

/* Builds the chain for a stream. 0, or -1 when memory runs out. */
int sl_relay_init(sl_relay *r, const sl_relay_cfg *cfg);
/* Appends a filter (later issues' filters). 0, or -1 when the chain is full. */
int sl_relay_add(sl_relay *r, const sl_filter *f);
/* Runs bytes through the chain. The client bytes are out and out_n: either
 * the input itself or a scratch buffer valid until the next call; 0, or -1
 * with r->error naming the failing filter. */
int sl_relay_feed(sl_relay *r, const char *p, size_t n, const char **out, size_t *out_n);
int sl_relay_finish(sl_relay *r, const char **out, size_t *out_n);
/* Usage the stream reported (the translator's reading when translating,
 * which understands every protocol); events seen is a floor for output. */
void sl_relay_usage(const sl_relay *r, sl_usage_counts *u, int64_t *events);
void sl_relay_free(sl_relay *r);

/* A whole 2xx body: usage read from it, then translated and/or rewritten
 * for legacy clients, then guardrails (-2 with err: blocked). On success the body and its length may be replaced by a malloc'd
 * body (the old one is freed). -1 with err when the upstream body is not a
 * response of its protocol. */
int sl_relay_body(const sl_relay_cfg *cfg, char **body, size_t *len, sl_usage_counts *u,
                  char *err, size_t errlen);
/* A non-2xx body from `up` in the client's shape and status. */
void sl_relay_error_body(sl_proto up, sl_proto client, int *status, char **body, size_t *len,
                         const char **ctype);

#endif
