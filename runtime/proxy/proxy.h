/*
 * The request path after HTTP framing: pick the API surface from the path,
 * authenticate, parse just enough JSON to route, look the model up, plan
 * attempts, and forward to the provider (or answer from the mock), relaying
 * the response as it arrives. One sl_exchange per request, allocated in the
 * connection's arena.
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stddef.h>

#include "http/http.h"
#include "ledger/ledger.h" /* SL_LEDGER_WAIT_* */
#include "server/server.h"
#include "table.h"

typedef struct sl_proxy_options {
    const char *state_path;  /* SQLite ledger; NULL or "" = no ledger */
    int ledger_wait;         /* SL_LEDGER_WAIT_* */
} sl_proxy_options;

/* Process-wide set-up before workers start: reads provider keys from the
 * environment (never logged), builds the auth index, opens the ledger and
 * restores the current periods' spend from it. 0 or -1 with err. */
int sl_proxy_init(const sl_table *t, const sl_proxy_options *opt, char *err, size_t errlen);
void sl_proxy_shutdown(void);

/* Per-worker state (router). Called by the server for each worker. */
void sl_proxy_worker_init(sl_worker *w);

/* A complete request (head parsed, body read). The proxy answers through
 * the sl_conn_* calls, synchronously or later. */
void sl_proxy_handle(sl_conn *c, const sl_http_request *req, const char *body, size_t body_len);

#endif
