/*
 * Semantic checks and reference resolution (see check.h). Each rule is one
 * function over the spec, reporting every violation it finds; the order of
 * the calls does not matter for output because diagnostics are sorted by
 * position when printed.
 *
 * This file runs the rules and holds the lookups they share and the
 * provider rules; the model rules are in check_models.c, keys, budgets and
 * prices in check_keys.c, addresses in check_addr.c.
 */
#include "check.h"

#include <stdlib.h>
#include <string.h>

#include "aws.h"
#include "cache.h"
#include "check_internal.h"
#include "guard.h"
#include "presets.h"
#include "secret.h"
#include "suggest.h"
#include "table.h"

const char *slc_chk_provider_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->providers[i].name.s;
}

const char *slc_chk_model_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->models[i].name.s;
}

bool slc_chk_str_eq(slc_str a, const char *b)
{
    return a.s && strlen(b) == a.len && memcmp(a.s, b, a.len) == 0;
}

int slc_chk_find_provider(const slc_spec *s, slc_str name)
{
    for (size_t i = 0; i < s->nproviders; i++)
        if (slc_chk_str_eq(name, s->providers[i].name.s))
            return (int)i;
    return -1;
}

int slc_chk_find_model(const slc_checker *c, slc_str name)
{
    size_t i = slc_strmap_get(&c->model_ix, name.s, name.len);
    return i == SIZE_MAX ? -1 : (int)i;
}

const char *slc_chk_hint(slc_checker *c, const char *word, slc_name_at at, size_t n)
{
    const char *h = slc_suggest_fn(word, at, c->s, n);
    return h ? slc_aprintf(c->a, " (did you mean '%s'?)", h) : "";
}

static bool is_word(slc_str s, bool dots)
{
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_' || (dots && ch == '.')))
            return false;
    }
    return true;
}

/* Settings that only some presets take, and what each preset requires.
 * False when the provider is unusable (its kind was unknown). */
static bool check_preset(slc_checker *c, slc_provider *p)
{
    const slc_preset *ps = slc_preset_of(p);
    const char *name = p->name.s;
    if (!ps)
        return false;
    const slc_str *azure_only[] = {&p->resource, &p->deployment, &p->api_version};
    static const char *const azure_keys[] = {"resource", "deployment", "api_version"};
    if (ps->url_style != SL_URL_AZURE) {
        for (size_t i = 0; i < 3; i++)
            if (azure_only[i]->s)
                slc_error(c->d, azure_only[i]->pos,
                          "provider '%s': %s applies to kind azure only (this one is %s)", name,
                          azure_keys[i], ps->name);
    } else {
        if (!p->api_version.s)
            slc_error(c->d, p->name.pos,
                      "provider '%s': kind azure needs api_version (such as 2024-10-21; Azure "
                      "answers 404 without it)",
                      name);
        else if (!is_word(p->api_version, true))
            slc_error(c->d, p->api_version.pos,
                      "provider '%s': api_version '%s' must be letters, digits, '-' and '.' only",
                      name, p->api_version.s);
        if (!p->resource.s && !p->base_url.s)
            slc_error(c->d, p->name.pos,
                      "provider '%s': kind azure needs resource (the NAME in "
                      "https://NAME.openai.azure.com) or base_url",
                      name);
        else if (p->resource.s && p->base_url.s)
            slc_error(c->d, p->resource.pos,
                      "provider '%s': give resource or base_url, not both", name);
        else if (p->resource.s && !is_word(p->resource, false))
            slc_error(c->d, p->resource.pos,
                      "provider '%s': resource '%s' must be letters, digits, '-' and '_' only",
                      name, p->resource.s);
        if (p->deployment.s && !is_word(p->deployment, true))
            slc_error(c->d, p->deployment.pos,
                      "provider '%s': deployment '%s' must be letters, digits, '-', '_' and '.' "
                      "only",
                      name, p->deployment.s);
    }
    slc_check_provider_aws(c->d, p, p->kind == SLC_KIND_BEDROCK);
    bool token = slc_chk_cloud(c, p, ps);
    if (ps->key_required && !p->api_key.s && !token)
        slc_error(c->d, p->name.pos, "provider '%s': kind %s needs api_key (such as env:%s)", name,
                  ps->name, ps->env);
    return true;
}

/* The preset's documented base URL; azure's is built from its resource. */
static const char *preset_base_url(slc_checker *c, const slc_provider *p)
{
    const slc_preset *ps = slc_preset_of(p);
    if (ps && ps->url_style == SL_URL_AZURE)
        return p->resource.s ? slc_aprintf(c->a, "https://%s.openai.azure.com", p->resource.s) : "";
    /* Vertex AI: regional hosts, and one for the global location. */
    if (ps && ps->kind == SLC_KIND_VERTEX && p->cloud.location.s)
        return slc_chk_str_eq(p->cloud.location, "global")
                   ? "https://aiplatform.googleapis.com/v1"
                   : slc_aprintf(c->a, "https://%s-aiplatform.googleapis.com/v1", p->cloud.location.s);
    if (p->kind == SLC_KIND_BEDROCK)
        return slc_aws_base_url(c->a, p);
    return ps && ps->base_url ? ps->base_url : "";
}

/* Which providers serve the Responses API themselves. Only OpenAI's own
 * service is known to; other OpenAI-compatible servers (vLLM, Ollama,
 * gateways) serve Chat Completions and some also Responses, so for them
 * the spec says so. */
static void check_responses(slc_checker *c)
{
    static const char openai_host[] = "https://api.openai.com/";
    for (size_t i = 0; i < c->s->nproviders; i++) {
        slc_provider *p = &c->s->providers[i];
        if (p->kind == SLC_KIND_MOCK)
            continue;
        if (p->kind != SLC_KIND_OPENAI) {
            if (p->responses_pos.line && p->responses)
                slc_error(c->d, p->responses_pos,
                          "provider '%s': responses: true applies to openai-kind providers (kind %s is "
                          "translated)",
                          p->name.s, slc_kind_name(p->kind));
            p->responses = false;
            continue;
        }
        if (!p->responses_pos.line)
            p->responses = p->base_url.s &&
                           strncmp(p->base_url.s, openai_host, sizeof openai_host - 1) == 0;
    }
}

static void check_providers(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nproviders; i++) {
        slc_provider *p = &c->s->providers[i];
        const char *name = p->name.s;
        if (!check_preset(c, p))
            continue;
        if (p->kind == SLC_KIND_MOCK) {
            if (p->base_url.s)
                slc_error(c->d, p->base_url.pos,
                          "provider '%s': a mock provider answers locally and takes no base_url",
                          name);
            if (p->api_key.s)
                slc_error_redacted(c->d, p->api_key.pos, p->api_key.end,
                                   "provider '%s': a mock provider takes no api_key", name);
            if (p->optional_pos.line)
                slc_error(c->d, p->optional_pos, "provider '%s': a mock provider takes no optional (it needs no key)",
                          name);
            if (p->responses_pos.line)
                slc_error(c->d, p->responses_pos,
                          "provider '%s': responses applies to openai-kind providers, and this one is a mock", name);
            if (p->http2_pos.line)
                slc_error(c->d, p->http2_pos,
                          "provider '%s': a mock provider answers in-process and takes no http2",
                          name);
            p->base_url = (slc_str){.s = "", .len = 0};
            continue;
        }
        if (p->optional && !p->api_key.s && p->kind != SLC_KIND_BEDROCK)
            slc_error(c->d, p->optional_pos,
                      "provider '%s': optional applies to a provider's api_key, and this one has none",
                      name);
        if (p->api_key.s && strncmp(p->api_key.s, "file:", 5) == 0) {
            /* Read by the gateway at start, not here (check_cloud.c says why). */
            if (!p->api_key.s[5] || strpbrk(p->api_key.s, "\r\n"))
                slc_error(c->d, p->api_key.pos, "provider '%s': api_key file: names no file", name);
            else
                p->api_key_file = p->api_key.s + 5;
        } else if (p->api_key.s) {
            if (strncmp(p->api_key.s, "env:", 4) != 0) {
                /* Point at it but never echo it: CI logs are not a vault. */
                slc_error_redacted(c->d, p->api_key.pos, p->api_key.end,
                                   "provider '%s': api_key must be env:NAME or file:PATH; a literal "
                                   "secret does not belong in the spec",
                                   name);
            } else if (!slc_valid_env_name(p->api_key.s + 4)) {
                slc_error(c->d, p->api_key.pos,
                          "provider '%s': api_key '%s' does not name a valid environment variable",
                          name, p->api_key.s);
            } else {
                p->api_key_env = p->api_key.s + 4;
            }
        }
        if (!p->base_url.s) {
            const char *def = preset_base_url(c, p);
            p->base_url = (slc_str){.s = def, .len = strlen(def)};
            continue;
        }
        if (strncmp(p->base_url.s, "http://", 7) != 0 && strncmp(p->base_url.s, "https://", 8) != 0) {
            slc_error(c->d, p->base_url.pos,
                      "provider '%s': base_url '%s' must start with http:// or https://", name,
                      p->base_url.s);
            continue;
        }
        if (strncmp(p->base_url.s, "http://", 7) == 0 &&
            !slc_chk_url_host_is_loopback(p->base_url.s + 7))
            slc_warning(c->d, p->base_url.pos,
                        "provider '%s': base_url '%s' is plain HTTP to a host that is not "
                        "loopback; prompts%s cross the network unencrypted (use https://)",
                        name, p->base_url.s, p->api_key_env ? " and the provider key" : "");
        size_t len = p->base_url.len;
        while (len > 8 && p->base_url.s[len - 1] == '/')
            len--;
        if (len != p->base_url.len) {
            p->base_url.s = slc_strndup(c->a, p->base_url.s, len);
            p->base_url.len = len;
        }
    }
}

/* A provider's `tls:` governs an https:// upstream. Turning verification
 * off lets anyone on the path impersonate the provider and read prompts
 * and the provider key, so it is allowed only where the path is this
 * machine (a local model server with a self-signed certificate). */
static void check_provider_tls(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nproviders; i++) {
        const slc_provider *p = &c->s->providers[i];
        const slc_provider_tls *t = &p->tls;
        if (!t->present)
            continue;
        const char *name = p->name.s, *url = p->base_url.s;
        if (p->kind == SLC_KIND_MOCK) {
            slc_error(c->d, t->pos, "provider '%s': a mock provider answers locally and takes no tls",
                      name);
            continue;
        }
        if (!url) /* no kind, so no default URL: already reported */
            continue;
        if (strncmp(url, "http://", 7) == 0) {
            slc_error(c->d, t->pos,
                      "provider '%s': tls applies to an https:// upstream, and base_url '%s' is "
                      "plain HTTP",
                      name, url);
            continue;
        }
        if (strncmp(url, "https://", 8) != 0 || t->verify)
            continue;
        if (!slc_chk_url_host_is_loopback(url + 8))
            slc_error(c->d, t->verify_pos,
                      "provider '%s': verify: false is allowed only for a loopback upstream, and "
                      "'%s' is not one: without verification anyone on the network path can pose "
                      "as the provider and read prompts and the provider key (give its CA with "
                      "'ca: FILE' instead)",
                      name, url);
        if (t->ca.s)
            slc_error(c->d, t->ca.pos,
                      "provider '%s': ca has no effect with verify: false (drop one of them)", name);
    }
}

/* Spans name models, providers and request ids (never keys or prompts),
 * so plain HTTP is allowed, as for a local collector or sidecar, but
 * warned about when it leaves the machine. The URL is the collector's
 * base ("http://127.0.0.1:4318"); the runtime appends /v1/traces, as
 * OTEL_EXPORTER_OTLP_ENDPOINT does. */
static void check_telemetry(slc_checker *c)
{
    slc_telemetry *t = &c->s->telemetry;
    if (!t->present)
        return;
    const char *u = t->otlp.s;
    int http = strncmp(u, "http://", 7) == 0, https = strncmp(u, "https://", 8) == 0;
    const char *host = u + (http ? 7 : 8);
    if ((!http && !https) || !*host || *host == '/' || strpbrk(u, " \t\r\n\"\\") ||
        strchr(u, '?') || strchr(u, '#')) {
        slc_error(c->d, t->otlp.pos,
                  "telemetry: otlp '%s' must be an http:// or https:// URL with a host and no "
                  "query (the collector's base, such as http://127.0.0.1:4318)",
                  u);
        t->present = false;
        return;
    }
    if (http && !slc_chk_url_host_is_loopback(host))
        slc_warning(c->d, t->otlp.pos,
                    "telemetry: otlp '%s' is plain HTTP to a host that is not loopback; spans "
                    "(model names, request ids) cross the network unencrypted (use https://)",
                    u);
    size_t len = t->otlp.len;
    while (len > 8 && u[len - 1] == '/')
        len--;
    if (len != t->otlp.len) {
        t->otlp.s = slc_strndup(c->a, u, len);
        t->otlp.len = len;
    }
}

void slc_check(slc_spec *s, slc_arena *a, slc_diags *d)
{
    slc_checker c = {.s = s, .a = a, .d = d};
    slc_strmap_init(&c.model_ix, s->nmodels);
    for (size_t i = 0; i < s->nmodels; i++)
        slc_strmap_put(&c.model_ix, s->models[i].name.s, s->models[i].name.len, i);
    check_providers(&c);
    check_provider_tls(&c);
    check_responses(&c);
    slc_chk_targets(&c);
    slc_chk_fallbacks(&c);
    slc_chk_cycles(&c);
    slc_chk_globs(&c);
    slc_cache_check(s, d); /* before unused: an embeddings provider is used */
    slc_chk_unused(&c);
    slc_chk_prices(&c);
    slc_chk_catalog(&c);
    slc_chk_keys(&c);
    slc_chk_listen(&c);
    slc_chk_unreachable(&c);
    slc_chk_priced(&c);
    check_telemetry(&c);
    slc_guard_check(s, a, d);
    slc_strmap_free(&c.model_ix);
    slc_strmap_free(&c.scope_cache);
    free(c.by_name);
    free(c.scope_sets);
}
