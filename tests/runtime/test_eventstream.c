/*
 * Unit tests for runtime/aws/eventstream.c and the Bedrock stream filter
 * built on it (runtime/providers/bedrock_stream.c). Frames are built here
 * with zlib's CRC32, an implementation independent of the decoder's; the
 * decoder's own CRC is checked against the standard check value. Covered:
 * frames split at every byte, prelude and message CRC mismatches,
 * impossible lengths, malformed headers, base64, InvokeModel chunks and
 * Converse events turned into Anthropic SSE, exception frames (their
 * message made printable), and ends
 * inside a frame or before the end of the message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "aws/eventstream.h"
#include "providers/bedrock.h"

static void put32(sl_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    sl_buf_append(b, x, 4);
}

static void hdr(sl_buf *h, const char *name, const char *value)
{
    unsigned char nl = (unsigned char)strlen(name), t = 7;
    unsigned char vl[2] = {(unsigned char)(strlen(value) >> 8), (unsigned char)strlen(value)};
    sl_buf_append(h, &nl, 1);
    sl_buf_append(h, name, nl);
    sl_buf_append(h, &t, 1);
    sl_buf_append(h, vl, 2);
    sl_buf_append(h, value, strlen(value));
}

/* One message with string headers name1, value1, ... (NULL-terminated). */
static void frame(sl_buf *out, const char *payload, ...)
{
    sl_buf h = {0}, m = {0};
    va_list ap;
    va_start(ap, payload);
    for (const char *n; (n = va_arg(ap, const char *));)
        hdr(&h, n, va_arg(ap, const char *));
    va_end(ap);
    size_t pl = strlen(payload);
    put32(&m, (uint32_t)(16 + h.len + pl));
    put32(&m, (uint32_t)h.len);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.data, 8));
    sl_buf_append(&m, h.data, h.len);
    sl_buf_append(&m, payload, pl);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.data, (uInt)m.len));
    sl_buf_append(out, m.data, m.len);
    sl_buf_free(&m);
    sl_buf_free(&h);
}

static void test_crc_check_value(void **state)
{
    (void)state;
    assert_int_equal(sl_es_crc32(0, "123456789", 9), 0xCBF43926u);
}

static void test_split_everywhere(void **state)
{
    (void)state;
    sl_buf f = {0};
    frame(&f, "{\"a\":1}", ":event-type", "chunk", ":message-type", "event", NULL);
    frame(&f, "", ":event-type", "second", NULL);
    for (size_t cut = 0; cut <= f.len; cut++) {
        sl_es_decoder d;
        sl_es_init(&d);
        sl_es_msg m;
        int got = 0;
        assert_int_equal(sl_es_feed(&d, f.data, cut), 0);
        while (sl_es_next(&d, &m) == 1)
            got++;
        assert_int_equal(sl_es_feed(&d, f.data + cut, f.len - cut), 0);
        int r;
        while ((r = sl_es_next(&d, &m)) == 1) {
            got++;
            if (got == 1) {
                assert_int_equal(m.payload_len, 7);
                assert_memory_equal(m.payload, "{\"a\":1}", 7);
                sl_es_str t = sl_es_header(&m, ":event-type");
                assert_int_equal(t.n, 5);
                assert_memory_equal(t.p, "chunk", 5);
            }
        }
        assert_int_equal(r, 0);
        assert_int_equal(got, 2);
        assert_int_equal(sl_es_pending(&d), 0);
        sl_es_free(&d);
    }
    sl_buf_free(&f);
}

static int decode_all(const char *p, size_t n, char *err)
{
    sl_es_decoder d;
    sl_es_init(&d);
    sl_es_feed(&d, p, n);
    sl_es_msg m;
    int r;
    while ((r = sl_es_next(&d, &m)) == 1)
        ;
    snprintf(err, 96, "%s", d.err);
    sl_es_free(&d);
    return r;
}

static void test_corruption(void **state)
{
    (void)state;
    sl_buf f = {0};
    frame(&f, "{\"bytes\":\"eyJ0eXBlIjoicGluZyJ9\"}", ":event-type", "chunk", NULL);
    char err[96];
    for (size_t i = 0; i < f.len; i++) {
        f.data[i] ^= 0x01;
        int r = decode_all(f.data, f.len, err);
        /* Any flipped bit is caught: a length change makes the message
         * look longer (waits for more) or fails a CRC or bound. */
        assert_true(r == -1 || (r == 0 && i < 8));
        f.data[i] ^= 0x01;
    }
    f.data[f.len - 6] ^= 0x20;
    assert_int_equal(decode_all(f.data, f.len, err), -1);
    assert_string_equal(err, "event-stream message CRC mismatch");
    f.data[f.len - 6] ^= 0x20;
    f.data[9] ^= 1;
    assert_int_equal(decode_all(f.data, f.len, err), -1);
    assert_string_equal(err, "event-stream prelude CRC mismatch");
    sl_buf_free(&f);
}

static void test_bad_lengths_and_headers(void **state)
{
    (void)state;
    char err[96];
    /* total below the minimum, with a good prelude CRC */
    sl_buf b = {0};
    put32(&b, 8);
    put32(&b, 0);
    put32(&b, (uint32_t)crc32(0, (const Bytef *)b.data, 8));
    assert_int_equal(decode_all(b.data, b.len, err), -1);
    assert_string_equal(err, "event-stream message length out of range");
    sl_buf_free(&b);
    /* a header whose value runs past the headers */
    sl_buf h = {0}, m = {0};
    unsigned char bad[] = {2, 'a', 'b', 7, 0, 50, 'x'};
    sl_buf_append(&h, bad, sizeof bad);
    put32(&m, (uint32_t)(16 + h.len));
    put32(&m, (uint32_t)h.len);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.data, 8));
    sl_buf_append(&m, h.data, h.len);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.data, (uInt)m.len));
    assert_int_equal(decode_all(m.data, m.len, err), -1);
    assert_string_equal(err, "event-stream header value runs past the headers");
    sl_buf_free(&h);
    sl_buf_free(&m);
}

static void test_base64(void **state)
{
    (void)state;
    unsigned char out[16];
    assert_int_equal(sl_es_base64_decode("aGk=", 4, out), 2);
    assert_memory_equal(out, "hi", 2);
    assert_int_equal(sl_es_base64_decode("aGVsbG8h", 8, out), 6);
    assert_int_equal(sl_es_base64_decode("aGk", 3, out), -1);
    assert_int_equal(sl_es_base64_decode("a=Gk", 4, out), -1);
    assert_int_equal(sl_es_base64_decode("aG!k", 4, out), -1);
}

/* Runs frames through the Bedrock filter; the SSE text, or NULL when a
 * feed or the finish failed (*which says which: 1 feed, 2 finish). */
static char *run(int converse, const sl_buf *f, int *which)
{
    sl_bedrock_stream *s = sl_bedrock_stream_new(converse, "m");
    sl_buf out = {0};
    *which = 0;
    for (size_t i = 0; i < f->len && !*which; i += 7) /* odd pieces */
        if (sl_bedrock_stream_feed(s, f->data + i, f->len - i < 7 ? f->len - i : 7, &out) != 0)
            *which = 1;
    if (!*which && sl_bedrock_stream_finish(s, &out) != 0)
        *which = 2;
    sl_bedrock_stream_free(s);
    sl_buf_append(&out, "", 1);
    return out.data;
}

static void chunk(sl_buf *f, const char *event)
{
    char enc[1024], payload[1200];
    size_t n = strlen(event), o = 0;
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)(unsigned char)event[i] << 16 | (i + 1 < n ? (uint32_t)(unsigned char)event[i + 1] << 8 : 0) |
                     (i + 2 < n ? (unsigned char)event[i + 2] : 0);
        enc[o++] = t[w >> 18 & 63];
        enc[o++] = t[w >> 12 & 63];
        enc[o++] = i + 1 < n ? t[w >> 6 & 63] : '=';
        enc[o++] = i + 2 < n ? t[w & 63] : '=';
    }
    enc[o] = '\0';
    snprintf(payload, sizeof payload, "{\"bytes\":\"%s\",\"p\":\"abc\"}", enc);
    frame(f, payload, ":event-type", "chunk", ":content-type", "application/json", ":message-type", "event", NULL);
}

static void test_invoke_stream(void **state)
{
    (void)state;
    sl_buf f = {0};
    chunk(&f, "{\"type\":\"message_start\",\"message\":{\"id\":\"x\"}}");
    chunk(&f, "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}");
    int which;
    char *sse = run(0, &f, &which);
    assert_int_equal(which, 2); /* no message_stop: not a clean end */
    assert_non_null(strstr(sse, "event: message_start\ndata: {\"type\":\"message_start\""));
    assert_non_null(strstr(sse, "event: content_block_delta\ndata: "));
    free(sse);
    chunk(&f, "{\"type\":\"message_stop\"}");
    sse = run(0, &f, &which);
    assert_int_equal(which, 0);
    free(sse);
    /* an exception frame fails the stream, saying what AWS said */
    frame(&f, "{\"message\":\"slow\\ndown\"}", ":exception-type", "throttlingException", ":content-type",
          "application/json", ":message-type", "exception", NULL);
    sl_bedrock_stream *s = sl_bedrock_stream_new(0, "m");
    sl_buf out = {0};
    assert_int_equal(sl_bedrock_stream_feed(s, f.data, f.len, &out), -1);
    assert_string_equal(sl_bedrock_stream_error(s), "Bedrock stream exception throttlingException: slow?down");
    assert_int_equal(sl_bedrock_stream_finish(s, &out), -1);
    sl_bedrock_stream_free(s);
    sl_buf_free(&out);
    /* a chunk that is not base64 JSON */
    sl_buf g = {0};
    frame(&g, "{\"bytes\":\"!!!!\"}", ":event-type", "chunk", ":message-type", "event", NULL);
    sse = run(0, &g, &which);
    assert_int_equal(which, 1);
    free(sse);
    sl_buf_free(&g);
    sl_buf_free(&f);
}

static void test_converse_stream(void **state)
{
    (void)state;
    sl_buf f = {0};
    const char *ev[][2] = {
        {"messageStart", "{\"role\":\"assistant\"}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"Hel\"}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":0,\"delta\":{\"text\":\"lo\"}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":0}"},
        {"contentBlockStart", "{\"contentBlockIndex\":1,\"start\":{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"f\"}}}"},
        {"contentBlockDelta", "{\"contentBlockIndex\":1,\"delta\":{\"toolUse\":{\"input\":\"{\\\"a\\\":1}\"}}}"},
        {"contentBlockStop", "{\"contentBlockIndex\":1}"},
        {"messageStop", "{\"stopReason\":\"tool_use\"}"},
        {"metadata", "{\"usage\":{\"inputTokens\":11,\"outputTokens\":7,\"totalTokens\":18},\"metrics\":{}}"},
    };
    for (size_t i = 0; i < sizeof ev / sizeof ev[0]; i++)
        frame(&f, ev[i][1], ":event-type", ev[i][0], ":content-type", "application/json", ":message-type", "event",
              NULL);
    int which;
    char *sse = run(1, &f, &which);
    assert_int_equal(which, 0);
    const char *want[] = {
        "event: message_start\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\"",
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"Hel\"}",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}",
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{}}",
        "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"a\\\":1}\"}",
        "\"delta\":{\"stop_reason\":\"tool_use\",\"stop_sequence\":null},\"usage\":{\"input_tokens\":11,\"output_tokens\":7}",
        "event: message_stop\n",
    };
    const char *at = sse;
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        const char *p = strstr(at, want[i]);
        if (!p)
            fail_msg("missing in order: %s\nin:\n%s", want[i], sse);
        at = p + strlen(want[i]);
    }
    free(sse);
    /* cut inside the last frame: reported at the end */
    f.len -= 3;
    sse = run(1, &f, &which);
    assert_int_equal(which, 2);
    free(sse);
    sl_buf_free(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc_check_value),
        cmocka_unit_test(test_split_everywhere),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_bad_lengths_and_headers),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_invoke_stream),
        cmocka_unit_test(test_converse_stream),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
