/*
 * SigV4 (see sigv4.h): canonical request -> string to sign -> HMAC chain
 * of the secret over date, region, service -> signature. Buffers are on
 * the stack with fixed bounds (a Bedrock request signs four or five short
 * headers) and wiped after use, since the derived key is as good as the
 * secret for a day.
 */
#include "aws/sigv4.h"

#include <bearssl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { MAX_HEADERS = 10 };

static void hexify(const unsigned char *d, size_t n, char *out)
{
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *p, size_t n, char out[65])
{
    br_sha256_context c;
    unsigned char d[32];
    br_sha256_init(&c);
    br_sha256_update(&c, p, n);
    br_sha256_out(&c, d);
    hexify(d, 32, out);
}

static void hmac(const void *key, size_t klen, const void *msg, size_t mlen, unsigned char out[32])
{
    br_hmac_key_context kc;
    br_hmac_context hc;
    br_hmac_key_init(&kc, &br_sha256_vtable, key, klen);
    br_hmac_init(&hc, &kc, 0);
    br_hmac_update(&hc, msg, mlen);
    br_hmac_out(&hc, out);
    explicit_bzero(&kc, sizeof kc);
    explicit_bzero(&hc, sizeof hc);
}

size_t sl_sigv4_uri_encode(const char *s, size_t n, int keep_slash, char *out)
{
    static const char hx[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
            ch == '.' || ch == '_' || ch == '~' || (keep_slash && ch == '/')) {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hx[ch >> 4];
            out[o++] = hx[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

static int cmp_header(const void *a, const void *b)
{
    return strcmp(((const sl_sigv4_header *)a)->name, ((const sl_sigv4_header *)b)->name);
}

/* snprintf into buf at *off; -1 when it does not fit. */
static int put(char *buf, size_t cap, size_t *off, const char *s, size_t n)
{
    if (*off + n >= cap)
        return -1;
    memcpy(buf + *off, s, n);
    *off += n;
    buf[*off] = '\0';
    return 0;
}

static int puts_(char *buf, size_t cap, size_t *off, const char *s)
{
    return put(buf, cap, off, s, strlen(s));
}

int sl_sigv4_sign(const sl_sigv4_input *in, sl_sigv4_output *out)
{
    if (in->nheaders + 2 > MAX_HEADERS || !in->key_id || !in->secret)
        return -1;
    struct tm tm;
    if (!gmtime_r(&in->now, &tm) || strftime(out->amz_date, sizeof out->amz_date, "%Y%m%dT%H%M%SZ", &tm) != 16)
        return -1;
    char date[9];
    memcpy(date, out->amz_date, 8);
    date[8] = '\0';

    sl_sigv4_header h[MAX_HEADERS];
    size_t nh = 0;
    for (size_t i = 0; i < in->nheaders; i++)
        h[nh++] = in->headers[i];
    h[nh++] = (sl_sigv4_header){"x-amz-date", out->amz_date};
    int token = in->token && in->token[0];
    if (token)
        h[nh++] = (sl_sigv4_header){"x-amz-security-token", in->token};
    qsort(h, nh, sizeof h[0], cmp_header);

    /* Canonical request. The path as sent is encoded once more (every
     * service but S3 wants that), '/' kept. */
    size_t plen = strlen(in->path);
    char *cpath = malloc(plen * 3 + 2);
    size_t creq_cap = plen * 3 + 16384;
    char *creq = malloc(creq_cap);
    if (!cpath || !creq) {
        free(cpath);
        free(creq);
        return -1;
    }
    if (plen)
        sl_sigv4_uri_encode(in->path, plen, 1, cpath);
    else
        strcpy(cpath, "/");
    char signed_names[512] = "";
    size_t so = 0, co = 0;
    int bad = puts_(creq, creq_cap, &co, in->method) || puts_(creq, creq_cap, &co, "\n") ||
              puts_(creq, creq_cap, &co, cpath) || puts_(creq, creq_cap, &co, "\n") ||
              puts_(creq, creq_cap, &co, in->query ? in->query : "") || puts_(creq, creq_cap, &co, "\n");
    for (size_t i = 0; i < nh && !bad; i++) {
        bad = puts_(creq, creq_cap, &co, h[i].name) || puts_(creq, creq_cap, &co, ":") ||
              puts_(creq, creq_cap, &co, h[i].value) || puts_(creq, creq_cap, &co, "\n") ||
              (i && puts_(signed_names, sizeof signed_names, &so, ";")) ||
              puts_(signed_names, sizeof signed_names, &so, h[i].name);
    }
    char payload[65];
    sha256_hex(in->body ? in->body : "", in->body ? in->body_len : 0, payload);
    bad = bad || puts_(creq, creq_cap, &co, "\n") || puts_(creq, creq_cap, &co, signed_names) ||
          puts_(creq, creq_cap, &co, "\n") || puts_(creq, creq_cap, &co, payload);
    char creq_hash[65];
    if (!bad)
        sha256_hex(creq, co, creq_hash);
    free(cpath);
    free(creq);
    if (bad)
        return -1;

    char scope[160], sts[512];
    int n = snprintf(scope, sizeof scope, "%s/%s/%s/aws4_request", date, in->region, in->service);
    if (n < 0 || (size_t)n >= sizeof scope)
        return -1;
    n = snprintf(sts, sizeof sts, "AWS4-HMAC-SHA256\n%s\n%s\n%s", out->amz_date, scope, creq_hash);
    if (n < 0 || (size_t)n >= sizeof sts)
        return -1;

    /* kDate = HMAC("AWS4" + secret, date), then region, service, request. */
    size_t sl = strlen(in->secret);
    char *k0 = malloc(sl + 5);
    if (!k0)
        return -1;
    memcpy(k0, "AWS4", 4);
    memcpy(k0 + 4, in->secret, sl + 1);
    unsigned char k[32], sig[32];
    hmac(k0, sl + 4, date, 8, k);
    explicit_bzero(k0, sl + 4);
    free(k0);
    hmac(k, 32, in->region, strlen(in->region), k);
    hmac(k, 32, in->service, strlen(in->service), k);
    hmac(k, 32, "aws4_request", 12, k);
    hmac(k, 32, sts, (size_t)n, sig);
    explicit_bzero(k, sizeof k);
    char sighex[65];
    hexify(sig, 32, sighex);
    n = snprintf(out->authorization, sizeof out->authorization,
                 "AWS4-HMAC-SHA256 Credential=%s/%s, SignedHeaders=%s, Signature=%s", in->key_id, scope,
                 signed_names, sighex);
    return n < 0 || (size_t)n >= sizeof out->authorization ? -1 : 0;
}
