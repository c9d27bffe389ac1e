/*
 * Keeping Redis's counters whole when it was away (see redis_internal.h).
 * Each worker keeps, per key and team, its own spend in the current period
 * (worker 0 also what its replica's ledger held at start) and what of it
 * Redis never received (settled on local tickets while it was unreachable,
 * or settlements that could not be sent). On every (re)connect, and when
 * the script answers that it lacks this worker, one seed call gives Redis
 * either the whole spend (Redis is new to this worker: restarted empty,
 * flushed) or what it owes (it is not): the script decides atomically with
 * the set of seeded workers, so nothing is counted twice. A settlement is
 * recorded here before it is sent, so a seed taken later includes every
 * settlement Redis skipped while it waited for it.
 */
#include "state/redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sat.h"
#include "state/keys.h"
#include "state/redis_script.h"

/* A command's arguments, each owned. */
typedef struct args {
    char **v;
    size_t *len;
    int n, cap;
} args;

static int push(args *a, const char *s, size_t n)
{
    if (a->n == a->cap) {
        int cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, (size_t)cap * sizeof *v);
        if (!v)
            return -1;
        a->v = v;
        size_t *len = realloc(a->len, (size_t)cap * sizeof *len);
        if (!len)
            return -1;
        a->len = len;
        a->cap = cap;
    }
    char *c = malloc(n + 1);
    if (!c)
        return -1;
    memcpy(c, s, n);
    c[n] = '\0';
    a->v[a->n] = c;
    a->len[a->n++] = n;
    return 0;
}

static int pushf(args *a, long long v)
{
    char b[24];
    int n = snprintf(b, sizeof b, "%lld", v);
    return push(a, b, (size_t)n);
}

static void args_free(args *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    free(a->v);
    free(a->len);
}

static void roll(struct contrib *c, sl_period per, int64_t now)
{
    int64_t start = sl_gov_period_start(per, now);
    if (c->period != start)
        *c = (struct contrib){.period = start};
}

static void add(struct contrib *c, sl_period per, int64_t now, int64_t usd, int64_t tok, int owed)
{
    roll(c, per, now);
    usd = sl_state_clamp(usd);
    tok = sl_state_clamp(tok);
    c->usd = sl_sat_add(c->usd, usd);
    c->tok = sl_sat_add(c->tok, tok);
    if (owed) {
        c->owed_usd = sl_sat_add(c->owed_usd, usd);
        c->owed_tok = sl_sat_add(c->owed_tok, tok);
    }
}

void sl_redis_note(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tok, int64_t now, int owed)
{
    const sl_table *t = w->t;
    if (tk->key < 0 || (uint32_t)tk->key >= t->key_count)
        return;
    if (t->keys[tk->key].budget.per != SL_PERIOD_NONE)
        add(&w->ck[tk->key], t->keys[tk->key].budget.per, now, usd, tok, owed);
    if (tk->team >= 0 && (uint32_t)tk->team < t->team_count && t->teams[tk->team].budget.per != SL_PERIOD_NONE)
        add(&w->ct[tk->team], t->teams[tk->team].budget.per, now, usd, tok, owed);
}

/* What one seed sent as owed, taken off when Redis confirms it. */
typedef struct sent {
    sl_state_worker *w;
    int n;
    struct sent_one {
        struct contrib *c;
        int64_t period, usd, tok;
    } one[];
} sent;

static void on_seed(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    redisReply *reply = r;
    sent *s = priv;
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
        /* Owed stays owed; the next connection sends it again. */
        sl_state_error_count();
    } else {
        for (int i = 0; i < s->n; i++) {
            struct contrib *c = s->one[i].c;
            if (c->period != s->one[i].period)
                continue; /* a new period: nothing of the old is owed */
            c->owed_usd = sl_sat_count(sl_sat_sub(c->owed_usd, s->one[i].usd));
            c->owed_tok = sl_sat_count(sl_sat_sub(c->owed_tok, s->one[i].tok));
        }
    }
    free(s);
}

/* One bucket: its key, and spend, owed and expiry as arguments. */
static int bucket(args *keys, args *vals, sent *s, const sl_redis_spec *rs, int team, const char *name,
                  sl_period per, struct contrib *c, int64_t now)
{
    roll(c, per, now);
    if (c->usd <= 0 && c->tok <= 0)
        return 0;
    char k[SL_STATE_KEY_MAX];
    size_t n = sl_state_key(k, sizeof k, rs->prefix, team, name, "b", per, c->period);
    if (!n || push(keys, k, n) || pushf(vals, c->usd) || pushf(vals, c->tok) || pushf(vals, c->owed_usd) ||
        pushf(vals, c->owed_tok) || pushf(vals, sl_state_bucket_expireat(per, c->period)))
        return -1;
    s->one[s->n++] = (struct sent_one){c, c->period, c->owed_usd, c->owed_tok};
    return 0;
}

/* EVAL script 1+n seeded bucket... z member (spend owed expiry)...: sent
 * as EVAL, the script's text with it, because a Redis that lost its data
 * may have lost its scripts too. Queued ahead of whatever the worker sends
 * next, so Redis has it before the command that follows. */
void sl_redis_send_seed(sl_state_worker *w, int64_t now)
{
    const sl_table *t = w->t;
    if (!w->ac)
        return;
    args keys = {0}, vals = {0}, all = {0};
    sent *s = malloc(sizeof *s + (t->key_count + t->team_count) * sizeof s->one[0]);
    int rc = s ? 0 : -1;
    if (s) {
        s->w = w;
        s->n = 0;
    }
    char buf[SL_STATE_KEY_MAX + 40];
    int n = snprintf(buf, sizeof buf, "%sseeded", w->rs->prefix);
    rc = rc || push(&keys, buf, (size_t)n);
    for (uint32_t i = 0; rc == 0 && i < t->key_count; i++)
        if (t->keys[i].budget.per != SL_PERIOD_NONE)
            rc = bucket(&keys, &vals, s, w->rs, 0, t->keys[i].name, t->keys[i].budget.per, &w->ck[i], now);
    for (uint32_t i = 0; rc == 0 && i < t->team_count; i++)
        if (t->teams[i].budget.per != SL_PERIOD_NONE)
            rc = bucket(&keys, &vals, s, w->rs, 1, t->teams[i].name, t->teams[i].budget.per, &w->ct[i], now);
    n = snprintf(buf, sizeof buf, "%s:%d", sl_redis_replica_id, w->id);
    rc = rc || push(&all, "EVAL", 4) || push(&all, sl_state_script, strlen(sl_state_script)) ||
         pushf(&all, keys.n) || push(&all, "z", 1) || push(&all, buf, (size_t)n);
    if (rc == 0) {
        /* EVAL script numkeys KEYS... "z" member ARGV...: keys go before "z". */
        const char **av = calloc((size_t)(all.n + keys.n + vals.n), sizeof *av);
        size_t *al = calloc((size_t)(all.n + keys.n + vals.n), sizeof *al);
        if (av && al) {
            int j = 0;
            for (int i = 0; i < 3; i++)
                av[j] = all.v[i], al[j++] = all.len[i];
            for (int i = 0; i < keys.n; i++)
                av[j] = keys.v[i], al[j++] = keys.len[i];
            for (int i = 3; i < all.n; i++)
                av[j] = all.v[i], al[j++] = all.len[i];
            for (int i = 0; i < vals.n; i++)
                av[j] = vals.v[i], al[j++] = vals.len[i];
            if (redisAsyncCommandArgv(w->ac, on_seed, s, j, av, al) == REDIS_OK)
                s = NULL; /* on_seed frees it */
            else
                rc = -1;
        } else {
            rc = -1;
        }
        free(av);
        free(al);
    }
    if (rc != 0)
        sl_state_error_count();
    free(s);
    args_free(&keys);
    args_free(&vals);
    args_free(&all);
}
