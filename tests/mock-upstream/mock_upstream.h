/* The mock upstream's shared pieces: a growable byte buffer, a parsed
 * request, and the "reply plan" that the provider logic (mock_api.c) hands
 * to the HTTP server (mock_server.c). A plan is a list of timed writes plus
 * an ending (finish normally, cut the connection, stall, or reset), which is
 * enough to express every behaviour the tests need, from a plain JSON answer
 * to a stream that stops half-way, without the provider code ever touching a
 * socket or a timer. */
#ifndef MOCK_UPSTREAM_H
#define MOCK_UPSTREAM_H

#include <stddef.h>
#include <jansson.h>

typedef struct mu_buf {
    char *p;
    size_t len, cap;
} mu_buf;

void mu_buf_add(mu_buf *b, const void *data, size_t len);
void mu_buf_str(mu_buf *b, const char *s);
void mu_buf_printf(mu_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void mu_buf_free(mu_buf *b);

/* How a reply ends once all its steps are written. */
typedef enum mu_end {
    MU_END_DONE,  /* complete response; keep-alive unless told to close */
    MU_END_CUT,   /* close the connection: the response is incomplete */
    MU_END_STALL, /* keep the connection open and send nothing more */
    MU_END_RESET  /* close with RST (SO_LINGER 0) */
} mu_end;

typedef struct mu_step {
    unsigned delay_ms; /* wait this long before writing data */
    char *data;
    size_t len;
} mu_step;

typedef struct mu_reply {
    mu_step *steps;
    size_t n, cap;
    mu_end end;
    int close;   /* send Connection: close and close after MU_END_DONE */
    int chunked; /* body steps are framed as HTTP chunks */
    json_t *call; /* the /__calls entry to annotate (owned reference) */
} mu_reply;

typedef struct mu_request {
    const char *method;
    const char *target; /* path and query as received */
    json_t *headers;    /* object, lowercased names */
    const char *body;
    size_t body_len;
} mu_request;

typedef struct mu_config {
    unsigned latency_ms; /* default delay before every API answer */
    unsigned jitter_ms;  /* plus a uniform random 0..jitter_ms */
    unsigned long seed;
    int no_auth;         /* accept requests without a provider key */
    long max_calls;      /* call log keeps the newest this many; 0: none */
    /* --reject MODEL=PARAM: an OpenAI-protocol request for MODEL carrying
     * PARAM gets the 400 OpenAI answers for a parameter a model rejects. */
    const char *reject[16];
    int nreject;
} mu_config;

/* Reply building, used by mock_api.c; framing is done here so the provider
 * code only deals in payload bytes. */
void mu_reply_head(mu_reply *r, unsigned delay_ms, int status,
                   const char *content_type, long content_length,
                   const char *extra_headers);
void mu_reply_data(mu_reply *r, unsigned delay_ms, const char *data, size_t len);
void mu_reply_finish(mu_reply *r);
void mu_reply_free(mu_reply *r);

/* Provider behaviour and the call log (mock_api.c). */
void mu_api_init(const mu_config *cfg);
void mu_api_free(void);
void mu_api_handle(const mu_request *rq, mu_reply *rp);

/* The server (mock_server.c). */
typedef struct mu_server mu_server;
struct ev_loop;
mu_server *mu_server_start(struct ev_loop *loop, const char *listen_addr,
                           char *bound, size_t bound_len, char *err, size_t errlen);
void mu_server_stop(mu_server *s);

#endif
