/*
 * libFuzzer target for the Redis state module's parsers: the Redis URL
 * (`sluice --redis URL`, the spec's state.redis.url) and the admission
 * script's answer as the reply parser hands it over (integers). Input:
 * the first byte picks the parser; a URL is the rest as a string, an
 * answer is the rest as up to four little-endian int64 values. Both must
 * accept or refuse without reading past their input, and an accepted URL
 * must give a non-empty host and a port.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "state/keys.h"
#include "state/url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1) {
        char *u = malloc(size);
        if (!u)
            return 0;
        memcpy(u, data + 1, size - 1);
        u[size - 1] = '\0';
        char host[SL_REDIS_HOST_MAX], err[160];
        uint16_t port;
        uint32_t db;
        if (sl_redis_url_parse(u, host, &port, &db, err, sizeof err) == 0) {
            if (!host[0] || port == 0 || db > 65535)
                abort();
            /* The host is a key-safe, blank-free string. */
            for (const char *p = host; *p; p++)
                if ((unsigned char)*p <= ' ')
                    abort();
        }
        free(u);
        return 0;
    }
    int64_t v[4];
    size_t n = (size - 1) / 8;
    if (n > 4)
        n = 4;
    memcpy(v, data + 1, n * 8);
    sl_state_answer a;
    if (sl_state_answer_of(v, n, &a) == 0) {
        if (!a.why)
            abort();
        if (a.result == SL_STATE_REFUSED && a.verdict == SL_GOV_RATE_LIMITED &&
            (a.retry_after_s < 1 || a.retry_after_s > 86400))
            abort();
    }
    char k[SL_STATE_KEY_MAX];
    char name[64] = {0};
    memcpy(name, data + 1, size - 1 < sizeof name - 1 ? size - 1 : sizeof name - 1);
    size_t kn = sl_state_key(k, sizeof k, "p:", data[0] & 2, name, "b", SL_PERIOD_DAY, 1704067200);
    if (kn && strlen(k) != kn)
        abort();
    return 0;
}
