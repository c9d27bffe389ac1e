/*
 * Commands of the Redis state module (see redis_internal.h): admission and
 * settlement as one script call each (state/script.c), a ledger row with
 * the settlement or as an XADD of its own, the command timeout, and the
 * answers. The script is sent by EVALSHA; a server that lost it
 * (restarted, SCRIPT FLUSH) answers NOSCRIPT and the command is sent again
 * as EVAL, which also caches it.
 */
#include "state/redis_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "state/keys.h"
#include "state/redis_script.h"

static void keep(sl_state_worker *w, const sl_ledger_row *row);

int sl_redis_arg(sl_state_pending *p, const char *fmt, ...)
{
    if (p->argc >= NARGS)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->buf + p->used, ARGBUF - p->used, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= ARGBUF - p->used)
        return -1;
    p->argv[p->argc] = p->buf + p->used;
    p->argvlen[p->argc++] = (size_t)n;
    p->used += (size_t)n + 1;
    return 0;
}

static int key_arg(sl_state_pending *p, int team, const char *name, const char *suffix, sl_period per,
                   int64_t start)
{
    if (p->argc >= NARGS)
        return -1;
    size_t n = sl_state_key(p->buf + p->used, ARGBUF - p->used, p->w->rs->prefix, team, name, suffix, per, start);
    if (n == 0)
        return -1;
    p->argv[p->argc] = p->buf + p->used;
    p->argvlen[p->argc++] = n;
    p->used += n + 1;
    return 0;
}

typedef struct holder_args {
    int present, team;
    const char *name;
    sl_budget budget;
    sl_limits limits;
    int64_t res_start, now_start; /* period of the reservation, and of now */
} holder_args;

static void holder_of(const sl_table *t, int key, int team, int64_t res_start, int64_t now, holder_args *h)
{
    memset(h, 0, sizeof *h);
    if (team < 0) {
        const sl_key *k = &t->keys[key];
        h->present = 1;
        h->name = k->name;
        h->budget = k->budget;
        h->limits = k->limits;
    } else {
        const sl_team *tm = &t->teams[team];
        h->present = 1;
        h->team = 1;
        h->name = tm->name;
        h->budget = tm->budget;
        h->limits = tm->limits;
    }
    h->now_start = sl_gov_period_start(h->budget.per, now);
    h->res_start = res_start >= 0 ? res_start : h->now_start;
}

static int holder_keys(sl_state_pending *p, const holder_args *h)
{
    sl_period per = h->budget.per;
    return key_arg(p, h->team, h->name, "b", per == SL_PERIOD_NONE ? SL_PERIOD_TOTAL : per, h->res_start) |
           key_arg(p, h->team, h->name, "r", per == SL_PERIOD_NONE ? SL_PERIOD_TOTAL : per, h->res_start) |
           key_arg(p, h->team, h->name, "q", SL_PERIOD_NONE, 0) |
           key_arg(p, h->team, h->name, "w", SL_PERIOD_NONE, 0) |
           key_arg(p, h->team, h->name, "ws", SL_PERIOD_NONE, 0) |
           key_arg(p, h->team, h->name, "b", per == SL_PERIOD_NONE ? SL_PERIOD_TOTAL : per, h->now_start);
}

static int holder_argv(sl_state_pending *p, const holder_args *h)
{
    int budgeted = h->present && h->budget.per != SL_PERIOD_NONE;
    return sl_redis_arg(p, "%d", h->present) | sl_redis_arg(p, "%d", budgeted) |
           sl_redis_arg(p, "%lld", (long long)(budgeted ? h->budget.usd_micros : -1)) |
           sl_redis_arg(p, "%lld", (long long)(budgeted ? h->budget.tokens : -1)) | sl_redis_arg(p, "%u", h->limits.rpm) |
           sl_redis_arg(p, "%u", h->limits.tpm) |
           sl_redis_arg(p, "%lld", (long long)(budgeted ? sl_state_bucket_expireat(h->budget.per, h->now_start) : 0));
}

/* EVALSHA sha 12 KEYS... "a"|"s" member x y z holder-args... */
static int build(sl_state_pending *p, const sl_gov_ticket *tk, int admit, int64_t x, int64_t y, int64_t now)
{
    const sl_table *t = p->w->t;
    holder_args hk, ht;
    holder_of(t, tk->key, -1, admit ? -1 : tk->period_key, now, &hk);
    if (tk->team >= 0)
        holder_of(t, tk->key, tk->team, admit ? -1 : tk->period_team, now, &ht);
    else
        ht = hk, ht.present = 0;
    int rc = sl_redis_arg(p, "EVALSHA") | sl_redis_arg(p, "%s", sl_redis_script_sha) | sl_redis_arg(p, "%d", 2 * SL_STATE_HOLDER_KEYS + 2);
    rc |= holder_keys(p, &hk) | holder_keys(p, &ht) | sl_redis_arg(p, "%sseeded", p->w->rs->prefix) |
          sl_redis_arg(p, "%sledger", p->w->rs->prefix);
    rc |= sl_redis_arg(p, "%s", admit ? "a" : "s") | sl_redis_arg(p, "%s", tk->rid);
    rc |= sl_redis_arg(p, "%lld", (long long)sl_state_clamp(x)) | sl_redis_arg(p, "%lld", (long long)sl_state_clamp(y));
    rc |= sl_redis_arg(p, "%u", admit ? p->w->rs->lease_ms : 0);
    rc |= holder_argv(p, &hk) | holder_argv(p, &ht) | sl_redis_arg(p, "%s:%d", sl_redis_replica_id, p->w->id);
    return rc;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);
static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents);

/* A ledger row as stream fields (the ledger's column names, plus the
 * replica that wrote it). */
static int row_args(sl_state_pending *p, const sl_ledger_row *r)
{
    return sl_redis_arg(p, "ts_ms") | sl_redis_arg(p, "%lld", (long long)r->ts_ms) | sl_redis_arg(p, "replica") | sl_redis_arg(p, "%s", sl_redis_replica_id) |
           sl_redis_arg(p, "key") | sl_redis_arg(p, "%s", r->key) | sl_redis_arg(p, "team") | sl_redis_arg(p, "%s", r->team) | sl_redis_arg(p, "model") |
           sl_redis_arg(p, "%s", r->model) | sl_redis_arg(p, "provider") | sl_redis_arg(p, "%s", r->provider) | sl_redis_arg(p, "upstream_model") |
           sl_redis_arg(p, "%s", r->upstream_model) | sl_redis_arg(p, "status") | sl_redis_arg(p, "%d", r->status) | sl_redis_arg(p, "input_tokens") |
           sl_redis_arg(p, "%lld", (long long)r->input_tokens) | sl_redis_arg(p, "output_tokens") |
           sl_redis_arg(p, "%lld", (long long)r->output_tokens) | sl_redis_arg(p, "cache_read_tokens") |
           sl_redis_arg(p, "%lld", (long long)r->cache_read_tokens) | sl_redis_arg(p, "cache_write_tokens") |
           sl_redis_arg(p, "%lld", (long long)r->cache_write_tokens) | sl_redis_arg(p, "cost_micros") |
           sl_redis_arg(p, "%lld", (long long)r->cost_micros) | sl_redis_arg(p, "estimated") | sl_redis_arg(p, "%d", r->estimated);
}

int sl_redis_send(sl_state_pending *p)
{
    sl_state_worker *w = p->w;
    if (!w->ac || redisAsyncCommandArgv(w->ac, on_reply, p, p->argc, p->argv, p->argvlen) != REDIS_OK)
        return -1;
    w->pending++;
    ev_timer_set(&p->timer, w->rs->timeout_ms / 1000.0, 0.);
    ev_timer_start(w->loop, &p->timer);
    return 0;
}

sl_state_pending *sl_redis_pending_new(sl_state_worker *w)
{
    sl_state_pending *p = malloc(sizeof *p);
    if (!p)
        return NULL;
    memset(p, 0, offsetof(sl_state_pending, buf));
    p->w = w;
    ev_init(&p->timer, timeout_cb);
    p->timer.data = p;
    return p;
}

/* 0, or -1 when nothing was sent (the reservation expires after the
 * lease; the ledger has the row). */
static int settle_send(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now,
                       const sl_ledger_row *row)
{
    sl_state_pending *p = w && w->ac ? sl_redis_pending_new(w) : NULL;
    if (!p || build(p, tk, 0, usd, tokens, now) != 0 || (row && row_args(p, row) != 0) || sl_redis_send(p) != 0) {
        free(p);
        sl_state_error_count();
        return -1;
    }
    return 0;
}

/* Answers the waiting request (once) with `a`; a cancelled grant is
 * released at once rather than held until its lease ends. */
static void answer(sl_state_pending *p, const sl_state_answer *a)
{
    if (p->done)
        return;
    p->done = 1;
    if (!p->admit)
        return;
    if (p->cancelled || !p->cb) {
        if (a->result == SL_STATE_GRANTED)
            settle_send(p->w, &p->tk, 0, 0, p->now, NULL);
        return;
    }
    if (a->result == SL_STATE_GRANTED)
        *p->out = p->tk;
    p->cb(p->ctx, a);
}

static void unavailable(sl_state_pending *p, const char *why)
{
    sl_state_error_count();
    sl_state_mode_set(0, why);
    sl_state_answer a = {.result = SL_STATE_UNAVAILABLE, .why = why};
    answer(p, &a);
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    sl_state_pending *p = priv;
    sl_state_worker *w = p->w;
    w->pending--;
    ev_timer_stop(w->loop, &p->timer);
    if (p->raw) { /* not a script call: its owner reads the reply */
        p->raw(p, reply);
        free(p);
        return;
    }
    if (p->publish) {
        if (!reply || reply->type == REDIS_REPLY_ERROR)
            sl_state_error_count();
        if (!reply && p->user) /* never reached a server: keep it */
            keep(w, p->user);
        free(p->user);
        free(p);
        return;
    }
    if (!p->done && reply && reply->type == REDIS_REPLY_ERROR && !p->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && ac == w->ac) {
        /* The server lost the script: once more with its text. */
        p->retried = 1;
        p->argv[0] = "EVAL";
        p->argvlen[0] = 4;
        p->argv[1] = sl_state_script;
        p->argvlen[1] = strlen(sl_state_script);
        if (sl_redis_send(p) == 0)
            return;
    }
    if (!p->done) {
        if (!reply) {
            unavailable(p, "connection lost");
        } else if (reply->type == REDIS_REPLY_ERROR) {
            /* Logged with the server's words, once per transition. */
            char why[160];
            snprintf(why, sizeof why, "the script was refused: %.120s", reply->str);
            unavailable(p, why);
        } else {
            int64_t v[4];
            size_t n = 0;
            int ok = reply->type == REDIS_REPLY_ARRAY && reply->elements <= 4;
            for (size_t i = 0; ok && i < reply->elements; i++) {
                ok = reply->element[i]->type == REDIS_REPLY_INTEGER;
                if (ok)
                    v[n++] = reply->element[i]->integer;
            }
            sl_state_answer a;
            if (!ok || sl_state_answer_of(v, n, &a) != 0) {
                unavailable(p, "unexpected answer");
            } else if (a.result == SL_STATE_COLD) {
                /* Redis was emptied: give it this worker's spend, then ask
                 * again (a settlement is in the seed already). */
                sl_redis_send_seed(w, p->now);
                if (p->admit && !p->reseeded) {
                    p->reseeded = 1;
                    if (sl_redis_send(p) == 0)
                        return;
                }
                if (p->admit)
                    unavailable(p, "the seed was not taken");
            } else {
                sl_state_mode_set(1, NULL);
                answer(p, &a);
            }
        }
    }
    free(p);
}

static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    sl_state_pending *p = t->data;
    sl_state_worker *w = p->w;
    unavailable(p, "command timed out");
    /* A server that does not answer in time is treated as gone: the
     * connection is dropped (which frees p through its callback) and
     * made again with backoff. */
    sl_redis_teardown(w, "command timed out");
}

sl_state_pending *sl_redis_admit(sl_state_worker *w, int key, int64_t usd, int64_t tokens, int64_t now,
                                     sl_gov_ticket *ticket, sl_state_admit_cb cb, void *ctx)
{
    if (!w || !w->ac)
        return NULL;
    sl_state_pending *p = sl_redis_pending_new(w);
    if (!p)
        return NULL;
    const sl_table *t = w->t;
    sl_gov_ticket *tk = &p->tk;
    tk->key = key;
    tk->team = t->keys[key].team;
    tk->share = 1;
    tk->remote = 1;
    tk->period_key = sl_gov_period_start(t->keys[key].budget.per, now);
    tk->period_team = tk->team >= 0 ? sl_gov_period_start(t->teams[tk->team].budget.per, now) : 0;
    usd = sl_state_clamp(usd);
    tokens = sl_state_clamp(tokens);
    /* The amounts ride in the member, so an expiry can give them back. */
    snprintf(tk->rid, sizeof tk->rid, "%s.%s:%d:%llu:%lld:%lld", sl_redis_replica_id, sl_redis_incarnation, w->id,
             (unsigned long long)++w->seq,
             (long long)usd, (long long)tokens);
    p->admit = 1;
    p->cb = cb;
    p->ctx = ctx;
    p->out = ticket;
    p->now = now;
    if (build(p, tk, 1, usd, tokens, now) != 0 || sl_redis_send(p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

void sl_redis_cancel(sl_state_pending *p)
{
    if (!p)
        return;
    p->cancelled = 1;
    p->cb = NULL;
    p->out = NULL;
}

/* A row whose request reserved nothing in Redis: XADD on its own. */
/* Keeps a row Redis could not be sent, for the next connection; the
 * oldest goes when the backlog is full. */
static void keep(sl_state_worker *w, const sl_ledger_row *row)
{
    if (!w->backlog && !(w->backlog = malloc(SL_REDIS_BACKLOG * sizeof *w->backlog)))
        return;
    if (w->backlog_n == SL_REDIS_BACKLOG) {
        memmove(w->backlog, w->backlog + 1, (SL_REDIS_BACKLOG - 1) * sizeof *w->backlog);
        w->backlog_n--;
        sl_state_error_count();
    }
    w->backlog[w->backlog_n++] = *row;
}

/* A row on its own: XADD. */
static void publish(sl_state_worker *w, const sl_ledger_row *row)
{
    sl_state_pending *p = w->ac ? sl_redis_pending_new(w) : NULL;
    if (!p || sl_redis_arg(p, "XADD") | sl_redis_arg(p, "%sledger", w->rs->prefix) | sl_redis_arg(p, "MAXLEN") |
                  sl_redis_arg(p, "~") | sl_redis_arg(p, "%s", SL_STATE_STREAM_MAX) | sl_redis_arg(p, "*") |
                  row_args(p, row) ||
        (p->publish = 1, sl_redis_send(p) != 0)) {
        free(p);
        keep(w, row);
        return;
    }
    /* Sent before the connection is up: if it never comes up, the row
     * certainly did not arrive, and is kept for the next one. */
    if (!w->connected && (p->user = malloc(sizeof *row)) != NULL)
        memcpy(p->user, row, sizeof *row);
}

void sl_redis_flush_backlog(sl_state_worker *w)
{
    int n = w->backlog_n;
    w->backlog_n = 0;
    for (int i = 0; i < n && w->ac; i++)
        publish(w, &w->backlog[i]);
}

void sl_redis_settle(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now,
                         const sl_ledger_row *row)
{
    if (!w)
        return;
    /* A settlement that is not sent, like spend on a local ticket, is
     * owed to Redis: the next connection's seed carries it. One that is
     * sent but not answered is not: it may have been applied. */
    if (tk->remote) {
        int unsent = !w->ac;
        sl_redis_note(w, tk, usd, tokens, now, unsent);
        if (!unsent)
            settle_send(w, tk, usd, tokens, now, row);
        else if (row)
            keep(w, row);
    } else {
        sl_redis_note(w, tk, usd, tokens, now, 1);
        if (w->ac && (usd > 0 || tokens > 0)) /* Redis is back: pay it now */
            sl_redis_send_seed(w, now);
        if (row)
            publish(w, row);
    }
}

