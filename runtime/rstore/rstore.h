/*
 * The Responses store: what sluice keeps of a Responses API answer it
 * produced by translation (store: true, the API's default), so a later
 * request can continue it with previous_response_id and a client can read
 * it back (GET /v1/responses/{id}) or delete it. Rows live in the state
 * file next to the ledger, in their own table, scoped to the key name that
 * created them (another key sees nothing), and expire after the spec's
 * `responses: { retention }` (30 days by default).
 *
 * A row is written by the ledger's writer thread in the same transaction
 * as the request's ledger row (sl_ledger_extra), and the answer waits for
 * that commit, so an id a client has seen can always be continued. Reads
 * and deletions are single-row lookups by primary key on one shared
 * connection (SQLite serialises it); in WAL mode a reader never waits for
 * the writer.
 */
#ifndef SLUICE_RSTORE_H
#define SLUICE_RSTORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct sqlite3;

#define SL_RSTORE_DEFAULT_RETENTION_S (30u * 86400u)
#define SL_RSTORE_ID_MAX 64

/* Opens the process's connection to the state file, creates the table and
 * deletes expired rows. retention_s 0 = the default. 0, or -1 with err. */
int sl_rstore_open(const char *path, uint32_t retention_s, char *err, size_t errlen);
void sl_rstore_close(void);
/* The store is open (the gateway has a state file and a ledger). */
int sl_rstore_enabled(void);
uint32_t sl_rstore_retention_s(void);

/* A fresh response id: "resp_" and 32 random hex digits. */
void sl_rstore_new_id(char out[SL_RSTORE_ID_MAX]);

/* One response to keep: built on the worker, written and freed by the
 * ledger thread (sl_ledger_extra's write and free). The JSON values are
 * serialised at creation; NULL when memory runs out. */
typedef struct sl_rstore_rec sl_rstore_rec;
sl_rstore_rec *sl_rstore_rec_new(const char *id, const char *key, int64_t now_ms, int64_t expires_ms,
                                 json_t *response, json_t *input, json_t *context);
int sl_rstore_rec_write(struct sqlite3 *db, void *rec);
void sl_rstore_rec_free(void *rec);

typedef enum sl_rstore_what {
    SL_RSTORE_RESPONSE,  /* the response object as the client got it */
    SL_RSTORE_INPUT,     /* the request's own input items */
    SL_RSTORE_CONTEXT,   /* every item of the chain: earlier inputs and outputs, this input and output */
} sl_rstore_what;

/* The stored value for (id, key), unexpired at now_ms; NULL when there is
 * none (absent, another key's, expired, or the store is off). */
json_t *sl_rstore_get(const char *id, const char *key, sl_rstore_what what, int64_t now_ms);
/* 1 deleted, 0 nothing to delete, -1 error. */
int sl_rstore_delete(const char *id, const char *key, int64_t now_ms);

/* The same on a given connection (unit tests inject `now`). */
int sl_rstore_db_schema(struct sqlite3 *db, char *err, size_t errlen);
json_t *sl_rstore_db_get(struct sqlite3 *db, const char *id, const char *key, sl_rstore_what what,
                         int64_t now_ms);
int sl_rstore_db_delete(struct sqlite3 *db, const char *id, const char *key, int64_t now_ms);
/* Deletes rows expired at now_ms; the number deleted, or -1. */
int sl_rstore_db_purge(struct sqlite3 *db, int64_t now_ms);

/* For the context of a follow-up: `input` (a string or an item list) as
 * the item list OpenAI stores (a string becomes one user message). New
 * reference. */
json_t *sl_rstore_input_items(json_t *input);

#endif
