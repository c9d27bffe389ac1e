/*
 * AWS event-stream framing (application/vnd.amazon.eventstream), the binary
 * stream Bedrock answers InvokeModelWithResponseStream and ConverseStream
 * with. A message is: total length (u32), headers length (u32), CRC32 of
 * those 8 bytes, the headers, the payload, and a CRC32 of everything before
 * it. Bytes go in as they arrive; whole, CRC-checked messages come out.
 * A bad CRC, an impossible length or a malformed header is an error that
 * ends the stream: nothing past a corrupt frame is trusted.
 */
#ifndef SLUICE_AWS_EVENTSTREAM_H
#define SLUICE_AWS_EVENTSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"

/* Largest message accepted (AWS's own limit is 16 MiB). */
#define SL_ES_MAX_MESSAGE (16u * 1024 * 1024)
#define SL_ES_MAX_HEADERS 16

typedef struct sl_es_str {
    const char *p;
    size_t n;
} sl_es_str;

typedef struct sl_es_msg {
    sl_es_str names[SL_ES_MAX_HEADERS], values[SL_ES_MAX_HEADERS]; /* string-typed headers only */
    size_t nheaders;
    const char *payload;
    size_t payload_len;
} sl_es_msg;

typedef struct sl_es_decoder {
    sl_buf buf;
    size_t off;      /* start of the next message in buf */
    int failed;
    char err[96];
} sl_es_decoder;

void sl_es_init(sl_es_decoder *d);
void sl_es_free(sl_es_decoder *d);
/* Adds bytes; 0, or -1 when memory runs out. */
int sl_es_feed(sl_es_decoder *d, const char *p, size_t n);
/* 1 with the next message in *m (valid until the next feed or next call),
 * 0 when more bytes are needed, -1 with d->err on a malformed stream. */
int sl_es_next(sl_es_decoder *d, sl_es_msg *m);
/* Bytes of an unfinished message held (a clean end has none). */
size_t sl_es_pending(const sl_es_decoder *d);
/* The value of header `name` (a string header), or {NULL, 0}. */
sl_es_str sl_es_header(const sl_es_msg *m, const char *name);

uint32_t sl_es_crc32(uint32_t crc, const void *p, size_t n);
/* Standard base64 (padding required, no blanks) into out (room for
 * n / 4 * 3 bytes); the decoded length, or -1. */
long sl_es_base64_decode(const char *s, size_t n, unsigned char *out);

#endif
