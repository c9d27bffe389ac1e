/*
 * Unit tests for runtime/govern/usage.c: usage from whole bodies in the
 * OpenAI and Anthropic shapes, the stream observer and the relay that
 * strips the usage-only chunk, at every split point, and the line cap
 * (a 400 MB `data:` line without a newline used to be buffered whole by
 * the relay).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "govern/usage.h"
#include "translate/sse.h"

static sl_usage_counts body(const char *s)
{
    sl_usage_counts u = {0};
    sl_usage_from_body(s, strlen(s), &u);
    return u;
}

/* ---- whole bodies -------------------------------------------------------- */

static void test_body_openai(void **state)
{
    (void)state;
    sl_usage_counts u = body("{\"id\":\"x\",\"choices\":[{\"message\":{\"content\":\"hi\"}}],"
                             "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":20,"
                             "\"total_tokens\":120,\"prompt_tokens_details\":{\"cached_tokens\":30}}}");
    assert_int_equal(u.have, 1);
    assert_int_equal(u.input, 70); /* uncached only */
    assert_int_equal(u.cache_read, 30);
    assert_int_equal(u.output, 20);
    assert_int_equal(u.cache_write, 0);
    /* No details: everything is uncached input. */
    u = body("{\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":1}}");
    assert_int_equal(u.input, 9);
    assert_int_equal(u.cache_read, 0);
    /* More cached than prompt (a broken upstream) never goes negative. */
    u = body("{\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":1,"
             "\"prompt_tokens_details\":{\"cached_tokens\":50}}}");
    assert_int_equal(u.input, 0);
    assert_int_equal(u.cache_read, 50);
}

static void test_body_anthropic(void **state)
{
    (void)state;
    sl_usage_counts u = body("{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],"
                             "\"usage\":{\"input_tokens\":10,\"output_tokens\":5,"
                             "\"cache_read_input_tokens\":3,\"cache_creation_input_tokens\":2}}");
    assert_int_equal(u.have, 1);
    assert_int_equal(u.input, 10);
    assert_int_equal(u.output, 5);
    assert_int_equal(u.cache_read, 3);
    assert_int_equal(u.cache_write, 2);
}

/* Gemini's usageMetadata: it was never read, so a Gemini answer relayed to
 * a Gemini client was charged an estimate instead of what Gemini reported. */
static void test_body_gemini(void **state)
{
    (void)state;
    sl_usage_counts u = body("{\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hi\"}],\"role\":\"model\"}}],"
                             "\"usageMetadata\":{\"promptTokenCount\":40,\"cachedContentTokenCount\":10,"
                             "\"candidatesTokenCount\":7,\"thoughtsTokenCount\":3,\"totalTokenCount\":50}}");
    assert_int_equal(u.have, 1);
    assert_int_equal(u.input, 30);
    assert_int_equal(u.cache_read, 10);
    assert_int_equal(u.output, 10); /* thinking is billed as output */
    assert_int_equal(u.cache_write, 0);
}

static void test_body_without_usage(void **state)
{
    (void)state;
    sl_usage_counts u = body("{\"choices\":[]}");
    assert_int_equal(u.have, 0);
    u = body("not json at all");
    assert_int_equal(u.have, 0);
    u = body("");
    assert_int_equal(u.have, 0);
    /* "usage" inside a string is text, not the member. */
    u = body("{\"choices\":[{\"message\":{\"content\":\"\\\"usage\\\":{\\\"prompt_tokens\\\":7}\"}}]}");
    assert_int_equal(u.have, 0);
    /* Negative and non-integer counts are ignored. */
    u = body("{\"usage\":{\"input_tokens\":-5,\"output_tokens\":\"9\"}}");
    assert_int_equal(u.have, 0);
    assert_int_equal(u.input, 0);
    assert_int_equal(u.output, 0);
}

static void test_total(void **state)
{
    (void)state;
    sl_usage_counts u = {.input = 1, .output = 2, .cache_read = 3, .cache_write = 4};
    assert_int_equal(sl_usage_total(&u), 10);
    u = (sl_usage_counts){.input = INT64_MAX, .output = INT64_MAX, .cache_read = 1};
    assert_true(sl_usage_total(&u) == INT64_MAX);
    u = (sl_usage_counts){.input = INT64_MIN, .output = 5, .cache_read = -1, .cache_write = 2};
    assert_int_equal(sl_usage_total(&u), 7);
}

/* ---- streams ------------------------------------------------------------- */

static const char openai_stream[] =
    "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n"
    "data: {\"choices\":[{\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\n"
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2,"
    "\"prompt_tokens_details\":{\"cached_tokens\":4}}}\n\n"
    "data: [DONE]\n\n";

static const char anthropic_stream[] =
    "event: message_start\r\n"
    "data: {\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":25,"
    "\"cache_read_input_tokens\":5,\"output_tokens\":1}}}\r\n\r\n"
    "event: ping\r\ndata: {\"type\":\"ping\"}\r\n\r\n"
    "event: content_block_delta\r\n"
    "data: {\"type\":\"content_block_delta\",\"delta\":{\"text\":\"hi\"}}\r\n\r\n"
    "event: message_delta\r\n"
    "data: {\"type\":\"message_delta\",\"usage\":{\"output_tokens\":15}}\r\n\r\n"
    "event: message_stop\r\ndata: {\"type\":\"message_stop\"}\r\n\r\n";

/* Feeds `in` split at `split` (or byte by byte when split > len). */
static void feed_split(sl_usage_stream *s, const char *in, size_t len, size_t split, sl_buf *keep)
{
    if (split <= len) {
        assert_int_equal(sl_usage_stream_relay(s, in, split, keep), 0);
        assert_int_equal(sl_usage_stream_relay(s, in + split, len - split, keep), 0);
    } else {
        for (size_t i = 0; i < len; i++)
            assert_int_equal(sl_usage_stream_relay(s, in + i, 1, keep), 0);
    }
}

static void test_stream_openai_all_splits(void **state)
{
    (void)state;
    size_t len = sizeof openai_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_usage_stream s = {0};
        feed_split(&s, openai_stream, len, split, NULL);
        assert_int_equal(s.u.have, 1);
        assert_int_equal(s.u.input, 8);
        assert_int_equal(s.u.cache_read, 4);
        assert_int_equal(s.u.output, 2);
        assert_int_equal(s.done, 1);
        assert_int_equal(s.events, 4);
        sl_usage_stream_free(&s);
    }
    /* feed is the same observer. */
    sl_usage_stream s = {0};
    assert_int_equal(sl_usage_stream_feed(&s, openai_stream, len), 0);
    assert_int_equal(s.u.output, 2);
    sl_usage_stream_free(&s);
}

static void test_stream_anthropic_all_splits(void **state)
{
    (void)state;
    size_t len = sizeof anthropic_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_usage_stream s = {0};
        feed_split(&s, anthropic_stream, len, split, NULL);
        /* message_delta's output count does not erase message_start's input. */
        assert_int_equal(s.u.input, 25);
        assert_int_equal(s.u.cache_read, 5);
        assert_int_equal(s.u.output, 15);
        assert_int_equal(s.done, 1);
        assert_int_equal(s.events, 5);
        sl_usage_stream_free(&s);
    }
}

static const char gemini_stream[] =
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"Hello there, \"}]}}]}\r\n\r\n"
    "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"friend\"}]},\"finishReason\":\"STOP\"}],"
    "\"usageMetadata\":{\"promptTokenCount\":21,\"candidatesTokenCount\":9,\"totalTokenCount\":30}}\r\n\r\n";

static void test_stream_gemini_all_splits(void **state)
{
    (void)state;
    size_t len = sizeof gemini_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_usage_stream s = {0};
        feed_split(&s, gemini_stream, len, split, NULL);
        assert_int_equal(s.u.have, 1);
        assert_int_equal(s.u.input, 21);
        assert_int_equal(s.u.output, 9); /* what Gemini said, not 2 events */
        assert_int_equal(s.events, 2);
        sl_usage_stream_free(&s);
    }
}

static void test_stream_unterminated(void **state)
{
    (void)state;
    sl_usage_stream s = {0};
    const char *in = "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: {\"usage\":{\"completion_tokens\":3}";
    assert_int_equal(sl_usage_stream_feed(&s, in, strlen(in)), 0);
    /* The last line never ended: not parsed, not counted. */
    assert_int_equal(s.events, 1);
    assert_int_equal(s.u.have, 0);
    assert_int_equal(s.done, 0);
    sl_usage_stream_free(&s);
}

/* The observer splits lines with the SSE parser's own splitter, so CR and
 * CRLF endings (legal SSE) end lines too. Before, a CR-only upstream never
 * ended a line: no usage was read and the line cap ended the stream. */
static void test_stream_cr_endings(void **state)
{
    (void)state;
    static const char cr[] = "data: {\"choices\":[{\"delta\":{}}]}\r\r"
                             "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2}}\r\r"
                             "data: [DONE]\r\r";
    static const char crlf[] = "data: {\"choices\":[{\"delta\":{}}]}\r\n\r\n"
                               "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":8,\"completion_tokens\":2}}\r\n\r\n"
                               "data: [DONE]\r\n\r\n";
    const char *streams[] = {cr, crlf};
    size_t lens[] = {sizeof cr - 1, sizeof crlf - 1};
    for (int k = 0; k < 2; k++) {
        for (size_t split = 0; split <= lens[k] + 1; split++) {
            sl_usage_stream s = {0};
            sl_buf keep = {0};
            feed_split(&s, streams[k], lens[k], split, &keep);
            assert_int_equal(s.u.output, 2);
            assert_int_equal(s.done, 1);
            assert_int_equal(s.events, 3);
            /* Kept lines come out with LF endings, the usage chunk gone. */
            static const char want[] = "data: {\"choices\":[{\"delta\":{}}]}\n\ndata: [DONE]\n\n";
            assert_int_equal(keep.len, sizeof want - 1);
            assert_memory_equal(keep.data, want, keep.len);
            sl_buf_free(&keep);
            sl_usage_stream_free(&s);
        }
    }
}

/* The Responses API's usage: input_tokens counts cached ones (as OpenAI's
 * prompt_tokens does); in streams it arrives in response.completed, nested
 * in the response, after events whose usage is null. */
static const char responses_stream[] =
    "event: response.created\n"
    "data: {\"type\":\"response.created\",\"response\":{\"id\":\"resp_1\",\"usage\":null}}\n\n"
    "event: response.output_text.delta\n"
    "data: {\"type\":\"response.output_text.delta\",\"delta\":\"\\\"usage\\\"\"}\n\n"
    "event: response.completed\n"
    "data: {\"type\":\"response.completed\",\"response\":{\"id\":\"resp_1\",\"usage\":{\"input_tokens\":120,"
    "\"input_tokens_details\":{\"cached_tokens\":20},\"output_tokens\":9,"
    "\"output_tokens_details\":{\"reasoning_tokens\":4},\"total_tokens\":129}}}\n\n";

static void test_responses_shape(void **state)
{
    (void)state;
    sl_usage_counts u = body("{\"id\":\"resp_1\",\"object\":\"response\",\"output\":[],\"usage\":{\"input_tokens\":50,"
                             "\"input_tokens_details\":{\"cached_tokens\":10},\"output_tokens\":7,"
                             "\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":57}}");
    assert_int_equal(u.have, 1);
    assert_int_equal(u.input, 40);
    assert_int_equal(u.cache_read, 10);
    assert_int_equal(u.output, 7);
    assert_int_equal(u.reasoning, 3);
    size_t len = sizeof responses_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_usage_stream st = {0};
        feed_split(&st, responses_stream, len, split, NULL);
        assert_int_equal(st.u.have, 1);
        assert_int_equal(st.u.input, 100);
        assert_int_equal(st.u.cache_read, 20);
        assert_int_equal(st.u.output, 9);
        assert_int_equal(st.u.reasoning, 4);
        assert_int_equal(st.done, 1);
        sl_usage_stream_free(&st);
    }
}

static void test_relay_strips_usage_chunk(void **state)
{
    (void)state;
    static const char want[] =
        "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"llo\"},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    size_t len = sizeof openai_stream - 1;
    for (size_t split = 0; split <= len + 1; split++) {
        sl_usage_stream s = {0};
        sl_buf keep = {0};
        feed_split(&s, openai_stream, len, split, &keep);
        assert_int_equal(keep.len, sizeof want - 1);
        assert_memory_equal(keep.data, want, keep.len);
        /* The stripped chunk was still read. */
        assert_int_equal(s.u.output, 2);
        sl_buf_free(&keep);
        sl_usage_stream_free(&s);
    }
}

/* Whole LF-ended events need no copy (1: the client gets the input as it
 * is); a read holding the usage chunk gets it cut out; CRLF is copied
 * line by line with LF endings, as before. */
static void test_strip_without_copy(void **state)
{
    (void)state;
    static const char e1[] = "data: {\"choices\":[{\"delta\":{\"content\":\"he\"}}]}\n\n";
    static const char rest[] = "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":2}}\n\n"
                               "data: [DONE]\n\n";
    sl_usage_stream s = {0};
    sl_buf keep = {0};
    assert_int_equal(sl_usage_stream_strip(&s, e1, sizeof e1 - 1, &keep), 1);
    assert_int_equal(keep.len, 0);
    assert_int_equal(sl_usage_stream_strip(&s, rest, sizeof rest - 1, &keep), 0);
    assert_int_equal(keep.len, strlen("data: [DONE]\n\n"));
    assert_memory_equal(keep.data, "data: [DONE]\n\n", keep.len);
    assert_int_equal(s.u.output, 2);
    assert_int_equal(s.done, 1);
    sl_usage_stream_free(&s);
    /* An unfinished line is held, so the read that ends it is copied. */
    sl_usage_stream t = {0};
    sl_buf_clear(&keep);
    assert_int_equal(sl_usage_stream_strip(&t, e1, 10, &keep), 0);
    assert_int_equal(keep.len, 0);
    assert_int_equal(sl_usage_stream_strip(&t, e1 + 10, sizeof e1 - 11, &keep), 0);
    assert_int_equal(keep.len, sizeof e1 - 1);
    assert_memory_equal(keep.data, e1, keep.len);
    /* Now whole lines again: no copy. */
    sl_buf_clear(&keep);
    assert_int_equal(sl_usage_stream_strip(&t, e1, sizeof e1 - 1, &keep), 1);
    /* CRLF endings are normalised, so copied. */
    assert_int_equal(sl_usage_stream_strip(&t, "data: {}\r\n\r\n", 12, &keep), 0);
    assert_int_equal(keep.len, 10);
    assert_memory_equal(keep.data, "data: {}\n\n", 10);
    sl_buf_free(&keep);
    sl_usage_stream_free(&t);
}

/* The keys a stream line is scanned for are found at every offset (the
 * scan tests 16 positions at a time), up to the last byte, and not when
 * cut short. */
static void test_keys_at_every_offset(void **state)
{
    (void)state;
    char line[256];
    for (int pad = 0; pad < 48; pad++) {
        sl_usage_stream s = {0};
        int n = snprintf(line, sizeof line, "data: {\"p\":\"%.*s\",\"usage\":{\"completion_tokens\":%d}}\n", pad,
                         "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz", pad + 1);
        assert_int_equal(sl_usage_stream_feed(&s, line, (size_t)n), 0);
        assert_int_equal(s.u.output, pad + 1);
        assert_int_equal(s.done, 0);
        n = snprintf(line, sizeof line, "data: %.*s\"message_stop\"\n", pad, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_int_equal(sl_usage_stream_feed(&s, line, (size_t)n), 0);
        assert_int_equal(s.done, 1);
        sl_usage_stream_free(&s);
        sl_usage_stream t = {0};
        n = snprintf(line, sizeof line, "data: %.*s\"message_sto\n", pad, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx");
        assert_int_equal(sl_usage_stream_feed(&t, line, (size_t)n), 0);
        n = snprintf(line, sizeof line, "data: %.*s\"response.completed\"\n", pad, "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy");
        assert_int_equal(t.done, 0);
        assert_int_equal(sl_usage_stream_feed(&t, line, (size_t)n), 0);
        assert_int_equal(t.done, 1);
        sl_usage_stream_free(&t);
    }
}

static void test_relay_keeps_other_usage(void **state)
{
    (void)state;
    /* A chunk with choices and usage is the client's own: it stays. */
    const char *in = "data: {\"choices\":[{\"delta\":{}}],\"usage\":{\"completion_tokens\":3}}\n\n";
    sl_usage_stream s = {0};
    sl_buf keep = {0};
    assert_int_equal(sl_usage_stream_relay(&s, in, strlen(in), &keep), 0);
    assert_int_equal(keep.len, strlen(in));
    assert_int_equal(s.u.output, 3);
    sl_buf_free(&keep);
    sl_usage_stream_free(&s);
}

/* ---- the line cap -------------------------------------------------------- */

static char *filled(size_t n)
{
    char *p = malloc(n);
    assert_non_null(p);
    memset(p, 'x', n);
    memcpy(p, "data: ", 6);
    return p;
}

static void test_cap_exact_line_passes(void **state)
{
    (void)state;
    /* SL_SSE_MAX_LINE bytes before the newline: the largest line allowed. */
    char *big = filled(SL_SSE_MAX_LINE);
    sl_usage_stream s = {0};
    sl_buf keep = {0};
    assert_int_equal(sl_usage_stream_relay(&s, big, SL_SSE_MAX_LINE, &keep), 0);
    assert_int_equal(sl_usage_stream_relay(&s, "\n\n", 2, &keep), 0);
    assert_int_equal(keep.len, SL_SSE_MAX_LINE + 2);
    assert_int_equal(s.events, 1);
    sl_buf_free(&keep);
    sl_usage_stream_free(&s);
    free(big);
}

static void test_cap_relay(void **state)
{
    (void)state;
    /* Fed in 64 KiB pieces with no newline, the relay stops at the cap
     * and its buffer never holds much more than one cap's worth. */
    enum { PIECE = 64 * 1024 };
    char *piece = filled(PIECE);
    sl_usage_stream s = {0};
    sl_buf keep = {0};
    int rc = 0;
    size_t fed = 0;
    while (rc == 0 && fed < 8 * (size_t)SL_SSE_MAX_LINE) {
        rc = sl_usage_stream_relay(&s, piece, PIECE, &keep);
        fed += PIECE;
        assert_true(s.lines.line.cap <= 2 * (size_t)SL_SSE_MAX_LINE);
    }
    assert_int_equal(rc, -1);
    assert_true(fed <= (size_t)SL_SSE_MAX_LINE + PIECE);
    assert_int_equal(keep.len, 0); /* nothing of the line went out */
    assert_int_equal(s.lines.line.cap, 0); /* and nothing of it is held */
    /* Failed for good, even for an innocent line. */
    assert_int_equal(sl_usage_stream_relay(&s, "data: {}\n\n", 10, &keep), -1);
    assert_int_equal(keep.len, 0);
    sl_buf_free(&keep);
    sl_usage_stream_free(&s);
    free(piece);
}

static void test_cap_feed(void **state)
{
    (void)state;
    /* One byte over, in one call: refused before any copy. */
    char *big = filled(SL_SSE_MAX_LINE + 1);
    sl_usage_stream s = {0};
    assert_int_equal(sl_usage_stream_feed(&s, big, SL_SSE_MAX_LINE + 1), -1);
    assert_int_equal(s.lines.line.cap, 0);
    assert_int_equal(sl_usage_stream_feed(&s, "\n", 1), -1);
    sl_usage_stream_free(&s);
    /* The same bytes with a newline inside the cap are fine. */
    sl_usage_stream t = {0};
    big[SL_SSE_MAX_LINE / 2] = '\n';
    assert_int_equal(sl_usage_stream_feed(&t, big, SL_SSE_MAX_LINE + 1), 0);
    sl_usage_stream_free(&t);
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_openai),
        cmocka_unit_test(test_body_anthropic),
        cmocka_unit_test(test_body_gemini),
        cmocka_unit_test(test_body_without_usage),
        cmocka_unit_test(test_total),
        cmocka_unit_test(test_stream_openai_all_splits),
        cmocka_unit_test(test_stream_anthropic_all_splits),
        cmocka_unit_test(test_stream_gemini_all_splits),
        cmocka_unit_test(test_stream_unterminated),
        cmocka_unit_test(test_stream_cr_endings),
        cmocka_unit_test(test_responses_shape),
        cmocka_unit_test(test_relay_strips_usage_chunk),
        cmocka_unit_test(test_relay_keeps_other_usage),
        cmocka_unit_test(test_strip_without_copy),
        cmocka_unit_test(test_keys_at_every_offset),
        cmocka_unit_test(test_cap_exact_line_passes),
        cmocka_unit_test(test_cap_relay),
        cmocka_unit_test(test_cap_feed),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
