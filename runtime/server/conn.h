/*
 * What a request handler sees of the server: the connection it answers on
 * and the worker that connection belongs to. A handler talks back only
 * through these calls, so it never sees sockets, buffers or timers, and the
 * server never needs to know which handler it is serving (main.c registers
 * the handler set; see sl_handlers in server/server.h).
 */
#ifndef SLUICE_CONN_H
#define SLUICE_CONN_H

#include <stddef.h>

#include "core/arena.h"
#include "table.h"

typedef struct sl_worker sl_worker;
typedef struct sl_conn sl_conn;
struct ev_loop;
struct sl_upstream;

/* What a handler registers on a connection while it serves a request. */
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

/* Per-request arena, reset when the next request on the connection starts. */
sl_arena *sl_conn_arena(sl_conn *c);
sl_worker *sl_conn_worker(sl_conn *c);
const char *sl_conn_peer(sl_conn *c); /* printable client address */
/* The current request's id (see core/reqid.h), sent back on every
 * response head as x-request-id. */
const char *sl_conn_request_id(sl_conn *c);
void sl_conn_set_exchange(sl_conn *c, void *exchange, const sl_conn_hooks *hooks);
/* A request on this connection presented a valid key. The flag lasts for
 * the connection's life: when connection slots run short, idle connections
 * that never authenticated are closed before ones that did. */
void sl_conn_set_authenticated(sl_conn *c);

/* A complete response. `headers` is zero or more "Name: value\r\n" lines.
 * Ends the exchange: no hook is called after this. */
void sl_conn_respond(sl_conn *c, int status, const char *content_type, const char *headers,
                     const char *body, size_t len);
/* A response whose body follows in pieces (chunked for HTTP/1.1 clients).
 * The head and pieces are queued and sent once the current loop
 * iteration's callbacks are done (several pieces, one send); -1 when the
 * connection already failed. */
int sl_conn_stream_begin(sl_conn *c, int status, const char *content_type, const char *headers);
int sl_conn_stream_write(sl_conn *c, const char *data, size_t len);
/* Ends the body. `clean` = 0 closes the connection after the queued bytes
 * instead of sending the final chunk, so the client sees a truncated
 * stream rather than a clean-looking end. Ends the exchange. */
void sl_conn_stream_end(sl_conn *c, int clean);
size_t sl_conn_out_pending(const sl_conn *c);

/* Per-worker facilities handlers need. */
struct ev_loop *sl_worker_loop(sl_worker *w);
struct sl_upstream *sl_worker_upstream(sl_worker *w);
const sl_table *sl_worker_table(sl_worker *w);
int sl_worker_id(sl_worker *w);
int sl_worker_count(void);
/* Client connections open across all workers. */
unsigned sl_conn_open_total(void);
/* Per-worker scratch owned by the handler set (the proxy's router state);
 * set once, from worker_init. free_fn runs when the server stops. */
void *sl_worker_proxy_state(sl_worker *w);
void sl_worker_set_proxy_state(sl_worker *w, void *state, void (*free_fn)(void *));

#endif
