/* mock-upstream: what the assistant says, independent of the provider
 * shape: the deterministic text reply (word count, max_tokens cut, echo=1,
 * a tool result quoted back), a tool call whose arguments are sampled from
 * the declared JSON Schema, and the split of either into stream chunks
 * (at word starts for text, at UTF-8 boundaries for argument JSON). The
 * provider files turn an `answer` into their own wire format. */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const WORDS[] = {
    "Hello", "from", "mock-upstream.", "This", "deterministic", "reply",
    "streams", "word", "by", "word", "so", "tests", "can", "count", "chunks",
    "and", "tokens."};
#define NWORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

void mu_answer_free(answer *a)
{
    free(a->text);
    for (int i = 0; i < a->npieces; i++)
        free(a->pieces[i]);
    free(a->pieces);
    json_decref(a->tool_input);
}

static char *gen_words(int n)
{
    mu_buf b = {0};
    for (int i = 0; i < n; i++) {
        if (i)
            mu_buf_str(&b, " ");
        mu_buf_str(&b, WORDS[i % NWORDS]);
    }
    mu_buf_add(&b, "", 0);
    return b.p;
}

/* Splits text at word starts into n chunks whose concatenation is text. */
static void split_words(answer *a, int n)
{
    const char *t = a->text;
    size_t len = strlen(t);
    int w = mu_count_words(t);
    size_t *starts = calloc((size_t)w + 1, sizeof *starts);
    if (!starts)
        abort();
    int k = 0, in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = isspace((unsigned char)t[i]);
        if (!sp && !in)
            starts[k++] = i;
        in = !sp;
    }
    if (w > 0)
        starts[0] = 0; /* leading blanks ride with the first word */
    starts[w] = len;
    if (n > w)
        n = w > 0 ? w : 1;
    a->pieces = calloc((size_t)n, sizeof *a->pieces);
    a->npieces = n;
    for (int i = 0; i < n; i++) {
        size_t from = w ? starts[(size_t)i * (size_t)w / (size_t)n] : 0;
        size_t to = w ? starts[(size_t)(i + 1) * (size_t)w / (size_t)n] : len;
        a->pieces[i] = strndup(t + from, to - from);
    }
    free(starts);
}

/* Splits a JSON string into n byte ranges without cutting a UTF-8 char. */
static void split_bytes(answer *a, int n)
{
    const char *t = a->text;
    size_t len = strlen(t);
    if ((size_t)n > len)
        n = len ? (int)len : 1;
    a->pieces = calloc((size_t)n, sizeof *a->pieces);
    a->npieces = n;
    size_t from = 0;
    for (int i = 0; i < n; i++) {
        size_t to = i == n - 1 ? len : (size_t)(i + 1) * len / (size_t)n;
        while (to < len && ((unsigned char)t[to] & 0xC0) == 0x80)
            to++;
        if (to < from)
            to = from;
        a->pieces[i] = strndup(t + from, to - from);
        from = to;
    }
}

static json_t *sample_str(const ctx *c, const char *name)
{
    return c->arg_str[0] ? json_string(c->arg_str) : json_sprintf("mock-%s", name);
}

/* Whether an object schema lists `name` among its required properties. */
static int is_required(json_t *schema, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(schema, "required"), i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), name))
            return 1;
    return 0;
}

/* A plausible argument value for a JSON Schema, so SDKs and gateways see
 * arguments that match the tool they declared. */
static json_t *sample(const ctx *c, json_t *schema, const char *name, int depth)
{
    if (!json_is_object(schema) || depth > 6)
        return sample_str(c, name);
    json_t *en = json_object_get(schema, "enum");
    if (json_array_size(en))
        return json_deep_copy(json_array_get(en, 0));
    json_t *def = json_object_get(schema, "default");
    if (def)
        return json_deep_copy(def);
    json_t *tj = json_object_get(schema, "type");
    const char *type = json_string_value(tj);
    if (json_is_array(tj)) {
        size_t i;
        json_t *v;
        json_array_foreach(tj, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), "null")) {
                type = json_string_value(v);
                break;
            }
        }
    }
    json_t *props = json_object_get(schema, "properties");
    if (!type)
        type = json_is_object(props) ? "object" : "string";
    if (!strcmp(type, "integer"))
        return json_integer(42);
    if (!strcmp(type, "number"))
        return json_real(1.5);
    if (!strcmp(type, "boolean"))
        return json_true();
    if (!strcmp(type, "null"))
        return json_null();
    if (!strcmp(type, "array"))
        return json_pack("[o]", sample(c, json_object_get(schema, "items"), name, depth + 1));
    if (!strcmp(type, "object")) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(props, k, v) {
            if (!c->args_required || is_required(schema, k))
                json_object_set_new(o, k, sample(c, v, k, depth + 1));
        }
        return o;
    }
    return sample_str(c, name);
}

void mu_text_answer(ctx *c, answer *a, const char *quoted, long long max_tokens,
                        int stream)
{
    if (quoted) {
        mu_buf b = {0};
        mu_buf_printf(&b, "The tool returned: %s", quoted);
        a->text = b.p;
    } else if (c->echo && c->echo_text[0]) {
        a->text = strdup(c->echo_text);
    } else {
        int n = c->words ? c->words : NWORDS;
        if (c->chunks > n)
            n = c->chunks; /* every requested chunk gets a word */
        a->text = gen_words(n);
    }
    int w = mu_count_words(a->text);
    if (max_tokens > 0 && w > max_tokens) {
        /* cut after the max_tokens-th word, as a provider stops at its limit */
        const char *t = a->text;
        int k = 0, in = 0;
        size_t i;
        for (i = 0; t[i]; i++) {
            int sp = isspace((unsigned char)t[i]);
            if (!sp && !in && k++ == max_tokens)
                break;
            in = !sp;
        }
        while (i > 0 && isspace((unsigned char)t[i - 1]))
            i--;
        a->text[i] = '\0';
        a->truncated = 1;
        w = (int)max_tokens;
    }
    a->out_tokens = w;
    a->nchunks = c->chunks ? c->chunks : w;
    if (stream)
        split_words(a, a->nchunks);
}

void mu_tool_answer(ctx *c, answer *a, const char *name, json_t *schema, int stream)
{
    a->is_tool = 1;
    a->tool_name = name;
    a->tool_input = sample(c, schema, name, 0);
    if (!json_is_object(a->tool_input)) {
        json_decref(a->tool_input);
        a->tool_input = json_object();
    }
    a->text = mu_dump(a->tool_input);
    mu_new_id(a->tool_id, sizeof a->tool_id, c->proto == P_OPENAI ? "call_mock" : "toolu_mock");
    a->out_tokens = (long long)(strlen(a->text) + 3) / 4;
    a->nchunks = c->chunks ? c->chunks : 3;
    if (stream)
        split_bytes(a, a->nchunks);
}
