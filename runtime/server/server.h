/*
 * The server: worker threads, each with its own libev loop, SO_REUSEPORT
 * listener and upstream (curl multi) handle, plus the client connection
 * state machine (read head, read body, hand to the proxy, write, keep-alive).
 * The proxy talks back to a connection only through the sl_conn_* calls
 * below, so it never sees sockets, buffers or timers.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "table.h"

typedef struct sl_worker sl_worker;
typedef struct sl_conn sl_conn;
struct sl_upstream;

typedef struct sl_server_config {
    const sl_table *table;
    const char *listen;      /* HOST:PORT or [V6]:PORT */
    const char *state_path;
    int workers;             /* >= 1 */
    uint32_t drain_ms;       /* graceful shutdown deadline */
} sl_server_config;

typedef enum sl_head_verdict { SL_HEAD_CONTINUE = 0, SL_HEAD_DONE = 1 } sl_head_verdict;

/* Binds, starts the workers and runs until SIGTERM/SIGINT, then drains.
 * Returns 0 on a clean shutdown, -1 with err filled when start-up fails. */
int sl_server_run(const sl_server_config *cfg, char *err, size_t errlen);

/* What the proxy registers on a connection while it serves a request. */
typedef struct sl_conn_hooks {
    /* The client went away or the connection failed: stop all work for
     * this request now. The connection is gone after this returns. */
    void (*abort)(void *exchange);
    /* Queued output fell below the low watermark: paused producers may
     * resume. */
    void (*drained)(void *exchange);
} sl_conn_hooks;

/* Output above this many queued bytes means the producer should pause. */
#define SL_CONN_HIGH_WATER (256 * 1024)

sl_arena *sl_conn_arena(sl_conn *c);
sl_worker *sl_conn_worker(sl_conn *c);
const char *sl_conn_peer(sl_conn *c); /* printable client address */
void sl_conn_set_exchange(sl_conn *c, void *exchange, const sl_conn_hooks *hooks);
/* A request on this connection presented a valid key (kept for its life). */
void sl_conn_set_authenticated(sl_conn *c);

/* A complete response. `headers` is zero or more "Name: value\r\n" lines.
 * Ends the exchange: no hook is called after this. */
void sl_conn_respond(sl_conn *c, int status, const char *content_type, const char *headers,
                     const char *body, size_t len);
/* A response whose body follows in pieces (chunked for HTTP/1.1 clients). */
int sl_conn_stream_begin(sl_conn *c, int status, const char *content_type, const char *headers);
int sl_conn_stream_write(sl_conn *c, const char *data, size_t len);
/* Ends the body. `clean` = 0 closes the connection after the queued bytes
 * instead of sending the final chunk, so the client sees a truncated
 * stream rather than a clean-looking end. Ends the exchange. */
void sl_conn_stream_end(sl_conn *c, int clean);
size_t sl_conn_out_pending(const sl_conn *c);

/* Per-worker facilities the proxy needs. */
struct ev_loop *sl_worker_loop(sl_worker *w);
struct sl_upstream *sl_worker_upstream(sl_worker *w);
const sl_table *sl_worker_table(sl_worker *w);
int sl_worker_id(sl_worker *w);
int sl_worker_count(void);
/* Per-worker scratch owned by the proxy (router state); set once. */
void *sl_worker_proxy_state(sl_worker *w);
void sl_worker_set_proxy_state(sl_worker *w, void *state, void (*free_fn)(void *));

const char *sl_http_reason(int status);

#endif
