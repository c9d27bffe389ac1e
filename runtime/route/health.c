/*
 * Circuit breakers in one array indexed like table->targets. Every field is
 * an atomic so workers never lock; the half-open probe is claimed with a
 * compare-and-swap so only one request tests a recovering target.
 */
#include "route/health.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

typedef struct health {
    atomic_uint fails;          /* consecutive failures */
    atomic_llong open_until;    /* ms; 0 = closed */
    atomic_int probing;         /* a half-open probe is in flight */
} health;

static health *targets;
static uint32_t target_count;

int64_t sl_health_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_health_init(const sl_table *t)
{
    free(targets);
    target_count = t->target_count;
    targets = calloc(target_count ? target_count : 1, sizeof *targets);
    return targets ? 0 : -1;
}

void sl_health_shutdown(void)
{
    free(targets);
    targets = NULL;
    target_count = 0;
}

int sl_health_usable(uint32_t i, int64_t now)
{
    if (i >= target_count)
        return 1;
    long long until = atomic_load(&targets[i].open_until);
    if (until == 0)
        return 1;
    return now >= until && atomic_load(&targets[i].probing) == 0;
}

int sl_health_acquire(uint32_t i, int64_t now, int *probe)
{
    *probe = 0;
    if (i >= target_count)
        return 1;
    health *h = &targets[i];
    long long until = atomic_load(&h->open_until);
    if (until == 0)
        return 1;
    if (now < until)
        return 0;
    int expected = 0;
    if (!atomic_compare_exchange_strong(&h->probing, &expected, 1))
        return 0;
    *probe = 1;
    return 1;
}

void sl_health_report(uint32_t i, int ok, int probe, int64_t now, uint32_t threshold,
                      uint32_t period_ms)
{
    if (i >= target_count)
        return;
    health *h = &targets[i];
    if (!threshold)
        threshold = SL_HEALTH_DEFAULT_THRESHOLD;
    if (!period_ms)
        period_ms = SL_HEALTH_DEFAULT_PERIOD_MS;
    if (ok) {
        atomic_store(&h->fails, 0);
        atomic_store(&h->open_until, 0);
        if (probe)
            atomic_store(&h->probing, 0);
        return;
    }
    unsigned f = atomic_fetch_add(&h->fails, 1) + 1;
    if (probe || f >= threshold) {
        atomic_store(&h->open_until, now + (long long)period_ms);
        if (probe)
            atomic_store(&h->probing, 0);
    }
}

void sl_health_abandon(uint32_t i, int probe)
{
    if (probe && i < target_count)
        atomic_store(&targets[i].probing, 0);
}

void sl_health_open_until(uint32_t i, int64_t until)
{
    if (i >= target_count || until <= 0)
        return;
    long long cur = atomic_load(&targets[i].open_until);
    while (cur < until && !atomic_compare_exchange_weak(&targets[i].open_until, &cur, (long long)until))
        ;
}

sl_health_state sl_health_state_of(uint32_t i, int64_t now, uint32_t *fails, int64_t *remaining_ms)
{
    *fails = 0;
    *remaining_ms = 0;
    if (i >= target_count)
        return SL_HEALTH_CLOSED;
    health *h = &targets[i];
    *fails = atomic_load(&h->fails);
    long long until = atomic_load(&h->open_until);
    if (until == 0)
        return SL_HEALTH_CLOSED;
    if (now < until) {
        *remaining_ms = until - now;
        return SL_HEALTH_OPEN;
    }
    return SL_HEALTH_HALF_OPEN;
}
