/*
 * Incremental Server-Sent Events parser for upstream streams. Bytes arrive
 * in whatever pieces the network delivers; complete events are handed to a
 * callback with their `event:` name and their `data:` lines joined by
 * newlines. Line endings may be CRLF, LF or CR, even split across feeds.
 * An event larger than the cap is an error rather than unbounded memory.
 */
#ifndef SLUICE_SSE_H
#define SLUICE_SSE_H

#include <stddef.h>

#include "core/buf.h"

/* The most bytes one SSE line may hold before its line ending, and one
 * event (its name and data lines together) in this parser: every stream
 * reader in sluice (this parser, the usage observer and relay, the legacy
 * rewriter) refuses more, so an upstream that never sends a newline costs
 * at most this much memory per request instead of all of it. */
#define SL_SSE_MAX_LINE (1024u * 1024u)

/* The one SSE line splitter: every stream reader (this parser, the usage
 * observer and relay) splits lines here. Endings may be CRLF, LF or CR,
 * even split across feeds; a UTF-8 byte-order mark before the first line
 * is skipped; a line longer than max_line before its ending is an error.
 * Zero-initialised with max_line 0 means SL_SSE_MAX_LINE. */
typedef struct sl_sse_lines {
    sl_buf line;         /* the current, unfinished line */
    size_t max_line;
    int after_cr;        /* last byte was CR: a following LF is not a new line */
    int started;         /* past a possible leading byte-order mark */
    int failed;          /* over the cap or out of memory: stays failed */
} sl_sse_lines;

/* Called with each complete line, without its ending. Return 0 to go on,
 * anything else to stop: the feed then returns that value. */
typedef int (*sl_sse_line_cb)(void *ctx, const char *line, size_t len);

/* 0 ok; -1 a line over the cap or out of memory (final: the buffered
 * bytes are released and every later call returns -1); else the
 * callback's value (-1 from the callback is final too). */
int sl_sse_lines_feed(sl_sse_lines *s, const char *buf, size_t n, sl_sse_line_cb cb, void *ctx);
/* End of input: an unfinished last line is still delivered. */
int sl_sse_lines_finish(sl_sse_lines *s, sl_sse_line_cb cb, void *ctx);
void sl_sse_lines_free(sl_sse_lines *s);

typedef struct sl_sse_event {
    const char *event;   /* "" when the event had no event: line */
    size_t event_len;
    const char *data;    /* data lines joined with '\n', NUL-terminated */
    size_t data_len;
} sl_sse_event;

/* Return non-zero to stop parsing; sl_sse_feed then returns that value. */
typedef int (*sl_sse_cb)(void *ctx, const sl_sse_event *ev);

typedef struct sl_sse {
    sl_sse_lines lines;
    sl_buf event;
    sl_buf data;
    size_t max_event;
    int have_data;       /* a data: line was seen (even an empty one) */
    int failed;          /* over the cap or out of memory: stays failed */
    sl_sse_cb cb;        /* during a feed */
    void *ctx;
} sl_sse;

/* max_event 0 means SL_SSE_MAX_LINE. */
void sl_sse_init(sl_sse *p, size_t max_event);
/* 0 ok; -1 line or event over the cap, or out of memory; else the
 * callback's value. -1 (the parser's or the callback's) is final: the
 * buffered bytes are released and every later feed or finish returns -1. */
int sl_sse_feed(sl_sse *p, const char *buf, size_t n, sl_sse_cb cb, void *ctx);
/* End of input: an event whose closing blank line never came is still
 * dispatched (upstreams that close right after the last data line).
 * Returns as sl_sse_feed. */
int sl_sse_finish(sl_sse *p, sl_sse_cb cb, void *ctx);
/* Bytes held in an unfinished event. */
size_t sl_sse_pending(const sl_sse *p);
void sl_sse_free(sl_sse *p);

#endif
