/* The mock's own SigV4 verifier: written separately from the gateway's
 * signer (runtime/aws/sigv4.c, BearSSL) on OpenSSL's HMAC and SHA-256, so
 * a mistake in one is caught by the other. It rebuilds the canonical
 * request from what arrived on the wire, as AWS does, and compares. */
#ifndef MOCK_SIGV4_H
#define MOCK_SIGV4_H

#include <stddef.h>
#include <jansson.h>

typedef struct mu_aws {
    const char *key_id, *secret, *token; /* token NULL: none expected */
    const char *region, *service;
    const char *date; /* the only x-amz-date accepted (fixed clock), YYYYMMDDTHHMMSSZ */
    /* GET /aws/credentials (the ECS/EKS container endpoint): the Authorization
     * it wants (NULL: none) and the Expiration it hands out. */
    const char *container_auth, *expiration;
} mu_aws;

/* Why a request fails verification, or MU_SIG_OK. */
typedef enum mu_sig_result {
    MU_SIG_OK = 0,
    MU_SIG_MISSING,    /* no Authorization / x-amz-date, or not AWS4-HMAC-SHA256 */
    MU_SIG_KEY,        /* unknown access key id */
    MU_SIG_TOKEN,      /* session token missing, wrong or unsigned */
    MU_SIG_SCOPE,      /* credential scope: date, region or service wrong */
    MU_SIG_DATE,       /* x-amz-date is not the fixed clock's */
    MU_SIG_HEADERS,    /* host, x-amz-date or content-type not signed, or a signed header absent */
    MU_SIG_MISMATCH,   /* the signature differs */
} mu_sig_result;

/* headers: object with lowercased names; target: path and query as
 * received. why (optional) gets a one-line account of a failure. */
mu_sig_result mu_sigv4_verify(const mu_aws *aws, const char *method, const char *target, json_t *headers,
                              const char *body, size_t len, char *why, size_t whylen);

/* mock_bedrock.c: the credentials and clock Bedrock requests must be
 * signed with (key_id NULL: not checked). */
void mu_bedrock_config(const mu_aws *aws);

#endif
