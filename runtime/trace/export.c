/*
 * The span exporter (see trace.h): a bounded ring of finished spans that
 * workers fill under a short mutex, and one thread that takes up to
 * SL_TRACE_BATCH at a time, encodes them as an OTLP/HTTP JSON
 * ExportTraceServiceRequest and POSTs it with a libcurl easy handle. A
 * slow or absent collector only fills the ring; what does not fit, and
 * what a failed POST carried, is counted as dropped, never retried, so
 * memory stays bounded and the loop never waits.
 */
#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "json/json_out.h"
#include "trace/span.h"
#include "trace/trace.h"

/* A batch waits at most this long for more spans before it is sent. */
#define FLUSH_MS 500

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static sl_span *ring;
static size_t ring_head, ring_count;
static int running, stopping;
static pthread_t thread;
static atomic_uint_fast64_t dropped;
static char *endpoint;
static char *service;

int sl_trace_enabled(void) { return ring != NULL; }
uint64_t sl_trace_dropped(void) { return atomic_load_explicit(&dropped, memory_order_relaxed); }

void sl_trace_queue(const sl_span *s)
{
    if (!ring)
        return;
    pthread_mutex_lock(&mu);
    if (ring_count == SL_TRACE_QUEUE || stopping) {
        pthread_mutex_unlock(&mu);
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        return;
    }
    ring[(ring_head + ring_count) % SL_TRACE_QUEUE] = *s;
    ring_count++;
    if (ring_count >= SL_TRACE_BATCH)
        pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* ---- OTLP JSON (opentelemetry-proto, JSON mapping: ids as hex, 64-bit
 * integers as strings) ----------------------------------------------------- */

static json_t *hexid(const uint8_t *b, size_t n)
{
    static const char d[] = "0123456789abcdef";
    char s[33];
    for (size_t i = 0; i < n; i++) {
        s[2 * i] = d[b[i] >> 4];
        s[2 * i + 1] = d[b[i] & 15];
    }
    s[2 * n] = '\0';
    return json_string(s);
}

static json_t *u64(uint64_t v)
{
    char s[24];
    snprintf(s, sizeof s, "%" PRIu64, v);
    return json_string(s);
}

static json_t *kv_str(const char *k, const char *v)
{
    return json_pack("{s:s, s:{s:s}}", "key", k, "value", "stringValue", v);
}

static json_t *encode_span(const sl_span *s)
{
    json_t *attrs = json_array();
    for (int i = 0; i < s->nattr; i++) {
        const sl_span_attr *a = &s->attr[i];
        json_t *v;
        if (a->type == SL_ATTR_STR)
            v = json_pack("{s:s}", "stringValue", a->s);
        else if (a->type == SL_ATTR_BOOL)
            v = json_pack("{s:b}", "boolValue", (int)a->i);
        else
            v = json_pack("{s:o}", "intValue", u64((uint64_t)a->i));
        json_array_append_new(attrs, json_pack("{s:s, s:o}", "key", a->key, "value", v));
    }
    json_t *j = json_pack("{s:o, s:o, s:s, s:i, s:o, s:o, s:o, s:{s:i}}", "traceId", hexid(s->trace_id, 16),
                          "spanId", hexid(s->span_id, 8), "name", s->name, "kind", s->kind,
                          "startTimeUnixNano", u64(s->start_ns), "endTimeUnixNano", u64(s->end_ns),
                          "attributes", attrs, "status", "code", s->error ? 2 : 0);
    if (j && s->has_parent)
        json_object_set_new(j, "parentSpanId", hexid(s->parent_id, 8));
    return j;
}

static char *encode(const sl_span *spans, size_t n)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, encode_span(&spans[i]));
    json_t *req = json_pack(
        "{s:[{s:{s:[o]}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans", "resource", "attributes",
        kv_str("service.name", service), "scopeSpans", "scope", "name", "sluice", "version",
        SLUICE_VERSION, "spans", arr);
    char *out = req ? sl_json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    return out;
}

static size_t discard(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

static void post(CURL *h, const sl_span *spans, size_t n)
{
    static time_t last_warned;
    char *body = encode(spans, n);
    long status = 0;
    CURLcode rc = CURLE_OUT_OF_MEMORY;
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        free(body);
    }
    if (rc != CURLE_OK || status < 200 || status >= 300) {
        atomic_fetch_add_explicit(&dropped, n, memory_order_relaxed);
        time_t now = time(NULL);
        if (now - last_warned >= 60) { /* a down collector must not flood the log */
            last_warned = now;
            sl_log_warn("traces: export of %zu span(s) failed: %s (status %ld)", n,
                        rc != CURLE_OK ? curl_easy_strerror(rc) : "collector refused", status);
        }
    }
}

static void *exporter(void *arg)
{
    (void)arg;
    sl_span *batch = malloc(sizeof *batch * SL_TRACE_BATCH);
    CURL *h = curl_easy_init();
    struct curl_slist *hdr = curl_slist_append(NULL, "Content-Type: application/json");
    if (h) {
        curl_easy_setopt(h, CURLOPT_URL, endpoint);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    }
    pthread_mutex_lock(&mu);
    for (;;) {
        if (ring_count < SL_TRACE_BATCH && !stopping) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += FLUSH_MS * 1000000L;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&cv, &mu, &ts);
        }
        size_t n = ring_count < SL_TRACE_BATCH ? ring_count : SL_TRACE_BATCH;
        if (n == 0 && stopping)
            break;
        if (n == 0)
            continue;
        for (size_t i = 0; i < n; i++)
            if (batch)
                batch[i] = ring[(ring_head + i) % SL_TRACE_QUEUE];
        ring_head = (ring_head + n) % SL_TRACE_QUEUE;
        ring_count -= n;
        pthread_mutex_unlock(&mu);
        if (batch && h)
            post(h, batch, n);
        else
            atomic_fetch_add_explicit(&dropped, n, memory_order_relaxed);
        pthread_mutex_lock(&mu);
    }
    pthread_mutex_unlock(&mu);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdr);
    free(batch);
    return NULL;
}

int sl_trace_start(const char *url, const char *service_name, char *err, size_t errlen)
{
    size_t n = strlen(url) + sizeof "/v1/traces";
    endpoint = malloc(n);
    service = strdup(service_name ? service_name : "sluice");
    ring = calloc(SL_TRACE_QUEUE, sizeof *ring);
    if (!endpoint || !service || !ring) {
        snprintf(err, errlen, "out of memory for the trace queue");
        goto fail;
    }
    snprintf(endpoint, n, "%s/v1/traces", url);
    stopping = 0;
    if (pthread_create(&thread, NULL, exporter, NULL) != 0) {
        snprintf(err, errlen, "cannot start the trace exporter thread");
        goto fail;
    }
    running = 1;
    return 0;
fail:
    free(ring);
    ring = NULL;
    free(endpoint);
    free(service);
    endpoint = service = NULL;
    return -1;
}

void sl_trace_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mu);
    stopping = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(thread, NULL);
    running = 0;
    free(ring);
    ring = NULL;
    free(endpoint);
    free(service);
    endpoint = service = NULL;
}
