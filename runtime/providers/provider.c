/*
 * The adapter table: provider kind -> ops, the libcurl transport the real
 * providers share, and the operator's run-time base URL override.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *curl_start(struct ev_loop *loop, sl_upstream *up, const sl_xfer_spec *spec,
                        const sl_xfer_callbacks *cb, void *ctx)
{
    (void)loop;
    return sl_xfer_start(up, spec, cb, ctx);
}

static void curl_cancel(void *x) { sl_xfer_cancel(x); }
static void curl_resume(void *x) { sl_xfer_resume(x); }

const sl_transport sl_transport_curl = {curl_start, curl_cancel, curl_resume};

const sl_provider_ops *sl_provider_ops_of(sl_kind k)
{
    switch (k) {
    case SL_KIND_OPENAI: return &sl_provider_openai;
    case SL_KIND_ANTHROPIC: return &sl_provider_anthropic;
    case SL_KIND_GEMINI: return &sl_provider_gemini;
    case SL_KIND_MOCK: return &sl_provider_mock;
    }
    return &sl_provider_openai;
}

int sl_provider_serves(const sl_provider *p, sl_op op)
{
    if (!sl_provider_ops_of(p->kind)->serves(op))
        return 0;
    return p->ops == 0 || (p->ops & (1u << op)) != 0;
}

const char *sl_provider_auth_format(const sl_provider *p)
{
    const char *kf = sl_provider_ops_of(p->kind)->auth_format;
    return kf && p->auth_format ? p->auth_format : kf;
}

void sl_provider_extra_headers(const sl_call *c, sl_header_add add, void *ctx)
{
    for (const char *h = c->prov->headers; h && *h;) {
        size_t n = strcspn(h, "\n");
        if (n)
            add(ctx, sl_arena_strndup(c->arena, h, n));
        h += n + (h[n] == '\n');
    }
}

/* The checks sluicec applies to a spec's base_url, so an override cannot
 * carry what the spec could not: a scheme other than HTTP(S), an empty
 * host, blanks or control bytes (header and log injection), or a query or
 * fragment (sluice appends the API path to the base URL). */
static int url_ok(const char *u, char *err, size_t errlen)
{
    size_t skip = strncmp(u, "https://", 8) == 0 ? 8 : strncmp(u, "http://", 7) == 0 ? 7 : 0;
    if (!skip) {
        snprintf(err, errlen, "base URL '%s' must start with http:// or https://", u);
        return -1;
    }
    if (u[skip] == '\0' || u[skip] == '/') {
        snprintf(err, errlen, "base URL '%s' has no host", u);
        return -1;
    }
    for (const unsigned char *q = (const unsigned char *)u; *q; q++) {
        if (*q <= 0x20 || *q == 0x7f || *q == '?' || *q == '#') {
            snprintf(err, errlen, "base URL must not contain blanks, control bytes, '?' or '#'");
            return -1;
        }
    }
    return 0;
}

/* Override URLs are the operator's for the process's life; they are freed
 * at exit so leak checkers see a clean process. One slot per provider
 * (specs have few), found by the provider's address. */
enum { MAX_OVERRIDES = 256 };
static struct {
    const sl_provider *p;
    char *url;
} overrides[MAX_OVERRIDES];
static size_t n_overrides;

static void free_overrides(void)
{
    for (size_t i = 0; i < n_overrides; i++)
        free(overrides[i].url);
    n_overrides = 0;
}

static const char *owned_url(const sl_provider *p)
{
    for (size_t i = 0; i < n_overrides; i++)
        if (overrides[i].p == p)
            return overrides[i].url;
    return NULL;
}

static void remember(const sl_provider *p, char *u)
{
    for (size_t i = 0; i < n_overrides; i++)
        if (overrides[i].p == p) {
            overrides[i].url = u;
            return;
        }
    if (n_overrides == 0)
        atexit(free_overrides);
    if (n_overrides < MAX_OVERRIDES) {
        overrides[n_overrides].p = p;
        overrides[n_overrides++].url = u;
    }
}

int sl_provider_set_url(sl_provider *provs, uint32_t n, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(err, errlen, "--provider-url wants NAME=URL (got '%s')", arg);
        return -1;
    }
    size_t nlen = (size_t)(eq - arg);
    sl_provider *p = NULL;
    for (uint32_t i = 0; i < n && !p; i++)
        if (strlen(provs[i].name) == nlen && memcmp(provs[i].name, arg, nlen) == 0)
            p = &provs[i];
    if (!p) {
        snprintf(err, errlen, "--provider-url: the spec has no provider '%.*s' (see --providers)", (int)nlen,
                 arg);
        return -1;
    }
    if (p->kind == SL_KIND_MOCK) {
        snprintf(err, errlen, "--provider-url: provider '%s' is a mock, which answers locally", p->name);
        return -1;
    }
    char why[200];
    if (url_ok(eq + 1, why, sizeof why) != 0) {
        snprintf(err, errlen, "--provider-url %s: %s", p->name, why);
        return -1;
    }
    size_t len = strlen(eq + 1);
    while (len > 8 && eq[len] == '/') /* eq[len] is the URL's last byte */
        len--;
    char *u = malloc(len + 1);
    if (!u) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    memcpy(u, eq + 1, len);
    u[len] = '\0';
    if (p->base_url == owned_url(p)) /* overridden twice: the last wins */
        free((char *)p->base_url);
    remember(p, u);
    p->base_url = u; /* lives as long as the process; freed at exit */
    return 0;
}
