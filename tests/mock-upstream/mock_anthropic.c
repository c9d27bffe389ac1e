/* mock-upstream: the Anthropic Messages API: a `message` (text or one
 * tool_use block) or its SSE sequence (message_start, content_block_*,
 * ping, message_delta, message_stop), and count_tokens. Routing, auth and
 * directives are done by mock_api.c. */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Anthropic -------------------------------------------------------- */

static json_t *an_usage(const ctx *c, long long out)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:s}", "input_tokens", mu_input_tokens(c),
                     "cache_creation_input_tokens", (json_int_t)c->cache_write, "cache_read_input_tokens",
                     (json_int_t)c->cache_read, "output_tokens", out, "service_tier", "standard");
}

/* The first tool_result block of a user message, as text; NULL if none. */
static char *tool_result_text(json_t *msg)
{
    json_t *content = json_object_get(msg, "content");
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (type && !strcmp(type, "tool_result")) {
            mu_buf q = {0};
            mu_content_text(json_object_get(blk, "content"), &q);
            mu_buf_add(&q, "", 0);
            return q.p;
        }
    }
    return NULL;
}

void mu_anthropic_messages(ctx *c)
{
    json_t *b = c->body;
    json_t *messages = json_object_get(b, "messages");
    if (!json_is_array(messages) || !json_array_size(messages)) {
        mu_send_error(c, 400, "messages: Field required");
        return;
    }
    json_t *mt = json_object_get(b, "max_tokens");
    if (!json_is_integer(mt) || json_integer_value(mt) < 1) {
        mu_send_error(c, 400, "max_tokens: Field required");
        return;
    }
    long long max_tokens = json_integer_value(mt);
    int stream = json_is_true(json_object_get(b, "stream"));
    mu_set_call(c, "stream", json_boolean(stream));

    json_t *last = mu_last_message(messages, NULL);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    char *result = last_role && !strcmp(last_role, "user") ? tool_result_text(last) : NULL;
    json_t *tools = json_object_get(b, "tools");
    json_t *choice = json_object_get(b, "tool_choice");
    const char *ctype = json_string_value(json_object_get(choice, "type"));
    json_t *tool = NULL;
    if (!result && json_array_size(tools) && last_role && !strcmp(last_role, "user") &&
        !c->no_tool && !(ctype && !strcmp(ctype, "none"))) {
        const char *want = c->tool[0] ? c->tool
                           : ctype && !strcmp(ctype, "tool")
                               ? json_string_value(json_object_get(choice, "name")) : NULL;
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *n = json_string_value(json_object_get(t, "name"));
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
    if (tool)
        mu_tool_answer(c, &a, json_string_value(json_object_get(tool, "name")),
                    json_object_get(tool, "input_schema"), stream);
    else
        mu_text_answer(c, &a, result, max_tokens, stream);
    free(result);
    const char *stop = a.is_tool ? "tool_use" : a.truncated ? "max_tokens" : "end_turn";
    char id[48];
    mu_new_id(id, sizeof id, "msg_mock");

    if (!stream) {
        json_t *block = a.is_tool
            ? json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id", a.tool_id, "name",
                        a.tool_name, "input", a.tool_input)
            : json_pack("{s:s,s:s}", "type", "text", "text", a.text);
        json_t *resp = json_pack("{s:s,s:s,s:s,s:s,s:[o],s:s,s:n}", "id", id, "type",
                                 "message", "role", "assistant", "model", c->model,
                                 "content", block, "stop_reason", stop, "stop_sequence");
        mu_put_usage(c, resp, "usage", an_usage(c, a.out_tokens));
        mu_send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }

    evlist l = {0};
    json_t *start = json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n}}", "type", "message_start", "message",
        "id", id, "type", "message", "role", "assistant", "model", c->model, "content",
        "stop_reason", "stop_sequence");
    if (!c->usage_none)
        json_object_set_new(json_object_get(start, "message"), "usage", an_usage(c, 1));
    mu_ev_add(&l, 0, "message_start", start);
    json_t *start_block = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", a.tool_id, "name",
                    a.tool_name, "input")
        : json_pack("{s:s,s:s}", "type", "text", "text", "");
    mu_ev_add(&l, 0, "content_block_start", json_pack("{s:s,s:i,s:o}", "type",
           "content_block_start", "index", 0, "content_block", start_block));
    mu_ev_add(&l, 0, "ping", json_pack("{s:s}", "type", "ping"));
    for (int i = 0; i < a.npieces; i++) {
        json_t *delta = a.is_tool
            ? json_pack("{s:s,s:s}", "type", "input_json_delta", "partial_json", a.pieces[i])
            : json_pack("{s:s,s:s}", "type", "text_delta", "text", a.pieces[i]);
        mu_ev_add(&l, i ? c->interval_ms : 0, "content_block_delta",
               json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", 0,
                         "delta", delta));
    }
    mu_ev_add(&l, 0, "content_block_stop",
           json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    json_t *mdelta = json_pack("{s:s,s:{s:s,s:n}}", "type", "message_delta", "delta",
                               "stop_reason", stop, "stop_sequence");
    if (!c->usage_none) {
        /* what the whole stream reports: message_start's input, this output */
        mu_set_call(c, "usage", an_usage(c, a.out_tokens));
        json_object_set_new(mdelta, "usage", json_pack("{s:I}", "output_tokens", a.out_tokens));
    }
    mu_ev_add(&l, 0, "message_delta", mdelta);
    mu_ev_add(&l, 0, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    mu_send_stream(c, &l);
    mu_answer_free(&a);
}

void mu_anthropic_count_tokens(ctx *c)
{
    if (!json_is_array(json_object_get(c->body, "messages"))) {
        mu_send_error(c, 400, "messages: Field required");
        return;
    }
    mu_send_json(c, 200, json_pack("{s:I}", "input_tokens", mu_input_tokens(c)));
}
