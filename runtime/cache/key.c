/*
 * Cache keys (see cache.h). The body is hashed in a canonical form so the
 * same question spelt differently by two SDKs (member order, whitespace)
 * is one key: jansson serialises with sorted members at every depth and
 * its own number formatting. Everything that shapes the answer's bytes
 * but lives outside the body (protocol, endpoint, stream framing, rule,
 * scope) goes in front, each field length-prefixed so no two field lists
 * hash the same bytes.
 */
#include "cache/cache.h"

#include <bearssl.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"

static void field(br_sha256_context *c, const void *p, size_t n)
{
    uint64_t len = n;
    br_sha256_update(c, &len, sizeof len);
    br_sha256_update(c, p, n);
}

static void field_int(br_sha256_context *c, int64_t v)
{
    field(c, &v, sizeof v);
}

/* Where each protocol carries the conversation. */
static const char *const prompt_members[] = {"messages", "input", "contents", "system", "instructions",
                                             "systemInstruction", "prompt"};

static int strings(const json_t *j, sl_buf *out, int depth)
{
    if (depth > 64)
        return 0;
    if (json_is_string(j))
        return sl_buf_append(out, json_string_value(j), json_string_length(j)) || sl_buf_append(out, "\n", 1);
    const char *k;
    json_t *v;
    size_t i;
    int rc = 0;
    if (json_is_object(j)) {
        /* Roles, types and ids are the same in every request: only text counts. */
        json_object_foreach((json_t *)j, k, v) if (strcmp(k, "role") && strcmp(k, "type") && strcmp(k, "id"))
            rc |= strings(v, out, depth + 1);
    } else if (json_is_array(j)) {
        json_array_foreach(j, i, v) rc |= strings(v, out, depth + 1);
    }
    return rc;
}

int sl_cache_prompt_text(const json_t *body, sl_buf *out)
{
    int rc = 0;
    for (size_t i = 0; i < sizeof prompt_members / sizeof prompt_members[0]; i++)
        rc |= strings(json_object_get(body, prompt_members[i]), out, 0);
    return rc ? -1 : 0;
}

int sl_cache_key(const sl_cache_key_in *in, uint8_t out[SL_CACHE_KEY_LEN])
{
    /* Members that identify the caller or the framing, not the question:
     * stream-ness is hashed below, the model as the routed entry and name. */
    static const char *const ignored[] = {"model", "stream", "user", "metadata", "safety_identifier"};
    json_t *copy = json_is_object(in->body) ? json_copy((json_t *)in->body) : json_object();
    if (!copy)
        return -1;
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++)
        json_object_del(copy, ignored[i]);
    for (size_t i = 0; in->without_prompt && i < sizeof prompt_members / sizeof prompt_members[0]; i++)
        json_object_del(copy, prompt_members[i]);
    char *canon = sl_json_dumps(copy, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    json_decref(copy);
    if (!canon)
        return -1;
    br_sha256_context c;
    br_sha256_init(&c);
    field(&c, in->without_prompt ? "sluice-cache-ctx-1" : "sluice-cache-1", in->without_prompt ? 18 : 14);
    field_int(&c, in->rule);
    field_int(&c, in->entry);
    field(&c, in->client_model ? in->client_model : "", in->client_model ? strlen(in->client_model) : 0);
    field_int(&c, in->op);
    field_int(&c, in->surface);
    field_int(&c, in->legacy);
    field_int(&c, in->stream);
    field(&c, in->scope ? in->scope : "", in->scope ? strlen(in->scope) : 0);
    field(&c, in->alt ? in->alt : "", in->alt ? in->alt_len : 0);
    field(&c, canon, strlen(canon));
    br_sha256_out(&c, out);
    free(canon);
    return 0;
}

int sl_cache_temperature_zero(const json_t *body, sl_op op)
{
    const json_t *t = json_object_get(body, "temperature");
    if (op == SL_OP_GENERATE)
        t = json_object_get(json_object_get(body, "generationConfig"), "temperature");
    return json_is_number(t) && json_number_value(t) == 0.0;
}
