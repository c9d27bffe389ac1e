/*
 * Byte-level views of JSON documents that jansson has already validated.
 * jansson parses and builds; these functions only *locate* spans in the
 * original bytes, so pass-through requests keep every byte the client sent
 * (number formatting, key order, unknown fields) except the one value the
 * gateway must change.
 */
#ifndef SLUICE_JSON_SCAN_H
#define SLUICE_JSON_SCAN_H

#include <stddef.h>

#include "core/arena.h"

/* Finds the value of top-level member `key` in the object at p[0..n):
 * on success *start and *end delimit the raw value (quotes included for
 * strings) and 0 is returned; -1 when absent or when the key is spelled
 * with escapes (callers then fall back to re-serialising). */
int sl_json_find_member(const char *p, size_t n, const char *key, size_t *start, size_t *end);

/* A JSON string literal (with quotes) for s[0..n), allocated in the arena. */
char *sl_json_quote(sl_arena *a, const char *s, size_t n);

/* Returns a copy of p[0..n) with the span [start,end) replaced by
 * repl[0..rn); NULL when memory runs out. *out_len gets the new length. */
char *sl_json_splice(sl_arena *a, const char *p, size_t n, size_t start, size_t end,
                     const char *repl, size_t rn, size_t *out_len);

#endif
