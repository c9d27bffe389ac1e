/*
 * Request translation. Every client request is first read into a neutral
 * form shaped like an Anthropic Messages request (the richest of the three:
 * system blocks with cache_control, typed content blocks, tool_use and
 * tool_result with ids), then written out in the upstream's protocol.
 * Parameters Anthropic lacks but Gemini and OpenAI share (seed, penalties,
 * response_format) ride along in "_sl_" members that only those writers
 * read. Anything with no counterpart is dropped, never an error: a client
 * should not fail because its gateway routed it elsewhere.
 *
 * This file holds what every direction shares: the neutral form's helpers,
 * the Anthropic side (the neutral form is Anthropic's, so reading it is a
 * check and writing it a few adjustments), the entry point and the
 * count_tokens estimate. The OpenAI and Gemini readers and writers are in
 * request_openai.c and request_gemini.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/fit.h"
#include "translate/translate_internal.h"

#include "core/sat.h"

#define DEFAULT_MAX_TOKENS 4096

/* ---- the neutral form -------------------------------------------------- */

long sl_tr_effort_budget(const char *e)
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

const char *sl_tr_budget_effort(long b)
{
    if (b < 4096)
        return "low";
    if (b < 12288)
        return "medium";
    return "high";
}

json_t *sl_tr_text_block(const char *t)
{
    return json_pack("{s:s,s:s}", "type", "text", "text", t);
}

/* Merging keeps the turns alternating, as Anthropic wants, and makes
 * OpenAI's tool messages (one per result) a single user turn. */
void sl_tr_ir_push(json_t *msgs, const char *role, json_t *content)
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
            json_array_append_new(arr, sl_tr_text_block(json_string_value(lc)));
            json_object_set_new(last, "content", arr);
            lc = arr;
        }
        if (json_is_string(content))
            json_array_append_new(lc, sl_tr_text_block(json_string_value(content)));
        else
            json_array_extend(lc, content);
        json_decref(content);
        return;
    }
    json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", role, "content", content));
}

void sl_tr_copy_fields(json_t *src, json_t *dst, const sl_tr_field_map *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        json_t *v = json_object_get(src, m[i].from);
        if (!v && m[i].alt)
            v = json_object_get(src, m[i].alt);
        int ok = m[i].kind == SL_TR_F_INT    ? json_is_integer(v)
                 : m[i].kind == SL_TR_F_NUM  ? json_is_number(v)
                 : m[i].kind == SL_TR_F_LIST ? json_is_array(v) && json_array_size(v) > 0
                                             : json_is_object(v);
        if (ok)
            json_object_set(dst, m[i].to, v);
    }
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
    return sl_translate_request_fit(from, to, req, upstream_model, stream, 0, 0, 0, err, errlen);
}

char *sl_translate_request_fit(sl_proto from, sl_proto to, json_t *req, const char *upstream_model,
                               int stream, uint32_t caps, uint32_t max_output, uint32_t quirks,
                               char *err, size_t errlen)
{
    if (!json_is_object(req)) {
        snprintf(err, errlen, "request body must be a JSON object");
        return NULL;
    }
    if (to == SL_PROTO_RESPONSES && from != to) {
        snprintf(err, errlen, "no provider kind speaks the Responses API to sluice");
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
        sl_fit_request(to, o, caps, max_output, quirks);
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
        int rc = from == SL_PROTO_OPENAI      ? sl_tr_openai_to_ir(req, ir, err, errlen)
                 : from == SL_PROTO_RESPONSES ? sl_tr_responses_to_ir(req, ir, err, errlen)
                                              : sl_tr_gemini_to_ir(req, ir, err, errlen);
        if (rc != 0) {
            json_decref(ir);
            return NULL;
        }
    }
    json_t *o = to == SL_PROTO_ANTHROPIC ? ir_to_anthropic(ir, upstream_model, stream)
                : to == SL_PROTO_OPENAI  ? sl_tr_ir_to_openai(ir, upstream_model, stream)
                                         : sl_tr_ir_to_gemini(ir);
    json_decref(ir);
    sl_fit_request(to, o, caps, max_output, quirks);
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

int64_t sl_translate_output_ceiling(sl_proto from, json_t *req, int64_t limit)
{
    long budget = 0;
    if (from == SL_PROTO_OPENAI)
        budget = sl_tr_effort_budget(sl_tr_str(req, "reasoning_effort"));
    else if (from == SL_PROTO_RESPONSES)
        budget = sl_tr_effort_budget(sl_tr_str(json_object_get(req, "reasoning"), "effort"));
    else if (from == SL_PROTO_GEMINI)
        budget = sl_tr_gemini_thinking(sl_tr_gemini_config(req));
    /* An Anthropic request's own budget goes to Anthropic unchanged, and the
     * OpenAI and Gemini writers keep its max_tokens. */
    if (budget > 0 && limit <= budget)
        return sl_sat_add_count(budget, DEFAULT_MAX_TOKENS);
    return limit;
}
