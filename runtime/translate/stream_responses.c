/*
 * The Responses API stream writer (see stream_write.c for the neutral
 * calls). A Responses stream is a response lifecycle around output items:
 * response.created and .in_progress, then per item .output_item.added,
 * its content events (a message's content part and text deltas, a
 * reasoning item's summary, a function call's argument deltas), and
 * .output_item.done with the whole item; the end repeats the whole
 * response with usage in response.completed (or .incomplete, .failed).
 * Every event carries a sequence number, and clients (the SDK's stream
 * helpers, Codex) check each item's done event against what the deltas
 * built, so text and arguments are kept until their item closes.
 */
#include <stdlib.h>
#include <string.h>

#include "json/json_out.h"
#include "translate/translate_internal.h"

static void emit(sl_stream *s, const char *type, json_t *o)
{
    if (!o)
        return;
    json_object_set_new(o, "type", json_string(type));
    json_object_set_new(o, "sequence_number", json_integer(s->rw_seq++));
    char *js = sl_json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!js)
        return;
    sl_buf_appendf(s->out, "event: %s\ndata: %s\n\n", type, js);
    free(js);
    s->started = 1;
}

static void item_id(sl_stream *s, char *buf, size_t cap, const char *prefix, long index)
{
    const char *mid = sl_tr_msg_id(s);
    sl_tr_make_id(buf, cap, prefix, mid, strlen(mid), index);
}

/* The response as it stands: output so far, and usage once ended. */
static json_t *response(sl_stream *s, const char *status)
{
    char id[64];
    item_id(s, id, sizeof id, "resp_", 0);
    json_t *o = sl_tr_responses_envelope(s->rw_id ? s->rw_id : id, s->client_model, s->created, status);
    if (s->rw_prev)
        json_object_set_new(o, "previous_response_id", json_string(s->rw_prev));
    if (s->rw_output)
        json_object_set(o, "output", s->rw_output);
    return o;
}

/* An item opens at the next output index; its slot in the final output
 * list holds the in-progress item until .output_item.done replaces it. */
static int item_add(sl_stream *s, json_t *item)
{
    if (!s->rw_output)
        s->rw_output = json_array();
    int index = (int)json_array_size(s->rw_output);
    json_array_append(s->rw_output, item);
    emit(s, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", index, "item", item));
    return index;
}

static void item_done(sl_stream *s, int index, json_t *item)
{
    json_array_set(s->rw_output, (size_t)index, item);
    emit(s, "response.output_item.done", json_pack("{s:i,s:o}", "output_index", index, "item", item));
}

void sl_tr_rw_start(sl_stream *s)
{
    if (s->w_started)
        return;
    s->w_started = 1;
    emit(s, "response.created", json_pack("{s:o}", "response", response(s, "in_progress")));
    emit(s, "response.in_progress", json_pack("{s:o}", "response", response(s, "in_progress")));
}

/* Closes the open message or reasoning item with the text it built. */
static void close_text(sl_stream *s)
{
    if (s->open_kind == SL_TR_BLK_NONE)
        return;
    char id[64];
    int index = s->rw_open_index;
    json_t *text = json_stringn(s->rw_text.data ? s->rw_text.data : "", s->rw_text.len);
    if (!text)
        text = json_string("");
    if (s->open_kind == SL_TR_BLK_TEXT) {
        item_id(s, id, sizeof id, "msg_", index);
        json_t *part = json_pack("{s:s,s:O,s:[]}", "type", "output_text", "text", text, "annotations");
        emit(s, "response.output_text.done",
             json_pack("{s:s,s:i,s:i,s:O,s:[]}", "item_id", id, "output_index", index, "content_index", 0, "text",
                       text, "logprobs"));
        emit(s, "response.content_part.done", json_pack("{s:s,s:i,s:i,s:O}", "item_id", id, "output_index", index,
                                                        "content_index", 0, "part", part));
        item_done(s, index, json_pack("{s:s,s:s,s:s,s:s,s:[o]}", "id", id, "type", "message", "status", "completed",
                                      "role", "assistant", "content", part));
    } else {
        item_id(s, id, sizeof id, "rs_", index);
        json_t *part = json_pack("{s:s,s:O}", "type", "summary_text", "text", text);
        emit(s, "response.reasoning_summary_text.done",
             json_pack("{s:s,s:i,s:i,s:O}", "item_id", id, "output_index", index, "summary_index", 0, "text", text));
        emit(s, "response.reasoning_summary_part.done", json_pack("{s:s,s:i,s:i,s:O}", "item_id", id, "output_index",
                                                                  index, "summary_index", 0, "part", part));
        item_done(s, index, json_pack("{s:s,s:s,s:[o]}", "id", id, "type", "reasoning", "summary", part));
    }
    json_decref(text);
    sl_buf_clear(&s->rw_text);
    s->open_kind = SL_TR_BLK_NONE;
}

void sl_tr_rw_text(sl_stream *s, const char *t, int thinking)
{
    int kind = thinking ? SL_TR_BLK_THINKING : SL_TR_BLK_TEXT;
    char id[64];
    if (s->open_kind != kind) {
        close_text(s);
        long index = s->rw_output ? (long)json_array_size(s->rw_output) : 0;
        item_id(s, id, sizeof id, thinking ? "rs_" : "msg_", index);
        if (thinking) {
            s->rw_open_index = item_add(s, json_pack("{s:s,s:s,s:[]}", "id", id, "type", "reasoning", "summary"));
            emit(s, "response.reasoning_summary_part.added",
                 json_pack("{s:s,s:i,s:i,s:{s:s,s:s}}", "item_id", id, "output_index", s->rw_open_index,
                           "summary_index", 0, "part", "type", "summary_text", "text", ""));
        } else {
            s->rw_open_index = item_add(s, json_pack("{s:s,s:s,s:s,s:s,s:[]}", "id", id, "type", "message", "status",
                                                     "in_progress", "role", "assistant", "content"));
            emit(s, "response.content_part.added",
                 json_pack("{s:s,s:i,s:i,s:{s:s,s:s,s:[]}}", "item_id", id, "output_index", s->rw_open_index,
                           "content_index", 0, "part", "type", "output_text", "text", "", "annotations"));
        }
        s->open_kind = kind;
    }
    item_id(s, id, sizeof id, thinking ? "rs_" : "msg_", s->rw_open_index);
    sl_buf_append(&s->rw_text, t, strlen(t));
    if (thinking)
        emit(s, "response.reasoning_summary_text.delta",
             json_pack("{s:s,s:i,s:i,s:s}", "item_id", id, "output_index", s->rw_open_index, "summary_index", 0,
                       "delta", t));
    else
        emit(s, "response.output_text.delta",
             json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", id, "output_index", s->rw_open_index, "content_index", 0,
                       "delta", t, "logprobs"));
}

static json_t *call_item(sl_stream *s, sl_tr_tool_slot *t, const char *status)
{
    char id[64];
    item_id(s, id, sizeof id, "fc_", t->out_index);
    json_t *args = json_stringn(t->args.data ? t->args.data : "", t->args.len);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:o*}", "id", id, "type", "function_call", "status", status, "call_id",
                     t->id, "name", t->name, "arguments", args ? args : json_string(""));
}

void sl_tr_rw_tool_start(sl_stream *s, sl_tr_tool_slot *t)
{
    close_text(s);
    long index = s->rw_output ? (long)json_array_size(s->rw_output) : 0;
    t->out_index = (int)index;
    item_add(s, call_item(s, t, "in_progress"));
}

void sl_tr_rw_tool_args(sl_stream *s, sl_tr_tool_slot *t, const char *frag, size_t n)
{
    json_t *d = json_stringn(frag, n);
    if (!d)
        return;
    sl_buf_append(&t->args, frag, n);
    char id[64];
    item_id(s, id, sizeof id, "fc_", t->out_index);
    emit(s, "response.function_call_arguments.delta",
         json_pack("{s:s,s:i,s:o}", "item_id", id, "output_index", t->out_index, "delta", d));
}

void sl_tr_rw_tool_end(sl_stream *s, sl_tr_tool_slot *t)
{
    if (t->done)
        return;
    t->done = 1;
    char id[64];
    item_id(s, id, sizeof id, "fc_", t->out_index);
    json_t *args = json_stringn(t->args.data ? t->args.data : "", t->args.len);
    emit(s, "response.function_call_arguments.done",
         json_pack("{s:s,s:i,s:s,s:o*}", "item_id", id, "output_index", t->out_index, "name", t->name, "arguments",
                   args ? args : json_string("")));
    item_done(s, t->out_index, call_item(s, t, "completed"));
}

/* Everything open is closed, then the whole response with usage. */
void sl_tr_rw_end(sl_stream *s, const char *stop)
{
    close_text(s);
    for (size_t i = 0; i < s->ntools; i++)
        sl_tr_rw_tool_end(s, &s->tools[i]);
    const char *incomplete;
    const char *status = sl_tr_responses_status(stop, &incomplete);
    json_t *r = response(s, status);
    if (incomplete)
        json_object_set_new(r, "incomplete_details", json_pack("{s:s}", "reason", incomplete));
    sl_usage_counts u = s->usage;
    json_object_set_new(r, "usage", sl_tr_responses_usage(&u));
    json_decref(s->rw_final);
    s->rw_final = json_incref(r);
    emit(s, incomplete ? "response.incomplete" : "response.completed", json_pack("{s:o}", "response", r));
}

int sl_stream_set_response_ids(sl_stream *s, const char *id, const char *previous)
{
    free(s->rw_id);
    free(s->rw_prev);
    s->rw_id = id ? strdup(id) : NULL;
    s->rw_prev = previous ? strdup(previous) : NULL;
    return (id && !s->rw_id) || (previous && !s->rw_prev) ? -1 : 0;
}

json_t *sl_stream_final_response(const sl_stream *s)
{
    return s->rw_final;
}

void sl_tr_rw_error(sl_stream *s, const char *type, const char *message)
{
    sl_tr_rw_start(s);
    json_t *r = response(s, "failed");
    json_object_set_new(r, "error", json_pack("{s:s,s:s}", "code", type ? type : "server_error", "message", message));
    emit(s, "response.failed", json_pack("{s:o}", "response", r));
}
