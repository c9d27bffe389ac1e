/*
 * Gemini generateContent requests to and from the neutral form (see
 * request.c): contents of parts, OpenAPI-style schemas with capitalised
 * types, and function calls and responses matched by name, since Gemini
 * has no call ids, so ids are made up on the way in and mapped back to
 * names on the way out.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

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

long sl_tr_gemini_thinking(json_t *gc)
{
    json_t *th = gemini_config_get(gc, "thinkingConfig", "thinking_config");
    if (!json_is_object(th))
        return 0;
    long b = sl_tr_int(th, "thinkingBudget", sl_tr_int(th, "thinking_budget", 0));
    const char *level = sl_tr_str(th, "thinkingLevel");
    if (b < 0)
        b = 8192; /* dynamic: the model decides; pick the middle */
    else if (level)
        b = sl_tr_effort_budget(level);
    if (b > 0 && b < 1024)
        b = 1024;
    return b;
}

json_t *sl_tr_gemini_config(json_t *req)
{
    return gemini_config_get(req, "generationConfig", "generation_config");
}

int sl_tr_gemini_to_ir(json_t *req, json_t *ir, char *err, size_t errlen)
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
            json_array_append_new(system, sl_tr_text_block(t));
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
                    json_array_append_new(blocks, sl_tr_text_block(t));
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
        sl_tr_ir_push(out, model ? "assistant" : "user", blocks);
    }
    json_decref(pending);
    json_object_set_new(ir, "messages", out);

    json_t *gc = sl_tr_gemini_config(req);
    static const sl_tr_field_map from_gemini[] = {
        {"maxOutputTokens", "max_output_tokens", "max_tokens", SL_TR_F_INT},
        {"temperature", NULL, "temperature", SL_TR_F_NUM},
        {"topP", "top_p", "top_p", SL_TR_F_NUM},
        {"topK", "top_k", "top_k", SL_TR_F_INT},
        {"stopSequences", "stop_sequences", "stop_sequences", SL_TR_F_LIST},
        {"seed", NULL, "_sl_seed", SL_TR_F_INT},
        {"presencePenalty", "presence_penalty", "_sl_presence_penalty", SL_TR_F_NUM},
        {"frequencyPenalty", "frequency_penalty", "_sl_frequency_penalty", SL_TR_F_NUM},
    };
    sl_tr_copy_fields(gc, ir, from_gemini, sizeof from_gemini / sizeof *from_gemini);
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
    long b = sl_tr_gemini_thinking(gc);
    if (b > 0)
        json_object_set_new(ir, "thinking", json_pack("{s:s,s:I}", "type", "enabled", "budget_tokens",
                                                       (json_int_t)b));

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

/* ---- neutral -> Gemini ------------------------------------------------- */

static json_t *blocks_of(json_t *content)
{
    if (json_is_array(content))
        return json_incref(content);
    json_t *a = json_array();
    if (json_is_string(content))
        json_array_append_new(a, sl_tr_text_block(json_string_value(content)));
    return a;
}

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

json_t *sl_tr_ir_to_gemini(json_t *ir)
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
    static const sl_tr_field_map gemini_fields[] = {
        {"max_tokens", NULL, "maxOutputTokens", SL_TR_F_INT},
        {"temperature", NULL, "temperature", SL_TR_F_NUM},
        {"top_p", NULL, "topP", SL_TR_F_NUM},
        {"top_k", NULL, "topK", SL_TR_F_INT},
        {"stop_sequences", NULL, "stopSequences", SL_TR_F_LIST},
        {"_sl_seed", NULL, "seed", SL_TR_F_INT},
        {"_sl_presence_penalty", NULL, "presencePenalty", SL_TR_F_NUM},
        {"_sl_frequency_penalty", NULL, "frequencyPenalty", SL_TR_F_NUM},
    };
    sl_tr_copy_fields(ir, gc, gemini_fields, sizeof gemini_fields / sizeof *gemini_fields);
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
