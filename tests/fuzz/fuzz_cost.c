/*
 * Fuzz target: cost, admission and settlement (runtime/govern/govern.c)
 * with token counts, prices, budgets and clock steps taken from the input,
 * extremes included. Under UBSan every overflow aborts; on top of that the
 * target checks what budgets rely on:
 *   - a cost is never negative, whatever the counts and prices;
 *   - a reservation covers the charge whenever the charged usage is within
 *     the reserved usage (cost is monotone in every count);
 *   - with such charges, spent + reserved never passes a key's or team's
 *     USD or token budget, so a budget is exceeded by at most the one
 *     reservation that was in flight (here: not at all).
 * Rate limits stay off: their buckets follow the monotonic clock, which
 * would make runs irreproducible.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "govern/govern.h"

typedef struct reader {
    const uint8_t *p;
    size_t n;
} reader;

static uint64_t take(reader *r, size_t bytes)
{
    uint64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        v = v << 8 | (r->n ? *r->p : 0);
        if (r->n) {
            r->p++;
            r->n--;
        }
    }
    return v;
}

/* An int64 biased towards the interesting ones: small, limits, near them. */
static int64_t num(reader *r)
{
    switch (take(r, 1) & 7) {
    case 0: return (int64_t)take(r, 1);
    case 1: return (int64_t)take(r, 2);
    case 2: return (int64_t)take(r, 4);
    case 3: return INT64_MAX - (int64_t)take(r, 1);
    case 4: return INT64_MIN + (int64_t)take(r, 1);
    case 5: return -(int64_t)take(r, 2);
    default: return (int64_t)take(r, 8);
    }
}

static int64_t nonneg(reader *r)
{
    int64_t v = num(r);
    return v < 0 ? (v == INT64_MIN ? 0 : -v) : v;
}

static const char *const models[] = {"claude-sonnet-4-5", "claude-3-opus", "claude-x", "gpt-4o",
                                     "gpt-4o-mini", "unpriced", ""};

#define MAX_OPEN 8

typedef struct open_req {
    sl_gov_ticket tk;
    sl_usage_counts reserved;
    int64_t est_usd;
    uint16_t provider;
    const char *model;
} open_req;

static void check_holder(const sl_budget *b, const sl_gov_view *v)
{
    if (v->spent_usd < 0 || v->reserved_usd < 0 || v->spent_tokens < 0 || v->reserved_tokens < 0)
        abort();
    if (b->per == SL_PERIOD_NONE)
        return;
    if (b->usd_micros >= 0 && (v->spent_usd > b->usd_micros || v->reserved_usd > b->usd_micros ||
                               v->spent_usd > b->usd_micros - v->reserved_usd))
        abort();
    if (b->tokens >= 0 && (v->spent_tokens > b->tokens || v->reserved_tokens > b->tokens ||
                           v->spent_tokens > b->tokens - v->reserved_tokens))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    reader r = {data, size};
    static const sl_provider providers[] = {{.name = "ant"}, {.name = "oai"}};
    sl_price prices[] = {
        {.provider = 0, .model = "claude-*"},
        {.provider = 0, .model = "claude-sonnet-4-5"},
        {.provider = 0, .model = "claude-3-*"},
        {.provider = 1, .model = "gpt-4o"},
        {.provider = 1, .model = "gpt-4o-?*"},
    };
    for (size_t i = 0; i < sizeof prices / sizeof *prices; i++) {
        prices[i].input = num(&r);
        prices[i].output = num(&r);
        prices[i].cache_read = num(&r);
        prices[i].cache_write = num(&r);
    }
    static const sl_period periods[] = {SL_PERIOD_NONE, SL_PERIOD_DAY, SL_PERIOD_WEEK, SL_PERIOD_MONTH,
                                        SL_PERIOD_TOTAL};
    sl_team team = {.name = "team"};
    team.budget.per = periods[take(&r, 1) % 5];
    team.budget.usd_micros = take(&r, 1) & 1 ? nonneg(&r) : -1;
    team.budget.tokens = take(&r, 1) & 1 ? nonneg(&r) : -1;
    sl_key keys[2] = {{.name = "k0", .team = 0}, {.name = "k1", .team = -1}};
    for (int i = 0; i < 2; i++) {
        keys[i].budget.per = periods[take(&r, 1) % 5];
        keys[i].budget.usd_micros = take(&r, 1) & 1 ? nonneg(&r) : -1;
        keys[i].budget.tokens = take(&r, 1) & 1 ? nonneg(&r) : -1;
    }
    sl_table t = {
        .abi = SL_TABLE_ABI,
        .providers = providers, .provider_count = 2,
        .teams = &team, .team_count = 1,
        .keys = keys, .key_count = 2,
        .prices = prices, .price_count = sizeof prices / sizeof *prices,
    };
    if (sl_gov_init(&t, NULL, NULL) != 0)
        abort();

    open_req open[2][MAX_OPEN];
    int nopen[2] = {0, 0};
    /* Years 2000..2100 or so, moving forward by up to ~2 months a step. */
    int64_t now = 946684800 + (int64_t)(take(&r, 4) % (100LL * 366 * 86400));
    while (r.n > 0) {
        int op = (int)take(&r, 1);
        int key = op & 1;
        now += (int64_t)(take(&r, 3) % (62LL * 86400)) * ((op >> 1) & 1);
        uint16_t prov = (uint16_t)((op >> 2) & 1);
        const char *model = models[take(&r, 1) % (sizeof models / sizeof *models)];
        if ((op >> 3) & 1) {
            /* Cost alone, with arbitrary (also negative) counts. */
            sl_usage_counts u = {.input = num(&r), .output = num(&r), .cache_read = num(&r), .cache_write = num(&r), .have = 1};
            int priced;
            if (sl_gov_cost(&t, prov, model, &u, &priced) < 0)
                abort();
            continue;
        }
        if (((op >> 4) & 1) || nopen[key] == MAX_OPEN) {
            if (nopen[key] == 0)
                continue;
            /* Settle one open request with usage within its reservation. */
            size_t i = take(&r, 1) % (size_t)nopen[key];
            open_req *o = &open[key][i];
            sl_usage_counts c = o->reserved;
            c.input = o->reserved.input ? (int64_t)(take(&r, 8) % (uint64_t)o->reserved.input) : 0;
            c.output = o->reserved.output ? (int64_t)(take(&r, 8) % (uint64_t)o->reserved.output) : 0;
            if (take(&r, 1) & 1)
                c = o->reserved; /* exactly what was reserved */
            int priced;
            int64_t charged = sl_gov_cost(&t, o->provider, o->model, &c, &priced);
            if (charged < 0 || charged > o->est_usd)
                abort();
            sl_gov_settle(&o->tk, charged, sl_usage_total(&c), now);
            open[key][i] = open[key][--nopen[key]];
        } else {
            /* Admit a request estimated at its prompt plus max_tokens. */
            sl_usage_counts e = {.input = nonneg(&r), .output = nonneg(&r)};
            int priced;
            int64_t est = sl_gov_cost(&t, prov, model, &e, &priced);
            if (est < 0)
                abort();
            open_req *o = &open[key][nopen[key]];
            int ra;
            const char *why;
            if (sl_gov_admit(key, est, sl_usage_total(&e), now, &o->tk, &ra, &why) == SL_GOV_OK) {
                o->reserved = e;
                o->est_usd = est;
                o->provider = prov;
                o->model = model;
                nopen[key]++;
            }
        }
        sl_gov_view v;
        for (int k = 0; k < 2; k++) {
            sl_gov_view_key(k, now, &v);
            check_holder(&keys[k].budget, &v);
        }
        sl_gov_view_team(0, now, &v);
        check_holder(&team.budget, &v);
    }
    for (int k = 0; k < 2; k++)
        for (int i = 0; i < nopen[k]; i++)
            sl_gov_settle(&open[k][i].tk, 0, 0, now);
    sl_gov_shutdown();
    return 0;
}
