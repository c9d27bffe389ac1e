/*
 * Mock provider responses, built with jansson. The text is a fixed sentence
 * plus a short echo of the last user message, so tests can assert on it and
 * users can see their request arrived; token counts are derived from sizes,
 * never random. Tool use: when the request offers tools and the last turn is
 * the user's, the mock calls the first tool with arguments that satisfy the
 * tool's required properties; after a tool result it answers with text.
 */
#include "json/json_out.h"
#include "providers/mock.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static atomic_ulong mock_seq;

long sl_mock_estimate_tokens(size_t body_len)
{
    long n = (long)((body_len + 3) / 4);
    return n > 0 ? n : 1;
}

/* Text of the last message's last text part (string content or blocks). */
static const char *last_text(json_t *msgs, int *is_tool_result, const char **tool_text)
{
    *is_tool_result = 0;
    *tool_text = NULL;
    size_t n = json_array_size(msgs);
    if (n == 0)
        return "";
    json_t *m = json_array_get(msgs, n - 1);
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    if (role && strcmp(role, "tool") == 0) {
        *is_tool_result = 1;
        *tool_text = json_string_value(content);
        return "";
    }
    if (json_is_string(content))
        return json_string_value(content);
    const char *text = "";
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type)
            continue;
        if (strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
            text = json_string_value(json_object_get(part, "text"));
        if (strcmp(type, "tool_result") == 0) {
            *is_tool_result = 1;
            json_t *c = json_object_get(part, "content");
            if (json_is_string(c))
                *tool_text = json_string_value(c);
            else if (json_is_array(c) && json_array_size(c) > 0)
                *tool_text = json_string_value(json_object_get(json_array_get(c, 0), "text"));
        }
    }
    return text;
}

static json_t *args_for_schema(json_t *schema)
{
    json_t *args = json_object();
    json_t *props = json_object_get(schema, "properties");
    json_t *req = json_object_get(schema, "required");
    size_t i;
    json_t *name;
    json_array_foreach(req, i, name) {
        const char *k = json_string_value(name);
        if (!k)
            continue;
        const char *type = json_string_value(json_object_get(json_object_get(props, k), "type"));
        json_t *v;
        if (type && (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0))
            v = json_integer(1);
        else if (type && strcmp(type, "boolean") == 0)
            v = json_true();
        else if (type && strcmp(type, "array") == 0)
            v = json_array();
        else if (type && strcmp(type, "object") == 0)
            v = json_object();
        else
            v = json_string("mock");
        json_object_set_new(args, k, v);
    }
    return args;
}

typedef struct mock_answer {
    char text[512];
    const char *tool_name;  /* non-NULL: call this tool */
    char *tool_args;        /* malloc'd JSON */
    long in_tokens, out_tokens;
} mock_answer;

static void compose(mock_answer *a, sl_mock_op op, json_t *req, const char *model, size_t body_len)
{
    memset(a, 0, sizeof *a);
    json_t *msgs = json_object_get(req, "messages");
    int tool_result = 0;
    const char *tool_text = NULL;
    const char *said = last_text(msgs, &tool_result, &tool_text);
    json_t *tools = json_object_get(req, "tools");
    if (!tool_result && json_array_size(tools) > 0) {
        json_t *t0 = json_array_get(tools, 0);
        json_t *fn = json_object_get(t0, "function"); /* OpenAI shape */
        const char *name = json_string_value(json_object_get(fn ? fn : t0, "name"));
        json_t *schema = fn ? json_object_get(fn, "parameters") : json_object_get(t0, "input_schema");
        if (name) {
            a->tool_name = name;
            json_t *args = args_for_schema(schema);
            a->tool_args = sl_json_dumps(args, JSON_COMPACT);
            json_decref(args);
        }
    }
    if (tool_result) {
        snprintf(a->text, sizeof a->text, "The tool returned: %.200s", tool_text ? tool_text : "");
    } else {
        snprintf(a->text, sizeof a->text,
                 "Hello from the sluice mock provider (model %.80s). You said: %.120s", model, said);
    }
    a->in_tokens = sl_mock_estimate_tokens(body_len);
    long words = 1;
    for (const char *p = a->text; *p; p++)
        if (*p == ' ')
            words++;
    a->out_tokens = a->tool_name ? 10 : words;
}

/* Splits text into word-sized pieces (each keeps its leading space), the
 * way providers stream tokens. */
static size_t next_piece(const char *s, size_t at, size_t len)
{
    size_t i = at + 1;
    while (i < len && s[i] != ' ')
        i++;
    return i;
}

static void sse_send(sl_conn *c, const char *event, json_t *data)
{
    char *js = sl_json_dumps(data, JSON_COMPACT);
    json_decref(data);
    if (!js)
        return;
    size_t jn = strlen(js);
    size_t en = event ? strlen(event) : 0;
    char *buf = malloc(jn + en + 32);
    if (buf) {
        int n = event ? sprintf(buf, "event: %s\ndata: %s\n\n", event, js)
                      : sprintf(buf, "data: %s\n\n", js);
        sl_conn_stream_write(c, buf, (size_t)n);
        free(buf);
    }
    free(js);
}

static void respond_json(sl_conn *c, json_t *body, const char *headers)
{
    char *js = sl_json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!js) {
        sl_surface_error(c, SL_SURFACE_OPENAI, 500, NULL, headers, "out of memory");
        return;
    }
    sl_conn_respond(c, 200, "application/json", headers, js, strlen(js));
    free(js);
}

static void openai_chat(sl_conn *c, const mock_answer *a, const char *model, int stream,
                        int include_usage, const char *headers)
{
    unsigned long seq = atomic_fetch_add(&mock_seq, 1);
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock-%lu", seq);
    long created = (long)time(NULL);
    json_t *usage = json_pack("{s:i,s:i,s:i}", "prompt_tokens", (json_int_t)a->in_tokens,
                              "completion_tokens", (json_int_t)a->out_tokens, "total_tokens",
                              (json_int_t)(a->in_tokens + a->out_tokens));
    char call_id[64];
    snprintf(call_id, sizeof call_id, "call_mock_%lu", seq);
    if (!stream) {
        json_t *msg;
        if (a->tool_name)
            msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                            "tool_calls", "id", call_id, "type", "function", "function", "name",
                            a->tool_name, "arguments", a->tool_args);
        else
            msg = json_pack("{s:s,s:s,s:n}", "role", "assistant", "content", a->text, "refusal");
        json_t *body = json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id, "object",
                                 "chat.completion", "created", (json_int_t)created, "model", model,
                                 "choices", "index", 0, "message", msg, "logprobs", "finish_reason",
                                 a->tool_name ? "tool_calls" : "stop", "usage", usage);
        respond_json(c, body, headers);
        return;
    }
    sl_conn_stream_begin(c, 200, "text/event-stream", headers);
#define CHUNK(delta, finish)                                                                        \
    json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:o}]}", "id", id, "object", "chat.completion.chunk",  \
              "created", (json_int_t)created, "model", model, "choices", "index", 0, "delta",      \
              (delta), "finish_reason", (finish))
    sse_send(c, NULL, CHUNK(json_pack("{s:s,s:s}", "role", "assistant", "content", ""), json_null()));
    if (a->tool_name) {
        sse_send(c, NULL,
                 CHUNK(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0, "id",
                                 call_id, "type", "function", "function", "name", a->tool_name,
                                 "arguments", ""),
                       json_null()));
        sse_send(c, NULL,
                 CHUNK(json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function",
                                 "arguments", a->tool_args),
                       json_null()));
    } else {
        size_t len = strlen(a->text);
        for (size_t at = 0; at < len;) {
            size_t end = next_piece(a->text, at, len);
            sse_send(c, NULL, CHUNK(json_pack("{s:s%}", "content", a->text + at, end - at), json_null()));
            at = end;
        }
    }
    sse_send(c, NULL, CHUNK(json_object(), json_string(a->tool_name ? "tool_calls" : "stop")));
#undef CHUNK
    if (include_usage)
        sse_send(c, NULL,
                 json_pack("{s:s,s:s,s:i,s:s,s:[],s:O}", "id", id, "object", "chat.completion.chunk",
                           "created", (json_int_t)created, "model", model, "choices", "usage", usage));
    json_decref(usage);
    sl_conn_stream_write(c, "data: [DONE]\n\n", 14);
    sl_conn_stream_end(c, 1);
}

/* The legacy Completions API shape (text_completion objects). */
static void openai_legacy(sl_conn *c, const mock_answer *a, const char *model, int stream,
                          const char *headers)
{
    unsigned long seq = atomic_fetch_add(&mock_seq, 1);
    char id[64];
    snprintf(id, sizeof id, "cmpl-mock-%lu", seq);
    long created = (long)time(NULL);
    if (!stream) {
        respond_json(c,
                     json_pack("{s:s,s:s,s:i,s:s,s:[{s:s,s:i,s:n,s:s}],s:{s:i,s:i,s:i}}", "id", id,
                               "object", "text_completion", "created", (json_int_t)created, "model",
                               model, "choices", "text", a->text, "index", 0, "logprobs",
                               "finish_reason", "stop", "usage", "prompt_tokens",
                               (json_int_t)a->in_tokens, "completion_tokens", (json_int_t)a->out_tokens,
                               "total_tokens", (json_int_t)(a->in_tokens + a->out_tokens)),
                     headers);
        return;
    }
    sl_conn_stream_begin(c, 200, "text/event-stream", headers);
    size_t len = strlen(a->text);
    for (size_t at = 0; at < len;) {
        size_t end = next_piece(a->text, at, len);
        sse_send(c, NULL,
                 json_pack("{s:s,s:s,s:i,s:s,s:[{s:s%,s:i,s:n,s:n}]}", "id", id, "object",
                           "text_completion", "created", (json_int_t)created, "model", model,
                           "choices", "text", a->text + at, end - at, "index", 0, "logprobs",
                           "finish_reason"));
        at = end;
    }
    sse_send(c, NULL,
             json_pack("{s:s,s:s,s:i,s:s,s:[{s:s,s:i,s:n,s:s}]}", "id", id, "object", "text_completion",
                       "created", (json_int_t)created, "model", model, "choices", "text", "", "index",
                       0, "logprobs", "finish_reason", "stop"));
    sl_conn_stream_write(c, "data: [DONE]\n\n", 14);
    sl_conn_stream_end(c, 1);
}

static void anthropic_messages(sl_conn *c, const mock_answer *a, const char *model, int stream,
                               const char *headers)
{
    unsigned long seq = atomic_fetch_add(&mock_seq, 1);
    char id[64], tool_id[64];
    snprintf(id, sizeof id, "msg_mock_%lu", seq);
    snprintf(tool_id, sizeof tool_id, "toolu_mock_%lu", seq);
    if (!stream) {
        json_t *block;
        if (a->tool_name) {
            json_t *input = json_loads(a->tool_args, 0, NULL);
            block = json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", tool_id, "name",
                              a->tool_name, "input", input ? input : json_object());
        } else {
            block = json_pack("{s:s,s:s}", "type", "text", "text", a->text);
        }
        json_t *body = json_pack(
            "{s:s,s:s,s:s,s:s,s:[o],s:s,s:n,s:{s:i,s:i,s:i,s:i}}", "id", id, "type", "message",
            "role", "assistant", "model", model, "content", block, "stop_reason",
            a->tool_name ? "tool_use" : "end_turn", "stop_sequence", "usage", "input_tokens",
            (json_int_t)a->in_tokens, "output_tokens", (json_int_t)a->out_tokens,
            "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0);
        respond_json(c, body, headers);
        return;
    }
    sl_conn_stream_begin(c, 200, "text/event-stream", headers);
    sse_send(c, "message_start",
             json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i,s:i,s:i}}}", "type",
                       "message_start", "message", "id", id, "type", "message", "role", "assistant",
                       "model", model, "content", "stop_reason", "stop_sequence", "usage",
                       "input_tokens", (json_int_t)a->in_tokens, "output_tokens", 1,
                       "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0));
    if (a->tool_name) {
        sse_send(c, "content_block_start",
                 json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index",
                           0, "content_block", "type", "tool_use", "id", tool_id, "name",
                           a->tool_name, "input"));
        sse_send(c, "ping", json_pack("{s:s}", "type", "ping"));
        sse_send(c, "content_block_delta",
                 json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", 0,
                           "delta", "type", "input_json_delta", "partial_json", a->tool_args));
    } else {
        sse_send(c, "content_block_start",
                 json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", 0,
                           "content_block", "type", "text", "text", ""));
        sse_send(c, "ping", json_pack("{s:s}", "type", "ping"));
        size_t len = strlen(a->text);
        for (size_t at = 0; at < len;) {
            size_t end = next_piece(a->text, at, len);
            sse_send(c, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", 0,
                               "delta", "type", "text_delta", "text", a->text + at, end - at));
            at = end;
        }
    }
    sse_send(c, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    sse_send(c, "message_delta",
             json_pack("{s:s,s:{s:s,s:n},s:{s:i}}", "type", "message_delta", "delta", "stop_reason",
                       a->tool_name ? "tool_use" : "end_turn", "stop_sequence", "usage",
                       "output_tokens", (json_int_t)a->out_tokens));
    sse_send(c, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    sl_conn_stream_end(c, 1);
}

void sl_mock_respond(sl_conn *c, sl_mock_op op, json_t *req, const char *model, size_t body_len,
                     const char *headers, sl_mock_usage *usage)
{
    if (op == SL_MOCK_COUNT_TOKENS) {
        long n = sl_mock_estimate_tokens(body_len);
        usage->input_tokens = n;
        usage->output_tokens = 0;
        respond_json(c, json_pack("{s:i}", "input_tokens", (json_int_t)n), headers);
        return;
    }
    mock_answer a;
    compose(&a, op, req, model, body_len);
    usage->input_tokens = a.in_tokens;
    usage->output_tokens = a.out_tokens;
    int stream = json_is_true(json_object_get(req, "stream"));
    if (op == SL_MOCK_COMPLETIONS) {
        openai_legacy(c, &a, model, stream, headers);
    } else if (op == SL_MOCK_CHAT) {
        int include_usage =
            json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage"));
        openai_chat(c, &a, model, stream, include_usage, headers);
    } else {
        anthropic_messages(c, &a, model, stream, headers);
    }
    free(a.tool_args);
}
