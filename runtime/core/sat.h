/*
 * Saturating arithmetic for money (micro-USD) and token counts. Every sum
 * or product of such quantities goes through here, because the inputs are
 * partly client-chosen (max_tokens, prompt size) or upstream-reported
 * (usage) and a wrapped int64 turns a huge charge into a negative one that
 * every budget check then lets through. Results stick at INT64_MAX (or
 * INT64_MIN) instead of wrapping: a saturated charge exceeds any budget,
 * which is the safe failure. Counts and prices that cannot be negative are
 * clamped to 0 by the callers' choice of sl_sat_count / sl_sat_cost.
 */
#ifndef SLUICE_SAT_H
#define SLUICE_SAT_H

#include <stddef.h>
#include <stdint.h>

static inline int64_t sl_sat_add(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_add_overflow(a, b, &r))
        return b > 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t sl_sat_sub(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_sub_overflow(a, b, &r))
        return b < 0 ? INT64_MAX : INT64_MIN;
    return r;
}

static inline int64_t sl_sat_mul(int64_t a, int64_t b)
{
    int64_t r;
    if (__builtin_mul_overflow(a, b, &r))
        return (a < 0) != (b < 0) ? INT64_MIN : INT64_MAX;
    return r;
}

/* A count or amount that cannot be negative: negatives become 0. */
static inline int64_t sl_sat_count(int64_t v)
{
    return v < 0 ? 0 : v;
}

/* Sum of two counts, each clamped to >= 0: the result is in [0, INT64_MAX]. */
static inline int64_t sl_sat_add_count(int64_t a, int64_t b)
{
    return sl_sat_add(sl_sat_count(a), sl_sat_count(b));
}

/* Cost in micro-USD of tokens[i] at prices[i] micro-USD per million tokens,
 * summed over n terms and rounded half up once (so splitting a request's
 * usage into input/output/cache terms does not add rounding error).
 * Negative counts and prices count as 0; the result is in [0, INT64_MAX]. */
int64_t sl_sat_cost_dot(const int64_t *tokens, const int64_t *prices, size_t n);

/* One term of the above: tokens * price / 1e6. */
static inline int64_t sl_sat_cost(int64_t tokens, int64_t price)
{
    return sl_sat_cost_dot(&tokens, &price, 1);
}

#endif
