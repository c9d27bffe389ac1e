/*
 * What the files of the Redis state module share (redis.c: process set-up,
 * connections, the ops table; redis_cmd.c: admission, settlement and the
 * ledger stream; redis_seed.c: rebuilding a Redis that lost its counters)
 * and nothing else uses.
 */
#ifndef SLUICE_STATE_REDIS_INTERNAL_H
#define SLUICE_STATE_REDIS_INTERNAL_H

#include <ev.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

#include "ledger/ledger.h"
#include "state/keys.h"
#include "state/state.h"

/* EVALSHA sha numkeys, the keys (two holders, the seeded set, the stream),
 * 20 ARGV and a ledger row of ROW_FIELDS pairs. */
#define ROW_FIELDS 14
#define NARGS (3 + 2 * SL_STATE_HOLDER_KEYS + 2 + 20 + 2 * ROW_FIELDS)
#define ARGBUF 8192

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
        int64_t owed_usd, owed_tok; /* of it, what Redis never received */
    } *ck, *ct;
    /* share_circuits, worker 0 only (redis_circuit.c): the once-a-second
     * exchange, and per target the open-until last told to Redis. */
    ev_timer circuit_timer;
    int64_t *circuit_sent;
    /* Ledger rows Redis could not be sent, for the next connection. */
    sl_ledger_row *backlog;
    int backlog_n;
};

/* Rows kept per worker while Redis is unreachable (about 1 KiB each). */
#define SL_REDIS_BACKLOG 1024

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
    int publish;            /* a plain XADD of a ledger row */
    /* Any other command: called with its reply (NULL: the connection was
     * lost) before p is freed; `user` is its owner's. */
    void (*raw)(struct sl_state_pending *p, redisReply *reply);
    void *user;
    size_t index;           /* the owner's, with user */
    ev_timer timer;
    int argc;
    const char *argv[NARGS];
    size_t argvlen[NARGS];
    size_t used;
    char buf[ARGBUF];
};


/* Names this replica in reservation members, seeds and stream rows. */
extern char sl_redis_replica_id[17];
/* Names this process: reservations carry it after the replica id. */
extern char sl_redis_incarnation[9];
/* SHA-1 of state/script.c's script, for EVALSHA. */
extern char sl_redis_script_sha[41];

/* Drops w's connection from outside hiredis's callbacks (every waiting
 * command gets its callback with no reply) and reconnects with backoff. */
void sl_redis_teardown(sl_state_worker *w, const char *why);

/* redis_seed.c */
/* Records a charge as this worker's spend (before it is sent); `owed`:
 * Redis will not receive it (a local ticket, or a settlement not sent). */
void sl_redis_note(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tok, int64_t now, int owed);
void sl_redis_send_seed(sl_state_worker *w, int64_t now);

/* redis_cmd.c: building and sending commands. A pending command from
 * sl_redis_pending_new takes arguments one by one (sl_redis_arg: 0, or -1
 * when they do not fit) and is sent with its timeout by sl_redis_send
 * (0, or -1: not sent, the caller frees it). */
sl_state_pending *sl_redis_pending_new(sl_state_worker *w);
int sl_redis_arg(sl_state_pending *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int sl_redis_send(sl_state_pending *p);

/* Sends the rows kept while Redis was unreachable (on a new connection). */
void sl_redis_flush_backlog(sl_state_worker *w);

/* redis_circuit.c: shared circuits on worker 0 (0, or -1 out of memory). */
int sl_redis_circuits_start(sl_state_worker *w);
void sl_redis_circuits_stop(sl_state_worker *w);

/* redis_spend.c: the deployment's spend from the ledger stream. */
struct sl_state_query *sl_redis_spend(sl_state_worker *w, const char *by, int64_t since, int64_t until,
                                      sl_state_spend_cb cb, void *ctx);
struct sl_state_query *sl_redis_views(sl_state_worker *w, int64_t now, sl_state_views_cb cb, void *ctx);
void sl_redis_spend_cancel(struct sl_state_query *q);

/* the ops that send commands */
sl_state_pending *sl_redis_admit(sl_state_worker *w, int key, int64_t usd, int64_t tokens, int64_t now,
                                 sl_gov_ticket *ticket, sl_state_admit_cb cb, void *ctx);
void sl_redis_cancel(sl_state_pending *p);
void sl_redis_settle(sl_state_worker *w, const sl_gov_ticket *tk, int64_t usd, int64_t tokens, int64_t now,
                     const sl_ledger_row *row);

#endif
