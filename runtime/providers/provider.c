/*
 * The adapter table: provider kind -> ops, the libcurl transport the real
 * providers share, and the operator's run-time base URL override.
 */
#include "providers/provider.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/urlhost.h"
#include "tls/pem.h"

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
    case SL_KIND_VERTEX: return &sl_provider_vertex;
    case SL_KIND_BEDROCK: return &sl_provider_bedrock;
    }
    return &sl_provider_openai;
}

sl_proto sl_provider_proto(const sl_provider *p, const char *model, sl_op op)
{
    const sl_provider_ops *ops = sl_provider_ops_of(p->kind);
    return ops->proto_for ? ops->proto_for(p, model, op) : ops->proto(op);
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

void sl_provider_request_headers(const sl_call *c, const char *request_id, const char *auth,
                                 sl_header_add add, void *ctx)
{
    add(ctx, "Content-Type: application/json");
    add(ctx, "User-Agent: sluice/" SLUICE_VERSION);
    add(ctx, sl_arena_cat(c->arena, "x-request-id: ", request_id, (char *)NULL));
    /* Bedrock streams are event-stream frames whatever is accepted; its
     * SDKs send no Accept for them (InvokeModel's Accept names the model's
     * output type), so none is sent. */
    if (c->stream && c->prov->kind != SL_KIND_BEDROCK)
        add(ctx, "Accept: text/event-stream");
    if (auth)
        add(ctx, auth);
    const sl_provider_ops *ops = sl_provider_ops_of(c->prov->kind);
    if (ops->headers)
        ops->headers(c, add, ctx);
    sl_provider_extra_headers(c, add, ctx);
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

/* The slot of provider address p gets u; the URL it held is freed (the
 * same provider overridden twice, or a new copy of the providers at the
 * address of an old one). */
static void remember(const sl_provider *p, char *u)
{
    for (size_t i = 0; i < n_overrides; i++)
        if (overrides[i].p == p) {
            free(overrides[i].url);
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
    /* sluicec allowed verify: false for this provider's loopback host only. */
    if (p->tls && !p->tls->verify &&
        (strncmp(eq + 1, "https://", 8) != 0 || !sl_url_host_is_loopback(eq + 1 + 8))) {
        snprintf(err, errlen,
                 "--provider-url %s: the spec turns TLS verification off for this provider "
                 "(verify: false), which is allowed only for an https:// loopback host",
                 p->name);
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
    remember(p, u); /* overridden twice: the last wins, the first is freed */
    p->base_url = u; /* lives as long as the process; freed at exit */
    return 0;
}

/* One file a provider's tls: names, loaded as libcurl will load it, so a
 * missing or broken file stops the start instead of failing every request. */
static int tls_file(const sl_provider *p, const char *what, const char *path, int key,
                    const br_x509_certificate **leaf, sl_tls_chain *ch, sl_tls_key *k, char *err,
                    size_t errlen)
{
    char why[512];
    int rc = key ? sl_tls_read_key(path, k, why, sizeof why)
                 : sl_tls_read_chain(path, ch, why, sizeof why);
    if (rc != 0) {
        char cwd[512] = "";
        if (path[0] != '/' && !getcwd(cwd, sizeof cwd))
            cwd[0] = '\0';
        snprintf(err, errlen, "provider '%s': tls %s: %s%s%s%s", p->name, what, why,
                 cwd[0] ? " (a relative path is read in the working directory, " : "", cwd,
                 cwd[0] ? ")" : "");
        return -1;
    }
    if (leaf)
        *leaf = &ch->certs[0];
    return 0;
}

int sl_provider_check_tls(const sl_provider *provs, uint32_t n, char *err, size_t errlen)
{
    for (uint32_t i = 0; i < n; i++) {
        const sl_provider *p = &provs[i];
        const sl_provider_tls *t = p->tls;
        if (!t)
            continue;
        sl_tls_chain ch;
        sl_tls_key k;
        const br_x509_certificate *leaf = NULL;
        if (t->ca) {
            if (tls_file(p, "ca", t->ca, 0, NULL, &ch, NULL, err, errlen) != 0)
                return -1;
            sl_tls_chain_free(&ch);
        }
        if (!t->client_cert)
            continue;
        if (tls_file(p, "client_cert", t->client_cert, 0, &leaf, &ch, NULL, err, errlen) != 0)
            return -1;
        if (tls_file(p, "client_key", t->client_key, 1, NULL, NULL, &k, err, errlen) != 0) {
            sl_tls_chain_free(&ch);
            return -1;
        }
        int match = sl_tls_key_matches(leaf, &k);
        sl_tls_key_free(&k);
        sl_tls_chain_free(&ch);
        if (match != 1) {
            snprintf(err, errlen,
                     "provider '%s': tls client_key '%s' is not the key of the first certificate "
                     "in client_cert '%s'",
                     p->name, t->client_key, t->client_cert);
            return -1;
        }
    }
    return 0;
}
