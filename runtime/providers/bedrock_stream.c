/*
 * Bedrock streams as Anthropic SSE (see bedrock.h). InvokeModel's stream
 * carries one Anthropic stream event per `chunk` frame, base64 inside
 * {"bytes": ...}; it is re-emitted as `event: TYPE / data: JSON`. The
 * Converse stream's events (messageStart, contentBlockStart/Delta/Stop,
 * messageStop, metadata) are turned into the Anthropic event sequence:
 * message_start, a content_block_start before a block's first delta,
 * deltas, content_block_stop, then message_delta (stop reason and usage,
 * which Converse sends last, in metadata) and message_stop.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws/eventstream.h"
#include "json/json_out.h"
#include "providers/bedrock.h"

enum { MAX_BLOCKS = 64 };

struct sl_bedrock_stream {
    sl_es_decoder dec;
    int converse;
    char *model;
    int started;       /* message_start sent */
    int stopped;       /* messageStop / message_stop seen */
    int done;          /* message_stop sent */
    int exception;     /* an exception frame arrived: the stream failed */
    char stop_reason[32];
    unsigned char open[MAX_BLOCKS]; /* converse: 0 none, 1 text, 2 tool, 3 thinking, 4 closed */
    char err[256];
};

sl_bedrock_stream *sl_bedrock_stream_new(int converse, const char *model)
{
    sl_bedrock_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    sl_es_init(&s->dec);
    s->converse = converse;
    s->model = strdup(model ? model : "");
    if (!s->model) {
        free(s);
        return NULL;
    }
    return s;
}

void sl_bedrock_stream_free(void *p)
{
    sl_bedrock_stream *s = p;
    if (!s)
        return;
    sl_es_free(&s->dec);
    free(s->model);
    free(s);
}

const char *sl_bedrock_stream_error(const sl_bedrock_stream *s) { return s->err[0] ? s->err : NULL; }

static int fail(sl_bedrock_stream *s, const char *why)
{
    snprintf(s->err, sizeof s->err, "%s", why);
    return -1;
}

/* `event: type\ndata: json\n\n`; takes the reference. */
static int emit(sl_buf *out, const char *type, json_t *o)
{
    if (!o)
        return -1;
    char *js = sl_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (!js)
        return -1;
    int rc = sl_buf_appendf(out, "event: %s\ndata: %s\n\n", type, js);
    free(js);
    return rc;
}

/* An exception frame ends the stream: the relay reports it to the client
 * in the client's own error shape, with AWS's type and message. */
static int exception(sl_bedrock_stream *s, const sl_es_msg *m)
{
    sl_es_str et = sl_es_header(m, ":exception-type");
    if (!et.p)
        et = sl_es_header(m, ":error-code");
    json_t *pl = json_loadb(m->payload, m->payload_len, 0, NULL);
    const char *msg = json_string_value(json_object_get(pl, "message"));
    if (!msg)
        msg = json_string_value(json_object_get(pl, "Message"));
    sl_es_str em = sl_es_header(m, ":error-message");
    /* Printable ASCII only: the text goes into an error and the log. */
    snprintf(s->err, sizeof s->err, "Bedrock stream exception %.*s: %.*s", et.p ? (int)(et.n < 48 ? et.n : 48) : 7,
             et.p ? et.p : "unknown", msg ? 160 : (int)(em.n < 160 ? em.n : 160), msg ? msg : em.p ? em.p : "");
    for (char *c = s->err; *c; c++)
        if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
            *c = '?';
    json_decref(pl);
    s->exception = 1;
    return -1;
}

static int invoke_chunk(sl_bedrock_stream *s, const sl_es_msg *m, sl_buf *out)
{
    json_t *pl = json_loadb(m->payload, m->payload_len, 0, NULL);
    const char *b64 = json_string_value(json_object_get(pl, "bytes"));
    if (!b64) {
        json_decref(pl);
        return fail(s, "chunk without bytes");
    }
    size_t n = strlen(b64);
    unsigned char *raw = malloc(n / 4 * 3 + 1);
    long rn = raw ? sl_es_base64_decode(b64, n, raw) : -1;
    json_decref(pl);
    json_t *ev = rn >= 0 ? json_loadb((const char *)raw, (size_t)rn, 0, NULL) : NULL;
    free(raw);
    const char *type = json_string_value(json_object_get(ev, "type"));
    if (!type) {
        json_decref(ev);
        return fail(s, "chunk is not an Anthropic stream event");
    }
    if (!strcmp(type, "message_start"))
        s->started = 1;
    if (!strcmp(type, "message_stop"))
        s->stopped = s->done = 1;
    char t[64];
    snprintf(t, sizeof t, "%s", type);
    return emit(out, t, ev);
}

static int start(sl_bedrock_stream *s, sl_buf *out)
{
    if (s->started)
        return 0;
    s->started = 1;
    /* Converse streams carry no message id: one of ours, unique in
     * this process, fixed width. */
    static _Atomic unsigned long long next_id;
    char id[64];
    snprintf(id, sizeof id, "msg_bdrk_%016llx", ++next_id);
    return emit(out, "message_start",
                json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i}}}", "type", "message_start",
                          "message", "id", id, "type", "message", "role", "assistant", "model", s->model,
                          "content", "stop_reason", "stop_sequence", "usage", "input_tokens", 0,
                          "output_tokens", 0));
}

static int block_start(sl_bedrock_stream *s, long idx, int kind, json_t *tool, sl_buf *out)
{
    json_t *cb = kind == 2 ? json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id",
                                       json_string_value(json_object_get(tool, "toolUseId")) ?: "", "name",
                                       json_string_value(json_object_get(tool, "name")) ?: "", "input")
                 : kind == 3 ? json_pack("{s:s,s:s}", "type", "thinking", "thinking", "")
                             : json_pack("{s:s,s:s}", "type", "text", "text", "");
    s->open[idx] = (unsigned char)kind;
    return emit(out, "content_block_start",
                json_pack("{s:s,s:i,s:o}", "type", "content_block_start", "index", (int)idx, "content_block", cb));
}

static const char *stop_from_converse(const char *r)
{
    if (!r)
        return "end_turn";
    if (!strcmp(r, "tool_use") || !strcmp(r, "max_tokens") || !strcmp(r, "stop_sequence") ||
        !strcmp(r, "end_turn"))
        return r;
    if (!strcmp(r, "guardrail_intervened") || !strcmp(r, "content_filtered"))
        return "refusal";
    return "end_turn";
}

static int converse_end(sl_bedrock_stream *s, json_t *usage, sl_buf *out)
{
    if (s->done)
        return 0;
    s->done = 1;
    json_t *u = json_pack("{s:I,s:I}", "input_tokens",
                          (json_int_t)json_integer_value(json_object_get(usage, "inputTokens")), "output_tokens",
                          (json_int_t)json_integer_value(json_object_get(usage, "outputTokens")));
    json_t *cr = json_object_get(usage, "cacheReadInputTokens");
    if (json_is_integer(cr))
        json_object_set(u, "cache_read_input_tokens", cr);
    json_t *cw = json_object_get(usage, "cacheWriteInputTokens");
    if (json_is_integer(cw))
        json_object_set(u, "cache_creation_input_tokens", cw);
    if (emit(out, "message_delta",
             json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta", "stop_reason",
                       stop_from_converse(s->stop_reason[0] ? s->stop_reason : NULL), "stop_sequence", "usage",
                       u)) != 0)
        return -1;
    return emit(out, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

static int converse_event(sl_bedrock_stream *s, const sl_es_msg *m, sl_buf *out)
{
    sl_es_str et = sl_es_header(m, ":event-type");
    char type[40];
    snprintf(type, sizeof type, "%.*s", et.p ? (int)(et.n < 39 ? et.n : 39) : 0, et.p ? et.p : "");
    json_t *ev = json_loadb(m->payload, m->payload_len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return fail(s, "Converse event payload is not a JSON object");
    }
    int rc = 0;
    long idx = (long)json_integer_value(json_object_get(ev, "contentBlockIndex"));
    if (idx < 0 || idx >= MAX_BLOCKS) {
        json_decref(ev);
        return fail(s, "Converse content block index out of range");
    }
    if (!strcmp(type, "messageStart")) {
        rc = start(s, out);
    } else if (!strcmp(type, "contentBlockStart")) {
        json_t *tool = json_object_get(json_object_get(ev, "start"), "toolUse");
        rc = start(s, out);
        if (!rc && !s->open[idx])
            rc = block_start(s, idx, json_is_object(tool) ? 2 : 1, tool, out);
    } else if (!strcmp(type, "contentBlockDelta")) {
        json_t *d = json_object_get(ev, "delta");
        const char *text = json_string_value(json_object_get(d, "text"));
        json_t *tu = json_object_get(d, "toolUse");
        const char *think = json_string_value(json_object_get(json_object_get(d, "reasoningContent"), "text"));
        rc = start(s, out);
        if (!rc && !s->open[idx])
            rc = block_start(s, idx, tu ? 2 : think ? 3 : 1, NULL, out);
        if (rc)
            ;
        else if (text)
            rc = emit(out, "content_block_delta",
                      json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", (int)idx, "delta",
                                "type", "text_delta", "text", text));
        else if (json_is_object(tu))
            rc = emit(out, "content_block_delta",
                      json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", (int)idx, "delta",
                                "type", "input_json_delta", "partial_json",
                                json_string_value(json_object_get(tu, "input")) ?: ""));
        else if (think)
            rc = emit(out, "content_block_delta",
                      json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", (int)idx, "delta",
                                "type", "thinking_delta", "thinking", think));
    } else if (!strcmp(type, "contentBlockStop")) {
        if (s->open[idx] && s->open[idx] != 4) {
            s->open[idx] = 4;
            rc = emit(out, "content_block_stop",
                      json_pack("{s:s,s:i}", "type", "content_block_stop", "index", (int)idx));
        }
    } else if (!strcmp(type, "messageStop")) {
        s->stopped = 1;
        snprintf(s->stop_reason, sizeof s->stop_reason, "%s",
                 json_string_value(json_object_get(ev, "stopReason")) ?: "end_turn");
    } else if (!strcmp(type, "metadata")) {
        rc = start(s, out);
        if (!rc)
            rc = converse_end(s, json_object_get(ev, "usage"), out);
    }
    /* Unknown event types are skipped, as AWS asks of clients. */
    json_decref(ev);
    return rc;
}

int sl_bedrock_stream_feed(sl_bedrock_stream *s, const char *p, size_t n, sl_buf *out)
{
    if (sl_es_feed(&s->dec, p, n) != 0)
        return fail(s, "out of memory");
    sl_es_msg m;
    int r;
    while ((r = sl_es_next(&s->dec, &m)) == 1) {
        if (s->exception)
            continue; /* nothing after an exception is trusted */
        sl_es_str mt = sl_es_header(&m, ":message-type");
        int rc;
        if (mt.p && !(mt.n == 5 && !memcmp(mt.p, "event", 5)))
            rc = exception(s, &m);
        else if (s->converse)
            rc = converse_event(s, &m, out);
        else
            rc = invoke_chunk(s, &m, out);
        if (rc != 0)
            return s->err[0] ? -1 : fail(s, "out of memory");
    }
    if (r < 0)
        return fail(s, s->dec.err);
    return 0;
}

int sl_bedrock_stream_finish(sl_bedrock_stream *s, sl_buf *out)
{
    if (s->exception)
        return -1;
    if (sl_es_pending(&s->dec))
        return fail(s, "event stream ended inside a frame");
    if (s->converse && s->stopped && !s->done)
        return converse_end(s, NULL, out); /* no metadata event: no usage */
    if (!s->done)
        return fail(s, "event stream ended before the end of the message");
    return 0;
}
