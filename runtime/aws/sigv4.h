/*
 * AWS Signature Version 4 for one request (the Bedrock adapter signs every
 * try with it). Written on BearSSL's SHA-256 and HMAC rather than
 * libcurl's CURLOPT_AWS_SIGV4 because Debian 12's libcurl (7.88) signs the
 * path exactly as sent: AWS services other than S3 sign each path segment
 * URI-encoded once more, so a Bedrock model id with ':' (sent as %3A) is
 * canonicalised as %253A and 7.88's signature does not match (see README
 * "AWS Bedrock"). The caller gives the path as it goes on the wire; the
 * signer encodes it again for the canonical request.
 */
#ifndef SLUICE_AWS_SIGV4_H
#define SLUICE_AWS_SIGV4_H

#include <stddef.h>
#include <time.h>

typedef struct sl_sigv4_header {
    const char *name;  /* lowercase */
    const char *value; /* trimmed */
} sl_sigv4_header;

typedef struct sl_sigv4_input {
    const char *method;
    const char *path;   /* as sent, already percent-encoded once; "" = "/" */
    const char *query;  /* canonical query string (sorted, encoded), or NULL */
    /* Headers to sign besides x-amz-date and x-amz-security-token, which
     * the signer adds; must include host. At most 8, any order. */
    const sl_sigv4_header *headers;
    size_t nheaders;
    const char *body;
    size_t body_len;
    const char *region, *service;
    const char *key_id, *secret, *token; /* token NULL or "" = none */
    time_t now;
} sl_sigv4_input;

typedef struct sl_sigv4_output {
    char amz_date[17];      /* 20150830T123600Z */
    char authorization[512]; /* the Authorization header's value */
} sl_sigv4_output;

/* 0, or -1 when an input is out of bounds (too many headers, a value too
 * long for the fixed buffers). Never logs: the secret passes through. */
int sl_sigv4_sign(const sl_sigv4_input *in, sl_sigv4_output *out);

/* Appends s (n bytes) to out percent-encoded as SigV4 wants: unreserved
 * characters (A-Z a-z 0-9 - . _ ~) as they are, keep_slash '/' too, every
 * other byte %XX uppercase. Returns the length written (out holds n*3+1). */
size_t sl_sigv4_uri_encode(const char *s, size_t n, int keep_slash, char *out);

#endif
