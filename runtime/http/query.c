/*
 * Query-string lookup over the raw request target. Values are returned as
 * they appear (not percent-decoded): callers compare them with literals or
 * parse digits, and a key or a date never needs decoding.
 */
#include <string.h>

#include "http/http.h"

const char *sl_http_query_param(const sl_http_request *req, const char *name, size_t *len)
{
    size_t nl = strlen(name);
    const char *q = req->query;
    size_t qn = req->query_len;
    while (q && qn > 0) {
        const char *amp = memchr(q, '&', qn);
        size_t seg = amp ? (size_t)(amp - q) : qn;
        if (seg > nl && memcmp(q, name, nl) == 0 && q[nl] == '=') {
            *len = seg - nl - 1;
            return q + nl + 1;
        }
        if (!amp)
            break;
        qn -= seg + 1;
        q = amp + 1;
    }
    return NULL;
}
