/*
 * The AWS Bedrock adapter's pieces beyond the ops struct: Bedrock speaks
 * Anthropic Messages to sluice's relay, so every client protocol works
 * through the existing translators. At the edge, InvokeModel bodies are
 * Anthropic bodies with anthropic_version and without model/stream, the
 * Converse API is translated to and from Anthropic shapes
 * (translate/converse.c), and both streams arrive as AWS event-stream
 * frames that bedrock_stream.c decodes into Anthropic SSE events.
 */
#ifndef SLUICE_PROVIDERS_BEDROCK_H
#define SLUICE_PROVIDERS_BEDROCK_H

#include <stddef.h>

#include "core/buf.h"
#include "table.h"

/* Does a request for `model` on p go to the Converse API (else
 * InvokeModel)? Anthropic models (`anthropic.` or an inference profile
 * `REGION.anthropic.`) use InvokeModel unless the spec forces one. */
int sl_bedrock_converse(const sl_provider *p, const char *model);

/* The event-stream -> Anthropic SSE filter state. */
typedef struct sl_bedrock_stream sl_bedrock_stream;
sl_bedrock_stream *sl_bedrock_stream_new(int converse, const char *model);
/* Appends Anthropic SSE to out; 0, or -1 when the stream is malformed
 * (CRC, framing, payload) or Bedrock sent an exception frame;
 * sl_bedrock_stream_error says which (AWS's exception type and message). */
int sl_bedrock_stream_feed(sl_bedrock_stream *s, const char *p, size_t n, sl_buf *out);
/* -1 when the stream ended early (a partial frame, no end of message, an
 * exception earlier). */
int sl_bedrock_stream_finish(sl_bedrock_stream *s, sl_buf *out);
const char *sl_bedrock_stream_error(const sl_bedrock_stream *s);
void sl_bedrock_stream_free(void *s);

#endif
