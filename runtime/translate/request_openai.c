/*
 * OpenAI Chat Completions requests to and from the neutral form (see
 * request.c): messages with string or part content, system and developer
 * turns anywhere in the list, tool calls with JSON-text arguments, one tool
 * message per result, and reasoning_effort in place of a thinking budget.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

/* ---- OpenAI -> neutral ------------------------------------------------- */

json_t *sl_tr_image_from_url(const char *url)
{
    const char *mime, *data;
    size_t mlen;
    if (sl_tr_parse_data_url(url, &mime, &mlen, &data) == 0) {
        json_t *src = json_pack("{s:s,s:s%,s:s}", "type", "base64", "media_type", mime, mlen, "data", data);
        int pdf = mlen == 15 && !strncmp(mime, "application/pdf", 15);
        return json_pack("{s:s,s:o}", "type", pdf ? "document" : "image", "source", src);
    }
    return json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source", "type", "url", "url", url);
}

/* OpenAI content (string or parts) -> neutral content. */
static json_t *openai_content(json_t *c)
{
    if (json_is_string(c))
        return json_incref(c);
    json_t *out = json_array();
    size_t i;
    json_t *p;
    json_array_foreach(c, i, p) {
        const char *type = sl_tr_str(p, "type");
        json_t *b = NULL;
        if (!type)
            continue;
        if (!strcmp(type, "text")) {
            const char *t = sl_tr_nstr(p, "text");
            if (t)
                b = sl_tr_text_block(t);
        } else if (!strcmp(type, "image_url")) {
            json_t *iu = json_object_get(p, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
            if (url)
                b = sl_tr_image_from_url(url);
        } else if (!strcmp(type, "file")) {
            const char *fd = sl_tr_str(json_object_get(p, "file"), "file_data");
            if (fd)
                b = sl_tr_image_from_url(fd);
            if (b && strcmp(sl_tr_str(b, "type"), "document") != 0) {
                json_decref(b);
                b = NULL;
            }
        }
        /* input_audio and unknown parts: no counterpart. */
        if (!b)
            continue;
        json_t *cc = json_object_get(p, "cache_control");
        if (json_is_object(cc))
            json_object_set(b, "cache_control", cc);
        json_array_append_new(out, b);
    }
    return out;
}

void sl_tr_set_tool_choice(json_t *req, json_t *ir, json_t *choice)
{
    if (json_is_false(json_object_get(req, "parallel_tool_calls")) && json_object_get(ir, "tools")) {
        if (!choice)
            choice = json_pack("{s:s}", "type", "auto");
        if (strcmp(sl_tr_str(choice, "type"), "none") != 0)
            json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice)
        json_object_set_new(ir, "tool_choice", choice);
}

json_t *sl_tr_choice_from_openai(const char *s)
{
    if (!strcmp(s, "auto"))
        return json_pack("{s:s}", "type", "auto");
    if (!strcmp(s, "none"))
        return json_pack("{s:s}", "type", "none");
    if (!strcmp(s, "required"))
        return json_pack("{s:s}", "type", "any");
    return NULL;
}

int sl_tr_openai_to_ir(json_t *req, json_t *ir, char *err, size_t errlen)
{
    json_t *msgs = json_object_get(req, "messages");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
        snprintf(err, errlen, "'messages' is required and must be a non-empty array");
        return -1;
    }
    json_t *system = json_array();
    json_t *out = json_array();
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        const char *role = sl_tr_str(m, "role");
        if (!role) {
            json_decref(system);
            json_decref(out);
            snprintf(err, errlen, "messages[%zu]: 'role' is required", i);
            return -1;
        }
        json_t *c = json_object_get(m, "content");
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            /* Anywhere in the list (Claude-Code-style clients put one
             * mid-conversation): all of them become the system prompt. */
            json_t *blocks = openai_content(c);
            if (json_is_string(blocks)) {
                if (json_string_length(blocks))
                    json_array_append_new(system, sl_tr_text_block(json_string_value(blocks)));
            } else if (blocks) {
                size_t k;
                json_t *b;
                json_array_foreach(blocks, k, b)
                    if (!strcmp(sl_tr_str(b, "type"), "text"))
                        json_array_append(system, b);
            }
            json_decref(blocks);
        } else if (!strcmp(role, "user")) {
            json_t *content = c ? openai_content(c) : NULL;
            if (content)
                sl_tr_ir_push(out, "user", content);
        } else if (!strcmp(role, "assistant")) {
            json_t *content = json_array();
            if (json_is_string(c)) {
                if (json_string_length(c))
                    json_array_append_new(content, sl_tr_text_block(json_string_value(c)));
            } else if (json_is_array(c)) {
                json_t *parts = openai_content(c);
                json_array_extend(content, parts);
                json_decref(parts);
            }
            const char *refusal = sl_tr_nstr(m, "refusal");
            if (refusal && json_array_size(content) == 0)
                json_array_append_new(content, sl_tr_text_block(refusal));
            size_t k;
            json_t *tc;
            json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
                json_t *fn = json_object_get(tc, "function");
                const char *args = sl_tr_str(fn, "arguments");
                json_t *input = sl_tr_args_object(args ? args : "", args ? strlen(args) : 0);
                const char *id = sl_tr_str(tc, "id");
                const char *name = sl_tr_str(fn, "name");
                json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id",
                                                         id ? id : "", "name", name ? name : "",
                                                         "input", input));
            }
            sl_tr_ir_push(out, "assistant", content);
        } else if (!strcmp(role, "tool")) {
            const char *id = sl_tr_str(m, "tool_call_id");
            char *text = json_is_array(c) ? sl_tr_content_text(c, "\n") : NULL;
            const char *t = text ? text : json_is_string(c) ? json_string_value(c) : "";
            json_t *b = json_pack("{s:s,s:s,s:s}", "type", "tool_result", "tool_use_id", id ? id : "",
                                  "content", t);
            free(text);
            json_t *arr = json_array();
            json_array_append_new(arr, b);
            sl_tr_ir_push(out, "user", arr);
        }
        /* "function" (legacy) messages: no counterpart. */
    }
    json_object_set_new(ir, "messages", out);
    if (json_array_size(system))
        json_object_set_new(ir, "system", system);
    else
        json_decref(system);

    json_t *mt = json_object_get(req, "max_completion_tokens");
    if (!json_is_integer(mt))
        mt = json_object_get(req, "max_tokens");
    if (json_is_integer(mt))
        json_object_set(ir, "max_tokens", mt);
    static const sl_tr_field_map from_openai[] = {
        {"temperature", NULL, "temperature", SL_TR_F_NUM},
        {"top_p", NULL, "top_p", SL_TR_F_NUM},
        {"seed", NULL, "_sl_seed", SL_TR_F_INT},
        {"presence_penalty", NULL, "_sl_presence_penalty", SL_TR_F_NUM},
        {"frequency_penalty", NULL, "_sl_frequency_penalty", SL_TR_F_NUM},
        {"response_format", NULL, "_sl_response_format", SL_TR_F_OBJ},
    };
    sl_tr_copy_fields(req, ir, from_openai, sizeof from_openai / sizeof *from_openai);
    json_t *v = json_object_get(req, "stop");
    if (json_is_string(v))
        json_object_set_new(ir, "stop_sequences", json_pack("[O]", v));
    else if (json_is_array(v) && json_array_size(v))
        json_object_set(ir, "stop_sequences", v);
    const char *user = sl_tr_nstr(req, "user");
    if (user)
        json_object_set_new(ir, "metadata", json_pack("{s:s}", "user_id", user));
    long budget = sl_tr_effort_budget(sl_tr_str(req, "reasoning_effort"));
    if (budget)
        json_object_set_new(ir, "thinking", json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens",
                                                       (json_int_t)budget));

    json_t *tools = json_array();
    size_t k;
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), k, t) {
        json_t *fn = json_object_get(t, "function");
        const char *name = sl_tr_nstr(fn, "name");
        if (!name)
            continue; /* built-in tool kinds have no counterpart */
        json_t *schema = json_object_get(fn, "parameters");
        json_t *tool = json_pack("{s:s}", "name", name);
        const char *d = sl_tr_str(fn, "description");
        if (d)
            json_object_set_new(tool, "description", json_string(d));
        json_object_set_new(tool, "input_schema",
                            json_is_object(schema) ? json_deep_copy(schema)
                                                   : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(tools, tool);
    }
    if (json_array_size(tools))
        json_object_set_new(ir, "tools", tools);
    else
        json_decref(tools);

    json_t *tc = json_object_get(req, "tool_choice");
    json_t *choice = NULL;
    if (json_is_string(tc)) {
        choice = sl_tr_choice_from_openai(json_string_value(tc));
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_nstr(json_object_get(tc, "function"), "name");
        if (name)
            choice = json_pack("{s:s,s:s}", "type", "tool", "name", name);
    }
    sl_tr_set_tool_choice(req, ir, choice);

    return 0;
}

/* ---- neutral -> OpenAI ------------------------------------------------- */

static json_t *openai_media_part(json_t *b)
{
    json_t *src = json_object_get(b, "source");
    const char *st = sl_tr_str(src, "type");
    const char *type = sl_tr_str(b, "type");
    char *url = NULL;
    if (st && !strcmp(st, "base64")) {
        const char *mt = sl_tr_str(src, "media_type");
        const char *data = sl_tr_str(src, "data");
        if (!mt || !data)
            return NULL;
        size_t n = strlen(mt) + strlen(data) + 16;
        url = malloc(n);
        if (!url)
            return NULL;
        snprintf(url, n, "data:%s;base64,%s", mt, data);
    } else if (st && !strcmp(st, "url") && sl_tr_str(src, "url")) {
        url = strdup(sl_tr_str(src, "url"));
    } else {
        return NULL;
    }
    json_t *part;
    if (!strcmp(type, "document"))
        part = st[0] == 'b' ? json_pack("{s:s,s:{s:s,s:s}}", "type", "file", "file", "filename", "document.pdf",
                                        "file_data", url)
                            : NULL;
    else
        part = json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url);
    free(url);
    return part;
}

json_t *sl_tr_ir_to_openai(json_t *ir, const char *model, int stream)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model));
    json_t *msgs = json_array();
    json_t *sys = json_object_get(ir, "system");
    if (sys) {
        char *s = sl_tr_content_text(sys, "\n\n");
        if (s && *s)
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", s));
        free(s);
    }
    size_t i, k;
    json_t *m, *b;
    json_array_foreach(json_object_get(ir, "messages"), i, m) {
        const char *role = sl_tr_str(m, "role");
        json_t *content = json_object_get(m, "content");
        if (!role)
            continue;
        if (json_is_string(content)) {
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", role, "content", content));
            continue;
        }
        if (!strcmp(role, "assistant")) {
            json_t *calls = json_array();
            char *text = sl_tr_content_text(content, "");
            json_array_foreach(content, k, b) {
                if (strcmp(sl_tr_str(b, "type") ? sl_tr_str(b, "type") : "", "tool_use") != 0)
                    continue;
                json_t *input = json_object_get(b, "input");
                json_t *none = input ? NULL : json_object();
                char *args = sl_json_dumps(input ? input : none, JSON_COMPACT);
                json_decref(none);
                json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", sl_tr_str(b, "id"), "type",
                                                       "function", "function", "name", sl_tr_str(b, "name"),
                                                       "arguments", args ? args : "{}"));
                free(args);
            }
            json_t *am = json_pack("{s:s}", "role", "assistant");
            json_object_set_new(am, "content", text && *text ? json_string(text) : json_null());
            if (json_array_size(calls))
                json_object_set_new(am, "tool_calls", calls);
            else
                json_decref(calls);
            free(text);
            if (json_is_null(json_object_get(am, "content")) && !json_object_get(am, "tool_calls"))
                json_decref(am); /* only thinking: nothing OpenAI can take */
            else
                json_array_append_new(msgs, am);
            continue;
        }
        /* User turn: tool results first, as OpenAI tool messages right after
         * the assistant's calls, then whatever the user said. */
        json_t *parts = json_array();
        int all_text = 1;
        json_array_foreach(content, k, b) {
            const char *type = sl_tr_str(b, "type");
            if (!type)
                continue;
            if (!strcmp(type, "tool_result")) {
                json_t *rc = json_object_get(b, "content");
                char *t = rc ? sl_tr_content_text(rc, "\n") : strdup("");
                json_array_append_new(msgs, json_pack("{s:s,s:s,s:s}", "role", "tool", "tool_call_id",
                                                      sl_tr_str(b, "tool_use_id") ? sl_tr_str(b, "tool_use_id") : "",
                                                      "content", t ? t : ""));
                free(t);
            } else if (!strcmp(type, "text")) {
                json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "text", "text",
                                                       json_object_get(b, "text")));
            } else if (!strcmp(type, "image") || !strcmp(type, "document")) {
                json_t *p = openai_media_part(b);
                if (p) {
                    json_array_append_new(parts, p);
                    all_text = 0;
                }
            }
        }
        if (json_array_size(parts) == 0) {
            json_decref(parts);
        } else if (all_text) {
            /* Plain strings: understood by every OpenAI-compatible server. */
            char *t = sl_tr_content_text(parts, "\n");
            json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", role, "content", t ? t : ""));
            free(t);
            json_decref(parts);
        } else {
            json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", parts));
        }
    }
    json_object_set_new(o, "messages", msgs);

    /* max_completion_tokens: the only one OpenAI's reasoning models take. */
    static const sl_tr_field_map openai_fields[] = {
        {"max_tokens", NULL, "max_completion_tokens", SL_TR_F_INT},
        {"temperature", NULL, "temperature", SL_TR_F_NUM},
        {"top_p", NULL, "top_p", SL_TR_F_NUM},
        {"stop_sequences", NULL, "stop", SL_TR_F_LIST},
        {"_sl_seed", NULL, "seed", SL_TR_F_INT},
        {"_sl_presence_penalty", NULL, "presence_penalty", SL_TR_F_NUM},
        {"_sl_frequency_penalty", NULL, "frequency_penalty", SL_TR_F_NUM},
        {"_sl_response_format", NULL, "response_format", SL_TR_F_OBJ},
    };
    sl_tr_copy_fields(ir, o, openai_fields, sizeof openai_fields / sizeof *openai_fields);
    const char *user = sl_tr_nstr(json_object_get(ir, "metadata"), "user_id");
    if (user)
        json_object_set_new(o, "user", json_string(user));
    json_t *th = json_object_get(ir, "thinking");
    const char *tht = sl_tr_str(th, "type");
    if (tht && !strcmp(tht, "enabled"))
        json_object_set_new(o, "reasoning_effort",
                            json_string(sl_tr_budget_effort(sl_tr_int(th, "budget_tokens", 8192))));

    json_t *tools = json_array();
    json_t *t;
    json_array_foreach(json_object_get(ir, "tools"), i, t) {
        json_t *schema = json_object_get(t, "input_schema");
        const char *name = sl_tr_nstr(t, "name");
        if (!name || !json_is_object(schema))
            continue; /* Anthropic server tools (web search, bash...) */
        json_t *fn = json_pack("{s:s}", "name", name);
        const char *d = sl_tr_str(t, "description");
        if (d)
            json_object_set_new(fn, "description", json_string(d));
        json_object_set(fn, "parameters", schema);
        json_array_append_new(tools, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    int have_tools = json_array_size(tools) > 0;
    if (have_tools)
        json_object_set_new(o, "tools", tools);
    else
        json_decref(tools);
    json_t *tc = json_object_get(ir, "tool_choice");
    const char *tct = sl_tr_str(tc, "type");
    if (have_tools && tct) {
        if (!strcmp(tct, "auto"))
            json_object_set_new(o, "tool_choice", json_string("auto"));
        else if (!strcmp(tct, "any"))
            json_object_set_new(o, "tool_choice", json_string("required"));
        else if (!strcmp(tct, "none"))
            json_object_set_new(o, "tool_choice", json_string("none"));
        else if (!strcmp(tct, "tool") && sl_tr_str(tc, "name"))
            json_object_set_new(o, "tool_choice", json_pack("{s:s,s:{s:s}}", "type", "function", "function",
                                                            "name", sl_tr_str(tc, "name")));
        if (json_is_true(json_object_get(tc, "disable_parallel_tool_use")))
            json_object_set_new(o, "parallel_tool_calls", json_false());
    }
    if (stream) {
        json_object_set_new(o, "stream", json_true());
        json_object_set_new(o, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return o;
}
