/*
 * Anthropic Messages <-> the Bedrock Converse API, as whole bodies. The
 * Bedrock adapter speaks Anthropic to the rest of sluice; for models that
 * Bedrock serves only through Converse it turns the (already translated or
 * passed-through) Anthropic request into a Converse request, and the
 * Converse answer back into an Anthropic message, so every client protocol
 * reaches those models through the existing Anthropic translators.
 */
#ifndef SLUICE_TRANSLATE_CONVERSE_H
#define SLUICE_TRANSLATE_CONVERSE_H

#include <jansson.h>
#include <stddef.h>

/* Converse request JSON (malloc'd) from an Anthropic Messages request, or
 * NULL with err (a content block Converse cannot carry, memory). */
char *sl_converse_request(json_t *anthropic, char *err, size_t errlen);
/* An Anthropic message (malloc'd) from a Converse response body, or NULL
 * with err when the body is not one. */
char *sl_converse_response(const char *body, size_t len, const char *model, char *err, size_t errlen);

#endif
