/*
 * Unit parsers (see units.h). Decimal fractions are parsed digit by digit
 * into scaled integers: `0.30` USD must be exactly 300000 micro-USD, and
 * `1.5s` exactly 1500 ms, on every machine.
 */
#include "units.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* Parses `digits[.digits]` at the start of s into value * 10^scale; fails
 * on more than `scale` decimals unless they are zeros. Returns characters
 * consumed, 0 when there is no number, -1 on overflow/too precise (with a
 * reason). */
static long parse_decimal(const char *s, size_t len, int scale, uint64_t limit,
                          uint64_t *out, char *err, size_t errlen)
{
    size_t i = 0;
    uint64_t v = 0;
    bool any = false;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (v > (limit - (uint64_t)(s[i] - '0')) / 10) {
            snprintf(err, errlen, "too large");
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
        any = true;
    }
    int decimals = 0;
    if (i < len && s[i] == '.' && any) {
        size_t dot = i++;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (decimals >= scale) {
                if (s[i] != '0') {
                    snprintf(err, errlen, "too precise");
                    return -1;
                }
            } else {
                if (v > (limit - (uint64_t)(s[i] - '0')) / 10) {
                    snprintf(err, errlen, "too large");
                    return -1;
                }
                v = v * 10 + (uint64_t)(s[i] - '0');
                decimals++;
            }
            i++;
        }
        if (i == dot + 1)
            return 0; /* "5." */
    }
    if (!any)
        return 0;
    for (; decimals < scale; decimals++) {
        if (v > limit / 10) {
            snprintf(err, errlen, "too large");
            return -1;
        }
        v *= 10;
    }
    *out = v;
    return (long)i;
}

int slc_parse_duration_ms(const char *s, size_t len, uint32_t *out, char *err, size_t errlen)
{
    /* Fractions are kept to 3 decimals of the unit, enough for ms in s. */
    uint64_t v;
    char why[64] = "";
    long n = parse_decimal(s, len, 3, UINT64_MAX / 4, &v, why, sizeof why);
    if (n < 0 && strcmp(why, "too precise") == 0) {
        snprintf(err, errlen, "not a whole number of milliseconds");
        return -1;
    }
    if (n < 0) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    if (n == 0) {
        snprintf(err, errlen, "expected a number with a unit, like 200ms, 2s, 1m or 1h");
        return -1;
    }
    const char *u = s + n;
    size_t ulen = len - (size_t)n;
    uint64_t mult; /* in thousandths of a millisecond */
    if (ulen == 0) {
        snprintf(err, errlen, "a duration needs a unit (ms, s, m or h)");
        return -1;
    } else if (ulen == 2 && memcmp(u, "ms", 2) == 0) {
        mult = 1;
    } else if (ulen == 1 && *u == 's') {
        mult = 1000;
    } else if (ulen == 1 && *u == 'm') {
        mult = 60 * 1000;
    } else if (ulen == 1 && *u == 'h') {
        mult = 3600 * 1000;
    } else {
        snprintf(err, errlen, "unknown unit '%.*s' (use ms, s, m or h)", (int)ulen, u);
        return -1;
    }
    if (v > UINT64_MAX / mult) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    uint64_t thousandths = v * mult;
    if (thousandths % 1000) {
        snprintf(err, errlen, "not a whole number of milliseconds");
        return -1;
    }
    uint64_t ms = thousandths / 1000;
    if (ms > UINT32_MAX) {
        snprintf(err, errlen, "too large (at most 1193h)");
        return -1;
    }
    *out = (uint32_t)ms;
    return 0;
}

int slc_parse_money_micros(const char *s, size_t len, int64_t *out, char *err, size_t errlen)
{
    if (len && s[0] == '-') {
        snprintf(err, errlen, "must not be negative");
        return -1;
    }
    uint64_t v;
    char why[64] = "";
    long n = parse_decimal(s, len, 6, 999999999999999999ull, &v, why, sizeof why);
    if (n < 0 && strcmp(why, "too precise") == 0) {
        snprintf(err, errlen, "more than 6 decimal places");
        return -1;
    }
    if (n < 0 || (n > 0 && v >= 1000000000000ull * 1000000ull)) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    if (n <= 0 || (size_t)n != len) {
        snprintf(err, errlen, "expected a plain decimal number of USD, like 20 or 0.30");
        return -1;
    }
    *out = (int64_t)v;
    return 0;
}

int slc_parse_size(const char *s, size_t len, uint64_t *out, char *err, size_t errlen)
{
    size_t i = 0;
    uint64_t v = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
        if (v > (UINT64_MAX - 9) / 10) {
            snprintf(err, errlen, "too large");
            return -1;
        }
        v = v * 10 + (uint64_t)(s[i] - '0');
        i++;
    }
    if (i == 0) {
        snprintf(err, errlen, "expected a whole number of bytes with an optional unit, like 16KiB");
        return -1;
    }
    const char *u = s + i;
    size_t ulen = len - i;
    uint64_t mult;
    if (ulen == 0 || (ulen == 1 && *u == 'B'))
        mult = 1;
    else if (ulen == 3 && memcmp(u, "KiB", 3) == 0)
        mult = 1024;
    else if (ulen == 3 && memcmp(u, "MiB", 3) == 0)
        mult = 1024 * 1024;
    else if (ulen == 3 && memcmp(u, "GiB", 3) == 0)
        mult = 1024ull * 1024 * 1024;
    else {
        snprintf(err, errlen, "unknown unit '%.*s' (use B, KiB, MiB or GiB)", (int)ulen, u);
        return -1;
    }
    if (v > UINT64_MAX / mult) {
        snprintf(err, errlen, "too large");
        return -1;
    }
    *out = v * mult;
    return 0;
}

int slc_parse_int(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (len && (s[0] == '-' || s[0] == '+')) {
        neg = s[0] == '-';
        i = 1;
    }
    if (i == len)
        return -1;
    uint64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > ((uint64_t)INT64_MAX - 9) / 10)
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = neg ? -(int64_t)v : (int64_t)v;
    return 0;
}

static bool digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
}

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int slc_parse_time_unix(const char *s, size_t len, int64_t *out, char *err, size_t errlen)
{
    int y, mo, d, h = 0, mi = 0, sec = 0;
    const char *shape = "expected a date like 2027-01-01 or 2027-01-01T00:00:00Z";
    if (len < 10 || !digits(s, 4, &y) || s[4] != '-' || !digits(s + 5, 2, &mo) ||
        s[7] != '-' || !digits(s + 8, 2, &d)) {
        snprintf(err, errlen, "%s", shape);
        return -1;
    }
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || (mo == 2 && d == 29 && !leap)) {
        snprintf(err, errlen, "no such date");
        return -1;
    }
    int64_t offset = 0;
    if (len > 10) {
        size_t i = 11;
        if ((s[10] != 'T' && s[10] != 't' && s[10] != ' ') || len < 19 ||
            !digits(s + 11, 2, &h) || s[13] != ':' || !digits(s + 14, 2, &mi) ||
            s[16] != ':' || !digits(s + 17, 2, &sec)) {
            snprintf(err, errlen, "%s", shape);
            return -1;
        }
        i = 19;
        if (i < len && s[i] == '.') {
            i++;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
        }
        int oh, om;
        if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
            offset = 0;
        } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits(s + i + 1, 2, &oh) &&
                   s[i + 3] == ':' && digits(s + i + 4, 2, &om) && oh < 24 && om < 60) {
            offset = (int64_t)(oh * 3600 + om * 60) * (s[i] == '-' ? -1 : 1);
        } else {
            snprintf(err, errlen, "a timestamp needs a zone: Z or +HH:MM");
            return -1;
        }
        if (h > 23 || mi > 59 || sec > 60) {
            snprintf(err, errlen, "no such time of day");
            return -1;
        }
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}
