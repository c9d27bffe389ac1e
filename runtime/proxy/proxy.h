/*
 * The proxy stage's process-wide state: provider secrets read from the
 * environment at start (never logged), the auth index, the circuit
 * breakers, the spend ledger and its per-worker notifiers, and the
 * per-worker routers. Everything per request lives in the exchange
 * (proxy/exchange.h); the endpoint table is proxy/dispatch.h.
 */
#ifndef SLUICE_PROXY_H
#define SLUICE_PROXY_H

#include <stddef.h>
#include <stdint.h>

#include "ledger/ledger.h"
#include "metrics/metrics.h"
#include "route/route.h"
#include "server/conn.h"
#include "table.h"

typedef struct sl_proxy_options {
    const char *state_path;  /* SQLite ledger; NULL or "" = no ledger */
    int ledger_wait;         /* SL_LEDGER_WAIT_* */
    int no_metrics;          /* record nothing (GET /metrics shows only gauges) */
    const char *otlp_url;    /* overrides the spec's telemetry.otlp (only when it has one) */
} sl_proxy_options;

/* Process-wide set-up before workers start: reads provider keys from the
 * environment, builds the auth index, opens the ledger and restores the
 * current periods' spend from it. 0, -2 when a provider's key variable is
 * unset or empty (and the provider is not optional), -1 otherwise; err
 * filled. */
int sl_proxy_init(const sl_table *t, const sl_proxy_options *opt, char *err, size_t errlen);
void sl_proxy_shutdown(void);

/* Per-worker state (router, ledger notifier). Called on each worker. */
void sl_proxy_worker_init(sl_worker *w);

sl_ledger *sl_proxy_ledger(void);           /* NULL when the ledger is off */
int sl_proxy_ledger_wait(void);             /* SL_LEDGER_WAIT_* */
sl_ledger_notifier *sl_proxy_notifier(sl_worker *w);
sl_router *sl_proxy_router(sl_worker *w);
/* The worker's shared-state connection (state/state.h); NULL without
 * `state: { redis: ... }`. */
struct sl_state_worker *sl_proxy_state(sl_worker *w);
sl_metrics_shard *sl_proxy_metrics(sl_worker *w); /* NULL: not recorded */
/* The provider's auth header line, or NULL when it has no key. */
const char *sl_proxy_auth_line(uint32_t provider);

/* The variable an optional provider started without (its requests must not
 * go upstream unauthenticated), or NULL when it has its key or needs none. */
const char *sl_proxy_provider_keyless(const sl_table *t, uint32_t provider);

#endif
