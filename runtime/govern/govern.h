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
void sl_gov_shutdown(void);

/* Costs saturate here: 10^18 micro-USD is more than any budget or price
 * the compiler accepts, yet a few such amounts still add up inside
 * int64, so budget checks (spent + reserved + cost) cannot overflow. */
#define SL_GOV_MAX_MICROS 1000000000000000000LL

/* Cost in micro-USD of `u` at the price of provider/model, at most
 * SL_GOV_MAX_MICROS; *priced = 0 when the table has no price for it
 * (cost 0). */
int64_t sl_gov_cost(const sl_table *t, uint16_t provider, const char *model,
                    const sl_usage_counts *u, int *priced);

/* Admission for `key`. On SL_GOV_OK the ticket holds a reservation that
 * must be settled exactly once. *retry_after_s and *why explain refusals. */
sl_gov_verdict sl_gov_admit(int key, int64_t est_usd, int64_t est_tokens, int64_t now_unix,
                            sl_gov_ticket *ticket, int *retry_after_s, const char **why);
void sl_gov_settle(sl_gov_ticket *ticket, int64_t usd, int64_t tokens, int64_t now_unix);

/* Current spend and limits, for the admin API. */
typedef struct sl_gov_view {
    int64_t spent_usd, reserved_usd, spent_tokens, reserved_tokens;
    int64_t period_start;
} sl_gov_view;
void sl_gov_view_key(int key, int64_t now_unix, sl_gov_view *v);
void sl_gov_view_team(int team, int64_t now_unix, sl_gov_view *v);

/* Start of the budget period containing `now` (UTC). */
int64_t sl_gov_period_start(sl_period per, int64_t now_unix);

#endif
