/*
 * The spend ledger: one SQLite (WAL) row per routed request, written by a
 * dedicated thread in batched transactions (group commit) so no worker
 * ever waits on SQLite's lock. A submitter may ask to be told when its row
 * is committed; the proxy uses that to hold the last byte of a response
 * until the spend behind it is on disk, so a kill -9 never loses a row for
 * a request the client saw complete.
 */
#ifndef SLUICE_LEDGER_H
#define SLUICE_LEDGER_H

#include <stddef.h>
#include <stdint.h>

struct ev_loop;

typedef struct sl_ledger sl_ledger;
typedef struct sl_ledger_notifier sl_ledger_notifier;

/* Work done in the same transaction as a row (the Responses store's
 * insert): write runs on the writer thread with its connection, then free
 * releases arg, whether or not the write succeeded. A submit that fails
 * leaves arg to the caller. */
struct sqlite3;
typedef struct sl_ledger_extra {
    int (*write)(struct sqlite3 *db, void *arg);
    void (*free)(void *arg);
    void *arg;
} sl_ledger_extra;

typedef struct sl_ledger_row {
    int64_t ts_ms;            /* request start, unix ms */
    char key[128];            /* key name, "" for an open gateway */
    char team[128];
    char model[256];          /* model entry the client asked for */
    char provider[128];
    char upstream_model[256];
    int status;
    int64_t input_tokens, output_tokens, cache_read_tokens, cache_write_tokens;
    int64_t cost_micros;
    double latency_ms, ttfb_ms;
    int attempts;
    int stream;
    int estimated;            /* usage estimated, not reported by the provider */
    char guardrails[96];      /* detectors that fired ("email,card"), never the text */
    sl_ledger_extra extra;    /* optional (write == NULL: none) */
    int cache_hit;            /* answered from the response cache (costs nothing) */
    int64_t cache_saved_micros; /* a hit: what the cached answer cost when it was made */
} sl_ledger_row;

/* Which responses hold their last bytes until their ledger row is
 * committed (so a kill -9 cannot lose spend the client saw). */
enum {
    SL_LEDGER_WAIT_NONE = 0,    /* async: rows follow within a few ms */
    SL_LEDGER_WAIT_BUDGET = 1,  /* requests by keys whose key or team has a budget */
    SL_LEDGER_WAIT_ALL = 2,     /* every request */
};

typedef void (*sl_ledger_done_fn)(void *ctx);

/* Opens (creating) the database and its schema. NULL with err on failure. */
sl_ledger *sl_ledger_open(const char *path, char *err, size_t errlen);
int sl_ledger_start(sl_ledger *l);                 /* the writer thread */
void sl_ledger_close(sl_ledger *l);                /* flush, join, close */

/* Per event loop: where commit notifications are delivered. */
sl_ledger_notifier *sl_ledger_notifier_new(sl_ledger *l, struct ev_loop *loop);
/* The loop is going away: drop undelivered notifications. */
void sl_ledger_notifier_detach(sl_ledger_notifier *n);

/* Queues a row. With fn, fn(ctx) runs on n's loop after the commit.
 * Returns 0, or -1 when the ledger is not running (fn is not called). */
int sl_ledger_submit(sl_ledger *l, const sl_ledger_row *row, sl_ledger_notifier *n,
                     sl_ledger_done_fn fn, void *ctx);

/* Sum of cost and tokens for rows with column (key|team) = name since
 * `since_unix`; the signature matches sl_gov_restore_fn. Sums saturate at
 * INT64_MAX and negative row values count as 0, so no ledger content can
 * make this fail or come out negative. Not safe while the writer thread
 * runs (it shares the connection): call before sl_ledger_start. */
int sl_ledger_restore(void *ledger, const char *column, const char *name, int64_t since_unix,
                      int64_t *usd, int64_t *tokens);

/* Spend grouped by key|team|model|day between since and until (unix s,
 * until exclusive; 0 = open), as a malloc'd JSON array of objects with the
 * group under `by`, requests, cost_micros, cost_usd (sl_money_format) and
 * the four token sums (saturating, as restore); NULL with err on error. */
char *sl_ledger_spend_json(sl_ledger *l, const char *by, int64_t since, int64_t until, char *err,
                           size_t errlen);

/* For metrics: rows committed, rows queued and not yet written, and the
 * write transactions with their total time (each is one group commit). */
typedef struct sl_ledger_stat {
    uint64_t committed, queued, transactions;
    double transaction_s;
} sl_ledger_stat;
void sl_ledger_stats(sl_ledger *l, sl_ledger_stat *st);

/* Rows committed so far (for tests and metrics). */
uint64_t sl_ledger_committed(sl_ledger *l);

#endif
