/*
 * Reading a certificate chain and a private key from PEM files, and telling
 * whether the key belongs to the chain's first certificate. sluicec checks
 * a spec's files with exactly this code and the gateway loads them with it
 * at start and on SIGHUP, so a file the compiler accepted is a file the
 * gateway can serve. Errors are values: -1 and a sentence in `err`.
 */
#ifndef SLUICE_TLS_PEM_H
#define SLUICE_TLS_PEM_H

#include <stddef.h>

#include <bearssl.h>

/* The files a gateway reads are small; anything larger is not a PEM file
 * meant for us. */
#define SL_TLS_PEM_MAX (1024 * 1024)

typedef struct sl_tls_chain {
    br_x509_certificate *certs; /* in file order; certs[0] is the leaf */
    size_t n;
} sl_tls_chain;

typedef struct sl_tls_key {
    int type; /* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
    br_rsa_private_key rsa;
    br_ec_private_key ec;
    unsigned char *mem; /* owns the key bytes; wiped on free */
    size_t mem_len;
} sl_tls_key;

/* Every CERTIFICATE block of the file, at least one. */
int sl_tls_read_chain(const char *path, sl_tls_chain *out, char *err, size_t errlen);
/* The one private key of the file (PKCS#1 RSA, SEC1 EC or PKCS#8). */
int sl_tls_read_key(const char *path, sl_tls_key *out, char *err, size_t errlen);
/* 1 when `key` is the private half of the public key in `der`, 0 when not,
 * -1 when the certificate cannot be decoded. */
int sl_tls_key_matches(const br_x509_certificate *leaf, const sl_tls_key *key);
void sl_tls_chain_free(sl_tls_chain *c);
void sl_tls_key_free(sl_tls_key *k);

/* A CA bundle as BearSSL trust anchors (the listener's `client_ca`):
 * every certificate of the file, its name and public key, each a CA. */
typedef struct sl_tls_anchors {
    br_x509_trust_anchor *tas;
    size_t n;
} sl_tls_anchors;

int sl_tls_read_anchors(const char *path, sl_tls_anchors *out, char *err, size_t errlen);
void sl_tls_anchors_free(sl_tls_anchors *a);

#endif
