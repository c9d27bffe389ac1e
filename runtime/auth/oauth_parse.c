/*
 * Service-account keys, JWT assertions and token answers (see
 * oauth_parse.h). BearSSL decodes the PEM key and signs; jansson reads
 * the JSON.
 */
#include "auth/oauth_parse.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GOOGLE_TOKEN_URI "https://oauth2.googleapis.com/token"

typedef struct der_buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} der_buf;

static void der_append(void *ctx, const void *buf, size_t len)
{
    der_buf *d = ctx;
    if (d->failed)
        return;
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 2048;
        while (cap < d->len + len)
            cap *= 2;
        unsigned char *q = malloc(cap);
        if (!q || cap > SL_OAUTH_DOC_MAX) {
            free(q);
            d->failed = 1;
            return;
        }
        if (d->p) {
            memcpy(q, d->p, d->len);
            explicit_bzero(d->p, d->len);
            free(d->p);
        }
        d->p = q;
        d->cap = cap;
    }
    memcpy(d->p + d->len, buf, len);
    d->len += len;
}

/* The DER of the one PRIVATE KEY / RSA PRIVATE KEY block of `pem`. */
static int pem_key_der(const char *pem, der_buf *out, char *err, size_t errlen)
{
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    const char *p = pem;
    size_t left = strlen(pem);
    int in_key = 0, found = 0;
    /* A final newline ends the last line for the decoder. */
    for (int tail = 0; left || tail < 1;) {
        size_t n;
        if (left) {
            n = br_pem_decoder_push(&pc, p, left);
            p += n;
            left -= n;
        } else {
            tail++;
            br_pem_decoder_push(&pc, "\n", 1);
        }
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ: {
            const char *name = br_pem_decoder_name(&pc);
            in_key = strcmp(name, "PRIVATE KEY") == 0 || strcmp(name, "RSA PRIVATE KEY") == 0;
            if (in_key && found) {
                snprintf(err, errlen, "private_key holds more than one key");
                return -1;
            }
            br_pem_decoder_setdest(&pc, in_key ? der_append : NULL, in_key ? out : NULL);
            break;
        }
        case BR_PEM_END_OBJ:
            if (in_key)
                found = 1;
            in_key = 0;
            break;
        case BR_PEM_ERROR:
            snprintf(err, errlen, "private_key is not valid PEM");
            return -1;
        default:
            break;
        }
    }
    if (out->failed) {
        snprintf(err, errlen, "private_key is too large or memory ran out");
        return -1;
    }
    if (!found) {
        snprintf(err, errlen, "private_key has no PEM \"PRIVATE KEY\" block");
        return -1;
    }
    return 0;
}

/* Copies the decoder's RSA key into one owned block. */
static int own_rsa(const br_rsa_private_key *sk, sl_sa_key *k)
{
    size_t n = sk->plen + sk->qlen + sk->dplen + sk->dqlen + sk->iqlen;
    k->mem = malloc(n);
    if (!k->mem)
        return -1;
    k->mem_len = n;
    unsigned char *m = k->mem;
    k->rsa.n_bitlen = sk->n_bitlen;
#define TAKE(f)                                  \
    memcpy(m, sk->f, sk->f##len);                \
    k->rsa.f = m;                                \
    k->rsa.f##len = sk->f##len;                  \
    m += sk->f##len;
    TAKE(p)
    TAKE(q)
    TAKE(dp)
    TAKE(dq)
    TAKE(iq)
#undef TAKE
    return 0;
}

/* Does the key sign, and does the signature verify with the public key
 * its primes make? A key file can decode and still be inconsistent (a
 * corrupted prime or CRT value): caught here, at start, instead of as a
 * token endpoint's refusal of every assertion. The public exponent is
 * recomputed when BearSSL can (it cannot for many keys OpenSSL makes),
 * else the usual 65537 (every Google service-account key) and 3 are
 * tried. */
static int key_signs(const br_rsa_private_key *sk)
{
    unsigned char n[512], sig[512], hash[32], got[32];
    /* i15: the default (i31) computes no 4096-bit modulus */
    br_rsa_compute_modulus cm = br_rsa_i15_compute_modulus;
    size_t nlen = cm(NULL, sk);
    if (nlen == 0 || nlen > sizeof n || nlen != (sk->n_bitlen + 7) / 8 || cm(n, sk) != nlen)
        return 0;
    memset(hash, 0x5a, sizeof hash);
    if (br_rsa_pkcs1_sign_get_default()(BR_HASH_OID_SHA256, hash, sizeof hash, sk, sig) != 1)
        return 0;
    uint32_t es[3] = {br_rsa_compute_pubexp_get_default()(sk), 65537, 3};
    for (size_t i = 0; i < 3; i++) {
        unsigned char eb[4];
        size_t elen = 0;
        for (int sh = 24; sh >= 0; sh -= 8)
            if (elen || (es[i] >> sh) & 0xff)
                eb[elen++] = (unsigned char)(es[i] >> sh);
        br_rsa_public_key pk = {n, nlen, eb, elen};
        if (elen && br_rsa_pkcs1_vrfy_get_default()(sig, nlen, BR_HASH_OID_SHA256, sizeof got, &pk, got) == 1 &&
            memcmp(hash, got, sizeof got) == 0)
            return 1;
    }
    return 0;
}

static int parse_key(const char *pem, sl_sa_key *k, char *err, size_t errlen)
{
    der_buf der = {0};
    int rc = pem_key_der(pem, &der, err, errlen);
    if (rc == 0) {
        br_skey_decoder_context dc;
        br_skey_decoder_init(&dc);
        br_skey_decoder_push(&dc, der.p, der.len);
        int e = br_skey_decoder_last_error(&dc);
        const br_rsa_private_key *sk = e == 0 ? br_skey_decoder_get_rsa(&dc) : NULL;
        if (e != 0) {
            snprintf(err, errlen, "private_key cannot be decoded (BearSSL error %d)", e);
            rc = -1;
        } else if (!sk) {
            snprintf(err, errlen, "private_key is not an RSA key (RS256 needs one)");
            rc = -1;
        } else if (sk->n_bitlen < 2048 || sk->n_bitlen > 4096) {
            snprintf(err, errlen, "private_key is a %u-bit RSA key (2048 to 4096 bits expected)",
                     (unsigned)sk->n_bitlen);
            rc = -1;
        } else if (!key_signs(sk)) {
            snprintf(err, errlen, "private_key is not a consistent RSA key (it cannot sign)");
            rc = -1;
        } else if (own_rsa(sk, k) != 0) {
            snprintf(err, errlen, "out of memory");
            rc = -1;
        }
        explicit_bzero(&dc, sizeof dc);
    }
    if (der.p) {
        explicit_bzero(der.p, der.len);
        free(der.p);
    }
    return rc;
}

static const char *str_member(json_t *o, const char *name)
{
    json_t *v = json_object_get(o, name);
    return json_is_string(v) && json_string_length(v) > 0 ? json_string_value(v) : NULL;
}

/* A value that goes into a header or a URL as is. */
static int printable(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
            return 0;
    return 1;
}

int sl_sa_parse(const char *json, size_t len, sl_sa_key *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (len > SL_OAUTH_DOC_MAX) {
        snprintf(err, errlen, "larger than %d KiB: not a service-account key", SL_OAUTH_DOC_MAX / 1024);
        return -1;
    }
    json_error_t je;
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(o)) {
        /* jansson's text quotes no input, only where it failed. */
        snprintf(err, errlen, "not a JSON object (line %d: %s)", je.line, o ? "not an object" : je.text);
        json_decref(o);
        return -1;
    }
    int rc = -1;
    const char *type = str_member(o, "type");
    const char *email = str_member(o, "client_email");
    const char *key = str_member(o, "private_key");
    const char *uri = str_member(o, "token_uri");
    if (json_object_get(o, "type") && (!type || strcmp(type, "service_account") != 0))
        snprintf(err, errlen, "type is not \"service_account\" (sluice takes a service account's key "
                              "file, as `gcloud iam service-accounts keys create` writes it)");
    else if (!email)
        snprintf(err, errlen, "no client_email");
    else if (!printable(email) || strlen(email) > 320)
        snprintf(err, errlen, "client_email is not a plain address");
    else if (!key)
        snprintf(err, errlen, "no private_key");
    else if (uri && (!printable(uri) || strlen(uri) > 2048))
        snprintf(err, errlen, "token_uri is not a plain URL");
    else if (parse_key(key, out, err, errlen) == 0) {
        out->client_email = strdup(email);
        out->token_uri = strdup(uri ? uri : GOOGLE_TOKEN_URI);
        if (out->client_email && out->token_uri)
            rc = 0;
        else
            snprintf(err, errlen, "out of memory");
    }
    json_decref(o);
    if (rc != 0)
        sl_sa_free(out);
    return rc;
}

void sl_sa_free(sl_sa_key *k)
{
    if (k->mem) {
        explicit_bzero(k->mem, k->mem_len);
        free(k->mem);
    }
    free(k->client_email);
    free(k->token_uri);
    memset(k, 0, sizeof *k);
}

size_t sl_b64url(const unsigned char *in, size_t n, char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0, i = 0;
    for (; i + 2 < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
        out[o++] = a[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = a[v >> 18];
        out[o++] = a[(v >> 12) & 63];
        out[o++] = a[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

static char *b64_of(const char *s, size_t n)
{
    char *out = malloc((n + 2) / 3 * 4 + 1);
    if (out)
        sl_b64url((const unsigned char *)s, n, out);
    return out;
}

char *sl_sa_jwt(const sl_sa_key *k, const char *scope, int64_t now)
{
    static const char header[] = "{\"alg\":\"RS256\",\"typ\":\"JWT\"}";
    json_t *claims = json_pack("{s:s,s:s,s:s,s:I,s:I}", "iss", k->client_email, "scope", scope, "aud",
                               k->token_uri, "iat", (json_int_t)now, "exp", (json_int_t)(now + 3600));
    char *cj = claims ? json_dumps(claims, JSON_COMPACT) : NULL;
    json_decref(claims);
    char *h64 = b64_of(header, sizeof header - 1);
    char *c64 = cj ? b64_of(cj, strlen(cj)) : NULL;
    free(cj);
    size_t siglen = (k->rsa.n_bitlen + 7) / 8;
    unsigned char sig[512];
    char *jwt = NULL;
    if (h64 && c64 && siglen <= sizeof sig) {
        size_t hl = strlen(h64), cl = strlen(c64);
        jwt = malloc(hl + 1 + cl + 1 + (siglen + 2) / 3 * 4 + 1);
        if (jwt) {
            memcpy(jwt, h64, hl);
            jwt[hl] = '.';
            memcpy(jwt + hl + 1, c64, cl + 1);
            unsigned char hash[32];
            br_sha256_context sc;
            br_sha256_init(&sc);
            br_sha256_update(&sc, jwt, hl + 1 + cl);
            br_sha256_out(&sc, hash);
            br_rsa_pkcs1_sign sign = br_rsa_pkcs1_sign_get_default();
            if (sign(BR_HASH_OID_SHA256, hash, sizeof hash, &k->rsa, sig) != 1) {
                free(jwt);
                jwt = NULL;
            } else {
                jwt[hl + 1 + cl] = '.';
                sl_b64url(sig, siglen, jwt + hl + 1 + cl + 1);
            }
        }
    }
    free(h64);
    free(c64);
    return jwt;
}

int sl_oauth_parse_token(const char *body, size_t len, char **token, int64_t *expires_in, char *err,
                         size_t errlen)
{
    *token = NULL;
    *expires_in = 0;
    if (len > SL_OAUTH_DOC_MAX) {
        snprintf(err, errlen, "the answer is larger than %d KiB", SL_OAUTH_DOC_MAX / 1024);
        return -1;
    }
    json_t *o = json_loadb(body, len, 0, NULL);
    if (!json_is_object(o)) {
        snprintf(err, errlen, "the answer is not a JSON object");
        json_decref(o);
        return -1;
    }
    int rc = -1;
    const char *tok = str_member(o, "access_token");
    json_t *exp = json_object_get(o, "expires_in");
    const char *ty = str_member(o, "token_type");
    /* Entra sends expires_in as a number; some servers send a string. */
    json_int_t secs = json_is_integer(exp) ? json_integer_value(exp)
                      : json_is_string(exp) ? strtoll(json_string_value(exp), NULL, 10)
                      : exp == NULL        ? 3600
                                           : -1;
    if (!tok)
        snprintf(err, errlen, "the answer has no access_token");
    else if (!printable(tok) || strlen(tok) > 16384)
        snprintf(err, errlen, "the access_token is not printable ASCII (or is over 16 KiB)");
    else if (ty && strcasecmp(ty, "bearer") != 0)
        snprintf(err, errlen, "the token_type is not Bearer");
    else if (secs <= 0 || secs > 7 * 86400)
        snprintf(err, errlen, "expires_in is not a lifetime in seconds (1 s to 7 days)");
    else if (!(*token = strdup(tok)))
        snprintf(err, errlen, "out of memory");
    else {
        *expires_in = secs;
        rc = 0;
    }
    json_decref(o);
    return rc;
}

void sl_oauth_error_code(const char *body, size_t len, char *out, size_t outlen)
{
    out[0] = '\0';
    json_t *o = len <= SL_OAUTH_DOC_MAX ? json_loadb(body, len, 0, NULL) : NULL;
    const char *e = json_is_object(o) ? str_member(o, "error") : NULL;
    size_t n = e ? strlen(e) : 0;
    int ok = n > 0 && n < outlen && n <= 64;
    for (size_t i = 0; ok && i < n; i++)
        ok = (e[i] >= 'a' && e[i] <= 'z') || (e[i] >= 'A' && e[i] <= 'Z') || e[i] == '_' || e[i] == '-' ||
             (e[i] >= '0' && e[i] <= '9');
    if (ok)
        memcpy(out, e, n + 1);
    json_decref(o);
}
