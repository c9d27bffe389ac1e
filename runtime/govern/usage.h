/*
 * Token usage as providers report it, read from a complete JSON response
 * or observed on an SSE stream as it passes through (without changing a
 * byte of it). OpenAI, Anthropic and Gemini shapes are understood; what a
 * stream reports last wins, because every protocol sends cumulative totals.
 */
#ifndef SLUICE_USAGE_H
#define SLUICE_USAGE_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "translate/sse.h"

typedef struct sl_usage_counts {
    int64_t input;        /* uncached input tokens */
    int64_t output;
    int64_t cache_read;
    int64_t cache_write;
    int64_t reasoning;    /* the part of output spent thinking, when the provider says
                           * (reported to Responses clients; billed inside output) */
    int have;             /* the provider reported usage */
} sl_usage_counts;

/* The one byte-based token estimate (about four bytes of JSON per token),
 * used wherever a provider reported nothing: charges for cut streams and
 * unreported usage, the mock's counts. */
int64_t sl_usage_estimate_tokens(size_t bytes);

/* From a complete response body (any protocol). */
void sl_usage_from_body(const char *body, size_t len, sl_usage_counts *u);

/* Stream observer: feed bytes as they are relayed. */
typedef struct sl_usage_stream {
    sl_sse_lines lines;   /* the shared line splitter (translate/sse.h) */
    sl_usage_counts u;
    int done;             /* saw a terminal event ([DONE] / message_stop) */
    int64_t events;       /* data lines seen: a floor for output tokens */
    int skip_blank;       /* relay: the event we dropped ends at the next blank line */
    int failed;           /* a line went over the cap: every later call fails */
} sl_usage_stream;

/* Observes bytes relayed by someone else. 0, or -1 when a line holds more
 * than SL_SSE_MAX_LINE bytes before its newline (or memory ran out): the
 * stream is not a sane SSE stream and the caller ends it with an error.
 * Once -1, always -1. */
int sl_usage_stream_feed(sl_usage_stream *s, const char *p, size_t n);
/* Like feed, but also copies the stream to `keep` line by line, leaving
 * out the usage-only chunk (`"choices":[]` with `usage`) that sluice asked
 * an OpenAI upstream for on behalf of a client that did not. Bytes of an
 * unfinished line are held until its newline arrives, which is why the
 * line cap matters here most. Returns as feed; on -1 nothing more of the
 * stream should be sent. */
int sl_usage_stream_relay(sl_usage_stream *s, const char *p, size_t n, sl_buf *keep);
/* As relay, but without copying what needs no change: 1 when the client
 * gets p/n exactly as it is (keep untouched), 0 when keep holds what it
 * gets instead, -1 as relay. */
int sl_usage_stream_strip(sl_usage_stream *s, const char *p, size_t n, sl_buf *keep);
void sl_usage_stream_free(sl_usage_stream *s);

/* input + output + cache read + cache write, each clamped at >= 0, the sum
 * saturating at INT64_MAX: the token count budgets and rate limits use. */
int64_t sl_usage_total(const sl_usage_counts *u);

/* Interprets one usage JSON object in either shape (exposed for tests). */
struct json_t;
void sl_usage_from_json(struct json_t *usage, sl_usage_counts *u);

#endif
