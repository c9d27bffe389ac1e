/*
 * Request translation. Every client request is first read into a neutral
 * form shaped like an Anthropic Messages request (the richest of the three:
 * system blocks with cache_control, typed content blocks, tool_use and
 * tool_result with ids), then written out in the upstream's protocol.
 * Parameters Anthropic lacks but Gemini and OpenAI share (seed, penalties,
 * response_format) ride along in "_sl_" members that only those writers
 * read. Anything with no counterpart is dropped, never an error: a client
 * should not fail because its gateway routed it elsewhere.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

#define DEFAULT_MAX_TOKENS 4096

/* reasoning_effort <-> thinking budget. */
static long effort_budget(const char *e)
{
    if (!e)
        return 0;
    if (!strcmp(e, "minimal"))
        return 1024;
    if (!strcmp(e, "low"))
        return 2048;
    if (!strcmp(e, "medium"))
        return 8192;
    if (!strcmp(e, "high") || !strcmp(e, "xhigh"))
        return 16384;
    return 0;
}

static const char *budget_effort(long b)
{
    if (b < 4096)
        return "low";
    if (b < 12288)
        return "medium";
    return "high";
}

static json_t *text_block(const char *t)
{
    return json_pack("{s:s,s:s}", "type", "text", "text", t);
}

/* Appends a message to the neutral list, merging it into the previous one
 * when the roles match: Anthropic wants alternating turns, and OpenAI's
 * tool messages (one per result) must become a single user turn. */
static void ir_push(json_t *msgs, const char *role, json_t *content)
{
    if (json_is_array(content) && json_array_size(content) == 0) {
        json_decref(content);
        return;
    }
    if (json_is_string(content) && json_string_length(content) == 0) {
        json_decref(content);
        return;
    }
    size_t n = json_array_size(msgs);
    json_t *last = n ? json_array_get(msgs, n - 1) : NULL;
    if (last && !strcmp(sl_tr_str(last, "role"), role)) {
        json_t *lc = json_object_get(last, "content");
        if (json_is_string(lc)) {
            json_t *arr = json_array();
            json_array_append_new(arr, text_block(json_string_value(lc)));
            json_object_set_new(last, "content", arr);
            lc = arr;
        }
        if (json_is_string(content))
            json_array_append_new(lc, text_block(json_string_value(content)));
        else
            json_array_extend(lc, content);
        json_decref(content);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", content));
}

/* ---- OpenAI -> neutral ------------------------------------------------- */

static json_t *image_from_url(const char *url)
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
                b = text_block(t);
        } else if (!strcmp(type, "image_url")) {
            json_t *iu = json_object_get(p, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu) : sl_tr_str(iu, "url");
            if (url)
                b = image_from_url(url);
        } else if (!strcmp(type, "file")) {
            const char *fd = sl_tr_str(json_object_get(p, "file"), "file_data");
            if (fd)
                b = image_from_url(fd);
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

/* Scalar sampling fields differ between protocols only in name (and in
 * which JSON type each accepts): one table per direction instead of a
 * ladder of ifs, in both directions. */
typedef enum field_kind { F_INT, F_NUM, F_LIST, F_OBJ } field_kind;
typedef struct field_map {
    const char *from;
    const char *alt;   /* second spelling accepted on input, or NULL */
    const char *to;
    field_kind kind;
} field_map;

static void copy_fields(json_t *src, json_t *dst, const field_map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(src, m[i].from);
        if (!v && m[i].alt)
            v = json_object_get(src, m[i].alt);
        int ok = m[i].kind == F_INT    ? json_is_integer(v)
                 : m[i].kind == F_NUM  ? json_is_number(v)
                 : m[i].kind == F_LIST ? json_is_array(v) && json_array_size(v) > 0
                                       : json_is_object(v);
        if (ok)
            json_object_set(dst, m[i].to, v);
    }
}

static int openai_to_ir(json_t *req, json_t *ir, char *err, size_t errlen)
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
                    json_array_append_new(system, text_block(json_string_value(blocks)));
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
                ir_push(out, "user", content);
        } else if (!strcmp(role, "assistant")) {
            json_t *content = json_array();
            if (json_is_string(c)) {
                if (json_string_length(c))
                    json_array_append_new(content, text_block(json_string_value(c)));
            } else if (json_is_array(c)) {
                json_t *parts = openai_content(c);
                json_array_extend(content, parts);
                json_decref(parts);
            }
            const char *refusal = sl_tr_nstr(m, "refusal");
            if (refusal && json_array_size(content) == 0)
                json_array_append_new(content, text_block(refusal));
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
            ir_push(out, "assistant", content);
        } else if (!strcmp(role, "tool")) {
            const char *id = sl_tr_str(m, "tool_call_id");
            char *text = json_is_array(c) ? sl_tr_content_text(c, "\n") : NULL;
            const char *t = text ? text : json_is_string(c) ? json_string_value(c) : "";
            json_t *b = json_pack("{s:s,s:s,s:s}", "type", "tool_result", "tool_use_id", id ? id : "",
                                  "content", t);
            free(text);
            json_t *arr = json_array();
            json_array_append_new(arr, b);
            ir_push(out, "user", arr);
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
    static const field_map from_openai[] = {
        {"temperature", NULL, "temperature", F_NUM},
        {"top_p", NULL, "top_p", F_NUM},
        {"seed", NULL, "_sl_seed", F_INT},
        {"presence_penalty", NULL, "_sl_presence_penalty", F_NUM},
        {"frequency_penalty", NULL, "_sl_frequency_penalty", F_NUM},
        {"response_format", NULL, "_sl_response_format", F_OBJ},
    };
    copy_fields(req, ir, from_openai, sizeof from_openai / sizeof *from_openai);
    json_t *v = json_object_get(req, "stop");
    if (json_is_string(v))
        json_object_set_new(ir, "stop_sequences", json_pack("[O]", v));
    else if (json_is_array(v) && json_array_size(v))
        json_object_set(ir, "stop_sequences", v);
    const char *user = sl_tr_nstr(req, "user");
    if (user)
        json_object_set_new(ir, "metadata", json_pack("{s:s}", "user_id", user));
    long budget = effort_budget(sl_tr_str(req, "reasoning_effort"));
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
        const char *s = json_string_value(tc);
        if (!strcmp(s, "auto"))
            choice = json_pack("{s:s}", "type", "auto");
        else if (!strcmp(s, "none"))
            choice = json_pack("{s:s}", "type", "none");
        else if (!strcmp(s, "required"))
            choice = json_pack("{s:s}", "type", "any");
    } else if (json_is_object(tc)) {
        const char *name = sl_tr_nstr(json_object_get(tc, "function"), "name");
        if (name)
            choice = json_pack("{s:s,s:s}", "type", "tool", "name", name);
    }
    if (json_is_false(json_object_get(req, "parallel_tool_calls")) && json_object_get(ir, "tools")) {
        if (!choice)
            choice = json_pack("{s:s}", "type", "auto");
        if (strcmp(sl_tr_str(choice, "type"), "none") != 0)
            json_object_set_new(choice, "disable_parallel_tool_use", json_true());
    }
    if (choice)
        json_object_set_new(ir, "tool_choice", choice);

    return 0;
}

/* ---- Gemini -> neutral ------------------------------------------------- */

/* Gemini's OpenAPI-style schemas spell types in capitals. */
static json_t *schema_lower(json_t *s)
{
    if (json_is_array(s)) {
        json_t *a = json_array();
        size_t i;
        json_t *v;
        json_array_foreach(s, i, v)
            json_array_append_new(a, schema_lower(v));
        return a;
    }
    if (!json_is_object(s))
        return json_incref(s);
    json_t *o = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(s, k, v) {
        if (!strcmp(k, "type") && json_is_string(v)) {
            char low[32];
            snprintf(low, sizeof low, "%s", json_string_value(v));
            for (char *p = low; *p; p++)
                if (*p >= 'A' && *p <= 'Z')
                    *p = (char)(*p - 'A' + 'a');
            json_object_set_new(o, k, json_string(low));
        } else if (!strcmp(k, "properties") && json_is_object(v)) {
            json_t *props = json_object();
            const char *pk;
            json_t *pv;
            json_object_foreach(v, pk, pv)
                json_object_set_new(props, pk, schema_lower(pv));
            json_object_set_new(o, k, props);
        } else if (!strcmp(k, "items") || !strcmp(k, "anyOf")) {
            json_object_set_new(o, k, schema_lower(v));
        } else if (strcmp(k, "propertyOrdering") != 0) {
            json_object_set(o, k, v);
        }
    }
    return o;
}

static json_t *gemini_media(json_t *p)
{
    json_t *inl = json_object_get(p, "inlineData");
    if (!inl)
        inl = json_object_get(p, "inline_data");
    if (json_is_object(inl)) {
        const char *mime = sl_tr_str(inl, "mimeType");
        if (!mime)
            mime = sl_tr_str(inl, "mime_type");
        const char *data = sl_tr_str(inl, "data");
        if (!mime || !data)
            return NULL;
        int pdf = !strcmp(mime, "application/pdf");
        if (!pdf && strncmp(mime, "image/", 6) != 0)
            return NULL;
        return json_pack("{s:s,s:{s:s,s:s,s:s}}", "type", pdf ? "document" : "image", "source", "type",
                         "base64", "media_type", mime, "data", data);
    }
    json_t *fd = json_object_get(p, "fileData");
    if (!fd)
        fd = json_object_get(p, "file_data");
    if (json_is_object(fd)) {
        const char *uri = sl_tr_str(fd, "fileUri");
        if (!uri)
            uri = sl_tr_str(fd, "file_uri");
        const char *mime = sl_tr_str(fd, "mimeType");
        if (!uri)
            return NULL;
        int pdf = mime && !strcmp(mime, "application/pdf");
        return json_pack("{s:s,s:{s:s,s:s}}", "type", pdf ? "document" : "image", "source", "type", "url",
                         "url", uri);
    }
    return NULL;
}

/* Gemini function responses carry {"output": ...} or {"error": ...} by
 * convention; anything else is passed on as its JSON text. */
static json_t *gemini_result_block(json_t *fr, const char *id)
{
    json_t *resp = json_object_get(fr, "response");
    json_t *b = json_pack("{s:s,s:s}", "type", "tool_result", "tool_use_id", id);
    json_t *out = json_object_get(resp, "output");
    json_t *e = json_object_get(resp, "error");
    if (json_object_size(resp) == 1 && json_is_string(out)) {
        json_object_set(b, "content", out);
    } else if (json_object_size(resp) == 1 && json_is_string(e)) {
        json_object_set(b, "content", e);
        json_object_set_new(b, "is_error", json_true());
    } else {
        char *s = resp ? sl_json_dumps(resp, JSON_COMPACT) : NULL;
        json_object_set_new(b, "content", json_string(s ? s : ""));
        free(s);
    }
    return b;
}

static json_t *gemini_config_get(json_t *gc, const char *camel, const char *snake)
{
    json_t *v = json_object_get(gc, camel);
    return v ? v : json_object_get(gc, snake);
}

static int gemini_to_ir(json_t *req, json_t *ir, char *err, size_t errlen)
{
    json_t *contents = json_object_get(req, "contents");
    if (!json_is_array(contents) || json_array_size(contents) == 0) {
        snprintf(err, errlen, "'contents' is required and must be a non-empty array");
        return -1;
    }
    json_t *si = json_object_get(req, "systemInstruction");
    if (!si)
        si = json_object_get(req, "system_instruction");
    json_t *system = json_array();
    size_t i, k;
    json_t *p, *c;
    json_array_foreach(json_object_get(si, "parts"), k, p) {
        const char *t = sl_tr_nstr(p, "text");
        if (t)
            json_array_append_new(system, text_block(t));
    }
    if (json_array_size(system))
        json_object_set_new(ir, "system", system);
    else
        json_decref(system);

    /* Gemini has no call ids: calls get synthesized ones, and each response
     * takes the id of the earliest unanswered call with its name. */
    json_t *pending = json_array(); /* [{name,id}] */
    long ncalls = 0;
    char seed[64];
    snprintf(seed, sizeof seed, "%zu", json_array_size(contents));
    json_t *out = json_array();
    json_array_foreach(contents, i, c) {
        const char *role = sl_tr_str(c, "role");
        int model = role && !strcmp(role, "model");
        json_t *blocks = json_array();
        json_array_foreach(json_object_get(c, "parts"), k, p) {
            json_t *fc = json_object_get(p, "functionCall");
            json_t *fr = json_object_get(p, "functionResponse");
            const char *t = sl_tr_str(p, "text");
            if (t) {
                if (*t && !json_is_true(json_object_get(p, "thought")))
                    json_array_append_new(blocks, text_block(t));
            } else if (json_is_object(fc)) {
                const char *name = sl_tr_str(fc, "name");
                char id[64];
                const char *given = sl_tr_nstr(fc, "id");
                if (given)
                    snprintf(id, sizeof id, "%s", given);
                else
                    snprintf(id, sizeof id, "call_%ld", ncalls);
                ncalls++;
                json_t *args = json_object_get(fc, "args");
                json_array_append_new(blocks, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id,
                                                        "name", name ? name : "", "input",
                                                        json_is_object(args) ? json_deep_copy(args)
                                                                             : json_object()));
                json_array_append_new(pending, json_pack("{s:s,s:s}", "name", name ? name : "", "id", id));
            } else if (json_is_object(fr)) {
                const char *name = sl_tr_str(fr, "name");
                const char *given = sl_tr_nstr(fr, "id");
                char id[64] = "";
                size_t j;
                json_t *pc;
                json_array_foreach(pending, j, pc) {
                    if ((given && !strcmp(sl_tr_str(pc, "id"), given)) ||
                        (!given && name && !strcmp(sl_tr_str(pc, "name"), name))) {
                        snprintf(id, sizeof id, "%s", sl_tr_str(pc, "id"));
                        json_array_remove(pending, j);
                        break;
                    }
                }
                if (!id[0])
                    snprintf(id, sizeof id, "%s", given ? given : "call_unmatched");
                json_array_append_new(blocks, gemini_result_block(fr, id));
            } else {
                json_t *m = gemini_media(p);
                if (m)
                    json_array_append_new(blocks, m);
            }
        }
        ir_push(out, model ? "assistant" : "user", blocks);
    }
    json_decref(pending);
    json_object_set_new(ir, "messages", out);

    json_t *gc = json_object_get(req, "generationConfig");
    if (!gc)
        gc = json_object_get(req, "generation_config");
    static const field_map from_gemini[] = {
        {"maxOutputTokens", "max_output_tokens", "max_tokens", F_INT},
        {"temperature", NULL, "temperature", F_NUM},
        {"topP", "top_p", "top_p", F_NUM},
        {"topK", "top_k", "top_k", F_INT},
        {"stopSequences", "stop_sequences", "stop_sequences", F_LIST},
        {"seed", NULL, "_sl_seed", F_INT},
        {"presencePenalty", "presence_penalty", "_sl_presence_penalty", F_NUM},
        {"frequencyPenalty", "frequency_penalty", "_sl_frequency_penalty", F_NUM},
    };
    copy_fields(gc, ir, from_gemini, sizeof from_gemini / sizeof *from_gemini);
    const char *rmt = sl_tr_str(gc, "responseMimeType");
    if (rmt && !strcmp(rmt, "application/json")) {
        json_t *schema = json_object_get(gc, "responseJsonSchema");
        json_t *rs = json_object_get(gc, "responseSchema");
        json_t *sch = schema ? json_deep_copy(schema) : rs ? schema_lower(rs) : NULL;
        if (sch)
            json_object_set_new(ir, "_sl_response_format",
                                json_pack("{s:s,s:{s:s,s:o}}", "type", "json_schema", "json_schema", "name",
                                          "response", "schema", sch));
        else
            json_object_set_new(ir, "_sl_response_format", json_pack("{s:s}", "type", "json_object"));
    }
    json_t *th = gemini_config_get(gc, "thinkingConfig", "thinking_config");
    if (json_is_object(th)) {
        long b = sl_tr_int(th, "thinkingBudget", sl_tr_int(th, "thinking_budget", 0));
        const char *level = sl_tr_str(th, "thinkingLevel");
        if (b < 0)
            b = 8192; /* dynamic: the model decides; pick the middle */
        else if (level)
            b = effort_budget(level);
        if (b > 0 && b < 1024)
            b = 1024;
        if (b > 0)
            json_object_set_new(ir, "thinking", json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens",
                                                           (json_int_t)b));
    }

    json_t *tools = json_array();
    json_t *t;
    json_array_foreach(json_object_get(req, "tools"), i, t) {
        json_t *fds = json_object_get(t, "functionDeclarations");
        if (!fds)
            fds = json_object_get(t, "function_declarations");
        json_t *fd;
        json_array_foreach(fds, k, fd) {
            const char *name = sl_tr_nstr(fd, "name");
            if (!name)
                continue;
            json_t *tool = json_pack("{s:s}", "name", name);
            const char *d = sl_tr_str(fd, "description");
            if (d)
                json_object_set_new(tool, "description", json_string(d));
            json_t *js = json_object_get(fd, "parametersJsonSchema");
            json_t *ps = json_object_get(fd, "parameters");
            json_object_set_new(tool, "input_schema",
                                json_is_object(js)   ? json_deep_copy(js)
                                : json_is_object(ps) ? schema_lower(ps)
                                                     : json_pack("{s:s,s:{}}", "type", "object", "properties"));
            json_array_append_new(tools, tool);
        }
        /* googleSearch, codeExecution, urlContext: no counterpart. */
    }
    if (json_array_size(tools))
        json_object_set_new(ir, "tools", tools);
    else
        json_decref(tools);

    json_t *tcfg = json_object_get(req, "toolConfig");
    if (!tcfg)
        tcfg = json_object_get(req, "tool_config");
    json_t *fcc = json_object_get(tcfg, "functionCallingConfig");
    if (!fcc)
        fcc = json_object_get(tcfg, "function_calling_config");
    const char *mode = sl_tr_str(fcc, "mode");
    if (mode) {
        json_t *allowed = json_object_get(fcc, "allowedFunctionNames");
        json_t *choice = NULL;
        if (!strcmp(mode, "NONE"))
            choice = json_pack("{s:s}", "type", "none");
        else if ((!strcmp(mode, "ANY") || !strcmp(mode, "VALIDATED")) && json_array_size(allowed) == 1 &&
                 json_is_string(json_array_get(allowed, 0)))
            choice = json_pack("{s:s,s:O}", "type", "tool", "name", json_array_get(allowed, 0));
        else if (!strcmp(mode, "ANY"))
            choice = json_pack("{s:s}", "type", "any");
        else if (!strcmp(mode, "AUTO"))
            choice = json_pack("{s:s}", "type", "auto");
        if (choice)
            json_object_set_new(ir, "tool_choice", choice);
    }
    return 0;
}

/* ---- neutral -> Anthropic --------------------------------------------- */

static json_t *ir_to_anthropic(json_t *ir, const char *model, int stream)
{
    json_t *o = json_object();
    json_object_set_new(o, "model", json_string(model));
    long max = sl_tr_int(ir, "max_tokens", DEFAULT_MAX_TOKENS);
    json_t *thinking = json_object_get(ir, "thinking");
    long budget = sl_tr_int(thinking, "budget_tokens", 0);
    const char *tct = sl_tr_str(json_object_get(ir, "tool_choice"), "type");
    /* Anthropic refuses thinking with a forced tool; the forced tool is
     * the more specific wish, so thinking goes. */
    int drop_thinking = tct && (!strcmp(tct, "any") || !strcmp(tct, "tool"));
    if (drop_thinking)
        budget = 0;
    /* Anthropic rejects max_tokens <= budget_tokens. */
    if (budget > 0 && max <= budget)
        max = budget + DEFAULT_MAX_TOKENS;
    json_object_set_new(o, "max_tokens", json_integer(max));
    const char *k;
    json_t *v;
    json_object_foreach(ir, k, v) {
        if (!strncmp(k, "_sl_", 4) || !strcmp(k, "max_tokens") || !strcmp(k, "model") ||
            !strcmp(k, "stream") || (drop_thinking && !strcmp(k, "thinking")))
            continue;
        if (budget > 0 && (!strcmp(k, "temperature") || !strcmp(k, "top_k") || !strcmp(k, "top_p")))
            continue; /* not allowed together with extended thinking */
        if (!strcmp(k, "temperature") && json_number_value(v) > 1.0) {
            json_object_set_new(o, k, json_real(1.0)); /* OpenAI and Gemini go to 2 */
            continue;
        }
        json_object_set(o, k, v);
    }
    if (stream)
        json_object_set_new(o, "stream", json_true());
    return o;
}

/* ---- neutral -> OpenAI ------------------------------------------------- */

static json_t *blocks_of(json_t *content)
{
    if (json_is_array(content))
        return json_incref(content);
    json_t *a = json_array();
    if (json_is_string(content))
        json_array_append_new(a, text_block(json_string_value(content)));
    return a;
}

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

static json_t *ir_to_openai(json_t *ir, const char *model, int stream)
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
    static const field_map openai_fields[] = {
        {"max_tokens", NULL, "max_completion_tokens", F_INT},
        {"temperature", NULL, "temperature", F_NUM},
        {"top_p", NULL, "top_p", F_NUM},
        {"stop_sequences", NULL, "stop", F_LIST},
        {"_sl_seed", NULL, "seed", F_INT},
        {"_sl_presence_penalty", NULL, "presence_penalty", F_NUM},
        {"_sl_frequency_penalty", NULL, "frequency_penalty", F_NUM},
        {"_sl_response_format", NULL, "response_format", F_OBJ},
    };
    copy_fields(ir, o, openai_fields, sizeof openai_fields / sizeof *openai_fields);
    const char *user = sl_tr_nstr(json_object_get(ir, "metadata"), "user_id");
    if (user)
        json_object_set_new(o, "user", json_string(user));
    json_t *th = json_object_get(ir, "thinking");
    const char *tht = sl_tr_str(th, "type");
    if (tht && !strcmp(tht, "enabled"))
        json_object_set_new(o, "reasoning_effort",
                            json_string(budget_effort(sl_tr_int(th, "budget_tokens", 8192))));

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

/* ---- neutral -> Gemini ------------------------------------------------- */

static json_t *gemini_media_part(json_t *b)
{
    json_t *src = json_object_get(b, "source");
    const char *st = sl_tr_str(src, "type");
    int doc = !strcmp(sl_tr_str(b, "type"), "document");
    if (st && !strcmp(st, "base64") && sl_tr_str(src, "media_type") && sl_tr_str(src, "data"))
        return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", sl_tr_str(src, "media_type"), "data",
                         sl_tr_str(src, "data"));
    if (st && !strcmp(st, "url") && sl_tr_str(src, "url")) {
        const char *url = sl_tr_str(src, "url");
        return json_pack("{s:{s:s,s:s}}", "fileData", "mimeType",
                         sl_tr_mime_from_url(url, doc ? "application/pdf" : "image/jpeg"), "fileUri", url);
    }
    return NULL;
}

/* JSON Schema -> what parametersJsonSchema accepts: the draft marker is the
 * one member known to be refused. */
static json_t *gemini_schema(json_t *s)
{
    json_t *o = json_deep_copy(s);
    json_object_del(o, "$schema");
    return o;
}

static json_t *ir_to_gemini(json_t *ir)
{
    json_t *o = json_object();
    json_t *sys = json_object_get(ir, "system");
    if (sys) {
        json_t *parts = json_array();
        size_t k;
        json_t *b;
        if (json_is_string(sys))
            json_array_append_new(parts, json_pack("{s:O}", "text", sys));
        else
            json_array_foreach(sys, k, b)
                if (sl_tr_nstr(b, "text"))
                    json_array_append_new(parts, json_pack("{s:s}", "text", sl_tr_str(b, "text")));
        if (json_array_size(parts))
            json_object_set_new(o, "systemInstruction", json_pack("{s:o}", "parts", parts));
        else
            json_decref(parts);
    }
    /* Function responses name the function, not the call: map ids. */
    json_t *names = json_object();
    size_t i, k;
    json_t *m, *b;
    json_array_foreach(json_object_get(ir, "messages"), i, m) {
        json_array_foreach(json_object_get(m, "content"), k, b) {
            const char *type = sl_tr_str(b, "type");
            if (type && !strcmp(type, "tool_use") && sl_tr_str(b, "id") && sl_tr_str(b, "name"))
                json_object_set_new(names, sl_tr_str(b, "id"), json_string(sl_tr_str(b, "name")));
        }
    }
    json_t *contents = json_array();
    json_array_foreach(json_object_get(ir, "messages"), i, m) {
        const char *role = sl_tr_str(m, "role");
        int model = role && !strcmp(role, "assistant");
        json_t *blocks = blocks_of(json_object_get(m, "content"));
        json_t *parts = json_array();
        int signed_call = 0;
        json_array_foreach(blocks, k, b) {
            const char *type = sl_tr_str(b, "type");
            if (!type)
                continue;
            if (!strcmp(type, "text") && sl_tr_nstr(b, "text")) {
                json_array_append_new(parts, json_pack("{s:s}", "text", sl_tr_str(b, "text")));
            } else if (!strcmp(type, "image") || !strcmp(type, "document")) {
                json_t *p = gemini_media_part(b);
                if (p)
                    json_array_append_new(parts, p);
            } else if (!strcmp(type, "tool_use")) {
                json_t *input = json_object_get(b, "input");
                json_t *part = json_pack("{s:{s:s,s:o}}", "functionCall", "name",
                                         sl_tr_str(b, "name") ? sl_tr_str(b, "name") : "", "args",
                                         json_is_object(input) ? json_deep_copy(input) : json_object());
                /* Gemini 3 wants the signature its own turn carried on the
                 * first call of each turn; calls made elsewhere have none, and
                 * Google documents this value for history from other models. */
                if (!signed_call++)
                    json_object_set_new(part, "thoughtSignature", json_string("skip_thought_signature_validator"));
                json_array_append_new(parts, part);
            } else if (!strcmp(type, "tool_result")) {
                const char *id = sl_tr_str(b, "tool_use_id");
                const char *name = id ? sl_tr_str(names, id) : NULL;
                json_t *rc = json_object_get(b, "content");
                char *t = rc ? sl_tr_content_text(rc, "\n") : strdup("");
                int is_err = json_is_true(json_object_get(b, "is_error"));
                json_array_append_new(parts, json_pack("{s:{s:s,s:{s:s}}}", "functionResponse", "name",
                                                       name ? name : (id ? id : ""), "response",
                                                       is_err ? "error" : "output", t ? t : ""));
                free(t);
            }
        }
        json_decref(blocks);
        if (json_array_size(parts) == 0) {
            json_decref(parts);
            continue;
        }
        size_t n = json_array_size(contents);
        json_t *last = n ? json_array_get(contents, n - 1) : NULL;
        const char *grole = model ? "model" : "user";
        if (last && !strcmp(sl_tr_str(last, "role"), grole)) {
            json_array_extend(json_object_get(last, "parts"), parts);
            json_decref(parts);
        } else {
            json_array_append_new(contents, json_pack("{s:s,s:o}", "role", grole, "parts", parts));
        }
    }
    json_decref(names);
    json_object_set_new(o, "contents", contents);

    json_t *tools = json_array();
    json_t *t;
    json_array_foreach(json_object_get(ir, "tools"), i, t) {
        json_t *schema = json_object_get(t, "input_schema");
        const char *name = sl_tr_nstr(t, "name");
        if (!name || !json_is_object(schema))
            continue;
        json_t *fd = json_pack("{s:s}", "name", name);
        const char *d = sl_tr_str(t, "description");
        if (d)
            json_object_set_new(fd, "description", json_string(d));
        json_object_set_new(fd, "parametersJsonSchema", gemini_schema(schema));
        json_array_append_new(tools, fd);
    }
    int have_tools = json_array_size(tools) > 0;
    if (have_tools)
        json_object_set_new(o, "tools", json_pack("[{s:o}]", "functionDeclarations", tools));
    else
        json_decref(tools);
    json_t *tc = json_object_get(ir, "tool_choice");
    const char *tct = sl_tr_str(tc, "type");
    if (have_tools && tct) {
        json_t *fcc = NULL;
        if (!strcmp(tct, "auto"))
            fcc = json_pack("{s:s}", "mode", "AUTO");
        else if (!strcmp(tct, "any"))
            fcc = json_pack("{s:s}", "mode", "ANY");
        else if (!strcmp(tct, "none"))
            fcc = json_pack("{s:s}", "mode", "NONE");
        else if (!strcmp(tct, "tool") && sl_tr_str(tc, "name"))
            fcc = json_pack("{s:s,s:[s]}", "mode", "ANY", "allowedFunctionNames", sl_tr_str(tc, "name"));
        if (fcc)
            json_object_set_new(o, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
    }

    json_t *gc = json_object();
    static const field_map gemini_fields[] = {
        {"max_tokens", NULL, "maxOutputTokens", F_INT},
        {"temperature", NULL, "temperature", F_NUM},
        {"top_p", NULL, "topP", F_NUM},
        {"top_k", NULL, "topK", F_INT},
        {"stop_sequences", NULL, "stopSequences", F_LIST},
        {"_sl_seed", NULL, "seed", F_INT},
        {"_sl_presence_penalty", NULL, "presencePenalty", F_NUM},
        {"_sl_frequency_penalty", NULL, "frequencyPenalty", F_NUM},
    };
    copy_fields(ir, gc, gemini_fields, sizeof gemini_fields / sizeof *gemini_fields);
    json_t *rf = json_object_get(ir, "_sl_response_format");
    const char *rft = sl_tr_str(rf, "type");
    if (rft && (!strcmp(rft, "json_object") || !strcmp(rft, "json_schema"))) {
        json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
        if (json_is_object(schema))
            json_object_set_new(gc, "responseJsonSchema", gemini_schema(schema));
    }
    json_t *th = json_object_get(ir, "thinking");
    const char *tht = sl_tr_str(th, "type");
    if (tht && !strcmp(tht, "enabled"))
        json_object_set_new(gc, "thinkingConfig",
                            json_pack("{s:I}", "thinkingBudget", (json_int_t)sl_tr_int(th, "budget_tokens", 8192)));
    if (json_object_size(gc))
        json_object_set_new(o, "generationConfig", gc);
    else
        json_decref(gc);
    return o;
}

/* ---- entry points ------------------------------------------------------ */

static char *dump(json_t *o, char *err, size_t errlen)
{
    char *s = sl_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!s)
        snprintf(err, errlen, "out of memory");
    return s;
}

char *sl_translate_request(sl_proto from, sl_proto to, json_t *req, const char *upstream_model,
                           int stream, char *err, size_t errlen)
{
    if (!json_is_object(req)) {
        snprintf(err, errlen, "request body must be a JSON object");
        return NULL;
    }
    if (from == to) {
        /* Same protocol: the client's request as sent, model renamed. */
        json_t *o = json_deep_copy(req);
        if (to == SL_PROTO_GEMINI) {
            json_object_del(o, "model");
        } else {
            json_object_set_new(o, "model", json_string(upstream_model));
            if (stream)
                json_object_set_new(o, "stream", json_true());
        }
        if (to == SL_PROTO_OPENAI && stream) {
            json_t *so = json_object_get(o, "stream_options");
            if (!json_is_object(so)) {
                so = json_object();
                json_object_set_new(o, "stream_options", so);
            }
            json_object_set_new(so, "include_usage", json_true());
        }
        return dump(o, err, errlen);
    }
    json_t *ir;
    if (from == SL_PROTO_ANTHROPIC) {
        json_t *msgs = json_object_get(req, "messages");
        if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
            snprintf(err, errlen, "'messages' is required and must be a non-empty array");
            return NULL;
        }
        ir = json_incref(req);
    } else {
        ir = json_object();
        int rc = from == SL_PROTO_OPENAI ? openai_to_ir(req, ir, err, errlen)
                                         : gemini_to_ir(req, ir, err, errlen);
        if (rc != 0) {
            json_decref(ir);
            return NULL;
        }
    }
    json_t *o = to == SL_PROTO_ANTHROPIC ? ir_to_anthropic(ir, upstream_model, stream)
                : to == SL_PROTO_OPENAI  ? ir_to_openai(ir, upstream_model, stream)
                                         : ir_to_gemini(ir);
    json_decref(ir);
    return dump(o, err, errlen);
}

/* ---- count_tokens estimate ------------------------------------------- */

static void estimate_walk(json_t *v, long *bytes, long *media)
{
    if (json_is_string(v)) {
        *bytes += (long)json_string_length(v);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            estimate_walk(e, bytes, media);
    } else if (json_is_object(v)) {
        const char *type = sl_tr_str(v, "type");
        if (type && (!strcmp(type, "image") || !strcmp(type, "document"))) {
            (*media)++; /* the payload's size says little about its tokens */
            return;
        }
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e) {
            if (!strcmp(k, "cache_control") || !strcmp(k, "type") || !strcmp(k, "id") ||
                !strcmp(k, "tool_use_id"))
                continue;
            estimate_walk(e, bytes, media);
        }
    } else if (json_is_number(v)) {
        *bytes += 2;
    }
}

long sl_translate_estimate_tokens(json_t *req)
{
    long bytes = 0, media = 0;
    estimate_walk(json_object_get(req, "system"), &bytes, &media);
    estimate_walk(json_object_get(req, "messages"), &bytes, &media);
    long tools = (long)json_array_size(json_object_get(req, "tools"));
    char *ts = tools ? sl_json_dumps(json_object_get(req, "tools"), JSON_COMPACT) : NULL;
    if (ts)
        bytes += (long)strlen(ts);
    free(ts);
    long msgs = (long)json_array_size(json_object_get(req, "messages"));
    /* ~4 bytes per token for English and code; images cost ~1.5k tokens at
     * typical sizes; each turn and tool carries some framing. */
    return (bytes + 3) / 4 + media * 1500 + msgs * 4 + tools * 50;
}
