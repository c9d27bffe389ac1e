/*
 * Tests for the response filter chain (runtime/proxy/relay.c): which
 * filters a relay configuration builds, that a pass-through stream is
 * relayed without a copy, that the usage chunk sluice asked for is cut
 * out but still counted, that translation and the legacy rewrite run as
 * chained filters on any split of the upstream bytes, that a truncated
 * translated stream is reported at finish, that the chain has a fixed
 * capacity, and the whole-body and error-body paths.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/relay.h"

#define CHUNK_HEAD "data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4o\","
#define OA_ROLE CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}\n\n"
#define OA_TEXT CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello there\"},\"finish_reason\":null}]}\n\n"
#define OA_STOP CHUNK_HEAD "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
#define OA_USAGE CHUNK_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":3,\"total_tokens\":14}}\n\n"
#define OA_DONE "data: [DONE]\n\n"

/* An OpenAI upstream stream as sluice always asks for it (with usage). */
static const char openai_stream[] = OA_ROLE OA_TEXT OA_STOP OA_USAGE OA_DONE;

static const char anthropic_stream[] =
    "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\","
    "\"role\":\"assistant\",\"model\":\"claude-sonnet-4-5\",\"content\":[],\"stop_reason\":null,"
    "\"usage\":{\"input_tokens\":7,\"output_tokens\":1,\"cache_read_input_tokens\":2}}}\n\n"
    "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
    "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
    "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n"
    "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
    "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},"
    "\"usage\":{\"output_tokens\":5}}\n\n"
    "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

/* Feeds s in pieces of `step` bytes, then finishes; the client bytes are
 * collected in *out. Returns the first non-zero result. */
static int relay_all(sl_relay *r, const char *s, size_t len, size_t step, sl_buf *out)
{
    for (size_t at = 0; at < len; at += step) {
        size_t n = len - at < step ? len - at : step;
        const char *o;
        size_t on;
        if (sl_relay_feed(r, s + at, n, &o, &on) != 0)
            return -1;
        assert_int_equal(sl_buf_append(out, o, on), 0);
    }
    const char *o;
    size_t on;
    if (sl_relay_finish(r, &o, &on) != 0)
        return -1;
    assert_int_equal(sl_buf_append(out, o, on), 0);
    assert_int_equal(sl_buf_append(out, "", 1), 0); /* NUL for strstr */
    return 0;
}

static void assert_has(const sl_buf *b, const char *needle)
{
    if (!strstr(b->data, needle))
        fail_msg("\"%s\" not in:\n%s", needle, b->data);
}

static void assert_lacks(const sl_buf *b, const char *needle)
{
    if (strstr(b->data, needle))
        fail_msg("\"%s\" unexpectedly in:\n%s", needle, b->data);
}

static void assert_usage(const sl_relay *r, int64_t in, int64_t out, int64_t cache_read)
{
    sl_usage_counts u;
    int64_t events;
    sl_relay_usage(r, &u, &events);
    assert_true(u.have);
    assert_int_equal(u.input, in);
    assert_int_equal(u.output, out);
    assert_int_equal(u.cache_read, cache_read);
}

/* ---- streams ----------------------------------------------------------------- */

static void test_passthrough_is_zero_copy(void **state)
{
    (void)state;
    sl_relay r;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI, .client_model = "m"};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(r.n, 1);
    assert_true(r.f[0].observer);
    assert_null(r.xl);
    size_t len = sizeof openai_stream - 1;
    for (size_t at = 0; at < len; at += 13) {
        size_t n = len - at < 13 ? len - at : 13;
        const char *o;
        size_t on;
        assert_int_equal(sl_relay_feed(&r, openai_stream + at, n, &o, &on), 0);
        assert_ptr_equal(o, openai_stream + at);
        assert_int_equal(on, n);
    }
    const char *o;
    size_t on;
    assert_int_equal(sl_relay_finish(&r, &o, &on), 0);
    assert_int_equal(on, 0);
    assert_usage(&r, 11, 3, 0);
    sl_usage_counts u;
    int64_t events;
    sl_relay_usage(&r, &u, &events);
    assert_int_equal(events, 5); /* every data line, [DONE] included */
    sl_relay_free(&r);

    /* Anthropic to an Anthropic client: the same, usage from two events. */
    cfg = (sl_relay_cfg){.up = SL_PROTO_ANTHROPIC, .client = SL_PROTO_ANTHROPIC};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(sl_relay_feed(&r, anthropic_stream, sizeof anthropic_stream - 1, &o, &on), 0);
    assert_ptr_equal(o, anthropic_stream);
    assert_usage(&r, 7, 5, 2);
    sl_relay_free(&r);
}

static void test_strip_removes_usage_chunk_and_counts_it(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI, .strip_usage = 1};
    /* Any split of the upstream bytes gives the same client bytes. */
    size_t steps[] = {1, 7, 64, sizeof openai_stream};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        sl_relay r;
        sl_buf out = {0};
        assert_int_equal(sl_relay_init(&r, &cfg), 0);
        assert_int_equal(r.n, 1);
        assert_false(r.f[0].observer);
        assert_int_equal(relay_all(&r, openai_stream, sizeof openai_stream - 1, steps[i], &out), 0);
        assert_string_equal(out.data, OA_ROLE OA_TEXT OA_STOP OA_DONE);
        assert_usage(&r, 11, 3, 0);
        sl_buf_free(&out);
        sl_relay_free(&r);
    }
}

static void test_translate_openai_to_anthropic(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_ANTHROPIC, .client_model = "claude-x"};
    size_t steps[] = {1, 29, sizeof openai_stream};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        sl_relay r;
        sl_buf out = {0};
        assert_int_equal(sl_relay_init(&r, &cfg), 0);
        assert_int_equal(r.n, 2);
        assert_string_equal(r.f[1].name, "translate");
        assert_int_equal(relay_all(&r, openai_stream, sizeof openai_stream - 1, steps[i], &out), 0);
        assert_has(&out, "event: message_start");
        assert_has(&out, "\"model\":\"claude-x\"");
        assert_has(&out, "\"text_delta\"");
        assert_has(&out, "Hello there");
        assert_has(&out, "\"end_turn\"");
        assert_has(&out, "event: message_stop");
        assert_lacks(&out, "chat.completion.chunk");
        assert_lacks(&out, "[DONE]");
        assert_usage(&r, 11, 3, 0);
        sl_buf_free(&out);
        sl_relay_free(&r);
    }
}

static void test_translated_openai_client_gets_usage_chunk_only_if_asked(void **state)
{
    (void)state;
    for (int strip = 0; strip <= 1; strip++) {
        sl_relay_cfg cfg = {.up = SL_PROTO_ANTHROPIC, .client = SL_PROTO_OPENAI, .strip_usage = strip,
                            .client_model = "gpt-x"};
        sl_relay r;
        sl_buf out = {0};
        assert_int_equal(sl_relay_init(&r, &cfg), 0);
        assert_int_equal(relay_all(&r, anthropic_stream, sizeof anthropic_stream - 1, 17, &out), 0);
        assert_has(&out, "chat.completion.chunk");
        assert_has(&out, "\"gpt-x\"");
        assert_has(&out, "data: [DONE]");
        if (strip)
            assert_lacks(&out, "\"choices\":[]");
        else
            assert_has(&out, "\"choices\":[]");
        assert_usage(&r, 7, 5, 2);
        sl_buf_free(&out);
        sl_relay_free(&r);
    }
}

static void test_legacy_chain(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI, .legacy = 1, .strip_usage = 1,
                        .client_model = "gpt-3.5-turbo-instruct"};
    sl_relay r;
    sl_buf out = {0};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(r.n, 3);
    assert_string_equal(r.f[0].name, "usage");
    assert_true(r.f[0].observer); /* the translator drops the chunk itself */
    assert_string_equal(r.f[1].name, "translate");
    assert_string_equal(r.f[2].name, "legacy");
    assert_int_equal(relay_all(&r, openai_stream, sizeof openai_stream - 1, 11, &out), 0);
    assert_has(&out, "\"text_completion\"");
    assert_has(&out, "Hello there");
    assert_has(&out, "data: [DONE]");
    assert_lacks(&out, "chat.completion.chunk");
    assert_lacks(&out, "\"delta\"");
    assert_usage(&r, 11, 3, 0);
    sl_buf_free(&out);
    sl_relay_free(&r);
}

static void test_truncated_translated_stream_fails_at_finish(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_ANTHROPIC, .client_model = "c"};
    sl_relay r;
    sl_buf out = {0};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    static const char cut[] = OA_ROLE OA_TEXT;
    assert_int_equal(relay_all(&r, cut, sizeof cut - 1, 5, &out), -1);
    assert_string_equal(r.error, "translate");
    sl_buf_free(&out);
    sl_relay_free(&r);

    /* Bytes no translator can read fail at feed, naming the filter. */
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    const char *o;
    size_t on;
    assert_int_equal(sl_relay_feed(&r, "data: {not json\n\n", 17, &o, &on), -1);
    assert_string_equal(r.error, "translate");
    sl_relay_free(&r);
}

/* A transformer of the kind later filters are: upper-cases its input. */
static int upper_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    (void)st;
    for (size_t i = 0; i < n; i++) {
        char c = (char)toupper((unsigned char)p[i]);
        if (sl_buf_append(out, &c, 1) != 0)
            return -1;
    }
    return 0;
}

static int count_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    (void)out;
    sl_buf *seen = st;
    return sl_buf_append(seen, p, n);
}

static int refuse_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    (void)st, (void)p, (void)n, (void)out;
    return -1;
}

static void test_added_filters_and_full_chain(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI};
    sl_relay r;
    sl_buf seen = {0};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"upper", 0, upper_feed, NULL, NULL}), 0);
    /* An observer after a transformer sees the transformed bytes. */
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"watch", 1, count_feed, NULL, &seen}), 0);
    const char *o;
    size_t on;
    assert_int_equal(sl_relay_feed(&r, "data: hi\n\n", 10, &o, &on), 0);
    assert_int_equal(on, 10);
    assert_memory_equal(o, "DATA: HI\n\n", 10);
    assert_int_equal(seen.len, 10);
    assert_memory_equal(seen.data, "DATA: HI\n\n", 10);
    while (r.n < SL_RELAY_MAX_FILTERS)
        assert_int_equal(sl_relay_add(&r, &(sl_filter){"watch", 1, count_feed, NULL, &seen}), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"one too many", 1, count_feed, NULL, &seen}), -1);
    assert_int_equal(r.n, SL_RELAY_MAX_FILTERS);
    sl_relay_free(&r);
    sl_buf_free(&seen);

    /* A failing filter stops the chain and is named. */
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"guard", 0, refuse_feed, NULL, NULL}), 0);
    assert_int_equal(sl_relay_feed(&r, "data: x\n\n", 9, &o, &on), -1);
    assert_string_equal(r.error, "guard");
    sl_relay_free(&r);
}

/* The usage chunk sluice asked for is cut from whole events without
 * copying the others: every event before it reaches the client as the
 * very bytes the upstream sent. */
static void test_strip_whole_events_zero_copy(void **state)
{
    (void)state;
    sl_relay r;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI, .client_model = "m", .strip_usage = 1};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_false(r.f[0].observer);
    static const char *const events[] = {OA_ROLE, OA_TEXT, OA_STOP};
    for (size_t i = 0; i < 3; i++) {
        const char *o;
        size_t on;
        assert_int_equal(sl_relay_feed(&r, events[i], strlen(events[i]), &o, &on), 0);
        assert_ptr_equal(o, events[i]);
        assert_int_equal(on, strlen(events[i]));
    }
    /* One read with the usage chunk in the middle: cut out, the rest kept. */
    static const char tail[] = OA_TEXT OA_USAGE OA_DONE;
    const char *o;
    size_t on;
    assert_int_equal(sl_relay_feed(&r, tail, sizeof tail - 1, &o, &on), 0);
    assert_int_equal(on, strlen(OA_TEXT OA_DONE));
    assert_memory_equal(o, OA_TEXT OA_DONE, on);
    assert_int_equal(sl_relay_finish(&r, &o, &on), 0);
    assert_int_equal(on, 0);
    assert_usage(&r, 11, 3, 0);
    sl_relay_free(&r);
}

/* A transformer that passes its input on unchanged (SL_FILTER_UNCHANGED)
 * costs no copy; with a finish, its output comes after the input. */
static int pass_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    (void)out;
    return sl_buf_append(st, p, n) == 0 ? SL_FILTER_UNCHANGED : -1;
}

static int pass_finish(void *st, sl_buf *out)
{
    (void)st;
    return sl_buf_append(out, "END", 3);
}

static void test_unchanged_filter(void **state)
{
    (void)state;
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI};
    sl_relay r;
    sl_buf seen = {0};
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"pass", 0, pass_feed, NULL, &seen}), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"upper", 0, upper_feed, NULL, NULL}), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"pass2", 0, pass_feed, pass_finish, &seen}), 0);
    static const char in[] = "data: hi\n\n";
    const char *o;
    size_t on;
    assert_int_equal(sl_relay_feed(&r, in, 10, &o, &on), 0);
    assert_int_equal(on, 10);
    assert_memory_equal(o, "DATA: HI\n\n", 10);
    assert_int_equal(seen.len, 20);
    assert_memory_equal(seen.data, "data: hi\n\nDATA: HI\n\n", 20);
    assert_int_equal(sl_relay_finish(&r, &o, &on), 0);
    assert_int_equal(on, 3);
    assert_memory_equal(o, "END", 3);
    sl_relay_free(&r);
    sl_buf_free(&seen);

    /* Alone in the chain after the usage observer: the input itself. */
    assert_int_equal(sl_relay_init(&r, &cfg), 0);
    assert_int_equal(sl_relay_add(&r, &(sl_filter){"pass", 0, pass_feed, NULL, &seen}), 0);
    assert_int_equal(sl_relay_feed(&r, in, 10, &o, &on), 0);
    assert_ptr_equal(o, in);
    assert_int_equal(on, 10);
    sl_relay_free(&r);
    sl_buf_free(&seen);
}

/* ---- whole bodies -------------------------------------------------------------- */

static const char openai_body[] =
    "{\"id\":\"chatcmpl-2\",\"object\":\"chat.completion\",\"created\":1,\"model\":\"gpt-4o\","
    "\"choices\":[{\"index\":0,\"finish_reason\":\"length\",\"message\":{\"role\":\"assistant\","
    "\"content\":\"The quick brown fox\"}}],"
    "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":6,\"total_tokens\":18,"
    "\"prompt_tokens_details\":{\"cached_tokens\":4}}}";

static char *dup(const char *s, size_t *len)
{
    *len = strlen(s);
    char *p = malloc(*len + 1);
    assert_non_null(p);
    memcpy(p, s, *len + 1);
    return p;
}

static void test_body_translated_and_usage_read(void **state)
{
    (void)state;
    size_t len;
    char *body = dup(openai_body, &len);
    char err[128] = "";
    sl_usage_counts u = {0};
    sl_relay_cfg cfg = {.up = SL_PROTO_OPENAI, .client = SL_PROTO_ANTHROPIC, .client_model = "claude-x"};
    assert_int_equal(sl_relay_body(&cfg, &body, &len, &u, err, sizeof err), 0);
    assert_int_equal(len, strlen(body));
    json_t *j = json_loadb(body, len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "claude-x");
    assert_string_equal(json_string_value(json_object_get(j, "stop_reason")), "max_tokens");
    json_t *block = json_array_get(json_object_get(j, "content"), 0);
    assert_string_equal(json_string_value(json_object_get(block, "text")), "The quick brown fox");
    json_decref(j);
    assert_true(u.have);
    assert_int_equal(u.input, 8); /* uncached: 12 - 4 */
    assert_int_equal(u.cache_read, 4);
    assert_int_equal(u.output, 6);
    free(body);

    /* Same protocol: the body is left as it is, usage still read. */
    body = dup(openai_body, &len);
    char *before = body;
    memset(&u, 0, sizeof u);
    cfg = (sl_relay_cfg){.up = SL_PROTO_OPENAI, .client = SL_PROTO_OPENAI};
    assert_int_equal(sl_relay_body(&cfg, &body, &len, &u, err, sizeof err), 0);
    assert_ptr_equal(body, before);
    assert_string_equal(body, openai_body);
    assert_int_equal(u.output, 6);

    /* A legacy client gets a text_completion. */
    cfg.legacy = 1;
    assert_int_equal(sl_relay_body(&cfg, &body, &len, &u, err, sizeof err), 0);
    j = json_loadb(body, len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "text_completion");
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(j, "choices"), 0), "text")),
                        "The quick brown fox");
    json_decref(j);
    free(body);

    /* Not a response of the upstream's protocol: refused with a reason. */
    body = dup("{\"unexpected\":true}", &len);
    cfg = (sl_relay_cfg){.up = SL_PROTO_ANTHROPIC, .client = SL_PROTO_OPENAI, .client_model = "m"};
    assert_int_equal(sl_relay_body(&cfg, &body, &len, &u, err, sizeof err), -1);
    assert_true(err[0] != '\0');
    free(body);
}

static void test_error_body(void **state)
{
    (void)state;
    size_t len;
    char *body = dup("{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}", &len);
    int status = 529;
    const char *ctype = "text/plain";
    sl_relay_error_body(SL_PROTO_ANTHROPIC, SL_PROTO_OPENAI, &status, &body, &len, &ctype);
    assert_int_equal(status, 503);
    assert_string_equal(ctype, "application/json");
    json_t *j = json_loadb(body, len, 0, NULL);
    assert_non_null(j);
    json_t *e = json_object_get(j, "error");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "Overloaded");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "overloaded_error");
    json_decref(j);
    free(body);

    /* Same protocol: nothing changes, not even the content type. */
    body = dup("upstream said no", &len);
    char *before = body;
    status = 418;
    ctype = "text/plain";
    sl_relay_error_body(SL_PROTO_OPENAI, SL_PROTO_OPENAI, &status, &body, &len, &ctype);
    assert_ptr_equal(body, before);
    assert_int_equal(status, 418);
    assert_string_equal(ctype, "text/plain");
    free(body);

    /* An empty body from another protocol still becomes a client-shaped error. */
    body = NULL;
    len = 0;
    status = 500;
    sl_relay_error_body(SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, &status, &body, &len, &ctype);
    assert_non_null(body);
    j = json_loadb(body, len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "type")), "error");
    json_decref(j);
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_passthrough_is_zero_copy),
        cmocka_unit_test(test_strip_removes_usage_chunk_and_counts_it),
        cmocka_unit_test(test_translate_openai_to_anthropic),
        cmocka_unit_test(test_translated_openai_client_gets_usage_chunk_only_if_asked),
        cmocka_unit_test(test_legacy_chain),
        cmocka_unit_test(test_truncated_translated_stream_fails_at_finish),
        cmocka_unit_test(test_added_filters_and_full_chain),
        cmocka_unit_test(test_strip_whole_events_zero_copy),
        cmocka_unit_test(test_unchanged_filter),
        cmocka_unit_test(test_body_translated_and_usage_read),
        cmocka_unit_test(test_error_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
