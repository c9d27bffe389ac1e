/*
 * Anthropic <-> Converse bodies (see converse.h). Mapping: system text
 * blocks -> system [{text}]; message content strings and text blocks ->
 * {text}; base64 images -> {image: {format, source: {bytes}}}; tool_use ->
 * {toolUse: {toolUseId, name, input}}; tool_result -> {toolResult:
 * {toolUseId, content: [{text}], status}}; max_tokens, temperature, top_p,
 * stop_sequences -> inferenceConfig; tools and tool_choice -> toolConfig;
 * top_k -> additionalModelRequestFields. Back: text, toolUse and
 * reasoningContent blocks, stopReason, usage {inputTokens, outputTokens,
 * cacheReadInputTokens, cacheWriteInputTokens}.
 */
#include "translate/converse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"

static json_t *text_block(const char *t) { return json_pack("{s:s}", "text", t); }

/* Anthropic content (string or blocks) -> Converse content blocks. */
static int content_blocks(json_t *content, json_t *out, char *err, size_t errlen)
{
    if (json_is_string(content)) {
        if (json_string_length(content))
            json_array_append_new(out, text_block(json_string_value(content)));
        return 0;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *type = json_string_value(json_object_get(b, "type"));
        if (!type)
            continue;
        if (!strcmp(type, "text")) {
            const char *t = json_string_value(json_object_get(b, "text"));
            if (t && *t)
                json_array_append_new(out, text_block(t));
        } else if (!strcmp(type, "image")) {
            json_t *src = json_object_get(b, "source");
            const char *mt = json_string_value(json_object_get(src, "media_type"));
            const char *data = json_string_value(json_object_get(src, "data"));
            if (!mt || !data || strncmp(mt, "image/", 6) != 0) {
                snprintf(err, errlen, "Bedrock Converse takes images as base64 data only");
                return -1;
            }
            json_array_append_new(out, json_pack("{s:{s:s,s:{s:s}}}", "image", "format", mt + 6, "source",
                                                 "bytes", data));
        } else if (!strcmp(type, "tool_use")) {
            json_t *in = json_object_get(b, "input");
            json_array_append_new(out, json_pack("{s:{s:s,s:s,s:O}}", "toolUse", "toolUseId",
                                                 json_string_value(json_object_get(b, "id")) ?: "", "name",
                                                 json_string_value(json_object_get(b, "name")) ?: "", "input",
                                                 json_is_object(in) ? in : json_object()));
        } else if (!strcmp(type, "tool_result")) {
            json_t *rc = json_array();
            json_t *c = json_object_get(b, "content");
            if (content_blocks(c, rc, err, errlen) != 0) {
                json_decref(rc);
                return -1;
            }
            if (!json_array_size(rc))
                json_array_append_new(rc, text_block(""));
            json_t *tr = json_pack("{s:s,s:o}", "toolUseId", json_string_value(json_object_get(b, "tool_use_id")) ?: "",
                                   "content", rc);
            if (json_is_true(json_object_get(b, "is_error")))
                json_object_set_new(tr, "status", json_string("error"));
            json_array_append_new(out, json_pack("{s:o}", "toolResult", tr));
        }
        /* thinking blocks and others: Converse wants them signed by
         * Bedrock itself; left out. */
    }
    return 0;
}

char *sl_converse_request(json_t *a, char *err, size_t errlen)
{
    json_t *r = json_object();
    json_t *msgs = json_array();
    json_object_set_new(r, "messages", msgs);
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(a, "messages"), i, m) {
        json_t *blocks = json_array();
        if (content_blocks(json_object_get(m, "content"), blocks, err, errlen) != 0) {
            json_decref(blocks);
            json_decref(r);
            return NULL;
        }
        const char *role = json_string_value(json_object_get(m, "role"));
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role ? role : "user", "content", blocks));
    }
    json_t *sys = json_object_get(a, "system");
    if (sys) {
        json_t *sb = json_array();
        if (content_blocks(sys, sb, err, errlen) != 0) {
            json_decref(sb);
            json_decref(r);
            return NULL;
        }
        if (json_array_size(sb))
            json_object_set_new(r, "system", sb);
        else
            json_decref(sb);
    }
    json_t *ic = json_object();
    json_t *v;
    if (json_is_integer(v = json_object_get(a, "max_tokens")))
        json_object_set(ic, "maxTokens", v);
    if (json_is_number(v = json_object_get(a, "temperature")))
        json_object_set(ic, "temperature", v);
    if (json_is_number(v = json_object_get(a, "top_p")))
        json_object_set(ic, "topP", v);
    if (json_is_array(v = json_object_get(a, "stop_sequences")) && json_array_size(v))
        json_object_set(ic, "stopSequences", v);
    if (json_object_size(ic))
        json_object_set_new(r, "inferenceConfig", ic);
    else
        json_decref(ic);
    if (json_is_integer(v = json_object_get(a, "top_k")))
        json_object_set_new(r, "additionalModelRequestFields", json_pack("{s:O}", "top_k", v));
    json_t *tools = json_object_get(a, "tools");
    json_t *choice = json_object_get(a, "tool_choice");
    const char *ct = json_string_value(json_object_get(choice, "type"));
    if (json_array_size(tools) && !(ct && !strcmp(ct, "none"))) {
        json_t *ts = json_array();
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *name = json_string_value(json_object_get(t, "name"));
            json_t *schema = json_object_get(t, "input_schema");
            if (!name || !json_is_object(schema))
                continue; /* hosted tools (web search...) have no Converse form */
            json_t *spec = json_pack("{s:s,s:{s:O}}", "name", name, "inputSchema", "json", schema);
            const char *d = json_string_value(json_object_get(t, "description"));
            if (d)
                json_object_set_new(spec, "description", json_string(d));
            json_array_append_new(ts, json_pack("{s:o}", "toolSpec", spec));
        }
        json_t *tc = json_pack("{s:o}", "tools", ts);
        if (ct && !strcmp(ct, "any"))
            json_object_set_new(tc, "toolChoice", json_pack("{s:{}}", "any"));
        else if (ct && !strcmp(ct, "tool"))
            json_object_set_new(tc, "toolChoice", json_pack("{s:{s:s}}", "tool", "name",
                                                            json_string_value(json_object_get(choice, "name")) ?: ""));
        if (json_array_size(ts))
            json_object_set_new(r, "toolConfig", tc);
        else
            json_decref(tc);
    }
    char *js = sl_json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(r);
    if (!js)
        snprintf(err, errlen, "out of memory");
    return js;
}

static const char *stop_reason(const char *r)
{
    if (!r)
        return "end_turn";
    if (!strcmp(r, "tool_use") || !strcmp(r, "max_tokens") || !strcmp(r, "stop_sequence"))
        return r;
    if (!strcmp(r, "guardrail_intervened") || !strcmp(r, "content_filtered"))
        return "refusal";
    return "end_turn";
}

char *sl_converse_response(const char *body, size_t len, const char *model, char *err, size_t errlen)
{
    json_t *c = json_loadb(body, len, 0, NULL);
    json_t *msg = json_object_get(json_object_get(c, "output"), "message");
    json_t *content = json_object_get(msg, "content");
    if (!json_is_array(content)) {
        snprintf(err, errlen, "not a Converse response (no output.message.content)");
        json_decref(c);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = json_string_value(json_object_get(b, "text"));
        json_t *tu = json_object_get(b, "toolUse");
        json_t *rc = json_object_get(json_object_get(b, "reasoningContent"), "reasoningText");
        if (t) {
            json_array_append_new(out, json_pack("{s:s,s:s}", "type", "text", "text", t));
        } else if (json_is_object(tu)) {
            json_t *in = json_object_get(tu, "input");
            json_array_append_new(out, json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id",
                                                 json_string_value(json_object_get(tu, "toolUseId")) ?: "", "name",
                                                 json_string_value(json_object_get(tu, "name")) ?: "", "input",
                                                 json_is_object(in) ? in : json_object()));
        } else if (json_is_object(rc)) {
            json_array_append_new(out, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking",
                                                 json_string_value(json_object_get(rc, "text")) ?: "", "signature",
                                                 json_string_value(json_object_get(rc, "signature")) ?: ""));
        }
    }
    json_t *u = json_object_get(c, "usage");
    json_t *usage = json_pack("{s:I,s:I}", "input_tokens",
                              (json_int_t)json_integer_value(json_object_get(u, "inputTokens")), "output_tokens",
                              (json_int_t)json_integer_value(json_object_get(u, "outputTokens")));
    json_t *v;
    if (json_is_integer(v = json_object_get(u, "cacheReadInputTokens")))
        json_object_set(usage, "cache_read_input_tokens", v);
    if (json_is_integer(v = json_object_get(u, "cacheWriteInputTokens")))
        json_object_set(usage, "cache_creation_input_tokens", v);
    const char *rid = json_string_value(json_object_get(c, "requestId"));
    char id[80];
    snprintf(id, sizeof id, "msg_bdrk_%.60s", rid ? rid : "converse");
    json_t *a = json_pack("{s:s,s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id, "type", "message", "role", "assistant",
                          "model", model ? model : "", "content", out, "stop_reason",
                          stop_reason(json_string_value(json_object_get(c, "stopReason"))), "stop_sequence",
                          "usage", usage);
    json_decref(c);
    char *js = a ? sl_json_dumps(a, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    json_decref(a);
    if (!js)
        snprintf(err, errlen, "out of memory");
    return js;
}
