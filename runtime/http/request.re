/*
 * The HTTP/1.1 request-head parser: re2c DFAs lex the request line and each
 * header line straight out of the caller's buffer, smaller DFAs classify the
 * pieces (method, target form, version, well-known header names and values),
 * and plain C applies the message-level rules that decide how the body is
 * framed (Content-Length vs Transfer-Encoding, Host, keep-alive). The parser
 * is stateless: every call rescans from byte 0, which keeps the connection
 * code trivial and costs little because heads are small and bounded by
 * max_head. Bytes past the buffer are read as 0 by the DFA's peek, which no
 * rule accepts, and the peek records that it happened: so "the DFA wanted a
 * byte we do not have yet" (INCOMPLETE, or a size limit) is told apart from
 * "the bytes we have can never form a head" (an error) without copying the
 * buffer to add a sentinel.
 */
#include "http/http.h"

#include <string.h>

#define NOPOS ((size_t)-1)

typedef struct lexer {
    const unsigned char *p;
    size_t lim; /* first index the DFA may not read */
    int eof;    /* set when the DFA asked for the byte at lim */
} lexer;

static inline unsigned char lex_peek(lexer *l, size_t cur)
{
    if (cur < l->lim)
        return l->p[cur];
    l->eof = 1;
    return 0;
}

/* Tags at a fixed distance from another position are moved by re2c, always
 * backwards within the bytes already matched. */
static inline size_t shift(size_t pos, long by)
{
    return by < 0 ? pos - (size_t)-by : pos + (size_t)by;
}

/*!re2c
  re2c:api = custom;
  re2c:api:style = free-form;
  re2c:define:YYCTYPE = "unsigned char";
  re2c:define:YYPEEK = "lex_peek(l, cur)";
  re2c:define:YYSKIP = "++cur;";
  re2c:define:YYBACKUP = "mar = cur;";
  re2c:define:YYRESTORE = "cur = mar;";
  re2c:define:YYSTAGP = "@@{tag} = cur;";
  re2c:define:YYSTAGN = "@@{tag} = NOPOS;";
  re2c:define:YYSHIFT = "cur = shift(cur, @@{shift});";
  re2c:define:YYSHIFTSTAG = "@@{tag} = shift(@@{tag}, @@{shift});";
  re2c:yyfill:enable = 0;
  re2c:tags = 1;

  tchar  = [-!#$%&'*+.^_`|~0-9A-Za-z];
  token  = tchar+;
  vchar  = [\x21-\x7e];
  fvchar = vchar | [\x80-\xff];
  ws     = [ \t];
  crlf   = "\r\n";
  hex    = [0-9A-Fa-f];
  pct    = "%" hex hex;
  end    = [\x00];

  // Request-target bytes: visible ASCII, '%' only as a valid escape, no
  // fragment. Stricter (RFC 3986 pchar only) would turn away real clients
  // that send "[", "|" or "{" raw in queries, and buys nothing: the gateway
  // routes on the path and never forwards the target verbatim.
  pathc  = ([\x21-\x7e] \ [#%?]) | pct;
  queryc = ([\x21-\x7e] \ [#%]) | pct;
  scheme = [A-Za-z] [-+.A-Za-z0-9]*;
  // No '@': userinfo in an http(s) URI is deprecated and RFC 9110 4.2.4 asks
  // recipients to treat it as an error.
  authc  = [-A-Za-z0-9._~!$&'()*+,;=:[\]] | pct;
  regc   = [-A-Za-z0-9._~!$&'()*+,;=] | pct;
*/

/* Slices handed to the classifying DFAs come from a head that has already
 * been lexed, so they hold no NUL and the 0 read at their end is a sentinel. */
static lexer slice(const char *s, size_t n)
{
    lexer l = {(const unsigned char *)s, n, 0};
    return l;
}

static sl_http_method classify_method(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    (void)mar;
    /*!re2c:method
      "GET" end     { return SL_HTTP_GET; }
      "HEAD" end    { return SL_HTTP_HEAD; }
      "POST" end    { return SL_HTTP_POST; }
      "PUT" end     { return SL_HTTP_PUT; }
      "DELETE" end  { return SL_HTTP_DELETE; }
      "OPTIONS" end { return SL_HTTP_OPTIONS; }
      "PATCH" end   { return SL_HTTP_PATCH; }
      *             { return SL_HTTP_OTHER; }
    */
}

/* Returns the minor version (1 for any 1.x above 1.0), or -505 / -400. */
static int classify_version(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0, d;
    /*!stags:re2c:version format = "size_t @@;\n"; */
    (void)mar;
    /*!re2c:version
      "HTTP/1." @d [0-9] end      { return l->p[d] == '0' ? 0 : 1; }
      "HTTP/" [02-9] "." [0-9] end { return -505; }
      *                           { return -400; }
    */
}

enum target_form { TARGET_BAD, TARGET_ORIGIN, TARGET_ABSOLUTE, TARGET_ASTERISK };

static const char root_path[] = "/";

static enum target_form classify_target(sl_http_request *req)
{
    lexer sl = slice(req->target, req->target_len), *l = &sl;
    const char *t = req->target;
    size_t cur = 0, mar = 0, a0 = NOPOS, a1 = NOPOS, p0 = NOPOS, p1 = NOPOS, q0 = NOPOS;
    /*!stags:re2c:target format = "size_t @@;\n"; */
    (void)mar;
    /*!re2c:target
      "*" end {
          req->path = t;
          req->path_len = 1;
          return TARGET_ASTERISK;
      }
      @p0 "/" pathc* @p1 ("?" @q0 queryc*)? end {
          req->path = t + p0;
          req->path_len = p1 - p0;
          goto query;
      }
      scheme "://" @a0 authc+ @a1 @p0 ("/" pathc*)? @p1 ("?" @q0 queryc*)? end {
          req->authority = t + a0;
          req->authority_len = a1 - a0;
          if (p1 == p0) {
              req->path = root_path;
              req->path_len = 1;
          } else {
              req->path = t + p0;
              req->path_len = p1 - p0;
          }
          if (q0 != NOPOS) {
              req->query = t + q0;
              req->query_len = req->target_len - q0;
          }
          return TARGET_ABSOLUTE;
      }
      * { return TARGET_BAD; }
    */
query:
    if (q0 != NOPOS) {
        req->query = t + q0;
        req->query_len = req->target_len - q0;
    }
    return TARGET_ORIGIN;
}

enum header_kind { H_OTHER, H_CONTENT_LENGTH, H_TRANSFER_ENCODING, H_HOST, H_CONNECTION, H_EXPECT };

static enum header_kind classify_header(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    (void)mar;
    /*!re2c:hname
      'content-length' end    { return H_CONTENT_LENGTH; }
      'transfer-encoding' end { return H_TRANSFER_ENCODING; }
      'host' end              { return H_HOST; }
      'connection' end        { return H_CONNECTION; }
      'expect' end            { return H_EXPECT; }
      *                       { return H_OTHER; }
    */
}

/* Transfer-Encoding value: 1 chunked, or -501 / -400. Only the bare coding is
 * accepted: "chunked, chunked" or "gzip, chunked" are legal lists, but
 * exactly the shapes request-smuggling probes use, and nothing sluice talks
 * to sends them. */
static int classify_te(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    (void)mar;
    /*!re2c:te
      'chunked' end { return 1; }
      token end     { return -501; }
      *             { return -400; }
    */
}

static int is_100_continue(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    (void)mar;
    /*!re2c:expect
      '100-continue' end { return 1; }
      *                  { return 0; }
    */
}

static int valid_host(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    (void)mar;
    /*!re2c:host
      ("[" [-0-9A-Za-z:._~!$&'()*+,;=]+ "]" | regc*) (":" [0-9]*)? end { return 1; }
      * { return 0; }
    */
}

enum { CONN_CLOSE = 1, CONN_KEEP_ALIVE = 2 };

/* Connection is a comma list; elements we do not know are hop-by-hop header
 * names the client may list, so they are ignored rather than refused. */
static int scan_connection(const char *s, size_t n)
{
    lexer sl = slice(s, n), *l = &sl;
    size_t cur = 0, mar = 0;
    int flags = 0;
    (void)mar;
next:
    {
        /*!re2c:conn
          end                            { return flags; }
          [, \t]+                  { goto next; }
          'close' end              { return flags | CONN_CLOSE; }
          'close' [, \t]           { flags |= CONN_CLOSE; goto next; }
          'keep-alive' end         { return flags | CONN_KEEP_ALIVE; }
          'keep-alive' [, \t]      { flags |= CONN_KEEP_ALIVE; goto next; }
          [^, \t\x00]+             { goto next; }
          *                        { return flags; }
        */
    }
}

/* Digits only, no sign or spaces (OWS is already trimmed), at most 2^62. */
static int64_t parse_content_length(const char *s, size_t n)
{
    int64_t v = 0;
    if (n == 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        int d = s[i] - '0';
        if (v > (SL_HTTP_MAX_BODY_SIZE - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    return v;
}

/* A line the DFA refused: name the first byte that explains it, for logs. */
static const char *line_fault(const unsigned char *p, size_t from, size_t lim, const char *fallback)
{
    for (size_t i = from; i < lim; i++) {
        unsigned char c = p[i];
        if (c == '\n')
            return "bare LF";
        if (c == '\r')
            return i + 1 < lim && p[i + 1] != '\n' ? "bare CR" : fallback;
        if (c == 0)
            return "NUL byte";
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return "control character";
    }
    return fallback;
}

static int fail(const char **why, int status, const char *reason)
{
    *why = reason;
    return status;
}

int sl_http_parse_request(const char *buf, size_t len, size_t max_head, size_t max_headers,
                          sl_http_request *req, const char **why)
{
    const char *ignored;
    if (why == NULL)
        why = &ignored;
    *why = NULL;
    if (max_headers > SL_HTTP_MAX_HEADERS)
        max_headers = SL_HTTP_MAX_HEADERS;
    if (max_headers > req->header_cap)
        max_headers = req->header_cap;

    req->method = SL_HTTP_OTHER;
    req->method_str = req->target = req->path = req->query = req->authority = NULL;
    req->method_len = req->target_len = req->path_len = req->query_len = req->authority_len = 0;
    req->version_minor = 0;
    req->header_count = 0;
    req->content_length = -1;
    req->chunked = req->keep_alive = req->expect_continue = 0;
    req->head_len = 0;

    /* Never look past max_head: a head that has not ended there is refused
     * whatever follows, and the scan stays bounded however much was read. */
    const size_t head_lim = len < max_head ? len : max_head;
    lexer lx = {(const unsigned char *)buf, head_lim, 0}, *l = &lx;
    size_t cur = 0, mar = 0, start;
    size_t m0, m1, t0, t1, v0, v1;
    /*!stags:re2c:reqline:header format = "size_t @@;\n"; */
    (void)mar;

request_line:
    {
        start = cur;
        l->eof = 0;
        l->lim = head_lim;
        if (l->lim - start > SL_HTTP_MAX_REQUEST_LINE + 2)
            l->lim = start + SL_HTTP_MAX_REQUEST_LINE + 2;
        /*!re2c:reqline
          crlf { goto request_line; }
          @m0 token @m1 " " @t0 vchar+ @t1 " " @v0 vchar+ @v1 crlf { goto request_line_done; }
          * {
              if (!l->eof)
                  return fail(why, -400,
                              line_fault(l->p, start, head_lim, "malformed request line"));
              if (l->lim - start == SL_HTTP_MAX_REQUEST_LINE + 2 || len >= max_head)
                  return fail(why, -414, "request line too long");
              return SL_HTTP_INCOMPLETE;
          }
        */
    }

request_line_done:
    req->method_str = buf + m0;
    req->method_len = m1 - m0;
    req->method = classify_method(req->method_str, req->method_len);
    req->target = buf + t0;
    req->target_len = t1 - t0;
    int minor = classify_version(buf + v0, v1 - v0);
    if (minor == -505)
        return fail(why, -505, "unsupported HTTP version");
    if (minor < 0)
        return fail(why, -400, "malformed HTTP version");
    req->version_minor = minor;
    switch (classify_target(req)) {
    case TARGET_BAD:
        return fail(why, -400, "malformed request target");
    case TARGET_ASTERISK:
        if (req->method != SL_HTTP_OPTIONS)
            return fail(why, -400, "'*' target without OPTIONS");
        break;
    case TARGET_ORIGIN:
    case TARGET_ABSOLUTE:
        break;
    }

    int seen_cl = 0, seen_te = 0, seen_host = 0, conn = 0, expect = 0;
    size_t n0, n1, h0, h1;
    l->lim = head_lim;
header_line:
    {
        start = cur;
        l->eof = 0;
        /*!re2c:header
          crlf { goto head_done; }
          @n0 token @n1 ":" ws* @h0 (fvchar (fvchar | ws)*)? @h1 crlf {
              while (h1 > h0 && (buf[h1 - 1] == ' ' || buf[h1 - 1] == '\t'))
                  h1--;
              goto header;
          }
          ws                { return fail(why, -400, "obs-fold or whitespace before header"); }
          token ws+ ":"     { return fail(why, -400, "whitespace before colon"); }
          ":"               { return fail(why, -400, "empty header name"); }
          * {
              if (!l->eof)
                  return fail(why, -400,
                              line_fault(l->p, start, head_lim, "malformed header line"));
              if (len >= max_head)
                  return fail(why, -431, "request head too large");
              return SL_HTTP_INCOMPLETE;
          }
        */
header:
        if (req->header_count >= max_headers)
            return fail(why, -431, "too many header fields");
        sl_http_header *h = &req->headers[req->header_count++];
        h->name = buf + n0;
        h->name_len = n1 - n0;
        h->value = buf + h0;
        h->value_len = h1 - h0;

        switch (classify_header(h->name, h->name_len)) {
        case H_CONTENT_LENGTH: {
            if (seen_cl)
                return fail(why, -400, "duplicate Content-Length");
            seen_cl = 1;
            if (seen_te)
                return fail(why, -400, "Content-Length with Transfer-Encoding");
            int64_t v = parse_content_length(h->value, h->value_len);
            if (v == -2)
                return fail(why, -400, "Content-Length too large");
            if (v < 0)
                return fail(why, -400, "invalid Content-Length");
            req->content_length = v;
            break;
        }
        case H_TRANSFER_ENCODING: {
            if (seen_te)
                return fail(why, -400, "duplicate Transfer-Encoding");
            seen_te = 1;
            if (req->version_minor == 0)
                return fail(why, -400, "Transfer-Encoding in HTTP/1.0");
            if (seen_cl)
                return fail(why, -400, "Content-Length with Transfer-Encoding");
            int te = classify_te(h->value, h->value_len);
            if (te == -501)
                return fail(why, -501, "unsupported transfer coding");
            if (te < 0)
                return fail(why, -400, "invalid Transfer-Encoding");
            req->chunked = 1;
            break;
        }
        case H_HOST:
            if (seen_host)
                return fail(why, -400, "duplicate Host");
            seen_host = 1;
            if (!valid_host(h->value, h->value_len))
                return fail(why, -400, "invalid Host");
            break;
        case H_CONNECTION:
            conn |= scan_connection(h->value, h->value_len);
            break;
        case H_EXPECT:
            expect |= is_100_continue(h->value, h->value_len);
            break;
        case H_OTHER:
            break;
        }
        goto header_line;
    }

head_done:
    if (req->version_minor >= 1 && !seen_host)
        return fail(why, -400, "missing Host");
    if (conn & CONN_CLOSE)
        req->keep_alive = 0;
    else
        req->keep_alive = req->version_minor >= 1 || (conn & CONN_KEEP_ALIVE);
    req->expect_continue = req->version_minor >= 1 && expect;
    req->head_len = cur;
    return SL_HTTP_OK;
}

const sl_http_header *sl_http_find_header(const sl_http_request *req, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < req->header_count; i++) {
        const sl_http_header *h = &req->headers[i];
        if (h->name_len != n)
            continue;
        size_t j = 0;
        while (j < n) {
            unsigned char a = (unsigned char)h->name[j], b = (unsigned char)name[j];
            if (a >= 'A' && a <= 'Z')
                a = (unsigned char)(a + 32);
            if (b >= 'A' && b <= 'Z')
                b = (unsigned char)(b + 32);
            if (a != b)
                break;
            j++;
        }
        if (j == n)
            return h;
    }
    return NULL;
}
