/*
 * The admin API. Exists only when the spec has `admin:`; authenticated by
 * the admin key, which is not a client key, so it cannot be spent on
 * inference. Read-only (GET): keys with their budgets and current spend,
 * and spend from the ledger grouped by key, team, model or day. Never
 * returns hashes.
 */
#define _GNU_SOURCE /* strptime, timegm */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"
#include "core/money.h"
#include "core/sat.h"
#include "govern/govern.h"
#include "handlers/handlers.h"
#include "ledger/ledger.h"
#include "proxy/proxy.h"
#include "proxy/surface.h"
#include "state/state.h"

static int path_is(const sl_http_request *r, const char *p)
{
    size_t n = strlen(p);
    return r->path_len == n && memcmp(r->path, p, n) == 0;
}

/* A time bound from the query: unix seconds or YYYY-MM-DD (UTC); 0 when
 * absent, -1 when unparsable. */
static int64_t query_time(const sl_http_request *req, const char *name)
{
    size_t vn;
    const char *raw = sl_http_query_param(req, name, &vn);
    if (!raw)
        return 0;
    char v[32];
    if (vn == 0 || vn >= sizeof v)
        return -1;
    memcpy(v, raw, vn);
    v[vn] = '\0';
    struct tm tm = {0};
    char *end = strptime(v, "%Y-%m-%d", &tm);
    if (end && *end == '\0')
        return (int64_t)timegm(&tm);
    char *e;
    long long n = strtoll(v, &e, 10);
    return *e == '\0' && n >= 0 ? (int64_t)n : -1;
}

static const char *period_name(sl_period p)
{
    static const char *const n[] = {"none", "day", "week", "month", "total"};
    return p <= SL_PERIOD_TOTAL ? n[p] : "none";
}

static json_t *usd_json(int64_t micros)
{
    char b[SL_MONEY_MAX];
    sl_money_format(micros, b, sizeof b);
    return json_string(b);
}

/* Spend in the current period (since ever for holders without a budget)
 * and, when there is one, the budget with what remains of it. */
static json_t *spend_json(const sl_budget *b, const sl_gov_view *v)
{
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "period",
                          b->per == SL_PERIOD_NONE ? "total" : period_name(b->per), "spent_micros",
                          (json_int_t)v->spent_usd, "spent_tokens", (json_int_t)v->spent_tokens,
                          "reserved_micros", (json_int_t)v->reserved_usd);
    json_object_set_new(o, "spent_usd", usd_json(v->spent_usd));
    return o;
}

static json_t *budget_json(const sl_budget *b, const sl_gov_view *v)
{
    if (b->per == SL_PERIOD_NONE)
        return json_null();
    json_t *o = json_pack("{s:s,s:I,s:I,s:I}", "per", period_name(b->per), "spent_micros",
                          (json_int_t)v->spent_usd, "spent_tokens", (json_int_t)v->spent_tokens,
                          "reserved_micros", (json_int_t)v->reserved_usd);
    json_object_set_new(o, "spent_usd", usd_json(v->spent_usd));
    if (b->usd_micros >= 0) {
        json_object_set_new(o, "limit_usd", usd_json(b->usd_micros));
        json_object_set_new(o, "remaining_usd", usd_json(v->remaining_usd > 0 ? v->remaining_usd : 0));
    }
    if (b->tokens >= 0) {
        json_object_set_new(o, "limit_tokens", json_integer(b->tokens));
        json_object_set_new(o, "remaining_tokens",
                            json_integer(v->remaining_tokens > 0 ? v->remaining_tokens : 0));
    }
    return o;
}


/* ---- /admin/spend?scope=deployment: every replica's rows, from Redis ---- */

typedef struct spend_wait {
    sl_conn *c;
    struct sl_state_query *q;
    const sl_state_ops *ops;
    char by[8];
    int64_t since, until;
} spend_wait;

static void spend_abort(void *p)
{
    spend_wait *sw = p;
    sw->ops->spend_cancel(sw->q);
    sw->q = NULL;
}

static void spend_drained(void *p) { (void)p; }

static const sl_conn_hooks spend_hooks = {spend_abort, spend_drained};

static void spend_done(void *ctx, char *rows, const char *err)
{
    spend_wait *sw = ctx;
    sw->q = NULL;
    sl_conn_set_exchange(sw->c, NULL, NULL);
    char *out = rows ? sl_arena_printf(sl_conn_arena(sw->c),
                                       "{\"by\":\"%s\",\"scope\":\"deployment\",\"since\":%lld,\"until\":%lld,"
                                       "\"rows\":%s}",
                                       sw->by, (long long)sw->since, (long long)sw->until, rows)
                     : NULL;
    free(rows);
    if (!out) {
        sl_surface_error(sw->c, SL_PROTO_OPENAI, 503, "state_unavailable", "Retry-After: 1\r\n",
                         "the deployment's spend could not be read: %s", err ? err : "out of memory");
        return;
    }
    sl_conn_respond(sw->c, 200, "application/json", NULL, out, strlen(out));
}

static void deployment_spend(sl_conn *c, const sl_http_request *req, const sl_table *t)
{
    size_t n;
    const char *scope = sl_http_query_param(req, "scope", &n);
    if (!(n == 10 && memcmp(scope, "deployment", 10) == 0) || !t->redis) {
        sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL,
                         t->redis ? "scope must be deployment (or left out: this replica's ledger)"
                                  : "scope=deployment needs a spec with state: { redis: ... }");
        return;
    }
    spend_wait *sw = sl_arena_alloc(sl_conn_arena(c), sizeof *sw);
    if (!sw) {
        sl_surface_error(c, SL_PROTO_OPENAI, 503, "overloaded", "Retry-After: 1\r\n", "out of memory");
        return;
    }
    memset(sw, 0, sizeof *sw);
    sw->c = c;
    sw->ops = t->redis->ops;
    const char *by = sl_http_query_param(req, "by", &n);
    if (!by) {
        memcpy(sw->by, "key", 4);
    } else if (n < sizeof sw->by) {
        memcpy(sw->by, by, n);
        sw->by[n] = '\0';
    }
    if (strcmp(sw->by, "key") != 0 && strcmp(sw->by, "team") != 0 && strcmp(sw->by, "model") != 0 &&
        strcmp(sw->by, "day") != 0) {
        sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL, "by must be key, team, model or day");
        return;
    }
    sw->since = query_time(req, "since");
    sw->until = query_time(req, "until");
    if (sw->since < 0 || sw->until < 0) {
        sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL, "since/until must be unix seconds or YYYY-MM-DD");
        return;
    }
    sw->q = sw->ops->spend(sl_proxy_state(sl_conn_worker(c)), sw->by, sw->since, sw->until, spend_done, sw);
    if (!sw->q) {
        sl_surface_error(c, SL_PROTO_OPENAI, 503, "state_unavailable", "Retry-After: 1\r\n",
                         "the shared state (Redis) is unreachable; this replica's own spend is at /admin/spend");
        return;
    }
    sl_conn_set_exchange(c, sw, &spend_hooks);
}

/* A view of the deployment's counters (four values from Redis: spent and
 * reserved micro-USD, spent and reserved tokens), with what remains. */
static void shared_view(const sl_budget *b, const int64_t *v, int64_t now, sl_gov_view *out)
{
    memset(out, 0, sizeof *out);
    out->spent_usd = v[0];
    out->reserved_usd = v[1];
    out->spent_tokens = v[2];
    out->reserved_tokens = v[3];
    out->period_start = sl_gov_period_start(b->per, now);
    int64_t used_usd = sl_sat_add(v[0], v[1]), used_tok = sl_sat_add(v[2], v[3]);
    out->remaining_usd = b->usd_micros >= 0 ? sl_sat_count(sl_sat_sub(b->usd_micros, used_usd)) : -1;
    out->remaining_tokens = b->tokens >= 0 ? sl_sat_count(sl_sat_sub(b->tokens, used_tok)) : -1;
}

/* GET /admin/keys: this replica's counters, or with `shared` (four values
 * per key, then per team; -1 for holders without a budget, which keep
 * this replica's view) the deployment's. */
static json_t *keys_json(const sl_table *t, int64_t now, const int64_t *shared)
{
    json_t *arr = json_array();
    for (uint32_t i = 0; i < t->key_count; i++) {
        const sl_key *k = &t->keys[i];
        sl_gov_view v;
        if (shared && shared[4 * i] >= 0)
            shared_view(&k->budget, shared + 4 * i, now, &v);
        else
            sl_gov_view_key((int)i, now, &v);
        json_t *models = json_array();
        if (k->all_models)
            json_array_append_new(models, json_string("*"));
        for (uint32_t m = 0; m < k->scope_count; m++)
            json_array_append_new(models, json_string(t->models[t->scopes[k->scope_first + m]].name));
        json_t *o = json_pack("{s:s,s:s?,s:o,s:{s:i,s:i},s:o,s:o,s:o}", "name", k->name, "team",
                              k->team >= 0 ? t->teams[k->team].name : NULL, "models", models,
                              "limits", "rpm", (json_int_t)k->limits.rpm, "tpm",
                              (json_int_t)k->limits.tpm, "budget", budget_json(&k->budget, &v),
                              "spend", spend_json(&k->budget, &v),
                              "expires", k->expires_unix ? json_integer(k->expires_unix) : json_null());
        json_array_append_new(arr, o);
    }
    json_t *teams = json_array();
    for (uint32_t i = 0; i < t->team_count; i++) {
        sl_gov_view v;
        const int64_t *sv = shared ? shared + 4 * ((size_t)t->key_count + i) : NULL;
        if (sv && sv[0] >= 0)
            shared_view(&t->teams[i].budget, sv, now, &v);
        else
            sl_gov_view_team((int)i, now, &v);
        json_array_append_new(teams, json_pack("{s:s,s:o,s:o}", "name", t->teams[i].name, "budget",
                                               budget_json(&t->teams[i].budget, &v), "spend",
                                               spend_json(&t->teams[i].budget, &v)));
    }
    json_t *out = json_pack("{s:o,s:o}", "keys", arr, "teams", teams);
    if (shared)
        json_object_set_new(out, "scope", json_string("deployment"));
    return out;
}

typedef struct keys_wait {
    sl_conn *c;
    struct sl_state_query *q;
    const sl_state_ops *ops;
    int64_t now;
} keys_wait;

static void keys_abort(void *p)
{
    keys_wait *kw = p;
    kw->ops->spend_cancel(kw->q);
    kw->q = NULL;
}

static void keys_drained(void *p) { (void)p; }

static const sl_conn_hooks keys_hooks = {keys_abort, keys_drained};

static void keys_done(void *ctx, const int64_t *vals, const char *err)
{
    keys_wait *kw = ctx;
    kw->q = NULL;
    sl_conn_set_exchange(kw->c, NULL, NULL);
    const sl_table *t = sl_worker_table(sl_conn_worker(kw->c));
    if (!vals) {
        sl_surface_error(kw->c, SL_PROTO_OPENAI, 503, "state_unavailable", "Retry-After: 1\r\n",
                         "the deployment's counters could not be read: %s", err ? err : "out of memory");
        return;
    }
    sl_handlers_respond_json(kw->c, keys_json(t, kw->now, vals));
}

static void deployment_keys(sl_conn *c, const sl_http_request *req, const sl_table *t, int64_t now)
{
    size_t n;
    const char *scope = sl_http_query_param(req, "scope", &n);
    if (!(n == 10 && memcmp(scope, "deployment", 10) == 0) || !t->redis) {
        sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL,
                         t->redis ? "scope must be deployment (or left out: this replica's counters)"
                                  : "scope=deployment needs a spec with state: { redis: ... }");
        return;
    }
    int any = 0;
    for (uint32_t i = 0; i < t->key_count; i++)
        any |= t->keys[i].budget.per != SL_PERIOD_NONE;
    for (uint32_t i = 0; i < t->team_count; i++)
        any |= t->teams[i].budget.per != SL_PERIOD_NONE;
    if (!any) { /* nothing in Redis to read: every view is this replica's */
        json_t *o = keys_json(t, now, NULL);
        json_object_set_new(o, "scope", json_string("deployment"));
        sl_handlers_respond_json(c, o);
        return;
    }
    keys_wait *kw = sl_arena_alloc(sl_conn_arena(c), sizeof *kw);
    if (!kw) {
        sl_surface_error(c, SL_PROTO_OPENAI, 503, "overloaded", "Retry-After: 1\r\n", "out of memory");
        return;
    }
    kw->c = c;
    kw->ops = t->redis->ops;
    kw->now = now;
    kw->q = kw->ops->views(sl_proxy_state(sl_conn_worker(c)), now, keys_done, kw);
    if (!kw->q) {
        sl_surface_error(c, SL_PROTO_OPENAI, 503, "state_unavailable", "Retry-After: 1\r\n",
                         "the shared state (Redis) is unreachable; this replica's own counters are at /admin/keys");
        return;
    }
    sl_conn_set_exchange(c, kw, &keys_hooks);
}

void sl_handle_admin(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                     size_t len)
{
    (void)ep;
    (void)body;
    (void)len;
    const sl_table *t = sl_worker_table(sl_conn_worker(c));
    sl_ledger *ledger = sl_proxy_ledger();
    if (!t->has_admin) {
        sl_surface_error(c, SL_PROTO_OPENAI, 404, NULL, NULL, "no admin API: the spec has no 'admin:'");
        return;
    }
    if (!sl_auth_is_admin(t, req)) {
        sl_surface_error(c, SL_PROTO_OPENAI, 401, "invalid_api_key", NULL, "admin key required");
        return;
    }
    if (req->method != SL_HTTP_GET) {
        sl_surface_error(c, SL_PROTO_OPENAI, 405, NULL, "Allow: GET\r\n", "use GET");
        return;
    }
    int64_t now = sl_gov_now();
    if (path_is(req, "/admin/keys") && sl_http_query_param(req, "scope", &(size_t){0})) {
        deployment_keys(c, req, t, now);
        return;
    }
    if (path_is(req, "/admin/keys")) {
        sl_handlers_respond_json(c, keys_json(t, now, NULL));
        return;
    }
    if (path_is(req, "/admin/spend") && sl_http_query_param(req, "scope", &(size_t){0})) {
        deployment_spend(c, req, t);
        return;
    }
    if (path_is(req, "/admin/spend")) {
        char by[16] = "key";
        size_t byn;
        const char *byv = sl_http_query_param(req, "by", &byn);
        if (byv && byn < sizeof by) {
            memcpy(by, byv, byn);
            by[byn] = '\0';
        } else if (byv) {
            by[0] = '\0'; /* too long: rejected below */
        }
        int64_t since = query_time(req, "since"), until = query_time(req, "until");
        if (since < 0 || until < 0) {
            sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL,
                             "since/until must be unix seconds or YYYY-MM-DD");
            return;
        }
        if (!ledger) {
            sl_surface_error(c, SL_PROTO_OPENAI, 409, NULL, NULL, "the ledger is off");
            return;
        }
        char err[128] = "";
        char *js = sl_ledger_spend_json(ledger, by, since, until, err, sizeof err);
        if (!js) {
            sl_surface_error(c, SL_PROTO_OPENAI, 400, NULL, NULL, "%s", err);
            return;
        }
        char *out = sl_arena_printf(sl_conn_arena(c), "{\"by\":\"%s\",\"since\":%lld,\"until\":%lld,\"rows\":%s}",
                                    by, (long long)since, (long long)until, js);
        free(js);
        if (!out) {
            sl_surface_error(c, SL_PROTO_OPENAI, 500, NULL, NULL, "out of memory");
            return;
        }
        sl_conn_respond(c, 200, "application/json", NULL, out, strlen(out));
        return;
    }
    sl_surface_error(c, SL_PROTO_OPENAI, 404, NULL, NULL, "no such admin endpoint");
}
