/*
 * Key names, period buckets and script answers (see keys.h).
 */
#include "state/keys.h"

#include <stdio.h>
#include <string.h>

#include "govern/govern.h"

size_t sl_state_key(char *out, size_t cap, const char *prefix, int team, const char *name,
                    const char *suffix, sl_period per, int64_t period_start)
{
    size_t n = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (n + 1 >= cap)                                                                          \
            return 0;                                                                              \
        out[n++] = (c);                                                                            \
    } while (0)
    for (const char *p = prefix; *p; p++)
        PUT(*p);
    PUT(team ? 't' : 'k');
    PUT(':');
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        if (*p == '%' || *p == ':') {
            static const char hex[] = "0123456789ABCDEF";
            PUT('%');
            PUT(hex[*p >> 4]);
            PUT(hex[*p & 15]);
        } else {
            PUT((char)*p);
        }
    }
    PUT(':');
    for (const char *p = suffix; *p; p++)
        PUT(*p);
#undef PUT
    if (per != SL_PERIOD_NONE || period_start > 0) {
        int w = per == SL_PERIOD_TOTAL ? snprintf(out + n, cap - n, ":total")
                                       : snprintf(out + n, cap - n, ":%lld", (long long)period_start);
        if (w < 0 || (size_t)w >= cap - n)
            return 0;
        n += (size_t)w;
    }
    out[n] = '\0';
    return n;
}

int64_t sl_state_period_end(sl_period per, int64_t start)
{
    switch (per) {
    case SL_PERIOD_DAY: return start + 86400;
    case SL_PERIOD_WEEK: return start + 7 * 86400;
    case SL_PERIOD_MONTH: return sl_gov_period_start(SL_PERIOD_MONTH, start + 32 * 86400);
    default: return 0;
    }
}

int64_t sl_state_bucket_expireat(sl_period per, int64_t start)
{
    int64_t end = sl_state_period_end(per, start);
    return end ? end + 86400 : 0;
}

int sl_state_answer_of(const int64_t *v, size_t n, sl_state_answer *a)
{
    static const char *const rate[4] = {"request rate limit reached", "token rate limit reached",
                                        "team request rate limit reached", "team token rate limit reached"};
    static const char *const budget[4] = {"key budget exhausted", "key token budget exhausted",
                                          "team budget exhausted", "team token budget exhausted"};
    memset(a, 0, sizeof *a);
    a->why = "";
    if (n < 1)
        return -1;
    switch (v[0]) {
    case 0:
        if (n != 1)
            return -1;
        a->result = SL_STATE_GRANTED;
        a->verdict = SL_GOV_OK;
        return 0;
    case 1: {
        if (n != 3 || v[2] < 0 || v[2] > 3 || v[1] < 0)
            return -1;
        a->result = SL_STATE_REFUSED;
        a->verdict = SL_GOV_RATE_LIMITED;
        /* A Retry-After of 1..86400 s, as for local limits. */
        int64_t s = v[1] / 1000 + 1;
        a->retry_after_s = s > 86400 ? 86400 : (int)s;
        a->why = rate[v[2]];
        return 0;
    }
    case 3:
        if (n != 1)
            return -1;
        a->result = SL_STATE_COLD;
        return 0;
    case 2:
        if (n != 2 || v[1] < 0 || v[1] > 3)
            return -1;
        a->result = SL_STATE_REFUSED;
        a->verdict = SL_GOV_BUDGET;
        a->why = budget[v[1]];
        return 0;
    default: return -1;
    }
}

int64_t sl_state_clamp(int64_t v)
{
    return v < 0 ? 0 : v > SL_STATE_AMOUNT_MAX ? SL_STATE_AMOUNT_MAX : v;
}
