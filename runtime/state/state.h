/*
 * Shared state for replicas: budgets and rate limits held in Redis so that
 * several gateways behind one load balancer spend one budget. The module
 * is reached only through `sl_state_redis_ops`, which only a table
 * generated from a spec with `state: { redis: ... }` names, so a gateway
 * without it links neither this code nor hiredis.
 *
 * Admission reserves the worst case atomically for a key and its team
 * (one Lua script, one round trip); completion settles the real cost
 * (another). Each worker has its own connection on its own loop: no call
 * here blocks, and every answer arrives later on the caller's loop, never
 * inside the call that asked.
 */
#ifndef SLUICE_STATE_H
#define SLUICE_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "govern/govern.h"
#include "table.h"

struct ev_loop;
struct sl_ledger_row;
typedef struct sl_state_worker sl_state_worker;
typedef struct sl_state_pending sl_state_pending;

typedef enum sl_state_result {
    SL_STATE_GRANTED = 0,    /* reserved: ticket->remote and ->rid are set */
    SL_STATE_REFUSED,        /* a budget or rate limit said no (verdict, why, retry_after_s) */
    SL_STATE_UNAVAILABLE,    /* Redis unreachable, timed out or failed: the spec's policy applies */
    SL_STATE_COLD,           /* (internal) Redis lost this worker's spend: seed, then ask again */
} sl_state_result;

typedef struct sl_state_answer {
    sl_state_result result;
    sl_gov_verdict verdict;  /* REFUSED: budget or rate limit */
    int retry_after_s;
    const char *why;         /* static text */
} sl_state_answer;

/* `ticket` (owned by the caller, alive until the callback or cancel) is
 * filled on GRANTED. */
typedef void (*sl_state_admit_cb)(void *ctx, const sl_state_answer *a);

/* The deployment's spend: `rows` is the JSON array /admin/spend answers
 * (malloc'd, the callee's to free), or NULL with `err`. */
typedef void (*sl_state_spend_cb)(void *ctx, char *rows, const char *err);

/* The deployment's budget counters in the current periods: four values
 * per key (in table order), then per team: spent micro-USD, reserved
 * micro-USD, spent tokens, reserved tokens; all -1 for a holder without a
 * budget. NULL with `err` on failure. */
typedef void (*sl_state_views_cb)(void *ctx, const int64_t *vals, const char *err);
struct sl_state_query;

typedef struct sl_state_ops {
    /* Process set-up before workers start: the password from the
     * environment (-2 when the variable is unset or empty), the replica
     * id. */
    int (*init)(const sl_table *t, const char *state_path, char *err, size_t errlen);
    /* `sluice --redis URL` (state/url.h), through here so that gateways
     * without Redis do not carry even the parser. */
    int (*parse_url)(const char *url, char *host, uint16_t *port, uint32_t *db, char *err, size_t errlen);
    void (*shutdown)(void);
    /* A worker's connection on its loop; connects in the background. */
    sl_state_worker *(*worker_new)(const sl_table *t, struct ev_loop *loop, int worker_id);
    /* Sends what is queued (settlements), bounded by the command timeout,
     * then closes. Runs after the worker's loop has stopped. */
    void (*worker_free)(sl_state_worker *w);
    /* 1 when this worker cannot reach Redis right now (not connected, or
     * backing off): the caller applies the policy without waiting. */
    int (*down)(sl_state_worker *w);
    /* Reserves `usd` and `tokens` for `key` (and its team) for the periods
     * containing `now_unix`. NULL when nothing could be queued (the
     * callback will not run: treat as UNAVAILABLE). */
    sl_state_pending *(*admit)(sl_state_worker *w, int key, int64_t usd, int64_t tokens, int64_t now_unix,
                               sl_gov_ticket *ticket, sl_state_admit_cb cb, void *ctx);
    /* The request went away while waiting: the callback will not run, and
     * a reservation that is granted after all is released at once. */
    void (*cancel)(sl_state_pending *p);
    /* Records the charge as this worker's spend (what a seed gives back
     * to a Redis that lost it) and, for a ticket reserved in Redis,
     * replaces the reservation by the charge; fire and forget (a failed
     * settle leaves the reservation to expire after the lease; the ledger
     * keeps the row either way). Called for local tickets too. `row`
     * (NULL: none) goes to the deployment's stream PREFIX "ledger", in
     * the settlement's own script call for a Redis ticket (the stream and
     * the counters never disagree), else by itself. */
    void (*settle)(sl_state_worker *w, const sl_gov_ticket *ticket, int64_t usd, int64_t tokens, int64_t now_unix,
                   const struct sl_ledger_row *row);
    /* GET /admin/spend?scope=deployment: every replica's rows from the
     * ledger stream, grouped as the ledger groups them (by key, team,
     * model or day; since/until in unix seconds, until 0 = none), read
     * in chunks so Redis never runs one long command. NULL when Redis
     * cannot be asked now; else the callback runs later, once, unless
     * cancelled. */
    struct sl_state_query *(*spend)(sl_state_worker *w, const char *by, int64_t since, int64_t until,
                                    sl_state_spend_cb cb, void *ctx);
    /* GET /admin/keys?scope=deployment: the counters above, one script
     * call. Cancelled like a spend query. */
    struct sl_state_query *(*views)(sl_state_worker *w, int64_t now, sl_state_views_cb cb, void *ctx);
    void (*spend_cancel)(struct sl_state_query *q);
} sl_state_ops;

/* ---- status shared with /metrics (state/status.c, always linked) ---------- */

/* 1 while Redis answers, 0 while the policy applies (fail_closed or
 * local). Transitions are logged once each, never per request. */
void sl_state_mode_set(int up, const char *why);
int sl_state_mode(void);
void sl_state_error_count(void);
uint64_t sl_state_errors(void);
uint64_t sl_state_fallbacks(void);
void sl_state_fallback_count(void);

#endif
