/*
 * Tests for runtime/translate's stream translation, cases the golden
 * fixtures (test_translate.c) do not pin down: Anthropic block indices when
 * OpenAI tool calls interleave or reuse an index, truncated and malformed
 * upstream streams, upstream error events, usage pass-through and OpenAI's
 * optional usage chunk.
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
    };
    return cmocka_run_group_tests_name("translate_stream", fixed, NULL, NULL);
}
