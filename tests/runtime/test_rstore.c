/*
 * Unit tests for runtime/rstore/rstore.c on a SQLite file in a fresh
 * temporary directory: a stored response written by the ledger's writer
 * thread in its row's transaction (sl_ledger_extra), read back by the key
 * that made it and by no other, visible before the commit (the pending
 * list), expiry at an injected `now` (a lookup after it finds nothing, a
 * purge deletes the row), deletion, and the input items a string input
 * becomes.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger/ledger.h"
#include "rstore/rstore.h"

#define T0 1704067200000LL /* 2024-01-01 00:00:00 UTC, in ms */
#define DAY 86400000LL

typedef struct fixture {
    char dir[64];
    char path[128];
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    const char *tmp = getenv("TMPDIR");
    snprintf(f->dir, sizeof f->dir, "%s/sluice-rstore-XXXXXX", tmp && *tmp && strlen(tmp) < 32 ? tmp : "/tmp");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/state.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    sl_rstore_close();
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

static sl_rstore_rec *rec(const char *id, const char *key, int64_t now, int64_t ttl_ms)
{
    json_t *resp = json_pack("{s:s,s:s,s:[{s:s}]}", "id", id, "object", "response", "output", "type", "message");
    json_t *hello = json_string("hello");
    json_t *input = sl_rstore_input_items(hello);
    json_decref(hello);
    json_t *context = json_pack("[o,{s:s}]", json_incref(json_array_get(input, 0)), "type", "message");
    sl_rstore_rec *r = sl_rstore_rec_new(id, key, now, now + ttl_ms, resp, input, context);
    json_decref(resp);
    json_decref(input);
    json_decref(context);
    assert_non_null(r);
    return r;
}

/* Writes records the way the gateway does: each with a ledger row. */
static void write_through_ledger(const fixture *f, sl_rstore_rec **recs, size_t n)
{
    char err[256] = "";
    sl_ledger *l = sl_ledger_open(f->path, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(sl_rstore_open(f->path, 0, err, sizeof err), 0);
    assert_int_equal(sl_ledger_start(l), 0);
    for (size_t i = 0; i < n; i++) {
        sl_ledger_row row;
        memset(&row, 0, sizeof row);
        row.ts_ms = T0;
        row.status = 200;
        row.extra = (sl_ledger_extra){sl_rstore_rec_write, sl_rstore_rec_free, recs[i]};
        assert_int_equal(sl_ledger_submit(l, &row, NULL, NULL, NULL), 0);
    }
    sl_ledger_close(l); /* flushes: every row and its record are written */
}

static sqlite3 *db_open(const fixture *f)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
    return db;
}

static void test_key_scoped_and_expiring(void **state)
{
    fixture *f = *state;
    sl_rstore_rec *recs[] = {rec("resp_a", "alice", T0, 7 * DAY), rec("resp_b", "", T0, DAY)};
    write_through_ledger(f, recs, 2);
    sqlite3 *db = db_open(f);

    json_t *r = sl_rstore_db_get(db, "resp_a", "alice", SL_RSTORE_RESPONSE, T0 + 1);
    assert_non_null(r);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "resp_a");
    json_decref(r);
    /* Another key, and the open gateway's "" key, see nothing. */
    assert_null(sl_rstore_db_get(db, "resp_a", "bob", SL_RSTORE_RESPONSE, T0 + 1));
    assert_null(sl_rstore_db_get(db, "resp_a", "", SL_RSTORE_RESPONSE, T0 + 1));
    json_t *ctx = sl_rstore_db_get(db, "resp_b", "", SL_RSTORE_CONTEXT, T0 + 1);
    assert_int_equal(json_array_size(ctx), 2);
    json_decref(ctx);

    /* One day on, resp_b has expired: not found even before a purge. */
    assert_null(sl_rstore_db_get(db, "resp_b", "", SL_RSTORE_RESPONSE, T0 + DAY));
    assert_non_null(ctx = sl_rstore_db_get(db, "resp_a", "alice", SL_RSTORE_INPUT, T0 + DAY));
    json_decref(ctx);
    assert_int_equal(sl_rstore_db_purge(db, T0 + DAY), 1);
    assert_int_equal(sl_rstore_db_purge(db, T0 + DAY), 0);
    /* Seven days on, resp_a too. */
    assert_null(sl_rstore_db_get(db, "resp_a", "alice", SL_RSTORE_RESPONSE, T0 + 7 * DAY));
    assert_int_equal(sl_rstore_db_purge(db, T0 + 7 * DAY), 1);
    sqlite3_stmt *s;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM responses", -1, &s, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(s), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(s, 0), 0);
    sqlite3_finalize(s);
    sqlite3_close(db);
}

static void test_delete(void **state)
{
    fixture *f = *state;
    sl_rstore_rec *recs[] = {rec("resp_d", "alice", T0, DAY)};
    write_through_ledger(f, recs, 1);
    sqlite3 *db = db_open(f);
    assert_int_equal(sl_rstore_db_delete(db, "resp_d", "bob", T0 + 1), 0);
    assert_int_equal(sl_rstore_db_delete(db, "resp_d", "alice", T0 + 1), 1);
    assert_int_equal(sl_rstore_db_delete(db, "resp_d", "alice", T0 + 1), 0);
    assert_null(sl_rstore_db_get(db, "resp_d", "alice", SL_RSTORE_RESPONSE, T0 + 1));
    sqlite3_close(db);
}

/* Between its creation and the commit a record is found by lookups (a
 * stream's client has the id before the row is on disk), and a deletion
 * then keeps its row from ever being written. */
static void test_pending_visible_and_deletable(void **state)
{
    fixture *f = *state;
    char err[256] = "";
    char id[SL_RSTORE_ID_MAX];
    sl_rstore_new_id(id);
    assert_int_equal(strlen(id), 5 + 32);
    assert_memory_equal(id, "resp_", 5);
    sl_ledger *l = sl_ledger_open(f->path, err, sizeof err);
    assert_non_null(l);
    assert_int_equal(sl_rstore_open(f->path, 0, err, sizeof err), 0);
    sl_rstore_rec *r = rec(id, "alice", T0, DAY);
    json_t *got = sl_rstore_get(id, "alice", SL_RSTORE_CONTEXT, T0 + 1);
    assert_int_equal(json_array_size(got), 2);
    json_decref(got);
    assert_null(sl_rstore_get(id, "bob", SL_RSTORE_CONTEXT, T0 + 1));
    assert_int_equal(sl_rstore_delete(id, "alice", T0 + 1), 1);
    assert_null(sl_rstore_get(id, "alice", SL_RSTORE_CONTEXT, T0 + 1));
    /* The writer now skips it. */
    assert_int_equal(sl_ledger_start(l), 0);
    sl_ledger_row row;
    memset(&row, 0, sizeof row);
    row.extra = (sl_ledger_extra){sl_rstore_rec_write, sl_rstore_rec_free, r};
    assert_int_equal(sl_ledger_submit(l, &row, NULL, NULL, NULL), 0);
    sl_ledger_close(l);
    assert_null(sl_rstore_get(id, "alice", SL_RSTORE_RESPONSE, T0 + 1));
}

static void test_input_items(void **state)
{
    (void)state;
    json_t *hi = json_string("hi");
    json_t *items = sl_rstore_input_items(hi);
    json_decref(hi);
    char *s = json_dumps(items, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s, "[{\"content\":[{\"text\":\"hi\",\"type\":\"input_text\"}],\"role\":\"user\",\"type\":\"message\"}]");
    free(s);
    json_decref(items);
    json_t *list = json_pack("[{s:s}]", "type", "function_call_output");
    items = sl_rstore_input_items(list);
    assert_true(json_equal(items, list));
    json_decref(items);
    json_decref(list);
    items = sl_rstore_input_items(NULL);
    assert_int_equal(json_array_size(items), 0);
    json_decref(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_key_scoped_and_expiring, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_visible_and_deletable, setup, teardown),
        cmocka_unit_test(test_input_items),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
