/*
 * The request side of governance, decided once per request before any
 * upstream call: the output-token limit (one normalisation, read by
 * admission and written back into the request so the provider receives
 * exactly the limit that was reserved for), the worst-case cost over every
 * target the plan may try, and the refusal of targets that would be charged
 * against a USD budget but have no price. All arithmetic saturates: no
 * client-chosen number can wrap a reservation negative.
 */
#ifndef SLUICE_ADMIT_H
#define SLUICE_ADMIT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/proto.h"
#include "govern/usage.h"
#include "route/route.h"
#include "table.h"

/* Output limits past this are refused with 400: no model produces ten
 * million tokens, and smaller bounds keep every product in range. */
#define SL_MAX_OUTPUT_TOKENS 10000000
/* Reserved (and, for budgeted keys, sent) when the request names none. */
#define SL_DEFAULT_OUTPUT_TOKENS 4096

typedef struct sl_limit {
    int64_t output;      /* the output limit the provider will receive */
    int64_t worst;       /* output tokens reserved: output, or more when thinking may raise it */
    int given;           /* the client named a limit */
    int injected;        /* sluice wrote SL_DEFAULT_OUTPUT_TOKENS into the request */
} sl_limit;

/* Reads the output limit of a request of operation `op` from `surface`
 * (OpenAI max_tokens / max_completion_tokens, Anthropic max_tokens, Gemini
 * generationConfig.maxOutputTokens in either spelling). Refuses (returns
 * -1 with err) a limit that is not a whole number in 1..SL_MAX_OUTPUT_TOKENS
 * and two spellings that disagree. With `inject` and no limit given, sets
 * the default in `req` so the upstream cannot produce more than reserved. */
int sl_admit_output_limit(json_t *req, sl_op op, sl_proto surface, int inject, sl_limit *out,
                          char *err, size_t errlen);

/* Does a USD budget (the key's or its team's) apply to `key`? */
int sl_admit_usd_budget(const sl_table *t, int key);

/* Worst-case cost in micro-USD of `worst` over plan[0..*n), saturating
 * at SL_GOV_MAX_MICROS.
 * When `usd_budget`, targets without a price are removed from the plan
 * (*n shrinks) and the first one removed is named in *unpriced_target. */
int64_t sl_admit_price_plan(const sl_table *t, sl_attempt *plan, size_t *n, const char *client_model,
                            const sl_usage_counts *worst, int usd_budget, int *unpriced_target);

#endif
