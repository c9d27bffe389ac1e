/*
 * Fuzz target: the HTTP/1.1 request-head parser. Any input must give OK,
 * INCOMPLETE or a negative status, and on OK every pointer in the result
 * must lie inside the input (checked by touching each byte under ASan).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    sl_http_header headers[SL_HTTP_MAX_HEADERS];
    sl_http_request req = {.headers = headers, .header_cap = SL_HTTP_MAX_HEADERS};
    const char *why = NULL;
    int rc = sl_http_parse_request(buf, size, 16384, 100, &req, &why);
    if (rc == SL_HTTP_OK) {
        volatile char sink = 0;
        for (size_t i = 0; i < req.header_count; i++) {
            for (size_t j = 0; j < req.headers[i].name_len; j++)
                sink ^= req.headers[i].name[j];
            for (size_t j = 0; j < req.headers[i].value_len; j++)
                sink ^= req.headers[i].value[j];
        }
        for (size_t j = 0; j < req.path_len; j++)
            sink ^= req.path[j];
        if (req.head_len > size)
            abort();
        (void)sl_http_find_header(&req, "content-type");
        (void)sink;
    } else if (rc != SL_HTTP_INCOMPLETE && (rc >= 0 || !why)) {
        abort();
    }
    free(buf);
    return 0;
}
