/*
 * The vocabularies the three protocols disagree on, in one place: stop and
 * finish reasons, how each counts cached input tokens, and ids. Everything
 * else in the translator builds on these so a mapping is decided once.
 */
#include "translate/translate_internal.h"

#include "core/sat.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

const char *sl_tr_str(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

const char *sl_tr_nstr(json_t *o, const char *key)
{
    const char *s = sl_tr_str(o, key);
    return s && *s ? s : NULL;
}

long sl_tr_int(json_t *o, const char *key, long dflt)
{
    json_t *v = json_object_get(o, key);
    if (json_is_integer(v))
        return (long)json_integer_value(v);
    if (json_is_real(v)) {
        /* Converting an out-of-range double is undefined: clamp first
         * (these numbers come from clients and upstreams). */
        double d = json_real_value(v);
        if (d != d)
            return dflt;
        if (d >= 9.2e18)
            return LONG_MAX;
        if (d <= -9.2e18)
            return LONG_MIN;
        return (long)d;
    }
    return dflt;
}

/* ---- stop reasons ------------------------------------------------------ */

const char *sl_tr_stop_from_openai(const char *f)
{
    if (!f)
        return "end_turn";
    if (!strcmp(f, "length"))
        return "max_tokens";
    if (!strcmp(f, "tool_calls") || !strcmp(f, "function_call"))
        return "tool_use";
    if (!strcmp(f, "content_filter"))
        return "refusal";
    return "end_turn";
}

const char *sl_tr_stop_to_openai(const char *r)
{
    if (!r)
        return "stop";
    if (!strcmp(r, "max_tokens") || !strcmp(r, "model_context_window_exceeded"))
        return "length";
    if (!strcmp(r, "tool_use"))
        return "tool_calls";
    if (!strcmp(r, "refusal"))
        return "content_filter";
    return "stop"; /* end_turn, stop_sequence, pause_turn */
}

const char *sl_tr_stop_from_gemini(const char *f, int saw_tool_call)
{
    if (!f || !strcmp(f, "STOP") || !strcmp(f, "FINISH_REASON_UNSPECIFIED"))
        return saw_tool_call ? "tool_use" : "end_turn";
    if (!strcmp(f, "MAX_TOKENS"))
        return "max_tokens";
    if (!strcmp(f, "SAFETY") || !strcmp(f, "RECITATION") || !strcmp(f, "BLOCKLIST") ||
        !strcmp(f, "PROHIBITED_CONTENT") || !strcmp(f, "SPII") || !strcmp(f, "IMAGE_SAFETY") ||
        !strcmp(f, "LANGUAGE"))
        return "refusal";
    return saw_tool_call ? "tool_use" : "end_turn";
}

const char *sl_tr_stop_to_gemini(const char *r)
{
    if (!r)
        return "STOP";
    if (!strcmp(r, "max_tokens") || !strcmp(r, "model_context_window_exceeded"))
        return "MAX_TOKENS";
    if (!strcmp(r, "refusal"))
        return "SAFETY";
    return "STOP";
}

/* ---- usage ------------------------------------------------------------- */

/* OpenAI and Gemini count cached tokens inside the prompt total; Anthropic
 * reports them beside it. The neutral form is Anthropic's. */
void sl_tr_usage_from_openai(json_t *u, sl_usage_counts *out)
{
    if (!json_is_object(u))
        return;
    long prompt = sl_tr_int(u, "prompt_tokens", -1);
    long cached = sl_tr_int(json_object_get(u, "prompt_tokens_details"), "cached_tokens", 0);
    long completion = sl_tr_int(u, "completion_tokens", -1);
    long reasoning = sl_tr_int(json_object_get(u, "completion_tokens_details"), "reasoning_tokens", -1);
    if (reasoning >= 0)
        out->reasoning = reasoning;
    if (prompt >= 0) {
        out->cache_read = sl_sat_count(cached);
        out->input = sl_sat_count(sl_sat_sub(prompt, out->cache_read));
        out->have = 1;
    }
    if (completion >= 0) {
        out->output = completion;
        out->have = 1;
    }
}

void sl_tr_usage_from_anthropic(json_t *u, sl_usage_counts *out)
{
    if (!json_is_object(u))
        return;
    long v;
    if ((v = sl_tr_int(u, "input_tokens", -1)) >= 0) {
        out->input = v;
        out->have = 1;
    }
    if ((v = sl_tr_int(u, "output_tokens", -1)) >= 0) {
        out->output = v;
        out->have = 1;
    }
    if ((v = sl_tr_int(u, "cache_read_input_tokens", -1)) >= 0)
        out->cache_read = v;
    if ((v = sl_tr_int(u, "cache_creation_input_tokens", -1)) >= 0)
        out->cache_write = v;
}

void sl_tr_usage_from_gemini(json_t *u, sl_usage_counts *out)
{
    if (!json_is_object(u))
        return;
    long prompt = sl_tr_int(u, "promptTokenCount", -1);
    long cached = sl_tr_int(u, "cachedContentTokenCount", 0);
    long cand = sl_tr_int(u, "candidatesTokenCount", -1);
    long thoughts = sl_tr_int(u, "thoughtsTokenCount", 0);
    if (prompt >= 0) {
        out->cache_read = sl_sat_count(cached);
        out->input = sl_sat_count(sl_sat_sub(prompt, out->cache_read));
        out->have = 1;
    }
    /* Thinking is billed as output everywhere; Gemini reports it apart. */
    if (thoughts > 0)
        out->reasoning = thoughts;
    if (cand >= 0 || thoughts > 0) {
        out->output = sl_sat_add_count(cand, thoughts);
        out->have = 1;
    }
}

/* The Responses API's usage: input_tokens counts the cached ones too (as
 * OpenAI's prompt_tokens does), broken out in input_tokens_details;
 * reasoning tokens are part of output_tokens. */
void sl_tr_usage_from_responses(json_t *u, sl_usage_counts *out)
{
    if (!json_is_object(u))
        return;
    long in = sl_tr_int(u, "input_tokens", -1);
    long cached = sl_tr_int(json_object_get(u, "input_tokens_details"), "cached_tokens", 0);
    long outp = sl_tr_int(u, "output_tokens", -1);
    long reasoning = sl_tr_int(json_object_get(u, "output_tokens_details"), "reasoning_tokens", -1);
    if (reasoning >= 0)
        out->reasoning = reasoning;
    if (in >= 0) {
        out->cache_read = sl_sat_count(cached);
        out->input = sl_sat_count(sl_sat_sub(in, out->cache_read));
        out->have = 1;
    }
    if (outp >= 0) {
        out->output = outp;
        out->have = 1;
    }
}

void sl_translate_usage_object(json_t *usage, sl_usage_counts *out)
{
    if (json_object_get(usage, "prompt_tokens") || json_object_get(usage, "completion_tokens"))
        sl_tr_usage_from_openai(usage, out);
    else if (json_object_get(usage, "input_tokens_details") || json_object_get(usage, "output_tokens_details"))
        sl_tr_usage_from_responses(usage, out);
    else if (json_object_get(usage, "promptTokenCount") || json_object_get(usage, "candidatesTokenCount"))
        sl_tr_usage_from_gemini(usage, out);
    else
        sl_tr_usage_from_anthropic(usage, out);
}

json_t *sl_tr_usage_to_openai(const sl_usage_counts *u)
{
    /* Counts come from the upstream: sums saturate rather than wrap. */
    int64_t prompt = sl_sat_add_count(u->input, sl_sat_add_count(u->cache_read, u->cache_write));
    json_t *o = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)prompt, "completion_tokens",
                          (json_int_t)u->output, "total_tokens",
                          (json_int_t)sl_sat_add_count(prompt, u->output));
    json_object_set_new(o, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)u->cache_read));
    return o;
}

json_t *sl_tr_usage_to_anthropic(const sl_usage_counts *u)
{
    return json_pack("{s:I,s:I,s:I,s:I}", "input_tokens", (json_int_t)u->input,
                     "cache_creation_input_tokens", (json_int_t)u->cache_write,
                     "cache_read_input_tokens", (json_int_t)u->cache_read, "output_tokens",
                     (json_int_t)u->output);
}

json_t *sl_tr_usage_to_gemini(const sl_usage_counts *u)
{
    int64_t prompt = sl_sat_add_count(u->input, sl_sat_add_count(u->cache_read, u->cache_write));
    json_t *o = json_pack("{s:I,s:I,s:I}", "promptTokenCount", (json_int_t)prompt,
                          "candidatesTokenCount", (json_int_t)u->output, "totalTokenCount",
                          (json_int_t)sl_sat_add_count(prompt, u->output));
    if (u->cache_read > 0)
        json_object_set_new(o, "cachedContentTokenCount", json_integer(u->cache_read));
    return o;
}

/* ---- ids and data URLs ----------------------------------------------- */

void sl_tr_make_id(char *buf, size_t cap, const char *prefix, const char *seed, size_t seed_len,
                   long n)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < seed_len; i++) {
        h ^= (unsigned char)seed[i];
        h *= 1099511628211ull;
    }
    for (int i = 0; i < 8; i++) {
        h ^= (unsigned char)(n >> (8 * i));
        h *= 1099511628211ull;
    }
    snprintf(buf, cap, "%s%016llx", prefix, (unsigned long long)h);
}

int sl_tr_parse_data_url(const char *url, const char **mime, size_t *mime_len, const char **data)
{
    if (strncmp(url, "data:", 5) != 0)
        return -1;
    const char *m = url + 5;
    const char *comma = strchr(m, ',');
    if (!comma)
        return -1;
    const char *b64 = strstr(m, ";base64");
    if (!b64 || b64 > comma)
        return -1;
    const char *semi = memchr(m, ';', (size_t)(comma - m));
    *mime = m;
    *mime_len = (size_t)(semi - m);
    *data = comma + 1;
    return 0;
}

const char *sl_tr_mime_from_url(const char *url, const char *dflt)
{
    static const struct { const char *ext, *mime; } map[] = {
        {".png", "image/png"},   {".jpg", "image/jpeg"}, {".jpeg", "image/jpeg"},
        {".gif", "image/gif"},   {".webp", "image/webp"}, {".pdf", "application/pdf"},
    };
    size_t n = strcspn(url, "?#");
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++) {
        size_t e = strlen(map[i].ext);
        if (n >= e && strncasecmp(url + n - e, map[i].ext, e) == 0)
            return map[i].mime;
    }
    return dflt;
}

json_t *sl_tr_args_object(const char *text, size_t len)
{
    json_t *o = len ? json_loadb(text, len, 0, NULL) : NULL;
    if (!json_is_object(o)) {
        json_decref(o);
        return json_object();
    }
    return o;
}

char *sl_tr_content_text(json_t *content, const char *sep)
{
    if (json_is_string(content))
        return strdup(json_string_value(content));
    size_t cap = 1, len = 0, sl = strlen(sep);
    char *s = malloc(cap);
    if (!s)
        return NULL;
    s[0] = '\0';
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *t = sl_tr_str(b, "text");
        if (!t || (sl_tr_str(b, "type") && strcmp(sl_tr_str(b, "type"), "text") != 0))
            continue;
        size_t tn = strlen(t), need = len + (len ? sl : 0) + tn + 1;
        if (need > cap) {
            char *p = realloc(s, need * 2);
            if (!p) {
                free(s);
                return NULL;
            }
            s = p;
            cap = need * 2;
        }
        if (len) {
            memcpy(s + len, sep, sl);
            len += sl;
        }
        memcpy(s + len, t, tn);
        len += tn;
        s[len] = '\0';
    }
    return s;
}
