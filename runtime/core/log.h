/*
 * Logging to stderr: one line per event, written with a single write(2) so
 * lines from several worker threads never interleave. Callers must not pass
 * secrets: keys are identified by name only, never by value.
 */
#ifndef SLUICE_LOG_H
#define SLUICE_LOG_H

typedef enum sl_log_level { SL_LOG_ERROR = 0, SL_LOG_WARN = 1, SL_LOG_INFO = 2, SL_LOG_DEBUG = 3 } sl_log_level;

extern sl_log_level sl_log_threshold;
extern int sl_log_access; /* 1: one access line per request */

void sl_log(sl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* An access-log line, already formatted by the caller (no newline). */
void sl_log_access_line(const char *line, int len);

#define sl_log_error(...) sl_log(SL_LOG_ERROR, __VA_ARGS__)
#define sl_log_warn(...) sl_log(SL_LOG_WARN, __VA_ARGS__)
#define sl_log_info(...) sl_log(SL_LOG_INFO, __VA_ARGS__)

#endif
