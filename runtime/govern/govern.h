/*
 * Governance state shared by all workers: per-key and per-team budgets
 * (USD and tokens, per day|week|month|total, calendar-aligned in UTC),
 * rate limits (requests and tokens per minute, token buckets), and cost
 * from the compiled price table. Admission *reserves* an estimate under a
 * short per-holder lock, so a burst of parallel requests cannot all pass a
 * check that only one of them fits; settlement swaps the reservation for
 * the real cost. A key's spend counts against its team as well.
 */
#ifndef SLUICE_GOVERN_H
#define SLUICE_GOVERN_H

#include <stddef.h>
#include <stdint.h>

#include "govern/usage.h"
#include "table.h"

typedef struct sl_gov_ticket {
    int key;              /* -1: open gateway, nothing to account */
    int team;             /* -1: none */
    int64_t usd;          /* reserved micro-USD */
    int64_t tokens;       /* reserved tokens */
    int64_t period_key;   /* period starts the reservation was made in */
    int64_t period_team;
    uint32_t share;       /* local: limits were divided by this (1 normally) */
    /* Reserved in Redis (runtime/state) rather than here: settling it
     * only charges this process's counters, which the admin view and a
     * fall-back to local admission read. rid names the reservation. */
    int remote;
    char rid[112];
} sl_gov_ticket;

typedef enum sl_gov_verdict {
    SL_GOV_OK = 0,
    SL_GOV_RATE_LIMITED,   /* rpm/tpm: 429 with Retry-After */
    SL_GOV_BUDGET,         /* budget would be exceeded: 429 */
} sl_gov_verdict;

/* Spend already recorded in the current periods (from the ledger). */
typedef int (*sl_gov_restore_fn)(void *ctx, const char *column, const char *name, int64_t since_unix,
                                 int64_t *usd, int64_t *tokens);

int sl_gov_init(const sl_table *t, sl_gov_restore_fn restore, void *ctx);
/* The same with the periods started at `now` (unix seconds): tests that
 * walk a clock from a fixed date start there, since periods only ever
 * roll forward. */
int sl_gov_init_at(const sl_table *t, sl_gov_restore_fn restore, void *ctx, int64_t now);
void sl_gov_shutdown(void);

/* Cost in micro-USD of `u` at the price of provider/model; *priced = 0
 * when the table has no price for it (cost 0). The price rule: an exact
 * model name wins; otherwise, among rules whose model is a glob ('*', '?')
 * matching it, the one with the longest literal prefix, the first in spec
 * order on a tie. Never negative: negative counts cost nothing and the sum
 * saturates at INT64_MAX. */
int64_t sl_gov_cost(const sl_table *t, uint16_t provider, const char *model,
                    const sl_usage_counts *u, int *priced);

/* 1 when `key` or its team has a USD budget (so an unpriced model must be
 * refused for it: its requests would cost 0 against that budget). */
int sl_gov_usd_budget_applies(const sl_table *t, int key);

/* Admission for `key`. On SL_GOV_OK the ticket holds a reservation that
 * must be settled exactly once. *retry_after_s (1..86400 for rate limits)
 * and *why explain refusals. Negative estimates count as 0, and an
 * estimate is compared with what the budget has left, so no estimate is
 * large enough to wrap past it. */
sl_gov_verdict sl_gov_admit(int key, int64_t est_usd, int64_t est_tokens, int64_t now_unix,
                            sl_gov_ticket *ticket, int *retry_after_s, const char **why);
/* As sl_gov_admit, with every budget and rate limit divided by `share`
 * (>= 1): a replica's part of a limit its replicas share while the shared
 * state is unreachable. */
sl_gov_verdict sl_gov_admit_share(int key, int64_t est_usd, int64_t est_tokens, int64_t now_unix, uint32_t share,
                                  sl_gov_ticket *ticket, int *retry_after_s, const char **why);
/* Replaces the reservation by the charge (negative charges count as 0);
 * a second settle of the same ticket does nothing. */
void sl_gov_settle(sl_gov_ticket *ticket, int64_t usd, int64_t tokens, int64_t now_unix);

/* Current spend and limits, for the admin API. */
typedef struct sl_gov_view {
    int64_t spent_usd, reserved_usd, spent_tokens, reserved_tokens;
    int64_t period_start;
    /* Budget left after spend and reservations, never negative; -1 when
     * there is no such limit. Computed here so callers do no arithmetic
     * on saturated values. */
    int64_t remaining_usd, remaining_tokens;
} sl_gov_view;
void sl_gov_view_key(int key, int64_t now_unix, sl_gov_view *v);
void sl_gov_view_team(int team, int64_t now_unix, sl_gov_view *v);

/* Start of the budget period containing `now` (UTC): days from 00:00:00,
 * ISO weeks from Monday 00:00:00, months from the 1st 00:00:00. */
int64_t sl_gov_period_start(sl_period per, int64_t now_unix);

/* The wall clock (unix seconds) that places spend in budget periods. Every
 * `now_unix` above comes from here, and the functions take it as a
 * parameter, so unit tests try any instant and an end-to-end test that
 * moves the process clock (libfaketime) moves all of governance at once. */
int64_t sl_gov_now(void);

#endif
