/*
 * Client authentication against the compiled key table. The spec holds only
 * SHA-256 hashes; the presented key is hashed (BearSSL) and looked up in a
 * sorted index, and the final comparison is constant time. A spec without
 * keys serves anyone (the compiler allows that only on loopback).
 */
#ifndef SLUICE_AUTH_H
#define SLUICE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "http/http.h"
#include "table.h"

/* Builds the lookup index; call once before serving. 0 or -1 (memory). */
int sl_auth_init(const sl_table *t);
void sl_auth_shutdown(void);

/* The key the client presented (Authorization: Bearer, x-api-key,
 * x-goog-api-key, or `key=` in the query), or NULL. */
const char *sl_auth_presented(const sl_http_request *req, size_t *len);

typedef enum sl_auth_status { SL_AUTH_OK = 0, SL_AUTH_MISSING, SL_AUTH_UNKNOWN, SL_AUTH_EXPIRED,
                              SL_AUTH_ADDRESS } sl_auth_status;

/* Identifies the caller: *key gets the key index, or -1 when the spec has
 * no keys (open gateway). */
sl_auth_status sl_auth_identify(const sl_table *t, const sl_http_request *req, const char *peer,
                                int *key);
int sl_auth_is_admin(const sl_table *t, const sl_http_request *req);
/* May key `key` use model entry `entry`? (-1 = open gateway: yes.) */
int sl_auth_allows(const sl_table *t, int key, uint32_t entry);

void sl_auth_sha256(const void *data, size_t len, uint8_t out[32]);
int sl_auth_ct_equal(const uint8_t *a, const uint8_t *b, size_t n);

#endif
