/*
 * Local or shared admission and settlement (see admission.h).
 */
#include "proxy/admission.h"

#include <string.h>
#include <time.h>

#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "state/state.h"
#include "upstream/upstream.h"

static int limited(const sl_budget *b, const sl_limits *l)
{
    return b->per != SL_PERIOD_NONE || l->rpm || l->tpm;
}

/* Does Redis hold this key's limits? Keys with nothing to share (and
 * open gateways) never wait for it. */
static int shared(const sl_table *t, int key)
{
    if (!t->redis || key < 0)
        return 0;
    const sl_key *k = &t->keys[key];
    if (limited(&k->budget, &k->limits))
        return 1;
    return k->team >= 0 && limited(&t->teams[k->team].budget, &t->teams[k->team].limits);
}

static void refuse(sl_exchange *x, sl_gov_verdict v, int retry_after, const char *why)
{
    sl_metrics_refused(x->metrics, x->key, v == SL_GOV_BUDGET ? SL_MET_REFUSED_BUDGET : SL_MET_REFUSED_RATE_LIMIT);
    char *hdr = sl_arena_printf(x->arena, "Retry-After: %d\r\n", retry_after > 0 ? retry_after : 60);
    sl_exchange_fail(x, 429, v == SL_GOV_BUDGET ? "insufficient_quota" : "rate_limit_exceeded",
                     v == SL_GOV_RATE_LIMITED || retry_after > 0 ? hdr : NULL, "%s", why);
}

/* Admitted: refuse quickly under overload rather than queue without
 * bound, else go upstream. */
static void proceed(sl_exchange *x, const sl_attempt *plan, size_t n)
{
    x->admitted = 1;
    int workers = sl_worker_count();
    unsigned cap = x->t->server.max_inflight / (unsigned)(workers > 0 ? workers : 1);
    if (cap && sl_upstream_active(sl_worker_upstream(x->w)) >= cap) {
        sl_admission_settle(x, 0, 0, NULL);
        x->admitted = 0;
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "too many requests in flight; retry shortly");
        return;
    }
    sl_forward_plan(x, plan, n);
    sl_forward_begin(x);
}

static void local(sl_exchange *x, const sl_attempt *plan, size_t n, int64_t usd, int64_t tokens, uint32_t share)
{
    int retry_after;
    const char *why;
    sl_gov_verdict v =
        sl_gov_admit_share(x->key, usd, tokens, sl_gov_now(), share, &x->ticket, &retry_after, &why);
    if (v != SL_GOV_OK) {
        refuse(x, v, retry_after, why);
        return;
    }
    proceed(x, plan, n);
}

/* Redis did not answer: the spec's policy. */
static void unavailable(sl_exchange *x, const sl_attempt *plan, size_t n, int64_t usd, int64_t tokens)
{
    const sl_redis_spec *rs = x->t->redis;
    sl_state_fallback_count();
    if (rs->on_error == SL_STATE_LOCAL) {
        local(x, plan, n, usd, tokens, rs->replicas ? rs->replicas : 1);
        return;
    }
    sl_exchange_fail(x, 503, "state_unavailable", "Retry-After: 1\r\n",
                     "the shared budget and rate-limit state (Redis) is unreachable; this gateway refuses "
                     "budgeted requests until it answers (on_state_error: fail_closed); retry shortly");
}

static void wait_abort(void *ex)
{
    sl_exchange *x = ex;
    sl_admission_cancel(x);
    sl_finish f = {.kind = SL_FINISH_GONE, .status = 499};
    sl_exchange_finish(x, &f);
}

static void wait_drained(void *ex) { (void)ex; }

static const sl_conn_hooks wait_hooks = {wait_abort, wait_drained};

static void answered(void *ctx, const sl_state_answer *a)
{
    sl_exchange *x = ctx;
    x->state_wait = NULL;
    sl_conn_set_exchange(x->conn, NULL, NULL);
    switch (a->result) {
    case SL_STATE_GRANTED: proceed(x, x->wait_plan, x->wait_n); break;
    case SL_STATE_REFUSED: refuse(x, a->verdict, a->retry_after_s, a->why); break;
    case SL_STATE_UNAVAILABLE:
    case SL_STATE_COLD: unavailable(x, x->wait_plan, x->wait_n, x->wait_usd, x->wait_tokens); break;
    }
}

void sl_admission_run(sl_exchange *x, const sl_attempt *plan, size_t n, int64_t usd, int64_t tokens)
{
    const sl_table *t = x->t;
    if (!shared(t, x->key)) {
        local(x, plan, n, usd, tokens, 1);
        return;
    }
    const sl_state_ops *ops = t->redis->ops;
    struct sl_state_worker *sw = sl_proxy_state(x->w);
    if (!ops->down(sw)) {
        x->wait_plan = sl_arena_alloc(x->arena, n * sizeof *plan);
        if (!x->wait_plan) {
            sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
            return;
        }
        memcpy(x->wait_plan, plan, n * sizeof *plan);
        x->wait_n = n;
        x->wait_usd = usd;
        x->wait_tokens = tokens;
        x->state_wait = ops->admit(sw, x->key, usd, tokens, sl_gov_now(), &x->ticket, answered, x);
        if (x->state_wait) {
            sl_conn_set_exchange(x->conn, x, &wait_hooks);
            return;
        }
    }
    unavailable(x, plan, n, usd, tokens);
}

void sl_admission_settle(sl_exchange *x, int64_t usd, int64_t tokens, const struct sl_ledger_row *row)
{
    sl_gov_ticket *tk = &x->ticket;
    if (tk->key < 0)
        return;
    int64_t now = sl_gov_now();
    if (x->t->redis) /* this worker's spend, and the reservation in Redis */
        x->t->redis->ops->settle(sl_proxy_state(x->w), tk, usd, tokens, now, row);
    /* This replica's own counters: the admin view, and the local share
     * should Redis become unreachable. */
    sl_gov_settle(tk, usd, tokens, now);
}

void sl_admission_publish(sl_exchange *x, const struct sl_ledger_row *row)
{
    if (!x->t->redis || !row)
        return;
    sl_gov_ticket none = {.key = -1, .team = -1};
    x->t->redis->ops->settle(sl_proxy_state(x->w), &none, 0, 0, sl_gov_now(), row);
}

void sl_admission_cancel(sl_exchange *x)
{
    if (!x->state_wait)
        return;
    x->t->redis->ops->cancel(x->state_wait);
    x->state_wait = NULL;
}
