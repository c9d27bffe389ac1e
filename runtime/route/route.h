/*
 * Routing: client model name -> model entry (the generated re2c DFA) ->
 * an ordered attempt plan over the entry's targets (smooth weighted round
 * robin, as nginx balances upstreams: deterministic, exact proportions over
 * any window of sum(weights) picks, and no random number generator on the
 * hot path) followed by each fallback entry's targets, in spec order.
 * Router state is per worker, so picks need no locks.
 */
#ifndef SLUICE_ROUTE_H
#define SLUICE_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

typedef struct sl_router sl_router;

/* The longest attempt plan: retries and fallbacks past this many steps
 * are a configuration mistake, not resilience. */
#define SL_ROUTE_PLAN_MAX 16

typedef struct sl_attempt {
    uint32_t entry;   /* model entry the target belongs to */
    uint32_t target;  /* index into table->targets */
} sl_attempt;

/* The entry serving `name`, or -1. Names with an embedded NUL or longer
 * than 1 KiB never match. */
int sl_route_lookup(const sl_table *t, const char *name, size_t len);

sl_router *sl_router_new(const sl_table *t);
void sl_router_free(sl_router *r);

/* Fills out[] with the attempt order for `entry` and returns how many.
 * Each entry appears at most once (fallback cycles are compile errors, but
 * the plan guards anyway). */
size_t sl_route_plan(sl_router *r, uint32_t entry, sl_attempt *out, size_t max);

/* The model name an attempt asks its upstream for: the target's `model`
 * when set; otherwise, for an exact entry, the entry's own name (a
 * fallback to `gpt-4o-mini` asks for gpt-4o-mini, whatever the client
 * asked for), and for a glob entry the name the client sent. The gateway
 * and `sluicec explain` both call this, so they cannot disagree. */
const char *sl_route_upstream_model(const sl_table *t, const sl_attempt *a, const char *client_model);

/* Delay before retry number `n` (0-based) within an entry: backoff * 2^n
 * capped at backoff_cap, with "equal jitter" (half fixed, half random from
 * *seed) so synchronised clients spread out without ever retrying at
 * once; an upstream Retry-After (seconds, -1 = none) longer than that wins,
 * itself capped. */
uint32_t sl_route_backoff_ms(const sl_retry *r, int n, int retry_after_s, unsigned *seed);

/* One smooth-WRR pick among the entry's targets (exposed for tests). */
uint32_t sl_route_pick(sl_router *r, uint32_t entry);

#endif
