/*
 * The attempt state machine (see attempt.h). Circuit state is the
 * process-wide breaker in route/health.c; time comes from its monotonic
 * clock, which tests control through the breaker's own inputs.
 */
#include "proxy/attempt.h"

#include <stdio.h>
#include <string.h>

#include "route/health.h"

static size_t group_length(const sl_attempts *m, size_t start)
{
    size_t n = 0;
    while (start + n < m->plan_len && m->plan[start + n].entry == m->plan[start].entry)
        n++;
    return n;
}

void sl_attempts_init(sl_attempts *m, const sl_table *t, const sl_attempt *plan, size_t n,
                      const sl_attempt_ops *ops, void *ctx, unsigned seed, sl_arena *arena)
{
    memset(m, 0, sizeof *m);
    m->arena = arena;
    m->t = t;
    m->ops = ops;
    m->ctx = ctx;
    if (n > SL_MAX_ATTEMPTS)
        n = SL_MAX_ATTEMPTS;
    memcpy(m->plan, plan, n * sizeof *plan);
    m->plan_len = n;
    m->group_len = group_length(m, 0);
    m->retry_after_s = -1;
    m->seed = seed ? seed : 1;
}

const sl_attempt *sl_attempts_current(const sl_attempts *m)
{
    return &m->plan[m->cur];
}

const sl_model_entry *sl_attempts_entry(const sl_attempts *m)
{
    return &m->t->models[m->plan[m->cur].entry];
}

static void start(sl_attempts *m, size_t idx, int probe)
{
    m->cur = idx;
    m->probe = probe;
    m->tries++;
    m->ops->start(m->ctx, &m->plan[idx]);
}

static int later_group_usable(const sl_attempts *m, int64_t now)
{
    for (size_t i = m->group_start + m->group_len; i < m->plan_len; i++)
        if (sl_health_usable(m->plan[i].target, now))
            return 1;
    return 0;
}

void sl_attempts_note(sl_attempts *m, const char *provider, const char *why)
{
    const size_t cap = SL_ATTEMPTS_FAILURES_MAX;
    if (!m->failures && !(m->failures = sl_arena_alloc(m->arena, cap)))
        return; /* out of memory: the final error names no attempt */
    if (m->failures_len >= cap - 1)
        return;
    int n = snprintf(m->failures + m->failures_len, cap - m->failures_len, "%s%s: %s",
                     m->failures_len ? "; " : "", provider ? provider : "?", why);
    if (n > 0)
        m->failures_len += (size_t)n;
    if (m->failures_len >= cap)
        m->failures_len = cap - 1;
}

const char *sl_attempts_failures(const sl_attempts *m)
{
    return m->failures ? m->failures : "";
}

/* Within the current group, the next target in rotation whose circuit
 * lets a request through; when the whole group is cooling down and a later
 * group has a usable target, move on; when nothing anywhere is usable, try
 * the rotation's target anyway. */
static void choose_and_start(sl_attempts *m)
{
    int64_t now = sl_health_now_ms();
    for (;;) {
        for (size_t k = 0; k < m->group_len; k++) {
            size_t idx = m->group_start + ((size_t)m->group_try + k) % m->group_len;
            int probe = 0;
            if (sl_health_acquire(m->plan[idx].target, now, &probe)) {
                start(m, idx, probe);
                return;
            }
        }
        if (!later_group_usable(m, now))
            break;
        const sl_target *tg = &m->t->targets[m->plan[m->group_start].target];
        sl_attempts_note(m, m->t->providers[tg->provider].name, "all targets cooling down");
        m->fallbacks++;
        m->group_start += m->group_len;
        m->group_len = group_length(m, m->group_start);
        m->group_try = 0;
    }
    start(m, m->group_start + (size_t)m->group_try % m->group_len, 0);
}

void sl_attempts_begin(sl_attempts *m)
{
    choose_and_start(m);
}

void sl_attempts_resume(sl_attempts *m)
{
    choose_and_start(m);
}

void sl_attempts_report(sl_attempts *m, int ok)
{
    const sl_model_entry *e = sl_attempts_entry(m);
    sl_health_report(m->plan[m->cur].target, ok, m->probe, sl_health_now_ms(), e->cooldown_failures,
                     e->cooldown_ms);
    m->probe = 0;
}

void sl_attempts_abandon(sl_attempts *m)
{
    if (m->plan_len)
        sl_health_abandon(m->plan[m->cur].target, m->probe);
    m->probe = 0;
}

int sl_attempts_retry_status(const sl_attempts *m, int status)
{
    const sl_model_entry *e = sl_attempts_entry(m);
    if (status < 0 || status >= 640)
        return 0;
    return (int)((e->retry.status_bits[status / 64] >> (status % 64)) & 1);
}

int sl_attempts_retry_xfer(const sl_attempts *m, sl_xfer_result r)
{
    const sl_model_entry *e = sl_attempts_entry(m);
    switch (r) {
    case SL_XFER_CONNECT:
    case SL_XFER_RESET:
    case SL_XFER_TLS: /* the connection could not be made safely; another target may */
    case SL_XFER_AUTH: /* no access token: another provider may have one */
        return e->retry.on_connect;
    case SL_XFER_TIMEOUT_FIRST_BYTE:
    case SL_XFER_TIMEOUT_TOTAL:
    case SL_XFER_TIMEOUT_IDLE:
        return e->retry.on_timeout;
    default:
        return 0;
    }
}

int sl_attempts_status_is_target_failure(int status)
{
    return status >= 500 || status == 429 || status == 408;
}

void sl_attempts_next(sl_attempts *m, const char *provider, const char *why, int retry_after_s)
{
    sl_attempts_note(m, provider, why);
    m->retry_after_s = retry_after_s;
    const sl_model_entry *e = &m->t->models[m->plan[m->group_start].entry];
    m->group_try++;
    if (m->group_try <= (int)e->retry.attempts) {
        uint32_t d = sl_route_backoff_ms(&e->retry, m->group_try - 1, m->retry_after_s, &m->seed);
        m->retry_after_s = -1;
        m->retries++;
        m->ops->wait(m->ctx, d);
        return;
    }
    m->group_start += m->group_len;
    if (m->group_start >= m->plan_len) {
        m->ops->exhausted(m->ctx);
        return;
    }
    m->group_len = group_length(m, m->group_start);
    m->group_try = 0;
    m->retry_after_s = -1;
    m->fallbacks++;
    choose_and_start(m);
}
