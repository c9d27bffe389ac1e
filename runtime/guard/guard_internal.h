/*
 * What the guard module's files share: the per-request state. The engine
 * (engine.c) owns the redacted values and the scanning; the JSON and
 * stream glue (body.c) adds the per-try stream channels.
 */
#ifndef SLUICE_GUARD_INTERNAL_H
#define SLUICE_GUARD_INTERNAL_H

#include "guard/guard.h"
#include "translate/sse.h"

typedef struct sl_guard_value {
    uint8_t type;        /* SL_GDET_* or SL_GDET_COUNT for deny patterns */
    uint16_t num;        /* the N of [TYPE_N] */
    char *text;          /* the original, malloc'd; zeroed before free */
    size_t len;
} sl_guard_value;

typedef struct sl_guard_hit {
    size_t start, len;
    uint32_t rail;
    int det;             /* SL_GDET_* or SL_GDET_DENY + k */
} sl_guard_hit;

typedef struct sl_guard_chan sl_guard_chan;

struct sl_guard_req {
    const sl_guard_spec *spec;
    uint32_t rails;
    uint32_t fired;
    sl_guard_value values[SL_GUARD_MAX_VALUES];
    size_t nvalues;
    uint16_t next_num[SL_GDET_COUNT + 1];
    char msg[256];
    sl_buf work;          /* the text being scanned, NUL-terminated, writable */
    sl_guard_hit *hits;
    size_t nhits, caphits;
    /* Streams (body.c), reset per try. */
    sl_sse sse;
    sl_guard_chan *chans;
    int transform;
    int failed;
};

/* The counter index of a detector or deny rule. */
static inline int sl_guard_kind(int det)
{
    return det >= SL_GDET_DENY ? SL_GDET_COUNT : det;
}

void sl_guard_stream_reset(sl_guard_req *g);

#endif
