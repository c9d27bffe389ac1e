/*
 * Fitting a request to the model it goes to. sluicec decides per target,
 * from the model catalog, which parameters the upstream model takes
 * (runtime/table.h SL_CAP_*); this module applies that to the body in the
 * upstream's protocol, after translation or on the pass-through body:
 * max_tokens vs max_completion_tokens, the output limit clamped to the
 * model's, reasoning effort mapped to a value the model accepts or left
 * out, temperature left out where the model rejects it, provider quirks.
 * It also says what a client request needs (tools, images), so the
 * planner can refuse a model that lacks them before any upstream call.
 */
#ifndef SLUICE_FIT_H
#define SLUICE_FIT_H

#include <jansson.h>
#include <stdint.h>

#include "core/proto.h"

/* SL_CAP_TOOLS and/or SL_CAP_VISION when the request, in the client's
 * protocol `p`, declares tools or carries an image. */
uint32_t sl_fit_needs(sl_proto p, const json_t *req);

/* Edits `body` (in protocol `up`) for a target with capability bits
 * `caps`, output limit `max_output` (0 = unknown) and provider quirks
 * `quirks` (SL_QUIRK_*). Returns how many members it changed; 0 means the
 * body can go as it is. Nested objects are replaced, never edited in place,
 * so a shallow copy (json_copy) of a request may be fitted without
 * touching the original: the pass-through path keeps the client's bytes
 * unless something changes. */
int sl_fit_request(sl_proto up, json_t *body, uint32_t caps, uint32_t max_output, uint32_t quirks);

#endif
