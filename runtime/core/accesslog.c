/*
 * Access-log formatting and the log file (see accesslog.h). Each line is
 * built in a caller's buffer and written with one write(2), so lines from
 * several workers never interleave; the descriptor number never changes
 * after set-up, reopening replaces the file behind it with dup2(2).
 */
#define _GNU_SOURCE /* dup3 */
#include "core/accesslog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/money.h"
#include "core/utf8.h"

/* Client-supplied strings are cut here before escaping: with 6 bytes per
 * escaped byte, every field of a line still fits SL_ACCESS_LINE_MAX. */
#define FIELD_MAX 200

static sl_access_format format = SL_ACCESS_TEXT;
static int log_fd = STDERR_FILENO;
static char log_path[4096];

typedef struct out {
    char *p;
    size_t len, cap;
} out;

static void put(out *o, const char *s, size_t n)
{
    if (o->len + n >= o->cap)
        n = o->len < o->cap - 1 ? o->cap - 1 - o->len : 0;
    memcpy(o->p + o->len, s, n);
    o->len += n;
    o->p[o->len] = '\0';
}

static void putf(out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void putf(out *o, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n > 0)
        put(o, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

static size_t cut(size_t n) { return n > FIELD_MAX ? FIELD_MAX : n; }

/* ---- text ------------------------------------------------------------------- */

static void text_field(out *o, const char *name, const char *v)
{
    char esc[SL_LOG_ESCAPED_MAX(FIELD_MAX)];
    if (!v)
        v = "-";
    sl_log_escape(esc, sizeof esc, v, cut(strlen(v)));
    putf(o, " %s=", name);
    put(o, esc, strlen(esc));
}

size_t sl_access_format_text(char *buf, const char *stamp, const sl_access_record *r)
{
    out o = {buf, 0, SL_ACCESS_LINE_MAX};
    buf[0] = '\0';
    char path[SL_LOG_ESCAPED_MAX(FIELD_MAX)];
    sl_log_escape(path, sizeof path, r->path ? r->path : "-", r->path ? cut(r->path_len) : 1);
    putf(&o, "%s %s ", stamp, r->peer ? r->peer : "-");
    put(&o, r->method ? r->method : "-", r->method ? cut(r->method_len) : 1);
    put(&o, " ", 1);
    put(&o, path, strlen(path));
    putf(&o, " %d", r->status);
    text_field(&o, "model", r->model);
    text_field(&o, "provider", r->provider);
    text_field(&o, "upstream_model", r->model ? r->upstream_model : NULL);
    putf(&o, " attempts=%d ms=%.1f", r->attempts, r->ms);
    if (r->cache)
        text_field(&o, "cache", r->cache);
    if (r->key)
        text_field(&o, "key", r->key);
    text_field(&o, "request_id", r->request_id);
    put(&o, "\n", 1);
    if (o.len && o.p[o.len - 1] != '\n')
        o.p[o.len - 1] = '\n';
    return o.len;
}

/* ---- JSON ------------------------------------------------------------------- */

size_t sl_access_json_escape(char *dst, size_t cap, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    if (cap == 0)
        return 0;
    size_t o = 0, i = 0;
    while (i < n) {
        unsigned char c = (unsigned char)s[i];
        size_t k = sl_utf8_seq_len(s + i, n - i);
        char tmp[8];
        size_t tn = 0;
        unsigned cp = 0;
        if (k == 2)
            cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[i + 1] & 0x3Fu);
        if (k == 0) {
            memcpy(tmp, "\xef\xbf\xbd", 3); /* U+FFFD for the byte */
            tn = 3;
            k = 1;
        } else if (k == 1 && (c == '"' || c == '\\')) {
            tmp[0] = '\\';
            tmp[1] = (char)c;
            tn = 2;
        } else if (k == 1 && c == '\n') {
            memcpy(tmp, "\\n", 2), tn = 2;
        } else if (k == 1 && c == '\t') {
            memcpy(tmp, "\\t", 2), tn = 2;
        } else if (k == 1 && c == '\r') {
            memcpy(tmp, "\\r", 2), tn = 2;
        } else if ((k == 1 && (c < 0x20 || c == 0x7F)) || (k == 2 && cp < 0xA0)) {
            cp = k == 1 ? c : cp;
            memcpy(tmp, "\\u00", 4);
            tmp[4] = hex[cp >> 4];
            tmp[5] = hex[cp & 15];
            tn = 6;
        } else if (k == 3 && c == 0xE2 && (unsigned char)s[i + 1] == 0x80 &&
                   ((unsigned char)s[i + 2] == 0xA8 || (unsigned char)s[i + 2] == 0xA9)) {
            memcpy(tmp, (unsigned char)s[i + 2] == 0xA8 ? "\\u2028" : "\\u2029", 6);
            tn = 6;
        } else {
            memcpy(tmp, s + i, k);
            tn = k;
        }
        if (o + tn >= cap)
            break;
        memcpy(dst + o, tmp, tn);
        o += tn;
        i += k;
    }
    dst[o] = '\0';
    return o;
}

static void json_str(out *o, int *first, const char *name, const char *v, size_t n)
{
    char esc[6 * FIELD_MAX + 1];
    sl_access_json_escape(esc, sizeof esc, v, cut(n));
    putf(o, "%s\"%s\":\"", *first ? "" : ",", name);
    put(o, esc, strlen(esc));
    put(o, "\"", 1);
    *first = 0;
}

static void json_opt(out *o, int *first, const char *name, const char *v)
{
    if (v)
        json_str(o, first, name, v, strlen(v));
}

static void json_num(out *o, int *first, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void json_num(out *o, int *first, const char *name, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    putf(o, "%s\"%s\":%s", *first ? "" : ",", name, tmp);
    *first = 0;
}

size_t sl_access_format_json(char *buf, const char *stamp, const sl_access_record *r)
{
    out o = {buf, 0, SL_ACCESS_LINE_MAX - 2}; /* room for "}\n" */
    int first = 1;
    buf[0] = '\0';
    put(&o, "{", 1);
    json_opt(&o, &first, "time", stamp);
    json_opt(&o, &first, "request_id", r->request_id);
    json_opt(&o, &first, "peer", r->peer);
    if (r->method)
        json_str(&o, &first, "method", r->method, r->method_len);
    if (r->path)
        json_str(&o, &first, "path", r->path, r->path_len);
    json_opt(&o, &first, "key", r->key);
    json_opt(&o, &first, "team", r->team);
    json_opt(&o, &first, "surface", r->surface);
    json_opt(&o, &first, "model", r->model);
    json_opt(&o, &first, "entry", r->entry);
    json_opt(&o, &first, "provider", r->provider);
    json_opt(&o, &first, "upstream_model", r->upstream_model);
    json_num(&o, &first, "stream", "%s", r->stream ? "true" : "false");
    json_num(&o, &first, "attempts", "%d", r->attempts);
    json_opt(&o, &first, "cache", r->cache);
    json_num(&o, &first, "status", "%d", r->status);
    if (r->have_usage) {
        char usd[SL_MONEY_MAX];
        if (sl_money_format(r->cost_micros, usd, sizeof usd) < 0)
            snprintf(usd, sizeof usd, "0");
        json_num(&o, &first, "tokens_in", "%" PRId64, r->input);
        json_num(&o, &first, "tokens_out", "%" PRId64, r->output);
        json_num(&o, &first, "tokens_cache_read", "%" PRId64, r->cache_read);
        json_num(&o, &first, "tokens_cache_write", "%" PRId64, r->cache_write);
        /* A JSON number, exact to the micro-USD as the ledger has it. */
        json_num(&o, &first, "cost_usd", "%s", usd);
    }
    json_num(&o, &first, "duration_ms", "%.3f", r->ms);
    json_num(&o, &first, "overhead_ms", "%.3f", r->overhead_ms);
    json_num(&o, &first, "upstream_ms", "%.3f", r->upstream_ms);
    if (r->ttft_ms >= 0)
        json_num(&o, &first, "ttft_ms", "%.3f", r->ttft_ms);
    json_opt(&o, &first, "error_type", r->error_type);
    o.cap = SL_ACCESS_LINE_MAX;
    put(&o, "}\n", 2);
    return o.len;
}

/* ---- the file ----------------------------------------------------------------- */

static int open_log(const char *path)
{
    return open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
}

int sl_access_setup(sl_access_format fmt, const char *path, char *err, size_t errlen)
{
    format = fmt;
    if (!path)
        return 0;
    if (strlen(path) >= sizeof log_path) {
        snprintf(err, errlen, "--access-log path too long");
        return -1;
    }
    int fd = open_log(path);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open access log %s: %s", path, strerror(errno));
        return -1;
    }
    memcpy(log_path, path, strlen(path) + 1);
    log_fd = fd;
    return 0;
}

sl_access_format sl_access_get_format(void) { return format; }

void sl_access_reopen(void)
{
    if (log_fd == STDERR_FILENO || !log_path[0])
        return;
    int saved = errno;
    int fd = open_log(log_path);
    if (fd >= 0) {
        dup3(fd, log_fd, O_CLOEXEC);
        close(fd);
    }
    errno = saved;
}

void sl_access_write(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(log_fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}
