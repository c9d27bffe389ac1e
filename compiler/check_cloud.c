/*
 * Rules for the OAuth-token providers (spec_cloud.c reads their settings):
 * Vertex AI needs a project, a location and a service-account key file;
 * Azure with `auth: entra` needs a tenant, a client id and a client secret
 * instead of api_key. Secrets are never literal: client_secret is env:NAME
 * or file:PATH, credentials a path (or env:NAME holding one).
 *
 * sluicec does not open the key or secret files: they belong to the host
 * the gateway runs on (a mounted secret), not to the machine or CI job
 * that compiles the spec, and reading them there would copy a secret's
 * existence into build logs. The gateway reads them at start and stops,
 * naming the provider and the path, when one is missing or unusable.
 * (TLS files differ: they are checked here because they ship with the
 * spec.)
 */
#include <string.h>

#include "check_internal.h"
#include "presets.h"
#include "secret.h"
#include "table.h"

static bool word_ok(slc_str s, const char *extra)
{
    if (!s.len)
        return false;
    for (size_t i = 0; i < s.len; i++) {
        char ch = s.s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr(extra, ch)))
            return false;
    }
    return true;
}

/* A required setting of letters, digits and the characters in `extra`
 * (`allowed` says which in the message): `needs` names what requires it,
 * `hint` what it is. */
static void need_word(slc_checker *c, const slc_provider *p, slc_str v, const char *needs,
                      const char *key, const char *hint, const char *extra, const char *allowed)
{
    if (!v.s)
        slc_error(c->d, p->name.pos, "provider '%s': %s needs %s (%s)", p->name.s, needs, key, hint);
    else if (!word_ok(v, extra))
        slc_error(c->d, v.pos, "provider '%s': %s '%s' must be %s only", p->name.s, key, v.s, allowed);
}

static void only_for(slc_checker *c, const slc_provider *p, const slc_str *v, const char *key,
                     const char *what)
{
    if (v->s)
        slc_error(c->d, v->pos, "provider '%s': %s applies to %s only", p->name.s, key, what);
}

/* An api_key where none applies: quoted unless it is a literal secret. */
static void key_not_here(slc_checker *c, const slc_provider *p, const char *why)
{
    const slc_str *k = &p->api_key;
    if (slc_is_secret_ref(k->s))
        slc_error(c->d, k->pos, "provider '%s': %s", p->name.s, why);
    else
        slc_error_redacted(c->d, k->pos, k->end, "provider '%s': %s", p->name.s, why);
}

static void check_token_url(slc_checker *c, const slc_provider *p)
{
    slc_str u = p->cloud.token_url;
    if (!u.s)
        return;
    bool https = strncmp(u.s, "https://", 8) == 0 && u.s[8] && u.s[8] != '/';
    bool local = strncmp(u.s, "http://", 7) == 0 && slc_chk_url_host_is_loopback(u.s + 7);
    if ((!https && !local) || strpbrk(u.s, " \t\r\n#"))
        slc_error(c->d, u.pos,
                  "provider '%s': token_url '%s' must be an https:// URL (or http:// to a loopback "
                  "host); the token endpoint receives the provider's credentials",
                  p->name.s, u.s);
}

static void check_vertex(slc_checker *c, slc_provider *p)
{
    slc_provider_cloud *cl = &p->cloud;
    const char *name = p->name.s;
    need_word(c, p, cl->project, "kind vertex", "project", "the Google Cloud project id", "-.:_",
              "letters, digits, '-', '.', ':' and '_'");
    need_word(c, p, cl->location, "kind vertex", "location", "a region such as us-east5, or global", "-",
              "letters, digits and '-'");
    if (!cl->credentials.s)
        slc_error(c->d, p->name.pos,
                  "provider '%s': kind vertex needs credentials (the path of a service-account "
                  "JSON key file, or env:NAME holding that path)",
                  name);
    else
        slc_check_secret_ref(c->d, p->name.s, cl->credentials, "credentials", true, &cl->credentials_env, &cl->credentials_path);
    if (cl->publisher.s) {
        if (slc_chk_str_eq(cl->publisher, "google"))
            cl->publisher_code = 1;
        else if (slc_chk_str_eq(cl->publisher, "anthropic"))
            cl->publisher_code = 2;
        else
            slc_error(c->d, cl->publisher.pos,
                      "provider '%s': publisher '%s' must be google or anthropic (absent: claude-* "
                      "models are Anthropic's, others Google's)",
                      name, cl->publisher.s);
    }
    if (p->api_key.s)
        key_not_here(c, p, "kind vertex authenticates with credentials (a service account), not api_key");
}

static void check_entra(slc_checker *c, slc_provider *p)
{
    slc_provider_cloud *cl = &p->cloud;
    const char *name = p->name.s;
    cl->entra = true;
    need_word(c, p, cl->tenant_id, "auth: entra", "tenant_id", "the directory id", "-.",
              "letters, digits, '-' and '.'");
    need_word(c, p, cl->client_id, "auth: entra", "client_id", "the application id", "-.",
              "letters, digits, '-' and '.'");
    if (!cl->client_secret.s)
        slc_error(c->d, p->name.pos,
                  "provider '%s': auth: entra needs client_secret (env:NAME or file:PATH)", name);
    else
        slc_check_secret_ref(c->d, p->name.s, cl->client_secret, "client_secret", false, &cl->secret_env, &cl->secret_file);
    if (p->api_key.s)
        key_not_here(c, p, "auth: entra sends an Entra ID token, so api_key does not apply");
    if (p->optional_pos.line)
        slc_error(c->d, p->optional_pos,
                  "provider '%s': optional applies to a provider's api_key, and this one has none", name);
}

bool slc_chk_cloud(slc_checker *c, slc_provider *p, const slc_preset *ps)
{
    slc_provider_cloud *cl = &p->cloud;
    bool vertex = ps->kind == SLC_KIND_VERTEX, azure = ps->url_style == SL_URL_AZURE;
    if (!vertex) {
        only_for(c, p, &cl->project, "project", "kind vertex");
        only_for(c, p, &cl->location, "location", "kind vertex");
        only_for(c, p, &cl->publisher, "publisher", "kind vertex");
    }
    if (cl->auth.s && !azure)
        slc_error(c->d, cl->auth.pos, "provider '%s': auth applies to kind azure only (this one is %s)",
                  p->name.s, ps->name);
    bool entra = false;
    if (cl->auth.s && azure) {
        if (slc_chk_str_eq(cl->auth, "entra"))
            entra = true;
        else if (!slc_chk_str_eq(cl->auth, "api_key"))
            slc_error(c->d, cl->auth.pos, "provider '%s': auth '%s' must be api_key or entra", p->name.s,
                      cl->auth.s);
    }
    if (!entra) {
        only_for(c, p, &cl->tenant_id, "tenant_id", "auth: entra");
        only_for(c, p, &cl->client_id, "client_id", "auth: entra");
        if (cl->client_secret.s)
            slc_error_redacted(c->d, cl->client_secret.pos, cl->client_secret.end,
                               "provider '%s': client_secret applies to auth: entra only", p->name.s);
    }
    if (cl->token_url.s && !vertex && !entra)
        only_for(c, p, &cl->token_url, "token_url", "kind vertex and auth: entra");
    else
        check_token_url(c, p);
    if (vertex)
        check_vertex(c, p);
    if (entra)
        check_entra(c, p);
    /* The preset's api_key requirement does not hold for a token provider. */
    return vertex || entra;
}
