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
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json/json_out.h"
#include "translate/sse.h"
#include "translate/translate_internal.h"

enum { BLK_NONE, BLK_TEXT, BLK_THINKING, BLK_TOOL, BLK_OTHER };

typedef struct tool_slot {
    long key;        /* upstream's tool key: OpenAI index, Anthropic block index */
    int out_index;   /* client block index (Anthropic) or tool_calls index (OpenAI) */
    char *id, *name; /* Gemini writer: held until the call is complete */
    sl_buf args;
    int done;
} tool_slot;

struct sl_stream {
    sl_proto up, client;
    int translate;            /* up != client */
    char *client_model;
    sl_sse sse;
    sl_buf *out;
    sl_usage usage;
    int started;              /* client bytes produced */
    int terminal;             /* upstream end marker seen */
    int finish_seen;          /* OpenAI finish_reason / Gemini finishReason */
    int failed;               /* malformed upstream */
    int usage_chunk;          /* OpenAI writer: emit the usage chunk */
    long created;

    /* reader state */
    char *id;
    int gm_saw_tool;
    long gm_tool_count;
    int *an_kind;             /* Anthropic reader: kind per upstream block index */
    size_t an_kind_cap;

    /* writer state */
    int w_started, w_ended;
    char *stop_reason, *stop_sequence;
    int open_kind;            /* Anthropic writer: the open block */
    long open_key;
    int next_index;
    tool_slot *tools;
    size_t ntools, tools_cap;
};

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

static const char *msg_id(sl_stream *s)
{
    return s->id ? s->id : "msg_sluice";
}

static tool_slot *tool_find(sl_stream *s, long key)
{
    for (size_t i = 0; i < s->ntools; i++)
        if (s->tools[i].key == key)
            return &s->tools[i];
    return NULL;
}

static tool_slot *tool_add(sl_stream *s, long key, const char *id, const char *name)
{
    if (s->ntools == s->tools_cap) {
        size_t cap = s->tools_cap ? s->tools_cap * 2 : 8;
        tool_slot *t = realloc(s->tools, cap * sizeof *t);
        if (!t)
            return NULL;
        s->tools = t;
        s->tools_cap = cap;
    }
    tool_slot *t = &s->tools[s->ntools++];
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
    sl_usage u = s->usage;
    json_t *usage = sl_tr_usage_to_anthropic(&u);
    emit(s, "message_start",
         json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start", "message", "id",
                   msg_id(s), "type", "message", "role", "assistant", "model", s->client_model, "content",
                   "stop_reason", "stop_sequence", "usage", usage));
}

static void aw_close(sl_stream *s)
{
    if (s->open_kind == BLK_NONE)
        return;
    emit(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", s->next_index - 1));
    s->open_kind = BLK_NONE;
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
    emit(s, NULL, json_pack("{s:s,s:s,s:I,s:s,s:[o]}", "id", msg_id(s), "object", "chat.completion.chunk",
                            "created", (json_int_t)s->created, "model", s->client_model, "choices", choice));
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
        sl_usage u = s->usage;
        json_object_set_new(o, "usageMetadata", sl_tr_usage_to_gemini(&u));
    }
    json_object_set_new(o, "modelVersion", json_string(s->client_model));
    json_object_set_new(o, "responseId", json_string(msg_id(s)));
    emit(s, NULL, o);
}

/* Gemini sends each function call whole: flush the completed ones. */
static void gw_flush_tools(sl_stream *s, int all)
{
    json_t *parts = json_array();
    for (size_t i = 0; i < s->ntools; i++) {
        tool_slot *t = &s->tools[i];
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

static void ev_start(sl_stream *s)
{
    if (!s->translate || s->w_ended)
        return;
    if (s->client == SL_PROTO_ANTHROPIC) {
        aw_start(s);
    } else if (s->client == SL_PROTO_OPENAI && !s->w_started) {
        s->w_started = 1;
        ow_chunk(s, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL);
    } else {
        s->w_started = 1; /* Gemini streams have no opening event */
    }
}

static void ev_text(sl_stream *s, const char *t, int thinking)
{
    if (!s->translate || s->w_ended || !*t)
        return;
    ev_start(s);
    if (s->client == SL_PROTO_ANTHROPIC) {
        /* Unsigned thinking would be refused when sent back (see
         * response.c); only an Anthropic upstream can sign it. */
        if (thinking)
            return;
        int kind = BLK_TEXT;
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

static void ev_tool_start(sl_stream *s, long key, const char *id, const char *name)
{
    if (!s->translate || s->w_ended)
        return;
    ev_start(s);
    if (tool_find(s, key))
        return; /* a repeated header for a call already open */
    tool_slot *t = tool_add(s, key, id, name);
    if (!t)
        return;
    if (s->client == SL_PROTO_ANTHROPIC) {
        aw_open(s, BLK_TOOL, key,
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

static void ev_tool_args(sl_stream *s, long key, const char *frag, size_t n)
{
    if (!s->translate || s->w_ended || n == 0)
        return;
    tool_slot *t = tool_find(s, key);
    if (!t) {
        /* Arguments before any id/name: open the call with made-up ones. */
        char id[64];
        sl_tr_make_id(id, sizeof id, "call_", msg_id(s), strlen(msg_id(s)), key);
        ev_tool_start(s, key, id, "");
        t = tool_find(s, key);
        if (!t)
            return;
    }
    if (s->client == SL_PROTO_ANTHROPIC) {
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

static void ev_tool_end(sl_stream *s, long key)
{
    if (!s->translate || s->w_ended)
        return;
    tool_slot *t = tool_find(s, key);
    if (!t)
        return;
    if (s->client == SL_PROTO_ANTHROPIC) {
        if (s->open_kind == BLK_TOOL && s->open_key == key)
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

static void ev_finish(sl_stream *s, const char *stop_reason, const char *stop_sequence)
{
    set_str(&s->stop_reason, stop_reason);
    set_str(&s->stop_sequence, stop_sequence);
    /* Calls are complete at the finish; usage may still be on its way. */
    if (s->translate && !s->w_ended && s->client == SL_PROTO_GEMINI)
        gw_flush_tools(s, 1);
}

/* The upstream is done: close what is open, then the stop reason with the
 * final usage, then the protocol's end marker. */
static void ev_end(sl_stream *s)
{
    s->terminal = 1;
    if (!s->translate || s->w_ended)
        return;
    ev_start(s);
    s->w_ended = 1;
    const char *stop = s->stop_reason ? s->stop_reason : "end_turn";
    sl_usage u = s->usage;
    if (s->client == SL_PROTO_ANTHROPIC) {
        aw_close(s);
        json_t *delta = json_pack("{s:s}", "stop_reason", stop);
        json_object_set_new(delta, "stop_sequence", s->stop_sequence ? json_string(s->stop_sequence) : json_null());
        emit(s, "message_delta", json_pack("{s:s,s:o,s:o}", "type", "message_delta", "delta", delta, "usage",
                                           sl_tr_usage_to_anthropic(&u)));
        emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    } else if (s->client == SL_PROTO_OPENAI) {
        ow_chunk(s, json_object(), sl_tr_stop_to_openai(stop));
        if (s->usage_chunk && u.have)
            emit(s, NULL, json_pack("{s:s,s:s,s:I,s:s,s:[],s:o}", "id", msg_id(s), "object",
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
static void ev_error(sl_stream *s, const char *type, const char *message)
{
    s->terminal = 1;
    if (!s->translate || s->w_ended)
        return;
    s->w_ended = 1;
    const char *m = message ? message : "upstream stream error";
    if (s->client == SL_PROTO_ANTHROPIC) {
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
        ev_error(s, sl_tr_nstr(e, "code") ? sl_tr_nstr(e, "code") : sl_tr_nstr(e, "type"),
                 json_is_string(e) ? json_string_value(e) : sl_tr_str(e, "message"));
        return 0;
    }
    set_id(s, sl_tr_str(o, "id"));
    sl_tr_usage_from_openai(json_object_get(o, "usage"), &s->usage);
    json_t *choices = json_object_get(o, "choices");
    size_t i;
    json_t *ch;
    if (json_array_size(choices))
        ev_start(s);
    json_array_foreach(choices, i, ch) {
        if (sl_tr_int(ch, "index", 0) != 0)
            continue; /* n > 1: only the first choice has a counterpart */
        json_t *d = json_object_get(ch, "delta");
        const char *r = sl_tr_nstr(d, "reasoning_content");
        if (!r)
            r = sl_tr_nstr(d, "reasoning");
        if (r)
            ev_text(s, r, 1);
        const char *t = sl_tr_nstr(d, "content");
        if (!t)
            t = sl_tr_nstr(d, "refusal");
        if (t)
            ev_text(s, t, 0);
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(d, "tool_calls"), k, tc) {
            long key = sl_tr_int(tc, "index", (long)k);
            json_t *fn = json_object_get(tc, "function");
            const char *id = sl_tr_nstr(tc, "id");
            const char *name = sl_tr_nstr(fn, "name");
            tool_slot *old = s->translate ? tool_find(s, key) : NULL;
            if (old && id && *old->id && strcmp(old->id, id) != 0) {
                /* Some compatible servers reuse index 0 for every parallel
                 * call: a new id means a new call, so retire the old key. */
                long retired = -2 - (long)(old - s->tools);
                if (s->open_kind == BLK_TOOL && s->open_key == key)
                    s->open_key = retired;
                old->key = retired;
                if (s->client == SL_PROTO_GEMINI && !old->done)
                    old->done = 1;
            }
            if ((id || name) && !tool_find(s, key)) {
                char made[64];
                if (!id) {
                    sl_tr_make_id(made, sizeof made, "call_", msg_id(s), strlen(msg_id(s)), key);
                    id = made;
                }
                ev_tool_start(s, key, id, name);
            }
            const char *args = sl_tr_str(fn, "arguments");
            if (args && *args)
                ev_tool_args(s, key, args, strlen(args));
        }
        const char *fr = sl_tr_nstr(ch, "finish_reason");
        if (fr) {
            s->finish_seen = 1;
            ev_finish(s, sl_tr_stop_from_openai(fr), NULL);
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
        ev_start(s);
    } else if (!strcmp(type, "content_block_start")) {
        long idx = sl_tr_int(o, "index", -1);
        int *kind = an_kind_slot(s, idx);
        if (!kind)
            return -1;
        json_t *b = json_object_get(o, "content_block");
        const char *bt = sl_tr_str(b, "type");
        *kind = BLK_OTHER;
        if (bt && !strcmp(bt, "text")) {
            *kind = BLK_TEXT;
            const char *t = sl_tr_str(b, "text");
            if (t)
                ev_text(s, t, 0);
        } else if (bt && !strcmp(bt, "thinking")) {
            *kind = BLK_THINKING;
            const char *t = sl_tr_str(b, "thinking");
            if (t)
                ev_text(s, t, 1);
        } else if (bt && !strcmp(bt, "tool_use")) {
            *kind = BLK_TOOL;
            ev_tool_start(s, idx, sl_tr_str(b, "id"), sl_tr_str(b, "name"));
            json_t *input = json_object_get(b, "input");
            if (json_object_size(input)) {
                char *js = sl_json_dumps(input, JSON_COMPACT);
                if (js)
                    ev_tool_args(s, idx, js, strlen(js));
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
        if (!strcmp(dt, "text_delta") && *kind == BLK_TEXT)
            ev_text(s, sl_tr_str(d, "text") ? sl_tr_str(d, "text") : "", 0);
        else if (!strcmp(dt, "thinking_delta") && *kind == BLK_THINKING)
            ev_text(s, sl_tr_str(d, "thinking") ? sl_tr_str(d, "thinking") : "", 1);
        else if (!strcmp(dt, "input_json_delta") && *kind == BLK_TOOL) {
            const char *pj = sl_tr_str(d, "partial_json");
            if (pj)
                ev_tool_args(s, idx, pj, strlen(pj));
        }
    } else if (!strcmp(type, "content_block_stop")) {
        long idx = sl_tr_int(o, "index", -1);
        int *kind = an_kind_slot(s, idx);
        if (kind && *kind == BLK_TOOL)
            ev_tool_end(s, idx);
    } else if (!strcmp(type, "message_delta")) {
        json_t *d = json_object_get(o, "delta");
        sl_tr_usage_from_anthropic(json_object_get(o, "usage"), &s->usage);
        if (sl_tr_str(d, "stop_reason"))
            ev_finish(s, sl_tr_str(d, "stop_reason"), sl_tr_str(d, "stop_sequence"));
    } else if (!strcmp(type, "message_stop")) {
        ev_end(s);
    } else if (!strcmp(type, "error")) {
        json_t *e = json_object_get(o, "error");
        ev_error(s, sl_tr_str(e, "type"), sl_tr_str(e, "message"));
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
        ev_error(s, sl_tr_str(e, "status"), sl_tr_str(e, "message"));
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
    ev_start(s);
    json_t *cand = json_array_get(json_object_get(o, "candidates"), 0);
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(json_object_get(cand, "content"), "parts"), i, p) {
        const char *t = sl_tr_str(p, "text");
        json_t *fc = json_object_get(p, "functionCall");
        if (t) {
            ev_text(s, t, json_is_true(json_object_get(p, "thought")));
        } else if (json_is_object(fc)) {
            long key = s->gm_tool_count++;
            char id[64];
            const char *given = sl_tr_nstr(fc, "id");
            if (given)
                snprintf(id, sizeof id, "%s", given);
            else
                sl_tr_make_id(id, sizeof id, "call_", msg_id(s), strlen(msg_id(s)), key);
            ev_tool_start(s, key, id, sl_tr_str(fc, "name"));
            json_t *args = json_object_get(fc, "args");
            json_t *none = json_is_object(args) ? NULL : json_object();
            char *js = sl_json_dumps(json_is_object(args) ? args : none, JSON_COMPACT);
            json_decref(none);
            if (js)
                ev_tool_args(s, key, js, strlen(js));
            free(js);
            ev_tool_end(s, key);
            s->gm_saw_tool = 1;
        }
    }
    const char *fr = sl_tr_nstr(cand, "finishReason");
    json_t *pf = json_object_get(o, "promptFeedback");
    if (!fr && sl_tr_nstr(pf, "blockReason") && !cand)
        fr = "SAFETY";
    if (fr) {
        s->finish_seen = 1;
        ev_finish(s, sl_tr_stop_from_gemini(fr, s->gm_saw_tool), NULL);
        /* Gemini has no end marker: the finish is the last content. */
        ev_end(s);
    }
    return 0;
}

static int on_event(void *ctx, const sl_sse_event *ev)
{
    sl_stream *s = ctx;
    if (s->up == SL_PROTO_OPENAI && ev->data_len == 6 && !memcmp(ev->data, "[DONE]", 6)) {
        ev_end(s);
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
        ev_end(s); /* finish_reason but no [DONE]: complete enough */
    s->out = NULL;
    if (rc != 0) {
        s->failed = 1;
        return -1;
    }
    return s->terminal ? 0 : -1;
}

const sl_usage *sl_stream_usage(const sl_stream *s)
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
    free(s->an_kind);
    free(s->id);
    free(s->stop_reason);
    free(s->stop_sequence);
    free(s->client_model);
    free(s);
}
