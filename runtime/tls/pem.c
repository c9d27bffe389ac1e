/*
 * PEM files -> BearSSL certificate chain and private key (see pem.h). The
 * file is read whole (it is small and read rarely), decoded with BearSSL's
 * PEM and key decoders, and every byte of a private key this module
 * touched is wiped before its memory is released.
 */
#include "tls/pem.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct pem_obj {
    char name[64];
    unsigned char *der;
    size_t len, cap;
} pem_obj;

typedef struct pem_file {
    pem_obj *objs;
    size_t n;
} pem_file;

static void pem_file_free(pem_file *f)
{
    for (size_t i = 0; i < f->n; i++) {
        if (f->objs[i].der) /* NULL for an empty block */
            explicit_bzero(f->objs[i].der, f->objs[i].cap);
        free(f->objs[i].der);
    }
    free(f->objs);
    memset(f, 0, sizeof *f);
}

static void append_der(void *ctx, const void *buf, size_t len)
{
    pem_obj *o = ctx;
    if (!o->der && o->cap)
        return; /* an earlier growth failed; reported at END_OBJ */
    if (o->len + len > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + len)
            cap *= 2;
        unsigned char *p = malloc(cap);
        if (!p) {
            if (o->der)
                explicit_bzero(o->der, o->cap);
            free(o->der);
            o->der = NULL;
            o->cap = 1;
            return;
        }
        if (o->der) {
            memcpy(p, o->der, o->len);
            explicit_bzero(o->der, o->cap);
            free(o->der);
        }
        o->der = p;
        o->cap = cap;
    }
    memcpy(o->der + o->len, buf, len);
    o->len += len;
}

static int slurp(const char *path, unsigned char **data, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "cannot read '%s': %s", path, strerror(errno));
        return -1;
    }
    unsigned char *buf = malloc(SL_TLS_PEM_MAX + 2);
    if (!buf) {
        fclose(f);
        snprintf(err, errlen, "out of memory reading '%s'", path);
        return -1;
    }
    size_t n = fread(buf, 1, SL_TLS_PEM_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad || n > SL_TLS_PEM_MAX) {
        explicit_bzero(buf, n);
        free(buf);
        snprintf(err, errlen, bad ? "cannot read '%s'" : "'%s' is larger than 1 MiB", path);
        return -1;
    }
    buf[n++] = '\n'; /* the decoder needs the last line ended */
    *data = buf;
    *len = n;
    return 0;
}

static int pem_read(const char *path, pem_file *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    unsigned char *data;
    size_t len;
    if (slurp(path, &data, &len, err, errlen) != 0)
        return -1;
    br_pem_decoder_context pc;
    br_pem_decoder_init(&pc);
    pem_obj *cur = NULL;
    int rc = 0;
    for (size_t off = 0; off < len && rc == 0;) {
        off += br_pem_decoder_push(&pc, data + off, len - off);
        switch (br_pem_decoder_event(&pc)) {
        case BR_PEM_BEGIN_OBJ: {
            pem_obj *objs = realloc(out->objs, (out->n + 1) * sizeof *objs);
            if (!objs) {
                snprintf(err, errlen, "out of memory reading '%s'", path);
                rc = -1;
                break;
            }
            out->objs = objs;
            cur = &objs[out->n++];
            memset(cur, 0, sizeof *cur);
            snprintf(cur->name, sizeof cur->name, "%.63s", br_pem_decoder_name(&pc));
            br_pem_decoder_setdest(&pc, append_der, cur);
            break;
        }
        case BR_PEM_END_OBJ:
            if (cur && !cur->der) {
                snprintf(err, errlen, cur->cap ? "out of memory reading '%s'"
                                               : "'%s' has an empty PEM block", path);
                rc = -1;
            }
            cur = NULL;
            break;
        case BR_PEM_ERROR:
            snprintf(err, errlen, "'%s' is not a valid PEM file", path);
            rc = -1;
            break;
        default:
            break;
        }
    }
    if (rc == 0 && cur) {
        snprintf(err, errlen, "'%s' ends inside a PEM block", path);
        rc = -1;
    }
    explicit_bzero(data, len);
    free(data);
    if (rc == 0 && out->n == 0) {
        snprintf(err, errlen, "'%s' holds no PEM block", path);
        rc = -1;
    }
    if (rc != 0)
        pem_file_free(out);
    return rc;
}

int sl_tls_read_chain(const char *path, sl_tls_chain *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    pem_file f;
    if (pem_read(path, &f, err, errlen) != 0)
        return -1;
    size_t n = 0;
    for (size_t i = 0; i < f.n; i++)
        n += strcmp(f.objs[i].name, "CERTIFICATE") == 0;
    if (n == 0) {
        snprintf(err, errlen, "'%s' holds no certificate (no 'BEGIN CERTIFICATE' block)", path);
        pem_file_free(&f);
        return -1;
    }
    out->certs = calloc(n, sizeof *out->certs);
    if (!out->certs) {
        snprintf(err, errlen, "out of memory reading '%s'", path);
        pem_file_free(&f);
        return -1;
    }
    for (size_t i = 0; i < f.n; i++) {
        if (strcmp(f.objs[i].name, "CERTIFICATE") != 0)
            continue;
        /* Ownership of the DER moves to the chain. */
        out->certs[out->n].data = f.objs[i].der;
        out->certs[out->n].data_len = f.objs[i].len;
        out->n++;
        f.objs[i].der = NULL;
        f.objs[i].cap = 0;
    }
    pem_file_free(&f);
    return 0;
}

void sl_tls_chain_free(sl_tls_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->certs[i].data);
    free(c->certs);
    memset(c, 0, sizeof *c);
}

static int is_key_block(const char *name)
{
    return strcmp(name, "PRIVATE KEY") == 0 || strcmp(name, "RSA PRIVATE KEY") == 0 ||
           strcmp(name, "EC PRIVATE KEY") == 0;
}

/* Copies the decoder's key (it points into the decoder context) into one
 * buffer the key owns. */
static int own_key(const br_skey_decoder_context *dc, sl_tls_key *k)
{
    k->type = br_skey_decoder_key_type(dc);
    if (k->type == BR_KEYTYPE_RSA) {
        const br_rsa_private_key *r = br_skey_decoder_get_rsa(dc);
        k->mem_len = r->plen + r->qlen + r->dplen + r->dqlen + r->iqlen;
        if (!(k->mem = malloc(k->mem_len)))
            return -1;
        unsigned char *p = k->mem;
        k->rsa.n_bitlen = r->n_bitlen;
#define TAKE(f)                                                                                   \
    memcpy(p, r->f, r->f##len);                                                                   \
    k->rsa.f = p;                                                                                 \
    k->rsa.f##len = r->f##len;                                                                    \
    p += r->f##len;
        TAKE(p) TAKE(q) TAKE(dp) TAKE(dq) TAKE(iq)
#undef TAKE
        return 0;
    }
    const br_ec_private_key *e = br_skey_decoder_get_ec(dc);
    k->mem_len = e->xlen;
    if (!(k->mem = malloc(k->mem_len)))
        return -1;
    memcpy(k->mem, e->x, e->xlen);
    k->ec = (br_ec_private_key){.curve = e->curve, .x = k->mem, .xlen = e->xlen};
    return 0;
}

int sl_tls_read_key(const char *path, sl_tls_key *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    pem_file f;
    if (pem_read(path, &f, err, errlen) != 0)
        return -1;
    const pem_obj *key = NULL;
    int encrypted = 0;
    for (size_t i = 0; i < f.n; i++) {
        if (is_key_block(f.objs[i].name) && !key)
            key = &f.objs[i];
        encrypted |= strcmp(f.objs[i].name, "ENCRYPTED PRIVATE KEY") == 0;
    }
    int rc = -1;
    if (!key) {
        snprintf(err, errlen,
                 encrypted ? "'%s' holds an encrypted private key; the gateway starts unattended, "
                             "so store it unencrypted with permissions only its user can read"
                           : "'%s' holds no private key",
                 path);
    } else {
        br_skey_decoder_context dc;
        br_skey_decoder_init(&dc);
        br_skey_decoder_push(&dc, key->der, key->len);
        int e = br_skey_decoder_last_error(&dc);
        int t = br_skey_decoder_key_type(&dc);
        if (e != 0 || (t != BR_KEYTYPE_RSA && t != BR_KEYTYPE_EC))
            snprintf(err, errlen, "'%s': the private key cannot be decoded (RSA or EC expected)",
                     path);
        else if (own_key(&dc, out) != 0)
            snprintf(err, errlen, "out of memory reading '%s'", path);
        else
            rc = 0;
        explicit_bzero(&dc, sizeof dc);
    }
    pem_file_free(&f);
    return rc;
}

void sl_tls_key_free(sl_tls_key *k)
{
    if (k->mem) {
        explicit_bzero(k->mem, k->mem_len);
        free(k->mem);
    }
    explicit_bzero(k, sizeof *k);
}

static void no_dn(void *ctx, const void *buf, size_t len) {}

/* Big-endian integers compared without their leading zeros. */
static int same_int(const unsigned char *a, size_t alen, const unsigned char *b, size_t blen)
{
    while (alen && !*a)
        a++, alen--;
    while (blen && !*b)
        b++, blen--;
    return alen == blen && memcmp(a, b, alen) == 0;
}

int sl_tls_key_matches(const br_x509_certificate *leaf, const sl_tls_key *key)
{
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, no_dn, NULL);
    br_x509_decoder_push(&dc, leaf->data, leaf->data_len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || br_x509_decoder_last_error(&dc) != 0)
        return -1;
    if (pk->key_type != key->type)
        return 0;
    if (key->type == BR_KEYTYPE_RSA) {
        br_rsa_compute_modulus modulus = br_rsa_compute_modulus_get_default();
        size_t nlen = modulus(NULL, &key->rsa);
        unsigned char *n = nlen ? malloc(nlen) : NULL;
        if (!n)
            return 0;
        /* The modulus (p * q) alone identifies the key pair. */
        modulus(n, &key->rsa);
        int ok = same_int(n, nlen, pk->key.rsa.n, pk->key.rsa.nlen);
        free(n);
        return ok;
    }
    if (pk->key.ec.curve != key->ec.curve)
        return 0;
    unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
    br_ec_public_key pub;
    size_t qlen = br_ec_compute_pub(br_ec_get_default(), &pub, q, &key->ec);
    return qlen != 0 && qlen == pk->key.ec.qlen && memcmp(q, pk->key.ec.q, qlen) == 0;
}

/* ---- trust anchors ----------------------------------------------------- */

typedef struct dn_buf {
    unsigned char *p;
    size_t len, cap;
    int failed;
} dn_buf;

static void dn_append(void *ctx, const void *buf, size_t len)
{
    dn_buf *d = ctx;
    if (d->failed)
        return;
    if (d->len + len > d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        while (cap < d->len + len)
            cap *= 2;
        unsigned char *p = realloc(d->p, cap);
        if (!p) {
            d->failed = 1;
            return;
        }
        d->p = p;
        d->cap = cap;
    }
    memcpy(d->p + d->len, buf, len);
    d->len += len;
}

static unsigned char *dup_bytes(const unsigned char *p, size_t n)
{
    unsigned char *q = malloc(n ? n : 1);
    if (q && n)
        memcpy(q, p, n);
    return q;
}

/* The name and public key of `cert` as a CA trust anchor. */
static int anchor_of(const br_x509_certificate *cert, br_x509_trust_anchor *ta)
{
    dn_buf dn = {0};
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, dn_append, &dn);
    br_x509_decoder_push(&dc, cert->data, cert->data_len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    if (!pk || dn.failed || br_x509_decoder_last_error(&dc) != 0) {
        free(dn.p);
        return -1;
    }
    memset(ta, 0, sizeof *ta);
    ta->dn.data = dn.p;
    ta->dn.len = dn.len;
    ta->flags = BR_X509_TA_CA;
    ta->pkey.key_type = pk->key_type;
    if (pk->key_type == BR_KEYTYPE_RSA) {
        ta->pkey.key.rsa.n = dup_bytes(pk->key.rsa.n, pk->key.rsa.nlen);
        ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
        ta->pkey.key.rsa.e = dup_bytes(pk->key.rsa.e, pk->key.rsa.elen);
        ta->pkey.key.rsa.elen = pk->key.rsa.elen;
        if (ta->pkey.key.rsa.n && ta->pkey.key.rsa.e)
            return 0;
    } else {
        ta->pkey.key.ec.curve = pk->key.ec.curve;
        ta->pkey.key.ec.q = dup_bytes(pk->key.ec.q, pk->key.ec.qlen);
        ta->pkey.key.ec.qlen = pk->key.ec.qlen;
        if (ta->pkey.key.ec.q)
            return 0;
    }
    return -1; /* the caller frees what was copied */
}

static void anchor_free(br_x509_trust_anchor *ta)
{
    free(ta->dn.data);
    if (ta->pkey.key_type == BR_KEYTYPE_RSA) {
        free(ta->pkey.key.rsa.n);
        free(ta->pkey.key.rsa.e);
    } else {
        free(ta->pkey.key.ec.q);
    }
}

int sl_tls_read_anchors(const char *path, sl_tls_anchors *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    sl_tls_chain ch;
    if (sl_tls_read_chain(path, &ch, err, errlen) != 0)
        return -1;
    out->tas = calloc(ch.n, sizeof *out->tas);
    if (!out->tas) {
        sl_tls_chain_free(&ch);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < ch.n; i++) {
        if (anchor_of(&ch.certs[i], &out->tas[i]) != 0) {
            out->n = i + 1; /* free the partial one too */
            sl_tls_anchors_free(out);
            sl_tls_chain_free(&ch);
            snprintf(err, errlen, "certificate %zu in '%s' has no usable name or public key", i + 1,
                     path);
            return -1;
        }
        out->n = i + 1;
    }
    sl_tls_chain_free(&ch);
    return 0;
}

void sl_tls_anchors_free(sl_tls_anchors *a)
{
    for (size_t i = 0; i < a->n; i++)
        anchor_free(&a->tas[i]);
    free(a->tas);
    memset(a, 0, sizeof *a);
}
