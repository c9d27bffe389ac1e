/*
 * stderr logger. Formats into a stack buffer and writes once, so concurrent
 * workers produce whole lines; long lines are truncated rather than split.
 */
#include "core/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

sl_log_level sl_log_threshold = SL_LOG_INFO;
int sl_log_access = 1;

static const char *level_name[] = {"error", "warn", "info", "debug"};

static int stamp(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    return snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ ", tm.tm_year + 1900,
                    tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                    ts.tv_nsec / 1000000);
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

void sl_log_access_line(const char *text, int len)
{
    if (!sl_log_access)
        return;
    char line[1024];
    int n = stamp(line, sizeof line);
    if (len > (int)sizeof line - n - 1)
        len = (int)sizeof line - n - 1;
    memcpy(line + n, text, (size_t)len);
    n += len;
    line[n++] = '\n';
    write_all(line, (size_t)n);
}
