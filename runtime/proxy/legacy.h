/*
 * The legacy OpenAI Completions API (POST /v1/completions) served by chat
 * targets: the prompt becomes a user message on the way in, and chat
 * answers (whole or streamed) are rewritten as text_completion objects on
 * the way out. Everything in between is the ordinary chat path, so legacy
 * clients get routing, fallbacks, translation and accounting for free.
 */
#ifndef SLUICE_LEGACY_H
#define SLUICE_LEGACY_H

#include <jansson.h>
#include <stddef.h>

#include "core/buf.h"
#include "translate/sse.h"

/* A chat request equivalent to the completions request `req`; NULL with
 * err when the prompt is missing or not text. */
json_t *sl_legacy_to_chat(json_t *req, char *err, size_t errlen);

/* chat.completion JSON -> text_completion JSON (malloc'd), or NULL when the
 * body is not a chat completion. */
char *sl_legacy_from_chat(const char *body, size_t len);

/* Streaming: chat.completion.chunk SSE in, text_completion SSE out.
 * Zero-initialised is ready to use. */
typedef struct sl_legacy_stream {
    sl_sse sse;
    int ready;
    int failed;
    /* Drop the usage-only chunk (`"choices":[]` with usage) that sluice
     * asked the upstream for on behalf of a client that did not. */
    int strip_usage;
} sl_legacy_stream;
/* Appends the converted events complete in p[0..n) (with what earlier
 * feeds left unfinished) to out. 0, or -1 when an event or line exceeds
 * SL_SSE_MAX_LINE or memory runs out: the caller ends the stream with an
 * error. Once -1, always -1. */
int sl_legacy_stream_feed(sl_legacy_stream *s, const char *p, size_t n, sl_buf *out);
void sl_legacy_stream_free(sl_legacy_stream *s);

#endif
