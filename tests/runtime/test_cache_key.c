/*
 * Tests for cache keys (runtime/cache/key.c): the same question spelt with
 * members in another order or other whitespace is one key; anything that
 * changes the answer or its bytes (tools, messages, sampling, output
 * limit, protocol, stream-ness, scope, rule, entry) is another; members
 * that only identify the caller are ignored; which requests count as
 * temperature 0; the semantic context (everything but the prompt) and the
 * prompt text an embedding is made of.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cache/cache.h"

static const char *const base =
    "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":50,"
    "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
    "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}";

static sl_cache_key_in input(void)
{
    return (sl_cache_key_in){.rule = 0, .entry = 1, .client_model = "m", .op = SL_OP_CHAT,
                             .surface = SL_PROTO_OPENAI, .scope = "alice"};
}

/* The key of `body` with `in`'s other fields. */
static void key_of(sl_cache_key_in in, const char *body, uint8_t out[SL_CACHE_KEY_LEN])
{
    json_error_t err;
    json_t *j = json_loads(body, 0, &err);
    assert_non_null(j);
    in.body = j;
    assert_int_equal(sl_cache_key(&in, out), 0);
    json_decref(j);
}

static int same(const char *a, const char *b)
{
    uint8_t ka[SL_CACHE_KEY_LEN], kb[SL_CACHE_KEY_LEN];
    key_of(input(), a, ka);
    key_of(input(), b, kb);
    return memcmp(ka, kb, sizeof ka) == 0;
}

static void test_member_order_and_whitespace(void **state)
{
    (void)state;
    const char *reordered =
        "{ \"tools\" : [ {\"function\":{\"parameters\":{\"type\":\"object\"},\"name\":\"f\"},\"type\":\"function\"} ],\n"
        "  \"messages\":[{\"content\":\"hi\",\"role\":\"user\"}], \"max_tokens\":50, \"temperature\":0, \"model\":\"m\" }";
    assert_true(same(base, reordered));
}

static void test_what_changes_the_key(void **state)
{
    (void)state;
    assert_false(same(base, "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":50,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"g\",\"parameters\":{\"type\":\"object\"}}}]}"));
    assert_false(same(base, "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":50,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"hi!\"}],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}"));
    assert_false(same(base, "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":51,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}"));
    assert_false(same(base, "{\"model\":\"m\",\"temperature\":0,\"max_tokens\":50,\"top_p\":0.5,"
                            "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                            "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}"));
    uint8_t k0[SL_CACHE_KEY_LEN], k[SL_CACHE_KEY_LEN];
    key_of(input(), base, k0);
    sl_cache_key_in in = input();
    in.surface = SL_PROTO_ANTHROPIC;
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.stream = 1;
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.scope = "bob";
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.entry = 2;
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.rule = 3;
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.legacy = 1;
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    in = input();
    in.client_model = "m2";
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
    /* Fields are length-prefixed: moving bytes between two does not collide. */
    in = input();
    in.client_model = "ma";
    in.scope = "lice";
    key_of(in, base, k);
    assert_memory_not_equal(k0, k, sizeof k);
}

static void test_caller_fields_ignored(void **state)
{
    (void)state;
    assert_true(same(base, "{\"model\":\"other\",\"stream\":false,\"user\":\"u1\",\"metadata\":{\"user_id\":\"x\"},"
                           "\"temperature\":0,\"max_tokens\":50,"
                           "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
                           "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\",\"parameters\":{\"type\":\"object\"}}}]}"));
}

static void test_temperature_zero(void **state)
{
    (void)state;
    struct {
        const char *body;
        sl_op op;
        int zero;
    } cases[] = {
        {"{\"temperature\":0}", SL_OP_CHAT, 1},
        {"{\"temperature\":0.0}", SL_OP_MESSAGES, 1},
        {"{\"temperature\":0.2}", SL_OP_CHAT, 0},
        {"{}", SL_OP_CHAT, 0},
        {"{\"temperature\":\"0\"}", SL_OP_CHAT, 0},
        {"{\"generationConfig\":{\"temperature\":0}}", SL_OP_GENERATE, 1},
        {"{\"temperature\":0}", SL_OP_GENERATE, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *j = json_loads(cases[i].body, 0, NULL);
        assert_non_null(j);
        assert_int_equal(sl_cache_temperature_zero(j, cases[i].op), cases[i].zero);
        json_decref(j);
    }
}

static void test_semantic_context_and_text(void **state)
{
    (void)state;
    const char *a = "{\"temperature\":0,\"system\":\"be brief\",\"messages\":[{\"role\":\"user\",\"content\":"
                    "[{\"type\":\"text\",\"text\":\"capital of France?\"}]}]}";
    const char *b = "{\"temperature\":0,\"system\":\"be brief\",\"messages\":[{\"role\":\"user\",\"content\":"
                    "\"the capital of France\"}]}";
    const char *c = "{\"temperature\":0,\"top_p\":0.5,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
    sl_cache_key_in in = input();
    in.without_prompt = 1;
    uint8_t ka[SL_CACHE_KEY_LEN], kb[SL_CACHE_KEY_LEN], kc[SL_CACHE_KEY_LEN], exact[SL_CACHE_KEY_LEN];
    key_of(in, a, ka);
    key_of(in, b, kb);
    key_of(in, c, kc);
    assert_memory_equal(ka, kb, sizeof ka);     /* only the prompt differs */
    assert_memory_not_equal(ka, kc, sizeof ka); /* sampling differs */
    key_of(input(), "{\"temperature\":0}", exact);
    assert_memory_not_equal(ka, exact, sizeof ka); /* never an exact key */
    json_t *j = json_loads(a, 0, NULL);
    sl_buf t = {0};
    assert_int_equal(sl_cache_prompt_text(j, &t), 0);
    assert_int_equal(t.len, strlen("capital of France?\nbe brief\n"));
    assert_memory_equal(t.data, "capital of France?\nbe brief\n", t.len);
    sl_buf_free(&t);
    json_decref(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_member_order_and_whitespace),
        cmocka_unit_test(test_what_changes_the_key),
        cmocka_unit_test(test_caller_fields_ignored),
        cmocka_unit_test(test_temperature_zero),
        cmocka_unit_test(test_semantic_context_and_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
