/*
 * Tests for runtime/translate: the golden fixtures under fixtures/ (every
 * direction between the three protocols, requests, responses, streams and
 * errors; streams fed whole and one byte at a time), plus targeted cases
 * for what breaks clients silently: Anthropic block indices and stops,
 * truncated upstream streams, usage accounting, pass-through.
 *
 * Fixture layout: fixtures/<from>-to-<to>/<kind>_<name>.in.json and
 * .expected.json, where <from> -> <to> is the direction the data travels:
 * for request_* fixtures the client's protocol to the upstream's, for
 * response_*, stream_* and error_* the upstream's to the client's.
 * SLUICE_TRANSLATE_REGEN=1 rewrites the expected files (review the diff).
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

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "fixtures"
#endif

#define CLIENT_MODEL "client-model"
#define UPSTREAM_MODEL "upstream-model"

/* ---- helpers ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
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

static json_t *parse_text(const char *s)
{
    json_error_t err;
    json_t *v = json_loads(s, JSON_DECODE_ANY, &err);
    if (!v)
        fail_msg("not JSON (%s): %.300s", err.text, s);
    canonicalise(v);
    return v;
}

static void assert_json_equal(json_t *got, json_t *want, const char *what)
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
static json_t *events_of(const char *p, size_t n)
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
static char *sse_of(json_t *events, int crlf, size_t *len)
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

static json_t *usage_json(const sl_usage_counts *u)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:b}", "input_tokens", (json_int_t)u->input, "output_tokens",
                     (json_int_t)u->output, "cache_read_tokens", (json_int_t)u->cache_read,
                     "cache_write_tokens", (json_int_t)u->cache_write, "have", u->have);
}

/* The framing Claude Code depends on: message_start first, message_stop
 * last, one block open at a time, each started block stopped, indices
 * 0,1,2... in order, deltas only to the open block and of its kind. */
static void check_anthropic_stream(json_t *events, int complete)
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
static void check_openai_stream(json_t *events, int complete)
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

static void check_client_stream(sl_proto client, json_t *events, int complete)
{
    if (client == SL_PROTO_ANTHROPIC)
        check_anthropic_stream(events, complete);
    else if (client == SL_PROTO_OPENAI)
        check_openai_stream(events, complete);
    else if (client == SL_PROTO_RESPONSES)
        check_responses_stream(events, complete);
}

/* Feeds SSE bytes in pieces of `step` (0 = all at once). */
static json_t *run_stream(sl_proto up, sl_proto client, const char *in, size_t len, size_t step)
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

static sl_proto proto_of(const char *s, size_t n)
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

/* ---- fixture runner ------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    char name[128];
    char path_in[512];
    char path_expected[512];
} fixture;

static json_t *run_fixture(const fixture *fx, json_t *in, const char *in_text, size_t in_len)
{
    const char *sep = strstr(fx->dir, "-to-");
    assert_non_null(sep);
    sl_proto from = proto_of(fx->dir, (size_t)(sep - fx->dir));
    sl_proto to = proto_of(sep + 4, strlen(sep + 4));
    char err[256] = "";
    if (!strncmp(fx->name, "request_", 8)) {
        int stream = json_is_true(json_object_get(in, "stream")) || strstr(fx->name, "stream") != NULL;
        char *out = sl_translate_request(from, to, in, UPSTREAM_MODEL, stream, err, sizeof err);
        if (!out)
            return json_pack("{s:s}", "error", err);
        json_t *o = parse_text(out);
        free(out);
        return o;
    }
    if (!strncmp(fx->name, "response_", 9)) {
        char *out = sl_translate_response(from, to, in_text, in_len, CLIENT_MODEL, err, sizeof err);
        if (!out)
            return json_pack("{s:s}", "error", err);
        json_t *o = parse_text(out);
        free(out);
        sl_usage_counts u;
        if (sl_translate_usage(from, in_text, in_len, &u) == 0)
            o = json_pack("{s:o,s:o}", "body", o, "usage", usage_json(&u));
        else
            o = json_pack("{s:o}", "body", o);
        return o;
    }
    if (!strncmp(fx->name, "error_", 6)) {
        char *body = json_dumps(json_object_get(in, "body"), JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *raw = json_object_get(in, "raw");
        const char *b = json_is_string(raw) ? json_string_value(raw) : body;
        int st = 0;
        char *out = sl_translate_error(from, to, (int)json_integer_value(json_object_get(in, "status")), b,
                                       strlen(b), &st);
        free(body);
        assert_non_null(out);
        json_t *o = json_pack("{s:i,s:o}", "status", st, "body", parse_text(out));
        free(out);
        return o;
    }
    if (!strncmp(fx->name, "stream_", 7)) {
        size_t len;
        char *sse = sse_of(json_object_get(in, "events"), json_is_true(json_object_get(in, "crlf")), &len);
        json_t *whole = run_stream(from, to, sse, len, 0);
        json_t *bytes = run_stream(from, to, sse, len, 1);
        json_t *sevens = run_stream(from, to, sse, len, 7);
        assert_json_equal(bytes, whole, "stream fed one byte at a time vs whole");
        assert_json_equal(sevens, whole, "stream fed 7 bytes at a time vs whole");
        int complete = json_integer_value(json_object_get(whole, "finish")) == 0;
        check_client_stream(to, json_object_get(whole, "events"), complete);
        free(sse);
        json_decref(bytes);
        json_decref(sevens);
        return whole;
    }
    fail_msg("fixture %s/%s: unknown kind", fx->dir, fx->name);
    return NULL;
}

static void test_fixture(void **state)
{
    const fixture *fx = *state;
    size_t in_len;
    char *in_text = read_file(fx->path_in, &in_len);
    assert_non_null(in_text);
    json_error_t jerr;
    json_t *in = json_loads(in_text, 0, &jerr);
    if (!in)
        fail_msg("%s: %s (line %d)", fx->path_in, jerr.text, jerr.line);
    json_t *got = run_fixture(fx, in, in_text, in_len);
    if (getenv("SLUICE_TRANSLATE_REGEN")) {
        FILE *f = fopen(fx->path_expected, "w");
        assert_non_null(f);
        char *s = json_dumps(got, JSON_INDENT(2));
        fprintf(f, "%s\n", s);
        free(s);
        fclose(f);
    } else {
        char *want_text = read_file(fx->path_expected, NULL);
        if (!want_text)
            fail_msg("missing %s (run with SLUICE_TRANSLATE_REGEN=1 and review)", fx->path_expected);
        json_t *want = parse_text(want_text);
        assert_json_equal(got, want, fx->path_expected);
        json_decref(want);
        free(want_text);
    }
    json_decref(got);
    json_decref(in);
    free(in_text);
}

static int fixture_cmp(const void *a, const void *b)
{
    const fixture *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

static size_t list_fixtures(fixture **out)
{
    size_t n = 0, cap = 64;
    fixture *fx = calloc(cap, sizeof *fx);
    DIR *top = opendir(FIXTURE_DIR);
    if (!top)
        return 0;
    struct dirent *d;
    while ((d = readdir(top))) {
        if (d->d_name[0] == '.' || !strstr(d->d_name, "-to-"))
            continue;
        char sub[400];
        snprintf(sub, sizeof sub, "%.300s/%.60s", FIXTURE_DIR, d->d_name);
        DIR *dd = opendir(sub);
        if (!dd)
            continue;
        struct dirent *f;
        while ((f = readdir(dd))) {
            size_t l = strlen(f->d_name);
            if (l < 9 || strcmp(f->d_name + l - 8, ".in.json") != 0)
                continue;
            if (n == cap) {
                cap *= 2;
                fx = realloc(fx, cap * sizeof *fx);
            }
            fixture *x = &fx[n++];
            memset(x, 0, sizeof *x);
            snprintf(x->dir, sizeof x->dir, "%.60s", d->d_name);
            snprintf(x->name, sizeof x->name, "%.*s", (int)(l - 8 > 120 ? 120 : l - 8), f->d_name);
            snprintf(x->path_in, sizeof x->path_in, "%.380s/%.120s", sub, f->d_name);
            snprintf(x->path_expected, sizeof x->path_expected, "%.360s/%.120s.expected.json", sub, x->name);
        }
        closedir(dd);
    }
    closedir(top);
    qsort(fx, n, sizeof *fx, fixture_cmp);
    *out = fx;
    return n;
}

/* ---- targeted tests ------------------------------------------------------ */

static json_t *stream_events(sl_proto up, sl_proto client, const char *sse, int *finish)
{
    json_t *r = run_stream(up, client, sse, strlen(sse), 1);
    *finish = (int)json_integer_value(json_object_get(r, "finish"));
    json_t *ev = json_incref(json_object_get(r, "events"));
    json_decref(r);
    return ev;
}

static const char *ev_type(json_t *events, size_t i)
{
    return json_string_value(json_object_get(json_object_get(json_array_get(events, i), "data"), "type"));
}

static int ev_index(json_t *events, size_t i)
{
    return (int)json_integer_value(json_object_get(json_object_get(json_array_get(events, i), "data"), "index"));
}

#define OAI_CHUNK(delta, finish) \
    "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\"," \
    "\"choices\":[{\"index\":0,\"delta\":" delta ",\"finish_reason\":" finish "}]}\n\n"

/* Text, then two tool calls whose argument fragments arrive in pieces,
 * then more text: four blocks, each closed before the next opens. */
static void test_openai_to_anthropic_block_indices(void **state)
{
    const char *sse =
        OAI_CHUNK("{\"role\":\"assistant\",\"content\":\"\"}", "null")
        OAI_CHUNK("{\"content\":\"Let me look.\"}", "null")
        OAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"call_a\",\"type\":\"function\",\"function\":{\"name\":\"Read\",\"arguments\":\"\"}}]}", "null")
        OAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"path\\\":\"}}]}", "null")
        OAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"a.c\\\"}\"}}]}", "null")
        OAI_CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"call_b\",\"type\":\"function\",\"function\":{\"name\":\"Bash\",\"arguments\":\"{\\\"cmd\\\":\\\"ls\\\"}\"}}]}", "null")
        OAI_CHUNK("{\"content\":\"Done.\"}", "null")
        OAI_CHUNK("{}", "\"tool_calls\"")
        "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":60}}}\n\n"
        "data: [DONE]\n\n";
    int fin;
    json_t *ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, sse, &fin);
    assert_int_equal(fin, 0);
    check_anthropic_stream(ev, 1);
    const char *want[] = {
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",                          /* 0 text */
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",   /* 1 Read */
        "content_block_start", "content_block_delta", "content_block_stop",                          /* 2 Bash */
        "content_block_start", "content_block_delta", "content_block_stop",                          /* 3 text */
        "message_delta", "message_stop",
    };
    const int idx[] = {-1, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 3, 3, 3, -1, -1};
    assert_int_equal(json_array_size(ev), sizeof want / sizeof want[0]);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        assert_string_equal(ev_type(ev, i), want[i]);
        if (idx[i] >= 0)
            assert_int_equal(ev_index(ev, i), idx[i]);
    }
    json_t *md = json_object_get(json_array_get(ev, 14), "data");
    assert_string_equal(json_string_value(json_object_get(json_object_get(md, "delta"), "stop_reason")), "tool_use");
    json_t *u = json_object_get(md, "usage");
    assert_int_equal(json_integer_value(json_object_get(u, "input_tokens")), 40);
    assert_int_equal(json_integer_value(json_object_get(u, "cache_read_input_tokens")), 60);
    assert_int_equal(json_integer_value(json_object_get(u, "output_tokens")), 20);
    json_t *tb = json_object_get(json_object_get(json_array_get(ev, 4), "data"), "content_block");
    assert_string_equal(json_string_value(json_object_get(tb, "id")), "call_a");
    assert_string_equal(json_string_value(json_object_get(tb, "name")), "Read");
    json_decref(ev);
}

/* Compatible servers that give every parallel call index 0 still produce
 * one block per call. */
static void test_openai_reused_index_new_id(void **state)
{
    const char *sse =
        OAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c1\",\"function\":{\"name\":\"A\",\"arguments\":\"{}\"}}]}", "null")
        OAI_CHUNK("{\"tool_calls\":[{\"index\":0,\"id\":\"c2\",\"function\":{\"name\":\"B\",\"arguments\":\"{}\"}}]}", "null")
        OAI_CHUNK("{}", "\"tool_calls\"") "data: [DONE]\n\n";
    int fin;
    json_t *ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, sse, &fin);
    assert_int_equal(fin, 0);
    check_anthropic_stream(ev, 1);
    int starts = 0;
    for (size_t i = 0; i < json_array_size(ev); i++)
        if (!strcmp(ev_type(ev, i), "content_block_start"))
            starts++;
    assert_int_equal(starts, 2);
    json_decref(ev);

    ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_OPENAI, sse, &fin); /* pass-through untouched */
    assert_int_equal(fin, 0);
    json_decref(ev);
}

static void test_truncated_streams(void **state)
{
    int fin;
    /* OpenAI: neither finish_reason nor [DONE]. */
    json_t *ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                               OAI_CHUNK("{\"role\":\"assistant\",\"content\":\"partial\"}", "null"), &fin);
    assert_int_equal(fin, -1);
    check_anthropic_stream(ev, 0);
    json_decref(ev);
    /* OpenAI: finish_reason but the connection closed before [DONE]. */
    ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                       OAI_CHUNK("{\"content\":\"ok\"}", "null") OAI_CHUNK("{}", "\"stop\""), &fin);
    assert_int_equal(fin, 0);
    check_anthropic_stream(ev, 1);
    json_decref(ev);
    /* Anthropic without message_stop. */
    const char *an = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
                     "\"role\":\"assistant\",\"content\":[],\"model\":\"m\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
                     "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
                     "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
    ev = stream_events(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, an, &fin);
    assert_int_equal(fin, -1);
    check_openai_stream(ev, 0);
    json_decref(ev);
    ev = stream_events(SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, an, &fin);
    assert_int_equal(fin, -1);
    json_decref(ev);
    /* Gemini without a finishReason. */
    ev = stream_events(SL_PROTO_GEMINI, SL_PROTO_ANTHROPIC,
                       "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"}]}}]}\r\n\r\n", &fin);
    assert_int_equal(fin, -1);
    check_anthropic_stream(ev, 0);
    json_decref(ev);
    /* Nothing at all. */
    ev = stream_events(SL_PROTO_GEMINI, SL_PROTO_OPENAI, "", &fin);
    assert_int_equal(fin, -1);
    assert_int_equal(json_array_size(ev), 0);
    json_decref(ev);
}

static void test_malformed_stream(void **state)
{
    sl_buf out = {0};
    sl_stream *s = sl_stream_new(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, "m");
    assert_int_equal(sl_stream_feed(s, "data: {not json\n\n", 17, &out), -1);
    assert_int_equal(sl_stream_feed(s, "data: [DONE]\n\n", 14, &out), -1); /* stays failed */
    assert_int_equal(sl_stream_finish(s, &out), -1);
    sl_stream_free(s);
    s = sl_stream_new(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, "m");
    assert_int_equal(sl_stream_feed(s, "data: {\"no\":\"type\"}\n\n", 22, &out), -1);
    sl_stream_free(s);
    /* An oversized event is malformed too. */
    s = sl_stream_new(SL_PROTO_GEMINI, SL_PROTO_OPENAI, "m");
    char *big = malloc(SL_SSE_MAX_LINE + 10);
    memset(big, 'x', SL_SSE_MAX_LINE + 10);
    assert_int_equal(sl_stream_feed(s, "data: ", 6, &out), 0);
    assert_int_equal(sl_stream_feed(s, big, SL_SSE_MAX_LINE + 10, &out), -1);
    free(big);
    sl_stream_free(s);
    sl_buf_free(&out);
}

/* An error event from the upstream reaches the client in its own shape
 * and counts as the end of the stream. */
static void test_upstream_error_event(void **state)
{
    int fin;
    const char *sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
                      "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    json_t *ev = stream_events(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, sse, &fin);
    assert_int_equal(fin, 0);
    json_t *last = json_object_get(json_array_get(ev, json_array_size(ev) - 1), "data");
    assert_string_equal(json_string_value(json_object_get(json_object_get(last, "error"), "message")), "Overloaded");
    json_decref(ev);
    ev = stream_events(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                       "data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}\n\n", &fin);
    assert_int_equal(fin, 0);
    last = json_array_get(ev, json_array_size(ev) - 1);
    assert_string_equal(json_string_value(json_object_get(last, "event")), "error");
    json_decref(ev);
}

/* Same protocol: bytes unchanged whatever the split; usage observed. */
static void test_passthrough_usage(void **state)
{
    const char *streams[3] = {
        OAI_CHUNK("{\"role\":\"assistant\",\"content\":\"hi\"}", "null") OAI_CHUNK("{}", "\"stop\"")
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
        "\"completion_tokens\":3,\"total_tokens\":14,\"prompt_tokens_details\":{\"cached_tokens\":8}}}\n\ndata: [DONE]\n\n",
        "event: message_start\r\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":7,"
        "\"cache_read_input_tokens\":100,\"cache_creation_input_tokens\":20,\"output_tokens\":1}}}\r\n\r\n"
        ": comment\r\n\r\nevent: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"
        "event: message_delta\r\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":42}}\r\n\r\n"
        "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n",
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"a\"}],\"role\":\"model\"}}],\"usageMetadata\":{\"promptTokenCount\":9}}\r\n\r\n"
        "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"b\"}],\"role\":\"model\"},\"finishReason\":\"STOP\"}],"
        "\"usageMetadata\":{\"promptTokenCount\":30,\"cachedContentTokenCount\":10,\"candidatesTokenCount\":5,\"thoughtsTokenCount\":2}}\r\n\r\n",
    };
    const long want[3][4] = {{3, 3, 8, 0}, {7, 42, 100, 20}, {20, 7, 10, 0}};
    for (int p = 0; p < 3; p++) {
        size_t len = strlen(streams[p]);
        for (size_t step = 1; step <= len; step = step * 3 + 1) {
            sl_stream *s = sl_stream_new((sl_proto)p, (sl_proto)p, "m");
            sl_buf out = {0};
            for (size_t i = 0; i < len; i += step)
                assert_int_equal(sl_stream_feed(s, streams[p] + i, len - i < step ? len - i : step, &out), 0);
            assert_int_equal(sl_stream_finish(s, &out), 0);
            assert_int_equal(out.len, len);
            assert_memory_equal(out.data, streams[p], len);
            const sl_usage_counts *u = sl_stream_usage(s);
            assert_true(u->have);
            assert_int_equal(u->input, want[p][0]);
            assert_int_equal(u->output, want[p][1]);
            assert_int_equal(u->cache_read, want[p][2]);
            assert_int_equal(u->cache_write, want[p][3]);
            sl_buf_free(&out);
            sl_stream_free(s);
        }
    }
}

static void test_openai_usage_chunk_optional(void **state)
{
    const char *sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}\n\n"
                      "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n"
                      "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
    for (int on = 0; on <= 1; on++) {
        sl_stream *s = sl_stream_new(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, "m");
        sl_stream_set_openai_usage_chunk(s, on);
        sl_buf out = {0};
        assert_int_equal(sl_stream_feed(s, sse, strlen(sse), &out), 0);
        assert_int_equal(sl_stream_finish(s, &out), 0);
        json_t *ev = events_of(out.data, out.len);
        check_openai_stream(ev, 1);
        int usage_chunks = 0;
        for (size_t i = 0; i < json_array_size(ev); i++)
            if (json_object_get(json_object_get(json_array_get(ev, i), "data"), "usage"))
                usage_chunks++;
        assert_int_equal(usage_chunks, on);
        json_decref(ev);
        sl_buf_free(&out);
        sl_stream_free(s);
    }
}

static json_t *xlate_req(sl_proto from, sl_proto to, const char *js, int stream)
{
    json_t *req = json_loads(js, 0, NULL);
    assert_non_null(req);
    char err[256];
    char *out = sl_translate_request(from, to, req, UPSTREAM_MODEL, stream, err, sizeof err);
    json_decref(req);
    if (!out)
        fail_msg("translate failed: %s", err);
    json_t *o = json_loads(out, 0, NULL);
    free(out);
    return o;
}

static void test_request_errors(void **state)
{
    char err[256];
    const char *bad[3] = {"{\"model\":\"m\"}", "{\"model\":\"m\",\"max_tokens\":5}", "{\"generationConfig\":{}}"};
    for (int from = 0; from < 3; from++)
        for (int to = 0; to < 3; to++) {
            if (from == to)
                continue;
            json_t *req = json_loads(bad[from], 0, NULL);
            err[0] = '\0';
            assert_null(sl_translate_request((sl_proto)from, (sl_proto)to, req, "u", 0, err, sizeof err));
            assert_true(strlen(err) > 0);
            json_decref(req);
        }
    json_t *req = json_loads("{\"model\":\"m\",\"messages\":[{\"content\":\"no role\"}]}", 0, NULL);
    assert_null(sl_translate_request(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, req, "u", 0, err, sizeof err));
    assert_non_null(strstr(err, "role"));
    json_decref(req);
}

static void test_request_same_protocol(void **state)
{
    json_t *o = xlate_req(SL_PROTO_OPENAI, SL_PROTO_OPENAI,
                          "{\"model\":\"alias\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"stream\":true,\"logit_bias\":{\"1\":2}}", 1);
    assert_string_equal(json_string_value(json_object_get(o, "model")), UPSTREAM_MODEL);
    assert_true(json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage")));
    assert_non_null(json_object_get(o, "logit_bias")); /* nothing dropped */
    json_decref(o);
    o = xlate_req(SL_PROTO_GEMINI, SL_PROTO_GEMINI, "{\"model\":\"x\",\"contents\":[]}", 0);
    assert_null(json_object_get(o, "model"));
    json_decref(o);
}

static void test_request_defaults_and_limits(void **state)
{
    /* Anthropic requires max_tokens; temperature caps at 1. */
    json_t *o = xlate_req(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                          "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"temperature\":1.7}", 0);
    assert_int_equal(json_integer_value(json_object_get(o, "max_tokens")), 4096);
    assert_true(json_number_value(json_object_get(o, "temperature")) == 1.0);
    assert_null(json_object_get(o, "stream"));
    json_decref(o);
    /* max_completion_tokens wins over max_tokens. */
    o = xlate_req(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":10,\"max_completion_tokens\":20}", 0);
    assert_int_equal(json_integer_value(json_object_get(o, "max_tokens")), 20);
    json_decref(o);
    /* Thinking: budget must stay below max_tokens; no temperature with it. */
    o = xlate_req(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC,
                  "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],\"max_tokens\":1000,"
                  "\"reasoning_effort\":\"high\",\"temperature\":0.2}", 0);
    json_t *th = json_object_get(o, "thinking");
    long budget = (long)json_integer_value(json_object_get(th, "budget_tokens"));
    assert_true(budget >= 1024);
    assert_true(json_integer_value(json_object_get(o, "max_tokens")) > budget);
    assert_null(json_object_get(o, "temperature"));
    json_decref(o);
    /* And back: a budget becomes an effort level. */
    const char *efforts[] = {"low", "medium", "high"};
    const int budgets[] = {1024, 8000, 32000};
    for (int i = 0; i < 3; i++) {
        char js[256];
        snprintf(js, sizeof js,
                 "{\"model\":\"m\",\"max_tokens\":64000,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                 "\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":%d}}", budgets[i]);
        o = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, js, 0);
        assert_string_equal(json_string_value(json_object_get(o, "reasoning_effort")), efforts[i]);
        json_decref(o);
    }
    /* Stream flags per upstream. */
    o = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI,
                  "{\"model\":\"m\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 1);
    assert_true(json_is_true(json_object_get(o, "stream")));
    assert_true(json_is_true(json_object_get(json_object_get(o, "stream_options"), "include_usage")));
    assert_string_equal(json_string_value(json_object_get(o, "model")), UPSTREAM_MODEL);
    json_decref(o);
    o = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_GEMINI,
                  "{\"model\":\"m\",\"max_tokens\":5,\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 1);
    assert_null(json_object_get(o, "model"));
    assert_null(json_object_get(o, "stream"));
    json_decref(o);
}

/* tool_choice in every shape, every direction. */
static void test_tool_choice(void **state)
{
    static const char *tools_oai = "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]";
    struct { const char *oai; const char *anth_type; const char *gem_mode; } cases[] = {
        {"\"auto\"", "auto", "AUTO"},
        {"\"none\"", "none", "NONE"},
        {"\"required\"", "any", "ANY"},
        {"{\"type\":\"function\",\"function\":{\"name\":\"f\"}}", "tool", "ANY"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char js[512];
        snprintf(js, sizeof js, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],%s,\"tool_choice\":%s}",
                 tools_oai, cases[i].oai);
        json_t *a = xlate_req(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, js, 0);
        json_t *tc = json_object_get(a, "tool_choice");
        assert_string_equal(json_string_value(json_object_get(tc, "type")), cases[i].anth_type);
        json_t *g = xlate_req(SL_PROTO_OPENAI, SL_PROTO_GEMINI, js, 0);
        json_t *fcc = json_object_get(json_object_get(g, "toolConfig"), "functionCallingConfig");
        assert_string_equal(json_string_value(json_object_get(fcc, "mode")), cases[i].gem_mode);
        /* and back to OpenAI from both */
        char *as = json_dumps(a, 0), *gs = json_dumps(g, 0);
        json_t *ao = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, as, 0);
        json_t *go = xlate_req(SL_PROTO_GEMINI, SL_PROTO_OPENAI, gs, 0);
        json_t *want = json_loads(cases[i].oai, JSON_DECODE_ANY, NULL);
        assert_true(json_equal(json_object_get(ao, "tool_choice"), want));
        assert_true(json_equal(json_object_get(go, "tool_choice"), want));
        json_decref(want);
        free(as);
        free(gs);
        json_decref(a);
        json_decref(g);
        json_decref(ao);
        json_decref(go);
    }
}

/* Round trip: an Anthropic conversation with tools through OpenAI and
 * Gemini and back keeps its turns, tool ids and inputs. */
static void test_round_trip_tools(void **state)
{
    const char *js =
        "{\"model\":\"m\",\"max_tokens\":100,\"system\":\"be brief\",\"messages\":["
        "{\"role\":\"user\",\"content\":\"list files\"},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":\"ok\"},"
        "{\"type\":\"tool_use\",\"id\":\"toolu_1\",\"name\":\"Bash\",\"input\":{\"command\":\"ls\"}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"toolu_1\",\"content\":\"a.c\"}]}],"
        "\"tools\":[{\"name\":\"Bash\",\"description\":\"run\",\"input_schema\":{\"type\":\"object\","
        "\"properties\":{\"command\":{\"type\":\"string\"}},\"required\":[\"command\"]}}]}";
    json_t *orig = json_loads(js, 0, NULL);
    json_t *o = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, js, 0);
    char *os = json_dumps(o, 0);
    json_t *back = xlate_req(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, os, 0);
    assert_true(json_equal(json_object_get(back, "tools"), json_object_get(orig, "tools")));
    json_t *msgs = json_object_get(back, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    json_t *tu = json_array_get(json_object_get(json_array_get(msgs, 1), "content"), 1);
    assert_true(json_equal(tu, json_array_get(json_object_get(json_array_get(json_object_get(orig, "messages"), 1), "content"), 1)));
    json_t *tr = json_array_get(json_object_get(json_array_get(msgs, 2), "content"), 0);
    assert_string_equal(json_string_value(json_object_get(tr, "tool_use_id")), "toolu_1");
    free(os);
    json_decref(o);
    json_decref(back);

    json_t *g = xlate_req(SL_PROTO_ANTHROPIC, SL_PROTO_GEMINI, js, 0);
    char *gs = json_dumps(g, 0);
    back = xlate_req(SL_PROTO_GEMINI, SL_PROTO_ANTHROPIC, gs, 0);
    msgs = json_object_get(back, "messages");
    assert_int_equal(json_array_size(msgs), 3);
    tu = json_array_get(json_object_get(json_array_get(msgs, 1), "content"), 1);
    tr = json_array_get(json_object_get(json_array_get(msgs, 2), "content"), 0);
    /* Gemini has no ids: a fresh one, but call and result still agree. */
    assert_string_equal(json_string_value(json_object_get(tu, "id")), json_string_value(json_object_get(tr, "tool_use_id")));
    assert_string_equal(json_string_value(json_object_get(tr, "content")), "a.c");
    json_t *want_input = json_pack("{s:s}", "command", "ls");
    assert_true(json_equal(json_object_get(tu, "input"), want_input));
    json_decref(want_input);
    assert_true(json_equal(json_object_get(json_array_get(json_object_get(back, "tools"), 0), "input_schema"),
                           json_object_get(json_array_get(json_object_get(orig, "tools"), 0), "input_schema")));
    free(gs);
    json_decref(g);
    json_decref(back);
    json_decref(orig);
}

static void test_response_garbage(void **state)
{
    char err[256];
    const char *bodies[] = {"", "not json", "[]", "{\"unexpected\":true}"};
    for (int up = 0; up < 3; up++)
        for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
            err[0] = '\0';
            assert_null(sl_translate_response((sl_proto)up, (sl_proto)((up + 1) % 3), bodies[i], strlen(bodies[i]),
                                              "m", err, sizeof err));
            assert_true(strlen(err) > 0);
        }
}

static void test_error_status_mapping(void **state)
{
    struct { sl_proto up, client; int status; const char *body; int want; const char *want_type; } c[] = {
        {SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", 503, "server_error"},
        {SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, 503, "{\"error\":{\"message\":\"busy\",\"type\":\"server_error\"}}", 529, "overloaded_error"},
        {SL_PROTO_GEMINI, SL_PROTO_ANTHROPIC, 503, "{\"error\":{\"code\":503,\"message\":\"The model is overloaded.\",\"status\":\"UNAVAILABLE\"}}", 529, "overloaded_error"},
        {SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, 429, "{\"error\":{\"message\":\"slow down\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}", 429, "rate_limit_error"},
        {SL_PROTO_ANTHROPIC, SL_PROTO_GEMINI, 429, "{\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"x\"}}", 429, "RESOURCE_EXHAUSTED"},
        {SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, 401, "{\"error\":{\"message\":\"bad key\",\"type\":\"invalid_request_error\",\"code\":\"invalid_api_key\"}}", 401, "authentication_error"},
        {SL_PROTO_GEMINI, SL_PROTO_OPENAI, 403, "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":\"PERMISSION_DENIED\"}}", 403, "permission_error"},
        {SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, 404, "{\"type\":\"error\",\"error\":{\"type\":\"not_found_error\",\"message\":\"model: x\"}}", 404, "not_found_error"},
        {SL_PROTO_GEMINI, SL_PROTO_ANTHROPIC, 400, "{\"error\":{\"code\":400,\"message\":\"bad\",\"status\":\"INVALID_ARGUMENT\"}}", 400, "invalid_request_error"},
        {SL_PROTO_OPENAI, SL_PROTO_GEMINI, 500, "<html>oops</html>", 500, "INTERNAL"},
        {SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, 422, "{\"detail\":\"bad\"}", 400, "invalid_request_error"},
        {SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, 529, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", 529, "overloaded_error"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        int st = 0;
        char *out = sl_translate_error(c[i].up, c[i].client, c[i].status, c[i].body, strlen(c[i].body), &st);
        assert_non_null(out);
        assert_int_equal(st, c[i].want);
        json_t *o = json_loads(out, 0, NULL);
        assert_non_null(o);
        json_t *e = json_object_get(o, "error");
        const char *type = c[i].client == SL_PROTO_GEMINI ? json_string_value(json_object_get(e, "status"))
                                                          : json_string_value(json_object_get(e, "type"));
        if (!type || strcmp(type, c[i].want_type) != 0)
            fail_msg("case %zu: type %s, want %s (%s)", i, type ? type : "(null)", c[i].want_type, out);
        assert_non_null(json_string_value(json_object_get(e, "message")));
        json_decref(o);
        free(out);
    }
}

/* Hosted tools a Responses request offers: named once each, in order,
 * only with header-safe names; function tools and groups are not. */
static void test_dropped_tools(void **state)
{
    (void)state;
    json_t *req = json_loads("{\"tools\":[{\"type\":\"function\",\"name\":\"f\"},{\"type\":\"web_search\"},"
                             "{\"type\":\"namespace\",\"tools\":[]},{\"type\":\"file_search\"},"
                             "{\"type\":\"web_search\"},{\"type\":\"x\\r\\nSet-Cookie: a\"},{\"type\":7},"
                             "{\"type\":\"web\"}]}",
                             0, NULL);
    assert_non_null(req);
    char buf[64];
    assert_int_equal(sl_translate_dropped_tools(req, buf, sizeof buf), strlen("web_search,file_search,web"));
    assert_string_equal(buf, "web_search,file_search,web");
    /* A buffer too small for the next name keeps what fits. */
    assert_int_equal(sl_translate_dropped_tools(req, buf, 14), 10);
    assert_string_equal(buf, "web_search");
    json_decref(req);
    req = json_loads("{\"tools\":[{\"type\":\"function\",\"name\":\"f\"}]}", 0, NULL);
    assert_int_equal(sl_translate_dropped_tools(req, buf, sizeof buf), 0);
    assert_string_equal(buf, "");
    json_decref(req);
}

static void test_estimate_tokens(void **state)
{
    json_t *small = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":\"hello there\"}]}", 0, NULL);
    json_t *big = json_loads("{\"system\":[{\"type\":\"text\",\"text\":\"You are a coding agent with a long system prompt that goes on.\"}],"
                             "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hello there\"},"
                             "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]}],"
                             "\"tools\":[{\"name\":\"Bash\",\"input_schema\":{\"type\":\"object\"}}]}", 0, NULL);
    long a = sl_translate_estimate_tokens(small), b = sl_translate_estimate_tokens(big);
    assert_true(a > 0 && a < 20);
    assert_true(b > a + 1500);
    json_decref(small);
    json_decref(big);
}

int main(void)
{
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_openai_to_anthropic_block_indices),
        cmocka_unit_test(test_openai_reused_index_new_id),
        cmocka_unit_test(test_truncated_streams),
        cmocka_unit_test(test_malformed_stream),
        cmocka_unit_test(test_upstream_error_event),
        cmocka_unit_test(test_passthrough_usage),
        cmocka_unit_test(test_openai_usage_chunk_optional),
        cmocka_unit_test(test_request_errors),
        cmocka_unit_test(test_request_same_protocol),
        cmocka_unit_test(test_request_defaults_and_limits),
        cmocka_unit_test(test_tool_choice),
        cmocka_unit_test(test_round_trip_tools),
        cmocka_unit_test(test_response_garbage),
        cmocka_unit_test(test_error_status_mapping),
        cmocka_unit_test(test_estimate_tokens),
        cmocka_unit_test(test_dropped_tools),
    };
    int failed = cmocka_run_group_tests_name("translate", fixed, NULL, NULL);

    fixture *fx = NULL;
    size_t n = list_fixtures(&fx);
    if (n == 0) {
        fprintf(stderr, "no fixtures found under %s\n", FIXTURE_DIR);
        return 1;
    }
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    char (*names)[200] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", fx[i].dir, fx[i].name);
        tests[i].name = names[i];
        tests[i].test_func = test_fixture;
        tests[i].initial_state = &fx[i];
    }
    failed += _cmocka_run_group_tests("translate_fixtures", tests, n, NULL, NULL);
    free(tests);
    free(names);
    free(fx);
    return failed;
}
