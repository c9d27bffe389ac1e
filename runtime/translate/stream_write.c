/*
 * The client side of stream translation (see stream.c): the neutral calls
 * the readers make, each written out at once as the client protocol's
 * events. Anthropic gets typed blocks opened and closed in order, OpenAI
 * chat.completion.chunk deltas, Gemini candidate chunks with each function
 * call held until it is whole, Responses clients their item events
 * (stream_responses.c); the stop reason waits for the end so the
 * final usage can go with it.
 */
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

/* ---- emit helpers ------------------------------------------------------ */

static int emit(sl_stream *s, const char *event, json_t *o)
{
    char *js = sl_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!js)
        return -1;
    int rc;
    if (s->client == SL_PROTO_ANTHROPIC)
        rc = sl_buf_appendf(s->out, "event: %s\ndata: %s\n\n", event, js);
    else if (s->client == SL_PROTO_GEMINI)
        rc = sl_buf_appendf(s->out, "data: %s\r\n\r\n", js);
    else
        rc = sl_buf_appendf(s->out, "data: %s\n\n", js);
    free(js);
    s->started = 1;
    return rc;
}

const char *sl_tr_msg_id(sl_stream *s)
{
    return s->id ? s->id : "msg_sluice";
}

sl_tr_tool_slot *sl_tr_tool_find(sl_stream *s, long key)
{
    for (size_t i = 0; i < s->ntools; i++)
        if (s->tools[i].key == key)
            return &s->tools[i];
    return NULL;
}

static sl_tr_tool_slot *tool_add(sl_stream *s, long key, const char *id, const char *name)
{
    if (s->ntools == s->tools_cap) {
        size_t cap = s->tools_cap ? s->tools_cap * 2 : 8;
        sl_tr_tool_slot *t = realloc(s->tools, cap * sizeof *t);
        if (!t)
            return NULL;
        s->tools = t;
        s->tools_cap = cap;
    }
    sl_tr_tool_slot *t = &s->tools[s->ntools++];
    memset(t, 0, sizeof *t);
    t->key = key;
    t->id = strdup(id ? id : "");
    t->name = strdup(name ? name : "");
    return t;
}

/* ---- Anthropic writer ------------------------------------------------- */

static void aw_start(sl_stream *s)
{
    if (s->w_started)
        return;
    s->w_started = 1;
    sl_usage_counts u = s->usage;
    json_t *usage = sl_tr_usage_to_anthropic(&u);
    emit(s, "message_start",
         json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start", "message", "id",
                   sl_tr_msg_id(s), "type", "message", "role", "assistant", "model", s->client_model,
                   "content", "stop_reason", "stop_sequence", "usage", usage));
}

static void aw_close(sl_stream *s)
{
    if (s->open_kind == SL_TR_BLK_NONE)
        return;
    emit(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", s->next_index - 1));
    s->open_kind = SL_TR_BLK_NONE;
}

static void aw_open(sl_stream *s, int kind, long key, json_t *block)
{
    aw_close(s);
    s->open_kind = kind;
    s->open_key = key;
    emit(s, "content_block_start", json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index",
                                             s->next_index++, "content_block", block));
}

static void aw_delta(sl_stream *s, int index, json_t *delta)
{
    emit(s, "content_block_delta",
         json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", index, "delta", delta));
}

/* ---- OpenAI writer ---------------------------------------------------- */

static void ow_chunk(sl_stream *s, json_t *delta, const char *finish)
{
    json_t *choice = json_pack("{s:i,s:o}", "index", 0, "delta", delta);
    json_object_set_new(choice, "finish_reason", finish ? json_string(finish) : json_null());
    emit(s, NULL, json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", sl_tr_msg_id(s), "object",
                            "chat.completion.chunk", "created", (json_int_t)s->created, "model",
                            s->client_model, "choices", choice));
}

/* ---- Gemini writer ---------------------------------------------------- */

static void gw_chunk(sl_stream *s, json_t *parts, const char *finish)
{
    json_t *cand = json_pack("{s:{s:s,s:o}}", "content", "role", "model", "parts", parts);
    if (finish)
        json_object_set_new(cand, "finishReason", json_string(finish));
    json_object_set_new(cand, "index", json_integer(0));
    json_t *o = json_pack("{s:[o]}", "candidates", cand);
    if (finish || s->usage.have) {
        sl_usage_counts u = s->usage;
        json_object_set_new(o, "usageMetadata", sl_tr_usage_to_gemini(&u));
    }
    json_object_set_new(o, "modelVersion", json_string(s->client_model));
    json_object_set_new(o, "responseId", json_string(sl_tr_msg_id(s)));
    emit(s, NULL, o);
}

/* Gemini sends each function call whole: flush the completed ones. */
static void gw_flush_tools(sl_stream *s, int all)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < s->ntools; i++) {
        sl_tr_tool_slot *t = &s->tools[i];
        if (t->done == 2 || (!all && !t->done))
            continue;
        json_t *args = sl_tr_args_object(t->args.data, t->args.len);
        json_array_append_new(parts, json_pack("{s:{s:s,s:o}}", "functionCall", "name", t->name, "args", args));
        t->done = 2;
    }
    if (json_array_size(parts))
        gw_chunk(s, parts, NULL);
    else
        json_decref(parts);
}

/* ---- neutral events ---------------------------------------------------- */

void sl_tr_ev_start(sl_stream *s)
{
    if (!s->translate || s->w_ended)
        return;
    if (s->client == SL_PROTO_ANTHROPIC) {
        aw_start(s);
    } else if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_start(s);
    } else if (s->client == SL_PROTO_OPENAI && !s->w_started) {
        s->w_started = 1;
        ow_chunk(s, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
    } else {
        s->w_started = 1; /* Gemini streams have no opening event */
    }
}

void sl_tr_ev_text(sl_stream *s, const char *t, int thinking)
{
    if (!s->translate || s->w_ended || !*t)
        return;
    sl_tr_ev_start(s);
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_text(s, t, thinking);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        /* Unsigned thinking would be refused when sent back (see
         * response.c); only an Anthropic upstream can sign it. */
        if (thinking)
            return;
        int kind = SL_TR_BLK_TEXT;
        if (s->open_kind != kind)
            aw_open(s, kind, -1, json_pack("{s:s,s:s}", "type", "text", "text", ""));
        aw_delta(s, s->next_index - 1, json_pack("{s:s,s:s}", "type", "text_delta", "text", t));
    } else if (s->client == SL_PROTO_OPENAI) {
        ow_chunk(s, json_pack("{s:s}", thinking ? "reasoning_content" : "content", t), NULL);
    } else {
        gw_flush_tools(s, 1);
        json_t *part = json_pack("{s:s}", "text", t);
        if (thinking)
            json_object_set_new(part, "thought", json_true());
        gw_chunk(s, json_pack("[o]", part), NULL);
    }
}

void sl_tr_ev_tool_start(sl_stream *s, long key, const char *id, const char *name)
{
    if (!s->translate || s->w_ended)
        return;
    sl_tr_ev_start(s);
    if (sl_tr_tool_find(s, key))
        return; /* a repeated header for a call already open */
    sl_tr_tool_slot *t = tool_add(s, key, id, name);
    if (!t)
        return;
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_tool_start(s, t);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        aw_open(s, SL_TR_BLK_TOOL, key,
                json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", t->id, "name", t->name, "input"));
        t->out_index = s->next_index - 1;
    } else if (s->client == SL_PROTO_OPENAI) {
        int idx = (int)s->ntools - 1; /* tool_calls indices count calls only */
        t->out_index = idx;
        ow_chunk(s,
                 json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", idx, "id", t->id, "type",
                           "function", "function", "name", t->name, "arguments", ""),
                 NULL);
    } else {
        /* Earlier calls are complete once a new one starts. */
        for (size_t i = 0; i + 1 < s->ntools; i++)
            if (!s->tools[i].done)
                s->tools[i].done = 1;
    }
}

void sl_tr_ev_tool_args(sl_stream *s, long key, const char *frag, size_t n)
{
    if (!s->translate || s->w_ended || n == 0)
        return;
    sl_tr_tool_slot *t = sl_tr_tool_find(s, key);
    if (!t) {
        /* Arguments before any id/name: open the call with made-up ones. */
        char id[64];
        sl_tr_make_id(id, sizeof id, "call_", sl_tr_msg_id(s), strlen(sl_tr_msg_id(s)), key);
        sl_tr_ev_tool_start(s, key, id, "");
        t = sl_tr_tool_find(s, key);
        if (!t)
            return;
    }
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_tool_args(s, t, frag, n);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        json_t *pj = json_stringn(frag, n);
        if (!pj)
            return;
        /* A fragment for an earlier call goes to that call's own index. */
        aw_delta(s, t->out_index, json_pack("{s:s,s:o}", "type", "input_json_delta", "partial_json", pj));
    } else if (s->client == SL_PROTO_OPENAI) {
        json_t *a = json_stringn(frag, n);
        if (!a)
            return;
        ow_chunk(s, json_pack("{s:[{s:i,s:{s:o}}]}", "tool_calls", "index", t->out_index, "function", "arguments", a),
                 NULL);
    } else {
        sl_buf_append(&t->args, frag, n);
    }
}

void sl_tr_ev_tool_end(sl_stream *s, long key)
{
    if (!s->translate || s->w_ended)
        return;
    sl_tr_tool_slot *t = sl_tr_tool_find(s, key);
    if (!t)
        return;
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_tool_end(s, t);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        if (s->open_kind == SL_TR_BLK_TOOL && s->open_key == key)
            aw_close(s);
    } else if (s->client == SL_PROTO_GEMINI) {
        if (!t->done)
            t->done = 1;
        gw_flush_tools(s, 0);
    }
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    *dst = v ? strdup(v) : NULL;
}

void sl_tr_ev_finish(sl_stream *s, const char *stop_reason, const char *stop_sequence)
{
    set_str(&s->stop_reason, stop_reason);
    set_str(&s->stop_sequence, stop_sequence);
    /* Calls are complete at the finish; usage may still be on its way. */
    if (s->translate && !s->w_ended && s->client == SL_PROTO_GEMINI)
        gw_flush_tools(s, 1);
}

/* The upstream is done: close what is open, then the stop reason with the
 * final usage, then the protocol's end marker. */
void sl_tr_ev_end(sl_stream *s)
{
    s->terminal = 1;
    if (!s->translate || s->w_ended)
        return;
    sl_tr_ev_start(s);
    s->w_ended = 1;
    const char *stop = s->stop_reason ? s->stop_reason : "end_turn";
    sl_usage_counts u = s->usage;
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_end(s, stop);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        aw_close(s);
        json_t *delta = json_pack("{s:s}", "stop_reason", stop);
        json_object_set_new(delta, "stop_sequence", s->stop_sequence ? json_string(s->stop_sequence) : json_null());
        emit(s, "message_delta", json_pack("{s:s,s:o,s:o}", "type", "message_delta", "delta", delta, "usage",
                                           sl_tr_usage_to_anthropic(&u)));
        emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    } else if (s->client == SL_PROTO_OPENAI) {
        ow_chunk(s, json_object(), sl_tr_stop_to_openai(stop));
        if (s->usage_chunk && u.have)
            emit(s, NULL, json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", sl_tr_msg_id(s), "object",
                                    "chat.completion.chunk", "created", (json_int_t)s->created, "model",
                                    s->client_model, "choices", "usage", sl_tr_usage_to_openai(&u)));
        sl_buf_append(s->out, "data: [DONE]\n\n", 14);
        s->started = 1;
    } else {
        gw_flush_tools(s, 1);
        gw_chunk(s, json_pack("[{s:s}]", "text", ""), sl_tr_stop_to_gemini(stop));
    }
}

/* An error event from the upstream, in the client's error-event shape. */
void sl_tr_ev_error(sl_stream *s, const char *type, const char *message)
{
    s->terminal = 1;
    if (!s->translate || s->w_ended)
        return;
    s->w_ended = 1;
    const char *m = message ? message : "upstream stream error";
    if (s->client == SL_PROTO_RESPONSES) {
        sl_tr_rw_error(s, type, m);
    } else if (s->client == SL_PROTO_ANTHROPIC) {
        int overloaded = type && (!strcmp(type, "overloaded_error") || !strcmp(type, "UNAVAILABLE"));
        int rate = type && (!strcmp(type, "rate_limit_error") || !strcmp(type, "RESOURCE_EXHAUSTED"));
        emit(s, "error", json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type",
                                   overloaded ? "overloaded_error" : rate ? "rate_limit_error" : "api_error",
                                   "message", m));
    } else if (s->client == SL_PROTO_OPENAI) {
        emit(s, NULL, json_pack("{s:{s:s,s:s,s:n,s:s?}}", "error", "message", m, "type", "server_error", "param",
                                "code", type));
    } else {
        int overloaded = type && (!strcmp(type, "overloaded_error") || !strcmp(type, "UNAVAILABLE"));
        int rate = type && (!strcmp(type, "rate_limit_error") || !strcmp(type, "RESOURCE_EXHAUSTED") ||
                            !strcmp(type, "rate_limit_exceeded"));
        emit(s, NULL, json_pack("{s:{s:i,s:s,s:s}}", "error", "code", overloaded ? 503 : rate ? 429 : 500, "message",
                                m, "status", overloaded ? "UNAVAILABLE" : rate ? "RESOURCE_EXHAUSTED" : "INTERNAL"));
    }
}
