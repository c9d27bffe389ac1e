/*
 * Stream translation, event by event. Upstream SSE is split into events by
 * the sse module; a reader per protocol turns each event into a handful of
 * neutral calls (start, text, thinking, tool start, tool argument bytes,
 * tool end, finish, end, error) and a writer per protocol turns those into
 * client events as they happen, holding back only what the client's
 * protocol puts later (usage after the stop reason, Gemini's whole-object
 * function calls). The writers own the framing rules clients rely on: in
 * Anthropic streams every content_block_start gets its content_block_stop,
 * indices only grow, and one block is open at a time.
 *
 * This file holds the readers and the public API; the neutral calls and
 * the writers are in stream_write.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json_out.h"
#include "translate/sse.h"
#include "translate/translate_internal.h"

/* ---- readers ---------------------------------------------------------- */

static void set_id(sl_stream *s, const char *id)
{
    if (!s->id && id && *id)
        s->id = strdup(id);
}

static int read_openai(sl_stream *s, json_t *o)
{
    json_t *e = json_object_get(o, "error");
    if (e) {
        sl_tr_ev_error(s, sl_tr_nstr(e, "code") ? sl_tr_nstr(e, "code") : sl_tr_nstr(e, "type"),
                       json_is_string(e) ? json_string_value(e) : sl_tr_str(e, "message"));
        return 0;
    }
    set_id(s, sl_tr_str(o, "id"));
    sl_tr_usage_from_openai(json_object_get(o, "usage"), &s->usage);
    json_t *choices = json_object_get(o, "choices");
    size_t i;
    json_t *ch;
    if (json_array_size(choices))
        sl_tr_ev_start(s);
    json_array_foreach(choices, i, ch) {
        if (sl_tr_int(ch, "index", 0) != 0)
            continue; /* n > 1: only the first choice has a counterpart */
        json_t *d = json_object_get(ch, "delta");
        const char *r = sl_tr_nstr(d, "reasoning_content");
        if (!r)
            r = sl_tr_nstr(d, "reasoning");
        if (r)
            sl_tr_ev_text(s, r, 1);
        const char *t = sl_tr_nstr(d, "content");
        if (!t)
            t = sl_tr_nstr(d, "refusal");
        if (t)
            sl_tr_ev_text(s, t, 0);
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(d, "tool_calls"), k, tc) {
            long key = sl_tr_int(tc, "index", (long)k);
            json_t *fn = json_object_get(tc, "function");
            const char *id = sl_tr_nstr(tc, "id");
            const char *name = sl_tr_nstr(fn, "name");
            sl_tr_tool_slot *old = s->translate ? sl_tr_tool_find(s, key) : NULL;
            if (old && id && *old->id && strcmp(old->id, id) != 0) {
                /* Some compatible servers reuse index 0 for every parallel
                 * call: a new id means a new call, so retire the old key. */
                long retired = -2 - (long)(old - s->tools);
                if (s->open_kind == SL_TR_BLK_TOOL && s->open_key == key)
                    s->open_key = retired;
                old->key = retired;
                if (s->client == SL_PROTO_GEMINI && !old->done)
                    old->done = 1;
            }
            if ((id || name) && !sl_tr_tool_find(s, key)) {
                char made[64];
                if (!id) {
                    sl_tr_make_id(made, sizeof made, "call_", sl_tr_msg_id(s), strlen(sl_tr_msg_id(s)), key);
                    id = made;
                }
                sl_tr_ev_tool_start(s, key, id, name);
            }
            const char *args = sl_tr_str(fn, "arguments");
            if (args && *args)
                sl_tr_ev_tool_args(s, key, args, strlen(args));
        }
        const char *fr = sl_tr_nstr(ch, "finish_reason");
        if (fr) {
            s->finish_seen = 1;
            sl_tr_ev_finish(s, sl_tr_stop_from_openai(fr), NULL);
        }
    }
    return 0;
}

static int *an_kind_slot(sl_stream *s, long index)
{
    if (index < 0 || index > 100000)
        return NULL;
    if ((size_t)index >= s->an_kind_cap) {
        size_t cap = (size_t)index * 2 + 8;
        int *k = realloc(s->an_kind, cap * sizeof *k);
        if (!k)
            return NULL;
        memset(k + s->an_kind_cap, 0, (cap - s->an_kind_cap) * sizeof *k);
        s->an_kind = k;
        s->an_kind_cap = cap;
    }
    return &s->an_kind[index];
}

static int read_anthropic(sl_stream *s, json_t *o)
{
    const char *type = sl_tr_str(o, "type");
    if (!type)
        return -1;
    if (!strcmp(type, "message_start")) {
        json_t *m = json_object_get(o, "message");
        set_id(s, sl_tr_str(m, "id"));
        sl_tr_usage_from_anthropic(json_object_get(m, "usage"), &s->usage);
        sl_tr_ev_start(s);
    } else if (!strcmp(type, "content_block_start")) {
        long idx = sl_tr_int(o, "index", -1);
        int *kind = an_kind_slot(s, idx);
        if (!kind)
            return -1;
        json_t *b = json_object_get(o, "content_block");
        const char *bt = sl_tr_str(b, "type");
        *kind = SL_TR_BLK_OTHER;
        if (bt && !strcmp(bt, "text")) {
            *kind = SL_TR_BLK_TEXT;
            const char *t = sl_tr_str(b, "text");
            if (t)
                sl_tr_ev_text(s, t, 0);
        } else if (bt && !strcmp(bt, "thinking")) {
            *kind = SL_TR_BLK_THINKING;
            const char *t = sl_tr_str(b, "thinking");
            if (t)
                sl_tr_ev_text(s, t, 1);
        } else if (bt && !strcmp(bt, "tool_use")) {
            *kind = SL_TR_BLK_TOOL;
            sl_tr_ev_tool_start(s, idx, sl_tr_str(b, "id"), sl_tr_str(b, "name"));
            json_t *input = json_object_get(b, "input");
            if (json_object_size(input)) {
                char *js = sl_json_dumps(input, JSON_COMPACT);
                if (js)
                    sl_tr_ev_tool_args(s, idx, js, strlen(js));
                free(js);
            }
        }
        /* server_tool_use, web_search_tool_result, redacted_thinking: the
         * other protocols have nothing to show them as. */
    } else if (!strcmp(type, "content_block_delta")) {
        long idx = sl_tr_int(o, "index", -1);
        int *kind = an_kind_slot(s, idx);
        if (!kind)
            return -1;
        json_t *d = json_object_get(o, "delta");
        const char *dt = sl_tr_str(d, "type");
        if (!dt)
            return -1;
        if (!strcmp(dt, "text_delta") && *kind == SL_TR_BLK_TEXT)
            sl_tr_ev_text(s, sl_tr_str(d, "text") ? sl_tr_str(d, "text") : "", 0);
        else if (!strcmp(dt, "thinking_delta") && *kind == SL_TR_BLK_THINKING)
            sl_tr_ev_text(s, sl_tr_str(d, "thinking") ? sl_tr_str(d, "thinking") : "", 1);
        else if (!strcmp(dt, "input_json_delta") && *kind == SL_TR_BLK_TOOL) {
            const char *pj = sl_tr_str(d, "partial_json");
            if (pj)
                sl_tr_ev_tool_args(s, idx, pj, strlen(pj));
        }
    } else if (!strcmp(type, "content_block_stop")) {
        long idx = sl_tr_int(o, "index", -1);
        int *kind = an_kind_slot(s, idx);
        if (kind && *kind == SL_TR_BLK_TOOL)
            sl_tr_ev_tool_end(s, idx);
    } else if (!strcmp(type, "message_delta")) {
        json_t *d = json_object_get(o, "delta");
        sl_tr_usage_from_anthropic(json_object_get(o, "usage"), &s->usage);
        if (sl_tr_str(d, "stop_reason"))
            sl_tr_ev_finish(s, sl_tr_str(d, "stop_reason"), sl_tr_str(d, "stop_sequence"));
    } else if (!strcmp(type, "message_stop")) {
        sl_tr_ev_end(s);
    } else if (!strcmp(type, "error")) {
        json_t *e = json_object_get(o, "error");
        sl_tr_ev_error(s, sl_tr_str(e, "type"), sl_tr_str(e, "message"));
    }
    /* ping and unknown event types: ignored, as the API asks clients to. */
    return 0;
}

static int read_gemini(sl_stream *s, json_t *o)
{
    if (json_is_array(o)) { /* a stream without ?alt=sse sends one list */
        size_t i;
        json_t *e;
        json_array_foreach(o, i, e)
            if (read_gemini(s, e) != 0)
                return -1;
        return 0;
    }
    json_t *e = json_object_get(o, "error");
    if (e) {
        sl_tr_ev_error(s, sl_tr_str(e, "status"), sl_tr_str(e, "message"));
        return 0;
    }
    sl_tr_usage_from_gemini(json_object_get(o, "usageMetadata"), &s->usage);
    if (s->finish_seen)
        return 0; /* only usage counts after the finish */
    if (!s->id) {
        const char *rid = sl_tr_nstr(o, "responseId");
        char made[64];
        if (!rid) {
            sl_tr_make_id(made, sizeof made, "msg_", s->client_model, strlen(s->client_model), s->created);
            rid = made;
        }
        set_id(s, rid);
    }
    sl_tr_ev_start(s);
    json_t *cand = json_array_get(json_object_get(o, "candidates"), 0);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        const char *t = sl_tr_str(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        if (t) {
            sl_tr_ev_text(s, t, json_is_true(json_object_get(p, "thought")));
        } else if (json_is_object(fc)) {
            long key = s->gm_tool_count++;
            char id[64];
            const char *given = sl_tr_nstr(fc, "id");
            if (given)
                snprintf(id, sizeof id, "%s", given);
            else
                sl_tr_make_id(id, sizeof id, "call_", sl_tr_msg_id(s), strlen(sl_tr_msg_id(s)), key);
            sl_tr_ev_tool_start(s, key, id, sl_tr_str(fc, "name"));
            json_t *args = json_object_get(fc, "args");
            json_t *none = json_is_object(args) ? NULL : json_object();
            char *js = sl_json_dumps(json_is_object(args) ? args : none, JSON_COMPACT);
            json_decref(none);
            if (js)
                sl_tr_ev_tool_args(s, key, js, strlen(js));
            free(js);
            sl_tr_ev_tool_end(s, key);
            s->gm_saw_tool = 1;
        }
    }
    const char *fr = sl_tr_nstr(cand, "finishReason");
    json_t *pf = json_object_get(o, "promptFeedback");
    if (!fr && sl_tr_nstr(pf, "blockReason") && !cand)
        fr = "SAFETY";
    if (fr) {
        s->finish_seen = 1;
        sl_tr_ev_finish(s, sl_tr_stop_from_gemini(fr, s->gm_saw_tool), NULL);
        /* Gemini has no end marker: the finish is the last content. */
        sl_tr_ev_end(s);
    }
    return 0;
}

static int on_event(void *ctx, const sl_sse_event *ev)
{
    sl_stream *s = ctx;
    if (s->up == SL_PROTO_OPENAI && ev->data_len == 6 && !memcmp(ev->data, "[DONE]", 6)) {
        sl_tr_ev_end(s);
        return 0;
    }
    if (s->terminal && s->up != SL_PROTO_GEMINI)
        return 0; /* nothing counts after the end marker */
    json_t *o = json_loadb(ev->data, ev->data_len, 0, NULL);
    if (!o)
        return -1;
    int rc = s->up == SL_PROTO_OPENAI      ? read_openai(s, o)
             : s->up == SL_PROTO_ANTHROPIC ? read_anthropic(s, o)
                                           : read_gemini(s, o);
    json_decref(o);
    return rc;
}

/* ---- public API --------------------------------------------------------- */

sl_stream *sl_stream_new(sl_proto up, sl_proto client, const char *client_model)
{
    sl_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->up = up;
    s->client = client;
    s->translate = up != client;
    s->client_model = strdup(client_model ? client_model : "");
    s->usage_chunk = 1;
    s->created = (long)time(NULL);
    sl_sse_init(&s->sse, SL_SSE_MAX_LINE);
    if (!s->client_model) {
        free(s);
        return NULL;
    }
    return s;
}

void sl_stream_set_openai_usage_chunk(sl_stream *s, int on)
{
    s->usage_chunk = on;
}

int sl_stream_feed(sl_stream *s, const char *p, size_t n, sl_buf *out)
{
    if (s->failed)
        return -1;
    if (!s->translate && n) {
        if (sl_buf_append(out, p, n) != 0)
            return -1;
        s->started = 1;
    }
    s->out = out;
    int rc = sl_sse_feed(&s->sse, p, n, on_event, s);
    s->out = NULL;
    if (rc != 0) {
        s->failed = 1;
        return -1;
    }
    return 0;
}

int sl_stream_finish(sl_stream *s, sl_buf *out)
{
    if (s->failed)
        return -1;
    s->out = out;
    int rc = sl_sse_finish(&s->sse, on_event, s);
    if (rc == 0 && !s->terminal && s->finish_seen && s->up == SL_PROTO_OPENAI)
        sl_tr_ev_end(s); /* finish_reason but no [DONE]: complete enough */
    s->out = NULL;
    if (rc != 0) {
        s->failed = 1;
        return -1;
    }
    return s->terminal ? 0 : -1;
}

const sl_usage_counts *sl_stream_usage(const sl_stream *s)
{
    return &s->usage;
}

int sl_stream_started(const sl_stream *s)
{
    return s->started;
}

void sl_stream_free(sl_stream *s)
{
    if (!s)
        return;
    sl_sse_free(&s->sse);
    for (size_t i = 0; i < s->ntools; i++) {
        free(s->tools[i].id);
        free(s->tools[i].name);
        sl_buf_free(&s->tools[i].args);
    }
    free(s->tools);
    sl_buf_free(&s->rw_text);
    json_decref(s->rw_output);
    json_decref(s->rw_final);
    free(s->rw_id);
    free(s->rw_prev);
    free(s->an_kind);
    free(s->id);
    free(s->stop_reason);
    free(s->stop_sequence);
    free(s->client_model);
    free(s);
}
