/*
 * The start-time half of OAuth token sources (see oauth.h): every OAuth
 * provider's credentials, read once before the workers start and only
 * read afterwards, the operator's --token-url overrides, and the grant's
 * form body, the one place a secret leaves this file.
 */
#include "auth/oauth_internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/secret.h"
#include "core/urlhost.h"

#define GOOGLE_SCOPE "https://www.googleapis.com/auth/cloud-platform"
#define ENTRA_SCOPE "https://cognitiveservices.azure.com/.default"
#define ENTRA_HOST "https://login.microsoftonline.com"

/* ---- start-time credentials (process-wide, read-only once serving) ---- */

static sl_oauth_conf *confs; /* per provider index; .p NULL when it has no OAuth */
static uint32_t nconfs;

static int url_allowed(const char *u)
{
    if (strncmp(u, "https://", 8) == 0)
        return u[8] && u[8] != '/';
    return strncmp(u, "http://", 7) == 0 && sl_url_host_is_loopback(u + 7);
}

/* --token-url overrides: provider -> URL (into argv). */
enum { MAX_TOKEN_URLS = 64 };
static struct {
    const char *name;
    size_t len;
    const char *url;
} token_urls[MAX_TOKEN_URLS];
static size_t ntoken_urls;

int sl_oauth_set_token_url(const sl_provider *provs, uint32_t n, const char *arg, char *err, size_t errlen)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) {
        snprintf(err, errlen, "--token-url wants NAME=URL (got '%s')", arg);
        return -1;
    }
    size_t nlen = (size_t)(eq - arg);
    const sl_provider *p = NULL;
    for (uint32_t i = 0; i < n && !p; i++)
        if (strlen(provs[i].name) == nlen && memcmp(provs[i].name, arg, nlen) == 0)
            p = &provs[i];
    if (!p || !p->oauth) {
        snprintf(err, errlen, "--token-url: the spec has no provider '%.*s' that fetches OAuth tokens "
                              "(kind vertex, or azure with auth: entra)", (int)nlen, arg);
        return -1;
    }
    if (!url_allowed(eq + 1) || strpbrk(eq + 1, " \t\r\n#")) {
        snprintf(err, errlen, "--token-url %s: '%s' must be https:// (or http:// to a loopback host)",
                 p->name, eq + 1);
        return -1;
    }
    if (ntoken_urls == MAX_TOKEN_URLS) {
        snprintf(err, errlen, "--token-url: at most %d", MAX_TOKEN_URLS);
        return -1;
    }
    token_urls[ntoken_urls].name = arg;
    token_urls[ntoken_urls].len = nlen;
    token_urls[ntoken_urls++].url = eq + 1;
    return 0;
}

static const char *token_url_override(const sl_provider *p)
{
    const char *u = NULL; /* the last one given wins */
    for (size_t i = 0; i < ntoken_urls; i++)
        if (strlen(p->name) == token_urls[i].len && memcmp(p->name, token_urls[i].name, token_urls[i].len) == 0)
            u = token_urls[i].url;
    return u;
}

static int load_conf(const sl_provider *p, sl_oauth_conf *c, char *err, size_t errlen)
{
    const sl_provider_oauth *o = p->oauth;
    char why[512];
    c->p = p;
    const char *forced = token_url_override(p);
    if (o->grant == SL_OAUTH_GOOGLE_SA) {
        const char *path = o->credentials;
        if (o->credentials_env) {
            path = getenv(o->credentials_env);
            if (!path || !*path) {
                snprintf(err, errlen, "provider '%s': credentials: environment variable %s is %s",
                         p->name, o->credentials_env, path ? "empty" : "not set");
                return -1;
            }
        }
        size_t len;
        char *text = sl_secret_slurp(path, &len, why, sizeof why);
        if (!text) {
            snprintf(err, errlen, "provider '%s': credentials: %s", p->name, why);
            return -1;
        }
        int rc = sl_sa_parse(text, len, &c->sa, why, sizeof why);
        sl_secret_wipe_free(text, len);
        if (rc != 0) {
            snprintf(err, errlen, "provider '%s': credentials '%s' is not a usable service-account key: %s",
                     p->name, path, why);
            return -1;
        }
        c->token_url = strdup(forced ? forced : o->token_url ? o->token_url : c->sa.token_uri);
    } else {
        int unset;
        c->secret = sl_secret_value(o->secret_env, o->secret_file, &unset, why, sizeof why);
        if (!c->secret) {
            snprintf(err, errlen, "provider '%s': client_secret: %s", p->name, why);
            return -1;
        }
        if (forced || o->token_url)
            c->token_url = strdup(forced ? forced : o->token_url);
        else {
            size_t n = strlen(ENTRA_HOST) + strlen(o->tenant_id) + 32;
            c->token_url = malloc(n);
            if (c->token_url)
                snprintf(c->token_url, n, "%s/%s/oauth2/v2.0/token", ENTRA_HOST, o->tenant_id);
        }
    }
    if (!c->token_url) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (!url_allowed(c->token_url)) {
        snprintf(err, errlen,
                 "provider '%s': token endpoint '%s' must be https:// (or http:// to a loopback "
                 "host)",
                 p->name, c->token_url);
        return -1;
    }
    return 0;
}

int sl_oauth_init(const sl_table *t, char *err, size_t errlen)
{
    sl_oauth_shutdown();
    int any = 0;
    for (uint32_t i = 0; i < t->provider_count; i++)
        any |= t->providers[i].oauth != NULL;
    if (!any)
        return 0;
    confs = calloc(t->provider_count, sizeof *confs);
    if (!confs) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    nconfs = t->provider_count;
    for (uint32_t i = 0; i < t->provider_count; i++)
        if (t->providers[i].oauth && load_conf(&t->providers[i], &confs[i], err, errlen) != 0)
            return -1;
    return 0;
}

void sl_oauth_shutdown(void)
{
    for (uint32_t i = 0; i < nconfs; i++) {
        sl_sa_free(&confs[i].sa);
        sl_secret_free(confs[i].secret);
        free(confs[i].token_url);
    }
    free(confs);
    confs = NULL;
    nconfs = 0;
}

const sl_oauth_conf *sl_oauth_conf_at(uint32_t i)
{
    return i < nconfs && confs[i].p ? &confs[i] : NULL;
}

int sl_oauth_any(void) { return confs != NULL; }

char *sl_oauth_form(const sl_oauth_conf *c)
{
    const sl_provider_oauth *o = c->p->oauth;
    if (o->grant == SL_OAUTH_GOOGLE_SA) {
        char *jwt = sl_sa_jwt(&c->sa, GOOGLE_SCOPE, (int64_t)time(NULL));
        if (!jwt)
            return NULL;
        static const char pre[] = "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion=";
        size_t n = sizeof pre + strlen(jwt);
        char *b = malloc(n);
        if (b)
            snprintf(b, n, "%s%s", pre, jwt);
        sl_secret_free(jwt);
        return b;
    }
    char *id = curl_easy_escape(NULL, o->client_id, 0);
    char *sec = curl_easy_escape(NULL, c->secret, 0);
    char *scope = curl_easy_escape(NULL, ENTRA_SCOPE, 0);
    char *b = NULL;
    if (id && sec && scope) {
        size_t n = strlen(id) + strlen(sec) + strlen(scope) + 96;
        b = malloc(n);
        if (b)
            snprintf(b, n, "grant_type=client_credentials&client_id=%s&client_secret=%s&scope=%s", id, sec,
                     scope);
    }
    curl_free(id);
    if (sec)
        sl_secret_free(sec); /* curl_free is free() */
    curl_free(scope);
    return b;
}
