/*
 * A validating scan of a request body that builds nothing: it checks the
 * bytes are one JSON object jansson would accept (as sluice parses bodies:
 * JSON_REJECT_DUPLICATES) and records where the top-level members a
 * caller names are. A same-protocol pass-through needs only a few of them
 * (model, stream, the output limit); parsing the whole body into jansson
 * values cost far more than everything else sluice does to it, and grew
 * with the prompt.
 *
 * It answers only what it can decide cheaply. Anything else (invalid JSON,
 * escaped member names, numbers near the limits of what jansson stores,
 * UTF-16 surrogate escapes, deep nesting, objects with very many members)
 * gets SL_JSON_TOP_UNSURE, and the caller parses with jansson as before,
 * which also gives the client jansson's error message.
 */
#ifndef SLUICE_JSON_TOP_H
#define SLUICE_JSON_TOP_H

#include <stddef.h>

typedef enum { SL_JSON_TOP_UNSURE = 0, SL_JSON_TOP_OK = 1 } sl_json_top_result;

/* A raw value in the scanned bytes: p[start..end), quotes included for
 * strings; end == 0 when the member is absent. */
typedef struct sl_json_span {
    size_t start, end;
} sl_json_span;

/* Scans p[0..n). On SL_JSON_TOP_OK, out[i] is the span of the top-level
 * member names[i] (or {0, 0}); on SL_JSON_TOP_UNSURE, out is undefined. */
sl_json_top_result sl_json_top_scan(const char *p, size_t n, const char *const *names, size_t nnames,
                                    sl_json_span *out);

/* For a span holding a string without escapes: its content (no quotes).
 * 0, or -1 when the value is not such a string. */
int sl_json_span_plain_string(const char *p, sl_json_span s, const char **str, size_t *len);

/* 1 for a span holding `true`, else 0. */
int sl_json_span_is_true(const char *p, sl_json_span s);

#endif
