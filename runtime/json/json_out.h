/*
 * Serialising jansson values without its json_dumps, which (jansson 2.14)
 * can return truncated, invalid JSON instead of NULL when an allocation
 * fails while dumping an object key. json_dumpb into a buffer of the exact
 * size either writes everything or reports failure.
 */
#ifndef SLUICE_JSON_OUT_H
#define SLUICE_JSON_OUT_H

#include <jansson.h>

/* malloc'd NUL-terminated JSON, or NULL (out of memory). */
char *sl_json_dumps(const json_t *j, size_t flags);

/* Installs jansson's allocator: malloc with a few retries. jansson 2.14's
 * lexer ignores a failed buffer growth and then writes past the buffer
 * (heap corruption, reproduced under ASan), so a transient allocation
 * failure must not reach it; a lasting one still does, as for any
 * jansson user. Call once before any thread starts. */
void sl_json_init(void);

#endif
