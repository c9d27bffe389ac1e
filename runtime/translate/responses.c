/*
 * The OpenAI Responses API as a client protocol: requests read into the
 * neutral form (see request.c) and non-stream answers written from it
 * (see response.c); the stream writer is stream_responses.c. A Responses
 * request is a list of items rather than of messages: messages with typed
 * parts, function calls and their outputs as items of their own (paired by
 * call_id), reasoning items. Tools are function tools, groups of them
 * (`namespace`, flattened here), and hosted tools OpenAI runs itself
 * (web_search, file_search, ...). No other backend can run a hosted tool,
 * and clients such as Codex offer web_search on every request, so offered
 * hosted tools are dropped (the gateway names them in a response header)
 * and only a tool_choice that forces one is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

/* ---- Responses -> neutral ---------------------------------------------- */

/* Message content (string or parts) -> neutral blocks. Assistant turns
 * sent back carry output_text and refusal parts. */
static json_t *parts_to_blocks(json_t *c)
{
    json_t *out = json_array();
    if (json_is_string(c)) {
        if (json_string_length(c))
            json_array_append_new(out, sl_tr_text_block(json_string_value(c)));
        return out;
    }
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *type = sl_tr_str(p, "type");
        json_t *b = NULL;
        if (!type)
            continue;
        if (!strcmp(type, "input_text") || !strcmp(type, "output_text") || !strcmp(type, "text")) {
            const char *t = sl_tr_nstr(p, "text");
            if (t)
                b = sl_tr_text_block(t);
        } else if (!strcmp(type, "refusal")) {
            const char *t = sl_tr_nstr(p, "refusal");
            if (t)
                b = sl_tr_text_block(t);
        } else if (!strcmp(type, "input_image")) {
            json_t *iu = json_object_get(p, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
            if (url)
                b = sl_tr_image_from_url(url);
        } else if (!strcmp(type, "input_file")) {
            const char *fd = sl_tr_str(p, "file_data");
            if (fd)
                b = sl_tr_image_from_url(fd);
            if (b && strcmp(sl_tr_str(b, "type"), "document") != 0) {
                json_decref(b);
                b = NULL;
            }
        }
        /* file_id references, audio, unknown parts: no counterpart. */
        if (b)
            json_array_append_new(out, b);
    }
    return out;
}

/* A function_call_output's output: a string, or parts whose text counts. */
static char *output_text(json_t *o)
{
    if (json_is_string(o))
        return strdup(json_string_value(o));
    if (!json_is_array(o))
        return strdup("");
    json_t *blocks = parts_to_blocks(o);
    char *t = sl_tr_content_text(blocks, "\n");
    json_decref(blocks);
    return t;
}

static int read_item(json_t *it, size_t i, json_t *system, json_t *msgs, char *err, size_t errlen)
{
    const char *type = sl_tr_str(it, "type");
    const char *role = sl_tr_str(it, "role");
    if ((!type && role) || (type && !strcmp(type, "message"))) {
        if (!role) {
            snprintf(err, errlen, "input[%zu]: 'role' is required", i);
            return -1;
        }
        json_t *blocks = parts_to_blocks(json_object_get(it, "content"));
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            size_t k;
            json_t *b;
            json_array_foreach(blocks, k, b)
                if (!strcmp(sl_tr_str(b, "type"), "text"))
                    json_array_append(system, b);
            json_decref(blocks);
        } else {
            sl_tr_ir_push(msgs, strcmp(role, "assistant") ? "user" : "assistant", blocks);
        }
        return 0;
    }
    if (!type) {
        snprintf(err, errlen, "input[%zu]: 'type' or 'role' is required", i);
        return -1;
    }
    if (!strcmp(type, "function_call")) {
        const char *args = sl_tr_str(it, "arguments");
        const char *id = sl_tr_nstr(it, "call_id");
        const char *name = sl_tr_str(it, "name");
        json_t *b = json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id ? id : "", "name", name ? name : "",
                              "input", sl_tr_args_object(args ? args : "", args ? strlen(args) : 0));
        sl_tr_ir_push(msgs, "assistant", json_pack("[o]", b));
    } else if (!strcmp(type, "function_call_output")) {
        const char *id = sl_tr_nstr(it, "call_id");
        char *t = output_text(json_object_get(it, "output"));
        json_t *b = json_pack("{s:s,s:s,s:s}", "type", "tool_result", "tool_use_id", id ? id : "", "content",
                              t ? t : "");
        free(t);
        sl_tr_ir_push(msgs, "user", json_pack("[o]", b));
    }
    /* reasoning items (unsigned for every other backend), hosted tool
     * calls, item references: no counterpart. */
    return 0;
}

/* A hosted tool: anything but a function tool or a group of them. */
static int hosted(const char *type)
{
    return type && strcmp(type, "function") != 0 && strcmp(type, "namespace") != 0;
}

static void add_function(json_t *tools, json_t *t)
{
    const char *name = sl_tr_nstr(t, "name");
    if (!name)
        return;
    json_t *tool = json_pack("{s:s}", "name", name);
    const char *d = sl_tr_str(t, "description");
    if (d)
        json_object_set_new(tool, "description", json_string(d));
    json_t *schema = json_object_get(t, "parameters");
    json_object_set_new(tool, "input_schema", json_is_object(schema)
                                                  ? json_deep_copy(schema)
                                                  : json_pack("{s:s,s:{}}", "type", "object", "properties"));
    json_array_append_new(tools, tool);
}

static json_t *read_tools(json_t *req)
{
    json_t *tools = json_array();
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), k, t) {
        const char *type = sl_tr_str(t, "type");
        if (type && !strcmp(type, "function")) {
            add_function(tools, t);
        } else if (type && !strcmp(type, "namespace")) {
            size_t j;
            json_t *f;
            json_array_foreach(json_object_get(t, "tools"), j, f)
                if (!sl_tr_str(f, "type") || !strcmp(sl_tr_str(f, "type"), "function"))
                    add_function(tools, f);
        }
    }
    return tools;
}

/* tool_choice -> neutral, or -1 with a client error when it forces a
 * tool the backend cannot run. */
static int read_tool_choice(json_t *req, json_t *ir, char *err, size_t errlen)
{
    json_t *tc = json_object_get(req, "tool_choice");
    json_t *choice = NULL;
    if (json_is_string(tc)) {
        choice = sl_tr_choice_from_openai(json_string_value(tc));
    } else if (json_is_object(tc)) {
        const char *type = sl_tr_str(tc, "type");
        if (type && !strcmp(type, "function") && sl_tr_nstr(tc, "name")) {
            choice = json_pack("{s:s,s:s}", "type", "tool", "name", sl_tr_str(tc, "name"));
        } else if (type && !strcmp(type, "allowed_tools")) {
            const char *mode = sl_tr_str(tc, "mode");
            choice = json_pack("{s:s}", "type", mode && !strcmp(mode, "required") ? "any" : "auto");
        } else if (hosted(type)) {
            snprintf(err, errlen,
                     "'tool_choice' forces the hosted tool '%.64s', which the backend of this model cannot run",
                     type);
            return -1;
        }
    }
    sl_tr_set_tool_choice(req, ir, choice);
    return 0;
}

/* text.format -> the Chat response_format the OpenAI and Gemini writers
 * read (Anthropic has no JSON mode). */
static void read_format(json_t *req, json_t *ir)
{
    json_t *f = json_object_get(json_object_get(req, "text"), "format");
    const char *type = sl_tr_str(f, "type");
    if (!type)
        return;
    if (!strcmp(type, "json_object")) {
        json_object_set_new(ir, "_sl_response_format", json_pack("{s:s}", "type", "json_object"));
    } else if (!strcmp(type, "json_schema") && json_is_object(json_object_get(f, "schema"))) {
        json_t *js = json_pack("{s:s,s:O}", "name", sl_tr_nstr(f, "name") ? sl_tr_str(f, "name") : "response",
                               "schema", json_object_get(f, "schema"));
        if (json_is_boolean(json_object_get(f, "strict")))
            json_object_set(js, "strict", json_object_get(f, "strict"));
        if (sl_tr_str(f, "description"))
            json_object_set(js, "description", json_object_get(f, "description"));
        json_object_set_new(ir, "_sl_response_format",
                            json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    }
}

int sl_tr_responses_to_ir(json_t *req, json_t *ir, char *err, size_t errlen)
{
    json_t *input = json_object_get(req, "input");
    json_t *system = json_array();
    json_t *msgs = json_array();
    const char *instr = sl_tr_nstr(req, "instructions");
    if (instr)
        json_array_append_new(system, sl_tr_text_block(instr));
    if (json_is_string(input)) {
        sl_tr_ir_push(msgs, "user", json_incref(input));
    } else if (json_is_array(input)) {
        size_t i;
        json_t *it;
        json_array_foreach(input, i, it) {
            if (!json_is_object(it) || read_item(it, i, system, msgs, err, errlen) != 0) {
                if (!json_is_object(it))
                    snprintf(err, errlen, "input[%zu] must be an object", i);
                json_decref(system);
                json_decref(msgs);
                return -1;
            }
        }
    }
    if (json_array_size(msgs) == 0) {
        json_decref(system);
        json_decref(msgs);
        snprintf(err, errlen, "'input' is required and must hold at least one message or function call output");
        return -1;
    }
    json_object_set_new(ir, "messages", msgs);
    if (json_array_size(system))
        json_object_set_new(ir, "system", system);
    else
        json_decref(system);

    json_t *mt = json_object_get(req, "max_output_tokens");
    if (json_is_integer(mt))
        json_object_set(ir, "max_tokens", mt);
    static const sl_tr_field_map from_responses[] = {
        {"temperature", NULL, "temperature", SL_TR_F_NUM},
        {"top_p", NULL, "top_p", SL_TR_F_NUM},
    };
    sl_tr_copy_fields(req, ir, from_responses, sizeof from_responses / sizeof *from_responses);
    read_format(req, ir);
    const char *user = sl_tr_nstr(req, "safety_identifier");
    if (!user)
        user = sl_tr_nstr(req, "user");
    if (user)
        json_object_set_new(ir, "metadata", json_pack("{s:s}", "user_id", user));
    long budget = sl_tr_effort_budget(sl_tr_str(json_object_get(req, "reasoning"), "effort"));
    if (budget)
        json_object_set_new(ir, "thinking", json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens",
                                                       (json_int_t)budget));
    json_t *tools = read_tools(req);
    if (json_array_size(tools))
        json_object_set_new(ir, "tools", tools);
    else
        json_decref(tools);
    return read_tool_choice(req, ir, err, errlen);
}

size_t sl_translate_dropped_tools(json_t *req, char *buf, size_t cap)
{
    size_t n = 0;
    if (cap)
        buf[0] = '\0';
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), k, t) {
        const char *type = sl_tr_str(t, "type");
        if (!hosted(type) || !*type)
            continue;
        /* The name goes into a header: only token characters. */
        size_t len = strlen(type), j;
        for (j = 0; j < len; j++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-", type[j]))
                break;
        if (j < len)
            continue;
        /* Named once however often it is offered. */
        int seen = 0;
        for (const char *p = buf; n && (p = strstr(p, type)) != NULL; p += len)
            if ((p == buf || p[-1] == ',') && (p[len] == ',' || p[len] == '\0'))
                seen = 1;
        if (seen || n + len + 2 > cap)
            continue;
        if (n)
            buf[n++] = ',';
        memcpy(buf + n, type, len + 1);
        n += len;
    }
    return n;
}

/* ---- neutral -> Responses object --------------------------------------- */

json_t *sl_tr_responses_usage(const sl_usage_counts *u)
{
    int64_t in = u->input + u->cache_read + u->cache_write;
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}", "input_tokens", (json_int_t)in, "input_tokens_details",
                     "cached_tokens", (json_int_t)u->cache_read, "output_tokens", (json_int_t)u->output,
                     "output_tokens_details", "reasoning_tokens", (json_int_t)u->reasoning, "total_tokens",
                     (json_int_t)(in + u->output));
}

/* The response envelope every Responses object shares, streamed or not:
 * output and usage are filled by the caller. */
json_t *sl_tr_responses_envelope(const char *id, const char *model, long created, const char *status)
{
    return json_pack("{s:s,s:s,s:I,s:s,s:n,s:n,s:s,s:n,s:n,s:[],s:b,s:n,s:{s:{s:s}},s:s,s:[],s:n}", "id", id, "object",
                     "response", "created_at", (json_int_t)created, "status", status, "error", "incomplete_details",
                     "model", model, "instructions", "max_output_tokens", "output", "parallel_tool_calls", 1,
                     "previous_response_id", "text", "format", "type", "text", "tool_choice", "auto", "tools",
                     "usage");
}

/* Which status a neutral stop reason gives, and why when incomplete. */
const char *sl_tr_responses_status(const char *stop_reason, const char **incomplete)
{
    *incomplete = NULL;
    if (stop_reason && !strcmp(stop_reason, "max_tokens")) {
        *incomplete = "max_output_tokens";
        return "incomplete";
    }
    if (stop_reason && !strcmp(stop_reason, "refusal")) {
        *incomplete = "content_filter";
        return "incomplete";
    }
    return "completed";
}

json_t *sl_tr_ir_to_responses(json_t *ir, const sl_usage_counts *u, const char *model)
{
    const char *rid = sl_tr_nstr(ir, "id");
    if (!rid)
        rid = "msg_sluice";
    char id[64], item_id[64];
    sl_tr_make_id(id, sizeof id, "resp_", rid, strlen(rid), 0);
    const char *incomplete;
    const char *status = sl_tr_responses_status(sl_tr_str(ir, "stop_reason"), &incomplete);
    json_t *o = sl_tr_responses_envelope(id, model, (long)time(NULL), status);
    if (incomplete)
        json_object_set_new(o, "incomplete_details", json_pack("{s:s}", "reason", incomplete));
    json_t *output = json_object_get(o, "output");
    json_t *texts = json_array();
    size_t i;
    json_t *b;
    long n = 0;
    json_array_foreach(json_object_get(ir, "content"), i, b) {
        const char *type = sl_tr_str(b, "type");
        if (!type)
            continue;
        if (!strcmp(type, "thinking") && sl_tr_nstr(b, "thinking")) {
            sl_tr_make_id(item_id, sizeof item_id, "rs_", rid, strlen(rid), ++n);
            json_array_append_new(output, json_pack("{s:s,s:s,s:[{s:s,s:s}]}", "id", item_id, "type", "reasoning",
                                                    "summary", "type", "summary_text", "text",
                                                    sl_tr_str(b, "thinking")));
        } else if (!strcmp(type, "text") && sl_tr_str(b, "text")) {
            json_array_append_new(texts, json_pack("{s:s,s:s,s:[],s:[]}", "type", "output_text", "text",
                                                   sl_tr_str(b, "text"), "annotations", "logprobs"));
        } else if (!strcmp(type, "tool_use")) {
            json_t *input = json_object_get(b, "input");
            char *args = input ? sl_json_dumps(input, JSON_COMPACT) : NULL;
            sl_tr_make_id(item_id, sizeof item_id, "fc_", rid, strlen(rid), ++n);
            json_array_append_new(output, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item_id, "type",
                                                    "function_call", "status", "completed", "call_id",
                                                    sl_tr_str(b, "id") ? sl_tr_str(b, "id") : "", "name",
                                                    sl_tr_str(b, "name") ? sl_tr_str(b, "name") : "", "arguments",
                                                    args ? args : "{}"));
            free(args);
        }
    }
    if (json_array_size(texts)) {
        /* One message item holding the text, before the calls, as OpenAI
         * orders them. */
        sl_tr_make_id(item_id, sizeof item_id, "msg_", rid, strlen(rid), 0);
        size_t at = 0;
        json_array_foreach(output, i, b)
            if (!strcmp(sl_tr_str(b, "type"), "reasoning"))
                at = i + 1;
        json_array_insert_new(output, at, json_pack("{s:s,s:s,s:s,s:s,s:o}", "id", item_id, "type", "message",
                                                    "status", "completed", "role", "assistant", "content", texts));
    } else {
        json_decref(texts);
    }
    json_object_set_new(o, "usage", sl_tr_responses_usage(u));
    return o;
}
