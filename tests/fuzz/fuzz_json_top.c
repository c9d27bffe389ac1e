/*
 * Fuzz target: the validating top-level scan (runtime/json/json_top.c)
 * against jansson. Whenever the scan says OK, jansson (as sluice parses
 * request bodies: JSON_REJECT_DUPLICATES) must accept the same bytes as an
 * object, and every named member's span must hold exactly the value
 * jansson has for it (absent when jansson has none). "Unsure" is always
 * allowed: the caller then parses with jansson.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_top.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"model", "stream", "max_tokens", "a", ""};
    enum { N = sizeof names / sizeof *names };
    sl_json_span m[N];
    /* an exact-size copy, so a sanitizer sees any read past the end */
    char *p = malloc(size ? size : 1);
    if (!p)
        return 0;
    memcpy(p, data, size);
    sl_json_top_result r = sl_json_top_scan(p, size, names, N, m);
    if (r == SL_JSON_TOP_OK) {
        json_t *doc = json_loadb(p, size, JSON_REJECT_DUPLICATES, NULL);
        if (!json_is_object(doc))
            abort();
        for (size_t i = 0; i < N; i++) {
            json_t *want = json_object_get(doc, names[i]);
            if (!m[i].end) {
                if (want)
                    abort();
                continue;
            }
            if (m[i].end > size || m[i].start >= m[i].end)
                abort();
            json_t *got = json_loadb(p + m[i].start, m[i].end - m[i].start, JSON_DECODE_ANY, NULL);
            if (!got || !json_equal(got, want))
                abort();
            const char *s;
            size_t sl;
            if (sl_json_span_plain_string(p, m[i], &s, &sl) == 0 &&
                (!json_is_string(want) || json_string_length(want) != sl || memcmp(json_string_value(want), s, sl) != 0))
                abort();
            if (sl_json_span_is_true(p, m[i]) != json_is_true(want))
                abort();
            json_decref(got);
        }
        json_decref(doc);
    }
    free(p);
    return 0;
}
