/*
 * Tests for the byte-level JSON scanner (runtime/json/json_scan.c). The
 * scanner must find a top-level member only at the top level, whatever
 * nested objects, arrays and strings (with braces, brackets, commas and
 * escaped quotes) come before it; refuse escaped member names; and the
 * quote and splice helpers must produce documents jansson reads back with
 * exactly the intended value, every other byte untouched.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "json/json_scan.h"

/* Finds `key` in doc and returns the raw value as a NUL-terminated string
 * in a static buffer, or NULL when the scanner says -1. */
static const char *member(const char *doc, const char *key)
{
    static char out[1024];
    /* Exact-size heap copy so AddressSanitizer catches any over-read. */
    size_t n = strlen(doc);
    char *copy = malloc(n ? n : 1);
    assert_non_null(copy);
    memcpy(copy, doc, n);
    size_t s = 99, e = 99;
    int rc = sl_json_find_member(copy, n, key, &s, &e);
    free(copy);
    if (rc != 0)
        return NULL;
    assert_true(s <= e);
    assert_true(e <= n);
    assert_true(e - s < sizeof out);
    memcpy(out, doc + s, e - s);
    out[e - s] = '\0';
    return out;
}

static void test_simple_members(void **state)
{
    const char *doc = "{\"model\":\"gpt-4o\",\"stream\":true,\"n\":2,\"x\":null,\"t\":-1.5e3}";
    assert_string_equal(member(doc, "model"), "\"gpt-4o\"");
    assert_string_equal(member(doc, "stream"), "true");
    assert_string_equal(member(doc, "n"), "2");
    assert_string_equal(member(doc, "x"), "null");
    assert_string_equal(member(doc, "t"), "-1.5e3");
}

static void test_whitespace(void **state)
{
    const char *doc = " \r\n\t{ \"a\" :\t[1, 2] ,\n  \"model\"  :  \"m\"  \n}\n";
    assert_string_equal(member(doc, "a"), "[1, 2]");
    assert_string_equal(member(doc, "model"), "\"m\"");
    assert_string_equal(member("{\"n\" : 42 }", "n"), "42");
    assert_string_equal(member("{\"n\":42\n,\"m\":1}", "m"), "1");
}

static void test_nested_decoys(void **state)
{
    /* "model" appears inside nested objects, arrays and strings before the
     * real top-level member; only the top-level one counts. */
    const char *doc =
        "{\"messages\":[{\"role\":\"user\",\"content\":\"say {\\\"model\\\":\\\"evil\\\"} ]}\"},"
        "{\"model\":\"nested-in-array\"}],"
        "\"metadata\":{\"model\":\"nested\",\"deep\":{\"model\":[\"x\",{\"model\":1}]}},"
        "\"s\":\"}}]]{{\\\\\","
        "\"model\":\"real\","
        "\"tail\":{\"model\":\"after\"}}";
    json_error_t err;
    json_t *j = json_loads(doc, 0, &err);
    assert_non_null(j); /* the fixture itself is valid JSON */
    assert_string_equal(json_string_value(json_object_get(j, "model")), "real");
    json_decref(j);
    assert_string_equal(member(doc, "model"), "\"real\"");
    assert_string_equal(member(doc, "metadata"),
                        "{\"model\":\"nested\",\"deep\":{\"model\":[\"x\",{\"model\":1}]}}");
    assert_string_equal(member(doc, "s"), "\"}}]]{{\\\\\"");
    assert_string_equal(member(doc, "tail"), "{\"model\":\"after\"}");
    assert_null(member(doc, "role"));
    assert_null(member(doc, "deep"));
}

static void test_string_values_with_escapes(void **state)
{
    const char *doc = "{\"a\":\"q\\\"uo\\\\\",\"b\":\"\\u0041\\n\",\"c\":\"\\\\\"}";
    assert_string_equal(member(doc, "a"), "\"q\\\"uo\\\\\"");
    assert_string_equal(member(doc, "b"), "\"\\u0041\\n\"");
    assert_string_equal(member(doc, "c"), "\"\\\\\"");
}

static void test_absent(void **state)
{
    assert_null(member("{}", "model"));
    assert_null(member(" { } ", "model"));
    assert_null(member("{\"models\":1}", "model"));
    assert_null(member("{\"mode\":1}", "model"));
    assert_null(member("{\"Model\":1}", "model"));
    assert_null(member("{\"a\":{\"model\":1}}", "model"));
    assert_null(member("{\"a\":\"model\"}", "model"));
    /* Not an object at all. */
    assert_null(member("[{\"model\":1}]", "model"));
    assert_null(member("\"model\"", "model"));
    assert_null(member("", "model"));
    assert_null(member("   ", "model"));
}

static void test_escaped_key_names(void **state)
{
    /* "mod\u0065l" decodes to "model": the scanner must not guess. */
    assert_null(member("{\"mod\\u0065l\":\"x\"}", "model"));
    /* An escaped key before the real one: the escaped one might be a
     * duplicate spelling, so the caller must take the exact path. */
    assert_null(member("{\"a\\\"b\":1,\"model\":\"x\"}", "model"));
    /* An escaped key after the match does not matter. */
    assert_string_equal(member("{\"model\":\"x\",\"a\\nb\":1}", "model"), "\"x\"");
}

static void test_empty_and_odd_keys(void **state)
{
    assert_string_equal(member("{\"\":1,\"k\":2}", ""), "1");
    assert_string_equal(member("{\"\":1,\"k\":2}", "k"), "2");
    assert_string_equal(member("{\"k{\":1,\"k\":[]}", "k"), "[]");
    assert_string_equal(member("{\"k\":{}}", "k"), "{}");
    /* UTF-8 key names compare byte for byte. */
    assert_string_equal(member("{\"mod\xc3\xa9l\":7}", "mod\xc3\xa9l"), "7");
}

static void test_value_at_end_of_buffer(void **state)
{
    /* n excludes the closing brace: the value still ends where it ends. */
    const char *doc = "{\"a\":1,\"model\":123}";
    size_t s, e;
    assert_int_equal(sl_json_find_member(doc, strlen(doc) - 1, "model", &s, &e), 0);
    assert_int_equal(e - s, 3);
    assert_memory_equal(doc + s, "123", 3);
}

/* Replaces the model and checks the result with jansson: the new value is
 * there and every other member survived. */
static void test_splice(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 256);
    const char *doc = "{\"temperature\":0.70,\"model\":\"smart\",\"messages\":[{\"role\":\"user\","
                      "\"content\":\"hi \\\"there\\\"\"}],\"unknown_field\":{\"x\":[1,2,3]}}";
    size_t n = strlen(doc), s, e, out_len = 0;
    assert_int_equal(sl_json_find_member(doc, n, "model", &s, &e), 0);
    char *q = sl_json_quote(&a, "claude-sonnet-4-5", 17);
    char *out = sl_json_splice(&a, doc, n, s, e, q, strlen(q), &out_len);
    assert_non_null(out);
    assert_int_equal(out_len, strlen(out));
    const char *expect = "{\"temperature\":0.70,\"model\":\"claude-sonnet-4-5\",\"messages\":[{\"role\":"
                         "\"user\",\"content\":\"hi \\\"there\\\"\"}],\"unknown_field\":{\"x\":[1,2,3]}}";
    assert_string_equal(out, expect);
    /* Bytes outside the span are the client's, number formatting included. */
    assert_memory_equal(out, doc, s);
    assert_memory_equal(out + out_len - (n - e), doc + e, n - e);

    json_error_t err;
    json_t *j = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, &err);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "model")), "claude-sonnet-4-5");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(j, "messages"), 0), "content")),
                        "hi \"there\"");
    json_decref(j);

    /* Shorter replacement, empty replacement, whole-document span. */
    out = sl_json_splice(&a, doc, n, s, e, "1", 1, &out_len);
    assert_int_equal(out_len, n - (e - s) + 1);
    j = json_loadb(out, out_len, 0, &err);
    assert_non_null(j);
    assert_int_equal(json_integer_value(json_object_get(j, "model")), 1);
    json_decref(j);
    out = sl_json_splice(&a, "abc", 3, 1, 2, "", 0, &out_len);
    assert_string_equal(out, "ac");
    assert_int_equal(out_len, 2);
    out = sl_json_splice(&a, "abc", 3, 0, 3, "xyz!", 4, &out_len);
    assert_string_equal(out, "xyz!");
    out = sl_json_splice(&a, "abc", 3, 3, 3, "d", 1, &out_len);
    assert_string_equal(out, "abcd");
    sl_arena_free(&a);
}

/* sl_json_quote(s) must be a JSON string that decodes back to s exactly. */
static void roundtrip(sl_arena *a, const char *s, size_t n)
{
    char *q = sl_json_quote(a, s, n);
    assert_non_null(q);
    size_t qn = strlen(q);
    assert_true(qn >= 2);
    assert_int_equal(q[0], '"');
    assert_int_equal(q[qn - 1], '"');
    /* No raw control bytes may appear in the literal. */
    for (size_t i = 0; i < qn; i++)
        assert_true((unsigned char)q[i] >= 0x20);
    json_error_t err;
    json_t *j = json_loadb(q, qn, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    assert_non_null(j);
    assert_true(json_is_string(j));
    assert_int_equal(json_string_length(j), n);
    assert_memory_equal(json_string_value(j), s, n);
    json_decref(j);
}

static void test_quote(void **state)
{
    sl_arena a;
    sl_arena_init(&a, 64);
    assert_string_equal(sl_json_quote(&a, "", 0), "\"\"");
    assert_string_equal(sl_json_quote(&a, "gpt-4o", 6), "\"gpt-4o\"");
    assert_string_equal(sl_json_quote(&a, "a\"b\\c", 5), "\"a\\\"b\\\\c\"");
    assert_string_equal(sl_json_quote(&a, "\n\r\t", 3), "\"\\n\\r\\t\"");
    assert_string_equal(sl_json_quote(&a, "\x01\x1f", 2), "\"\\u0001\\u001f\"");
    assert_string_equal(sl_json_quote(&a, "a\0b", 3), "\"a\\u0000b\"");
    /* '/' and DEL need no escaping; UTF-8 passes through byte for byte. */
    assert_string_equal(sl_json_quote(&a, "a/b\x7f", 4), "\"a/b\x7f\"");
    const char utf8[] = "mod\xc3\xa9le \xe6\xa8\xa1\xe5\x9e\x8b \xf0\x9f\x9a\x80";
    char *q = sl_json_quote(&a, utf8, sizeof utf8 - 1);
    assert_int_equal(strlen(q), sizeof utf8 + 1);
    assert_memory_equal(q + 1, utf8, sizeof utf8 - 1);

    roundtrip(&a, utf8, sizeof utf8 - 1);
    roundtrip(&a, "quotes \" and \\ backslashes \\\" mixed", 36);
    /* Every control byte, worst case for the output size. */
    char ctl[32];
    for (int i = 0; i < 32; i++)
        ctl[i] = (char)i;
    roundtrip(&a, ctl, sizeof ctl);
    /* Only a prefix of the input is quoted. */
    assert_string_equal(sl_json_quote(&a, "abcdef", 3), "\"abc\"");
    sl_arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_members),
        cmocka_unit_test(test_whitespace),
        cmocka_unit_test(test_nested_decoys),
        cmocka_unit_test(test_string_values_with_escapes),
        cmocka_unit_test(test_absent),
        cmocka_unit_test(test_escaped_key_names),
        cmocka_unit_test(test_empty_and_odd_keys),
        cmocka_unit_test(test_value_at_end_of_buffer),
        cmocka_unit_test(test_splice),
        cmocka_unit_test(test_quote),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
