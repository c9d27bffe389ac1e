/*
 * OpenTelemetry traces for the request path, sent as OTLP/HTTP JSON: one
 * server span per client request and one client span per upstream try,
 * named "{gen_ai.operation.name} {gen_ai.request.model}" with the GenAI
 * attributes. A client's W3C traceparent is continued; each try sends
 * upstream a traceparent whose parent is its client span.
 *
 * Inert unless the spec has `telemetry:`: sl_trace_start is then never
 * called, sl_trace_begin returns NULL and every other call does nothing,
 * so an untraced gateway pays one pointer test per stage. When on, the
 * event loop only copies finished spans into a bounded queue (a short
 * mutex, no allocation, no I/O); one exporter thread batches them and
 * POSTs with libcurl. A full queue drops spans and counts them.
 */
#ifndef SLUICE_TRACE_H
#define SLUICE_TRACE_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"

/* Spans the queue holds before it drops; spans per POST. */
#define SL_TRACE_QUEUE 2048
#define SL_TRACE_BATCH 512

typedef struct sl_trace_req sl_trace_req;

/* What a span says, filled by the exchange; NULL strings are left out. */
typedef struct sl_span_info {
    const char *op;               /* gen_ai.operation.name */
    const char *provider;         /* gen_ai.provider.name */
    const char *request_model;    /* gen_ai.request.model */
    const char *response_model;   /* gen_ai.response.model */
    const char *server_address;   /* client spans: the upstream host */
    const char *error_type;       /* error.type; sets the span status to error */
    const char *request_id;       /* sluice.request_id */
    int stream;                   /* gen_ai.request.stream */
    int http_status;              /* http.response.status_code, 0 = none */
    int have_usage;
    int64_t input, output, cache_read, cache_write;
} sl_span_info;

/* Starts the exporter for `url` (the collector's base; /v1/traces is
 * appended) before workers start. 0, or -1 with err filled. */
int sl_trace_start(const char *url, const char *service_name, char *err, size_t errlen);
/* Sends what is queued and stops the exporter (after workers stopped). */
void sl_trace_stop(void);
int sl_trace_enabled(void);
/* Spans dropped because the queue was full or a POST failed. */
uint64_t sl_trace_dropped(void);

/* A traced request in arena a, continuing `traceparent` (the client's
 * header value, may be NULL) when it is valid; NULL when tracing is off
 * or memory ran out. */
sl_trace_req *sl_trace_begin(sl_arena *a, const char *traceparent, size_t len);
/* A try starts: the previous try's span (if any) is queued, a new client
 * span begins. Returns the header line "traceparent: 00-...-01" to send
 * upstream, in the arena, or NULL. */
const char *sl_trace_try_begin(sl_trace_req *t, sl_arena *a);
/* The try's outcome; its span stays open for usage until the next try or
 * the finish. */
void sl_trace_try_end(sl_trace_req *t, const sl_span_info *info);
/* The request ends: the last try's span gets `usage_from` (the settled
 * usage, may be NULL) and is queued, then the server span. */
void sl_trace_finish(sl_trace_req *t, const sl_span_info *server, const sl_span_info *usage_from);

/* ---- for tests ---------------------------------------------------------- */

/* Parses a traceparent value: 0 with the ids, -1 when invalid. */
int sl_trace_parse_parent(const char *v, size_t n, uint8_t trace_id[16], uint8_t span_id[8]);

#endif
