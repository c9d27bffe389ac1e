/*
 * The checks that read files a spec names: the listener's `tls:`
 * certificate chain and private key, and each provider's `tls:` CA bundle,
 * client certificate and key. They run after the spec is checked, with the
 * spec's path, because relative file names are read next to the spec (so
 * `sluicec check` gives the same answer from any directory) and because
 * nothing else in the compiler touches the file system. The files are
 * read with the gateway's own loader (runtime/tls/pem.c); on top of that
 * this checks what only matters before deployment: the key belongs to the
 * first certificate, each certificate was issued by the next one, and none
 * is expired, not yet valid, or about to expire.
 */
#include "compile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/pem.h"

#define SOON_DAYS 30

/* ---- the few X.509 fields BearSSL's decoder does not expose ------------ */

typedef struct der {
    const unsigned char *p;
    size_t len;
} der;

/* Reads one TLV from `in`; its tag into *tag and its contents into *out. */
static int der_next(der *in, unsigned *tag, der *out, der *whole)
{
    if (in->len < 2)
        return -1;
    const unsigned char *start = in->p;
    *tag = in->p[0];
    size_t n = in->p[1], hdr = 2;
    if (n & 0x80) {
        size_t k = n & 0x7F;
        if (k == 0 || k > 4 || in->len < 2 + k)
            return -1;
        n = 0;
        for (size_t i = 0; i < k; i++)
            n = (n << 8) | in->p[2 + i];
        hdr += k;
    }
    if (in->len - hdr < n)
        return -1;
    out->p = in->p + hdr;
    out->len = n;
    in->p += hdr + n;
    in->len -= hdr + n;
    if (whole)
        *whole = (der){start, hdr + n};
    return 0;
}

static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const unsigned char *s, size_t n, unsigned *out)
{
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ). */
static int der_time(unsigned tag, der t, int64_t *out)
{
    unsigned y, mo, d, h, mi, s;
    size_t yl = tag == 0x17 ? 2 : 4;
    if ((tag != 0x17 && tag != 0x18) || t.len != yl + 11 || t.p[t.len - 1] != 'Z')
        return -1;
    const unsigned char *p = t.p;
    if (digits(p, yl, &y) || digits(p + yl, 2, &mo) || digits(p + yl + 2, 2, &d) ||
        digits(p + yl + 4, 2, &h) || digits(p + yl + 6, 2, &mi) || digits(p + yl + 8, 2, &s))
        return -1;
    if (tag == 0x17)
        y += y < 50 ? 2000 : 1900;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return -1;
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
    return 0;
}

typedef struct cert_info {
    der issuer, subject; /* whole encoded names, compared byte for byte */
    int64_t not_before, not_after;
} cert_info;

static int cert_parse(const br_x509_certificate *c, cert_info *ci)
{
    der in = {c->data, c->data_len}, cert, tbs, f, whole;
    unsigned tag;
    if (der_next(&in, &tag, &cert, NULL) || tag != 0x30 || der_next(&cert, &tag, &tbs, NULL) ||
        tag != 0x30)
        return -1;
    if (der_next(&tbs, &tag, &f, NULL)) /* version [0] or serial */
        return -1;
    if (tag == 0xA0 && der_next(&tbs, &tag, &f, NULL)) /* serial */
        return -1;
    if (der_next(&tbs, &tag, &f, NULL)) /* signature algorithm */
        return -1;
    if (der_next(&tbs, &tag, &f, &whole) || tag != 0x30)
        return -1;
    ci->issuer = whole;
    der validity, t;
    if (der_next(&tbs, &tag, &validity, NULL) || tag != 0x30)
        return -1;
    if (der_next(&validity, &tag, &t, NULL) || der_time(tag, t, &ci->not_before) ||
        der_next(&validity, &tag, &t, NULL) || der_time(tag, t, &ci->not_after))
        return -1;
    if (der_next(&tbs, &tag, &f, &whole) || tag != 0x30)
        return -1;
    ci->subject = whole;
    return 0;
}

/* ---- the checks ------------------------------------------------------ */

/* Where to read a file the spec names: a relative one is next to the spec.
 * Only this check uses the result; the table keeps the name as written,
 * so the generated C is the same wherever the spec sits, and the gateway
 * reads a relative name in its working directory (README, HTTPS). */
static const char *resolve(const char *spec_path, const char *file, slc_arena *a)
{
    if (file[0] == '/' || !spec_path || strcmp(spec_path, "-") == 0)
        return file;
    const char *slash = strrchr(spec_path, '/');
    if (!slash)
        return file;
    return slc_aprintf(a, "%.*s/%s", (int)(slash - spec_path + (slash == spec_path)), spec_path,
                       file);
}

static int64_t now_unix(void)
{
    /* Tests pin "now" so expiry diagnostics are reproducible. */
    const char *pin = getenv("SLUICEC_NOW");
    if (pin && *pin)
        return strtoll(pin, NULL, 10);
    return (int64_t)time(NULL);
}

static const char *date(int64_t t, slc_arena *a)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    return slc_aprintf(a, "%04d-%02d-%02d %02d:%02d UTC", tm.tm_year + 1900, tm.tm_mon + 1,
                       tm.tm_mday, tm.tm_hour, tm.tm_min);
}

/* `what` starts each message ("tls", "provider 'x': tls client_cert"),
 * `who` owns the first certificate ("server", "client"); `f` is the file
 * as written. */
static void check_chain(const char *what, const char *who, const slc_str *f,
                        const sl_tls_chain *ch, slc_arena *a, slc_diags *d)
{
    const char *file = f->s;
    slc_pos pos = f->pos;
    int64_t now = now_unix();
    cert_info prev = {0};
    int misordered = 0;
    for (size_t i = 0; i < ch->n; i++) {
        cert_info ci;
        if (cert_parse(&ch->certs[i], &ci) != 0) {
            slc_error(d, pos, "%s: certificate %zu in '%s' is not valid X.509", what, i + 1, file);
            return;
        }
        if (i > 0 && (prev.issuer.len != ci.subject.len ||
                      memcmp(prev.issuer.p, ci.subject.p, ci.subject.len) != 0) &&
            !misordered) {
            /* Once the order breaks, every later pair is noise. */
            misordered = 1;
            slc_error(d, pos,
                      "%s: certificate %zu in '%s' did not issue certificate %zu; list the "
                      "%s's certificate first, then each issuer in order",
                      what, i + 1, file, i, who);
        }
        if (ci.not_after < now)
            slc_error(d, pos, "%s: certificate %zu in '%s' expired on %s", what, i + 1, file,
                      date(ci.not_after, a));
        else if (ci.not_before > now)
            slc_error(d, pos, "%s: certificate %zu in '%s' is not valid before %s", what, i + 1,
                      file, date(ci.not_before, a));
        else if (ci.not_after - now < (int64_t)SOON_DAYS * 86400)
            slc_warning(d, pos,
                        "%s: certificate %zu in '%s' expires on %s, in less than %d days; "
                        "renew it (SIGHUP makes a running gateway load the new files)",
                        what, i + 1, file, date(ci.not_after, a), SOON_DAYS);
        prev = ci;
    }
}

/* The loader names the file it read (the resolved path); diagnostics name
 * the file as the spec writes it. */
static const char *as_written(const char *err, const char *resolved, const slc_str *written,
                              slc_arena *a)
{
    const char *at = strstr(err, resolved);
    if (!at || resolved == written->s)
        return err;
    return slc_aprintf(a, "%.*s%s%s", (int)(at - err), err, written->s, at + strlen(resolved));
}

/* Reads the certificate chain `cert` and the key `key` (as written, read
 * relative to the spec) and checks that they make a pair; `what` and
 * `who` as for check_chain. */
static void check_pair(const char *what, const char *who, const slc_str *cert, const slc_str *key,
                       const char *spec_path, slc_arena *a, slc_diags *d)
{
    const char *cert_path = resolve(spec_path, cert->s, a);
    const char *key_path = resolve(spec_path, key->s, a);
    char err[512];
    sl_tls_chain ch;
    sl_tls_key k;
    int have_chain = sl_tls_read_chain(cert_path, &ch, err, sizeof err) == 0;
    if (!have_chain)
        slc_error(d, cert->pos, "%s: certificate chain: %s", what,
                  as_written(err, cert_path, cert, a));
    int have_key = sl_tls_read_key(key_path, &k, err, sizeof err) == 0;
    if (!have_key)
        slc_error(d, key->pos, "%s: private key: %s", what, as_written(err, key_path, key, a));
    if (have_chain) {
        check_chain(what, who, cert, &ch, a, d);
        if (have_key && sl_tls_key_matches(&ch.certs[0], &k) == 0)
            slc_error(d, key->pos,
                      "%s: the private key in '%s' does not belong to the first certificate "
                      "in '%s' (which must be the %s's own)",
                      what, key->s, cert->s, who);
        sl_tls_chain_free(&ch);
    }
    if (have_key)
        sl_tls_key_free(&k);
}

/* A provider's CA bundle: every block a certificate. Expiry is not
 * checked here: a bundle may hold retired roots next to the one in use. */
static void check_ca(const char *what, const slc_str *ca, const char *spec_path, slc_arena *a,
                     slc_diags *d)
{
    const char *path = resolve(spec_path, ca->s, a);
    char err[512];
    sl_tls_chain ch;
    if (sl_tls_read_chain(path, &ch, err, sizeof err) != 0) {
        slc_error(d, ca->pos, "%s: CA bundle: %s", what, as_written(err, path, ca, a));
        return;
    }
    for (size_t i = 0; i < ch.n; i++) {
        cert_info ci;
        if (cert_parse(&ch.certs[i], &ci) != 0) {
            slc_error(d, ca->pos, "%s: certificate %zu in '%s' is not valid X.509", what, i + 1,
                      ca->s);
            break;
        }
    }
    sl_tls_chain_free(&ch);
}

/* The listener's client_ca, read as the gateway reads it: as trust anchors
 * for BearSSL's validator. */
static void check_anchors(const slc_str *ca, const char *spec_path, slc_arena *a, slc_diags *d)
{
    const char *path = resolve(spec_path, ca->s, a);
    char err[512];
    sl_tls_anchors tas;
    if (sl_tls_read_anchors(path, &tas, err, sizeof err) != 0) {
        slc_error(d, ca->pos, "tls: client_ca: %s", as_written(err, path, ca, a));
        return;
    }
    sl_tls_anchors_free(&tas);
}

void slc_check_files(slc_spec *s, const char *spec_path, slc_arena *a, slc_diags *d)
{
    if (s->tls.present) {
        check_pair("tls", "server", &s->tls.cert, &s->tls.key, spec_path, a, d);
        if (s->tls.client_ca.s)
            check_anchors(&s->tls.client_ca, spec_path, a, d);
    }
    for (size_t i = 0; i < s->nproviders; i++) {
        const slc_provider *p = &s->providers[i];
        const slc_provider_tls *t = &p->tls;
        if (!t->present || p->kind == SLC_KIND_MOCK)
            continue;
        const char *what = slc_aprintf(a, "provider '%s': tls", p->name.s);
        if (t->ca.s)
            check_ca(what, &t->ca, spec_path, a, d);
        if (t->client_cert.s && t->client_key.s)
            check_pair(what, "client", &t->client_cert, &t->client_key, spec_path, a, d);
    }
}
