/*
 * SQLite writer thread. Workers append rows to a mutex-protected queue and
 * return at once; the thread takes everything queued, writes it in one
 * transaction, and then hands completion callbacks back to each worker's
 * loop through an ev_async. Batching happens by itself under load: while
 * one transaction commits, the next batch accumulates.
 *
 * Durability: WAL with synchronous=NORMAL. A committed transaction is in
 * the WAL file before COMMIT returns, so it survives the process being
 * killed; only an OS crash or power loss can take the last transactions,
 * which is the trade every WAL deployment makes.
 */
#include "json/json_out.h"
#include "ledger/ledger.h"
#include "core/money.h"
#include "core/sat.h"

#include <ev.h>
#include <jansson.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"

typedef struct item {
    struct item *next;
    sl_ledger_row row;
    sl_ledger_notifier *n;
    sl_ledger_done_fn fn;
    void *ctx;
} item;

typedef struct done_item {
    struct done_item *next;
    sl_ledger_done_fn fn;
    void *ctx;
} done_item;

struct sl_ledger_notifier {
    sl_ledger_notifier *next_all;
    struct ev_loop *loop;
    ev_async async;
    pthread_mutex_t mu;
    done_item *head, *tail;
    int dead;
};

struct sl_ledger {
    char *path;
    sqlite3 *db;
    sqlite3_stmt *insert;
    /* Prepared once: sqlite3_exec parsed them again for every batch. */
    sqlite3_stmt *begin, *commit, *rollback;
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    item *head, *tail;
    unsigned queued;   /* rows since the writer last took the queue */
    int urgent;        /* a queued row has a waiter: write now */
    int stop;
    uint64_t committed;
    /* For metrics, read without the lock: rows queued and not yet
     * written, and the transactions written with their total time. */
    uint64_t pending, batches, batch_ns;
    sl_ledger_notifier *notifiers;
};

/* sl_count_sum(a, ...): the sum over rows of all arguments, each clamped
 * at >= 0 and the total saturating at INT64_MAX. SQLite's own SUM fails
 * the whole query with "integer overflow" instead, which on restore would
 * keep the gateway from starting, and a negative row could unlock spend. */
static void count_sum_step(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    int64_t *acc = sqlite3_aggregate_context(ctx, sizeof *acc);
    if (!acc) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    for (int i = 0; i < argc; i++)
        *acc = sl_sat_add_count(*acc, sqlite3_value_int64(argv[i]));
}

static void count_sum_final(sqlite3_context *ctx)
{
    int64_t *acc = sqlite3_aggregate_context(ctx, 0);
    sqlite3_result_int64(ctx, acc ? *acc : 0);
}

static int add_functions(sqlite3 *db)
{
    return sqlite3_create_function(db, "sl_count_sum", -1, SQLITE_UTF8 | SQLITE_DETERMINISTIC, NULL,
                                   NULL, count_sum_step, count_sum_final);
}

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS requests ("
    " id INTEGER PRIMARY KEY,"
    " ts_ms INTEGER NOT NULL,"
    " key TEXT NOT NULL, team TEXT NOT NULL, model TEXT NOT NULL,"
    " provider TEXT NOT NULL, upstream_model TEXT NOT NULL,"
    " status INTEGER NOT NULL,"
    " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
    " cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,"
    " cost_micros INTEGER NOT NULL,"
    " latency_ms REAL NOT NULL, ttfb_ms REAL NOT NULL,"
    " attempts INTEGER NOT NULL, stream INTEGER NOT NULL, estimated INTEGER NOT NULL,"
    " cache_hit INTEGER NOT NULL DEFAULT 0, cache_saved_micros INTEGER NOT NULL DEFAULT 0,"
    " guardrails TEXT NOT NULL DEFAULT '');"
    "CREATE INDEX IF NOT EXISTS requests_key_ts ON requests(key, ts_ms);"
    "CREATE INDEX IF NOT EXISTS requests_team_ts ON requests(team, ts_ms);"
    "CREATE INDEX IF NOT EXISTS requests_ts ON requests(ts_ms);";

sl_ledger *sl_ledger_open(const char *path, char *err, size_t errlen)
{
    sl_ledger *l = calloc(1, sizeof *l);
    if (!l) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->path = strdup(path);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cond, NULL);
    if (sqlite3_open_v2(path, &l->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open state file '%s': %s", path,
                 l->db ? sqlite3_errmsg(l->db) : "out of memory");
        sl_ledger_close(l);
        return NULL;
    }
    sqlite3_busy_timeout(l->db, 5000);
    if (add_functions(l->db) != SQLITE_OK) {
        snprintf(err, errlen, "state file '%s': %s", path, sqlite3_errmsg(l->db));
        sl_ledger_close(l);
        return NULL;
    }
    char *msg = NULL;
    if (sqlite3_exec(l->db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "state file '%s': %s", path, msg ? msg : "schema error");
        sqlite3_free(msg);
        sl_ledger_close(l);
        return NULL;
    }
    /* A ledger made before the response cache and guardrails lacks their
     * columns. */
    static const char *const added[] = {
        "ALTER TABLE requests ADD COLUMN cache_hit INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE requests ADD COLUMN cache_saved_micros INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE requests ADD COLUMN guardrails TEXT NOT NULL DEFAULT ''",
    };
    for (size_t i = 0; i < sizeof added / sizeof added[0]; i++) {
        if (sqlite3_exec(l->db, added[i], NULL, NULL, &msg) != SQLITE_OK &&
            !(msg && strstr(msg, "duplicate column name"))) {
            snprintf(err, errlen, "state file '%s': %s", path, msg ? msg : "schema error");
            sqlite3_free(msg);
            sl_ledger_close(l);
            return NULL;
        }
        sqlite3_free(msg);
        msg = NULL;
    }
    if (sqlite3_prepare_v2(l->db,
                           "INSERT INTO requests (ts_ms,key,team,model,provider,upstream_model,status,"
                           "input_tokens,output_tokens,cache_read_tokens,cache_write_tokens,cost_micros,"
                           "latency_ms,ttfb_ms,attempts,stream,estimated,cache_hit,cache_saved_micros,guardrails) "
                           "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                           -1, &l->insert, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "BEGIN IMMEDIATE", -1, &l->begin, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "COMMIT", -1, &l->commit, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(l->db, "ROLLBACK", -1, &l->rollback, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "state file '%s': %s", path, sqlite3_errmsg(l->db));
        sl_ledger_close(l);
        return NULL;
    }
    return l;
}

static void notify(item *it)
{
    sl_ledger_notifier *n = it->n;
    done_item *d = malloc(sizeof *d);
    if (!d)
        return;
    d->next = NULL;
    d->fn = it->fn;
    d->ctx = it->ctx;
    pthread_mutex_lock(&n->mu);
    if (n->dead) {
        pthread_mutex_unlock(&n->mu);
        free(d);
        return;
    }
    if (n->tail)
        n->tail->next = d;
    else
        n->head = d;
    n->tail = d;
    ev_async_send(n->loop, &n->async);
    pthread_mutex_unlock(&n->mu);
}

static int step_once(sqlite3_stmt *s)
{
    int rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? SQLITE_OK : rc;
}

static int write_batch(sl_ledger *l, item *batch)
{
    step_once(l->begin);
    for (item *it = batch; it; it = it->next) {
        const sl_ledger_row *r = &it->row;
        sqlite3_stmt *s = l->insert;
        sqlite3_bind_int64(s, 1, r->ts_ms);
        sqlite3_bind_text(s, 2, r->key, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 3, r->team, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 4, r->model, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 5, r->provider, -1, SQLITE_STATIC);
        sqlite3_bind_text(s, 6, r->upstream_model, -1, SQLITE_STATIC);
        sqlite3_bind_int(s, 7, r->status);
        sqlite3_bind_int64(s, 8, r->input_tokens);
        sqlite3_bind_int64(s, 9, r->output_tokens);
        sqlite3_bind_int64(s, 10, r->cache_read_tokens);
        sqlite3_bind_int64(s, 11, r->cache_write_tokens);
        sqlite3_bind_int64(s, 12, r->cost_micros);
        sqlite3_bind_double(s, 13, r->latency_ms);
        sqlite3_bind_double(s, 14, r->ttfb_ms);
        sqlite3_bind_int(s, 15, r->attempts);
        sqlite3_bind_int(s, 16, r->stream);
        sqlite3_bind_int(s, 17, r->estimated);
        sqlite3_bind_int(s, 18, r->cache_hit);
        sqlite3_bind_int64(s, 19, r->cache_saved_micros);
        sqlite3_bind_text(s, 20, r->guardrails, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_DONE)
            sl_log_error("ledger: insert failed: %s", sqlite3_errmsg(l->db));
        sqlite3_reset(s);
        if (r->extra.write)
            r->extra.write(l->db, r->extra.arg);
    }
    int rc = step_once(l->commit);
    if (rc != SQLITE_OK) {
        sl_log_error("ledger: commit failed: %s", sqlite3_errmsg(l->db));
        step_once(l->rollback);
    }
    return rc == SQLITE_OK ? 0 : -1;
}

static void *writer(void *arg)
{
    sl_ledger *l = arg;
    for (;;) {
        pthread_mutex_lock(&l->mu);
        /* Rows nobody waits for are picked up every few milliseconds
         * instead of waking this thread (and its core) once per request;
         * a submitter holding a response signals at once. */
        while (!l->head && !l->stop)
            pthread_cond_wait(&l->cond, &l->mu);
        if (!l->urgent && !l->stop && l->queued < 512) {
            struct timespec until;
            clock_gettime(CLOCK_REALTIME, &until);
            until.tv_nsec += 5 * 1000000;
            if (until.tv_nsec >= 1000000000) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000;
            }
            while (!l->urgent && !l->stop && l->queued < 512 &&
                   pthread_cond_timedwait(&l->cond, &l->mu, &until) == 0)
                ;
        }
        l->urgent = 0;
        l->queued = 0;
        item *batch = l->head;
        l->head = l->tail = NULL;
        int stop = l->stop;
        pthread_mutex_unlock(&l->mu);
        if (batch) {
            uint64_t n = 0;
            for (item *it = batch; it; it = it->next)
                n++;
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            write_batch(l, batch);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            __atomic_add_fetch(&l->committed, n, __ATOMIC_RELEASE);
            __atomic_sub_fetch(&l->pending, n, __ATOMIC_RELAXED);
            __atomic_add_fetch(&l->batches, 1, __ATOMIC_RELAXED);
            __atomic_add_fetch(&l->batch_ns,
                               (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec)),
                               __ATOMIC_RELAXED);
            while (batch) {
                item *next = batch->next;
                if (batch->fn)
                    notify(batch);
                if (batch->row.extra.free)
                    batch->row.extra.free(batch->row.extra.arg);
                free(batch);
                batch = next;
            }
            continue;
        }
        if (stop)
            break;
    }
    return NULL;
}

int sl_ledger_start(sl_ledger *l)
{
    if (pthread_create(&l->thread, NULL, writer, l) != 0)
        return -1;
    l->running = 1;
    return 0;
}

static void run_done(done_item *d)
{
    while (d) {
        done_item *next = d->next;
        d->fn(d->ctx);
        free(d);
        d = next;
    }
}

static void async_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sl_ledger_notifier *n = a->data;
    pthread_mutex_lock(&n->mu);
    done_item *d = n->head;
    n->head = n->tail = NULL;
    pthread_mutex_unlock(&n->mu);
    run_done(d);
}

sl_ledger_notifier *sl_ledger_notifier_new(sl_ledger *l, struct ev_loop *loop)
{
    sl_ledger_notifier *n = calloc(1, sizeof *n);
    if (!n)
        return NULL;
    n->loop = loop;
    pthread_mutex_init(&n->mu, NULL);
    ev_async_init(&n->async, async_cb);
    n->async.data = n;
    ev_async_start(loop, &n->async);
    pthread_mutex_lock(&l->mu);
    n->next_all = l->notifiers;
    l->notifiers = n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

void sl_ledger_notifier_detach(sl_ledger_notifier *n)
{
    if (!n)
        return;
    pthread_mutex_lock(&n->mu);
    n->dead = 1;
    ev_async_stop(n->loop, &n->async);
    done_item *d = n->head;
    n->head = n->tail = NULL;
    pthread_mutex_unlock(&n->mu);
    /* Deliver what is already committed: callers free their state there. */
    run_done(d);
}

int sl_ledger_submit(sl_ledger *l, const sl_ledger_row *row, sl_ledger_notifier *n,
                     sl_ledger_done_fn fn, void *ctx)
{
    if (!l || !l->running)
        return -1;
    item *it = malloc(sizeof *it);
    if (!it)
        return -1;
    it->next = NULL;
    it->row = *row;
    it->n = n;
    it->fn = n ? fn : NULL;
    it->ctx = ctx;
    pthread_mutex_lock(&l->mu);
    if (l->stop) {
        pthread_mutex_unlock(&l->mu);
        free(it);
        return -1;
    }
    int was_empty = l->head == NULL;
    if (l->tail)
        l->tail->next = it;
    else
        l->head = it;
    l->tail = it;
    l->queued++;
    __atomic_add_fetch(&l->pending, 1, __ATOMIC_RELAXED);
    if (it->fn)
        l->urgent = 1;
    if (was_empty || it->fn || l->queued >= 512)
        pthread_cond_signal(&l->cond);
    pthread_mutex_unlock(&l->mu);
    return 0;
}

void sl_ledger_close(sl_ledger *l)
{
    if (!l)
        return;
    if (l->running) {
        pthread_mutex_lock(&l->mu);
        l->stop = 1;
        pthread_cond_signal(&l->cond);
        pthread_mutex_unlock(&l->mu);
        pthread_join(l->thread, NULL);
    }
    sqlite3_finalize(l->insert); /* each a no-op on NULL */
    sqlite3_finalize(l->begin);
    sqlite3_finalize(l->commit);
    sqlite3_finalize(l->rollback);
    if (l->db)
        sqlite3_close(l->db);
    sl_ledger_notifier *n = l->notifiers;
    while (n) {
        sl_ledger_notifier *next = n->next_all;
        done_item *d = n->head;
        while (d) {
            done_item *dn = d->next;
            free(d);
            d = dn;
        }
        pthread_mutex_destroy(&n->mu);
        free(n);
        n = next;
    }
    free(l->path);
    free(l);
}

void sl_ledger_stats(sl_ledger *l, sl_ledger_stat *st)
{
    memset(st, 0, sizeof *st);
    if (!l)
        return;
    st->committed = __atomic_load_n(&l->committed, __ATOMIC_ACQUIRE);
    st->queued = __atomic_load_n(&l->pending, __ATOMIC_RELAXED);
    st->transactions = __atomic_load_n(&l->batches, __ATOMIC_RELAXED);
    st->transaction_s = (double)__atomic_load_n(&l->batch_ns, __ATOMIC_RELAXED) / 1e9;
}

uint64_t sl_ledger_committed(sl_ledger *l)
{
    return l ? __atomic_load_n(&l->committed, __ATOMIC_ACQUIRE) : 0;
}

int sl_ledger_restore(void *ledger, const char *column, const char *name, int64_t since,
                      int64_t *usd, int64_t *tokens)
{
    sl_ledger *l = ledger;
    *usd = *tokens = 0;
    if (!l)
        return 0;
    const char *sql = strcmp(column, "team") == 0
        ? "SELECT sl_count_sum(cost_micros), sl_count_sum(input_tokens, output_tokens,"
          " cache_read_tokens, cache_write_tokens) FROM requests WHERE team=? AND ts_ms>=?"
        : "SELECT sl_count_sum(cost_micros), sl_count_sum(input_tokens, output_tokens,"
          " cache_read_tokens, cache_write_tokens) FROM requests WHERE key=? AND ts_ms>=?";
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(l->db, sql, -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, sl_sat_mul(since, 1000));
    int rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        *usd = sqlite3_column_int64(s, 0);
        *tokens = sqlite3_column_int64(s, 1);
    }
    sqlite3_finalize(s);
    return rc == SQLITE_ROW ? 0 : -1;
}

char *sl_ledger_spend_json(sl_ledger *l, const char *by, int64_t since, int64_t until, char *err,
                           size_t errlen)
{
    const char *group;
    if (strcmp(by, "key") == 0)
        group = "key";
    else if (strcmp(by, "team") == 0)
        group = "team";
    else if (strcmp(by, "model") == 0)
        group = "model";
    else if (strcmp(by, "day") == 0)
        group = "strftime('%Y-%m-%d', ts_ms / 1000, 'unixepoch')";
    else {
        snprintf(err, errlen, "by must be key, team, model or day");
        return NULL;
    }
    /* A reader connection of its own: WAL lets it run beside the writer
     * without blocking it. */
    sqlite3 *db;
    if (sqlite3_open_v2(l->path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        add_functions(db) != SQLITE_OK) {
        snprintf(err, errlen, "cannot read the ledger");
        sqlite3_close(db);
        return NULL;
    }
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT %s AS g, COUNT(*), sl_count_sum(cost_micros), sl_count_sum(input_tokens),"
             " sl_count_sum(output_tokens), sl_count_sum(cache_read_tokens),"
             " sl_count_sum(cache_write_tokens) FROM requests"
             " WHERE ts_ms >= ? AND (? = 0 OR ts_ms < ?) GROUP BY g ORDER BY g",
             group);
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql, -1, &s, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "ledger query failed");
        sqlite3_close(db);
        return NULL;
    }
    /* since and until come from an admin query string: scale without
     * overflowing. */
    sqlite3_bind_int64(s, 1, sl_sat_mul(since, 1000));
    sqlite3_bind_int64(s, 2, until);
    sqlite3_bind_int64(s, 3, sl_sat_mul(until, 1000));
    json_t *arr = json_array();
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        const char *g = (const char *)sqlite3_column_text(s, 0);
        int64_t cost = sqlite3_column_int64(s, 2);
        char usd[SL_MONEY_MAX];
        sl_money_format(cost, usd, sizeof usd);
        json_array_append_new(arr, json_pack("{s:s,s:I,s:I,s:s,s:I,s:I,s:I,s:I}", by, g ? g : "",
                                             "requests", (json_int_t)sqlite3_column_int64(s, 1),
                                             "cost_micros", (json_int_t)cost, "cost_usd", usd,
                                             "input_tokens", (json_int_t)sqlite3_column_int64(s, 3),
                                             "output_tokens", (json_int_t)sqlite3_column_int64(s, 4),
                                             "cache_read_tokens", (json_int_t)sqlite3_column_int64(s, 5),
                                             "cache_write_tokens", (json_int_t)sqlite3_column_int64(s, 6)));
    }
    sqlite3_finalize(s);
    sqlite3_close(db);
    if (rc != SQLITE_DONE) { /* a partial answer would understate spend */
        snprintf(err, errlen, "ledger query failed");
        json_decref(arr);
        return NULL;
    }
    char *out = sl_json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(arr);
    return out;
}
