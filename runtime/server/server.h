/*
 * Starting and stopping the server: worker threads, each with its own libev
 * loop, SO_REUSEPORT listener and upstream (curl multi) handle, serving
 * HTTP/1.1 connections and handing each parsed request to the handler set
 * main.c registers. The server core never includes a handler; handlers
 * answer through server/conn.h.
 */
#ifndef SLUICE_SERVER_H
#define SLUICE_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "server/conn.h"
#include "table.h"

typedef enum sl_head_verdict { SL_HEAD_CONTINUE = 0, SL_HEAD_DONE = 1 } sl_head_verdict;

typedef struct sl_handlers {
    /* Once per worker, on its thread, before it accepts. */
    void (*worker_init)(sl_worker *w);
    /* The head is parsed and no body byte has been read yet. CONTINUE reads the
     * body and calls request(); DONE means the handler has already responded
     * (sl_conn_respond): the server sends that response with Connection: close
     * and closes without reading the body. NULL = always CONTINUE. */
    sl_head_verdict (*head)(sl_conn *c, const sl_http_request *req);
    void (*request)(sl_conn *c, const sl_http_request *req, const char *body, size_t len);
} sl_handlers;

typedef struct sl_server_config {
    const sl_table *table;
    const sl_handlers *handlers; /* request is required; the others may be NULL */
    const char *listen;          /* HOST:PORT or [V6]:PORT */
    const char *tls_cert;        /* override the table's PEM files, or NULL */
    const char *tls_key;
    const char *state_path;
    int workers;                 /* >= 1 */
    uint32_t drain_ms;           /* graceful shutdown deadline */
    const char *control_path;    /* hand-off control socket; NULL or "" = none */
    const char *upgrade_from;    /* take the listeners over from this control socket */
} sl_server_config;

/* Gets its listeners (hand-off, systemd or bind), starts the workers and
 * runs until SIGTERM/SIGINT, sl_server_stop or a hand-off to a new
 * instance, then drains. Returns 0 on a clean shutdown, -1 with err
 * filled when start-up fails. One server per process at a time. */
int sl_server_run(const sl_server_config *cfg, char *err, size_t errlen);
/* What SIGTERM does, callable from any thread once the server listens:
 * stop accepting, finish in-flight requests up to the drain deadline. */
void sl_server_stop(void);

#endif
