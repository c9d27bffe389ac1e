/*
 * Protocol translation between the wire APIs sluice speaks: OpenAI Chat
 * Completions, Anthropic Messages and Gemini generateContent, and the
 * OpenAI Responses API as a client protocol. Requests,
 * non-stream responses and error bodies are pure functions from JSON to
 * JSON; streams go through an incremental translator that takes upstream
 * SSE bytes in any split and appends the client's SSE bytes, so the proxy
 * can forward each event as it arrives. Every direction goes through one
 * neutral form (Anthropic-shaped for bodies, a small event set for
 * streams), which keeps nine directions to three readers and three writers.
 */
#ifndef SLUICE_TRANSLATE_H
#define SLUICE_TRANSLATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/proto.h"
#include "govern/usage.h"

/* Client request JSON in `from` -> upstream request body in `to`, with
 * "model" = upstream_model (Gemini takes the model in the URL, so its body
 * has none). OpenAI upstream streams get stream_options.include_usage.
 * Returns a malloc'd NUL-terminated JSON string, or NULL with a message in
 * err: a client error (400). Fields with no counterpart are dropped. */
char *sl_translate_request(sl_proto from, sl_proto to, json_t *req, const char *upstream_model,
                           int stream, char *err, size_t errlen);
/* The same, with the upstream body fitted to its target before it is
 * serialised (translate/fit.h: catalog capabilities, output limit,
 * provider quirks), so fitting costs no second parse. */
char *sl_translate_request_fit(sl_proto from, sl_proto to, json_t *req, const char *upstream_model,
                               int stream, uint32_t caps, uint32_t max_output, uint32_t quirks,
                               char *err, size_t errlen);

/* Non-stream 2xx body from `up` -> body in `client` protocol reporting
 * `client_model`. malloc'd, or NULL + err when the upstream body is not a
 * response of its protocol (the proxy answers 502). */
char *sl_translate_response(sl_proto up, sl_proto client, const char *body, size_t len,
                            const char *client_model, char *err, size_t errlen);

/* Upstream non-2xx status and body -> client status (*out_status) and an
 * error body in the client's shape, keeping the upstream message. Never
 * NULL unless memory runs out. */
char *sl_translate_error(sl_proto up, sl_proto client, int status, const char *body, size_t len,
                         int *out_status);

/* Token usage for accounting is govern/usage.h's sl_usage_counts, the one
 * usage type: input counts only uncached input (Anthropic's meaning);
 * cache reads and writes are separate, so cost is a plain dot product
 * with the price table whatever the upstream. */
/* Reads one usage object in whichever protocol's shape it is (OpenAI
 * `usage`, Anthropic `usage`, Gemini `usageMetadata`), setting only the
 * counts it holds (Anthropic's message_delta has only output_tokens). The
 * one reader of usage: the gateway's accounting uses it too. */
void sl_translate_usage_object(json_t *usage, sl_usage_counts *out);

/* Usage of a non-stream 2xx body of protocol `p`; 0, or -1 when absent. */
int sl_translate_usage(sl_proto p, const char *body, size_t len, sl_usage_counts *out);

/* Incremental stream translation. sl_stream_new(p, p, ...) passes bytes
 * through unchanged and only observes usage. */
typedef struct sl_stream sl_stream;
sl_stream *sl_stream_new(sl_proto up, sl_proto client, const char *client_model);
/* OpenAI clients get a final usage chunk (choices: []) unless this is set
 * to 0, for clients that did not ask for stream_options.include_usage. */
void sl_stream_set_openai_usage_chunk(sl_stream *s, int on);
/* 0 ok, -1 malformed upstream stream (the proxy ends with an error event). */
int sl_stream_feed(sl_stream *s, const char *p, size_t n, sl_buf *out);
/* Upstream ended cleanly: emits closing events the upstream's own end
 * markers did not. 0, or -1 when the upstream stream was truncated (no
 * terminal event) and the proxy should send an error event. An upstream
 * error event counts as terminal: it was already translated and sent. */
int sl_stream_finish(sl_stream *s, sl_buf *out);
const sl_usage_counts *sl_stream_usage(const sl_stream *s);
/* Responses clients: the response id and previous_response_id (may be
 * NULL) the stream reports, instead of an id derived from the upstream's
 * message id and none. Call before the first feed. 0, or -1 (memory). */
int sl_stream_set_response_ids(sl_stream *s, const char *id, const char *previous);
/* The response object a Responses stream ended with (response.completed
 * or .incomplete), or NULL; owned by the stream. */
json_t *sl_stream_final_response(const sl_stream *s);
int sl_stream_started(const sl_stream *s);
void sl_stream_free(sl_stream *s);

/* The largest output limit any translation of `req` (a request in
 * protocol `from` asking for at most `limit` output tokens) may send a
 * provider: Anthropic wants max_tokens above a thinking budget, so
 * translating a request with extended thinking can raise the limit to the
 * budget plus the default. Admission reserves this much. */
int64_t sl_translate_output_ceiling(sl_proto from, json_t *req, int64_t limit);

/* The hosted tools (web_search, file_search, ...) a Responses request
 * offers, which translation drops because no other backend can run them:
 * their names, comma-separated and each once, in buf (for the
 * x-sluice-dropped-tools header). Returns the length, 0 when none. */
size_t sl_translate_dropped_tools(json_t *req, char *buf, size_t cap);

/* count_tokens for non-Anthropic targets: an estimate (about four bytes
 * of text per token plus a fixed cost per image and tool), not a count. */
long sl_translate_estimate_tokens(json_t *anthropic_req);

#endif
