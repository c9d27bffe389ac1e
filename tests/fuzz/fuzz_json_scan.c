/*
 * Fuzz target: the byte-level JSON member locator used to splice the model
 * name into pass-through bodies. For any document jansson accepts as an
 * object, replacing the located "model" value must give a document jansson
 * accepts, whose "model" is the new value and whose other members are
 * unchanged.
 */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/arena.h"
#include "json/json_scan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *doc = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_object(doc)) {
        json_decref(doc);
        return 0;
    }
    size_t s, e;
    if (sl_json_find_member((const char *)data, size, "model", &s, &e) == 0) {
        if (!json_object_get(doc, "model") || e > size || s > e)
            abort();
        sl_arena a;
        sl_arena_init(&a, 1024);
        const char *repl = sl_json_quote(&a, "new\"model\n", 10);
        size_t n;
        char *out = sl_json_splice(&a, (const char *)data, size, s, e, repl, strlen(repl), &n);
        json_t *d2 = json_loadb(out, n, JSON_REJECT_DUPLICATES, NULL);
        if (!d2 || strcmp(json_string_value(json_object_get(d2, "model")), "new\"model\n") != 0)
            abort();
        json_object_del(d2, "model");
        json_object_del(doc, "model");
        if (!json_equal(d2, doc))
            abort();
        json_decref(d2);
        sl_arena_free(&a);
    }
    json_decref(doc);
    return 0;
}
