/*
 * Budget and rate-limit holders, one per key and per team, each with its
 * own mutex: the critical sections are a few integer operations, so a
 * mutex is cheaper to reason about than a multi-word CAS and contention
 * only arises between requests of the same key or team. Every sum of money
 * or tokens saturates (core/sat.h): estimates come from client-chosen
 * max_tokens and charges from upstream-reported usage, and a wrapped sum
 * would turn an impossible charge into a negative one that passes.
 */
#include "govern/govern.h"
#include "core/sat.h"
#include "route/glob.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct holder {
    pthread_mutex_t mu;
    sl_budget budget;
    sl_limits limits;
    int64_t period_start;
    int64_t spent_usd, reserved_usd;
    int64_t spent_tokens, reserved_tokens;
    double rpm_level, tpm_level;   /* token buckets */
    int64_t refill_ms;
} holder;

static const sl_table *gt;
static holder *keys, *teams;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t sl_gov_now(void)
{
    return (int64_t)time(NULL);
}

int64_t sl_gov_period_start(sl_period per, int64_t now)
{
    struct tm tm;
    time_t t = (time_t)now;
    switch (per) {
    case SL_PERIOD_DAY: return now - now % 86400;
    case SL_PERIOD_WEEK: {
        int64_t day = now / 86400;          /* 1970-01-01 was a Thursday */
        int64_t dow = (day + 3) % 7;        /* 0 = Monday */
        return (day - dow) * 86400;
    }
    case SL_PERIOD_MONTH:
        gmtime_r(&t, &tm);
        tm.tm_mday = 1;
        tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        return (int64_t)timegm(&tm);
    default: return 0;
    }
}

static void holder_init(holder *h, sl_budget b, sl_limits l)
{
    pthread_mutex_init(&h->mu, NULL);
    h->budget = b;
    h->limits = l;
    h->rpm_level = l.rpm;
    h->tpm_level = l.tpm;
    h->refill_ms = mono_ms();
}

int sl_gov_init(const sl_table *t, sl_gov_restore_fn restore, void *ctx)
{
    return sl_gov_init_at(t, restore, ctx, sl_gov_now());
}

int sl_gov_init_at(const sl_table *t, sl_gov_restore_fn restore, void *ctx, int64_t now)
{
    gt = t;
    keys = calloc(t->key_count ? t->key_count : 1, sizeof *keys);
    teams = calloc(t->team_count ? t->team_count : 1, sizeof *teams);
    if (!keys || !teams)
        return -1;
    for (uint32_t i = 0; i < t->key_count; i++) {
        holder *h = &keys[i];
        holder_init(h, t->keys[i].budget, t->keys[i].limits);
        h->period_start = sl_gov_period_start(h->budget.per, now);
        /* Keys without a budget still report spend (since ever). */
        if (restore &&
            restore(ctx, "key", t->keys[i].name, h->period_start, &h->spent_usd, &h->spent_tokens) != 0)
            return -1;
        h->spent_usd = sl_sat_count(h->spent_usd);
        h->spent_tokens = sl_sat_count(h->spent_tokens);
    }
    for (uint32_t i = 0; i < t->team_count; i++) {
        holder *h = &teams[i];
        holder_init(h, t->teams[i].budget, t->teams[i].limits);
        h->period_start = sl_gov_period_start(h->budget.per, now);
        if (restore &&
            restore(ctx, "team", t->teams[i].name, h->period_start, &h->spent_usd, &h->spent_tokens) != 0)
            return -1;
        h->spent_usd = sl_sat_count(h->spent_usd);
        h->spent_tokens = sl_sat_count(h->spent_tokens);
    }
    return 0;
}

void sl_gov_shutdown(void)
{
    free(keys);
    free(teams);
    keys = teams = NULL;
}

int64_t sl_gov_cost(const sl_table *t, uint16_t provider, const char *model,
                    const sl_usage_counts *u, int *priced)
{
    const sl_price *p = sl_price_for(t, provider, model);
    *priced = p != NULL;
    if (!p)
        return 0;
    const int64_t tokens[] = {u->input, u->output, u->cache_read, u->cache_write};
    const int64_t per_mtok[] = {p->input, p->output, p->cache_read, p->cache_write};
    return sl_sat_cost_dot(tokens, per_mtok, 4);
}

int sl_gov_usd_budget_applies(const sl_table *t, int key)
{
    if (key < 0 || (uint32_t)key >= t->key_count)
        return 0;
    const sl_key *k = &t->keys[key];
    if (k->budget.per != SL_PERIOD_NONE && k->budget.usd_micros >= 0)
        return 1;
    if (k->team < 0 || (uint32_t)k->team >= t->team_count)
        return 0;
    const sl_budget *b = &t->teams[k->team].budget;
    return b->per != SL_PERIOD_NONE && b->usd_micros >= 0;
}

/* Rolls the period over if `now` left it; caller holds the lock. */
static void roll(holder *h, int64_t now)
{
    if (h->budget.per == SL_PERIOD_NONE || h->budget.per == SL_PERIOD_TOTAL)
        return;
    int64_t start = sl_gov_period_start(h->budget.per, now);
    /* Only forward: a wall clock stepped back across a boundary (an NTP
     * correction) must not zero the period's spend, which would let a key
     * spend its budget twice. */
    if (start > h->period_start) {
        h->period_start = start;
        h->spent_usd = h->spent_tokens = 0;
        /* reservations made in the old period settle into the new one */
    }
}

static void refill(holder *h)
{
    int64_t now = mono_ms();
    double dt = (double)(now - h->refill_ms) / 60000.0;
    h->refill_ms = now;
    if (h->limits.rpm) {
        h->rpm_level += dt * h->limits.rpm;
        if (h->rpm_level > h->limits.rpm)
            h->rpm_level = h->limits.rpm;
    }
    if (h->limits.tpm) {
        h->tpm_level += dt * h->limits.tpm;
        if (h->tpm_level > h->limits.tpm)
            h->tpm_level = h->limits.tpm;
    }
}

/* Seconds to wait for a bucket to refill, as a Retry-After: at least 1 and
 * at most a day, so a bucket in deep debt (a huge reported usage) neither
 * overflows the int nor tells a client to come back next century. */
static int wait_s(double s)
{
    if (!(s < 86399.0))
        return 86400;
    return (int)s + 1;
}

/* Would `want` more on top of spent + reserved pass `limit` (-1: none)?
 * All terms are >= 0. Comparing against what is left, rather than adding
 * `want` to a saturated sum, stays exact even for a limit of INT64_MAX. */
static int over(int64_t limit, int64_t spent, int64_t reserved, int64_t want)
{
    if (limit < 0)
        return 0;
    int64_t used = sl_sat_add(spent, reserved);
    return used > limit || want > limit - used;
}

/* Checks one holder against its limits divided by `share`; lock held by
 * caller. A request under a share takes `share` rpm tokens from a bucket
 * that refills at the full rate: the same as a bucket of rpm/share. */
static sl_gov_verdict check(holder *h, int64_t usd, int64_t tokens, int64_t now, uint32_t share,
                            int *retry_after, const char **why, int is_team)
{
    roll(h, now);
    refill(h);
    double need = (double)share;
    if (h->limits.rpm && h->rpm_level < need) {
        *retry_after = wait_s((need - h->rpm_level) * 60.0 / h->limits.rpm);
        *why = is_team ? "team request rate limit reached" : "request rate limit reached";
        return SL_GOV_RATE_LIMITED;
    }
    /* tpm: settlement takes tokens * share from the bucket. */
    if (h->limits.tpm && h->tpm_level <= 0.0) {
        *retry_after = wait_s((-h->tpm_level + 1.0) * 60.0 / h->limits.tpm);
        *why = is_team ? "team token rate limit reached" : "token rate limit reached";
        return SL_GOV_RATE_LIMITED;
    }
    if (h->budget.per != SL_PERIOD_NONE) {
        int64_t lu = h->budget.usd_micros < 0 ? -1 : h->budget.usd_micros / share;
        int64_t lt = h->budget.tokens < 0 ? -1 : h->budget.tokens / share;
        if (over(lu, h->spent_usd, h->reserved_usd, usd)) {
            *why = is_team ? "team budget exhausted" : "key budget exhausted";
            return SL_GOV_BUDGET;
        }
        if (over(lt, h->spent_tokens, h->reserved_tokens, tokens)) {
            *why = is_team ? "team token budget exhausted" : "key token budget exhausted";
            return SL_GOV_BUDGET;
        }
    }
    return SL_GOV_OK;
}

static void reserve(holder *h, int64_t usd, int64_t tokens, uint32_t share)
{
    if (h->limits.rpm)
        h->rpm_level -= (double)share;
    h->reserved_usd = sl_sat_add(h->reserved_usd, usd);
    h->reserved_tokens = sl_sat_add(h->reserved_tokens, tokens);
}

sl_gov_verdict sl_gov_admit(int key, int64_t usd, int64_t tokens, int64_t now, sl_gov_ticket *tk,
                            int *retry_after, const char **why)
{
    return sl_gov_admit_share(key, usd, tokens, now, 1, tk, retry_after, why);
}

sl_gov_verdict sl_gov_admit_share(int key, int64_t usd, int64_t tokens, int64_t now, uint32_t share,
                                  sl_gov_ticket *tk, int *retry_after, const char **why)
{
    memset(tk, 0, sizeof *tk);
    tk->key = key;
    tk->team = -1;
    if (share < 1)
        share = 1;
    tk->share = share;
    *retry_after = 0;
    *why = "";
    if (key < 0 || !keys)
        return SL_GOV_OK;
    /* A negative estimate would free room for other requests. */
    usd = sl_sat_count(usd);
    tokens = sl_sat_count(tokens);
    holder *k = &keys[key];
    int team = gt->keys[key].team;
    holder *tm = team >= 0 ? &teams[team] : NULL;
    /* Lock order: key, then team. */
    pthread_mutex_lock(&k->mu);
    if (tm)
        pthread_mutex_lock(&tm->mu);
    sl_gov_verdict v = check(k, usd, tokens, now, share, retry_after, why, 0);
    if (v == SL_GOV_OK && tm)
        v = check(tm, usd, tokens, now, share, retry_after, why, 1);
    if (v == SL_GOV_OK) {
        reserve(k, usd, tokens, share);
        if (tm)
            reserve(tm, usd, tokens, share);
        tk->team = team;
        tk->usd = usd;
        tk->tokens = tokens;
    }
    if (tm)
        pthread_mutex_unlock(&tm->mu);
    pthread_mutex_unlock(&k->mu);
    return v;
}

static void settle_one(holder *h, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now)
{
    pthread_mutex_lock(&h->mu);
    roll(h, now);
    /* A saturated reservation sum gives back less than was added: clamp
     * at 0 rather than go negative. A remote ticket reserved nothing
     * here (tk->usd and tk->tokens are 0). */
    h->reserved_usd = sl_sat_count(sl_sat_sub(h->reserved_usd, tk->usd));
    h->reserved_tokens = sl_sat_count(sl_sat_sub(h->reserved_tokens, tk->tokens));
    h->spent_usd = sl_sat_add(h->spent_usd, usd);
    h->spent_tokens = sl_sat_add(h->spent_tokens, tokens);
    if (h->limits.tpm) {
        refill(h);
        h->tpm_level -= (double)tokens * (tk->share ? tk->share : 1);
    }
    pthread_mutex_unlock(&h->mu);
}

void sl_gov_settle(sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now)
{
    if (tk->key < 0 || !keys)
        return;
    /* A negative charge would refund spend. */
    usd = sl_sat_count(usd);
    tokens = sl_sat_count(tokens);
    settle_one(&keys[tk->key], tk, usd, tokens, now);
    if (tk->team >= 0)
        settle_one(&teams[tk->team], tk, usd, tokens, now);
    tk->key = -1;
}

static void view(holder *h, int64_t now, sl_gov_view *v)
{
    pthread_mutex_lock(&h->mu);
    roll(h, now);
    v->spent_usd = h->spent_usd;
    v->reserved_usd = h->reserved_usd;
    v->spent_tokens = h->spent_tokens;
    v->reserved_tokens = h->reserved_tokens;
    v->period_start = h->period_start;
    int64_t used_usd = sl_sat_add(h->spent_usd, h->reserved_usd);
    int64_t used_tokens = sl_sat_add(h->spent_tokens, h->reserved_tokens);
    int on = h->budget.per != SL_PERIOD_NONE;
    v->remaining_usd = on && h->budget.usd_micros >= 0
                           ? sl_sat_count(sl_sat_sub(h->budget.usd_micros, used_usd)) : -1;
    v->remaining_tokens = on && h->budget.tokens >= 0
                              ? sl_sat_count(sl_sat_sub(h->budget.tokens, used_tokens)) : -1;
    pthread_mutex_unlock(&h->mu);
}

void sl_gov_view_key(int key, int64_t now, sl_gov_view *v) { view(&keys[key], now, v); }
void sl_gov_view_team(int team, int64_t now, sl_gov_view *v) { view(&teams[team], now, v); }
