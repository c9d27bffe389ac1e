/* SigV4 verification for the mock (see mock_sigv4.h). Steps as AWS's
 * documentation gives them: canonical URI (each path segment URI-encoded
 * again, services other than S3), canonical query (parameters sorted by
 * encoded name), canonical headers (the SignedHeaders list, names
 * lowercased, values trimmed with inner runs of blanks collapsed), the
 * SignedHeaders list, the hex SHA-256 of the payload; then the string to
 * sign and the HMAC chain from "AWS4" + secret. */
#define _GNU_SOURCE
#include "mock_sigv4.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_upstream.h"

static void hex(const unsigned char *d, size_t n, char *o)
{
    for (size_t i = 0; i < n; i++)
        sprintf(o + 2 * i, "%02x", d[i]);
}

static void sha_hex(const void *p, size_t n, char o[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256(p, n, d);
    hex(d, sizeof d, o);
}

static void mac(const void *k, size_t kn, const char *m, unsigned char o[32])
{
    unsigned int ol = 32;
    HMAC(EVP_sha256(), k, (int)kn, (const unsigned char *)m, strlen(m), o, &ol);
}

static int unreserved(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
           ch == '_' || ch == '.' || ch == '~';
}

static void enc(mu_buf *b, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (unreserved(ch))
            mu_buf_add(b, &s[i], 1);
        else
            mu_buf_printf(b, "%%%02X", ch);
    }
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Query parameters as they arrived, re-encoded canonically, sorted. */
static void canonical_query(mu_buf *b, const char *q)
{
    char *params[64];
    size_t np = 0;
    char *dup = strdup(q ? q : "");
    for (char *save, *t = strtok_r(dup, "&", &save); t && np < 64; t = strtok_r(NULL, "&", &save)) {
        mu_buf p = {0};
        char *eq = strchr(t, '=');
        enc(&p, t, eq ? (size_t)(eq - t) : strlen(t));
        mu_buf_add(&p, "=", 1);
        if (eq)
            enc(&p, eq + 1, strlen(eq + 1));
        mu_buf_add(&p, "", 1);
        params[np++] = p.p;
    }
    qsort(params, np, sizeof params[0], cmp_str);
    for (size_t i = 0; i < np; i++) {
        if (i)
            mu_buf_add(b, "&", 1);
        mu_buf_str(b, params[i]);
        free(params[i]);
    }
    free(dup);
}

static void trimmed(mu_buf *b, const char *v)
{
    while (*v == ' ' || *v == '\t')
        v++;
    size_t n = strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
        n--;
    int blank = 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i] == ' ' || v[i] == '\t') {
            blank = 1;
            continue;
        }
        if (blank)
            mu_buf_add(b, " ", 1);
        blank = 0;
        mu_buf_add(b, &v[i], 1);
    }
}

static mu_sig_result say(mu_sig_result r, char *why, size_t n, const char *msg)
{
    if (why && n)
        snprintf(why, n, "%s", msg);
    return r;
}

mu_sig_result mu_sigv4_verify(const mu_aws *aws, const char *method, const char *target, json_t *headers,
                              const char *body, size_t len, char *why, size_t whylen)
{
    const char *auth = json_string_value(json_object_get(headers, "authorization"));
    const char *date = json_string_value(json_object_get(headers, "x-amz-date"));
    if (!auth || strncmp(auth, "AWS4-HMAC-SHA256 ", 17) != 0 || !date)
        return say(MU_SIG_MISSING, why, whylen, "missing Authorization (AWS4-HMAC-SHA256) or X-Amz-Date");
    const char *cred = strstr(auth, "Credential="), *sh = strstr(auth, "SignedHeaders="),
               *sig = strstr(auth, "Signature=");
    if (!cred || !sh || !sig)
        return say(MU_SIG_MISSING, why, whylen, "Authorization lacks Credential, SignedHeaders or Signature");
    cred += 11;
    sh += 14;
    sig += 10;
    size_t cl = strcspn(cred, ", "), shl = strcspn(sh, ", "), sigl = strcspn(sig, ", ");
    char scope_want[256];
    snprintf(scope_want, sizeof scope_want, "%s/%.8s/%s/%s/aws4_request", aws->key_id, aws->date, aws->region,
             aws->service);
    size_t kl = strlen(aws->key_id);
    if (cl < kl + 1 || strncmp(cred, aws->key_id, kl) != 0 || cred[kl] != '/')
        return say(MU_SIG_KEY, why, whylen, "unknown access key id");
    if (cl != strlen(scope_want) || strncmp(cred, scope_want, cl) != 0)
        return say(MU_SIG_SCOPE, why, whylen, "credential scope (date/region/service) is not this service's");
    if (strcmp(date, aws->date) != 0)
        return say(MU_SIG_DATE, why, whylen, "X-Amz-Date is not the current time");
    char *names = strndup(sh, shl);
    /* Every header that must be signed is. */
    char listed[512];
    snprintf(listed, sizeof listed, ";%s;", names);
    const char *must[] = {";host;", ";x-amz-date;", ";content-type;"};
    for (size_t i = 0; i < 3; i++)
        if (!strstr(listed, must[i])) {
            free(names);
            return say(MU_SIG_HEADERS, why, whylen, "host, x-amz-date and content-type must be signed");
        }
    const char *tok = json_string_value(json_object_get(headers, "x-amz-security-token"));
    if (aws->token && (!tok || strcmp(tok, aws->token) != 0 || !strstr(listed, ";x-amz-security-token;"))) {
        free(names);
        return say(MU_SIG_TOKEN, why, whylen, "the security token included in the request is invalid");
    }

    mu_buf cr = {0};
    mu_buf_printf(&cr, "%s\n", method);
    const char *q = strchr(target, '?');
    size_t pl = q ? (size_t)(q - target) : strlen(target);
    /* Each segment of the path as received, encoded again. */
    for (size_t i = 0; i < pl;) {
        if (target[i] == '/') {
            mu_buf_add(&cr, "/", 1);
            i++;
            continue;
        }
        size_t e = i;
        while (e < pl && target[e] != '/')
            e++;
        enc(&cr, target + i, e - i);
        i = e;
    }
    if (!pl)
        mu_buf_add(&cr, "/", 1);
    mu_buf_add(&cr, "\n", 1);
    canonical_query(&cr, q ? q + 1 : "");
    mu_buf_add(&cr, "\n", 1);
    char *save;
    for (char *n = strtok_r(names, ";", &save); n; n = strtok_r(NULL, ";", &save)) {
        const char *v = json_string_value(json_object_get(headers, n));
        if (!v) {
            free(names);
            mu_buf_free(&cr);
            return say(MU_SIG_HEADERS, why, whylen, "a signed header is absent");
        }
        mu_buf_printf(&cr, "%s:", n);
        trimmed(&cr, v);
        mu_buf_add(&cr, "\n", 1);
    }
    free(names);
    char ph[65];
    sha_hex(body ? body : "", body ? len : 0, ph);
    mu_buf_printf(&cr, "\n%.*s\n%s", (int)shl, sh, ph);
    char crh[65];
    sha_hex(cr.p, cr.len, crh);
    mu_buf_free(&cr);

    char sts[512];
    snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", date, scope_want + kl + 1, crh);
    char k0[256], d8[9];
    snprintf(k0, sizeof k0, "AWS4%s", aws->secret);
    snprintf(d8, sizeof d8, "%.8s", aws->date);
    unsigned char k[32];
    mac(k0, strlen(k0), d8, k);
    mac(k, 32, aws->region, k);
    mac(k, 32, aws->service, k);
    mac(k, 32, "aws4_request", k);
    unsigned char s[32];
    mac(k, 32, sts, s);
    char sh_[65];
    hex(s, 32, sh_);
    if (sigl != 64 || strncmp(sig, sh_, 64) != 0)
        return say(MU_SIG_MISMATCH, why, whylen,
                   "The request signature we calculated does not match the signature you provided. Check "
                   "your AWS Secret Access Key and signing method. Consult the service documentation for "
                   "details.");
    return MU_SIG_OK;
}
