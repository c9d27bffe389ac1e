/*
 * The access log: one record per request, written as a text line (the
 * default, the format sluice always had) or as one JSON object per line
 * for log shippers, to stderr or to a file that logrotate can move away
 * (SIGHUP reopens it). The formatters are pure functions of a flat record
 * so they are tested without a gateway; the exchange fills the record.
 * Every string a client chose (path, model, request id) is escaped; keys
 * appear by name only, prompts never.
 */
#ifndef SLUICE_ACCESSLOG_H
#define SLUICE_ACCESSLOG_H

#include <stddef.h>
#include <stdint.h>

typedef enum sl_access_format { SL_ACCESS_TEXT = 0, SL_ACCESS_JSON = 1 } sl_access_format;

/* NULL strings are absent fields ("-" in text, omitted in JSON). */
typedef struct sl_access_record {
    const char *request_id;
    const char *peer;
    const char *method;
    size_t method_len;
    const char *path;
    size_t path_len;
    const char *key, *team;
    const char *surface;
    const char *model;           /* what the client asked for */
    const char *entry;           /* the model entry that matched */
    const char *provider;
    const char *upstream_model;
    const char *error_type;
    const char *cache;           /* hit, miss or bypass under a cache rule, else NULL */
    int status;
    int attempts;
    int stream;
    int have_usage;              /* tokens and cost below are meaningful */
    int64_t input, output, cache_read, cache_write;
    int64_t cost_micros;
    double ms, overhead_ms, upstream_ms;
    double ttft_ms;              /* < 0: not a stream */
} sl_access_record;

/* Longest line either formatter writes, newline included. */
#define SL_ACCESS_LINE_MAX 8192

/* Formats r as one line ending in '\n' into out[SL_ACCESS_LINE_MAX];
 * `stamp` is the RFC 3339 time the text format starts with and the JSON
 * "time" field. Client strings are cut at 200 bytes before escaping, so
 * the line always fits. Returns its length. */
size_t sl_access_format_text(char *out, const char *stamp, const sl_access_record *r);
size_t sl_access_format_json(char *out, const char *stamp, const sl_access_record *r);

/* Escapes s[0..n) as the inside of a JSON string: '"', '\\' and controls
 * (C0, DEL, C1) as \uXXXX or the short forms, U+2028/U+2029 as \u escapes
 * (JavaScript line terminators), and each byte that is not well-formed
 * UTF-8 as U+FFFD, so the output is always valid UTF-8 JSON. Writes at
 * most cap - 1 bytes and a NUL, cut only between whole escapes or
 * characters; returns the length. 6 * n + 1 bytes always suffice. */
size_t sl_access_json_escape(char *out, size_t cap, const char *s, size_t n);

/* Process set-up, before workers start. path NULL = stderr. -1 with err
 * filled when the file cannot be opened. */
int sl_access_setup(sl_access_format fmt, const char *path, char *err, size_t errlen);
sl_access_format sl_access_get_format(void);
/* Reopens the file (after logrotate renamed it): open(2), dup2(2) over
 * the descriptor writers use, close(2), all async-signal-safe, so a
 * SIGHUP handler may call it and a concurrent write goes to one file or
 * the other, never to a closed descriptor. No-op for stderr. */
void sl_access_reopen(void);
/* Writes one formatted line with a single write(2). */
void sl_access_write(const char *line, size_t len);

#endif
