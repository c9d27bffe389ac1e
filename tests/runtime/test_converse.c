/*
 * Unit tests for runtime/translate/converse.c: an Anthropic request with
 * system, text, image, tool_use and tool_result blocks, sampling settings
 * and tools becomes the Converse request Bedrock documents; Converse
 * answers (text, toolUse, reasoning, stop reasons, usage) become Anthropic
 * messages; what is not a Converse answer is refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "translate/converse.h"

static void assert_json(const char *got, const char *want)
{
    json_t *g = json_loads(got, 0, NULL), *w = json_loads(want, 0, NULL);
    assert_non_null(g);
    assert_non_null(w);
    if (!json_equal(g, w))
        fail_msg("got  %s\nwant %s", got, want);
    json_decref(g);
    json_decref(w);
}

static void test_request(void **state)
{
    (void)state;
    json_t *a = json_loads(
        "{\"model\":\"x\",\"max_tokens\":100,\"temperature\":0.5,\"top_p\":0.9,\"top_k\":40,"
        "\"stop_sequences\":[\"END\"],\"stream\":true,"
        "\"system\":[{\"type\":\"text\",\"text\":\"be brief\"}],"
        "\"tools\":[{\"name\":\"get\",\"description\":\"d\",\"input_schema\":{\"type\":\"object\"}},"
        "{\"type\":\"web_search_20250305\",\"name\":\"web_search\"}],"
        "\"tool_choice\":{\"type\":\"tool\",\"name\":\"get\"},"
        "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"hi\"},"
        "{\"type\":\"image\",\"source\":{\"type\":\"base64\",\"media_type\":\"image/png\",\"data\":\"AAAA\"}}]},"
        "{\"role\":\"assistant\",\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"get\",\"input\":{\"q\":1}}]},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\",\"tool_use_id\":\"t1\",\"content\":\"42\",\"is_error\":true}]}]}",
        0, NULL);
    char err[128] = "";
    char *c = sl_converse_request(a, err, sizeof err);
    assert_non_null(c);
    assert_json(c,
                "{\"messages\":[{\"role\":\"user\",\"content\":[{\"text\":\"hi\"},"
                "{\"image\":{\"format\":\"png\",\"source\":{\"bytes\":\"AAAA\"}}}]},"
                "{\"role\":\"assistant\",\"content\":[{\"toolUse\":{\"toolUseId\":\"t1\",\"name\":\"get\",\"input\":{\"q\":1}}}]},"
                "{\"role\":\"user\",\"content\":[{\"toolResult\":{\"toolUseId\":\"t1\",\"content\":[{\"text\":\"42\"}],"
                "\"status\":\"error\"}}]}],"
                "\"system\":[{\"text\":\"be brief\"}],"
                "\"inferenceConfig\":{\"maxTokens\":100,\"temperature\":0.5,\"topP\":0.9,\"stopSequences\":[\"END\"]},"
                "\"additionalModelRequestFields\":{\"top_k\":40},"
                "\"toolConfig\":{\"tools\":[{\"toolSpec\":{\"name\":\"get\",\"inputSchema\":{\"json\":{\"type\":\"object\"}},"
                "\"description\":\"d\"}}],\"toolChoice\":{\"tool\":{\"name\":\"get\"}}}}");
    free(c);
    json_decref(a);
    /* an image by URL has no Converse form */
    a = json_loads("{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image\",\"source\":{\"type\":\"url\","
                   "\"url\":\"https://x\"}}]}]}",
                   0, NULL);
    assert_null(sl_converse_request(a, err, sizeof err));
    assert_string_equal(err, "Bedrock Converse takes images as base64 data only");
    json_decref(a);
}

static void test_response(void **state)
{
    (void)state;
    const char *b = "{\"output\":{\"message\":{\"role\":\"assistant\",\"content\":[{\"reasoningContent\":"
                    "{\"reasoningText\":{\"text\":\"hmm\",\"signature\":\"s\"}}},{\"text\":\"Hi\"},"
                    "{\"toolUse\":{\"toolUseId\":\"t9\",\"name\":\"get\",\"input\":{\"q\":2}}}]}},"
                    "\"stopReason\":\"tool_use\",\"usage\":{\"inputTokens\":10,\"outputTokens\":3,\"totalTokens\":13,"
                    "\"cacheReadInputTokens\":4},\"metrics\":{\"latencyMs\":5}}";
    char err[128];
    char *a = sl_converse_response(b, strlen(b), "meta.llama", err, sizeof err);
    assert_non_null(a);
    assert_json(a, "{\"id\":\"msg_bdrk_converse\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"meta.llama\","
                   "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hmm\",\"signature\":\"s\"},"
                   "{\"type\":\"text\",\"text\":\"Hi\"},{\"type\":\"tool_use\",\"id\":\"t9\",\"name\":\"get\","
                   "\"input\":{\"q\":2}}],\"stop_reason\":\"tool_use\",\"stop_sequence\":null,"
                   "\"usage\":{\"input_tokens\":10,\"output_tokens\":3,\"cache_read_input_tokens\":4}}");
    free(a);
    const char *g = "{\"output\":{\"message\":{\"content\":[]}},\"stopReason\":\"guardrail_intervened\"}";
    a = sl_converse_response(g, strlen(g), "m", err, sizeof err);
    assert_non_null(strstr(a, "\"stop_reason\":\"refusal\""));
    free(a);
    assert_null(sl_converse_response("{\"message\":\"no\"}", 16, "m", err, sizeof err));
    assert_null(sl_converse_response("not json", 8, "m", err, sizeof err));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_response),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
