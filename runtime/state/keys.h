/*
 * The pure part of the Redis state module: key names, period buckets and
 * the meaning of the admission script's answer. No I/O, no hiredis, so
 * unit tests and the fuzz target link it alone.
 *
 * Keys (PREFIX from the spec, NAME the key's or team's spec name with
 * '%' and ':' escaped as %25 and %3A, so no name can reach into another's
 * keys; PERIOD the period start in unix seconds, or "total"):
 *   PREFIX{k|t}:NAME:b:PERIOD  hash  usd, tok (spent); rusd, rtok (reserved)
 *   PREFIX{k|t}:NAME:r:PERIOD  zset  reservations, scored by expiry (ms)
 *   PREFIX{k|t}:NAME:q         zset  admissions of the last minute (rpm)
 *   PREFIX{k|t}:NAME:w         zset  settled tokens of the last minute (tpm)
 *   PREFIX{k|t}:NAME:ws        string  their sum
 * A bucket expires a day after its period ends, so Redis forgets old
 * periods by itself.
 */
#ifndef SLUICE_STATE_KEYS_H
#define SLUICE_STATE_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include "state/state.h"
#include "table.h"

/* Redis keys are capped well below this: names are short spec names. */
#define SL_STATE_KEY_MAX 512
/* The keys one holder contributes to a script call. */
#define SL_STATE_HOLDER_KEYS 6

/* PREFIX{k|t}:NAME:SUFFIX[:PERIOD] into out; the length, or 0 when it
 * does not fit. period < 0: no period part; SL_PERIOD_TOTAL buckets
 * pass 0 and get "total". */
size_t sl_state_key(char *out, size_t cap, const char *prefix, int team, const char *name,
                    const char *suffix, sl_period per, int64_t period_start);

/* The start of the period after the one starting at `start` (UTC); 0 for
 * SL_PERIOD_TOTAL and SL_PERIOD_NONE (never ends). */
int64_t sl_state_period_end(sl_period per, int64_t start);

/* When a bucket for that period may go: a day after it ends; 0 = keep. */
int64_t sl_state_bucket_expireat(sl_period per, int64_t start);

/* The admission script's answer as integers: {0} granted; {1, retry_ms,
 * which} rate limited; {2, which} over budget; {3} this worker must seed
 * first (SL_STATE_COLD). `which`: bit 0 = tpm or
 * tokens (else rpm or USD), bit 1 = the team. 0, or -1 when the answer
 * has another shape. */
int sl_state_answer_of(const int64_t *v, size_t n, sl_state_answer *a);

/* Amounts sent to Redis are clamped here: Lua numbers are doubles, exact
 * to 2^53, and no budget comes near USD 10^9. */
#define SL_STATE_AMOUNT_MAX 1000000000000000LL
int64_t sl_state_clamp(int64_t v);

#endif
