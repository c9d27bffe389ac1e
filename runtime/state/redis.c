/*
 * Budgets and rate limits in Redis, one hiredis asynchronous connection per
 * worker on the worker's own libev loop (hiredis's libev adapter): no call
 * here blocks a worker, and a request waiting for its admission is just a
 * pending reply. Every command has a timer; a command that outlives the
 * spec's timeout answers UNAVAILABLE at once and the connection, which
 * is then presumed stalled, is dropped and reconnected with backoff
 * (100 ms doubling to 5 s). While a worker is not connected, down() says
 * so and the caller applies the spec's policy without waiting.
 *
 * The script (state/script.c) is sent by EVALSHA; a server that lost it
 * (restarted, SCRIPT FLUSH) answers NOSCRIPT and the command is sent again
 * as EVAL, which also caches it.
 */
#include "state/state.h"

#include <bearssl.h>
#include <ev.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <hiredis/adapters/libev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/sat.h"
#include <time.h>
#include "state/keys.h"
#include "state/redis_script.h"
#include "state/url.h"

/* EVALSHA sha numkeys, the keys (two holders and the seeded set), 20 ARGV. */
#define NARGS (3 + 2 * SL_STATE_HOLDER_KEYS + 1 + 20)
#define ARGBUF 6144

struct sl_state_worker {
    const sl_table *t;
    const sl_redis_spec *rs;
    struct ev_loop *loop;
    int id;
    redisAsyncContext *ac;  /* NULL: backing off */
    int connected;
    int freeing;
    ev_timer retry;         /* next connection attempt */
    ev_timer connect_timer; /* a connection that does not come up in time */
    double backoff_s;
    uint64_t seq;
    int pending;            /* commands awaiting replies */
    /* This worker's spend in the current periods, per key and team: what
     * a seed gives back to a Redis that lost it. Worker 0 also carries
     * what the ledger held at start. */
    struct contrib {
        int64_t period, usd, tok;
    } *ck, *ct;
};

struct sl_state_pending {
    sl_state_worker *w;
    sl_state_admit_cb cb;   /* NULL: a settlement, or cancelled */
    void *ctx;
    sl_gov_ticket *out;     /* the caller's ticket, filled on GRANTED */
    sl_gov_ticket tk;       /* what a cancelled grant releases */
    int64_t now;
    int admit;
    int cancelled;
    int done;               /* answered (replied or timed out) */
    int retried;            /* NOSCRIPT: sent again as EVAL */
    int reseeded;           /* COLD: sent again after a seed */
    ev_timer timer;
    int argc;
    const char *argv[NARGS];
    size_t argvlen[NARGS];
    size_t used;
    char buf[ARGBUF];
};

static const sl_table *gtable;
static char *password;            /* from the environment; never logged */
static char replica_id[17];
static char script_sha[41];

/* ---- process set-up -------------------------------------------------------- */

static int redis_init(const sl_table *t, const char *state_path, char *err, size_t errlen)
{
    (void)state_path;
    gtable = t;
    const sl_redis_spec *rs = t->redis;
    if (rs->password_env) {
        const char *v = getenv(rs->password_env);
        if (!v || !*v) {
            snprintf(err, errlen, "state: Redis password variable %s is %s", rs->password_env,
                     v ? "empty" : "not set");
            return -2;
        }
        password = strdup(v);
        if (!password) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    /* Reservation members and seeds carry this. It must stay the same
     * across restarts of one replica (a restarted replica whose spend
     * Redis already holds must not seed it again): the host and the
     * ledger's path name it. Without a ledger nothing is restored, so a
     * random id is as good. */
    unsigned char id[32];
    char where[4096 + 256];
    size_t n = 0;
    if (state_path && *state_path) {
        char dir[4096], *slash;
        snprintf(dir, sizeof dir, "%s", state_path);
        slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : state_path;
        if (slash)
            *slash = '\0';
        char abs[4096];
        if (!realpath(slash ? (dir[0] ? dir : "/") : ".", abs))
            snprintf(abs, sizeof abs, "%s", slash ? dir : ".");
        if (gethostname(where, 256) != 0)
            where[0] = '\0';
        where[255] = '\0';
        n = strlen(where) + 1;
        n += (size_t)snprintf(where + n, sizeof where - n, "%s/%s", abs, base);
        if (n >= sizeof where)
            n = sizeof where - 1;
        br_sha256_context sc;
        br_sha256_init(&sc);
        br_sha256_update(&sc, where, n);
        br_sha256_out(&sc, id);
    } else {
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, id, 8) != 8) {
            if (fd >= 0)
                close(fd);
            snprintf(err, errlen, "state: cannot read /dev/urandom for the replica id");
            return -1;
        }
        close(fd);
    }
    for (int i = 0; i < 8; i++)
        snprintf(replica_id + 2 * i, 3, "%02x", id[i]);
    unsigned char sha[20];
    br_sha1_context c;
    br_sha1_init(&c);
    br_sha1_update(&c, sl_state_script, strlen(sl_state_script));
    br_sha1_out(&c, sha);
    for (int i = 0; i < 20; i++)
        snprintf(script_sha + 2 * i, 3, "%02x", sha[i]);
    return 0;
}

static void redis_shutdown(void)
{
    if (password) {
        memset(password, 0, strlen(password));
        free(password);
        password = NULL;
    }
}

/* ---- connection ------------------------------------------------------------ */

static void connect_now(sl_state_worker *w);
static void send_seed(sl_state_worker *w, int64_t now);

static void schedule_retry(sl_state_worker *w)
{
    if (w->freeing || ev_is_active(&w->retry))
        return;
    ev_timer_set(&w->retry, w->backoff_s, 0.);
    ev_timer_start(w->loop, &w->retry);
    w->backoff_s = w->backoff_s * 2 > 5.0 ? 5.0 : w->backoff_s * 2;
}

static void retry_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    connect_now(t->data);
}

/* Drops the connection from outside hiredis's callbacks: every command
 * still waiting gets its callback with no reply. */
static void teardown(sl_state_worker *w, const char *why)
{
    redisAsyncContext *ac = w->ac;
    if (!ac)
        return;
    w->ac = NULL;
    w->connected = 0;
    ev_timer_stop(w->loop, &w->connect_timer);
    sl_state_mode_set(0, why);
    redisAsyncFree(ac);
    schedule_retry(w);
}

static void connect_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    sl_state_worker *w = t->data;
    if (w->ac && !w->connected) {
        sl_state_error_count();
        teardown(w, "connect timed out");
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    sl_state_worker *w = ac->data;
    if (!w || w->ac != ac)
        return;
    ev_timer_stop(w->loop, &w->connect_timer);
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        w->ac = NULL;
        sl_state_error_count();
        sl_state_mode_set(0, "connection refused or failed");
        schedule_retry(w);
        return;
    }
    w->connected = 1;
    w->backoff_s = 0.1;
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    (void)status;
    sl_state_worker *w = ac->data;
    if (!w || w->ac != ac)
        return; /* our own teardown */
    w->ac = NULL;
    w->connected = 0;
    sl_state_mode_set(0, "connection lost");
    schedule_retry(w);
}

/* AUTH and SELECT answers: a refusal is a configuration problem, reported
 * through the mode change (once) and retried with backoff. */
static void on_setup(redisAsyncContext *ac, void *r, void *priv)
{
    redisReply *reply = r;
    sl_state_worker *w = priv;
    if (reply && reply->type == REDIS_REPLY_ERROR && w->ac == ac) {
        sl_state_error_count();
        sl_state_mode_set(0, strncmp(reply->str, "WRONGPASS", 9) == 0 || strncmp(reply->str, "NOAUTH", 6) == 0
                                 ? "authentication refused"
                                 : "setup command refused");
        redisAsyncDisconnect(ac);
    }
}

static void connect_now(sl_state_worker *w)
{
    const sl_redis_spec *rs = w->rs;
    redisAsyncContext *ac = redisAsyncConnect(rs->host, rs->port);
    if (!ac || ac->err) {
        if (ac)
            redisAsyncFree(ac);
        sl_state_error_count();
        sl_state_mode_set(0, "cannot connect");
        schedule_retry(w);
        return;
    }
    ac->data = w;
    if (redisLibevAttach(w->loop, ac) != REDIS_OK) {
        redisAsyncFree(ac);
        schedule_retry(w);
        return;
    }
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    w->ac = ac;
    w->connected = 0;
    /* Queued until the connection is up; answered in order. */
    if (password) {
        const char *argv[2] = {"AUTH", password};
        size_t len[2] = {4, strlen(password)};
        redisAsyncCommandArgv(ac, on_setup, w, 2, argv, len);
    }
    if (rs->db) {
        char db[16];
        int n = snprintf(db, sizeof db, "%u", rs->db);
        const char *argv[2] = {"SELECT", db};
        size_t len[2] = {6, (size_t)n};
        redisAsyncCommandArgv(ac, on_setup, w, 2, argv, len);
    }
    const char *argv[3] = {"SCRIPT", "LOAD", sl_state_script};
    size_t len[3] = {6, 4, strlen(sl_state_script)};
    redisAsyncCommandArgv(ac, on_setup, w, 3, argv, len);
    /* A Redis that restarted empty gets this worker's spend back at once
     * rather than at its next request; on one that kept it, a no-op. */
    send_seed(w, (int64_t)time(NULL));
    ev_timer_set(&w->connect_timer, rs->timeout_ms / 1000.0, 0.);
    ev_timer_start(w->loop, &w->connect_timer);
}

static sl_state_worker *redis_worker_new(const sl_table *t, struct ev_loop *loop, int worker_id)
{
    sl_state_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->t = t;
    w->rs = t->redis;
    w->loop = loop;
    w->id = worker_id;
    w->backoff_s = 0.1;
    ev_init(&w->retry, retry_cb);
    w->retry.data = w;
    ev_init(&w->connect_timer, connect_timeout_cb);
    w->connect_timer.data = w;
    w->ck = calloc(t->key_count ? t->key_count : 1, sizeof *w->ck);
    w->ct = calloc(t->team_count ? t->team_count : 1, sizeof *w->ct);
    if (!w->ck || !w->ct) {
        free(w->ck);
        free(w->ct);
        free(w);
        return NULL;
    }
    if (worker_id == 0) {
        /* The spend restored from this replica's ledger. */
        int64_t now = (int64_t)time(NULL);
        sl_gov_view v;
        for (uint32_t i = 0; i < t->key_count; i++) {
            if (t->keys[i].budget.per == SL_PERIOD_NONE)
                continue;
            sl_gov_view_key((int)i, now, &v);
            w->ck[i] = (struct contrib){v.period_start, v.spent_usd, v.spent_tokens};
        }
        for (uint32_t i = 0; i < t->team_count; i++) {
            if (t->teams[i].budget.per == SL_PERIOD_NONE)
                continue;
            sl_gov_view_team((int)i, now, &v);
            w->ct[i] = (struct contrib){v.period_start, v.spent_usd, v.spent_tokens};
        }
    }
    connect_now(w);
    return w;
}

static void redis_worker_free(sl_state_worker *w)
{
    if (!w)
        return;
    /* Settlements of the last requests are queued or in flight: let them
     * go out, within the command timeout, before the connection closes. */
    ev_tstamp until = ev_time() + w->rs->timeout_ms / 1000.0;
    while (w->ac && w->pending > 0 && ev_time() < until)
        ev_run(w->loop, EVRUN_ONCE);
    w->freeing = 1;
    ev_timer_stop(w->loop, &w->retry);
    ev_timer_stop(w->loop, &w->connect_timer);
    redisAsyncContext *ac = w->ac;
    w->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    free(w->ck);
    free(w->ct);
    free(w);
}

static int redis_down(sl_state_worker *w) { return !w || !w->ac; }

/* ---- commands --------------------------------------------------------------- */

static int arg(sl_state_pending *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int arg(sl_state_pending *p, const char *fmt, ...)
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
    return arg(p, "%d", h->present) | arg(p, "%d", budgeted) |
           arg(p, "%lld", (long long)(budgeted ? h->budget.usd_micros : -1)) |
           arg(p, "%lld", (long long)(budgeted ? h->budget.tokens : -1)) | arg(p, "%u", h->limits.rpm) |
           arg(p, "%u", h->limits.tpm) |
           arg(p, "%lld", (long long)(budgeted ? sl_state_bucket_expireat(h->budget.per, h->now_start) : 0));
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
    int rc = arg(p, "EVALSHA") | arg(p, "%s", script_sha) | arg(p, "%d", 2 * SL_STATE_HOLDER_KEYS + 1);
    rc |= holder_keys(p, &hk) | holder_keys(p, &ht) | arg(p, "%sseeded", p->w->rs->prefix);
    rc |= arg(p, "%s", admit ? "a" : "s") | arg(p, "%s", tk->rid);
    rc |= arg(p, "%lld", (long long)sl_state_clamp(x)) | arg(p, "%lld", (long long)sl_state_clamp(y));
    rc |= arg(p, "%u", admit ? p->w->rs->lease_ms : 0);
    rc |= holder_argv(p, &hk) | holder_argv(p, &ht) | arg(p, "%s:%d", replica_id, p->w->id);
    return rc;
}

static void on_reply(redisAsyncContext *ac, void *r, void *priv);
static void timeout_cb(struct ev_loop *loop, ev_timer *t, int revents);

static int send_cmd(sl_state_pending *p)
{
    sl_state_worker *w = p->w;
    if (!w->ac || redisAsyncCommandArgv(w->ac, on_reply, p, p->argc, p->argv, p->argvlen) != REDIS_OK)
        return -1;
    w->pending++;
    ev_timer_set(&p->timer, w->rs->timeout_ms / 1000.0, 0.);
    ev_timer_start(w->loop, &p->timer);
    return 0;
}

static sl_state_pending *pending_new(sl_state_worker *w)
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

/* ---- seeds: rebuilding a Redis that lost its counters ------------------------ */

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
static void note(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tok, int64_t now)
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
static void send_seed(sl_state_worker *w, int64_t now)
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
        snprintf(member, sizeof member, "%s:%d", replica_id, w->id);
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

static void settle_send(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now)
{
    sl_state_pending *p = w && w->ac ? pending_new(w) : NULL;
    if (!p || build(p, tk, 0, usd, tokens, now) != 0 || send_cmd(p) != 0) {
        /* The reservation expires after the lease; the ledger has the row. */
        free(p);
        sl_state_error_count();
        return;
    }
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
            settle_send(p->w, &p->tk, 0, 0, p->now);
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
    if (!p->done && reply && reply->type == REDIS_REPLY_ERROR && !p->retried &&
        strncmp(reply->str, "NOSCRIPT", 8) == 0 && ac == w->ac) {
        /* The server lost the script: once more with its text. */
        p->retried = 1;
        p->argv[0] = "EVAL";
        p->argvlen[0] = 4;
        p->argv[1] = sl_state_script;
        p->argvlen[1] = strlen(sl_state_script);
        if (send_cmd(p) == 0)
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
                send_seed(w, p->now);
                if (p->admit && !p->reseeded) {
                    p->reseeded = 1;
                    if (send_cmd(p) == 0)
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
    teardown(w, "command timed out");
}

static sl_state_pending *redis_admit(sl_state_worker *w, int key, int64_t usd, int64_t tokens, int64_t now,
                                     sl_gov_ticket *ticket, sl_state_admit_cb cb, void *ctx)
{
    if (!w || !w->ac)
        return NULL;
    sl_state_pending *p = pending_new(w);
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
    snprintf(tk->rid, sizeof tk->rid, "%s:%d:%llu:%lld:%lld", replica_id, w->id, (unsigned long long)++w->seq,
             (long long)usd, (long long)tokens);
    p->admit = 1;
    p->cb = cb;
    p->ctx = ctx;
    p->out = ticket;
    p->now = now;
    if (build(p, tk, 1, usd, tokens, now) != 0 || send_cmd(p) != 0) {
        free(p);
        return NULL;
    }
    return p;
}

static void redis_cancel(sl_state_pending *p)
{
    if (!p)
        return;
    p->cancelled = 1;
    p->cb = NULL;
    p->out = NULL;
}

static void redis_settle(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now)
{
    if (!w)
        return;
    note(w, tk, usd, tokens, now);
    if (tk->remote)
        settle_send(w, tk, usd, tokens, now);
}

static int parse_url(const char *url, char *host, uint16_t *port, uint32_t *db, char *err, size_t errlen)
{
    return sl_redis_url_parse(url, host, port, db, err, errlen);
}

const struct sl_state_ops sl_state_redis_ops = {
    .init = redis_init,
    .parse_url = parse_url,
    .shutdown = redis_shutdown,
    .worker_new = redis_worker_new,
    .worker_free = redis_worker_free,
    .down = redis_down,
    .admit = redis_admit,
    .cancel = redis_cancel,
    .settle = redis_settle,
};
