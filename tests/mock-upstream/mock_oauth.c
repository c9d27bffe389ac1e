/* mock-upstream's token endpoints, as strict as the real ones:
 *
 *   POST /token                         Google's JWT-bearer grant
 *   POST /{tenant}/oauth2/v2.0/token    Entra ID's client-credentials grant
 *
 * The Google grant verifies the assertion's RS256 signature with the
 * public key of the certificate `--google-sa EMAIL=CERT.pem` names, with
 * BearSSL's br_rsa_pkcs1_vrfy (its own code path, not the gateway's
 * signer), and checks the header, iss, aud (this endpoint's own URL, from
 * the Host header), scope, iat and exp. The Entra grant checks every form
 * field and the secret `--entra TENANT:CLIENT_ID:SECRET` names. Both
 * issue random tokens that live `--token-ttl S` seconds (default 3600);
 * once a token endpoint is configured, a bearer token on an API request
 * (mu_oauth_bearer_ok)
 *
 * must be one of them and live (0.25 s of clock skew allowed).
 *
 * POST /__oauth?fail=STATUS makes the token endpoints refuse with STATUS
 * (0: answer again), ?ttl=S sets the lifetime of tokens issued from now;
 * GET /__oauth counts grants and refusals.
 */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <bearssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define MAX_TOKENS 4096
/* Clock-skew tolerance, as real token checks have: a request sent just
 * before expiry may arrive just after on a loaded test machine. */
#define GRACE_S 0.25

static char g_sa_email[320];
static br_rsa_public_key g_sa_pk;
static unsigned char g_sa_n[1024], g_sa_e[16];
static int g_google;
static char g_tenant[128], g_client[128], g_secret[256];
static int g_entra;
static double g_ttl = 3600;
static int g_fail;
static long g_granted, g_refused;
static struct {
    char tok[48];
    double exp;
} g_tokens[MAX_TOKENS];
static int g_ntok;

static double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int mu_oauth_enabled(void) { return g_google || g_entra; }

/* ---- setup ---------------------------------------------------------------- */

typedef struct { unsigned char *p; size_t n, cap; } dbuf;

static void dappend(void *dst, const void *b, size_t n)
{
    dbuf *d = dst;
    if (d->n + n > d->cap) {
        d->cap = (d->n + n) * 2;
        d->p = realloc(d->p, d->cap);
        if (!d->p)
            abort();
    }
    memcpy(d->p + d->n, b, n);
    d->n += n;
}

/* EMAIL=CERT.pem: the service account and its public key. */
int mu_oauth_google(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof g_sa_email)
        return -1;
    snprintf(g_sa_email, sizeof g_sa_email, "%.*s", (int)(eq - arg), arg);
    FILE *f = fopen(eq + 1, "rb");
    if (!f)
        return -1;
    char pem[16384];
    size_t n = fread(pem, 1, sizeof pem - 1, f);
    fclose(f);
    pem[n] = '\0';
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    dbuf der = {0};
    int in = 0, got = 0;
    for (size_t off = 0; off < n;) {
        off += br_pem_decoder_push(&pc, pem + off, n - off);
        int ev = br_pem_decoder_event(&pc);
        if (ev == BR_PEM_BEGIN_OBJ) {
            in = !strcmp(br_pem_decoder_name(&pc), "CERTIFICATE") && !got;
            br_pem_decoder_setdest(&pc, in ? dappend : NULL, in ? &der : NULL);
        } else if (ev == BR_PEM_END_OBJ && in) {
            got = 1;
            in = 0;
        } else if (ev == BR_PEM_ERROR) {
            return -1;
        }
    }
    if (!got)
        return -1;
    br_x509_decoder_context xc;
    br_x509_decoder_init(&xc, NULL, NULL);
    br_x509_decoder_push(&xc, der.p, der.n);
    br_x509_pkey *pk = br_x509_decoder_get_pkey(&xc);
    free(der.p);
    if (!pk || pk->key_type != BR_KEYTYPE_RSA || pk->key.rsa.nlen > sizeof g_sa_n ||
        pk->key.rsa.elen > sizeof g_sa_e)
        return -1;
    memcpy(g_sa_n, pk->key.rsa.n, pk->key.rsa.nlen);
    memcpy(g_sa_e, pk->key.rsa.e, pk->key.rsa.elen);
    g_sa_pk = (br_rsa_public_key){g_sa_n, pk->key.rsa.nlen, g_sa_e, pk->key.rsa.elen};
    g_google = 1;
    return 0;
}

/* TENANT:CLIENT_ID:SECRET */
int mu_oauth_entra(const char *arg)
{
    if (sscanf(arg, "%127[^:]:%127[^:]:%255s", g_tenant, g_client, g_secret) != 3)
        return -1;
    g_entra = 1;
    return 0;
}

int mu_oauth_ttl(const char *arg)
{
    g_ttl = atof(arg);
    return g_ttl > 0 ? 0 : -1;
}

/* ---- tokens ------------------------------------------------------------------ */

static void issue(ctx *c)
{
    static unsigned long long x = 0;
    if (!x)
        x = (unsigned long long)time(NULL) ^ ((unsigned long long)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;
    double now = mono();
    int slot = -1;
    for (int i = 0; i < g_ntok && slot < 0; i++)
        if (g_tokens[i].exp <= now)
            slot = i;
    if (slot < 0)
        slot = g_ntok < MAX_TOKENS ? g_ntok++ : 0;
    char *t = g_tokens[slot].tok;
    int o = snprintf(t, sizeof g_tokens[slot].tok, "mock-oat-");
    for (int i = 0; i < 2; i++) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        o += snprintf(t + o, sizeof g_tokens[slot].tok - (size_t)o, "%016llx", x * 2685821657736338717ULL);
    }
    g_tokens[slot].exp = now + g_ttl;
    g_granted++;
    /* expires_in is whole seconds, as the real endpoints send it */
    mu_send_json(c, 200, json_pack("{s:s,s:I,s:s}", "access_token", t, "expires_in",
                                   (json_int_t)(g_ttl < 1 ? 1 : g_ttl), "token_type", "Bearer"));
}

int mu_oauth_bearer_ok(const char *authorization)
{
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0)
        return 0;
    const char *t = authorization + 7;
    double now = mono();
    for (int i = 0; i < g_ntok; i++)
        if (g_tokens[i].exp + GRACE_S > now && !strcmp(g_tokens[i].tok, t))
            return 1;
    return 0;
}

static void refuse(ctx *c, int status, const char *code, const char *desc)
{
    g_refused++;
    mu_send_json(c, status, json_pack("{s:s,s:s}", "error", code, "error_description", desc));
}

/* ---- forms and JWTs ------------------------------------------------------------ */

/* The form field `name`, percent-decoded into out; 0 when absent. */
static int form_field(const char *body, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    for (size_t i = 0; i < len;) {
        size_t e = i;
        while (e < len && body[e] != '&')
            e++;
        if (e - i > nl && !memcmp(body + i, name, nl) && body[i + nl] == '=') {
            size_t k = 0;
            for (size_t j = i + nl + 1; j < e && k + 1 < outlen; j++) {
                if (body[j] == '%' && j + 2 < e) {
                    char h[3] = {body[j + 1], body[j + 2], 0};
                    out[k++] = (char)strtol(h, NULL, 16);
                    j += 2;
                } else {
                    out[k++] = body[j] == '+' ? ' ' : body[j];
                }
            }
            out[k] = '\0';
            return 1;
        }
        i = e + 1;
    }
    return 0;
}

static int b64url_val(char ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '-') return 62;
    if (ch == '_') return 63;
    return -1;
}

/* Strict base64url without padding; -1 on a bad byte. */
static long b64url_dec(const char *s, size_t n, unsigned char *out, size_t cap)
{
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int d = b64url_val(s[i]);
        if (d < 0)
            return -1;
        v = (v << 6) | (unsigned)d;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (o >= cap)
                return -1;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return (long)o;
}

static json_t *b64_json(const char *s, size_t n)
{
    unsigned char buf[4096];
    long m = b64url_dec(s, n, buf, sizeof buf);
    return m < 0 ? NULL : json_loadb((const char *)buf, (size_t)m, 0, NULL);
}

static void google_grant(ctx *c)
{
    const mu_request *rq = c->rq;
    char gt[128], jwt[8192];
    if (!form_field(rq->body, rq->body_len, "grant_type", gt, sizeof gt) ||
        strcmp(gt, "urn:ietf:params:oauth:grant-type:jwt-bearer") != 0) {
        refuse(c, 400, "unsupported_grant_type", "grant_type must be the JWT bearer grant");
        return;
    }
    if (!form_field(rq->body, rq->body_len, "assertion", jwt, sizeof jwt)) {
        refuse(c, 400, "invalid_request", "no assertion");
        return;
    }
    char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.')) {
        refuse(c, 400, "invalid_grant", "the assertion is not header.claims.signature");
        return;
    }
    json_t *h = b64_json(jwt, (size_t)(d1 - jwt)), *cl = b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
    unsigned char sig[1024];
    long siglen = b64url_dec(d2 + 1, strlen(d2 + 1), sig, sizeof sig);
    const char *why = NULL;
    const char *host = json_string_value(json_object_get(rq->headers, "host"));
    char aud[300];
    snprintf(aud, sizeof aud, "http://%s/token", host ? host : "");
    json_int_t iat = json_integer_value(json_object_get(cl, "iat"));
    json_int_t exp = json_integer_value(json_object_get(cl, "exp"));
    long long now = (long long)time(NULL);
    if (!h || !cl || json_object_size(h) != 2 ||
        strcmp(json_string_value(json_object_get(h, "alg")) ?: "", "RS256") ||
        strcmp(json_string_value(json_object_get(h, "typ")) ?: "", "JWT"))
        why = "the assertion's header is not {\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    else if (strcmp(json_string_value(json_object_get(cl, "iss")) ?: "", g_sa_email))
        why = "iss is not the service account";
    else if (strcmp(json_string_value(json_object_get(cl, "aud")) ?: "", aud))
        why = "aud is not this token endpoint";
    else if (strcmp(json_string_value(json_object_get(cl, "scope")) ?: "",
                    "https://www.googleapis.com/auth/cloud-platform"))
        why = "scope is not cloud-platform";
    else if (!json_is_integer(json_object_get(cl, "iat")) || iat > now + 60 || iat < now - 300)
        why = "iat is not now";
    else if (!json_is_integer(json_object_get(cl, "exp")) || exp != iat + 3600)
        why = "exp is not iat + 3600";
    else if (siglen != (long)g_sa_pk.nlen)
        why = "the signature is not as long as the key";
    else {
        unsigned char want[32], got[32];
        br_sha256_context sc;
        br_sha256_init(&sc);
        br_sha256_update(&sc, jwt, (size_t)(d2 - jwt));
        br_sha256_out(&sc, want);
        br_rsa_pkcs1_vrfy vrfy = br_rsa_pkcs1_vrfy_get_default();
        if (!vrfy(sig, (size_t)siglen, BR_HASH_OID_SHA256, sizeof got, &g_sa_pk, got) ||
            memcmp(want, got, sizeof got) != 0)
            why = "invalid JWT Signature.";
    }
    json_decref(h);
    json_decref(cl);
    if (why) {
        refuse(c, 400, "invalid_grant", why);
        return;
    }
    issue(c);
}

static void entra_grant(ctx *c, const char *tenant)
{
    const mu_request *rq = c->rq;
    char gt[64], id[160], sec[300], scope[200];
    if (strcmp(tenant, g_tenant) != 0) {
        refuse(c, 400, "invalid_tenant", "AADSTS90002: Tenant not found.");
        return;
    }
    if (!form_field(rq->body, rq->body_len, "grant_type", gt, sizeof gt) || strcmp(gt, "client_credentials")) {
        refuse(c, 400, "unsupported_grant_type", "AADSTS70003: grant_type must be client_credentials");
        return;
    }
    if (!form_field(rq->body, rq->body_len, "scope", scope, sizeof scope) ||
        strcmp(scope, "https://cognitiveservices.azure.com/.default")) {
        refuse(c, 400, "invalid_scope", "AADSTS70011: the scope is not cognitiveservices .default");
        return;
    }
    if (!form_field(rq->body, rq->body_len, "client_id", id, sizeof id) || strcmp(id, g_client)) {
        refuse(c, 400, "unauthorized_client", "AADSTS700016: Application not found in the directory.");
        return;
    }
    if (!form_field(rq->body, rq->body_len, "client_secret", sec, sizeof sec) || strcmp(sec, g_secret)) {
        refuse(c, 401, "invalid_client", "AADSTS7000215: Invalid client secret provided.");
        return;
    }
    issue(c);
}

int mu_oauth_route(ctx *c, const char *path)
{
    const mu_request *rq = c->rq;
    if (!strcmp(path, "/__oauth")) {
        if (!strcmp(rq->method, "POST")) {
            const char *q = strchr(rq->target, '?');
            const char *f = q ? strstr(q, "fail=") : NULL, *t = q ? strstr(q, "ttl=") : NULL;
            if (f)
                g_fail = atoi(f + 5);
            if (t && atof(t + 4) > 0)
                g_ttl = atof(t + 4);
        }
        mu_send_json(c, 200, json_pack("{s:I,s:I,s:i,s:f}", "granted", (json_int_t)g_granted, "refused",
                                       (json_int_t)g_refused, "fail", g_fail, "ttl", g_ttl));
        return 1;
    }
    const char *suffix = "/oauth2/v2.0/token";
    size_t pl = strlen(path), sl = strlen(suffix);
    int google = g_google && !strcmp(path, "/token");
    int entra = g_entra && pl > sl + 1 && !strcmp(path + pl - sl, suffix);
    if (!google && !entra)
        return 0;
    if (strcmp(rq->method, "POST")) {
        mu_send_error(c, 405, "mock-upstream: method not allowed");
        return 1;
    }
    const char *ct = json_string_value(json_object_get(rq->headers, "content-type"));
    if (g_fail) {
        refuse(c, g_fail, g_fail == 401 ? "invalid_client" : "temporarily_unavailable",
               "mock-upstream: refusing as /__oauth?fail= asked");
    } else if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33)) {
        refuse(c, 400, "invalid_request", "the body must be application/x-www-form-urlencoded");
    } else if (google) {
        google_grant(c);
    } else {
        char tenant[160];
        snprintf(tenant, sizeof tenant, "%.*s", (int)(pl - sl - 1), path + 1);
        entra_grant(c, tenant);
    }
    return 1;
}
