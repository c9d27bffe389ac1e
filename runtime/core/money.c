/*
 * Formatting works on the magnitude as uint64_t, so INT64_MIN has one and
 * amounts between -1 and 0 USD keep their sign (splitting a negative
 * amount with / and % gives "0.-500000" or drops the minus).
 */
#include "core/money.h"

#include <inttypes.h>
#include <stdio.h>

int sl_money_format(int64_t micros, char *buf, size_t cap)
{
    uint64_t mag = micros < 0 ? (uint64_t)0 - (uint64_t)micros : (uint64_t)micros;
    char tmp[SL_MONEY_MAX];
    int n = snprintf(tmp, sizeof tmp, "%s%" PRIu64 ".%06" PRIu64, micros < 0 ? "-" : "",
                     mag / 1000000u, mag % 1000000u);
    if (n < 0 || (size_t)n >= cap) {
        if (cap > 0)
            buf[0] = '\0';
        return -1;
    }
    for (int i = 0; i <= n; i++)
        buf[i] = tmp[i];
    return n;
}
