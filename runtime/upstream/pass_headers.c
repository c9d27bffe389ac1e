/*
 * Which upstream response headers go back to the client (header_cb in
 * upstream.c): an allow-list of names, checked for RFC 9110 syntax.
 * Moved out of upstream.c, which keeps the multi/libev glue.
 */
#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "upstream/upstream_internal.h"

/* One passed-through value at most; longer is dropped, not truncated. */
#define SL_UPSTREAM_PASS_VALUE_MAX 256

/* Response headers handed back to the client, by allow-list: request ids
 * (x-request-id, renamed x-upstream-request-id, and request-id) so users
 * can quote them to the provider,
 * openai-processing-ms (the OpenAI SDKs log it), and the rate-limit family
 * (x-ratelimit-*, anthropic-ratelimit-*, retry-after, retry-after-ms) so
 * clients back off correctly. Everything else stays behind the gateway:
 * framing and hop-by-hop headers, cookies, server/via, and identifiers of
 * the operator's upstream account (openai-organization, openai-project,
 * anthropic-organization-id, ...), which a gateway key holder has no
 * business learning. */
static int header_passes(const char *name, size_t n)
{
    static const char *const exact[] = {"x-request-id", "request-id", "openai-processing-ms",
                                        "retry-after", "retry-after-ms"};
    static const char *const prefixes[] = {"x-ratelimit-", "anthropic-ratelimit-"};
    for (size_t i = 0; i < sizeof exact / sizeof *exact; i++)
        if (n == strlen(exact[i]) && strncasecmp(name, exact[i], n) == 0)
            return 1;
    for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++) {
        size_t pl = strlen(prefixes[i]);
        if (n > pl && strncasecmp(name, prefixes[i], pl) == 0)
            return 1;
    }
    return 0;
}

/* RFC 9110 token characters, the only ones a field name may hold. */
static int is_tchar(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/* A value copied to the client may hold visible bytes, spaces and tabs
 * only (RFC 9110 field-value; obs-text is refused too, nothing on the
 * allow-list needs it). CR, LF, NUL or any other control byte inside the
 * value means the upstream (or something between) is trying to split the
 * header, so the whole header is dropped rather than cleaned up. */
static int value_ok(const char *v, size_t n)
{
    if (n > SL_UPSTREAM_PASS_VALUE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c >= 0x7F)
            return 0;
    }
    return 1;
}

static int name_ok(const char *p, size_t n)
{
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)p[i]))
            return 0;
    return 1;
}

int sl_upstream_header_passes(const char *name, size_t name_len, const char *v, size_t vlen)
{
    return header_passes(name, name_len) && name_ok(name, name_len) && value_ok(v, vlen);
}
