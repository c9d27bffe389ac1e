/*
 * Target health: a circuit breaker per target, shared by all workers
 * through atomics. Closed: failures are counted and a success resets them.
 * After `threshold` consecutive failures the target opens (is skipped) for
 * `period`; then exactly one request is let through as a probe (half-open)
 * and its outcome closes the circuit or opens it for another period.
 */
#ifndef SLUICE_HEALTH_H
#define SLUICE_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

#define SL_HEALTH_DEFAULT_THRESHOLD 5
#define SL_HEALTH_DEFAULT_PERIOD_MS 30000

typedef enum sl_health_state { SL_HEALTH_CLOSED = 0, SL_HEALTH_OPEN = 1, SL_HEALTH_HALF_OPEN = 2 } sl_health_state;

int sl_health_init(const sl_table *t);
void sl_health_shutdown(void);

/* May a request use `target` now? Sets *probe when this request is the
 * half-open probe (it must report its outcome). */
int sl_health_acquire(uint32_t target, int64_t now_ms, int *probe);
/* Would sl_health_acquire say yes? (No side effects.) */
int sl_health_usable(uint32_t target, int64_t now_ms);
/* Outcome of an attempt that acquired the target. Only failures that say
 * something about the target (5xx, 429, connect, timeout) count. */
void sl_health_report(uint32_t target, int ok, int probe, int64_t now_ms, uint32_t threshold,
                      uint32_t period_ms);

/* The probe holder gave up without an outcome (client went away). */
void sl_health_abandon(uint32_t target, int probe);

/* Another replica opened `target` (shared circuits, runtime/state): open
 * it here too until `until_ms` (monotonic), unless it is open longer
 * already. Failure counts are left alone. */
void sl_health_open_until(uint32_t target, int64_t until_ms);

sl_health_state sl_health_state_of(uint32_t target, int64_t now_ms, uint32_t *fails,
                                   int64_t *remaining_ms);
/* Monotonic milliseconds. */
int64_t sl_health_now_ms(void);

#endif
