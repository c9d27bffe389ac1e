/*
 * Unit tests for runtime/proxy/legacy.c: /v1/completions requests become
 * chat requests, chat answers become text_completion objects, and chat
 * chunk streams become text_completion streams at any split, with the
 * SSE line cap reported as an error (it used to be ignored, so the
 * stream just stopped producing output while the parser held the bytes).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/legacy.h"

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad JSON in test: %s", e.text);
    return j;
}

/* ---- requests ------------------------------------------------------------ */

static void test_to_chat(void **state)
{
    (void)state;
    json_t *req = parse("{\"model\":\"m\",\"prompt\":\"Say hi\",\"max_tokens\":7,\"stream\":true,"
                        "\"echo\":false,\"best_of\":1,\"suffix\":\"s\",\"logprobs\":2,\"temperature\":0.5}");
    char err[128] = "";
    json_t *chat = sl_legacy_to_chat(req, err, sizeof err);
    assert_non_null(chat);
    json_t *want = parse("{\"model\":\"m\",\"max_tokens\":7,\"stream\":true,\"temperature\":0.5,"
                         "\"messages\":[{\"role\":\"user\",\"content\":\"Say hi\"}]}");
    assert_true(json_equal(chat, want));
    /* The request itself is left alone. */
    assert_non_null(json_object_get(req, "prompt"));
    json_decref(want);
    json_decref(chat);
    json_decref(req);

    req = parse("{\"model\":\"m\",\"prompt\":[\"only one\"]}");
    chat = sl_legacy_to_chat(req, err, sizeof err);
    assert_non_null(chat);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(chat, "messages"), 0), "content")),
        "only one");
    json_decref(chat);
    json_decref(req);
}

static void test_to_chat_refuses(void **state)
{
    (void)state;
    const char *bad[] = {
        "{\"model\":\"m\"}",
        "{\"model\":\"m\",\"prompt\":[1,2,3]}",
        "{\"model\":\"m\",\"prompt\":[\"a\",\"b\"]}",
        "{\"model\":\"m\",\"prompt\":[]}",
        "{\"model\":\"m\",\"prompt\":null}",
        "{\"model\":\"m\",\"prompt\":{\"text\":\"x\"}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *req = parse(bad[i]);
        char err[128] = "";
        assert_null(sl_legacy_to_chat(req, err, sizeof err));
        assert_true(strstr(err, "prompt") != NULL);
        json_decref(req);
    }
}

/* ---- whole answers ------------------------------------------------------- */

static void test_from_chat(void **state)
{
    (void)state;
    const char *chat = "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"created\":17,\"model\":\"gpt\","
                       "\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
                       "\"finish_reason\":\"stop\"},{\"index\":1,\"message\":{\"role\":\"assistant\","
                       "\"content\":null,\"tool_calls\":[]},\"finish_reason\":\"tool_calls\"}],"
                       "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}";
    char *out = sl_legacy_from_chat(chat, strlen(chat));
    assert_non_null(out);
    json_t *got = parse(out);
    json_t *want = parse("{\"id\":\"chatcmpl-1\",\"object\":\"text_completion\",\"created\":17,\"model\":\"gpt\","
                         "\"choices\":[{\"text\":\"Hello\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"},"
                         "{\"text\":\"\",\"index\":1,\"logprobs\":null,\"finish_reason\":\"tool_calls\"}],"
                         "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}");
    assert_true(json_equal(got, want));
    json_decref(got);
    json_decref(want);
    free(out);

    assert_null(sl_legacy_from_chat("[1]", 3));
    assert_null(sl_legacy_from_chat("nope", 4));
    /* An object without choices is still answered, with none. */
    out = sl_legacy_from_chat("{\"id\":\"x\"}", 10);
    assert_non_null(out);
    got = parse(out);
    assert_int_equal(json_array_size(json_object_get(got, "choices")), 0);
    json_decref(got);
    free(out);
}

/* ---- streams ------------------------------------------------------------- */

static const char chat_stream[] =
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"He\"},\"finish_reason\":null}]}\n\n"
    ": keep-alive\n\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\r\n\r\n"
    "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

static const char legacy_stream[] =
    "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[{\"text\":\"He\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[{\"text\":\"llo\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"gpt\","
    "\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n"
    "data: [DONE]\n\n";

static void test_stream_all_splits(void **state)
{
    (void)state;
    size_t len = sizeof chat_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_legacy_stream s = {0};
        sl_buf out = {0};
        if (split <= len) {
            assert_int_equal(sl_legacy_stream_feed(&s, chat_stream, split, &out), 0);
            assert_int_equal(sl_legacy_stream_feed(&s, chat_stream + split, len - split, &out), 0);
        } else {
            for (size_t i = 0; i < len; i++)
                assert_int_equal(sl_legacy_stream_feed(&s, chat_stream + i, 1, &out), 0);
        }
        assert_int_equal(out.len, sizeof legacy_stream - 1);
        assert_memory_equal(out.data, legacy_stream, out.len);
        sl_buf_free(&out);
        sl_legacy_stream_free(&s);
    }
}

/* A client that did not ask for usage: the usage chunk sluice asked the
 * upstream for is dropped, not rewritten into a chunk without choices
 * (it reached legacy stream clients before). */
static void test_stream_strips_usage(void **state)
{
    (void)state;
    sl_legacy_stream s = {.strip_usage = 1};
    sl_buf out = {0};
    assert_int_equal(sl_legacy_stream_feed(&s, chat_stream, sizeof chat_stream - 1, &out), 0);
    static const char usage_event[] =
        "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"created\":5,\"model\":\"gpt\","
        "\"choices\":[],\"usage\":{\"prompt_tokens\":2,\"completion_tokens\":2}}\n\n";
    const char *at = strstr(legacy_stream, usage_event);
    assert_non_null(at);
    size_t before = (size_t)(at - legacy_stream), skip = sizeof usage_event - 1;
    assert_int_equal(out.len, sizeof legacy_stream - 1 - skip);
    assert_memory_equal(out.data, legacy_stream, before);
    assert_memory_equal(out.data + before, at + skip, out.len - before);
    sl_buf_free(&out);
    sl_legacy_stream_free(&s);
}

static void test_stream_passes_errors_and_multiline(void **state)
{
    (void)state;
    sl_legacy_stream s = {0};
    sl_buf out = {0};
    const char *in = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
                     "data: not json\ndata: second line\n\n";
    assert_int_equal(sl_legacy_stream_feed(&s, in, strlen(in), &out), 0);
    const char *want = "data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
                       "data: not json\ndata: second line\n\n";
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);
    sl_buf_free(&out);
    sl_legacy_stream_free(&s);
}

static void test_stream_cap(void **state)
{
    (void)state;
    size_t n = SL_SSE_MAX_LINE + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, 'x', n);
    sl_legacy_stream s = {0};
    sl_buf out = {0};
    assert_int_equal(sl_legacy_stream_feed(&s, "data: {\"id\":\"", 13, &out), 0);
    assert_int_equal(sl_legacy_stream_feed(&s, big, n, &out), -1);
    assert_int_equal(out.len, 0);
    /* The held megabyte is released at once, and the stream stays failed. */
    assert_int_equal(sl_legacy_stream_feed(&s, "\n\ndata: [DONE]\n\n", 16, &out), -1);
    assert_int_equal(out.len, 0);
    sl_legacy_stream_free(&s);
    sl_legacy_stream_free(&s); /* twice is harmless */

    /* Just under the cap, the event goes through whole. */
    sl_legacy_stream t = {0};
    size_t m = SL_SSE_MAX_LINE - 64;
    memcpy(big, "data: ", 6);
    assert_int_equal(sl_legacy_stream_feed(&t, big, m, &out), 0);
    assert_int_equal(sl_legacy_stream_feed(&t, "\n\n", 2, &out), 0);
    assert_int_equal(out.len, m + 2);
    sl_legacy_stream_free(&t);
    sl_buf_free(&out);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_to_chat),
        cmocka_unit_test(test_to_chat_refuses),
        cmocka_unit_test(test_from_chat),
        cmocka_unit_test(test_stream_all_splits),
        cmocka_unit_test(test_stream_strips_usage),
        cmocka_unit_test(test_stream_passes_errors_and_multiline),
        cmocka_unit_test(test_stream_cap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
