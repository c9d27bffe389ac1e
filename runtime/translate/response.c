/*
 * Non-stream responses and error bodies. A 2xx body is read into the
 * neutral form (an Anthropic Message: typed content blocks, stop_reason,
 * usage with cache counts apart) and written in the client's protocol.
 * Errors keep the upstream's message and map its status and type onto the
 * class the client's SDK raises for the same condition (overloaded, rate
 * limited, auth, invalid request, not found).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

/* ---- upstream body -> neutral ---------------------------------------- */

static json_t *openai_to_ir(json_t *r, char *err, size_t errlen)
{
    json_t *choices = json_object_get(r, "choices");
    json_t *ch = json_array_get(choices, 0);
    json_t *msg = json_object_get(ch, "message");
    if (!json_is_object(msg)) {
        snprintf(err, errlen, "upstream response has no choices[0].message");
        return NULL;
    }
    json_t *content = json_array();
    const char *reasoning = sl_tr_nstr(msg, "reasoning_content");
    if (!reasoning)
        reasoning = sl_tr_nstr(msg, "reasoning");
    if (reasoning)
        json_array_append_new(content, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", reasoning,
                                                 "signature", ""));
    const char *text = sl_tr_nstr(msg, "content");
    const char *refusal = sl_tr_nstr(msg, "refusal");
    if (text)
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", text));
    else if (refusal)
        json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", refusal));
    size_t i;
    json_t *tc;
    json_array_foreach(json_object_get(msg, "tool_calls"), i, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *args = sl_tr_str(fn, "arguments");
        const char *id = sl_tr_str(tc, "id");
        const char *name = sl_tr_str(fn, "name");
        json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id ? id : "",
                                                 "name", name ? name : "", "input",
                                                 sl_tr_args_object(args ? args : "", args ? strlen(args) : 0)));
    }
    const char *finish = sl_tr_str(ch, "finish_reason");
    const char *stop = refusal && !text ? "refusal" : sl_tr_stop_from_openai(finish);
    sl_usage_counts u = {0};
    sl_tr_usage_from_openai(json_object_get(r, "usage"), &u);
    const char *id = sl_tr_nstr(r, "id");
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", id ? id : "msg_sluice", "type", "message", "role",
                     "assistant", "content", content, "stop_reason", stop, "stop_sequence", "usage",
                     sl_tr_usage_to_anthropic(&u));
}

static json_t *anthropic_to_ir(json_t *r, char *err, size_t errlen)
{
    if (!json_is_array(json_object_get(r, "content"))) {
        snprintf(err, errlen, "upstream response has no content array");
        return NULL;
    }
    return json_incref(r);
}

static json_t *gemini_to_ir(json_t *r, const char *body, size_t len, char *err, size_t errlen)
{
    json_t *cand = json_array_get(json_object_get(r, "candidates"), 0);
    json_t *pf = json_object_get(r, "promptFeedback");
    if (!json_is_object(cand) && !json_is_object(pf)) {
        snprintf(err, errlen, "upstream response has no candidates");
        return NULL;
    }
    const char *rid = sl_tr_nstr(r, "responseId");
    char idbuf[64];
    if (rid)
        snprintf(idbuf, sizeof idbuf, "%s", rid);
    else
        sl_tr_make_id(idbuf, sizeof idbuf, "msg_", body, len, 0);
    json_t *content = json_array();
    int saw_tool = 0;
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        const char *t = sl_tr_str(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        if (t && *t) {
            if (json_is_true(json_object_get(p, "thought")))
                json_array_append_new(content, json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", t,
                                                         "signature", ""));
            else
                json_array_append_new(content, json_pack("{s:s,s:s}", "type", "text", "text", t));
        } else if (json_is_object(fc)) {
            char cid[64];
            const char *given = sl_tr_nstr(fc, "id");
            if (given)
                snprintf(cid, sizeof cid, "%s", given);
            else
                sl_tr_make_id(cid, sizeof cid, "call_", idbuf, strlen(idbuf), (long)i);
            json_t *args = json_object_get(fc, "args");
            json_array_append_new(content, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", cid, "name",
                                                     sl_tr_str(fc, "name") ? sl_tr_str(fc, "name") : "", "input",
                                                     json_is_object(args) ? json_deep_copy(args) : json_object()));
            saw_tool = 1;
        }
    }
    const char *stop = json_is_object(cand) ? sl_tr_stop_from_gemini(sl_tr_str(cand, "finishReason"), saw_tool)
                                            : "refusal"; /* promptFeedback.blockReason */
    sl_usage_counts u = {0};
    sl_tr_usage_from_gemini(json_object_get(r, "usageMetadata"), &u);
    return json_pack("{s:s,s:s,s:s,s:o,s:s,s:n,s:o}", "id", idbuf, "type", "message", "role", "assistant",
                     "content", content, "stop_reason", stop, "stop_sequence", "usage",
                     sl_tr_usage_to_anthropic(&u));
}

/* ---- neutral -> client body ------------------------------------------- */

static json_t *ir_to_openai(json_t *ir, const char *model)
{
    json_t *msg = json_pack("{s:s}", "role", "assistant");
    char *text = sl_tr_content_text(json_object_get(ir, "content"), "");
    json_object_set_new(msg, "content", text && *text ? json_string(text) : json_null());
    free(text);
    json_t *calls = json_array();
    size_t i;
    json_t *b;
    char *reasoning = NULL;
    json_array_foreach(json_object_get(ir, "content"), i, b) {
        const char *type = sl_tr_str(b, "type");
        if (type && !strcmp(type, "tool_use")) {
            json_t *input = json_object_get(b, "input");
            char *args = input ? sl_json_dumps(input, JSON_COMPACT) : NULL;
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id",
                                                   sl_tr_str(b, "id") ? sl_tr_str(b, "id") : "", "type", "function",
                                                   "function", "name", sl_tr_str(b, "name") ? sl_tr_str(b, "name") : "",
                                                   "arguments", args ? args : "{}"));
            free(args);
        } else if (type && !strcmp(type, "thinking") && sl_tr_nstr(b, "thinking") && !reasoning) {
            reasoning = strdup(sl_tr_str(b, "thinking"));
        }
    }
    if (json_array_size(calls))
        json_object_set_new(msg, "tool_calls", calls);
    else
        json_decref(calls);
    if (reasoning)
        json_object_set_new(msg, "reasoning_content", json_string(reasoning));
    free(reasoning);
    sl_usage_counts u = {0};
    sl_tr_usage_from_anthropic(json_object_get(ir, "usage"), &u);
    const char *id = sl_tr_nstr(ir, "id");
    return json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id ? id : "chatcmpl-sluice", "object",
                     "chat.completion", "created", (json_int_t)time(NULL), "model", model, "choices", "index", 0,
                     "message", msg, "logprobs", "finish_reason",
                     sl_tr_stop_to_openai(sl_tr_str(ir, "stop_reason")), "usage", sl_tr_usage_to_openai(&u));
}

static json_t *ir_to_anthropic(json_t *ir, const char *model)
{
    json_t *o = json_deep_copy(ir);
    /* Reasoning from other providers has no signature, and the Messages API
     * rejects unsigned thinking blocks when the client sends the turn back
     * (to an Anthropic target of a mixed route): leave it out. */
    json_t *content = json_object_get(o, "content");
    for (size_t i = json_array_size(content); i-- > 0;) {
        json_t *b = json_array_get(content, i);
        const char *type = sl_tr_str(b, "type");
        if (type && !strcmp(type, "thinking") && !sl_tr_nstr(b, "signature"))
            json_array_remove(content, i);
    }
    json_object_set_new(o, "model", json_string(model));
    if (!json_object_get(o, "stop_sequence"))
        json_object_set_new(o, "stop_sequence", json_null());
    return o;
}

static json_t *ir_to_gemini(json_t *ir, const char *model)
{
    json_t *parts = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(json_object_get(ir, "content"), i, b) {
        const char *type = sl_tr_str(b, "type");
        if (!type)
            continue;
        if (!strcmp(type, "text") && sl_tr_str(b, "text"))
            json_array_append_new(parts, json_pack("{s:s}", "text", sl_tr_str(b, "text")));
        else if (!strcmp(type, "thinking") && sl_tr_nstr(b, "thinking"))
            json_array_append_new(parts, json_pack("{s:s,s:b}", "text", sl_tr_str(b, "thinking"), "thought", 1));
        else if (!strcmp(type, "tool_use")) {
            json_t *input = json_object_get(b, "input");
            json_array_append_new(parts, json_pack("{s:{s:s,s:o}}", "functionCall", "name",
                                                   sl_tr_str(b, "name") ? sl_tr_str(b, "name") : "", "args",
                                                   json_is_object(input) ? json_incref(input) : json_object()));
        }
    }
    sl_usage_counts u = {0};
    sl_tr_usage_from_anthropic(json_object_get(ir, "usage"), &u);
    json_t *o = json_pack("{s:[{s:{s:s,s:o},s:s,s:i}],s:o,s:s}", "candidates", "content", "role", "model", "parts",
                          parts, "finishReason", sl_tr_stop_to_gemini(sl_tr_str(ir, "stop_reason")), "index", 0,
                          "usageMetadata", sl_tr_usage_to_gemini(&u), "modelVersion", model);
    if (sl_tr_nstr(ir, "id"))
        json_object_set_new(o, "responseId", json_string(sl_tr_str(ir, "id")));
    return o;
}

char *sl_translate_response(sl_proto up, sl_proto client, const char *body, size_t len,
                            const char *client_model, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *r = json_loadb(body, len, 0, &jerr);
    if (!json_is_object(r)) {
        snprintf(err, errlen, "upstream response is not a JSON object%s%s", r ? "" : ": ", r ? "" : jerr.text);
        json_decref(r);
        return NULL;
    }
    if (up == SL_PROTO_RESPONSES) {
        json_decref(r);
        snprintf(err, errlen, "no provider kind speaks the Responses API to sluice");
        return NULL;
    }
    /* Read apart from the neutral form, which has no reasoning count. */
    sl_usage_counts u = {0};
    sl_translate_usage_object(json_object_get(r, up == SL_PROTO_GEMINI ? "usageMetadata" : "usage"), &u);
    json_t *ir = up == SL_PROTO_OPENAI      ? openai_to_ir(r, err, errlen)
                 : up == SL_PROTO_ANTHROPIC ? anthropic_to_ir(r, err, errlen)
                                            : gemini_to_ir(r, body, len, err, errlen);
    json_decref(r);
    if (!ir)
        return NULL;
    json_t *o = client == SL_PROTO_OPENAI      ? ir_to_openai(ir, client_model)
                : client == SL_PROTO_ANTHROPIC ? ir_to_anthropic(ir, client_model)
                : client == SL_PROTO_RESPONSES ? sl_tr_ir_to_responses(ir, &u, client_model)
                                               : ir_to_gemini(ir, client_model);
    json_decref(ir);
    char *s = o ? sl_json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!s)
        snprintf(err, errlen, "out of memory");
    return s;
}

int sl_translate_usage(sl_proto p, const char *body, size_t len, sl_usage_counts *out)
{
    memset(out, 0, sizeof *out);
    json_t *r = json_loadb(body, len, 0, NULL);
    if (!r)
        return -1;
    if (p == SL_PROTO_OPENAI)
        sl_tr_usage_from_openai(json_object_get(r, "usage"), out);
    else if (p == SL_PROTO_ANTHROPIC)
        sl_tr_usage_from_anthropic(json_object_get(r, "usage"), out);
    else if (p == SL_PROTO_RESPONSES)
        sl_tr_usage_from_responses(json_object_get(r, "usage"), out);
    else
        sl_tr_usage_from_gemini(json_object_get(r, "usageMetadata"), out);
    json_decref(r);
    return out->have ? 0 : -1;
}

/* ---- errors ------------------------------------------------------------ */

/* The condition an error stands for, independent of protocol. */
typedef enum err_class {
    EC_INVALID, EC_AUTH, EC_PERMISSION, EC_NOT_FOUND, EC_TOO_LARGE, EC_RATE, EC_OVERLOADED,
    EC_TIMEOUT, EC_SERVER,
} err_class;

static err_class class_of(sl_proto up, int status, const char *type)
{
    if (type) {
        if (!strcmp(type, "overloaded_error") || !strcmp(type, "UNAVAILABLE"))
            return EC_OVERLOADED;
        if (!strcmp(type, "rate_limit_error") || !strcmp(type, "RESOURCE_EXHAUSTED") ||
            !strcmp(type, "rate_limit_exceeded") || !strcmp(type, "insufficient_quota"))
            return EC_RATE;
        if (!strcmp(type, "authentication_error") || !strcmp(type, "UNAUTHENTICATED") ||
            !strcmp(type, "invalid_api_key"))
            return EC_AUTH;
        if (!strcmp(type, "permission_error") || !strcmp(type, "PERMISSION_DENIED"))
            return EC_PERMISSION;
        if (!strcmp(type, "not_found_error") || !strcmp(type, "NOT_FOUND") || !strcmp(type, "model_not_found"))
            return EC_NOT_FOUND;
        if (!strcmp(type, "request_too_large"))
            return EC_TOO_LARGE;
        if (!strcmp(type, "DEADLINE_EXCEEDED") || !strcmp(type, "timeout_error"))
            return EC_TIMEOUT;
    }
    switch (status) {
    case 401: return EC_AUTH;
    case 403: return EC_PERMISSION;
    case 404: return EC_NOT_FOUND;
    case 413: return EC_TOO_LARGE;
    case 429: return EC_RATE;
    case 503:
    case 529: return EC_OVERLOADED;
    case 504: return EC_TIMEOUT;
    default: return status >= 500 ? EC_SERVER : EC_INVALID;
    }
}

static int class_status(err_class c, sl_proto client, int status)
{
    switch (c) {
    case EC_INVALID: return status >= 400 && status < 500 && status != 422 ? status : 400;
    case EC_AUTH: return 401;
    case EC_PERMISSION: return 403;
    case EC_NOT_FOUND: return 404;
    case EC_TOO_LARGE: return 413;
    case EC_RATE: return 429;
    case EC_OVERLOADED: return client == SL_PROTO_ANTHROPIC ? 529 : 503;
    case EC_TIMEOUT: return 504;
    case EC_SERVER: return status >= 500 && status < 600 && status != 529 && status != 503 ? status : 500;
    }
    return 500;
}

static const char *anthropic_type(err_class c)
{
    static const char *t[] = {"invalid_request_error", "authentication_error", "permission_error",
                              "not_found_error", "request_too_large", "rate_limit_error",
                              "overloaded_error", "timeout_error", "api_error"};
    return t[c];
}

static const char *openai_type(err_class c)
{
    static const char *t[] = {"invalid_request_error", "authentication_error", "permission_error",
                              "not_found_error", "invalid_request_error", "rate_limit_error",
                              "server_error", "server_error", "server_error"};
    return t[c];
}

static const char *gemini_status(err_class c)
{
    static const char *t[] = {"INVALID_ARGUMENT", "UNAUTHENTICATED", "PERMISSION_DENIED", "NOT_FOUND",
                              "INVALID_ARGUMENT", "RESOURCE_EXHAUSTED", "UNAVAILABLE", "DEADLINE_EXCEEDED",
                              "INTERNAL"};
    return t[c];
}

/* A context overflow reads "prompt is too long" on Anthropic, which is
 * what Claude Code watches for before compacting the conversation. */
static int context_overflow(const char *type, const char *code, const char *msg)
{
    if (code && !strcmp(code, "context_length_exceeded"))
        return 1;
    if (type && !strcmp(type, "context_length_exceeded"))
        return 1;
    return msg && (strstr(msg, "maximum context length") || strstr(msg, "input token count") ||
                   strstr(msg, "exceeds the maximum number of tokens"));
}

char *sl_translate_error(sl_proto up, sl_proto client, int status, const char *body, size_t len,
                         int *out_status)
{
    json_t *r = json_loadb(body, len, 0, NULL);
    if (json_is_array(r)) { /* Gemini sometimes wraps the error in a list */
        json_t *first = json_incref(json_array_get(r, 0));
        json_decref(r);
        r = first;
    }
    json_t *e = json_object_get(r, "error");
    if (up == client && json_is_object(e)) {
        json_decref(r);
        *out_status = status;
        char *s = malloc(len + 1);
        if (s) {
            memcpy(s, body, len);
            s[len] = '\0';
        }
        return s;
    }
    const char *msg = json_is_string(e) ? json_string_value(e) : sl_tr_nstr(e, "message");
    if (!msg)
        msg = sl_tr_nstr(r, "message");
    const char *type = sl_tr_nstr(e, "type");
    if (up == SL_PROTO_GEMINI)
        type = sl_tr_nstr(e, "status");
    const char *code = sl_tr_nstr(e, "code");
    char fallback[600];
    if (!msg) {
        /* Not an error document (a proxy's HTML page, plain text): say what
         * we got without pasting kilobytes of markup. */
        size_t n = len > 200 ? 200 : len;
        int printable = 1;
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)body[i] < 0x20 && body[i] != '\n' && body[i] != '\t')
                printable = 0;
        if (n && printable)
            snprintf(fallback, sizeof fallback, "upstream %s returned HTTP %d: %.*s", sl_proto_name(up), status,
                     (int)n, body);
        else
            snprintf(fallback, sizeof fallback, "upstream %s returned HTTP %d", sl_proto_name(up), status);
        msg = fallback;
    }
    err_class c = class_of(up, status, type ? type : code);
    int st = class_status(c, client, status);
    *out_status = st;
    json_t *o;
    if (client == SL_PROTO_ANTHROPIC) {
        char buf[1024];
        const char *m = msg;
        if (c == EC_INVALID && context_overflow(type, code, msg)) {
            snprintf(buf, sizeof buf, "prompt is too long: %s", msg);
            m = buf;
        }
        o = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", anthropic_type(c), "message", m);
    } else if (client == SL_PROTO_OPENAI || client == SL_PROTO_RESPONSES) {
        const char *ocode = context_overflow(type, code, msg) ? "context_length_exceeded" : type ? type : code;
        o = json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", msg, "type", openai_type(c), "param", "code",
                      ocode);
    } else {
        o = json_pack("{s:{s:i,s:s,s:s}}", "error", "code", st, "message", msg, "status", gemini_status(c));
    }
    json_decref(r);
    char *s = sl_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
