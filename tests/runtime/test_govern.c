/*
 * Unit tests for runtime/govern/govern.c: admission and settlement against
 * key and team budgets, calendar periods in UTC (day, ISO week, month,
 * total), request and token rate limits, reservations that stop parallel
 * requests from overspending together, prices by exact name or glob, and
 * inputs at the int64 limits (the cost of a client-chosen max_tokens near
 * INT64_MAX used to wrap negative and pass every budget). The table is
 * built here rather than compiled from a spec, so each test sees exactly
 * the budgets and prices it names.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <string.h>
#include <time.h>

#include "govern/govern.h"

#define DAY 86400
/* 2024-01-01 00:00:00 UTC, a Monday. */
#define JAN1 1704067200LL

enum { P_ANT, P_OAI };
enum { T_PLATFORM, T_TOKENS };
enum { K_ALICE, K_BOB, K_CAROL, K_DAVE, K_ERIN, K_FRANK, K_GRACE, K_HEIDI, K_IVAN };

static const sl_provider providers[] = {
    {.name = "ant", .kind = SL_KIND_ANTHROPIC},
    {.name = "oai", .kind = SL_KIND_OPENAI},
};

#define NO_BUDGET {.usd_micros = -1, .tokens = -1, .per = SL_PERIOD_NONE}

static const sl_team teams[] = {
    [T_PLATFORM] = {.name = "platform", .budget = {.usd_micros = 1000, .tokens = -1, .per = SL_PERIOD_DAY}},
    [T_TOKENS] = {.name = "tokens", .budget = {.usd_micros = -1, .tokens = 1000, .per = SL_PERIOD_MONTH}},
};

static const sl_key keys[] = {
    /* 500 micro-USD a day, inside a team of 1000 a day. */
    [K_ALICE] = {.name = "alice", .team = T_PLATFORM,
                 .budget = {.usd_micros = 500, .tokens = -1, .per = SL_PERIOD_DAY}},
    /* No budget of its own; the team's applies. */
    [K_BOB] = {.name = "bob", .team = T_PLATFORM, .budget = NO_BUDGET},
    /* Weekly USD budget, no team. */
    [K_CAROL] = {.name = "carol", .team = -1,
                 .budget = {.usd_micros = 700, .tokens = -1, .per = SL_PERIOD_WEEK}},
    /* Two requests a minute. */
    [K_DAVE] = {.name = "dave", .team = -1, .budget = NO_BUDGET, .limits = {.rpm = 2}},
    /* 100 tokens a minute. */
    [K_ERIN] = {.name = "erin", .team = -1, .budget = NO_BUDGET, .limits = {.tpm = 100}},
    /* Monthly token budget through its team only. */
    [K_FRANK] = {.name = "frank", .team = T_TOKENS, .budget = NO_BUDGET},
    /* Nothing at all. */
    [K_GRACE] = {.name = "grace", .team = -1, .budget = NO_BUDGET},
    /* A budget for all time, in USD and tokens. */
    [K_HEIDI] = {.name = "heidi", .team = -1,
                 .budget = {.usd_micros = 1000000, .tokens = 5000, .per = SL_PERIOD_TOTAL}},
    /* The largest USD budget a spec can write. */
    [K_IVAN] = {.name = "ivan", .team = -1,
                .budget = {.usd_micros = INT64_MAX, .tokens = INT64_MAX, .per = SL_PERIOD_DAY}},
};

/* micro-USD per Mtok. Globs and exact names mixed, in spec order. */
static const sl_price prices[] = {
    {.provider = P_ANT, .model = "claude-*", .input = 1000000, .output = 5000000},
    {.provider = P_ANT, .model = "claude-sonnet-4-5", .input = 3000000, .output = 15000000,
     .cache_read = 300000, .cache_write = 3750000},
    {.provider = P_ANT, .model = "claude-3-*", .input = 2000000, .output = 10000000},
    /* Same literal prefix as the one above, later in the spec: loses. */
    {.provider = P_ANT, .model = "claude-3-?*", .input = 9000000, .output = 9000000},
    {.provider = P_ANT, .model = "c?aude-x", .input = 7000000, .output = 7000000},
    {.provider = P_OAI, .model = "gpt-4o", .input = 2500000, .output = 10000000},
    {.provider = P_OAI, .model = "gpt-4o-*", .input = 150000, .output = 600000},
    /* The largest price the compiler accepts. */
    {.provider = P_OAI, .model = "dear", .input = 1000000000000, .output = 1000000000000,
     .cache_read = 1000000000000, .cache_write = 1000000000000},
};

static const sl_table table = {
    .abi = SL_TABLE_ABI,
    .providers = providers, .provider_count = 2,
    .teams = teams, .team_count = 2,
    .keys = keys, .key_count = sizeof keys / sizeof *keys,
    .prices = prices, .price_count = sizeof prices / sizeof *prices,
};

/* The tests walk their own clock from 2024; periods only roll forward,
 * so the state starts before any of their dates (2000-01-01). */
static int setup(void **state)
{
    (void)state;
    return sl_gov_init_at(&table, NULL, NULL, 946684800);
}

static int teardown(void **state)
{
    (void)state;
    sl_gov_shutdown();
    return 0;
}

static sl_gov_verdict admit(int key, int64_t usd, int64_t tokens, int64_t now, sl_gov_ticket *tk)
{
    int ra;
    const char *why;
    return sl_gov_admit(key, usd, tokens, now, tk, &ra, &why);
}

static int64_t cost(uint16_t provider, const char *model, int64_t in, int64_t out, int *priced)
{
    sl_usage_counts u = {.input = in, .output = out};
    return sl_gov_cost(&table, provider, model, &u, priced);
}

/* ---- prices -------------------------------------------------------------- */

static void test_cost_exact(void **state)
{
    (void)state;
    int priced;
    sl_usage_counts u = {.input = 1000, .output = 1000, .cache_read = 1000, .cache_write = 1000};
    assert_int_equal(sl_gov_cost(&table, P_ANT, "claude-sonnet-4-5", &u, &priced), 3000 + 15000 + 300 + 3750);
    assert_int_equal(priced, 1);
    assert_int_equal(cost(P_OAI, "gpt-4o", 1000000, 0, &priced), 2500000);
    assert_int_equal(priced, 1);
}

static void test_cost_glob(void **state)
{
    (void)state;
    int priced;
    /* Exact wins over the earlier glob that also matches. */
    assert_int_equal(cost(P_ANT, "claude-sonnet-4-5", 1000000, 0, &priced), 3000000);
    /* A name only the glob covers: the bypass was a cost of 0 here. */
    assert_int_equal(cost(P_ANT, "claude-opus-9", 1000000, 0, &priced), 1000000);
    assert_int_equal(priced, 1);
    /* Longest literal prefix: claude-3-* over claude-*. */
    assert_int_equal(cost(P_ANT, "claude-3-opus", 1000000, 0, &priced), 2000000);
    /* Equal prefixes: the first in spec order. */
    assert_int_equal(cost(P_ANT, "claude-3-haiku", 0, 1000000, &priced), 10000000);
    /* '?' is one byte. */
    assert_int_equal(cost(P_ANT, "cXaude-x", 1000000, 0, &priced), 7000000);
    assert_int_equal(cost(P_OAI, "gpt-4o-mini", 1000000, 0, &priced), 150000);
    assert_int_equal(priced, 1);
}

static void test_cost_unpriced(void **state)
{
    (void)state;
    int priced = 7;
    assert_int_equal(cost(P_ANT, "gpt-4o", 1000, 1000, &priced), 0);
    assert_int_equal(priced, 0);
    /* Globs are per provider. */
    priced = 7;
    assert_int_equal(cost(P_OAI, "claude-opus-9", 1000, 1000, &priced), 0);
    assert_int_equal(priced, 0);
    priced = 7;
    assert_int_equal(cost(P_ANT, "claude", 1000, 1000, &priced), 0);
    assert_int_equal(priced, 0);
}

static void test_cost_overflow(void **state)
{
    (void)state;
    int priced;
    /* "max_tokens": 9223371936854775808 at USD 15/Mtok wrapped negative. */
    int64_t c = cost(P_ANT, "claude-sonnet-4-5", 0, 9223371936854775807LL - 100000000000000000LL + 1, &priced);
    assert_true(c == INT64_MAX);
    assert_true(cost(P_ANT, "claude-sonnet-4-5", INT64_MAX, INT64_MAX, &priced) == INT64_MAX);
    sl_usage_counts u = {.input = INT64_MAX, .output = INT64_MAX, .cache_read = INT64_MAX, .cache_write = INT64_MAX, .have = 1};
    assert_true(sl_gov_cost(&table, P_OAI, "dear", &u, &priced) == INT64_MAX);
    /* Negative counts (a hostile or broken usage report) cost nothing,
     * and never reduce what the other counts cost. */
    assert_int_equal(cost(P_ANT, "claude-sonnet-4-5", -1000000, 1000000, &priced), 15000000);
    assert_int_equal(cost(P_ANT, "claude-sonnet-4-5", INT64_MIN, INT64_MIN, &priced), 0);
    /* The largest price, a count that still fits. */
    assert_true(cost(P_OAI, "dear", 1000, 0, &priced) == 1000000000);
}

/* ---- budgets ------------------------------------------------------------- */

static void test_admit_settle_key_budget(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t now = JAN1 + 3600;
    assert_int_equal(admit(K_ALICE, 300, 10, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 250, 10, now);
    assert_int_equal(tk.key, -1); /* settled exactly once */
    sl_gov_view v;
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.spent_usd, 250);
    assert_int_equal(v.reserved_usd, 0);
    assert_int_equal(v.spent_tokens, 10);
    /* 250 + 251 > 500. */
    assert_int_equal(admit(K_ALICE, 251, 0, now, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_ALICE, 250, 0, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 250, 0, now);
    assert_int_equal(admit(K_ALICE, 1, 0, now, &tk), SL_GOV_BUDGET);
    /* A key without a budget of any kind is never refused. */
    assert_int_equal(admit(K_GRACE, INT64_MAX, INT64_MAX, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, INT64_MAX, INT64_MAX, now);
    assert_int_equal(admit(K_GRACE, INT64_MAX, INT64_MAX, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, now);
}

static void test_refusal_reserves_nothing(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    int64_t now = JAN1;
    assert_int_equal(sl_gov_admit(K_ALICE, 501, 0, now, &tk, &ra, &why), SL_GOV_BUDGET);
    assert_string_equal(why, "key budget exhausted");
    sl_gov_view v;
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.reserved_usd, 0);
    sl_gov_view_team(T_PLATFORM, now, &v);
    assert_int_equal(v.reserved_usd, 0);
    /* Settling a refused ticket is harmless. */
    sl_gov_settle(&tk, 0, 0, now);
}

static void test_team_and_key_sum(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    int64_t now = JAN1 + 10;
    /* bob has no budget, but spends from the team's 1000. */
    assert_int_equal(admit(K_BOB, 800, 0, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 800, 0, now);
    /* alice has 500 of her own, but the team has 200 left. */
    assert_int_equal(sl_gov_admit(K_ALICE, 300, 0, now, &tk, &ra, &why), SL_GOV_BUDGET);
    assert_string_equal(why, "team budget exhausted");
    assert_int_equal(admit(K_ALICE, 200, 0, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 150, 0, now);
    sl_gov_view v;
    sl_gov_view_team(T_PLATFORM, now, &v);
    assert_int_equal(v.spent_usd, 950);
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.spent_usd, 150);
    sl_gov_view_key(K_BOB, now, &v);
    assert_int_equal(v.spent_usd, 800);
}

static void test_team_token_budget(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    int64_t now = JAN1;
    assert_int_equal(admit(K_FRANK, 0, 600, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 700, now);
    assert_int_equal(sl_gov_admit(K_FRANK, 0, 301, now, &tk, &ra, &why), SL_GOV_BUDGET);
    assert_string_equal(why, "team token budget exhausted");
    assert_int_equal(admit(K_FRANK, 0, 300, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 300, now);
}

static void test_reservation_blocks_parallel(void **state)
{
    (void)state;
    sl_gov_ticket a, b;
    int64_t now = JAN1;
    /* Two requests of 300 each cannot both be in flight on 500. */
    assert_int_equal(admit(K_ALICE, 300, 0, now, &a), SL_GOV_OK);
    assert_int_equal(admit(K_ALICE, 300, 0, now, &b), SL_GOV_BUDGET);
    sl_gov_view v;
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.reserved_usd, 300);
    /* Settled below its estimate, the rest is free again. */
    sl_gov_settle(&a, 100, 0, now);
    assert_int_equal(admit(K_ALICE, 300, 0, now, &b), SL_GOV_OK);
    sl_gov_settle(&b, 300, 0, now);
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.spent_usd, 400);
    assert_int_equal(v.reserved_usd, 0);
}

typedef struct race {
    pthread_barrier_t *start;
    int64_t now;
    int ok;
    sl_gov_ticket tk;
} race;

static void *racer(void *arg)
{
    race *r = arg;
    pthread_barrier_wait(r->start);
    r->ok = admit(K_CAROL, 100, 0, r->now, &r->tk) == SL_GOV_OK;
    return NULL;
}

static void test_reservation_threads(void **state)
{
    (void)state;
    enum { N = 16 };
    pthread_t th[N];
    race r[N];
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, N);
    for (int i = 0; i < N; i++) {
        r[i] = (race){.start = &start, .now = JAN1};
        pthread_create(&th[i], NULL, racer, &r[i]);
    }
    int ok = 0;
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        ok += r[i].ok;
    }
    pthread_barrier_destroy(&start);
    /* 700 / 100: exactly seven fit, however the threads interleave. */
    assert_int_equal(ok, 7);
    for (int i = 0; i < N; i++)
        if (r[i].ok)
            sl_gov_settle(&r[i].tk, 100, 0, JAN1);
    sl_gov_view v;
    sl_gov_view_key(K_CAROL, JAN1, &v);
    assert_int_equal(v.spent_usd, 700);
    assert_int_equal(v.reserved_usd, 0);
}

/* ---- periods ------------------------------------------------------------- */

static void test_period_starts(void **state)
{
    (void)state;
    assert_int_equal(sl_gov_period_start(SL_PERIOD_DAY, JAN1 - 1), JAN1 - DAY);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_DAY, JAN1), JAN1);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_DAY, JAN1 + DAY - 1), JAN1);
    /* ISO weeks start on Monday: Sunday 2023-12-31 is in the week of
     * Monday 2023-12-25; Sunday 2024-01-07 in the week of Jan 1. */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_WEEK, JAN1 - 1), JAN1 - 7 * DAY);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_WEEK, JAN1), JAN1);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_WEEK, JAN1 + 7 * DAY - 1), JAN1);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_WEEK, JAN1 + 7 * DAY), JAN1 + 7 * DAY);
    /* Months, a leap February and a year end. */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1706745599), JAN1);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1706745600), 1706745600);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1709208000), 1706745600); /* Feb 29 */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1709251200), 1709251200); /* Mar 1 */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1735689599), 1733011200); /* Dec 31 */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_MONTH, 1735689600), 1735689600); /* Jan 1 2025 */
    assert_int_equal(sl_gov_period_start(SL_PERIOD_TOTAL, JAN1), 0);
    assert_int_equal(sl_gov_period_start(SL_PERIOD_NONE, JAN1), 0);
}

static void test_day_rollover(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t late = JAN1 + DAY - 1;
    assert_int_equal(admit(K_ALICE, 500, 0, late, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 500, 0, late);
    assert_int_equal(admit(K_ALICE, 1, 0, late, &tk), SL_GOV_BUDGET);
    /* One second later it is a new UTC day. */
    assert_int_equal(admit(K_ALICE, 500, 0, late + 1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, late + 1);
    sl_gov_view v;
    sl_gov_view_key(K_ALICE, late + 1, &v);
    assert_int_equal(v.spent_usd, 0);
    assert_int_equal(v.period_start, JAN1 + DAY);
}

/* A wall clock stepped back across midnight (an NTP correction) is not a
 * new day: the day's spend stays, or the key could spend its budget
 * again; the real next day still starts afresh. */
static void test_clock_stepping_back_keeps_spend(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t morning = JAN1 + DAY + 60;
    assert_int_equal(admit(K_ALICE, 500, 0, morning, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 500, 0, morning);
    assert_int_equal(admit(K_ALICE, 1, 0, morning - 120, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_ALICE, 1, 0, morning, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_ALICE, 500, 0, JAN1 + 2 * DAY, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, JAN1 + 2 * DAY);
}

static void test_week_rollover(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t sunday = JAN1 + 7 * DAY - 1;
    assert_int_equal(admit(K_CAROL, 700, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 700, 0, JAN1);
    /* Still the same ISO week on Sunday night... */
    assert_int_equal(admit(K_CAROL, 1, 0, sunday, &tk), SL_GOV_BUDGET);
    /* ...a new one on Monday. */
    assert_int_equal(admit(K_CAROL, 700, 0, sunday + 1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 700, 0, sunday + 1);
}

static void test_month_rollover(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t jan31 = 1706745599, feb1 = 1706745600;
    assert_int_equal(admit(K_FRANK, 0, 1000, jan31 - 5 * DAY, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 1000, jan31 - 5 * DAY);
    assert_int_equal(admit(K_FRANK, 0, 1, jan31, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_FRANK, 0, 1000, feb1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, feb1);
}

static void test_total_never_rolls(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    assert_int_equal(admit(K_HEIDI, 0, 5000, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 5000, JAN1);
    assert_int_equal(admit(K_HEIDI, 0, 1, JAN1 + 400 * DAY, &tk), SL_GOV_BUDGET);
}

static void test_reservation_across_rollover(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int64_t late = JAN1 + DAY - 1;
    /* Admitted on one day, settled on the next: the charge lands in the
     * new day and the reservation does not linger. */
    assert_int_equal(admit(K_ALICE, 400, 0, late, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 300, 0, late + 10);
    sl_gov_view v;
    sl_gov_view_key(K_ALICE, late + 10, &v);
    assert_int_equal(v.spent_usd, 300);
    assert_int_equal(v.reserved_usd, 0);
}

/* ---- rate limits --------------------------------------------------------- */

static void test_rpm(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    assert_int_equal(admit(K_DAVE, 0, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, JAN1);
    assert_int_equal(admit(K_DAVE, 0, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, JAN1);
    assert_int_equal(sl_gov_admit(K_DAVE, 0, 0, JAN1, &tk, &ra, &why), SL_GOV_RATE_LIMITED);
    assert_string_equal(why, "request rate limit reached");
    /* One request refills in 30 s. */
    assert_in_range(ra, 1, 31);
}

static void test_tpm(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    assert_int_equal(admit(K_ERIN, 0, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 150, JAN1);
    /* 50 tokens in debt at 100 a minute: about 31 s. */
    assert_int_equal(sl_gov_admit(K_ERIN, 0, 0, JAN1, &tk, &ra, &why), SL_GOV_RATE_LIMITED);
    assert_string_equal(why, "token rate limit reached");
    assert_in_range(ra, 29, 32);
}

static void test_tpm_huge_usage(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    assert_int_equal(admit(K_ERIN, 0, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, INT64_MAX, JAN1);
    /* The wait is bounded and converting it is not undefined. */
    assert_int_equal(sl_gov_admit(K_ERIN, 0, 0, JAN1, &tk, &ra, &why), SL_GOV_RATE_LIMITED);
    assert_in_range(ra, 1, 86400);
}

/* ---- overflow ------------------------------------------------------------ */

static void test_overflow_estimate_refused(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int priced;
    int64_t est = cost(P_ANT, "claude-sonnet-4-5", 1000, 9223371936854775807LL - 100000000000000000LL + 1,
                       &priced);
    assert_true(est > 0);
    assert_int_equal(admit(K_ALICE, est, INT64_MAX, JAN1, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_HEIDI, 0, INT64_MAX, JAN1, &tk), SL_GOV_BUDGET);
    /* Even a budget of INT64_MAX is not passed by an INT64_MAX estimate on
     * top of existing spend. */
    assert_int_equal(admit(K_IVAN, 10, 0, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 10, 0, JAN1);
    assert_int_equal(admit(K_IVAN, INT64_MAX, 0, JAN1, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_IVAN, 0, INT64_MAX, JAN1, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, JAN1);
}

static void test_overflow_spend_saturates(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    sl_gov_view v;
    /* Team spend goes to the limit and stays there instead of wrapping
     * negative and unlocking the budget again. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(admit(K_GRACE, 0, 0, JAN1, &tk), SL_GOV_OK);
        sl_gov_settle(&tk, INT64_MAX, INT64_MAX, JAN1);
    }
    sl_gov_view_key(K_GRACE, JAN1, &v);
    assert_true(v.spent_usd == INT64_MAX);
    assert_true(v.spent_tokens == INT64_MAX);
    sl_gov_ticket t2;
    assert_int_equal(admit(K_BOB, 0, 0, JAN1, &tk), SL_GOV_OK);
    assert_int_equal(admit(K_BOB, 0, 0, JAN1, &t2), SL_GOV_OK);
    sl_gov_settle(&tk, INT64_MAX, 0, JAN1);
    sl_gov_settle(&tk, INT64_MAX, 0, JAN1); /* second settle is a no-op */
    sl_gov_settle(&t2, INT64_MAX, 0, JAN1);
    sl_gov_view_team(T_PLATFORM, JAN1, &v);
    assert_true(v.spent_usd == INT64_MAX);
    assert_int_equal(admit(K_ALICE, 0, 0, JAN1, &tk), SL_GOV_BUDGET);
}

static void test_overflow_reservations_saturate(void **state)
{
    (void)state;
    sl_gov_ticket a, b;
    sl_gov_view v;
    /* No budget: both pass, and the reserved sum sticks at the limit. */
    assert_int_equal(admit(K_GRACE, INT64_MAX, INT64_MAX, JAN1, &a), SL_GOV_OK);
    assert_int_equal(admit(K_GRACE, INT64_MAX, INT64_MAX, JAN1, &b), SL_GOV_OK);
    sl_gov_view_key(K_GRACE, JAN1, &v);
    assert_true(v.reserved_usd == INT64_MAX);
    assert_true(v.reserved_tokens == INT64_MAX);
    sl_gov_settle(&a, 0, 0, JAN1);
    sl_gov_settle(&b, 0, 0, JAN1);
    sl_gov_view_key(K_GRACE, JAN1, &v);
    assert_true(v.reserved_usd == 0);
    assert_true(v.reserved_tokens == 0);
}

static void test_negative_inputs(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    sl_gov_view v;
    /* A negative estimate must not make room for others; a negative
     * charge must not refund. */
    assert_int_equal(admit(K_ALICE, -1000000, -5, JAN1, &tk), SL_GOV_OK);
    sl_gov_view_key(K_ALICE, JAN1, &v);
    assert_true(v.reserved_usd == 0);
    assert_true(v.reserved_tokens == 0);
    assert_int_equal(admit(K_ALICE, 501, 0, JAN1, &tk), SL_GOV_BUDGET);
    sl_gov_ticket t2;
    assert_int_equal(admit(K_ALICE, 500, 0, JAN1, &t2), SL_GOV_OK);
    sl_gov_settle(&t2, 500, 0, JAN1);
    sl_gov_settle(&tk, INT64_MIN, INT64_MIN, JAN1);
    sl_gov_view_key(K_ALICE, JAN1, &v);
    assert_true(v.spent_usd == 500);
    assert_true(v.spent_tokens == 0);
    assert_int_equal(admit(K_ALICE, 1, 0, JAN1, &tk), SL_GOV_BUDGET);
}

/* ---- the rest of the API ------------------------------------------------ */

static void test_usd_budget_applies(void **state)
{
    (void)state;
    assert_true(sl_gov_usd_budget_applies(&table, K_ALICE));
    assert_true(sl_gov_usd_budget_applies(&table, K_BOB));    /* through the team */
    assert_true(sl_gov_usd_budget_applies(&table, K_CAROL));
    assert_false(sl_gov_usd_budget_applies(&table, K_DAVE));  /* rate limits only */
    assert_false(sl_gov_usd_budget_applies(&table, K_FRANK)); /* team counts tokens only */
    assert_false(sl_gov_usd_budget_applies(&table, K_GRACE));
    assert_true(sl_gov_usd_budget_applies(&table, K_HEIDI));
    assert_false(sl_gov_usd_budget_applies(&table, -1));      /* open gateway */
    assert_false(sl_gov_usd_budget_applies(&table, 1000));
}

static void test_view_remaining(void **state)
{
    (void)state;
    sl_gov_ticket a, b;
    sl_gov_view v;
    assert_int_equal(admit(K_ALICE, 100, 0, JAN1, &a), SL_GOV_OK);
    assert_int_equal(admit(K_ALICE, 50, 0, JAN1, &b), SL_GOV_OK);
    sl_gov_settle(&a, 120, 0, JAN1);
    sl_gov_view_key(K_ALICE, JAN1, &v);
    assert_int_equal(v.remaining_usd, 500 - 120 - 50);
    assert_int_equal(v.remaining_tokens, -1);
    sl_gov_settle(&b, 1000, 0, JAN1); /* over the estimate: never negative */
    sl_gov_view_key(K_ALICE, JAN1, &v);
    assert_int_equal(v.remaining_usd, 0);
    sl_gov_view_key(K_GRACE, JAN1, &v);
    assert_int_equal(v.remaining_usd, -1);
    sl_gov_view_team(T_TOKENS, JAN1, &v);
    assert_int_equal(v.remaining_usd, -1);
    assert_int_equal(v.remaining_tokens, 1000);
    sl_gov_view_key(K_IVAN, JAN1, &v);
    assert_true(v.remaining_usd == INT64_MAX);
}

/* Ledger stand-in: alice already spent 400 today, the team a negative
 * amount (a corrupt row), everyone else nothing. */
static int restore(void *ctx, const char *column, const char *name, int64_t since, int64_t *usd,
                   int64_t *tokens)
{
    int *calls = ctx;
    (*calls)++;
    *usd = *tokens = 0;
    if (!strcmp(column, "key") && !strcmp(name, "alice")) {
        *usd = 400;
        *tokens = 77;
    } else if (!strcmp(column, "team") && !strcmp(name, "platform")) {
        *usd = INT64_MIN;
        *tokens = -5;
    }
    return 0;
}

static int failing_restore(void *ctx, const char *column, const char *name, int64_t since,
                           int64_t *usd, int64_t *tokens)
{
    return -1;
}

static void test_restore(void **state)
{
    (void)state;
    sl_gov_shutdown();
    int calls = 0;
    assert_int_equal(sl_gov_init(&table, restore, &calls), 0);
    assert_int_equal(calls, (int)(table.key_count + table.team_count));
    sl_gov_view v;
    int64_t now = (int64_t)time(NULL);
    sl_gov_view_key(K_ALICE, now, &v);
    assert_int_equal(v.spent_usd, 400);
    assert_int_equal(v.spent_tokens, 77);
    sl_gov_view_team(T_PLATFORM, now, &v);
    assert_int_equal(v.spent_usd, 0);
    assert_int_equal(v.spent_tokens, 0);
    sl_gov_ticket tk;
    assert_int_equal(admit(K_ALICE, 101, 0, now, &tk), SL_GOV_BUDGET);
    assert_int_equal(admit(K_ALICE, 100, 0, now, &tk), SL_GOV_OK);
    sl_gov_settle(&tk, 0, 0, now);
    sl_gov_shutdown();
    assert_int_equal(sl_gov_init(&table, failing_restore, NULL), -1);
}

static void test_open_gateway(void **state)
{
    (void)state;
    sl_gov_ticket tk;
    int ra;
    const char *why;
    assert_int_equal(sl_gov_admit(-1, INT64_MAX, INT64_MAX, JAN1, &tk, &ra, &why), SL_GOV_OK);
    assert_int_equal(tk.key, -1);
    sl_gov_settle(&tk, INT64_MAX, INT64_MAX, JAN1);
}

/* A replica's share while the shared state is down: every limit divided
 * by the replica count, spend already charged counted against it. */
static void test_share(void **state)
{
    (void)state;
    sl_gov_ticket tk[4];
    int ra;
    const char *why;
    /* carol: 700 a week; a third is 233. */
    for (int i = 0; i < 2; i++)
        assert_int_equal(sl_gov_admit_share(K_CAROL, 100, 0, JAN1, 3, &tk[i], &ra, &why), SL_GOV_OK);
    assert_int_equal(sl_gov_admit_share(K_CAROL, 34, 0, JAN1, 3, &tk[2], &ra, &why), SL_GOV_BUDGET);
    assert_int_equal(sl_gov_admit_share(K_CAROL, 33, 0, JAN1, 3, &tk[2], &ra, &why), SL_GOV_OK);
    /* The whole budget still applies without a share. */
    assert_int_equal(sl_gov_admit(K_CAROL, 400, 0, JAN1, &tk[3], &ra, &why), SL_GOV_OK);
    for (int i = 0; i < 4; i++)
        sl_gov_settle(&tk[i], 0, 0, JAN1);
    /* dave: 2 rpm; a half share admits one. */
    assert_int_equal(sl_gov_admit_share(K_DAVE, 0, 0, JAN1, 2, &tk[0], &ra, &why), SL_GOV_OK);
    assert_int_equal(sl_gov_admit_share(K_DAVE, 0, 0, JAN1, 2, &tk[1], &ra, &why), SL_GOV_RATE_LIMITED);
    assert_true(ra >= 1 && ra <= 61);
}

/* A ticket reserved in Redis reserved nothing here: settling it charges
 * this process's counters only, and never takes a reservation back. */
static void test_remote_ticket_charges(void **state)
{
    (void)state;
    sl_gov_ticket local, remote = {.key = K_CAROL, .team = -1, .remote = 1};
    assert_int_equal(admit(K_CAROL, 300, 0, JAN1, &local), SL_GOV_OK);
    sl_gov_settle(&remote, 250, 10, JAN1);
    sl_gov_view v;
    sl_gov_view_key(K_CAROL, JAN1, &v);
    assert_int_equal(v.spent_usd, 250);
    assert_int_equal(v.reserved_usd, 300);
    sl_gov_settle(&local, 0, 0, JAN1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_cost_exact),
        T(test_cost_glob),
        T(test_cost_unpriced),
        T(test_cost_overflow),
        T(test_admit_settle_key_budget),
        T(test_refusal_reserves_nothing),
        T(test_team_and_key_sum),
        T(test_team_token_budget),
        T(test_reservation_blocks_parallel),
        T(test_reservation_threads),
        T(test_period_starts),
        T(test_day_rollover),
        T(test_clock_stepping_back_keeps_spend),
        T(test_week_rollover),
        T(test_month_rollover),
        T(test_total_never_rolls),
        T(test_reservation_across_rollover),
        T(test_rpm),
        T(test_tpm),
        T(test_tpm_huge_usage),
        T(test_overflow_estimate_refused),
        T(test_overflow_spend_saturates),
        T(test_overflow_reservations_saturate),
        T(test_negative_inputs),
        T(test_usd_budget_applies),
        T(test_view_remaining),
        T(test_restore),
        T(test_open_gateway),
        T(test_share),
        T(test_remote_ticket_charges),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
