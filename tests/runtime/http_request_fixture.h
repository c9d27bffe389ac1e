/*
 * What the HTTP/1.1 request-head parser's tests share (test_http_request*.c):
 * one parse at a time into the globals below, from a heap copy of exactly
 * the input's length so AddressSanitizer catches any read past the
 * caller's bytes; teardown frees it.
 */
#ifndef SLUICE_TEST_HTTP_REQUEST_FIXTURE_H
#define SLUICE_TEST_HTTP_REQUEST_FIXTURE_H

#include <stddef.h>

#include "http/http.h"

#define BIG_HEAD ((size_t)1 << 20)

/* The last parse: the input's copy, and what the parser filled in. */
extern char *buf;
extern size_t buf_len;
extern sl_http_request req;
extern sl_http_header req_headers[SL_HTTP_MAX_HEADERS];
extern const char *why;

/* Parse s[0..n) from a fresh exact-size heap copy kept until the next call. */
int parse_n(const char *s, size_t n, size_t max_head, size_t max_headers);
/* parse_n of a C string with the largest head and the most headers. */
int parse(const char *s);
int teardown(void **state);
/* Fails unless p[0..n) is exactly want. */
void assert_span(const char *p, size_t n, const char *want);
/* Fails unless the last request has header name with value want. */
void assert_header(const char *name, const char *want);

#endif
