/*
 * Mock provider responses, built with jansson. The text is a fixed sentence
 * plus a short echo of the last user message, so tests can assert on it and
 * users can see their request arrived; token counts are derived from sizes,
 * never random. Tool use: when the request offers tools and the last turn is
 * the user's, the mock calls the first tool with arguments that satisfy the
 * tool's required properties; after a tool result it answers with text.
 */
#include "providers/mock.h"

#include <ev.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/buf.h"
#include "govern/usage.h"
#include "json/json_out.h"

static atomic_ulong mock_seq;

static long estimate_tokens(size_t body_len)
{
    int64_t n = sl_usage_estimate_tokens(body_len);
    return n > 0 ? (long)n : 1;
}

/* Text of the last message's last text part (string content or blocks). */
static const char *last_text(json_t *msgs, int *is_tool_result, const char **tool_text)
{
    *is_tool_result = 0;
    *tool_text = NULL;
    size_t n = json_array_size(msgs);
    if (n == 0)
        return "";
    json_t *m = json_array_get(msgs, n - 1);
    const char *role = json_string_value(json_object_get(m, "role"));
    json_t *content = json_object_get(m, "content");
    if (role && strcmp(role, "tool") == 0) {
        *is_tool_result = 1;
        *tool_text = json_string_value(content);
        return "";
    }
    if (json_is_string(content))
        return json_string_value(content);
    const char *text = "";
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type)
            continue;
        if (strcmp(type, "text") == 0 && json_is_string(json_object_get(part, "text")))
            text = json_string_value(json_object_get(part, "text"));
        if (strcmp(type, "tool_result") == 0) {
            *is_tool_result = 1;
            json_t *c = json_object_get(part, "content");
            if (json_is_string(c))
                *tool_text = json_string_value(c);
            else if (json_is_array(c) && json_array_size(c) > 0)
                *tool_text = json_string_value(json_object_get(json_array_get(c, 0), "text"));
        }
    }
    return text;
}

static json_t *args_for_schema(json_t *schema)
{
    json_t *args = json_object();
    json_t *props = json_object_get(schema, "properties");
    json_t *req = json_object_get(schema, "required");
    size_t i;
    json_t *name;
    json_array_foreach(req, i, name) {
        const char *k = json_string_value(name);
        if (!k)
            continue;
        const char *type = json_string_value(json_object_get(json_object_get(props, k), "type"));
        json_t *v;
        if (type && (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0))
            v = json_integer(1);
        else if (type && strcmp(type, "boolean") == 0)
            v = json_true();
        else if (type && strcmp(type, "array") == 0)
            v = json_array();
        else if (type && strcmp(type, "object") == 0)
            v = json_object();
        else
            v = json_string("mock");
        json_object_set_new(args, k, v);
    }
    return args;
}

typedef struct mock_answer {
    char text[512];
    const char *tool_name;  /* non-NULL: call this tool */
    char *tool_args;        /* malloc'd JSON */
    long in_tokens, out_tokens;
} mock_answer;

static void compose(mock_answer *a, json_t *req, const char *model, size_t body_len)
{
    memset(a, 0, sizeof *a);
    json_t *msgs = json_object_get(req, "messages");
    int tool_result = 0;
    const char *tool_text = NULL;
    const char *said = last_text(msgs, &tool_result, &tool_text);
    json_t *tools = json_object_get(req, "tools");
    if (!tool_result && json_array_size(tools) > 0) {
        json_t *t0 = json_array_get(tools, 0);
        json_t *fn = json_object_get(t0, "function"); /* OpenAI shape */
        const char *name = json_string_value(json_object_get(fn ? fn : t0, "name"));
        json_t *schema = fn ? json_object_get(fn, "parameters") : json_object_get(t0, "input_schema");
        if (name) {
            a->tool_name = name;
            json_t *args = args_for_schema(schema);
            a->tool_args = sl_json_dumps(args, JSON_COMPACT);
            json_decref(args);
        }
    }
    if (tool_result) {
        snprintf(a->text, sizeof a->text, "The tool returned: %.200s", tool_text ? tool_text : "");
    } else {
        snprintf(a->text, sizeof a->text,
                 "Hello from the sluice mock provider (model %.80s). You said: %.120s", model, said);
    }
    a->in_tokens = estimate_tokens(body_len);
    long words = 1;
    for (const char *p = a->text; *p; p++)
        if (*p == ' ')
            words++;
    a->out_tokens = a->tool_name ? 10 : words;
}

/* Splits text into word-sized pieces (each keeps its leading space), the
 * way providers stream tokens. */
static size_t next_piece(const char *s, size_t at, size_t len)
{
    size_t i = at + 1;
    while (i < len && s[i] != ' ')
        i++;
    return i;
}

/* What the mock "sends": a status, a content type and the body bytes. */
typedef struct mock_out {
    int status;
    const char *ctype;
    sl_buf body;
    int failed;           /* out of memory while composing */
} mock_out;

static void put(mock_out *o, const char *s, size_t n)
{
    if (!o->failed && sl_buf_append(&o->body, s, n) != 0)
        o->failed = 1;
}

static void sse_send(mock_out *o, const char *event, json_t *data)
{
    char *js = data ? sl_json_dumps(data, JSON_COMPACT) : NULL;
    json_decref(data);
    if (!js) {
        o->failed = 1;
        return;
    }
    if (event) {
        put(o, "event: ", 7);
        put(o, event, strlen(event));
        put(o, "\n", 1);
    }
    put(o, "data: ", 6);
    put(o, js, strlen(js));
    put(o, "\n\n", 2);
    free(js);
}

static void stream_begin(mock_out *o)
{
    o->status = 200;
    o->ctype = "text/event-stream";
}

static void respond_json(mock_out *o, json_t *body)
{
    char *js = body ? sl_json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    o->status = 200;
    o->ctype = "application/json";
    if (!js)
        o->failed = 1;
    else
        put(o, js, strlen(js));
    free(js);
}

static void openai_chat(mock_out *c, const mock_answer *a, const char *model, int stream,
                        int include_usage)
{
    unsigned long seq = atomic_fetch_add(&mock_seq, 1);
    char id[64];
    snprintf(id, sizeof id, "chatcmpl-mock-%lu", seq);
    long created = (long)time(NULL);
    json_t *usage = json_pack("{s:i,s:i,s:i}", "prompt_tokens", (json_int_t)a->in_tokens,
                              "completion_tokens", (json_int_t)a->out_tokens, "total_tokens",
                              (json_int_t)(a->in_tokens + a->out_tokens));
    char call_id[64];
    snprintf(call_id, sizeof call_id, "call_mock_%lu", seq);
    if (!stream) {
        json_t *msg;
        if (a->tool_name)
            msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}]}", "role", "assistant", "content",
                            "tool_calls", "id", call_id, "type", "function", "function", "name",
                            a->tool_name, "arguments", a->tool_args);
        else
            msg = json_pack("{s:s,s:s,s:n}", "role", "assistant", "content", a->text, "refusal");
        json_t *body = json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:n,s:s}],s:o}", "id", id, "object",
                                 "chat.completion", "created", (json_int_t)created, "model", model,
                                 "choices", "index", 0, "message", msg, "logprobs", "finish_reason",
                                 a->tool_name ? "tool_calls" : "stop", "usage", usage);
        respond_json(c, body);
        return;
    }
    stream_begin(c);
#define CHUNK(delta, finish)                                                                        \
    json_pack("{s:s,s:s,s:i,s:s,s:[{s:i,s:o,s:o}]}", "id", id, "object", "chat.completion.chunk",  \
              "created", (json_int_t)created, "model", model, "choices", "index", 0, "delta",      \
              (delta), "finish_reason", (finish))
    sse_send(c, NULL, CHUNK(json_pack("{s:s,s:s}", "role", "assistant", "content", ""), json_null()));
    if (a->tool_name) {
        sse_send(c, NULL,
                 CHUNK(json_pack("{s:[{s:i,s:s,s:s,s:{s:s,s:s}}]}", "tool_calls", "index", 0, "id",
                                 call_id, "type", "function", "function", "name", a->tool_name,
                                 "arguments", ""),
                       json_null()));
        sse_send(c, NULL,
                 CHUNK(json_pack("{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function",
                                 "arguments", a->tool_args),
                       json_null()));
    } else {
        size_t len = strlen(a->text);
        for (size_t at = 0; at < len;) {
            size_t end = next_piece(a->text, at, len);
            sse_send(c, NULL, CHUNK(json_pack("{s:s%}", "content", a->text + at, end - at), json_null()));
            at = end;
        }
    }
    sse_send(c, NULL, CHUNK(json_object(), json_string(a->tool_name ? "tool_calls" : "stop")));
#undef CHUNK
    if (include_usage)
        sse_send(c, NULL,
                 json_pack("{s:s,s:s,s:i,s:s,s:[],s:O}", "id", id, "object", "chat.completion.chunk",
                           "created", (json_int_t)created, "model", model, "choices", "usage", usage));
    json_decref(usage);
    put(c, "data: [DONE]\n\n", 14);
}

static void anthropic_messages(mock_out *c, const mock_answer *a, const char *model, int stream)
{
    unsigned long seq = atomic_fetch_add(&mock_seq, 1);
    char id[64], tool_id[64];
    snprintf(id, sizeof id, "msg_mock_%lu", seq);
    snprintf(tool_id, sizeof tool_id, "toolu_mock_%lu", seq);
    if (!stream) {
        json_t *block;
        if (a->tool_name) {
            json_t *input = json_loads(a->tool_args, 0, NULL);
            block = json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", tool_id, "name",
                              a->tool_name, "input", input ? input : json_object());
        } else {
            block = json_pack("{s:s,s:s}", "type", "text", "text", a->text);
        }
        json_t *body = json_pack(
            "{s:s,s:s,s:s,s:s,s:[o],s:s,s:n,s:{s:i,s:i,s:i,s:i}}", "id", id, "type", "message",
            "role", "assistant", "model", model, "content", block, "stop_reason",
            a->tool_name ? "tool_use" : "end_turn", "stop_sequence", "usage", "input_tokens",
            (json_int_t)a->in_tokens, "output_tokens", (json_int_t)a->out_tokens,
            "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0);
        respond_json(c, body);
        return;
    }
    stream_begin(c);
    sse_send(c, "message_start",
             json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:i,s:i,s:i,s:i}}}", "type",
                       "message_start", "message", "id", id, "type", "message", "role", "assistant",
                       "model", model, "content", "stop_reason", "stop_sequence", "usage",
                       "input_tokens", (json_int_t)a->in_tokens, "output_tokens", 1,
                       "cache_creation_input_tokens", 0, "cache_read_input_tokens", 0));
    if (a->tool_name) {
        sse_send(c, "content_block_start",
                 json_pack("{s:s,s:i,s:{s:s,s:s,s:s,s:{}}}", "type", "content_block_start", "index",
                           0, "content_block", "type", "tool_use", "id", tool_id, "name",
                           a->tool_name, "input"));
        sse_send(c, "ping", json_pack("{s:s}", "type", "ping"));
        sse_send(c, "content_block_delta",
                 json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", 0,
                           "delta", "type", "input_json_delta", "partial_json", a->tool_args));
    } else {
        sse_send(c, "content_block_start",
                 json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", 0,
                           "content_block", "type", "text", "text", ""));
        sse_send(c, "ping", json_pack("{s:s}", "type", "ping"));
        size_t len = strlen(a->text);
        for (size_t at = 0; at < len;) {
            size_t end = next_piece(a->text, at, len);
            sse_send(c, "content_block_delta",
                     json_pack("{s:s,s:i,s:{s:s,s:s%}}", "type", "content_block_delta", "index", 0,
                               "delta", "type", "text_delta", "text", a->text + at, end - at));
            at = end;
        }
    }
    sse_send(c, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    sse_send(c, "message_delta",
             json_pack("{s:s,s:{s:s,s:n},s:{s:i}}", "type", "message_delta", "delta", "stop_reason",
                       a->tool_name ? "tool_use" : "end_turn", "stop_sequence", "usage",
                       "output_tokens", (json_int_t)a->out_tokens));
    sse_send(c, "message_stop", json_pack("{s:s}", "type", "message_stop"));
}

/* ---- the in-process transfer --------------------------------------------
 *
 * The mock is an upstream like any other: it reads the request body the
 * gateway built for it (model renamed, stream_options added, exactly what a
 * real provider would get), picks the operation from the URL path, and
 * answers through the transfer callbacks on the next loop iteration, never
 * from inside start(). Pausing and cancelling work as with libcurl. */

typedef struct mock_xfer {
    ev_timer tick;
    struct ev_loop *loop;
    const sl_xfer_callbacks *cb;
    void *ctx;
    mock_out out;
    size_t off;
    int head_sent;
    int in_callback;  /* a cancel from the receiver's callback only marks */
    int cancelled;
} mock_xfer;

static void mock_free(mock_xfer *m)
{
    ev_timer_stop(m->loop, &m->tick);
    sl_buf_free(&m->out.body);
    free(m);
}

static int path_ends(const char *url, const char *suffix)
{
    size_t n = strlen(url), k = strlen(suffix);
    return n >= k && memcmp(url + n - k, suffix, k) == 0;
}

static void compose_reply(mock_out *o, const sl_xfer_spec *spec)
{
    json_error_t jerr;
    const char *b = spec->body ? spec->body : "";
    json_t *req = json_loadb(b, spec->body_len, 0, &jerr);
    /* jansson reports some failed allocations as syntax errors: a second
     * parse tells them apart. Out of memory is the mock's trouble (a
     * failed transfer), not a bad request. */
    if (!req)
        req = json_loadb(b, spec->body_len, 0, &jerr);
    if (!req && (json_error_code(&jerr) == json_error_out_of_memory || jerr.text[0] == '\0')) {
        o->failed = 1;
        return;
    }
    const char *model = json_string_value(json_object_get(req, "model"));
    if (!model)
        model = "mock";
    if (path_ends(spec->url, "/v1/messages/count_tokens")) {
        respond_json(o, json_pack("{s:i}", "input_tokens", (json_int_t)estimate_tokens(spec->body_len)));
    } else if (!json_is_object(req)) {
        o->status = 400;
        o->ctype = "application/json";
        put(o, "{\"error\":{\"message\":\"mock: request body is not a JSON object\"}}", 63);
    } else {
        mock_answer a;
        compose(&a, req, model, spec->body_len);
        int stream = json_is_true(json_object_get(req, "stream"));
        if (path_ends(spec->url, "/chat/completions"))
            openai_chat(o, &a, model, stream,
                        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage")));
        else
            anthropic_messages(o, &a, model, stream);
        free(a.tool_args);
    }
    json_decref(req);
}

static void mock_tick(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    mock_xfer *m = t->data;
    /* sl_xfer_cancel is safe from the transfer's own callbacks, so this
     * must be too: mock_cancel inside one only marks, and m is freed
     * here once the callback has returned. */
    m->in_callback = 1;
    if (m->out.failed) {
        m->cb->on_done(m->ctx, SL_XFER_ERROR, "mock: out of memory");
        mock_free(m);
        return;
    }
    if (!m->head_sent) {
        m->head_sent = 1;
        sl_xfer_head h = {.status = m->out.status, .content_type = m->out.ctype, .passthrough = "",
                          .passthrough_len = 0, .retry_after_s = -1};
        m->cb->on_head(m->ctx, &h);
        if (m->cancelled) {
            mock_free(m);
            return;
        }
    }
    while (m->off < m->out.body.len) {
        size_t r = m->cb->on_data(m->ctx, m->out.body.data + m->off, m->out.body.len - m->off);
        if (m->cancelled) {
            mock_free(m);
            return;
        }
        if (r == SL_XFER_PAUSE) {
            m->in_callback = 0;
            return; /* mock_resume re-arms the timer */
        }
        if (r == 0) {
            m->cb->on_done(m->ctx, SL_XFER_ERROR, "aborted by the receiver");
            mock_free(m);
            return;
        }
        m->off += r;
    }
    m->cb->on_done(m->ctx, SL_XFER_OK, NULL);
    mock_free(m);
}

static void *mock_start(struct ev_loop *loop, sl_upstream *up, const sl_xfer_spec *spec,
                        const sl_xfer_callbacks *cb, void *ctx)
{
    (void)up;
    mock_xfer *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->loop = loop;
    m->cb = cb;
    m->ctx = ctx;
    compose_reply(&m->out, spec);
    ev_timer_init(&m->tick, mock_tick, 0., 0.);
    m->tick.data = m;
    ev_timer_start(loop, &m->tick);
    return m;
}

static void mock_cancel(void *x)
{
    mock_xfer *m = x;
    if (m->in_callback)
        m->cancelled = 1;
    else
        mock_free(m);
}

static void mock_resume(void *x)
{
    mock_xfer *m = x;
    if (!ev_is_active(&m->tick)) {
        ev_timer_set(&m->tick, 0., 0.);
        ev_timer_start(m->loop, &m->tick);
    }
}

static const sl_transport mock_transport = {mock_start, mock_cancel, mock_resume};

/* ---- the adapter ---------------------------------------------------------- */

/* The mock answers OpenAI chat and Anthropic messages in their own
 * protocols (Responses clients get Anthropic, translated); Gemini clients
 * and embeddings are not served. */
static int serves(sl_op op)
{
    return op == SL_OP_CHAT || op == SL_OP_MESSAGES || op == SL_OP_COUNT_TOKENS || op == SL_OP_RESPONSES;
}

static sl_proto proto(sl_op op)
{
    return op == SL_OP_CHAT ? SL_PROTO_OPENAI : SL_PROTO_ANTHROPIC;
}

static const char *url(const sl_call *c)
{
    return c->op == SL_OP_CHAT           ? "mock:/v1/chat/completions"
           : c->op == SL_OP_COUNT_TOKENS ? "mock:/v1/messages/count_tokens"
                                         : "mock:/v1/messages";
}

const sl_provider_ops sl_provider_mock = {
    .kind = "mock",
    .serves = serves,
    .proto = proto,
    .url = url,
    .auth_format = NULL,
    .headers = NULL,
    .transport = &mock_transport,
};
