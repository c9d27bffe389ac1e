/*
 * Sending an exchange upstream: the glue between the attempt state machine,
 * the provider adapters and the relay. For each try it builds the upstream
 * request (body, URL and headers through the provider's adapter), starts
 * the transfer on the provider's transport, and turns the transfer's
 * callbacks into relay input and attempt outcomes.
 */
#ifndef SLUICE_FORWARD_H
#define SLUICE_FORWARD_H

#include "proxy/exchange.h"

/* Starts the exchange's attempt plan (x->attempts already initialised by
 * sl_forward_plan). Registers the connection hooks. */
void sl_forward_begin(sl_exchange *x);
/* Sets up x->attempts over plan[0..n). */
void sl_forward_plan(sl_exchange *x, const sl_attempt *plan, size_t n);

#endif
