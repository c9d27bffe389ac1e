/*
 * Fuzz target: admission's reading of a request against what the provider
 * is sent. The first input byte picks the client protocol, the rest is the
 * request body. Whatever the body, when sl_admit_output_limit accepts it:
 *   - the limit is within 1..SL_MAX_OUTPUT_TOKENS and the reserved worst
 *     case is at least the limit, and bounded;
 *   - for every upstream protocol, the output limit in the translated
 *     request (Anthropic max_tokens, OpenAI max_completion_tokens or
 *     max_tokens, Gemini maxOutputTokens) is at most the reserved worst
 *     case, so the reservation covers what the provider may produce;
 *   - the cost of the reservation, at any of the prices below, is at least
 *     the cost of that upstream limit and never negative (UBSan aborts on
 *     any overflow on the way).
 *   - fitting the translated request to a model (translate/fit.c, with
 *     capability bits and an output limit drawn from the input) never
 *     raises that limit and keeps it within the model's.
 * This is the class behind "admission and translation read different
 * fields": both now read one normalised limit.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "govern/govern.h"
#include "proxy/admit.h"
#include "translate/fit.h"
#include "translate/translate.h"

static const sl_provider providers[] = {{.name = "p"}};
static const sl_price prices[] = {
    {.provider = 0, .model = "cheap", .input = 1, .output = 1},
    {.provider = 0, .model = "dear", .input = 15000000, .output = 75000000, .cache_read = 1500000,
     .cache_write = 18750000},
    {.provider = 0, .model = "absurd", .input = INT64_MAX / 2, .output = INT64_MAX / 2},
};
static const sl_table table = {
    .abi = SL_TABLE_ABI,
    .providers = providers, .provider_count = 1,
    .prices = prices, .price_count = sizeof prices / sizeof *prices,
};

static int64_t upstream_limit(const char *body, sl_proto to)
{
    json_t *j = json_loads(body, 0, NULL);
    if (!j)
        return -1;
    json_t *v;
    if (to == SL_PROTO_GEMINI)
        v = json_object_get(json_object_get(j, "generationConfig"), "maxOutputTokens");
    else if (to == SL_PROTO_OPENAI)
        v = json_object_get(j, "max_completion_tokens") ? json_object_get(j, "max_completion_tokens")
                                                        : json_object_get(j, "max_tokens");
    else
        v = json_object_get(j, "max_tokens");
    int64_t n = json_is_integer(v) ? (int64_t)json_integer_value(v) : 0;
    json_decref(j);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    sl_proto from = (sl_proto)(data[0] % 4);
    sl_op op = from == SL_PROTO_ANTHROPIC   ? SL_OP_MESSAGES
               : from == SL_PROTO_GEMINI    ? SL_OP_GENERATE
               : from == SL_PROTO_RESPONSES ? SL_OP_RESPONSES
                                            : SL_OP_CHAT;
    json_t *req = json_loadb((const char *)data + 1, size - 1, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(req)) {
        json_decref(req);
        return 0;
    }
    sl_limit lim;
    char err[160];
    int inject = (data[0] / 4) & 1;
    if (sl_admit_output_limit(req, op, from, inject, &lim, err, sizeof err) != 0) {
        json_decref(req);
        return 0;
    }
    if (lim.output < 1 || lim.output > SL_MAX_OUTPUT_TOKENS || lim.worst < lim.output ||
        lim.worst > SL_MAX_OUTPUT_TOKENS + SL_DEFAULT_OUTPUT_TOKENS)
        abort();
    int64_t in = sl_usage_estimate_tokens(size);
    for (int to = 0; to < 3; to++) {
        char *body = sl_translate_request(from, (sl_proto)to, req, "cheap", 0, err, sizeof err);
        if (!body)
            continue;
        int64_t up = to == (int)from ? lim.output : upstream_limit(body, (sl_proto)to);
        uint32_t caps = SL_CAP_KNOWN | ((uint32_t)(size * 2654435761u) & 0x1ffeu);
        uint32_t max_output = size % 3 ? (uint32_t)(size * 977u % 70000u) + 1 : 0;
        json_t *fit = json_loads(body, 0, NULL);
        free(body);
        if (fit && to != (int)from && sl_fit_request((sl_proto)to, fit, caps, max_output, SL_QUIRK_NO_STREAM_OPTIONS) > 0) {
            char *fitted = json_dumps(fit, JSON_COMPACT);
            int64_t after = fitted ? upstream_limit(fitted, (sl_proto)to) : 0;
            free(fitted);
            if (after > (up > 0 ? up : INT64_MAX) || (max_output && after > (int64_t)max_output))
                abort();
        }
        json_decref(fit);
        /* Absent upstream means "the provider's default", which the
         * translator only leaves out when the client gave none and sluice
         * injected none: then the reservation is the default. */
        if (up > lim.worst)
            abort();
        for (size_t p = 0; p < sizeof prices / sizeof *prices; p++) {
            int priced;
            sl_usage_counts worst = {.input = in, .output = lim.worst};
            sl_usage_counts used = {.input = in, .output = up > 0 ? up : 0};
            int64_t cw = sl_gov_cost(&table, 0, prices[p].model, &worst, &priced);
            int64_t cu = sl_gov_cost(&table, 0, prices[p].model, &used, &priced);
            if (cw < 0 || cu < 0 || cu > cw)
                abort();
        }
    }
    json_decref(req);
    return 0;
}
