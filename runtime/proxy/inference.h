/*
 * The inference endpoints' handler: from a complete request to a started
 * exchange. Authenticate, read just enough JSON to route (the model, the
 * stream flag, the output limit), look the model up, check the key's
 * scope, plan attempts over the targets that can serve the operation,
 * admit (rate limits and a worst-case budget reservation), then hand the
 * exchange to the attempt loop (proxy/forward.h).
 */
#ifndef SLUICE_INFERENCE_H
#define SLUICE_INFERENCE_H

#include "proxy/dispatch.h"

void sl_inference_handle(sl_conn *c, const sl_endpoint *ep, const sl_http_request *req, const char *body,
                         size_t len);

#endif
