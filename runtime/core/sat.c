/*
 * The one out-of-line piece of saturating arithmetic: the cost dot product
 * needs a 128-bit accumulator, kept here so callers never see __int128.
 */
#include "core/sat.h"

int64_t sl_sat_cost_dot(const int64_t *tokens, const int64_t *prices, size_t n)
{
    /* Past this the rounded quotient no longer fits in int64. Each term is
     * below 2^126 and the accumulator stays below limit (< 2^83) before
     * each addition, so the unsigned 128-bit sum cannot wrap. */
    const unsigned __int128 limit = (unsigned __int128)INT64_MAX * 1000000u;
    unsigned __int128 acc = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t t = (uint64_t)sl_sat_count(tokens[i]);
        uint64_t p = (uint64_t)sl_sat_count(prices[i]);
        acc += (unsigned __int128)t * p;
        if (acc >= limit)
            return INT64_MAX;
    }
    return (int64_t)((acc + 500000u) / 1000000u);
}
