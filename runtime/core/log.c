/*
 * stderr logger. Formats into a stack buffer and writes once, so concurrent
 * workers produce whole lines; long lines are truncated rather than split.
 */
#include "core/log.h"
#include "core/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

sl_log_level sl_log_threshold = SL_LOG_INFO;
int sl_log_access = 1;

static const char *level_name[] = {"error", "warn", "info", "debug"};

int sl_log_time(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000);
}

static int stamp(char *out, size_t n)
{
    int k = sl_log_time(out, n - 1);
    out[k++] = ' ';
    out[k] = '\0';
    return k;
}

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(STDERR_FILENO, p, n);
        if (w <= 0)
            return;
        p += w;
        n -= (size_t)w;
    }
}

void sl_log(sl_log_level level, const char *fmt, ...)
{
    if (level > sl_log_threshold)
        return;
    char line[2048];
    int n = stamp(line, sizeof line);
    n += snprintf(line + n, sizeof line - (size_t)n, "%s: ", level_name[level]);
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = (int)sizeof line - 2;
    line[n++] = '\n';
    write_all(line, (size_t)n);
}

size_t sl_log_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (cap == 0)
        return 0;
    size_t o = 0, i = 0;
    while (i < len) {
        unsigned char c = (unsigned char)src[i];
        size_t k = sl_utf8_seq_len(src + i, len - i);
        /* C1 controls are two bytes in UTF-8 (C2 80..C2 9F); some
         * terminals act on them (C2 9B is CSI), so they are escaped too. */
        int c1 = k == 2 && c == 0xC2 && (unsigned char)src[i + 1] < 0xA0;
        int esc = k == 0 || c1 || (k == 1 && (c < 0x21 || c == 0x7F || c == '"' || c == '\\'));
        size_t need = esc ? (c1 ? 8 : 4) : k;
        if (o + need >= cap)
            break;
        if (esc) {
            for (size_t j = 0; j < (c1 ? 2u : 1u); j++) {
                unsigned char b = (unsigned char)src[i + j];
                dst[o++] = '\\';
                dst[o++] = 'x';
                dst[o++] = hex[b >> 4];
                dst[o++] = hex[b & 15];
            }
            i += c1 ? 2 : 1;
        } else {
            for (size_t j = 0; j < k; j++)
                dst[o++] = src[i + j];
            i += k;
        }
    }
    dst[o] = '\0';
    return o;
}
