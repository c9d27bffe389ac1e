/*
 * The deployment's spend, read from the ledger stream every replica writes
 * (PREFIX "ledger", see redis_cmd.c): XRANGE in chunks of CHUNK entries,
 * each its own round trip with the command timeout, summed here and
 * grouped as the ledger groups them, so /admin/spend on any replica
 * answers for all of them. Chunks keep Redis from running one long
 * command that would stall every replica's admissions.
 *
 * A stream entry's id is the time it was added (the settlement), never
 * earlier than the request's start (ts_ms): reading from `since` finds
 * every row that started then or later; rows are then filtered on ts_ms
 * like the ledger's query.
 */
#define _GNU_SOURCE /* timegm, gmtime_r */
#include "state/redis_internal.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/money.h"
#include "core/sat.h"
#include "json/json_out.h"

#define CHUNK 1000
#define MAX_CHUNKS 2000 /* the stream keeps about a million entries */

struct sl_state_query {
    sl_state_worker *w;
    char by[8];
    int64_t since_ms, until_ms; /* until_ms 0: none */
    sl_state_spend_cb cb;
    void *ctx;
    json_t *groups;             /* group -> [requests, cost, input, output, cache_read, cache_write] */
    char next[48];              /* where the next chunk starts */
    int chunks;
    int cancelled;
    sl_state_views_cb vcb;      /* a views query (sl_redis_views) */
    int64_t *vals;
    int outstanding, failed;
};

static void query_free(struct sl_state_query *q)
{
    json_decref(q->groups);
    free(q->vals);
    free(q);
}

static void fail(struct sl_state_query *q, const char *why)
{
    if (!q->cancelled) {
        if (q->vcb)
            q->vcb(q->ctx, NULL, why);
        else
            q->cb(q->ctx, NULL, why);
    }
    query_free(q);
}

static void chunk_reply(sl_state_pending *p, redisReply *reply);

static int send_chunk(struct sl_state_query *q)
{
    sl_state_pending *p = sl_redis_pending_new(q->w);
    if (!p)
        return -1;
    p->raw = chunk_reply;
    p->user = q;
    int rc = sl_redis_arg(p, "XRANGE") | sl_redis_arg(p, "%sledger", q->w->rs->prefix) | sl_redis_arg(p, "%s", q->next);
    /* A request lasts less than a day: nothing that started before until
     * was settled a day after it. */
    rc |= q->until_ms ? sl_redis_arg(p, "%lld", (long long)sl_sat_add(q->until_ms, 86400000)) : sl_redis_arg(p, "+");
    rc |= sl_redis_arg(p, "COUNT") | sl_redis_arg(p, "%d", CHUNK);
    if (rc != 0 || sl_redis_send(p) != 0) {
        free(p);
        return -1;
    }
    return 0;
}

static const redisReply *field(const redisReply *f, const char *name)
{
    for (size_t i = 0; i + 1 < f->elements; i += 2)
        if (f->element[i]->type == REDIS_REPLY_STRING && strcmp(f->element[i]->str, name) == 0)
            return f->element[i + 1];
    return NULL;
}

static int64_t num(const redisReply *f, const char *name)
{
    const redisReply *v = field(f, name);
    return v && v->type == REDIS_REPLY_STRING ? strtoll(v->str, NULL, 10) : 0;
}

/* Adds one row; -1 when it is not a row this module wrote. */
static int add(struct sl_state_query *q, const redisReply *f)
{
    if (f->type != REDIS_REPLY_ARRAY || !field(f, "ts_ms"))
        return -1;
    int64_t ts = num(f, "ts_ms");
    if (ts < q->since_ms || (q->until_ms && ts >= q->until_ms))
        return 0;
    char day[16];
    const char *g;
    if (strcmp(q->by, "day") == 0) {
        time_t t = (time_t)(ts / 1000);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(day, sizeof day, "%Y-%m-%d", &tm);
        g = day;
    } else {
        const redisReply *v = field(f, q->by);
        g = v && v->type == REDIS_REPLY_STRING ? v->str : "";
    }
    json_t *sums = json_object_get(q->groups, g);
    if (!sums) {
        sums = json_pack("[IIIIII]", (json_int_t)0, (json_int_t)0, (json_int_t)0, (json_int_t)0, (json_int_t)0,
                         (json_int_t)0);
        if (!sums || json_object_set_new(q->groups, g, sums) != 0)
            return -1;
    }
    const int64_t add[6] = {1, num(f, "cost_micros"), num(f, "input_tokens"), num(f, "output_tokens"),
                            num(f, "cache_read_tokens"), num(f, "cache_write_tokens")};
    for (size_t i = 0; i < 6; i++) {
        json_t *v = json_array_get(sums, i);
        json_integer_set(v, (json_int_t)sl_sat_add((int64_t)json_integer_value(v), sl_sat_count(add[i])));
    }
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The rows as the ledger's query gives them: ordered by group. */
static char *rows_json(struct sl_state_query *q)
{
    size_t n = json_object_size(q->groups), i = 0;
    const char **names = calloc(n ? n : 1, sizeof *names);
    json_t *arr = json_array();
    if (!names || !arr) {
        free(names);
        json_decref(arr);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(q->groups, k, v) names[i++] = k;
    qsort(names, n, sizeof *names, by_name);
    for (i = 0; i < n; i++) {
        json_t *s = json_object_get(q->groups, names[i]);
        char usd[SL_MONEY_MAX];
        int64_t cost = (int64_t)json_integer_value(json_array_get(s, 1));
        sl_money_format(cost, usd, sizeof usd);
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I}", q->by, names[i], "requests",
                                             json_integer_value(json_array_get(s, 0)), "cost_micros",
                                             (json_int_t)cost, "cost_usd", usd, "input_tokens",
                                             json_integer_value(json_array_get(s, 2)), "output_tokens",
                                             json_integer_value(json_array_get(s, 3)), "cache_read_tokens",
                                             json_integer_value(json_array_get(s, 4)), "cache_write_tokens",
                                             json_integer_value(json_array_get(s, 5))));
    }
    free(names);
    char *out = sl_json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(arr);
    return out;
}

static void chunk_reply(sl_state_pending *p, redisReply *reply)
{
    struct sl_state_query *q = p->user;
    if (q->cancelled) {
        query_free(q);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        fail(q, reply && reply->type == REDIS_REPLY_ERROR ? "Redis refused to read the ledger stream"
                                                         : "Redis did not answer");
        return;
    }
    for (size_t i = 0; i < reply->elements; i++) {
        const redisReply *e = reply->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2 || e->element[0]->type != REDIS_REPLY_STRING ||
            add(q, e->element[1]) != 0) {
            fail(q, "the ledger stream holds an entry sluice did not write");
            return;
        }
        snprintf(q->next, sizeof q->next, "(%s", e->element[0]->str);
    }
    if (reply->elements == CHUNK && ++q->chunks < MAX_CHUNKS) {
        if (send_chunk(q) != 0)
            fail(q, "Redis cannot be asked now");
        return;
    }
    char *rows = rows_json(q);
    if (!rows) {
        fail(q, "out of memory");
        return;
    }
    q->cb(q->ctx, rows, NULL);
    query_free(q);
}

struct sl_state_query *sl_redis_spend(sl_state_worker *w, const char *by, int64_t since, int64_t until,
                                      sl_state_spend_cb cb, void *ctx)
{
    if (!w || !w->ac)
        return NULL;
    struct sl_state_query *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->w = w;
    snprintf(q->by, sizeof q->by, "%s", by);
    q->since_ms = sl_sat_mul(since, 1000);
    q->until_ms = sl_sat_mul(until, 1000);
    q->cb = cb;
    q->ctx = ctx;
    q->groups = json_object();
    snprintf(q->next, sizeof q->next, "%lld", (long long)q->since_ms);
    if (!q->groups || send_chunk(q) != 0) {
        query_free(q);
        return NULL;
    }
    return q;
}

void sl_redis_spend_cancel(struct sl_state_query *q)
{
    if (q)
        q->cancelled = 1; /* freed when its chunk answers */
}

/* ---- the deployment's counters (/admin/keys?scope=deployment) ---------------- */

/* One HMGET per budgeted holder, pipelined on the worker's connection. */
static void views_reply(sl_state_pending *p, redisReply *reply)
{
    struct sl_state_query *q = p->user;
    if (!q->cancelled && !q->failed) {
        if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 4) {
            q->failed = 1;
            q->vcb(q->ctx, NULL, reply ? "unexpected answer" : "Redis did not answer");
        } else {
            for (size_t k = 0; k < 4; k++) {
                const redisReply *e = reply->element[k];
                q->vals[4 * p->index + k] =
                    e->type == REDIS_REPLY_STRING ? sl_sat_count(strtoll(e->str, NULL, 10)) : 0;
            }
        }
    }
    if (--q->outstanding > 0)
        return;
    if (!q->cancelled && !q->failed)
        q->vcb(q->ctx, q->vals, NULL);
    query_free(q);
}

struct sl_state_query *sl_redis_views(sl_state_worker *w, int64_t now, sl_state_views_cb cb, void *ctx)
{
    if (!w || !w->ac)
        return NULL;
    const sl_table *t = w->t;
    size_t holders = (size_t)t->key_count + t->team_count;
    struct sl_state_query *q = calloc(1, sizeof *q);
    if (!q || !(q->vals = malloc((holders ? holders : 1) * 4 * sizeof *q->vals))) {
        free(q);
        return NULL;
    }
    q->w = w;
    q->vcb = cb;
    q->ctx = ctx;
    for (size_t i = 0; i < holders; i++) {
        int team = i >= t->key_count;
        const sl_budget *b = team ? &t->teams[i - t->key_count].budget : &t->keys[i].budget;
        const char *name = team ? t->teams[i - t->key_count].name : t->keys[i].name;
        for (int k = 0; k < 4; k++)
            q->vals[4 * i + k] = b->per == SL_PERIOD_NONE ? -1 : 0;
        if (b->per == SL_PERIOD_NONE)
            continue;
        char key[SL_STATE_KEY_MAX];
        sl_state_pending *p = sl_redis_pending_new(w);
        if (!p || !sl_state_key(key, sizeof key, w->rs->prefix, team, name, "b", b->per,
                                sl_gov_period_start(b->per, now)) ||
            sl_redis_arg(p, "HMGET") | sl_redis_arg(p, "%s", key) | sl_redis_arg(p, "usd") | sl_redis_arg(p, "rusd") |
                sl_redis_arg(p, "tok") | sl_redis_arg(p, "rtok") ||
            (p->raw = views_reply, p->user = q, p->index = i, sl_redis_send(p) != 0)) {
            free(p);
            /* Those sent answer later; the caller hears of the failure now. */
            q->failed = 1;
            break;
        }
        q->outstanding++;
    }
    if (q->failed || q->outstanding == 0) {
        /* Replies still due free it; the caller answers now. (No budget
         * anywhere: the caller does not ask.) */
        if (q->outstanding == 0)
            query_free(q);
        else
            q->cancelled = 1;
        return NULL;
    }
    return q;
}
