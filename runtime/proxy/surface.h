/*
 * Client-facing API surfaces (OpenAI, Anthropic, Gemini) and their error
 * shapes. Every error sluice itself produces goes through here, so a client
 * always gets the status and JSON body its own SDK knows how to raise.
 */
#ifndef SLUICE_SURFACE_H
#define SLUICE_SURFACE_H

#include <stdarg.h>
#include <stddef.h>

#include "core/proto.h"
#include "server/conn.h"

/* Writes the error body for `status` into buf (always NUL-terminated);
 * returns its length. `message` is escaped. */
size_t sl_surface_error_body(sl_proto s, int status, const char *code, const char *message,
                             char *buf, size_t cap);

/* sl_surface_error_body with a printf-style message. */
size_t sl_surface_error_vbody(sl_proto s, int status, const char *code, char *buf, size_t cap,
                              const char *fmt, va_list ap);

/* Responds with an error in the surface's shape. `headers` as for
 * sl_conn_respond (may be NULL). Ends the exchange. */
void sl_surface_error(sl_conn *c, sl_proto s, int status, const char *code, const char *headers,
                      const char *fmt, ...) __attribute__((format(printf, 6, 7)));

/* An error event for a stream already under way, in the surface's SSE
 * form; returns its length. */
size_t sl_surface_stream_error(sl_proto s, const char *message, char *buf, size_t cap);

#endif
