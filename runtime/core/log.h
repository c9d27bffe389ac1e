/*
 * Logging to stderr: one line per event, written with a single write(2) so
 * lines from several worker threads never interleave. Callers must not pass
 * secrets: keys are identified by name only, never by value.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

#include <stddef.h>

typedef enum sl_log_level { SL_LOG_ERROR = 0, SL_LOG_WARN = 1, SL_LOG_INFO = 2, SL_LOG_DEBUG = 3 } sl_log_level;

extern sl_log_level sl_log_threshold;
extern int sl_log_access; /* 1: one access line per request */

void sl_log(sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The current UTC time as "2025-01-31T12:34:56.789Z" (24 bytes and a
 * NUL fit SL_LOG_TIME_MAX); returns its length. */
int sl_log_time(char *out, size_t n);
#define SL_LOG_TIME_MAX 32

/* Copies src[0..len) into dst for a log line, so a client-supplied field
 * (model name, path, header) cannot forge lines or fields or drive a
 * terminal: control bytes (C0, DEL and the C1 range U+0080..U+009F), space,
 * '"', '\\' and bytes that are not well-formed UTF-8 become \xNN (lowercase
 * hex; one byte each, so the escape is reversible); other UTF-8 passes
 * as is. dst is always NUL-terminated when cap > 0 and is cut only between
 * whole characters or escapes. Returns the length written (without NUL).
 * SL_LOG_ESCAPED_MAX(len) bytes always hold the whole escaped field. */
size_t sl_log_escape(char *dst, size_t cap, const char *src, size_t len);
#define SL_LOG_ESCAPED_MAX(len) ((len) * 4 + 1)

#define sl_log_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)
#define sl_log_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_log_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)

#endif
