/*
 * Request metrics without locks on the request path. Each worker owns a
 * shard: fixed-size open-addressing tables of counters and histograms
 * keyed by a packed label tuple, written only by that worker's thread
 * (plain relaxed loads and stores, no read-modify-write atomics), and read
 * by whichever thread serves a scrape, which sums the shards. Labels are
 * small indices into the compiled table (model entry, provider, key) or
 * small fixed enums (surface, status class, operation, error type, token
 * type), never a client-supplied string, a raw key or a hash, so the set
 * of possible series is bounded by the spec. A shard that fills up counts
 * the series it could not hold instead of growing.
 *
 * Gauges read at scrape time (circuit state, budgets, connections, the
 * ledger) are not stored here: handlers/metrics.c reads them from their
 * owners and writes them with the text helpers at the end of this header.
 */
#ifndef SLUICE_METRICS_H
#define SLUICE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/proto.h"
#include "table.h"

#define SL_METRICS_MAX_SHARDS 256

typedef struct sl_metrics_shard sl_metrics_shard;

/* Why a request ended as it did, for error_type. */
typedef enum sl_metrics_result {
    SL_MET_ATTEMPT_OK = 0,     /* 2xx */
    SL_MET_ATTEMPT_3XX,
    SL_MET_ATTEMPT_4XX,
    SL_MET_ATTEMPT_429,
    SL_MET_ATTEMPT_5XX,
    SL_MET_ATTEMPT_CONNECT,
    SL_MET_ATTEMPT_TIMEOUT,
    SL_MET_ATTEMPT_RESET,
    SL_MET_ATTEMPT_ERROR,
    SL_MET_ATTEMPT_CANCELLED,  /* the client left mid-try */
    SL_MET_ATTEMPT_RESULTS
} sl_metrics_result;

typedef enum sl_metrics_refusal {
    SL_MET_REFUSED_RATE_LIMIT = 0,
    SL_MET_REFUSED_BUDGET = 1,
} sl_metrics_refusal;

/* One finished request, as sl_exchange_finish sees it. */
typedef struct sl_metrics_request {
    int entry;            /* model entry asked for, -1 = none (not routed) */
    int provider;         /* provider of the last try, -1 = none */
    int key;              /* -1 = open gateway or not authenticated */
    sl_proto surface;
    sl_op op;
    int legacy;           /* /v1/completions */
    int status;
    int stream;           /* a streamed answer reached the client */
    double duration_s;
    double overhead_s;    /* duration minus upstream waits and backoffs */
    double ttft_s;        /* streams: time to the first byte relayed; < 0 = none */
    int64_t input, output, cache_read, cache_write;
    int64_t cost_micros;
    int retries;          /* tries after the first within one entry */
    int fallbacks;        /* moves to a fallback entry */
} sl_metrics_request;

/* Process-wide set-up for `t`, before workers start; 0 or -1 (memory). */
int sl_metrics_init(const sl_table *t);
/* After the workers stopped: frees every shard. */
void sl_metrics_shutdown(void);

/* The shard of worker `id` (0..SL_METRICS_MAX_SHARDS-1), created on first
 * use from that worker's thread; NULL when out of memory (recording into
 * NULL does nothing). */
sl_metrics_shard *sl_metrics_shard_for(int id);

/* Recording; s may be NULL. Only the shard's own thread may record. */
void sl_metrics_request_begin(sl_metrics_shard *s);
void sl_metrics_request_end(sl_metrics_shard *s, const sl_metrics_request *r);
void sl_metrics_attempt(sl_metrics_shard *s, int entry, int provider, sl_metrics_result r);
void sl_metrics_refused(sl_metrics_shard *s, int key, sl_metrics_refusal why);
/* The attempt result for an HTTP status. */
sl_metrics_result sl_metrics_result_of_status(int status);

/* The label words, for traces that speak the same vocabulary: the
 * OpenTelemetry gen_ai.operation.name of op, and an attempt result. */
const char *sl_metrics_op_name(sl_op op, int legacy);
const char *sl_metrics_result_name(sl_metrics_result r);

/* Requests started and not yet finished, summed over shards. */
int64_t sl_metrics_in_flight(void);

/* Appends every stored family in the Prometheus text format (0.0.4);
 * 0, or -1 when memory runs out. */
int sl_metrics_render(sl_buf *out);

/* ---- text format helpers (for gauges read at scrape time) ---------------- */

/* "# HELP name help\n# TYPE name type\n" */
int sl_metrics_text_family(sl_buf *out, const char *name, const char *type, const char *help);
/* One sample: begin writes the name, each label call one name="value"
 * pair (the value escaped for the text format: backslash, quote,
 * newline), end the value and the newline. *n counts the labels written;
 * start it at 0. */
int sl_metrics_text_begin(sl_buf *out, const char *name);
int sl_metrics_text_label(sl_buf *out, int *n, const char *label, const char *value);
int sl_metrics_text_end(sl_buf *out, int n, double value);

#endif
