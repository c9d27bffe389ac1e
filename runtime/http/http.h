/*
 * HTTP/1.1 wire parsing for the gateway's listener: the request head (request
 * line and header fields), the chunked transfer coding of request bodies, and
 * the reason phrases of status lines. The parsers are strict in the way
 * hardened front ends are (RFC 9112 with every "MAY reject" taken as
 * "rejects"), because sluice is often the first hop and anything it accepts
 * loosely is something a later hop might read differently. Neither parser
 * allocates or copies: the request head points into the caller's buffer and
 * the chunked decoder writes in place if asked to.
 */
#ifndef SLUICE_HTTP_H
#define SLUICE_HTTP_H

#include <stddef.h>
#include <stdint.h>

typedef enum sl_http_method {
    SL_HTTP_GET,
    SL_HTTP_HEAD,
    SL_HTTP_POST,
    SL_HTTP_PUT,
    SL_HTTP_DELETE,
    SL_HTTP_OPTIONS,
    SL_HTTP_PATCH,
    SL_HTTP_OTHER /* any other token, CONNECT and TRACE included: the caller answers 405/501 */
} sl_http_method;

/* Name and value point into the caller's buffer; the value is trimmed of
 * surrounding OWS. Names keep the case the client sent. */
typedef struct sl_http_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
} sl_http_header;

#define SL_HTTP_MAX_HEADERS 100
/* Longest request line, CRLF excluded, before the answer is 414. */
#define SL_HTTP_MAX_REQUEST_LINE 8192
/* Largest Content-Length or chunk size accepted (2^62): body arithmetic
 * elsewhere can add sizes in int64_t without overflow checks. */
#define SL_HTTP_MAX_BODY_SIZE ((int64_t)1 << 62)

typedef struct sl_http_request {
    sl_http_method method;
    const char *method_str;
    size_t method_len;
    const char *target; /* raw request-target */
    size_t target_len;
    /* Target up to '?'. For an absolute-form target ("http://h/p?q") this is
     * the path after the authority, and a static "/" when that path is empty;
     * for the asterisk form it is "*". */
    const char *path;
    size_t path_len;
    const char *query; /* after '?', len 0 when none */
    size_t query_len;
    /* Authority of an absolute-form target (RFC 9112 3.2.2: it overrides
     * Host); NULL and 0 for the other forms. */
    const char *authority;
    size_t authority_len;
    /* HTTP/1.0 -> 0, HTTP/1.1 -> 1. A higher 1.x minor is read as 1 (RFC
     * 9110 6.2: process as the highest minor version implemented). */
    int version_minor;
    /* Storage for header_cap headers, provided by the caller before parsing
     * (the parser never allocates): a connection parses into one scratch
     * array per worker and keeps only header_count entries per request,
     * because 100 slots in every connection cost 3 KiB each, idle ones too. */
    sl_http_header *headers;
    size_t header_cap;
    size_t header_count;
    int64_t content_length; /* -1 when absent */
    int chunked;            /* Transfer-Encoding: chunked */
    int keep_alive;         /* after Connection header + version rules */
    int expect_continue;    /* Expect: 100-continue (ignored for HTTP/1.0, RFC 9110 10.1.1) */
    size_t head_len;        /* bytes of the head incl. the final CRLFCRLF (and any leading empty lines) */
} sl_http_request;

enum { SL_HTTP_OK = 0, SL_HTTP_INCOMPLETE = 1 };

/*
 * Parse the head at buf[0..len). Returns SL_HTTP_OK with *req filled,
 * SL_HTTP_INCOMPLETE if the head is not complete yet and len < max_head, or a
 * negative HTTP status to answer with (then close the connection); *why gets
 * a short static reason such as "duplicate Content-Length" (NULL unless an
 * error; why itself may be NULL). *req is meaningful only after SL_HTTP_OK.
 *
 *   -400  any syntax error: bare LF or CR, NUL or other control bytes, a
 *         malformed request line, target or header line, obs-fold, a bad or
 *         duplicate Content-Length, Content-Length with Transfer-Encoding,
 *         a Transfer-Encoding that is not exactly "chunked" (other than the
 *         case below), duplicate Transfer-Encoding, Transfer-Encoding in
 *         HTTP/1.0, missing/duplicate/invalid Host in HTTP/1.1, '*' target
 *         without OPTIONS, a malformed version ("HTTP/1.10", "http/1.1");
 *   -414  the request line is longer than SL_HTTP_MAX_REQUEST_LINE, or does
 *         not end within max_head bytes;
 *   -431  more than max_headers header fields, or the head does not end
 *         within max_head bytes;
 *   -501  Transfer-Encoding is a single well-formed coding other than
 *         chunked ("gzip", "identity"): understood, not implemented (RFC
 *         9112 6.1). Lists, even "gzip, chunked", stay 400;
 *   -505  a well-formed version other than 1.x ("HTTP/2.0", "HTTP/0.9").
 *
 * Errors are reported as soon as the bytes that prove them are present,
 * before the head is complete. max_headers is clamped to SL_HTTP_MAX_HEADERS
 * and to req->header_cap; req->headers and req->header_cap are kept.
 * Leading empty lines (CRLF) are skipped, as RFC 9112 2.2 suggests; they
 * count toward max_head and head_len.
 *
 * The parser keeps no state between calls, so each call costs O(len). A
 * caller reading in small pieces need only call again once the new bytes
 * contain '\n' or the buffer has reached max_head: a head can only complete,
 * and a limit can only trip, then; other errors merely surface later.
 */
int sl_http_parse_request(const char *buf, size_t len, size_t max_head, size_t max_headers,
                          sl_http_request *req, const char **why);

/* Case-insensitive header lookup; returns the first match, NULL when absent. */
const sl_http_header *sl_http_find_header(const sl_http_request *req, const char *name);

/* The raw value of query parameter `name` (not percent-decoded) and its
 * length, or NULL when absent. */
const char *sl_http_query_param(const sl_http_request *req, const char *name, size_t *len);

/* The reason phrase for a status line ("Not Found"); a class name ("Client
 * Error") for codes without one of their own. Never NULL. */
const char *sl_http_reason(int status);

/*
 * Chunked request bodies (RFC 9112 7.1). Strict: hex sizes of 1..16 digits
 * (no sign, no "0x", no surrounding spaces except BWS before ';') and at most
 * SL_HTTP_MAX_BODY_SIZE; extensions are skipped but the whole size line,
 * CRLF included, is capped at SL_CHUNKED_MAX_LINE; trailer fields are
 * checked (token name, ':', no control bytes, no obs-fold) and discarded,
 * capped at SL_CHUNKED_MAX_TRAILER bytes including the final CRLF; only CRLF
 * ends a line.
 */
#define SL_CHUNKED_MAX_LINE 4096
#define SL_CHUNKED_MAX_TRAILER 8192

typedef struct sl_chunked { /* private state */
    int state;
    uint64_t remaining;  /* chunk size being read, then data bytes left */
    size_t line_len;     /* bytes of the current size line so far */
    size_t trailer_len;  /* bytes of the trailer section so far */
} sl_chunked;

enum { SL_CHUNKED_AGAIN = 0, SL_CHUNKED_DONE = 1, SL_CHUNKED_ERROR = -1 };

void sl_chunked_init(sl_chunked *c);

/*
 * Incremental decoder: consumes in[0..in_len), writes body bytes to out (out
 * may equal in; output never overtakes input, so out needs in_len bytes).
 * Sets *consumed and *produced. Returns DONE after the last-chunk and the
 * trailers' final CRLF (*consumed stops there: pipelined bytes stay), AGAIN
 * when more input is needed (all of in was consumed), ERROR on malformed
 * input (*consumed is where the bad byte is; the decoder stays in error).
 * Calling again after DONE consumes nothing and returns DONE.
 */
int sl_chunked_decode(sl_chunked *c, const char *in, size_t in_len, size_t *consumed, char *out,
                      size_t *produced);

#endif
