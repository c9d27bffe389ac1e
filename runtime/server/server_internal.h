/*
 * Shared by the server's own files and by nothing else: the worker and
 * connection structs, and the calls server.c (workers, listeners, drain),
 * conn.c (the connection state machine), body.c (request bodies) and
 * respond.c (response output) make into each other. Handlers see none of
 * this; they get server/conn.h.
 */
#ifndef SLUICE_SERVER_INTERNAL_H
#define SLUICE_SERVER_INTERNAL_H

#include <ev.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/arena.h"
#include "core/buf.h"
#include "core/reqid.h"
#include "http/http.h"
#include "server/server.h"

struct sl_upstream;
struct sl_tls_conn;

/* Idle keep-alive queues, shed in this order when slots run short. */
enum { SL_IDLE_ANON = 0, SL_IDLE_AUTHED = 1, SL_IDLE_QUEUES = 2 };

struct sl_worker {
    int id;
    const sl_server_config *cfg;
    struct ev_loop *loop;
    /* The process's listeners this worker accepts on (server.c maps
     * listeners to workers; several workers may share one). */
    int nlisten;
    int *listen_idx;
    ev_io *accept_io;
    int plain_fd;        /* listen_plain: plain HTTP next to HTTPS, or -1 */
    ev_io plain_io;
    ev_async stop_async;
    ev_async shed_async;       /* another worker ran out of slots */
    atomic_uint shed_requests; /* idle connections other workers asked us to close */
    ev_timer drain_timer;
    int stopping;
    int drain_final; /* past the deadline: only arriving requests are left */
    struct sl_upstream *upstream;
    pthread_t thread;
    sl_conn *conns;
    uint32_t conn_count;
    /* Connections waiting for their next request after serving one, oldest
     * at the head, split by whether they ever authenticated. The counts are
     * published for other workers choosing whom to ask for a slot. */
    sl_conn *idle_head[SL_IDLE_QUEUES], *idle_tail[SL_IDLE_QUEUES];
    atomic_uint idle_count[SL_IDLE_QUEUES];
    void *proxy_state;
    void (*proxy_state_free)(void *);
    /* Where every connection of this worker parses a head; a complete
     * head's headers are copied into the connection's arena. */
    sl_http_header head_scratch[SL_HTTP_MAX_HEADERS];
    ev_timer trim_timer; /* gives a finished burst's memory back (server.c) */
    uint32_t busy_peak;  /* most connections seen busy since the last trim */
};

enum sl_conn_state {
    SL_ST_HEAD,     /* reading a request head (or idle between requests) */
    SL_ST_BODY,     /* reading its body */
    SL_ST_HANDLING, /* a handler or an error response owns the connection */
    SL_ST_LINGER,   /* answered before the request was read: discard input, then close */
    SL_ST_CLOSING,
};

struct sl_conn {
    sl_worker *w;
    int fd;
    struct sl_tls_conn *tls; /* NULL on a plain listener */
    int handshaking;         /* TLS handshake in progress */
    int sniffed;             /* the first byte on a TLS listener was looked at */
    enum sl_conn_state state;
    ev_io rio, wio;
    ev_timer timer;
    char peer[64];

    /* Input: the head, undecoded chunked framing and pipelined bytes.
     * Bounded by max_header (plus a little); c->req points into it, so it
     * moves only in grow_in, which re-parses the head after a move. */
    char *in;
    size_t in_len, in_cap;
    sl_http_request req;
    size_t body_raw_end; /* offset in `in` where this request's bytes end */

    /* The request body (Content-Length bytes or decoded chunks), grown as
     * bytes arrive; body_cap is what is charged to the memory budget. */
    char *body;
    size_t body_len, body_cap;
    sl_chunked chunked;
    ev_tstamp body_start; /* when the head was complete */

    sl_buf out;
    sl_arena arena;

    void *exchange;
    const sl_conn_hooks *hooks;
    int keep_alive;
    int streaming;      /* sl_conn_stream_begin called */
    int stream_chunked; /* body framed with chunked encoding */
    int response_done;
    int head_only;      /* HEAD request: no body bytes on the wire */
    int broken;         /* a send failed; closing is pending */
    int linger;         /* answered before all input was read */
    int authenticated;  /* sl_conn_set_authenticated, for the connection's life */
    int idle_queue;     /* SL_IDLE_* while queued, -1 otherwise */
    int close_sent;     /* this response carries Connection: close */
    /* This request's id: the client's x-request-id when acceptable, else
     * random; made when the head is in, or by the first response head of
     * a request refused before that. Cleared between requests. */
    char request_id[SL_REQID_MAX + 1];
    sl_conn *next, *prev;           /* worker's connection list */
    sl_conn *idle_next, *idle_prev; /* worker's idle queue */
};

/* conn.c */
/* Takes over an accepted socket (speaking TLS when `tls`); -1 (socket
 * closed) when out of memory or, for TLS, over the handshake limit. */
int sl_srv_conn_open(sl_worker *w, int fd, const char *peer, int tls);
void sl_srv_conn_close(sl_conn *c);
/* Open client connections across all workers. */
unsigned sl_srv_conn_total(void);
/* Closes this worker's longest-idle keep-alive connection, one that never
 * authenticated if there is one. 1 when a slot was freed, 0 when none idle. */
int sl_srv_shed_idle(sl_worker *w);
/* Drain deadline: close connections between requests and cut in-flight
 * ones, but leave those whose next request is arriving (answered with
 * Connection: close). Returns how many were left. */
unsigned sl_srv_drain_deadline(sl_worker *w);
void sl_srv_timer_arm(sl_conn *c, uint32_t timeout_ms);
/* Answers a framing, limit or resource error and closes the connection. */
void sl_srv_conn_fail(sl_conn *c, int status, const char *why);
/* The whole request is in: hand it to the handler set. */
void sl_srv_dispatch(sl_conn *c, const char *body, size_t len);
/* The response is out: next request, linger or close. */
void sl_srv_after_response(sl_conn *c);
int sl_srv_grow_in(sl_conn *c, size_t need);

/* body.c */
/* After the head hook said CONTINUE: set up reading the body (and move the
 * body bytes that arrived with the head). May dispatch or fail at once. */
void sl_srv_body_begin(sl_conn *c);
/* Where the next Content-Length body bytes go; grows the buffer under the
 * budget. -1 when the request was refused (the connection is answered). */
int sl_srv_body_room(sl_conn *c, char **dst, size_t *room);
/* New bytes arrived (in c->body for Content-Length, in c->in for chunked). */
void sl_srv_body_progress(sl_conn *c);
void sl_srv_body_free(sl_conn *c);

/* tlsio.c: every byte between a connection's socket and its buffers */
int sl_srv_tls_start(const sl_server_config *cfg, char *err, size_t errlen);
void sl_srv_tls_stop(void);
void sl_srv_tls_reload(void); /* SIGHUP */
int sl_srv_tls_enabled(void);
int sl_srv_tls_attach(sl_conn *c);
void sl_srv_tls_detach(sl_conn *c);
ssize_t sl_srv_recv(sl_conn *c, void *buf, size_t len);
ssize_t sl_srv_send(sl_conn *c, const void *buf, size_t len);
/* Records TLS still holds: 0 none, 1 waiting for the socket, -1 error. */
int sl_srv_send_records(sl_conn *c);
/* Starts reading again, waking the reader for input TLS already holds. */
void sl_srv_read_resume(sl_conn *c);
/* close_notify before a half-close. */
void sl_srv_tls_close_write(sl_conn *c);

/* respond.c */
void sl_srv_flush(sl_conn *c, int from_loop);
void sl_srv_write_cb(struct ev_loop *loop, ev_io *w, int revents);

#endif
