/*
 * libFuzzer target for cache keys (runtime/cache/key.c) over arbitrary
 * client JSON: computing the exact key, the semantic context key, the
 * prompt text and the temperature test never crashes or leaks, and the
 * exact key does not depend on member order: the same body rebuilt with
 * every object's members reversed must give the same key.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cache/cache.h"

/* A deep copy with each object's members inserted in reverse order. */
static json_t *reversed(const json_t *j, int depth)
{
    if (depth > 100)
        return json_null();
    if (json_is_array(j)) {
        json_t *a = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(j, i, v) json_array_append_new(a, reversed(v, depth + 1));
        return a;
    }
    if (!json_is_object(j))
        return json_deep_copy(j);
    size_t n = json_object_size(j), k = 0;
    const char **keys = malloc((n ? n : 1) * sizeof *keys);
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)j, key, v) keys[k++] = key;
    json_t *o = json_object();
    while (k--)
        json_object_set_new(o, keys[k], reversed(json_object_get(j, keys[k]), depth + 1));
    free(keys);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!j)
        return 0;
    sl_cache_key_in in = {.rule = 1, .entry = 2, .client_model = "m", .op = SL_OP_CHAT,
                          .surface = SL_PROTO_OPENAI, .scope = "k", .body = j};
    uint8_t a[SL_CACHE_KEY_LEN], b[SL_CACHE_KEY_LEN], c[SL_CACHE_KEY_LEN];
    int ra = sl_cache_key(&in, a);
    json_t *r = reversed(j, 0);
    in.body = r;
    int rb = sl_cache_key(&in, b);
    if (ra == 0 && rb == 0 && memcmp(a, b, sizeof a) != 0)
        abort(); /* member order changed the key */
    in.without_prompt = 1;
    (void)sl_cache_key(&in, c);
    sl_buf text = {0};
    (void)sl_cache_prompt_text(j, &text);
    sl_buf_free(&text);
    for (int op = SL_OP_CHAT; op <= SL_OP_RESPONSES; op++)
        (void)sl_cache_temperature_zero(j, (sl_op)op);
    json_decref(r);
    json_decref(j);
    return 0;
}
