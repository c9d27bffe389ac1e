/*
 * The pure parts of fetching OAuth2 access tokens (no I/O, so unit tests
 * and fuzzers drive them directly): a Google service-account key file
 * parsed into its email, token endpoint and RSA key; the RS256-signed JWT
 * it exchanges for a token; and a token endpoint's JSON answer. Errors are
 * values: -1 and a sentence in `err` that never quotes a secret (the key,
 * an assertion or a token).
 */
#ifndef SLUICE_OAUTH_PARSE_H
#define SLUICE_OAUTH_PARSE_H

#include <stddef.h>
#include <stdint.h>

#include <bearssl.h>

/* Key files and token answers are small; anything larger is not one. */
#define SL_OAUTH_DOC_MAX (64 * 1024)

typedef struct sl_sa_key {
    char *client_email;
    char *token_uri;         /* as the file says; default Google's */
    br_rsa_private_key rsa;  /* points into mem */
    unsigned char *mem;      /* owns the key's bytes; wiped on free */
    size_t mem_len;
} sl_sa_key;

/* A service-account key file's text: type "service_account" (when
 * present), client_email, private_key (PEM, PKCS#8 or PKCS#1 RSA) and
 * token_uri. 0, or -1 with err saying what is wrong. */
int sl_sa_parse(const char *json, size_t len, sl_sa_key *out, char *err, size_t errlen);
void sl_sa_free(sl_sa_key *k);

/* base64url without padding of n bytes into out (room for
 * ((n + 2) / 3) * 4 + 1 bytes); returns the length written. */
size_t sl_b64url(const unsigned char *in, size_t n, char *out);

/* The signed assertion {"alg":"RS256","typ":"JWT"}.{iss, scope, aud, iat,
 * exp = iat + 3600} for `now` (Unix seconds), malloc'd; NULL when memory
 * runs out or the key cannot sign. */
char *sl_sa_jwt(const sl_sa_key *k, const char *scope, int64_t now);

/* A token endpoint's 200 answer: access_token (printable ASCII, no
 * blanks: it goes into a header line) into *token (malloc'd) and
 * expires_in (seconds, default 3600 when absent) into *expires_in.
 * 0, or -1 with err. */
int sl_oauth_parse_token(const char *body, size_t len, char **token, int64_t *expires_in, char *err,
                         size_t errlen);
/* The `error` code of a refusal ({"error":"invalid_client",...}) when it
 * is a short word, copied into out; "" otherwise. */
void sl_oauth_error_code(const char *body, size_t len, char *out, size_t outlen);

#endif
