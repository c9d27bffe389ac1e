/*
 * Rebuilding a Redis that lost its counters (restarted empty, flushed):
 * each worker keeps its own spend in the current periods (worker 0 also
 * what its replica's ledger held at start) and gives it back once per
 * Redis dataset, on (re)connect or when the script answers that it lacks
 * it. A settlement is recorded here before it is sent, so a seed taken
 * later includes every settlement Redis skipped while it waited for it.
 */
#include "state/redis_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/sat.h"
#include "state/keys.h"
#include "state/redis_script.h"

static void on_seed(redisAsyncContext *ac, void *r, void *priv)
{
    (void)ac;
    (void)priv;
    redisReply *reply = r;
    if (!reply || reply->type == REDIS_REPLY_ERROR)
        sl_state_error_count(); /* the next call answers COLD again and re-seeds */
}

static void contrib_add(struct contrib *c, sl_period per, int64_t now, int64_t usd, int64_t tok)
{
    int64_t start = sl_gov_period_start(per, now);
    if (c->period != start)
        *c = (struct contrib){start, 0, 0};
    c->usd = sl_sat_add(c->usd, sl_state_clamp(usd));
    c->tok = sl_sat_add(c->tok, sl_state_clamp(tok));
}

/* What this worker has spent: recorded before its settlement is sent, so
 * a seed taken later always includes every settlement Redis skipped. */
void sl_redis_note(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tok, int64_t now)
{
    const sl_table *t = w->t;
    if (tk->key < 0 || (uint32_t)tk->key >= t->key_count)
        return;
    if (t->keys[tk->key].budget.per != SL_PERIOD_NONE)
        contrib_add(&w->ck[tk->key], t->keys[tk->key].budget.per, now, usd, tok);
    if (tk->team >= 0 && (uint32_t)tk->team < t->team_count && t->teams[tk->team].budget.per != SL_PERIOD_NONE)
        contrib_add(&w->ct[tk->team], t->teams[tk->team].budget.per, now, usd, tok);
}

/* Appends one bucket of the seed; 0, or -1 when it does not fit. */
static int seed_bucket(char **argv, size_t *len, int *nk, int *na, int cap, const sl_redis_spec *rs, int team,
                       const char *name, sl_period per, const struct contrib *c, int64_t now)
{
    if (c->period != sl_gov_period_start(per, now) || (c->usd <= 0 && c->tok <= 0))
        return 0;
    if (*nk >= cap)
        return -1;
    char k[SL_STATE_KEY_MAX];
    size_t n = sl_state_key(k, sizeof k, rs->prefix, team, name, "b", per, c->period);
    char *v = malloc(64);
    argv[4 + *nk] = n ? strdup(k) : NULL;
    argv[4 + cap + 2 + *na] = v;
    if (!argv[4 + *nk] || !v)
        return -1;
    len[4 + *nk] = n;
    /* usd, tokens and expiry, NUL-separated in one allocation. */
    int a = snprintf(v, 64, "%lld", (long long)c->usd);
    int b = snprintf(v + a + 1, 63 - (size_t)a, "%lld", (long long)c->tok);
    int e = snprintf(v + a + b + 2, 62 - (size_t)(a + b), "%lld", (long long)sl_state_bucket_expireat(per, c->period));
    len[4 + cap + 2 + *na] = (size_t)a;
    argv[4 + cap + 3 + *na] = v + a + 1;
    len[4 + cap + 3 + *na] = (size_t)b;
    argv[4 + cap + 4 + *na] = v + a + b + 2;
    len[4 + cap + 4 + *na] = (size_t)e;
    (*nk)++;
    *na += 3;
    return 0;
}

/* EVAL script 1+n seeded bucket... z member (usd tok expireat)... : sent
 * as EVAL, the script's text with it, because a Redis that lost its data
 * may have lost its scripts too. Queued ahead of whatever the worker sends
 * next, so Redis has the seed before the retried command. */
void sl_redis_send_seed(sl_state_worker *w, int64_t now)
{
    const sl_table *t = w->t;
    int cap = (int)(t->key_count + t->team_count);
    int total = 4 + cap + 2 + 3 * cap;
    char **argv = calloc((size_t)total, sizeof *argv);
    size_t *len = calloc((size_t)total, sizeof *len);
    char seeded[SL_STATE_KEY_MAX + 8], member[40], nkeys[16];
    int nk = 0, na = 0, rc = argv && len ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < t->key_count; i++)
        if (t->keys[i].budget.per != SL_PERIOD_NONE)
            rc = seed_bucket(argv, len, &nk, &na, cap, w->rs, 0, t->keys[i].name, t->keys[i].budget.per, &w->ck[i], now);
    for (uint32_t i = 0; rc == 0 && i < t->team_count; i++)
        if (t->teams[i].budget.per != SL_PERIOD_NONE)
            rc = seed_bucket(argv, len, &nk, &na, cap, w->rs, 1, t->teams[i].name, t->teams[i].budget.per, &w->ct[i],
                             now);
    if (rc == 0 && w->ac) {
        /* Close the gap between the keys and the arguments. */
        snprintf(seeded, sizeof seeded, "%sseeded", w->rs->prefix);
        snprintf(member, sizeof member, "%s:%d", sl_redis_replica_id, w->id);
        snprintf(nkeys, sizeof nkeys, "%d", 1 + nk);
        const char **av = calloc((size_t)(6 + nk + na), sizeof *av);
        size_t *al = calloc((size_t)(6 + nk + na), sizeof *al);
        if (av && al) {
            int j = 0;
            av[j] = "EVAL", al[j++] = 4;
            av[j] = sl_state_script, al[j++] = strlen(sl_state_script);
            av[j] = nkeys, al[j++] = strlen(nkeys);
            av[j] = seeded, al[j++] = strlen(seeded);
            for (int i = 0; i < nk; i++)
                av[j] = argv[4 + i], al[j++] = len[4 + i];
            av[j] = "z", al[j++] = 1;
            av[j] = member, al[j++] = strlen(member);
            for (int i = 0; i < na; i++)
                av[j] = argv[4 + cap + 2 + i], al[j++] = len[4 + cap + 2 + i];
            redisAsyncCommandArgv(w->ac, on_seed, w, j, av, al);
        }
        free(av);
        free(al);
    } else {
        sl_state_error_count();
    }
    for (int i = 0; argv && i < nk; i++)
        free(argv[4 + i]);
    for (int i = 0; argv && i < na; i += 3)
        free(argv[4 + cap + 2 + i]);
    if (argv && rc != 0 && nk < cap) { /* the bucket that failed part way */
        free(argv[4 + nk]);
        free(argv[4 + cap + 2 + na]);
    }
    free(argv);
    free(len);
}

