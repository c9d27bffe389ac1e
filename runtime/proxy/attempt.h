/*
 * The attempt loop as a state machine, with no I/O of its own: it walks an
 * attempt plan (the requested entry's targets, then each fallback entry's),
 * retries within an entry after a backoff (honouring Retry-After up to the
 * entry's cap), moves to the next fallback when an entry is spent, skips
 * targets whose circuit is open unless nothing else is left (a degraded
 * answer beats none), and reports every outcome to the circuit breaker.
 * It reaches the outside world only through sl_attempt_ops, so a unit test
 * drives it with a fake transport and clock. Retries happen only before
 * the client has seen a byte: the caller stops consulting the machine
 * once a response is committed.
 */
#ifndef SLUICE_ATTEMPT_H
#define SLUICE_ATTEMPT_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "route/route.h"
#include "table.h"
#include "upstream/upstream.h"

#define SL_MAX_ATTEMPTS SL_ROUTE_PLAN_MAX

typedef struct sl_attempt_ops {
    /* Send the try for plan step `a` now. */
    void (*start)(void *ctx, const sl_attempt *a);
    /* Call sl_attempts_resume() after `ms` milliseconds. */
    void (*wait)(void *ctx, uint32_t ms);
    /* No step is left: answer the client with the best failure kept. */
    void (*exhausted)(void *ctx);
} sl_attempt_ops;

typedef struct sl_attempts {
    const sl_table *t;
    const sl_attempt_ops *ops;
    void *ctx;
    sl_attempt plan[SL_MAX_ATTEMPTS];
    size_t plan_len;
    size_t cur;           /* plan index of the current try */
    size_t group_start;   /* the plan comes in groups, one per model entry */
    size_t group_len;
    int group_try;        /* tries made within the current group */
    int probe;            /* the current try is a half-open circuit probe */
    int retry_after_s;    /* from the last answer, -1 = none */
    int tries;            /* upstream tries started */
    int retries;          /* tries after the first within one entry */
    int fallbacks;        /* moves to the next entry of the plan */
    unsigned seed;        /* backoff jitter */
    /* "provider: reason; ..." for the final error, in the arena from the
     * first failure on: most requests never fail, and 512 bytes in every
     * exchange pushed a request's arena past its first block. */
    sl_arena *arena;
    char *failures;       /* NULL until a failure; see sl_attempts_failures */
    size_t failures_len;
} sl_attempts;

#define SL_ATTEMPTS_FAILURES_MAX 512 /* bytes of failure text kept, with the NUL */

/* plan[0..n) as sl_route_plan made it (already filtered to targets that
 * can serve the request). n >= 1. */
void sl_attempts_init(sl_attempts *m, const sl_table *t, const sl_attempt *plan, size_t n,
                      const sl_attempt_ops *ops, void *ctx, unsigned seed, sl_arena *arena);
/* Picks the first usable target and starts it. */
void sl_attempts_begin(sl_attempts *m);
/* After ops->wait: picks and starts the next try. */
void sl_attempts_resume(sl_attempts *m);

const sl_attempt *sl_attempts_current(const sl_attempts *m);
const sl_model_entry *sl_attempts_entry(const sl_attempts *m);

/* Outcome of the current try for the circuit breaker (ok = the target
 * worked, whatever the client gets). */
void sl_attempts_report(sl_attempts *m, int ok);
/* Would the entry retry on this HTTP status / transport failure? */
int sl_attempts_retry_status(const sl_attempts *m, int status);
int sl_attempts_retry_xfer(const sl_attempts *m, sl_xfer_result r);
/* Does the status say the target itself is unwell (5xx, 429, 408)? */
int sl_attempts_status_is_target_failure(int status);

/* Adds "provider: why" to the failure list without moving on (a final,
 * non-retryable failure). */
void sl_attempts_note(sl_attempts *m, const char *provider, const char *why);
/* The failure list so far ("" when there is none). */
const char *sl_attempts_failures(const sl_attempts *m);
/* The current try failed retryably (`why` names it for the final error;
 * retry_after_s from the answer, -1 = none): retry, fall back, or call
 * ops->exhausted. */
void sl_attempts_next(sl_attempts *m, const char *provider, const char *why, int retry_after_s);
/* The client went away mid-try: give back a probe slot. */
void sl_attempts_abandon(sl_attempts *m);

#endif
