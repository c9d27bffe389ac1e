/*
 * The request-head parser tests' shared parse step and assertions
 * (http_request_fixture.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http_request_fixture.h"

char *buf;
size_t buf_len;
sl_http_request req;
sl_http_header req_headers[SL_HTTP_MAX_HEADERS];
const char *why;

/* Parse s[0..n) from a fresh exact-size heap copy kept until the next call. */
int parse_n(const char *s, size_t n, size_t max_head, size_t max_headers)
{
    free(buf);
    buf = malloc(n ? n : 1);
    assert_non_null(buf);
    memcpy(buf, s, n);
    buf_len = n;
    why = NULL;
    req.headers = req_headers;
    req.header_cap = SL_HTTP_MAX_HEADERS;
    return sl_http_parse_request(buf, n, max_head, max_headers, &req, &why);
}

int parse(const char *s)
{
    return parse_n(s, strlen(s), BIG_HEAD, SL_HTTP_MAX_HEADERS);
}

int teardown(void **state)
{
    (void)state;
    free(buf);
    buf = NULL;
    return 0;
}

void assert_span(const char *p, size_t n, const char *want)
{
    if (n != strlen(want) || (n && memcmp(p, want, n) != 0))
        fail_msg("got \"%.*s\" (%zu), want \"%s\"", (int)n, p ? p : "", n, want);
}

void assert_header(const char *name, const char *want)
{
    const sl_http_header *h = sl_http_find_header(&req, name);
    if (h == NULL)
        fail_msg("header %s missing", name);
    assert_span(h->value, h->value_len, want);
}
