/*
 * Error bodies per protocol. OpenAI: {"error":{"message","type","param",
 * "code"}}; Anthropic: {"type":"error","error":{"type","message"}}; Gemini:
 * {"error":{"code","message","status"}}; Responses: OpenAI's shape for
 * bodies, and an `error` event in streams (the SDK raises on that event
 * name). Types follow each provider's own
 * documented mapping from HTTP status so SDK exception classes line up.
 */
#include "proxy/surface.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *anthropic_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 503:
    case 529: return "overloaded_error";
    case 504: return "timeout_error";
    default: return status < 500 ? "invalid_request_error" : "api_error";
    }
}

static const char *openai_type(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 429: return "rate_limit_error";
    default: return status < 500 ? "invalid_request_error" : "server_error";
    }
}

static const char *gemini_status(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 429: return "RESOURCE_EXHAUSTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return status < 500 ? "FAILED_PRECONDITION" : "INTERNAL";
    }
}

/* Length of the well-formed UTF-8 sequence at p (lead byte and the right
 * number of continuation bytes), or 0. */
static size_t utf8_len(const unsigned char *p)
{
    size_t len = *p >= 0xc2 && *p <= 0xdf ? 2 : *p >= 0xe0 && *p <= 0xef ? 3
               : *p >= 0xf0 && *p <= 0xf4 ? 4 : 0;
    for (size_t k = 1; k < len; k++)
        if ((p[k] & 0xc0) != 0x80)
            return 0;
    return len;
}

/* Escapes for a JSON string. Multi-byte characters are copied whole or not
 * at all, and stray bytes become U+FFFD: a message cut mid-character (here
 * or by the caller's vsnprintf) would make the whole body invalid UTF-8,
 * which strict JSON parsers in client SDKs reject outright. */
static void escape(const char *in, char *out, size_t cap)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)in;
    while (*p && o + 7 < cap) {
        if (*p == '"' || *p == '\\') {
            out[o++] = '\\';
            out[o++] = (char)*p++;
        } else if (*p < 0x20) {
            o += (size_t)snprintf(out + o, cap - o, "\\u%04x", *p++);
        } else if (*p < 0x80) {
            out[o++] = (char)*p++;
        } else {
            size_t len = utf8_len(p);
            if (len == 0) {
                memcpy(out + o, "\\ufffd", 6);
                o += 6;
                p++;
                continue;
            }
            memcpy(out + o, p, len); /* len <= 4 fits in the 7 reserved */
            o += len;
            p += len;
        }
    }
    out[o] = '\0';
}

size_t sl_surface_error_body(sl_proto s, int status, const char *code, const char *message,
                             char *buf, size_t cap)
{
    char msg[1024];
    escape(message, msg, sizeof msg);
    int n;
    switch (s) {
    case SL_PROTO_ANTHROPIC:
        n = snprintf(buf, cap, "{\"type\":\"error\",\"error\":{\"type\":\"%s\",\"message\":\"%s\"}}",
                     anthropic_type(status), msg);
        break;
    case SL_PROTO_GEMINI:
        n = snprintf(buf, cap, "{\"error\":{\"code\":%d,\"message\":\"%s\",\"status\":\"%s\"}}",
                     status, msg, gemini_status(status));
        break;
    default:
        if (code)
            n = snprintf(buf, cap,
                         "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":\"%s\"}}",
                         msg, openai_type(status), code);
        else
            n = snprintf(buf, cap,
                         "{\"error\":{\"message\":\"%s\",\"type\":\"%s\",\"param\":null,\"code\":null}}",
                         msg, openai_type(status));
        break;
    }
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = (int)cap - 1;
    return (size_t)n;
}

size_t sl_surface_error_vbody(sl_proto s, int status, const char *code, char *buf, size_t cap,
                              const char *fmt, va_list ap)
{
    char message[768];
    vsnprintf(message, sizeof message, fmt, ap);
    return sl_surface_error_body(s, status, code, message, buf, cap);
}

void sl_surface_error(sl_conn *c, sl_proto s, int status, const char *code, const char *headers,
                      const char *fmt, ...)
{
    char body[2048];
    va_list ap;
    va_start(ap, fmt);
    size_t n = sl_surface_error_vbody(s, status, code, body, sizeof body, fmt, ap);
    va_end(ap);
    sl_conn_respond(c, status, "application/json", headers, body, n);
}

size_t sl_surface_stream_error(sl_proto s, const char *message, char *buf, size_t cap)
{
    char msg[1024];
    escape(message, msg, sizeof msg);
    int n;
    if (s == SL_PROTO_ANTHROPIC)
        n = snprintf(buf, cap,
                     "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\","
                     "\"message\":\"%s\"}}\n\n", msg);
    else if (s == SL_PROTO_RESPONSES)
        n = snprintf(buf, cap,
                     "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"%s\","
                     "\"param\":null}\n\n", msg);
    else if (s == SL_PROTO_GEMINI)
        n = snprintf(buf, cap, "data: {\"error\":{\"code\":502,\"message\":\"%s\",\"status\":\"UNAVAILABLE\"}}\n\n", msg);
    else
        n = snprintf(buf, cap,
                     "data: {\"error\":{\"message\":\"%s\",\"type\":\"server_error\",\"param\":null,"
                     "\"code\":null}}\n\n", msg);
    if (n < 0)
        n = 0;
    if ((size_t)n >= cap)
        n = (int)cap - 1;
    return (size_t)n;
}
