/*
 * The Responses store (see rstore.h): schema, the row the ledger thread
 * writes, key-scoped lookups and deletion, and expiry.
 */
#include "rstore/rstore.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/reqid.h"
#include "json/json_out.h"

struct sl_rstore_rec {
    sl_rstore_rec *prev, *next; /* the pending list */
    char id[SL_RSTORE_ID_MAX];
    char *key;
    int64_t created_ms, expires_ms;
    char *response, *input, *context;
    int deleted;                /* deleted before its row was written */
};

/* Records made and not yet committed (and freed) by the ledger thread.
 * A client can hold an id before its row is on disk (a stream's
 * response.completed event goes out before the commit): lookups see these
 * first, so a follow-up never races the writer. Entries live for
 * milliseconds, so a list is enough. */
static pthread_mutex_t pend_mu = PTHREAD_MUTEX_INITIALIZER;
static sl_rstore_rec *pend_head;

static sl_rstore_rec *pending_find(const char *id, const char *key)
{
    for (sl_rstore_rec *r = pend_head; r; r = r->next)
        if (!r->deleted && strcmp(r->id, id) == 0 && strcmp(r->key, key ? key : "") == 0)
            return r;
    return NULL;
}

static sqlite3 *g_db;        /* reads and deletions, shared by the workers (FULLMUTEX) */
static uint32_t g_retention_s = SL_RSTORE_DEFAULT_RETENTION_S;

static const char schema[] =
    "CREATE TABLE IF NOT EXISTS responses ("
    " id TEXT PRIMARY KEY,"
    " key TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL,"
    " response TEXT NOT NULL, input TEXT NOT NULL, context TEXT NOT NULL);"
    "CREATE INDEX IF NOT EXISTS responses_expires ON responses(expires_ms);";

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int sl_rstore_db_schema(sqlite3 *db, char *err, size_t errlen)
{
    char *msg = NULL;
    if (sqlite3_exec(db, schema, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "responses table: %s", msg ? msg : "schema error");
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

int sl_rstore_db_purge(sqlite3 *db, int64_t now)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "DELETE FROM responses WHERE expires_ms <= ?", -1, &s, NULL) != SQLITE_OK)
        return -1;
    sqlite3_bind_int64(s, 1, now);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    return rc == SQLITE_DONE ? sqlite3_changes(db) : -1;
}

int sl_rstore_open(const char *path, uint32_t retention_s, char *err, size_t errlen)
{
    sl_rstore_close();
    g_retention_s = retention_s ? retention_s : SL_RSTORE_DEFAULT_RETENTION_S;
    if (sqlite3_open_v2(path, &g_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_FULLMUTEX, NULL) !=
        SQLITE_OK) {
        snprintf(err, errlen, "cannot open state file '%s' for stored responses: %s", path,
                 g_db ? sqlite3_errmsg(g_db) : "out of memory");
        sl_rstore_close();
        return -1;
    }
    /* A deletion may meet the ledger's group commit: wait it out (they
     * take milliseconds), never fail the client for it. */
    sqlite3_busy_timeout(g_db, 2000);
    if (sl_rstore_db_schema(g_db, err, errlen) != 0) {
        sl_rstore_close();
        return -1;
    }
    int n = sl_rstore_db_purge(g_db, now_ms());
    if (n > 0)
        sl_log_info("stored responses: %d expired rows deleted", n);
    return 0;
}

void sl_rstore_close(void)
{
    if (g_db)
        sqlite3_close(g_db);
    g_db = NULL;
}

int sl_rstore_enabled(void) { return g_db != NULL; }
uint32_t sl_rstore_retention_s(void) { return g_retention_s; }

void sl_rstore_new_id(char out[SL_RSTORE_ID_MAX])
{
    unsigned char b[16];
    sl_reqid_random16(b);
    memcpy(out, "resp_", 5);
    for (int i = 0; i < 16; i++)
        snprintf(out + 5 + 2 * i, 3, "%02x", b[i]);
}

static char *dumps(json_t *j)
{
    return j ? sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : strdup("[]");
}

sl_rstore_rec *sl_rstore_rec_new(const char *id, const char *key, int64_t now, int64_t expires_ms,
                                 json_t *response, json_t *input, json_t *context)
{
    sl_rstore_rec *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->key = strdup(key ? key : "");
    r->created_ms = now;
    r->expires_ms = expires_ms;
    r->response = dumps(response);
    r->input = dumps(input);
    r->context = dumps(context);
    if (!r->key || !r->response || !r->input || !r->context) {
        sl_rstore_rec_free(r);
        return NULL;
    }
    pthread_mutex_lock(&pend_mu);
    r->next = pend_head;
    if (pend_head)
        pend_head->prev = r;
    pend_head = r;
    pthread_mutex_unlock(&pend_mu);
    return r;
}

void sl_rstore_rec_free(void *p)
{
    sl_rstore_rec *r = p;
    if (!r)
        return;
    pthread_mutex_lock(&pend_mu);
    if (r->prev)
        r->prev->next = r->next;
    else if (pend_head == r)
        pend_head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    pthread_mutex_unlock(&pend_mu);
    free(r->key);
    free(r->response);
    free(r->input);
    free(r->context);
    free(r);
}

/* On the ledger's thread, inside its transaction. Expired rows go at most
 * once a minute, in the same transaction. */
int sl_rstore_rec_write(sqlite3 *db, void *p)
{
    static int64_t last_purge_ms; /* the ledger thread's own */
    sl_rstore_rec *r = p;
    pthread_mutex_lock(&pend_mu);
    int deleted = r->deleted;
    pthread_mutex_unlock(&pend_mu);
    if (deleted)
        return 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db,
                           "INSERT OR REPLACE INTO responses (id,key,created_ms,expires_ms,response,input,context)"
                           " VALUES (?,?,?,?,?,?,?)",
                           -1, &s, NULL) != SQLITE_OK) {
        sl_log_error("stored responses: %s", sqlite3_errmsg(db));
        return -1;
    }
    sqlite3_bind_text(s, 1, r->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, r->key, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, r->created_ms);
    sqlite3_bind_int64(s, 4, r->expires_ms);
    sqlite3_bind_text(s, 5, r->response, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 6, r->input, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 7, r->context, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        sl_log_error("stored responses: insert failed: %s", sqlite3_errmsg(db));
    if (r->created_ms - last_purge_ms >= 60000) {
        last_purge_ms = r->created_ms;
        sl_rstore_db_purge(db, r->created_ms);
    }
    return rc == SQLITE_DONE ? 0 : -1;
}

json_t *sl_rstore_db_get(sqlite3 *db, const char *id, const char *key, sl_rstore_what what, int64_t now)
{
    static const char *const sql[] = {
        "SELECT response FROM responses WHERE id=? AND key=? AND expires_ms>?",
        "SELECT input FROM responses WHERE id=? AND key=? AND expires_ms>?",
        "SELECT context FROM responses WHERE id=? AND key=? AND expires_ms>?",
    };
    if (!db)
        return NULL;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, sql[what], -1, &s, NULL) != SQLITE_OK)
        return NULL;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key ? key : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    json_t *out = NULL;
    if (sqlite3_step(s) == SQLITE_ROW) {
        const char *text = (const char *)sqlite3_column_text(s, 0);
        int n = sqlite3_column_bytes(s, 0);
        if (text)
            out = json_loadb(text, (size_t)n, 0, NULL);
    }
    sqlite3_finalize(s);
    return out;
}

int sl_rstore_db_delete(sqlite3 *db, const char *id, const char *key, int64_t now)
{
    if (!db)
        return 0;
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(db, "DELETE FROM responses WHERE id=? AND key=? AND expires_ms>?", -1, &s, NULL) !=
        SQLITE_OK)
        return -1;
    sqlite3_bind_text(s, 1, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, key ? key : "", -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, now);
    int rc = sqlite3_step(s);
    sqlite3_finalize(s);
    if (rc != SQLITE_DONE)
        return -1;
    return sqlite3_changes(db) > 0 ? 1 : 0;
}

json_t *sl_rstore_get(const char *id, const char *key, sl_rstore_what what, int64_t now)
{
    pthread_mutex_lock(&pend_mu);
    sl_rstore_rec *r = pending_find(id, key);
    json_t *out = NULL;
    if (r) {
        const char *text = what == SL_RSTORE_RESPONSE ? r->response : what == SL_RSTORE_INPUT ? r->input : r->context;
        out = json_loads(text, 0, NULL);
    }
    pthread_mutex_unlock(&pend_mu);
    return out ? out : sl_rstore_db_get(g_db, id, key, what, now);
}

int sl_rstore_delete(const char *id, const char *key, int64_t now)
{
    pthread_mutex_lock(&pend_mu);
    sl_rstore_rec *r = pending_find(id, key);
    if (r)
        r->deleted = 1; /* its row will not be written */
    pthread_mutex_unlock(&pend_mu);
    int rc = sl_rstore_db_delete(g_db, id, key, now);
    return r && rc == 0 ? 1 : rc;
}

json_t *sl_rstore_input_items(json_t *input)
{
    if (json_is_string(input))
        return json_pack("[{s:s,s:s,s:[{s:s,s:O}]}]", "type", "message", "role", "user", "content", "type",
                         "input_text", "text", input);
    if (json_is_array(input))
        return json_deep_copy(input);
    return json_array();
}
