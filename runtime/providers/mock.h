/*
 * The `mock` provider kind: answers in-process, in the caller's protocol,
 * streaming or not, tools included, with deterministic text and usage.
 * It is what makes the quick start work with no key and no network, and it
 * exercises the same response path (headers, SSE framing) as real traffic.
 */
#ifndef SLUICE_MOCK_H
#define SLUICE_MOCK_H

#include <jansson.h>

#include "proxy/surface.h"
#include "server/server.h"

typedef enum sl_mock_op { SL_MOCK_CHAT, SL_MOCK_MESSAGES, SL_MOCK_COUNT_TOKENS, SL_MOCK_COMPLETIONS } sl_mock_op;

/* What the mock answered, for the access log and (later) accounting. */
typedef struct sl_mock_usage {
    long input_tokens;
    long output_tokens;
} sl_mock_usage;

/* Responds on `c` and ends the exchange. `req` is the parsed request body,
 * `model` the upstream model name to report, `headers` extra response
 * header lines. */
void sl_mock_respond(sl_conn *c, sl_mock_op op, json_t *req, const char *model, size_t body_len,
                     const char *headers, sl_mock_usage *usage);

/* Token estimate used by the mock and by count_tokens for non-Anthropic
 * targets: about four bytes of JSON per token. */
long sl_mock_estimate_tokens(size_t body_len);

#endif
