/*
 * Fuzz target: request, response and error translation. Any JSON document
 * jansson accepts goes through every protocol pair; results must be valid
 * JSON or NULL with a message, never a crash or a leak.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "translate/translate.h"

static void check_json(char *s)
{
    if (!s)
        return;
    json_t *j = json_loads(s, 0, NULL);
    if (!j)
        abort();
    json_decref(j);
    free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *req = json_loadb((const char *)data, size, 0, NULL);
    /* Four protocols with the Responses API, a client protocol only: the
     * pairs that make no sense must still answer NULL, not crash. */
    for (int from = 0; from < 4; from++) {
        for (int to = 0; to < 4; to++) {
            char err[256];
            if (json_is_object(req)) {
                for (int stream = 0; stream < 2; stream++)
                    check_json(sl_translate_request((sl_proto)from, (sl_proto)to, req, "m", stream, err,
                                                    sizeof err));
            }
            check_json(sl_translate_response((sl_proto)from, (sl_proto)to, (const char *)data, size,
                                             "m", err, sizeof err));
            int st = 0;
            check_json(sl_translate_error((sl_proto)from, (sl_proto)to, 400 + (int)(size % 200),
                                          (const char *)data, size, &st));
        }
    }
    if (json_is_object(req))
        (void)sl_translate_estimate_tokens(req);
    json_decref(req);
    return 0;
}
