/*
 * One client request from routing to its last byte: the exchange. It is
 * allocated in the connection's arena, and every heap member it acquires
 * (JSON values, curl header lists, buffers, stream translators, the
 * upstream transfer, the backoff timer) is released by one cleanup
 * registered on that arena, so no exit can leak one.
 *
 * Every way an exchange ends goes through sl_exchange_finish(): access log,
 * settlement and the ledger row, the response (held until the ledger row is
 * committed for budgeted keys), release. Stages never respond themselves.
 */
#ifndef SLUICE_EXCHANGE_H
#define SLUICE_EXCHANGE_H

#include <ev.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/proto.h"
#include "core/reqid.h"
#include "govern/govern.h"
#include "govern/usage.h"
#include "http/http.h"
#include "providers/provider.h"
#include "proxy/attempt.h"
#include "proxy/relay.h"
#include "server/conn.h"
#include "table.h"

struct curl_slist;
struct sl_hold;

typedef struct sl_exchange {
    sl_conn *conn;
    sl_worker *w;
    const sl_table *t;
    sl_arena *arena;
    sl_op op;
    char request_id[SL_REQID_MAX + 1]; /* the connection's, kept for a held finish */
    sl_proto surface;        /* what the client speaks */
    int legacy;              /* /v1/completions client, served as chat */
    const sl_http_request *req;
    const char *body;        /* the client's body (possibly normalised) */
    size_t body_len;
    json_t *json;            /* NULL on the scanned path until sl_exchange_json() */
    /* A same-protocol request the scan answered (inference.c): no jansson
     * parse unless a later stage asks; its output limit as read there. */
    int scanned;
    int scanned_limit_given;
    int64_t scanned_limit;
    const char *client_model;
    int stream;
    int key;                 /* -1: open gateway */
    int client_usage;        /* the OpenAI client asked for stream usage itself */
    const char *dropped_tools; /* x-sluice-dropped-tools line (Responses clients), or NULL */
    /* Responses conversation state (proxy/rstate.h): the request as
     * translated tries see it (previous items prepended), the chain so
     * far, the id sluice gives the answer, and the row to keep. */
    json_t *xjson;
    json_t *prev_context;
    const char *prev_id;     /* previous_response_id as sent, or NULL */
    int prev_missing;        /* not in this gateway's store */
    size_t prev_bytes;       /* the earlier turns' items, serialised: part of the input */
    int store;               /* keep the answer (store: true, translated) */
    char resp_id[64];
    void *store_rec;         /* sl_rstore_rec, until the ledger takes it */
    ev_tstamp started;
    double ttfb_ms;
    int entry;               /* model entry asked for, -1 until routed */
    /* For the overhead figure: time waiting on upstreams and backoffs. */
    ev_tstamp try_started, wait_started;
    double waited_s;
    struct sl_metrics_shard *metrics;
    struct sl_trace_req *trace;  /* NULL unless the spec has telemetry: */
    /* Caching (runtime/cache; only specs with cache: set these). */
    struct sl_cache_req *cache;  /* this answer may be stored, or NULL */
    const char *cache_header;    /* "x-sluice-cache: ...\r\n", or NULL */
    const char *cache_result;    /* its word (hit, miss, bypass) for the access log */
    int cache_hit;               /* answered from the cache */
    int64_t cache_saved;         /* a hit: what the stored answer cost */
    struct sl_guard_req *guard;  /* NULL unless guardrails apply to this request */
    int finished;

    sl_attempts attempts;
    ev_timer backoff;

    /* The current try. */
    const sl_provider *prov;
    const sl_provider_ops *pops;
    const char *upstream_model;
    sl_proto up_proto;
    sl_xfer_headers headers; /* in the arena */
    void *xfer;
    const sl_transport *transport;
    char *xbody;             /* translated request body (malloc'd) */
    int status;
    const char *content_type; /* in the arena; NULL when the answer had none */
    char *passthrough;
    int retry_after_s;
    sl_buf resp;             /* buffered (non-stream or error) body */
    size_t resp_charged;     /* upstream bytes held, charged to the process memory budget */
    int over_budget;         /* a try was cut because that budget ran out */
    int streaming;           /* committed: bytes went to the client */
    sl_relay relay;

    /* The best failure kept, answered unchanged if nothing better comes. */
    int last_status;
    sl_proto last_proto;
    sl_buf last_body;
    const char *last_ctype;   /* in the arena, or NULL */
    char *last_pass;
    sl_xfer_result last_result;

    /* Governance. */
    int admitted;
    sl_gov_ticket ticket;
    /* Waiting for a shared admission (proxy/admission.c): its handle, and
     * what to go on with when it answers. */
    struct sl_state_pending *state_wait;
    sl_attempt *wait_plan;
    size_t wait_n;
    int64_t wait_usd, wait_tokens;
    int accounted;
    struct sl_hold *hold;    /* waiting for the ledger commit */
    int held_kind;           /* what to send when it commits (sl_finish_kind) */
    int held_status;
    const char *held_ctype, *held_headers;
    char *held_body;         /* malloc'd */
    size_t held_len;
} sl_exchange;

/* A new exchange in c's arena with its cleanup registered; NULL when
 * memory runs out. */
sl_exchange *sl_exchange_new(sl_conn *c, sl_op op, sl_proto surface, const sl_http_request *req,
                             const char *body, size_t body_len);

typedef enum sl_finish_kind {
    SL_FINISH_RESPOND,       /* a whole response */
    SL_FINISH_STREAM_END,    /* a relayed stream ended cleanly */
    SL_FINISH_STREAM_ABORT,  /* a relayed stream failed: error event, truncated end */
    SL_FINISH_GONE,          /* the client went away: nothing to send */
} sl_finish_kind;

typedef struct sl_finish {
    sl_finish_kind kind;
    int status;                    /* logged and recorded (499 when gone) */
    const char *ctype;
    const char *headers;           /* "Name: value\r\n" lines, or NULL */
    char *body;                    /* malloc'd: the finish owns it */
    size_t len;
    const char *error;             /* STREAM_ABORT: the message of the error event */
    const sl_usage_counts *usage;  /* what the provider reported, or NULL */
    int64_t events;                /* stream events seen: a floor for output */
    size_t delivered;              /* response bytes for the output estimate */
    int complete;                  /* the answer was delivered whole */
} sl_finish;

/* The one exit. */
void sl_exchange_finish(sl_exchange *x, sl_finish *f);

/* Finishes with an error of sluice's own, in the client's shape. */
void sl_exchange_fail(sl_exchange *x, int status, const char *code, const char *headers,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Headers sluice adds to routed answers (x-sluice-model, -provider,
 * -attempts) followed by `extra`; in the arena. */
const char *sl_exchange_headers(sl_exchange *x, const char *extra);
/* The client's body as jansson values, parsed on first use when the
 * inference stage only scanned it; NULL when memory runs out. */
json_t *sl_exchange_json(sl_exchange *x);

/* The error type the access log and traces report for a request ending
 * with `status` (aborted: a stream cut after its head): NULL on success,
 * else a short word or the status as text (written into buf). */
const char *sl_exchange_error_type(const sl_exchange *x, int status, int aborted, char *buf,
                                   size_t cap);

/* Releases the upstream side now (transfer, timer, buffers); also run by
 * the arena cleanup. Idempotent. */
void sl_exchange_release(sl_exchange *x);

#endif
