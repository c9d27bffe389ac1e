/* mock-upstream: the OpenAI shapes: Chat Completions (JSON and
 * chat.completion.chunk SSE, tool calls, include_usage), embeddings (a
 * hashed bag of words, float or base64), the models list (also in the
 * Anthropic shape), and the Responses API (response object and its SSE
 * event sequence with sequence_number). The request has been routed,
 * authenticated and its directives applied by mock_api.c. */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- OpenAI ----------------------------------------------------------- */

static json_t *oa_usage(const ctx *c, const answer *a)
{
    /* prompt_tokens counts the cached ones too, as OpenAI's does */
    long long in = mu_input_tokens(c) + c->cache_read;
    return json_pack("{s:I,s:I,s:I,s:{s:I,s:i},s:{s:i,s:i,s:i,s:i}}",
                     "prompt_tokens", in, "completion_tokens", a->out_tokens,
                     "total_tokens", in + a->out_tokens,
                     "prompt_tokens_details", "cached_tokens", (json_int_t)c->cache_read, "audio_tokens", 0,
                     "completion_tokens_details", "reasoning_tokens", 0, "audio_tokens", 0,
                     "accepted_prediction_tokens", 0, "rejected_prediction_tokens", 0);
}

static json_t *oa_chunk(const ctx *c, const char *id, json_t *choices, int with_usage_null)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "id", id, "object",
                          "chat.completion.chunk", "created", c->created, "model",
                          c->model, "service_tier", "default", "system_fingerprint",
                          "fp_mock", "choices", choices);
    if (with_usage_null)
        json_object_set_new(j, "usage", json_null());
    return j;
}

static json_t *oa_choice(json_t *delta, const char *finish)
{
    return json_pack("[{s:i,s:o,s:n,s:o}]", "index", 0, "delta", delta, "logprobs",
                     "finish_reason", finish ? json_string(finish) : json_null());
}

void mu_openai_chat(ctx *c)
{
    json_t *b = c->body;
    json_t *messages = json_object_get(b, "messages");
    if (!json_is_array(messages) || !json_array_size(messages)) {
        mu_send_error(c, 400, "'messages' must be a non-empty array");
        return;
    }
    int stream = json_is_true(json_object_get(b, "stream"));
    int include_usage = stream && json_is_true(json_object_get(
                                      json_object_get(b, "stream_options"), "include_usage"));
    /* null when the chunks carry no usage member at all (usage=none) */
    include_usage = include_usage && !c->usage_none;
    mu_set_call(c, "stream", json_boolean(stream));
    long long max_tokens = json_integer_value(json_object_get(b, "max_completion_tokens"));
    if (!max_tokens)
        max_tokens = json_integer_value(json_object_get(b, "max_tokens"));

    json_t *last = mu_last_message(messages, NULL);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    json_t *tools = json_object_get(b, "tools");
    json_t *choice = json_object_get(b, "tool_choice");
    const char *choice_s = json_string_value(choice);
    json_t *tool = NULL;
    if (json_array_size(tools) && last_role && !strcmp(last_role, "user") && !c->no_tool &&
        !(choice_s && !strcmp(choice_s, "none"))) {
        const char *want = c->tool[0] ? c->tool : json_string_value(
            json_object_get(json_object_get(choice, "function"), "name"));
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *n = json_string_value(
                json_object_get(json_object_get(t, "function"), "name"));
            if (n && (!want || !strcmp(n, want))) {
                tool = t;
                break;
            }
        }
        if (!tool && c->tool[0]) {
            char msg[200];
            snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such tool", c->tool);
            mu_send_error(c, 400, msg);
            return;
        }
    }

    answer a = {0};
    if (tool) {
        json_t *fn = json_object_get(tool, "function");
        mu_tool_answer(c, &a, json_string_value(json_object_get(fn, "name")),
                    json_object_get(fn, "parameters"), stream);
    } else if (last_role && !strcmp(last_role, "tool")) {
        mu_buf q = {0};
        mu_content_text(json_object_get(last, "content"), &q);
        mu_buf_add(&q, "", 0);
        mu_text_answer(c, &a, q.p, max_tokens, stream);
        mu_buf_free(&q);
    } else {
        mu_text_answer(c, &a, NULL, max_tokens, stream);
    }
    const char *finish = a.is_tool ? "tool_calls" : a.truncated ? "length" : "stop";
    char id[48];
    mu_new_id(id, sizeof id, "chatcmpl-mock");

    if (!stream) {
        json_t *msg;
        if (a.is_tool)
            msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}],s:n,s:[]}", "role",
                            "assistant", "content", "tool_calls", "id", a.tool_id, "type",
                            "function", "function", "name", a.tool_name, "arguments",
                            a.text, "refusal", "annotations");
        else
            msg = json_pack("{s:s,s:s,s:n,s:[]}", "role", "assistant", "content", a.text,
                            "refusal", "annotations");
        json_t *resp = json_pack(
            "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}]}", "id", id, "object",
            "chat.completion", "created", c->created, "model", c->model, "choices",
            "index", 0, "message", msg, "logprobs", "finish_reason", finish);
        mu_put_usage(c, resp, "usage", oa_usage(c, &a));
        json_object_set_new(resp, "service_tier", json_string("default"));
        json_object_set_new(resp, "system_fingerprint", json_string("fp_mock"));
        mu_send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }

    evlist l = {0};
    if (a.is_tool) {
        mu_ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
            "{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}],s:n}", "role", "assistant", "content",
            "tool_calls", "index", 0, "id", a.tool_id, "type", "function", "function",
            "name", a.tool_name, "arguments", "", "refusal"), NULL), include_usage));
        for (int i = 0; i < a.npieces; i++)
            mu_ev_add(&l, i ? c->interval_ms : 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
                "{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function", "arguments",
                a.pieces[i]), NULL), include_usage));
    } else {
        mu_ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
            "{s:s,s:s,s:n}", "role", "assistant", "content", "", "refusal"), NULL),
            include_usage));
        for (int i = 0; i < a.npieces; i++)
            mu_ev_add(&l, i ? c->interval_ms : 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
                "{s:s}", "content", a.pieces[i]), NULL), include_usage));
    }
    mu_ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_object(), finish), include_usage));
    if (include_usage && !c->usage_none) {
        json_t *u = oa_chunk(c, id, json_array(), 0);
        mu_put_usage(c, u, "usage", oa_usage(c, &a));
        mu_ev_add(&l, 0, NULL, u);
    }
    mu_ev_add(&l, 0, NULL, NULL); /* data: [DONE] */
    mu_send_stream(c, &l);
    mu_answer_free(&a);
}

/* Adds the pseudo-random vector seeded by s[0..len) (FNV-1a, then an LCG). */
static void add_hashed(const char *s, size_t len, int dims, float *out)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    for (int i = 0; i < dims; i++) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] += (float)((double)(h >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
    }
}

/* Deterministic unit vector for one input: a hashed bag of words, the sum
 * of one pseudo-random vector per word (letters and digits, case folded),
 * so texts sharing most words point the same way, as real embeddings of
 * near-identical prompts do (semantic cache tests rely on it). Input
 * without words hashes whole. */
static void embed(const char *s, size_t len, int dims, float *out)
{
    memset(out, 0, (size_t)dims * sizeof *out);
    char word[64];
    size_t wn = 0;
    int words = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = i < len ? (unsigned char)s[i] : ' ';
        if (isalnum(ch)) {
            if (wn < sizeof word)
                word[wn++] = (char)tolower(ch);
        } else if (wn) {
            add_hashed(word, wn, dims, out);
            words++;
            wn = 0;
        }
    }
    if (!words)
        add_hashed(s, len, dims, out);
    double norm = 0;
    for (int i = 0; i < dims; i++)
        norm += (double)out[i] * out[i];
    norm = norm > 0 ? 1.0 / sqrt(norm) : 1.0;
    for (int i = 0; i < dims; i++)
        out[i] = (float)(out[i] * norm);
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o)
        abort();
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = tbl[v >> 18 & 63];
        *q++ = tbl[v >> 12 & 63];
        *q++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *q = '\0';
    return o;
}

void mu_openai_embeddings(ctx *c)
{
    json_t *input = json_object_get(c->body, "input");
    json_t *list;
    /* input: a string, an array of strings, an array of token ids, or an
     * array of such arrays; each top-level item is one embedding. */
    if (json_is_string(input) ||
        (json_is_array(input) && json_array_size(input) &&
         json_is_integer(json_array_get(input, 0))))
        list = json_pack("[O]", input);
    else if (json_is_array(input) && json_array_size(input))
        list = json_incref(input);
    else {
        mu_send_error(c, 400, "'input' must be a string or a non-empty array");
        return;
    }
    long long dims = json_integer_value(json_object_get(c->body, "dimensions"));
    if (dims <= 0 || dims > 4096)
        dims = 16;
    const char *fmt = json_string_value(json_object_get(c->body, "encoding_format"));
    int b64 = fmt && !strcmp(fmt, "base64");
    json_t *data = json_array();
    float *vec = malloc((size_t)dims * sizeof *vec);
    long long tokens = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char *s = mu_dump(item);
        size_t sl = strlen(s);
        tokens += (long long)(sl + 3) / 4;
        embed(s, sl, (int)dims, vec);
        free(s);
        json_t *e;
        if (b64) {
            /* float32 little-endian, which is what the SDKs decode */
            unsigned char *raw = malloc((size_t)dims * 4);
            for (long long k = 0; k < dims; k++) {
                unsigned u;
                memcpy(&u, &vec[k], 4);
                raw[k * 4] = (unsigned char)u;
                raw[k * 4 + 1] = (unsigned char)(u >> 8);
                raw[k * 4 + 2] = (unsigned char)(u >> 16);
                raw[k * 4 + 3] = (unsigned char)(u >> 24);
            }
            char *enc = base64(raw, (size_t)dims * 4);
            e = json_string(enc);
            free(enc);
            free(raw);
        } else {
            e = json_array();
            for (long long k = 0; k < dims; k++)
                json_array_append_new(e, json_real(vec[k]));
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding",
                                              "index", (json_int_t)i, "embedding", e));
    }
    free(vec);
    json_decref(list);
    mu_send_json(c, 200, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data",
                                data, "model", c->model, "usage", "prompt_tokens", tokens,
                                "total_tokens", tokens));
}

void mu_models_list(ctx *c)
{
    static const char *const oa[] = {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"};
    static const char *const an[] = {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"};
    json_t *data = json_array();
    if (c->proto == P_ANTHROPIC) {
        for (size_t i = 0; i < 3; i++)
            json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:s}", "type", "model",
                                                  "id", an[i], "display_name", an[i],
                                                  "created_at", "2025-01-01T00:00:00Z"));
        mu_send_json(c, 200, json_pack("{s:o,s:b,s:s,s:s}", "data", data, "has_more", 0,
                                    "first_id", an[0], "last_id", an[2]));
    } else {
        for (size_t i = 0; i < 3; i++)
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", oa[i],
                                                  "object", "model", "created", 1700000000,
                                                  "owned_by", "mock-upstream"));
        mu_send_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    }
}

/* ---- OpenAI Responses API ------------------------------------------------ */

/* The Responses usage object: input_tokens counts cached ones too (as
 * OpenAI's does), broken out in input_tokens_details. */
static json_t *rs_usage(const ctx *c, long long out)
{
    long long in = mu_input_tokens(c) + c->cache_read;
    return json_pack("{s:I,s:{s:I},s:I,s:{s:i},s:I}", "input_tokens", in, "input_tokens_details",
                     "cached_tokens", (json_int_t)c->cache_read, "output_tokens", out,
                     "output_tokens_details", "reasoning_tokens", 0, "total_tokens", in + out);
}

/* Text of a Responses message's content: a string or input_text /
 * output_text parts. */
static void rs_content_text(json_t *content, mu_buf *out)
{
    if (json_is_string(content)) {
        mu_buf_str(out, json_string_value(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (type && (!strcmp(type, "input_text") || !strcmp(type, "output_text")) && json_is_string(text)) {
            if (out->len)
                mu_buf_str(out, "\n");
            mu_buf_str(out, json_string_value(text));
        }
    }
}

/* The text of the last user message of `input` (a string or items). */
void mu_rs_user_text(json_t *input, mu_buf *out)
{
    if (json_is_string(input)) {
        mu_buf_str(out, json_string_value(input));
        return;
    }
    for (size_t i = json_array_size(input); i-- > 0;) {
        json_t *it = json_array_get(input, i);
        const char *role = json_string_value(json_object_get(it, "role"));
        if (role && !strcmp(role, "user")) {
            rs_content_text(json_object_get(it, "content"), out);
            return;
        }
    }
}

/* The response envelope, echoing what OpenAI echoes of the request. */
static json_t *rs_response(const ctx *c, const char *id, const char *status, json_t *output)
{
    json_t *b = c->body;
    json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:n,s:n,s:s,s:o,s:b}", "id", id, "object", "response", "created_at",
                          c->created, "status", status, "error", "incomplete_details", "model", c->model, "output",
                          output, "parallel_tool_calls", 1);
    static const char *const echo[] = {"instructions", "previous_response_id", "store", "metadata", "reasoning",
                                       "tool_choice", "tools", "text", "max_output_tokens"};
    for (size_t i = 0; i < sizeof echo / sizeof *echo; i++) {
        json_t *v = json_object_get(b, echo[i]);
        json_object_set_new(r, echo[i], v ? json_deep_copy(v) : json_null());
    }
    if (!json_object_get(b, "store"))
        json_object_set_new(r, "store", json_true());
    json_object_set_new(r, "usage", json_null());
    return r;
}

static json_t *rs_seq(json_t *ev, const char *type, long *seq)
{
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "sequence_number", json_integer((*seq)++));
    return ev;
}

void mu_openai_responses(ctx *c)
{
    json_t *b = c->body;
    json_t *input = json_object_get(b, "input");
    if (!json_is_string(input) && !json_array_size(input)) {
        mu_send_error(c, 400, "Missing required parameter: 'input'.");
        return;
    }
    int stream = json_is_true(json_object_get(b, "stream"));
    mu_set_call(c, "stream", json_boolean(stream));
    long long max_tokens = json_integer_value(json_object_get(b, "max_output_tokens"));

    /* A tool result as the last item is answered; a user message with
     * function tools offered gets a call of the first (or the named) one. */
    json_t *last = json_is_array(input) ? json_array_get(input, json_array_size(input) - 1) : NULL;
    const char *last_type = json_string_value(json_object_get(last, "type"));
    const char *last_role = json_string_value(json_object_get(last, "role"));
    int user_last = json_is_string(input) || (last_role && !strcmp(last_role, "user"));
    char *result = NULL;
    if (last_type && !strcmp(last_type, "function_call_output")) {
        json_t *o = json_object_get(last, "output");
        mu_buf q = {0};
        rs_content_text(o, &q);
        mu_buf_add(&q, "", 0);
        result = q.p;
    }
    json_t *choice = json_object_get(b, "tool_choice");
    const char *choice_s = json_string_value(choice);
    json_t *tool = NULL;
    if (!result && user_last && !c->no_tool && !(choice_s && !strcmp(choice_s, "none"))) {
        const char *want = c->tool[0] ? c->tool : json_string_value(json_object_get(choice, "name"));
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(b, "tools"), i, t) {
            const char *type = json_string_value(json_object_get(t, "type"));
            const char *n = json_string_value(json_object_get(t, "name"));
            if (type && !strcmp(type, "function") && n && (!want || !strcmp(n, want))) {
                tool = t;
                break;
            }
        }
        if (!tool && c->tool[0]) {
            char msg[200];
            snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such tool", c->tool);
            mu_send_error(c, 400, msg);
            free(result);
            return;
        }
    }
    answer a = {0};
    if (tool)
        mu_tool_answer(c, &a, json_string_value(json_object_get(tool, "name")), json_object_get(tool, "parameters"),
                    stream);
    else
        mu_text_answer(c, &a, result, max_tokens, stream);
    free(result);
    char id[48], item[48];
    mu_new_id(id, sizeof id, "resp_mock");
    mu_new_id(item, sizeof item, a.is_tool ? "fc_mock" : "msg_mock");
    const char *status = a.truncated ? "incomplete" : "completed";
    json_t *done_item = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item, "type", "function_call", "status", "completed",
                    "arguments", a.text, "call_id", a.tool_id, "name", a.tool_name)
        : json_pack("{s:s,s:s,s:s,s:[{s:s,s:[],s:[],s:s}],s:s}", "id", item, "type", "message", "status",
                    "completed", "content", "type", "output_text", "annotations", "logprobs", "text", a.text,
                    "role", "assistant");

    if (!stream) {
        json_t *r = rs_response(c, id, status, json_pack("[o]", done_item));
        if (a.truncated)
            json_object_set_new(r, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
        if (c->usage_none)
            json_object_del(r, "usage");
        mu_put_usage(c, r, "usage", rs_usage(c, a.out_tokens));
        mu_send_json_wait(c, 200, r, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }

    /* The event sequence OpenAI sends, each with its sequence number. */
    evlist l = {0};
    long seq = 0;
    const char *ev;
    ev = "response.created";
    mu_ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", rs_response(c, id, "in_progress", json_array())), ev, &seq));
    ev = "response.in_progress";
    mu_ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", rs_response(c, id, "in_progress", json_array())), ev, &seq));
    json_t *added = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item, "type", "function_call", "status", "in_progress",
                    "arguments", "", "call_id", a.tool_id, "name", a.tool_name)
        : json_pack("{s:s,s:s,s:s,s:[],s:s}", "id", item, "type", "message", "status", "in_progress", "content",
                    "role", "assistant");
    ev = "response.output_item.added";
    mu_ev_add(&l, 0, ev, rs_seq(json_pack("{s:i,s:o}", "output_index", 0, "item", added), ev, &seq));
    if (a.is_tool) {
        for (int i = 0; i < a.npieces; i++) {
            ev = "response.function_call_arguments.delta";
            mu_ev_add(&l, i ? c->interval_ms : 0, ev,
                   rs_seq(json_pack("{s:s,s:i,s:s}", "item_id", item, "output_index", 0, "delta", a.pieces[i]), ev,
                          &seq));
        }
        ev = "response.function_call_arguments.done";
        mu_ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:s}", "item_id", item, "output_index", 0, "arguments", a.text), ev, &seq));
    } else {
        ev = "response.content_part.added";
        mu_ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:{s:s,s:[],s:[],s:s}}", "item_id", item, "output_index", 0,
                                "content_index", 0, "part", "type", "output_text", "annotations", "logprobs", "text",
                                ""),
                      ev, &seq));
        for (int i = 0; i < a.npieces; i++) {
            ev = "response.output_text.delta";
            mu_ev_add(&l, i ? c->interval_ms : 0, ev,
                   rs_seq(json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", item, "output_index", 0, "content_index",
                                    0, "delta", a.pieces[i], "logprobs"),
                          ev, &seq));
        }
        ev = "response.output_text.done";
        mu_ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", item, "output_index", 0, "content_index", 0,
                                "text", a.text, "logprobs"),
                      ev, &seq));
        ev = "response.content_part.done";
        mu_ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:O}", "item_id", item, "output_index", 0, "content_index", 0, "part",
                                json_array_get(json_object_get(done_item, "content"), 0)),
                      ev, &seq));
    }
    ev = "response.output_item.done";
    mu_ev_add(&l, 0, ev, rs_seq(json_pack("{s:i,s:O}", "output_index", 0, "item", done_item), ev, &seq));
    json_t *final = rs_response(c, id, status, json_pack("[o]", done_item));
    if (a.truncated)
        json_object_set_new(final, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
    if (c->usage_none)
        json_object_del(final, "usage");
    else
        mu_put_usage(c, final, "usage", rs_usage(c, a.out_tokens));
    ev = a.truncated ? "response.incomplete" : "response.completed";
    mu_ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", final), ev, &seq));
    mu_send_stream(c, &l);
    mu_answer_free(&a);
}
