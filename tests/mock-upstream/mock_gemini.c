/* mock-upstream: the Gemini generateContent / streamGenerateContent
 * (alt=sse) answers: candidates with text or a whole functionCall part,
 * usageMetadata, modelVersion, and the text of the last user turn that
 * mock_api.c reads directives from. */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Gemini ----------------------------------------------------------- */

/* The text parts of the last user turn of a generateContent request. */
void mu_gemini_user_text(json_t *contents, mu_buf *out)
{
    for (size_t i = json_array_size(contents); i-- > 0;) {
        json_t *turn = json_array_get(contents, i);
        const char *role = json_string_value(json_object_get(turn, "role"));
        if (role && strcmp(role, "user"))
            continue;
        size_t k;
        json_t *part;
        json_array_foreach(json_object_get(turn, "parts"), k, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t)) {
                if (out->len)
                    mu_buf_str(out, "\n");
                mu_buf_str(out, json_string_value(t));
            }
        }
        return;
    }
}

static json_t *gm_usage(const ctx *c, long long out)
{
    long long in = mu_input_tokens(c) + c->cache_read;
    json_t *u = json_pack("{s:I,s:I,s:I}", "promptTokenCount", in, "candidatesTokenCount", out,
                          "totalTokenCount", in + out);
    if (c->cache_read)
        json_object_set_new(u, "cachedContentTokenCount", json_integer(c->cache_read));
    return u;
}

static json_t *gm_chunk(const ctx *c, const char *id, const char *text, const char *finish)
{
    json_t *cand = json_pack("{s:{s:[{s:s}],s:s},s:i}", "content", "parts", "text", text, "role",
                             "model", "index", 0);
    if (finish)
        json_object_set_new(cand, "finishReason", json_string(finish));
    return json_pack("{s:[o],s:s,s:s}", "candidates", cand, "modelVersion", c->model,
                     "responseId", id);
}

/* The function declaration to call, as for the other protocols: when the
 * request declares functions, its last turn is the user's own (no
 * functionResponse part) and toolConfig does not say NONE; the tool=
 * directive's, else the single allowedFunctionNames entry, else the first.
 * *err set when tool= names no declaration. */
static json_t *gemini_pick_tool(ctx *c, json_t *contents, int *err)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    size_t k;
    json_t *part;
    json_array_foreach(json_object_get(last, "parts"), k, part) if (json_object_get(part, "functionResponse")) return NULL;
    json_t *fcc = json_object_get(json_object_get(c->body, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    if (c->no_tool || (mode && !strcmp(mode, "NONE")))
        return NULL;
    json_t *allowed = json_object_get(fcc, "allowedFunctionNames");
    const char *want = c->tool[0] ? c->tool
                       : json_array_size(allowed) == 1 ? json_string_value(json_array_get(allowed, 0))
                                                       : NULL;
    size_t i, j;
    json_t *t, *fd;
    json_t *any = NULL;
    json_array_foreach(json_object_get(c->body, "tools"), i, t) {
        json_array_foreach(json_object_get(t, "functionDeclarations"), j, fd) {
            const char *n = json_string_value(json_object_get(fd, "name"));
            if (n && (!want || !strcmp(n, want)))
                return fd;
            any = any ? any : fd;
        }
    }
    *err = any != NULL && c->tool[0];
    return NULL;
}

/* "The tool returned: ..." quotes the last functionResponse's response. */
static char *gemini_tool_result(json_t *contents)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    size_t k;
    json_t *part;
    json_array_foreach(json_object_get(last, "parts"), k, part) {
        json_t *fr = json_object_get(part, "functionResponse");
        if (fr)
            return mu_dump(json_object_get(fr, "response"));
    }
    return NULL;
}

/* generateContent, or streamGenerateContent with alt=sse (the only stream
 * framing sluice asks for): text or function-call answers, the last chunk
 * of a stream carrying finishReason and usageMetadata. A function call
 * comes whole in one part, streamed or not, as Gemini sends it. */
void mu_gemini_generate(ctx *c, int stream)
{
    json_t *contents = json_object_get(c->body, "contents");
    if (!json_is_array(contents) || !json_array_size(contents)) {
        mu_send_error(c, 400, "* GenerateContentRequest.contents: contents is not specified");
        return;
    }
    json_t *gc = json_object_get(c->body, "generationConfig");
    json_t *mo = json_object_get(gc, "maxOutputTokens");
    if (mo && (!json_is_integer(mo) || json_integer_value(mo) < 1)) {
        mu_send_error(c, 400, "generationConfig.maxOutputTokens must be a positive integer");
        return;
    }
    long long max_tokens = json_integer_value(mo);
    mu_set_call(c, "stream", json_boolean(stream));
    int bad_tool = 0;
    json_t *fd = gemini_pick_tool(c, contents, &bad_tool);
    if (bad_tool) {
        char msg[200];
        snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such function", c->tool);
        mu_send_error(c, 400, msg);
        return;
    }
    char id[48];
    mu_new_id(id, sizeof id, "mockresp");
    answer a = {0};
    if (fd) {
        json_t *schema = json_object_get(fd, "parametersJsonSchema");
        mu_tool_answer(c, &a, json_string_value(json_object_get(fd, "name")),
                    schema ? schema : json_object_get(fd, "parameters"), 0);
        json_t *resp = json_pack("{s:[{s:{s:[{s:{s:s,s:O}}],s:s},s:s,s:i}],s:s,s:s}", "candidates",
                                 "content", "parts", "functionCall", "name", a.tool_name, "args", a.tool_input,
                                 "role", "model", "finishReason", "STOP", "index", 0, "modelVersion", c->model,
                                 "responseId", id);
        mu_put_usage(c, resp, "usageMetadata", gm_usage(c, a.out_tokens));
        if (stream) {
            evlist l = {0};
            mu_ev_add(&l, 0, NULL, resp);
            mu_send_stream(c, &l);
        } else {
            mu_send_json_wait(c, 200, resp, 0);
        }
        mu_answer_free(&a);
        return;
    }
    char *result = gemini_tool_result(contents);
    mu_text_answer(c, &a, result, max_tokens, stream);
    free(result);
    const char *finish = a.truncated ? "MAX_TOKENS" : "STOP";
    if (!stream) {
        json_t *resp = gm_chunk(c, id, a.text, finish);
        mu_put_usage(c, resp, "usageMetadata", gm_usage(c, a.out_tokens));
        mu_send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }
    evlist l = {0};
    for (int i = 0; i < a.npieces; i++) {
        int last = i == a.npieces - 1;
        json_t *ch = gm_chunk(c, id, a.pieces[i], last ? finish : NULL);
        if (last)
            mu_put_usage(c, ch, "usageMetadata", gm_usage(c, a.out_tokens));
        mu_ev_add(&l, i ? c->interval_ms : 0, NULL, ch);
    }
    mu_send_stream(c, &l);
    mu_answer_free(&a);
}
