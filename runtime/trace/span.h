/*
 * The span record shared by trace.c (which fills spans on the event loop)
 * and export.c (which queues, encodes and sends them). Fixed size with
 * the strings copied in, so a queued span owns nothing and the loop never
 * allocates for it.
 */
#ifndef SLUICE_TRACE_SPAN_H
#define SLUICE_TRACE_SPAN_H

#include <stdint.h>

#define SL_SPAN_ATTRS 18
#define SL_SPAN_STR 96

enum { SL_ATTR_STR, SL_ATTR_INT, SL_ATTR_BOOL };
enum { SL_SPAN_SERVER = 2, SL_SPAN_CLIENT = 3 }; /* OTLP SpanKind values */

typedef struct sl_span_attr {
    const char *key; /* a static string */
    int type;
    int64_t i;
    char s[SL_SPAN_STR];
} sl_span_attr;

typedef struct sl_span {
    uint8_t trace_id[16], span_id[8], parent_id[8];
    int has_parent;
    int kind;
    int error;
    uint64_t start_ns, end_ns;
    char name[2 * SL_SPAN_STR];
    int nattr;
    sl_span_attr attr[SL_SPAN_ATTRS];
} sl_span;

/* export.c: copies s into the queue, or counts it dropped. */
void sl_trace_queue(const sl_span *s);

#endif
