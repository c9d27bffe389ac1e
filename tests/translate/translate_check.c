/*
 * Helpers shared by the translator's tests (translate_check.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "translate/sse.h"
#include "translate/translate.h"
#include "translate_check.h"

/* ---- helpers ------------------------------------------------------------ */

char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    if (len)
        *len = (size_t)n;
    return buf;
}

/* Values that legitimately differ run to run are blanked. */
static void canonicalise(json_t *v)
{
    if (json_is_object(v)) {
        if (json_is_integer(json_object_get(v, "created")))
            json_object_set_new(v, "created", json_integer(0));
        if (json_is_integer(json_object_get(v, "created_at")))
            json_object_set_new(v, "created_at", json_integer(0));
        const char *k;
        json_t *e;
        json_object_foreach(v, k, e)
            canonicalise(e);
    } else if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e)
            canonicalise(e);
    }
}

json_t *parse_text(const char *s)
{
    json_error_t err;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("not JSON (%s): %.300s", err.text, s);
    canonicalise(v);
    return v;
}

void assert_json_equal(json_t *got, json_t *want, const char *what)
{
    if (json_equal(got, want))
        return;
    char *g = json_dumps(got, JSON_INDENT(1) | JSON_SORT_KEYS);
    char *w = json_dumps(want, JSON_INDENT(1) | JSON_SORT_KEYS);
    print_error("%s differs\n--- got:\n%s\n--- want:\n%s\n", what, g, w);
    free(g);
    free(w);
    fail();
}

static int collect_event(void *ctx, const sl_sse_event *ev)
{
    json_t *arr = ctx;
    json_t *o = json_object();
    if (ev->event_len)
        json_object_set_new(o, "event", json_stringn(ev->event, ev->event_len));
    json_t *d = json_loadb(ev->data, ev->data_len, JSON_DECODE_ANY, NULL);
    json_object_set_new(o, "data", d ? d : json_stringn(ev->data, ev->data_len));
    json_array_append_new(arr, o);
    return 0;
}

/* Client SSE bytes -> [{event?, data}] */
json_t *events_of(const char *p, size_t n)
{
    json_t *arr = json_array();
    sl_sse sse;
    sl_sse_init(&sse, 0);
    assert_int_equal(sl_sse_feed(&sse, p, n, collect_event, arr), 0);
    assert_int_equal(sl_sse_finish(&sse, collect_event, arr), 0);
    assert_int_equal(sl_sse_pending(&sse), 0);
    sl_sse_free(&sse);
    canonicalise(arr);
    return arr;
}

/* [{event?, data}] -> upstream SSE bytes; strings are sent verbatim. */
char *sse_of(json_t *events, int crlf, size_t *len)
{
    sl_buf b = {0};
    const char *nl = crlf ? "\r\n" : "\n";
    size_t i;
    json_t *e;
    json_array_foreach(events, i, e) {
        if (json_is_string(e)) {
            sl_buf_append(&b, json_string_value(e), json_string_length(e));
            continue;
        }
        const char *name = json_string_value(json_object_get(e, "event"));
        if (name)
            sl_buf_appendf(&b, "event: %s%s", name, nl);
        json_t *d = json_object_get(e, "data");
        if (json_is_string(d)) {
            sl_buf_appendf(&b, "data: %s%s%s", json_string_value(d), nl, nl);
        } else {
            char *js = json_dumps(d, JSON_COMPACT);
            sl_buf_appendf(&b, "data: %s%s%s", js, nl, nl);
            free(js);
        }
    }
    sl_buf_append(&b, "", 1);
    *len = b.len - 1;
    return b.data;
}

json_t *usage_json(const sl_usage_counts *u)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:b}", "input_tokens", (json_int_t)u->input, "output_tokens",
                     (json_int_t)u->output, "cache_read_tokens", (json_int_t)u->cache_read,
                     "cache_write_tokens", (json_int_t)u->cache_write, "have", u->have);
}

/* The framing Claude Code depends on: message_start first, message_stop
 * last, one block open at a time, each started block stopped, indices
 * 0,1,2... in order, deltas only to the open block and of its kind. */
void check_anthropic_stream(json_t *events, int complete)
{
    size_t i;
    json_t *e;
    int open = -1, next = 0, saw_start = 0, saw_stop = 0, saw_delta_msg = 0, saw_error = 0;
    const char *open_type = NULL;
    json_array_foreach(events, i, e) {
        json_t *d = json_object_get(e, "data");
        const char *type = json_string_value(json_object_get(d, "type"));
        const char *name = json_string_value(json_object_get(e, "event"));
        assert_non_null(type);
        assert_non_null(name);
        assert_string_equal(name, type);
        assert_false(saw_stop);
        if (!strcmp(type, "message_start")) {
            assert_int_equal(i, 0);
            saw_start = 1;
            continue;
        }
        assert_true(saw_start);
        assert_false(saw_error);
        if (!strcmp(type, "error"))
            saw_error = 1;
        if (!strcmp(type, "ping") || !strcmp(type, "error"))
            continue;
        int idx = (int)json_integer_value(json_object_get(d, "index"));
        if (!strcmp(type, "content_block_start")) {
            assert_int_equal(open, -1);
            assert_int_equal(idx, next);
            assert_false(saw_delta_msg);
            open = idx;
            next++;
            open_type = json_string_value(json_object_get(json_object_get(d, "content_block"), "type"));
        } else if (!strcmp(type, "content_block_delta")) {
            assert_int_equal(idx, open);
            const char *dt = json_string_value(json_object_get(json_object_get(d, "delta"), "type"));
            if (!strcmp(open_type, "text"))
                assert_string_equal(dt, "text_delta");
            else if (!strcmp(open_type, "tool_use"))
                assert_string_equal(dt, "input_json_delta");
            else if (!strcmp(open_type, "thinking"))
                assert_true(!strcmp(dt, "thinking_delta") || !strcmp(dt, "signature_delta"));
        } else if (!strcmp(type, "content_block_stop")) {
            assert_int_equal(idx, open);
            open = -1;
        } else if (!strcmp(type, "message_delta")) {
            assert_int_equal(open, -1);
            assert_non_null(json_string_value(json_object_get(json_object_get(d, "delta"), "stop_reason")));
            assert_true(json_is_integer(json_object_get(json_object_get(d, "usage"), "output_tokens")));
            saw_delta_msg = 1;
        } else if (!strcmp(type, "message_stop")) {
            assert_true(saw_delta_msg);
            saw_stop = 1;
        } else {
            fail_msg("unexpected event type %s", type);
        }
    }
    if (complete && !saw_error)
        assert_true(saw_stop);
}

/* Every tool_calls delta names an index; the first delta for an index
 * carries id, type and name; the stream ends with [DONE]. */
void check_openai_stream(json_t *events, int complete)
{
    size_t i;
    json_t *e;
    int seen[64] = {0}, finish = 0, done = 0, saw_error = 0;
    json_array_foreach(events, i, e) {
        json_t *d = json_object_get(e, "data");
        assert_false(done);
        if (json_is_string(d)) {
            assert_string_equal(json_string_value(d), "[DONE]");
            done = 1;
            continue;
        }
        assert_false(saw_error);
        if (json_object_get(d, "error")) {
            saw_error = 1;
            continue;
        }
        assert_string_equal(json_string_value(json_object_get(d, "object")), "chat.completion.chunk");
        json_t *ch = json_array_get(json_object_get(d, "choices"), 0);
        if (!ch) {
            assert_non_null(json_object_get(d, "usage"));
            continue;
        }
        assert_false(finish);
        if (json_string_value(json_object_get(ch, "finish_reason")))
            finish = 1;
        size_t k;
        json_t *tc;
        json_array_foreach(json_object_get(json_object_get(ch, "delta"), "tool_calls"), k, tc) {
            json_t *ix = json_object_get(tc, "index");
            assert_true(json_is_integer(ix));
            int idx = (int)json_integer_value(ix);
            assert_true(idx >= 0 && idx < 64);
            if (!seen[idx]) {
                assert_non_null(json_string_value(json_object_get(tc, "id")));
                assert_non_null(json_string_value(json_object_get(json_object_get(tc, "function"), "name")));
                if (idx > 0)
                    assert_true(seen[idx - 1]);
                seen[idx] = 1;
            }
        }
    }
    if (complete && !saw_error) {
        assert_true(finish);
        assert_true(done);
    }
}

/* What the SDK's Responses stream helpers and Codex rely on: the event
 * name is the data's type, sequence numbers count from 0 without gaps,
 * response.created first, items added at output indices 0,1,2... and each
 * done before the response ends, deltas only to an open item, the text
 * and arguments of a done event equal to what the deltas built, and one
 * terminal response.completed / .incomplete / .failed last. */
static void check_responses_stream(json_t *events, int complete)
{
    size_t i;
    json_t *e;
    int next = 0, open[64] = {0}, ended = 0;
    char built[64][512];
    json_array_foreach(events, i, e) {
        json_t *d = json_object_get(e, "data");
        const char *type = json_string_value(json_object_get(d, "type"));
        const char *name = json_string_value(json_object_get(e, "event"));
        assert_non_null(type);
        assert_non_null(name);
        assert_string_equal(name, type);
        assert_int_equal(json_integer_value(json_object_get(d, "sequence_number")), (json_int_t)i);
        assert_false(ended);
        if (i == 0)
            assert_string_equal(type, "response.created");
        int idx = (int)json_integer_value(json_object_get(d, "output_index"));
        assert_true(idx >= 0 && idx < 64);
        if (!strcmp(type, "response.output_item.added")) {
            assert_int_equal(idx, next);
            next++;
            open[idx] = 1;
            built[idx][0] = '\0';
        } else if (!strcmp(type, "response.output_text.delta") ||
                   !strcmp(type, "response.function_call_arguments.delta") ||
                   !strcmp(type, "response.reasoning_summary_text.delta")) {
            assert_true(open[idx]);
            strncat(built[idx], json_string_value(json_object_get(d, "delta")), 511 - strlen(built[idx]));
        } else if (!strcmp(type, "response.output_text.done") ||
                   !strcmp(type, "response.reasoning_summary_text.done")) {
            assert_true(open[idx]);
            assert_string_equal(json_string_value(json_object_get(d, "text")), built[idx]);
        } else if (!strcmp(type, "response.function_call_arguments.done")) {
            assert_true(open[idx]);
            assert_string_equal(json_string_value(json_object_get(d, "arguments")), built[idx]);
        } else if (!strcmp(type, "response.output_item.done")) {
            assert_true(open[idx]);
            open[idx] = 0;
        } else if (!strcmp(type, "response.completed") || !strcmp(type, "response.incomplete") ||
                   !strcmp(type, "response.failed")) {
            json_t *out = json_object_get(json_object_get(d, "response"), "output");
            assert_int_equal(json_array_size(out), (size_t)next);
            if (strcmp(type, "response.failed") != 0)
                for (int k = 0; k < next; k++)
                    assert_false(open[k]);
            ended = 1;
        }
    }
    if (complete)
        assert_true(ended);
}

void check_client_stream(sl_proto client, json_t *events, int complete)
{
    if (client == SL_PROTO_ANTHROPIC)
        check_anthropic_stream(events, complete);
    else if (client == SL_PROTO_OPENAI)
        check_openai_stream(events, complete);
    else if (client == SL_PROTO_RESPONSES)
        check_responses_stream(events, complete);
}

/* Feeds SSE bytes in pieces of `step` (0 = all at once). */
json_t *run_stream(sl_proto up, sl_proto client, const char *in, size_t len, size_t step)
{
    sl_stream *s = sl_stream_new(up, client, CLIENT_MODEL);
    sl_buf out = {0};
    int feed_rc = 0;
    if (step == 0) {
        feed_rc = sl_stream_feed(s, in, len, &out);
    } else {
        for (size_t i = 0; i < len && feed_rc == 0; i += step)
            feed_rc = sl_stream_feed(s, in + i, len - i < step ? len - i : step, &out);
    }
    int fin = feed_rc == 0 ? sl_stream_finish(s, &out) : -1;
    json_t *r = json_object();
    json_object_set_new(r, "events", events_of(out.data ? out.data : "", out.len));
    json_object_set_new(r, "feed", json_integer(feed_rc));
    json_object_set_new(r, "finish", json_integer(fin));
    json_object_set_new(r, "usage", usage_json(sl_stream_usage(s)));
    assert_int_equal(sl_stream_started(s), out.len > 0);
    sl_buf_free(&out);
    sl_stream_free(s);
    return r;
}

sl_proto proto_of(const char *s, size_t n)
{
    if (n == 6 && !strncmp(s, "openai", 6))
        return SL_PROTO_OPENAI;
    if (n == 9 && !strncmp(s, "anthropic", 9))
        return SL_PROTO_ANTHROPIC;
    if (n == 6 && !strncmp(s, "gemini", 6))
        return SL_PROTO_GEMINI;
    if (n == 9 && !strncmp(s, "responses", 9))
        return SL_PROTO_RESPONSES;
    fail_msg("unknown protocol in fixture directory: %.*s", (int)n, s);
    return SL_PROTO_OPENAI;
}
