/*
 * The Redis URL parser (see url.h).
 */
#include "state/url.h"

#include <stdio.h>
#include <string.h>

/* Decimal digits only, value <= max; -1 otherwise. */
static int number(const char *s, size_t n, uint32_t max, uint32_t *out)
{
    if (n == 0 || n > 10)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > max)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int sl_redis_url_parse(const char *u, char host[SL_REDIS_HOST_MAX], uint16_t *port, uint32_t *db, char *err,
                       size_t errlen)
{
    *port = 6379;
    *db = 0;
    host[0] = '\0';
    if (strncmp(u, "rediss://", 9) == 0) {
        snprintf(err, errlen, "uses TLS (rediss://), which this sluice does not support; use redis:// on a private network "
                              "or a TLS tunnel");
        return -1;
    }
    if (strncmp(u, "redis://", 8) != 0) {
        snprintf(err, errlen, "must look like redis://HOST:PORT/DB");
        return -1;
    }
    const char *h = u + 8, *rest;
    size_t hn;
    if (strchr(h, '@')) {
        snprintf(err, errlen, "must not carry credentials; write password: env:NAME instead");
        return -1;
    }
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close) {
            snprintf(err, errlen, "has an unterminated [IPv6] host");
            return -1;
        }
        h++;
        hn = (size_t)(close - h);
        rest = close + 1;
    } else {
        hn = strcspn(h, ":/?#");
        rest = h + hn;
    }
    if (hn == 0 || hn >= SL_REDIS_HOST_MAX) {
        snprintf(err, errlen, "has no usable host");
        return -1;
    }
    for (size_t i = 0; i < hn; i++)
        if ((unsigned char)h[i] <= ' ' || h[i] == '"' || h[i] == '\\' || h[i] == 0x7f || h[i] == '[' ||
            h[i] == ']') {
            snprintf(err, errlen, "has no usable host");
            return -1;
        }
    memcpy(host, h, hn);
    host[hn] = '\0';
    uint32_t v;
    if (*rest == ':') {
        size_t n = strcspn(rest + 1, "/?#");
        if (number(rest + 1, n, 65535, &v) != 0 || v == 0) {
            snprintf(err, errlen, "has an invalid port (1..65535)");
            return -1;
        }
        *port = (uint16_t)v;
        rest += 1 + n;
    }
    if (*rest == '/') {
        size_t n = strcspn(rest + 1, "?#");
        if (n && number(rest + 1, n, 65535, &v) != 0) {
            snprintf(err, errlen, "has an invalid database number");
            return -1;
        }
        if (n)
            *db = v;
        rest += 1 + n;
    }
    if (*rest) {
        snprintf(err, errlen, "must end after the database number (no query)");
        return -1;
    }
    return 0;
}
