/*
 * Conversation state for Responses clients whose requests sluice
 * translates: previous_response_id is resolved from the Responses store
 * (rstore/rstore.h) and its chain of items prepended to the input, and an
 * answer with store: true (the API's default) gets an id of sluice's own
 * and is kept. A try that passes through to a provider serving the
 * Responses API itself sends the request unchanged: that provider keeps
 * (and resolves) its own state.
 */
#ifndef SLUICE_RSTATE_H
#define SLUICE_RSTATE_H

#include <stddef.h>

#include "proxy/exchange.h"

/* Before routing: reads store and previous_response_id, and looks the
 * latter up for the key. Never answers: an id this gateway does not hold
 * may be a pass-through provider's, so only a translated try refuses it. */
void sl_rstate_begin(sl_exchange *x);

/* The request a translated try of a Responses client sends, or NULL after
 * failing the exchange (404: previous_response_id unknown here). */
json_t *sl_rstate_request(sl_exchange *x);

/* A translated stream's relay is built: its response ids. */
void sl_rstate_stream_init(sl_exchange *x);

/* A translated non-stream 2xx answer (the client's Responses body): gets
 * sluice's id and, with store, is kept. The body may be replaced. */
void sl_rstate_body(sl_exchange *x, char **body, size_t *len);

/* A translated stream ended cleanly: with store, its response is kept. */
void sl_rstate_stream_end(sl_exchange *x);

#endif
