/*
 * GET /metrics: the Prometheus text exposition. Request counters and
 * histograms come summed from the workers' shards (metrics/metrics.h);
 * everything that is a current state rather than a count (circuit per
 * target, requests in flight, open connections, remaining budgets, the
 * ledger's queue) is read from its owner now, so the request path pays
 * nothing for it. The page names every entry, provider, key and team, so
 * it is for operators: the admin key when the spec has one; on an open
 * gateway (no keys, which compiles only for loopback) a loopback client;
 * otherwise nobody (404, as the admin API).
 */
#include <stdio.h>
#include <string.h>

#include "auth/auth.h"
#include "cache/cache.h"
#include "govern/govern.h"
#include "guard/guard.h"
#include "handlers/handlers.h"
#include "metrics/metrics.h"
#include "proxy/proxy.h"
#include "proxy/surface.h"
#include "route/health.h"
#include "state/state.h"
#include "trace/trace.h"

static int loopback_peer(const char *peer)
{
    return strncmp(peer, "127.", 4) == 0 || strncmp(peer, "[::1]:", 6) == 0 ||
           strncmp(peer, "[::ffff:127.", 12) == 0;
}

static int gauge(sl_buf *o, const char *name, const char *help, double v)
{
    return sl_metrics_text_family(o, name, "gauge", help) | sl_metrics_text_begin(o, name) |
           sl_metrics_text_end(o, 0, v);
}

static int circuits(sl_buf *o, const sl_table *t)
{
    int rc = sl_metrics_text_family(o, "sluice_circuit_state", "gauge",
                                    "Circuit breaker per target: 0 closed, 1 open (cooling down), 2 half-open");
    int64_t now = sl_health_now_ms();
    for (uint32_t m = 0; m < t->model_count; m++) {
        const sl_model_entry *e = &t->models[m];
        for (uint32_t i = e->target_first; i < e->target_first + e->target_count; i++) {
            uint32_t fails;
            int64_t remaining;
            sl_health_state st = sl_health_state_of(i, now, &fails, &remaining);
            char idx[16];
            snprintf(idx, sizeof idx, "%u", i - e->target_first);
            int n = 0;
            rc |= sl_metrics_text_begin(o, "sluice_circuit_state");
            rc |= sl_metrics_text_label(o, &n, "entry", e->name);
            rc |= sl_metrics_text_label(o, &n, "target", idx);
            rc |= sl_metrics_text_label(o, &n, "provider", t->providers[t->targets[i].provider].name);
            rc |= sl_metrics_text_label(o, &n, "upstream_model", t->targets[i].model ? t->targets[i].model : "");
            rc |= sl_metrics_text_end(o, n, (double)st);
        }
    }
    return rc;
}

/* Remaining budget of every key and team that has one, in USD and in
 * tokens (only the limits that exist). */
static int budgets(sl_buf *o, const sl_table *t)
{
    static const char *const names[2] = {"sluice_budget_remaining_usd", "sluice_budget_remaining_tokens"};
    int rc = 0;
    int64_t now = sl_gov_now();
    for (int unit = 0; unit < 2; unit++) {
        rc |= sl_metrics_text_family(o, names[unit], "gauge",
                                     unit ? "Tokens left in the current budget period, by key or team"
                                          : "USD left in the current budget period, by key or team");
        for (int scope = 0; scope < 2; scope++) {
            uint32_t count = scope ? t->team_count : t->key_count;
            for (uint32_t i = 0; i < count; i++) {
                const sl_budget *b = scope ? &t->teams[i].budget : &t->keys[i].budget;
                if (b->per == SL_PERIOD_NONE || (unit ? b->tokens : b->usd_micros) < 0)
                    continue;
                sl_gov_view v;
                if (scope)
                    sl_gov_view_team((int)i, now, &v);
                else
                    sl_gov_view_key((int)i, now, &v);
                int64_t left = unit ? v.remaining_tokens : v.remaining_usd;
                if (left < 0)
                    continue;
                int n = 0;
                rc |= sl_metrics_text_begin(o, names[unit]);
                rc |= sl_metrics_text_label(o, &n, "scope", scope ? "team" : "key");
                rc |= sl_metrics_text_label(o, &n, "name", scope ? t->teams[i].name : t->keys[i].name);
                rc |= sl_metrics_text_end(o, n, unit ? (double)left : (double)left / 1e6);
            }
        }
    }
    return rc;
}

static int ledger(sl_buf *o)
{
    sl_ledger *l = sl_proxy_ledger();
    if (!l)
        return 0;
    sl_ledger_stat st;
    sl_ledger_stats(l, &st);
    int rc = gauge(o, "sluice_ledger_queue_depth", "Ledger rows queued and not yet written", (double)st.queued);
    rc |= sl_metrics_text_family(o, "sluice_ledger_rows_committed_total", "counter", "Ledger rows committed");
    rc |= sl_metrics_text_begin(o, "sluice_ledger_rows_committed_total");
    rc |= sl_metrics_text_end(o, 0, (double)st.committed);
    rc |= sl_metrics_text_family(o, "sluice_ledger_commit_seconds", "summary",
                                 "Ledger write transactions (group commits) and their time");
    rc |= sl_metrics_text_begin(o, "sluice_ledger_commit_seconds_sum");
    rc |= sl_metrics_text_end(o, 0, st.transaction_s);
    rc |= sl_metrics_text_begin(o, "sluice_ledger_commit_seconds_count");
    rc |= sl_metrics_text_end(o, 0, (double)st.transactions);
    return rc;
}

/* state: { redis: ... }: whether Redis answers, and what it cost when not. */
static int shared_state(sl_buf *o)
{
    int rc = gauge(o, "sluice_state_mode",
                   "1 while the shared state (Redis) answers, 0 while on_state_error applies", sl_state_mode());
    rc |= sl_metrics_text_family(o, "sluice_state_errors_total", "counter",
                                 "Redis connections and commands that failed or timed out");
    rc |= sl_metrics_text_begin(o, "sluice_state_errors_total");
    rc |= sl_metrics_text_end(o, 0, (double)sl_state_errors());
    rc |= sl_metrics_text_family(o, "sluice_state_unavailable_requests_total", "counter",
                                 "Requests admitted or refused by on_state_error because Redis did not answer");
    rc |= sl_metrics_text_begin(o, "sluice_state_unavailable_requests_total");
    rc |= sl_metrics_text_end(o, 0, (double)sl_state_fallbacks());
    return rc;
}

void sl_handle_metrics(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                       size_t len)
{
    (void)ep;
    (void)body;
    (void)len;
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    /* With admin:, the head hook has already checked the admin key. */
    if (!t->has_admin && (t->key_count > 0 || !loopback_peer(sl_conn_peer(c)))) {
        sl_surface_error(c, SL_PROTO_OPENAI, 404, NULL, NULL,
                         "metrics need the admin key (admin: in the spec)");
        return;
    }
    (void)req;
    sl_buf o = {0};
    int rc = sl_metrics_render(&o);
    rc |= gauge(&o, "sluice_in_flight_requests", "Inference requests being served", (double)sl_metrics_in_flight());
    rc |= gauge(&o, "sluice_connections_open", "Client connections open", (double)sl_conn_open_total());
    rc |= circuits(&o, t);
    rc |= budgets(&o, t);
    rc |= ledger(&o);
    if (t->redis)
        rc |= shared_state(&o);
    if (t->cache_ops)
        rc |= t->cache_ops->metrics(&o, t);
    if (t->guard)
        rc |= t->guard->ops->metrics(t, &o);
    if (sl_trace_enabled()) {
        rc |= sl_metrics_text_family(&o, "sluice_trace_spans_dropped_total", "counter",
                                     "Spans not exported: the queue was full or the collector failed");
        rc |= sl_metrics_text_begin(&o, "sluice_trace_spans_dropped_total");
        rc |= sl_metrics_text_end(&o, 0, (double)sl_trace_dropped());
    }
    int n = 0;
    rc |= sl_metrics_text_family(&o, "sluice_build_info", "gauge", "The running build: version and spec SHA-256");
    rc |= sl_metrics_text_begin(&o, "sluice_build_info");
    rc |= sl_metrics_text_label(&o, &n, "version", SLUICE_VERSION);
    rc |= sl_metrics_text_label(&o, &n, "spec_sha256", t->spec_sha256);
    rc |= sl_metrics_text_end(&o, n, 1);
    if (rc) {
        sl_buf_free(&o);
        sl_surface_error(c, SL_PROTO_OPENAI, 503, "overloaded", "Retry-After: 1\r\n", "out of memory");
        return;
    }
    sl_conn_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", NULL, o.data, o.len);
    sl_buf_free(&o);
}
