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
 * This file: process set-up, the connection and its lifecycle, the ops
 * table; commands are in redis_cmd.c, seeds in redis_seed.c.
 */
#include "state/redis_internal.h"

#include <bearssl.h>
#include <fcntl.h>
#include <hiredis/adapters/libev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "state/redis_script.h"
#include "state/url.h"

static char *password;            /* from the environment; never logged */
char sl_redis_replica_id[17];
char sl_redis_incarnation[9];
char sl_redis_script_sha[41];

/* ---- process set-up -------------------------------------------------------- */

static int redis_init(const sl_table *t, const char *state_path, char *err, size_t errlen)
{
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
    /* Seeds carry the replica's id. It must stay the same across restarts
     * of one replica (a restarted replica whose spend Redis already holds
     * must not seed it again): the host and the ledger's path name it.
     * Without a ledger nothing is restored, so a random id is as good.
     * Reservations carry a random id of this process as well, so that no
     * restart can name a reservation its previous run still holds. */
    unsigned char id[32], rnd[12];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, rnd, sizeof rnd) != (ssize_t)sizeof rnd) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "state: cannot read /dev/urandom for the replica id");
        return -1;
    }
    close(fd);
    memcpy(id, rnd, 8);
    if (state_path && *state_path) {
        char dir[4096], where[4096 + 256], abs[4096];
        snprintf(dir, sizeof dir, "%s", state_path);
        char *slash = strrchr(dir, '/');
        const char *base = slash ? slash + 1 : state_path;
        if (slash)
            *slash = '\0';
        if (!realpath(slash ? (dir[0] ? dir : "/") : ".", abs))
            snprintf(abs, sizeof abs, "%s", slash ? dir : ".");
        if (gethostname(where, 256) != 0)
            where[0] = '\0';
        where[255] = '\0';
        size_t n = strlen(where) + 1;
        n += (size_t)snprintf(where + n, sizeof where - n, "%s/%s", abs, base);
        if (n >= sizeof where)
            n = sizeof where - 1;
        br_sha256_context sc;
        br_sha256_init(&sc);
        br_sha256_update(&sc, where, n);
        br_sha256_out(&sc, id);
    }
    for (int i = 0; i < 8; i++)
        snprintf(sl_redis_replica_id + 2 * i, 3, "%02x", id[i]);
    for (int i = 0; i < 4; i++)
        snprintf(sl_redis_incarnation + 2 * i, 3, "%02x", rnd[8 + i]);
    unsigned char sha[20];
    br_sha1_context c;
    br_sha1_init(&c);
    br_sha1_update(&c, sl_state_script, strlen(sl_state_script));
    br_sha1_out(&c, sha);
    for (int i = 0; i < 20; i++)
        snprintf(sl_redis_script_sha + 2 * i, 3, "%02x", sha[i]);
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

void sl_redis_teardown(sl_state_worker *w, const char *why)
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
        sl_redis_teardown(w, "connect timed out");
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
    sl_redis_flush_backlog(w);
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
        /* The server's words (they never repeat the password), once per
         * transition: a wrong password, a database out of range. */
        char why[160];
        snprintf(why, sizeof why, "AUTH, SELECT or SCRIPT LOAD refused: %.100s", reply->str);
        sl_state_error_count();
        sl_state_mode_set(0, why);
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
    sl_redis_send_seed(w, sl_gov_now());
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
        int64_t now = sl_gov_now();
        sl_gov_view v;
        for (uint32_t i = 0; i < t->key_count; i++) {
            if (t->keys[i].budget.per == SL_PERIOD_NONE)
                continue;
            sl_gov_view_key((int)i, now, &v);
            w->ck[i] = (struct contrib){.period = v.period_start, .usd = v.spent_usd, .tok = v.spent_tokens};
        }
        for (uint32_t i = 0; i < t->team_count; i++) {
            if (t->teams[i].budget.per == SL_PERIOD_NONE)
                continue;
            sl_gov_view_team((int)i, now, &v);
            w->ct[i] = (struct contrib){.period = v.period_start, .usd = v.spent_usd, .tok = v.spent_tokens};
        }
    }
    if (worker_id == 0 && w->rs->share_circuits && sl_redis_circuits_start(w) != 0) {
        free(w->ck);
        free(w->ct);
        free(w);
        return NULL;
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
    sl_redis_circuits_stop(w);
    ev_timer_stop(w->loop, &w->retry);
    ev_timer_stop(w->loop, &w->connect_timer);
    redisAsyncContext *ac = w->ac;
    w->ac = NULL;
    if (ac)
        redisAsyncFree(ac);
    free(w->ck);
    free(w->ct);
    free(w->backlog);
    free(w);
}

static int redis_down(sl_state_worker *w) { return !w || !w->ac; }


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
    .admit = sl_redis_admit,
    .cancel = sl_redis_cancel,
    .settle = sl_redis_settle,
    .spend = sl_redis_spend,
    .views = sl_redis_views,
    .spend_cancel = sl_redis_spend_cancel,
};

