/*
 * The admission decision for a priced request, and its settlement: local
 * (govern/, in this process) or shared across replicas (state/, Redis)
 * when the spec has `state: { redis: ... }` and the key or its team has a
 * budget or rate limit. A shared admission waits for Redis without
 * blocking the loop: the exchange is parked with its plan and resumes in
 * the reply's callback. When Redis cannot answer, the spec's policy
 * decides: fail_closed refuses with 503, local admits against this
 * replica's share (every limit divided by `replicas`).
 */
#ifndef SLUICE_ADMISSION_H
#define SLUICE_ADMISSION_H

#include <stddef.h>
#include <stdint.h>

#include "proxy/exchange.h"

struct sl_ledger_row;

/* Admits x for the worst case (usd, tokens) and goes upstream with
 * plan[0..n) (copied), or ends the exchange with the refusal. The answer
 * may come later, on the same loop. */
void sl_admission_run(sl_exchange *x, const sl_attempt *plan, size_t n, int64_t usd, int64_t tokens);

/* Replaces the reservation by the charge, once; later calls do nothing.
 * With shared state, `row` (NULL: none) is also published to Redis. */
void sl_admission_settle(sl_exchange *x, int64_t usd, int64_t tokens, const struct sl_ledger_row *row);

/* A row of a request that was not admitted (a cached answer): with shared
 * state, published to the deployment's ledger stream like any other. */
void sl_admission_publish(sl_exchange *x, const struct sl_ledger_row *row);

/* The exchange ends while its admission is pending: the answer is
 * dropped (and a grant released). Idempotent. */
void sl_admission_cancel(sl_exchange *x);

#endif
