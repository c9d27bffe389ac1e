/*
 * Unit tests for runtime/ledger/ledger.c on a SQLite file in a fresh
 * temporary directory: rows submitted through the writer thread, commit
 * notifications delivered on an event loop, spend restored for a period
 * (the sums saturate instead of failing: SQLite's SUM raised "integer
 * overflow" and restore then kept the gateway from starting), and the
 * admin spend report grouped by key, team, model and day.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger.h"

/* 2024-01-01 00:00:00 UTC. */
#define JAN1 1704067200LL

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/sluice-ledger-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/state.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    const char *suffix[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", f->path, suffix[i]);
        unlink(p);
    }
    rmdir(f->dir);
    free(f);
    return 0;
}

static sl_ledger_row row(int64_t ts_s, const char *key, const char *team, const char *model, int64_t cost,
                         int64_t in, int64_t out)
{
    sl_ledger_row r;
    memset(&r, 0, sizeof r);
    r.ts_ms = ts_s * 1000 + 123;
    snprintf(r.key, sizeof r.key, "%s", key);
    snprintf(r.team, sizeof r.team, "%s", team);
    snprintf(r.model, sizeof r.model, "%s", model);
    snprintf(r.provider, sizeof r.provider, "ant");
    snprintf(r.upstream_model, sizeof r.upstream_model, "%s-up", model);
    r.status = 200;
    r.input_tokens = in;
    r.output_tokens = out;
    r.cache_read_tokens = 1;
    r.cache_write_tokens = 2;
    r.cost_micros = cost;
    r.latency_ms = 12.5;
    r.attempts = 1;
    return r;
}

static sl_ledger *open_ok(const fixture *f)
{
    char err[256] = "";
    sl_ledger *l = sl_ledger_open(f->path, err, sizeof err);
    if (!l)
        fail_msg("open: %s", err);
    return l;
}

/* Writes rows through a running writer, then closes (which flushes). */
static void write_rows(const fixture *f, const sl_ledger_row *rows, size_t n)
{
    sl_ledger *l = open_ok(f);
    assert_int_equal(sl_ledger_start(l), 0);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(sl_ledger_submit(l, &rows[i], NULL, NULL, NULL), 0);
    sl_ledger_close(l);
}

static void test_submit_and_restore(void **state)
{
    fixture *f = *state;
    sl_ledger_row rows[] = {
        row(JAN1 - 10, "alice", "platform", "smart", 1000, 10, 20), /* the day before */
        row(JAN1 + 5, "alice", "platform", "smart", 2500, 100, 50),
        row(JAN1 + 60, "alice", "platform", "claude-x", 500, 1, 1),
        row(JAN1 + 70, "bob", "platform", "smart", 7000, 3, 4),
        row(JAN1 + 80, "carol", "", "smart", 9, 0, 0),
    };
    write_rows(f, rows, sizeof rows / sizeof *rows);

    sl_ledger *l = open_ok(f);
    int64_t usd, tok;
    assert_int_equal(sl_ledger_restore(l, "key", "alice", JAN1, &usd, &tok), 0);
    assert_int_equal(usd, 3000);
    assert_int_equal(tok, (100 + 50 + 3) + (1 + 1 + 3));
    assert_int_equal(sl_ledger_restore(l, "key", "alice", 0, &usd, &tok), 0);
    assert_int_equal(usd, 4000);
    assert_int_equal(sl_ledger_restore(l, "team", "platform", JAN1, &usd, &tok), 0);
    assert_int_equal(usd, 10000);
    assert_int_equal(sl_ledger_restore(l, "key", "nobody", 0, &usd, &tok), 0);
    assert_int_equal(usd, 0);
    assert_int_equal(tok, 0);
    /* Since is unix seconds; a row at JAN1+80.123 s is after JAN1+80. */
    assert_int_equal(sl_ledger_restore(l, "key", "carol", JAN1 + 80, &usd, &tok), 0);
    assert_int_equal(usd, 9);
    assert_int_equal(sl_ledger_restore(l, "key", "carol", JAN1 + 81, &usd, &tok), 0);
    assert_int_equal(usd, 0);
    sl_ledger_close(l);
    /* No ledger: nothing spent. */
    assert_int_equal(sl_ledger_restore(NULL, "key", "alice", 0, &usd, &tok), 0);
    assert_int_equal(usd, 0);
}

/* The guardrails column: detector names, never text; a state file made
 * before the column existed gains it on open. */
static void test_guardrails_column(void **state)
{
    fixture *f = *state;
    sqlite3 *db;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db,
                                  "CREATE TABLE requests (id INTEGER PRIMARY KEY, ts_ms INTEGER NOT NULL,"
                                  " key TEXT NOT NULL, team TEXT NOT NULL, model TEXT NOT NULL,"
                                  " provider TEXT NOT NULL, upstream_model TEXT NOT NULL, status INTEGER NOT NULL,"
                                  " input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL,"
                                  " cache_read_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL,"
                                  " cost_micros INTEGER NOT NULL, latency_ms REAL NOT NULL, ttfb_ms REAL NOT NULL,"
                                  " attempts INTEGER NOT NULL, stream INTEGER NOT NULL, estimated INTEGER NOT NULL);"
                                  "INSERT INTO requests VALUES (1,1,'old','','m','p','u',200,0,0,0,0,0,0,0,1,0,0);",
                                  NULL, NULL, NULL),
                     SQLITE_OK);
    sqlite3_close(db);
    sl_ledger_row rows[] = {row(JAN1, "alice", "", "smart", 1, 1, 1), row(JAN1 + 1, "bob", "", "smart", 1, 1, 1)};
    snprintf(rows[0].guardrails, sizeof rows[0].guardrails, "email,card");
    write_rows(f, rows, 2);
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT key, guardrails FROM requests ORDER BY id", -1, &st, NULL),
                     SQLITE_OK);
    const char *want[][2] = {{"old", ""}, {"alice", "email,card"}, {"bob", ""}};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_string_equal((const char *)sqlite3_column_text(st, 0), want[i][0]);
        assert_string_equal((const char *)sqlite3_column_text(st, 1), want[i][1]);
    }
    assert_int_equal(sqlite3_step(st), SQLITE_DONE);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static void test_restore_saturates(void **state)
{
    fixture *f = *state;
    sl_ledger_row rows[] = {
        row(JAN1, "alice", "t", "m", INT64_MAX, INT64_MAX, INT64_MAX),
        row(JAN1, "alice", "t", "m", INT64_MAX, INT64_MAX, 5),
        /* Negative rows (written by a broken build) do not refund. */
        row(JAN1, "alice", "t", "m", INT64_MIN, INT64_MIN, -5),
        row(JAN1, "bob", "t", "m", -100, -1, -1),
    };
    write_rows(f, rows, sizeof rows / sizeof *rows);
    sl_ledger *l = open_ok(f);
    int64_t usd = 0, tok = 0;
    assert_int_equal(sl_ledger_restore(l, "key", "alice", 0, &usd, &tok), 0);
    assert_true(usd == INT64_MAX);
    assert_true(tok == INT64_MAX);
    assert_int_equal(sl_ledger_restore(l, "key", "bob", 0, &usd, &tok), 0);
    assert_int_equal(usd, 0);
    assert_int_equal(tok, 3); /* only the cache counts (1 + 2) are positive */
    sl_ledger_close(l);
}

static json_t *spend(sl_ledger *l, const char *by, int64_t since, int64_t until)
{
    char err[128] = "";
    char *js = sl_ledger_spend_json(l, by, since, until, err, sizeof err);
    if (!js)
        fail_msg("spend_json(%s): %s", by, err);
    json_t *j = json_loads(js, 0, NULL);
    free(js);
    assert_true(json_is_array(j));
    return j;
}

static json_int_t ival(json_t *arr, size_t i, const char *k)
{
    return json_integer_value(json_object_get(json_array_get(arr, i), k));
}

static const char *sval(json_t *arr, size_t i, const char *k)
{
    const char *s = json_string_value(json_object_get(json_array_get(arr, i), k));
    return s ? s : "(none)";
}

static void test_spend_json(void **state)
{
    fixture *f = *state;
    sl_ledger_row rows[] = {
        row(JAN1 + 5, "alice", "platform", "smart", 2500000, 100, 50),
        row(JAN1 + 60, "alice", "platform", "claude-x", 500, 1, 1),
        row(JAN1 + 86400 + 1, "bob", "platform", "smart", 1234567, 3, 4),
        row(JAN1 + 86400 + 2, "carol", "", "smart", 9, 0, 0),
    };
    write_rows(f, rows, sizeof rows / sizeof *rows);
    sl_ledger *l = open_ok(f);

    json_t *j = spend(l, "key", 0, 0);
    assert_int_equal(json_array_size(j), 3);
    assert_string_equal(sval(j, 0, "key"), "alice");
    assert_int_equal(ival(j, 0, "requests"), 2);
    assert_int_equal(ival(j, 0, "cost_micros"), 2500500);
    assert_string_equal(sval(j, 0, "cost_usd"), "2.500500");
    assert_int_equal(ival(j, 0, "input_tokens"), 101);
    assert_int_equal(ival(j, 0, "output_tokens"), 51);
    assert_int_equal(ival(j, 0, "cache_read_tokens"), 2);
    assert_int_equal(ival(j, 0, "cache_write_tokens"), 4);
    assert_string_equal(sval(j, 1, "key"), "bob");
    assert_string_equal(sval(j, 1, "cost_usd"), "1.234567");
    assert_string_equal(sval(j, 2, "cost_usd"), "0.000009");
    json_decref(j);

    j = spend(l, "team", 0, 0);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(sval(j, 0, "team"), "");
    assert_string_equal(sval(j, 1, "team"), "platform");
    assert_int_equal(ival(j, 1, "requests"), 3);
    json_decref(j);

    j = spend(l, "model", 0, 0);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(sval(j, 0, "model"), "claude-x");
    assert_string_equal(sval(j, 1, "model"), "smart");
    assert_int_equal(ival(j, 1, "requests"), 3);
    json_decref(j);

    j = spend(l, "day", 0, 0);
    assert_int_equal(json_array_size(j), 2);
    assert_string_equal(sval(j, 0, "day"), "2024-01-01");
    assert_int_equal(ival(j, 0, "requests"), 2);
    assert_string_equal(sval(j, 1, "day"), "2024-01-02");
    json_decref(j);

    /* until is exclusive; since inclusive. */
    j = spend(l, "key", JAN1 + 60, JAN1 + 86400 + 2);
    assert_int_equal(json_array_size(j), 2);
    assert_int_equal(ival(j, 0, "cost_micros"), 500);
    assert_string_equal(sval(j, 1, "key"), "bob");
    json_decref(j);

    /* Bounds from a query string cannot overflow the millisecond scale. */
    j = spend(l, "key", INT64_MAX, 0);
    assert_int_equal(json_array_size(j), 0);
    json_decref(j);
    j = spend(l, "key", INT64_MIN, INT64_MAX);
    assert_int_equal(json_array_size(j), 3);
    json_decref(j);

    char err[128] = "";
    assert_null(sl_ledger_spend_json(l, "provider", 0, 0, err, sizeof err));
    assert_true(strstr(err, "by must be") != NULL);
    sl_ledger_close(l);
}

static void test_spend_json_saturates(void **state)
{
    fixture *f = *state;
    sl_ledger_row rows[] = {
        row(JAN1, "alice", "t", "m", INT64_MAX, 1, 1),
        row(JAN1, "alice", "t", "m", INT64_MAX, 1, 1),
    };
    write_rows(f, rows, 2);
    sl_ledger *l = open_ok(f);
    json_t *j = spend(l, "key", 0, 0);
    assert_int_equal(json_array_size(j), 1);
    assert_true(ival(j, 0, "cost_micros") == INT64_MAX);
    assert_string_equal(sval(j, 0, "cost_usd"), "9223372036854.775807");
    json_decref(j);
    sl_ledger_close(l);
}

typedef struct waiter {
    struct ev_loop *loop;
    int done;
} waiter;

static void on_committed(void *ctx)
{
    waiter *w = ctx;
    w->done++;
    ev_break(w->loop, EVBREAK_ONE);
}

static void guard_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    ev_break(loop, EVBREAK_ONE);
}

static void test_notify_after_commit(void **state)
{
    fixture *f = *state;
    struct ev_loop *loop = ev_loop_new(EVFLAG_AUTO);
    sl_ledger *l = open_ok(f);
    assert_int_equal(sl_ledger_start(l), 0);
    sl_ledger_notifier *n = sl_ledger_notifier_new(l, loop);
    assert_non_null(n);
    waiter w = {.loop = loop};
    sl_ledger_row r = row(JAN1, "alice", "t", "m", 42, 1, 1);
    assert_int_equal(sl_ledger_submit(l, &r, n, on_committed, &w), 0);
    ev_timer guard;
    ev_timer_init(&guard, guard_cb, 5.0, 0.);
    ev_timer_start(loop, &guard);
    while (!w.done && ev_is_active(&guard))
        ev_run(loop, EVRUN_ONCE);
    ev_timer_stop(loop, &guard);
    assert_int_equal(w.done, 1);
    /* Called on the loop, after the commit. */
    assert_true(sl_ledger_committed(l) >= 1);
    sl_ledger_notifier_detach(n);
    sl_ledger_close(l);
    ev_loop_destroy(loop);
}

static void test_not_running(void **state)
{
    fixture *f = *state;
    sl_ledger *l = open_ok(f);
    sl_ledger_row r = row(JAN1, "alice", "t", "m", 1, 1, 1);
    /* Before start, rows are refused rather than queued forever. */
    assert_int_equal(sl_ledger_submit(l, &r, NULL, NULL, NULL), -1);
    assert_int_equal(sl_ledger_submit(NULL, &r, NULL, NULL, NULL), -1);
    assert_int_equal(sl_ledger_committed(l), 0);
    assert_int_equal(sl_ledger_committed(NULL), 0);
    sl_ledger_close(l);
    sl_ledger_close(NULL);
}

static void test_open_fails(void **state)
{
    fixture *f = *state;
    char bad[192], err[256] = "";
    snprintf(bad, sizeof bad, "%s/missing/dir/state.db", f->dir);
    assert_null(sl_ledger_open(bad, err, sizeof err));
    assert_true(strstr(err, "cannot open state file") != NULL);
}

static void test_wait_modes(void **state)
{
    (void)state;
    /* The values main.c parses --ledger-wait into. */
    assert_int_equal(SL_LEDGER_WAIT_NONE, 0);
    assert_int_equal(SL_LEDGER_WAIT_BUDGET, 1);
    assert_int_equal(SL_LEDGER_WAIT_ALL, 2);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_submit_and_restore),
        T(test_guardrails_column),
        T(test_restore_saturates),
        T(test_spend_json),
        T(test_spend_json_saturates),
        T(test_notify_after_commit),
        T(test_not_running),
        T(test_open_fails),
        T(test_wait_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
