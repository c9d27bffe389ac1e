/*
 * Tests for admission (runtime/proxy/admit.c): the output limit read from
 * every surface's spellings, refused when it is not a whole number in
 * range or two spellings disagree, injected (in the surface's own field)
 * only when asked; the worst case raised for thinking; which keys pay in
 * USD; and worst-case pricing over a plan from the real planner, against
 * the prices and budgets of tests/runtime/admit.yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "govern/govern.h"
#include "proxy/admit.h"
#include "route/route.h"
#include "table.h"

static const sl_table *T = &sl_spec;
static char err[160];

static json_t *parse(const char *s)
{
    json_error_t e;
    json_t *j = json_loads(s, 0, &e);
    if (!j)
        fail_msg("bad fixture %s: %s", s, e.text);
    return j;
}

/* Reads the limit of `body`; returns sl_admit_output_limit's result. */
static int limit_of(const char *body, sl_op op, sl_proto surface, int inject, sl_limit *l)
{
    json_t *j = parse(body);
    err[0] = '\0';
    int rc = sl_admit_output_limit(j, op, surface, inject, l, err, sizeof err);
    json_decref(j);
    return rc;
}

static int64_t accepted(const char *body, sl_op op, sl_proto surface)
{
    sl_limit l;
    if (limit_of(body, op, surface, 0, &l) != 0)
        fail_msg("%s refused: %s", body, err);
    assert_true(l.given);
    assert_false(l.injected);
    return l.output;
}

static void refused(const char *body, sl_op op, sl_proto surface, const char *why)
{
    sl_limit l;
    if (limit_of(body, op, surface, 1, &l) != -1)
        fail_msg("%s accepted as %lld", body, (long long)l.output);
    if (!strstr(err, why))
        fail_msg("%s: error \"%s\" lacks \"%s\"", body, err, why);
}

/* ---- output limits --------------------------------------------------------- */

static void test_openai_spellings(void **state)
{
    (void)state;
    assert_int_equal(accepted("{\"max_tokens\":100}", SL_OP_CHAT, SL_PROTO_OPENAI), 100);
    assert_int_equal(accepted("{\"max_completion_tokens\":200}", SL_OP_CHAT, SL_PROTO_OPENAI), 200);
    assert_int_equal(accepted("{\"max_tokens\":300,\"max_completion_tokens\":300}", SL_OP_CHAT, SL_PROTO_OPENAI), 300);
    assert_int_equal(accepted("{\"max_tokens\":null,\"max_completion_tokens\":7}", SL_OP_CHAT, SL_PROTO_OPENAI), 7);
    assert_int_equal(accepted("{\"max_tokens\":1}", SL_OP_CHAT, SL_PROTO_OPENAI), 1);
    assert_int_equal(accepted("{\"max_tokens\":10000000}", SL_OP_CHAT, SL_PROTO_OPENAI), SL_MAX_OUTPUT_TOKENS);
    refused("{\"max_tokens\":300,\"max_completion_tokens\":301}", SL_OP_CHAT, SL_PROTO_OPENAI, "disagree");
    /* A bad value in either spelling is refused even when the other is fine. */
    refused("{\"max_tokens\":0,\"max_completion_tokens\":5}", SL_OP_CHAT, SL_PROTO_OPENAI, "'max_tokens'");
    refused("{\"max_tokens\":5,\"max_completion_tokens\":\"5\"}", SL_OP_CHAT, SL_PROTO_OPENAI,
            "'max_completion_tokens'");
}

static void test_refused_values(void **state)
{
    (void)state;
    static const char *const bad[] = {"0", "-1", "-9223372036854775807", "9223371936854775808",
                                      "10000001", "1.5", "100.0", "1e3", "\"100\"", "true", "[]", "{}"};
    char body[96];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(body, sizeof body, "{\"max_tokens\":%s}", bad[i]);
        refused(body, SL_OP_CHAT, SL_PROTO_OPENAI, "'max_tokens' must be a whole number between 1 and 10000000");
        refused(body, SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "'max_tokens'");
        snprintf(body, sizeof body, "{\"max_completion_tokens\":%s}", bad[i]);
        refused(body, SL_OP_CHAT, SL_PROTO_OPENAI, "'max_completion_tokens'");
        snprintf(body, sizeof body, "{\"generationConfig\":{\"maxOutputTokens\":%s}}", bad[i]);
        refused(body, SL_OP_GENERATE, SL_PROTO_GEMINI, "'maxOutputTokens'");
        snprintf(body, sizeof body, "{\"generation_config\":{\"max_output_tokens\":%s}}", bad[i]);
        refused(body, SL_OP_GENERATE, SL_PROTO_GEMINI, "'max_output_tokens'");
    }
}

static void test_anthropic_and_gemini_spellings(void **state)
{
    (void)state;
    assert_int_equal(accepted("{\"max_tokens\":1024}", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC), 1024);
    /* OpenAI's other spelling means nothing to Anthropic. */
    sl_limit l;
    assert_int_equal(limit_of("{\"max_completion_tokens\":5}", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, 0, &l), 0);
    assert_false(l.given);
    assert_int_equal(l.output, SL_DEFAULT_OUTPUT_TOKENS);

    assert_int_equal(accepted("{\"generationConfig\":{\"maxOutputTokens\":64}}", SL_OP_GENERATE, SL_PROTO_GEMINI), 64);
    assert_int_equal(accepted("{\"generationConfig\":{\"max_output_tokens\":65}}", SL_OP_GENERATE, SL_PROTO_GEMINI), 65);
    assert_int_equal(accepted("{\"generation_config\":{\"maxOutputTokens\":66}}", SL_OP_GENERATE, SL_PROTO_GEMINI), 66);
    assert_int_equal(accepted("{\"generation_config\":{\"max_output_tokens\":67,\"maxOutputTokens\":67}}",
                              SL_OP_GENERATE, SL_PROTO_GEMINI), 67);
    refused("{\"generationConfig\":{\"maxOutputTokens\":8,\"max_output_tokens\":9}}", SL_OP_GENERATE,
            SL_PROTO_GEMINI, "disagree");
    /* A generation config that is not an object is the client's mistake,
     * and said so (it was once reported as "out of memory"). */
    refused("{\"generationConfig\":5}", SL_OP_GENERATE, SL_PROTO_GEMINI, "'generationConfig' must be an object");
    refused("{\"generation_config\":[1]}", SL_OP_GENERATE, SL_PROTO_GEMINI, "'generation_config' must be an object");
    /* null is absent; the injected default takes its place. */
    json_t *j = parse("{\"generationConfig\":null}");
    assert_int_equal(sl_admit_output_limit(j, SL_OP_GENERATE, SL_PROTO_GEMINI, 1, &l, err, sizeof err), 0);
    assert_true(l.injected);
    json_t *want = parse("{\"generationConfig\":{\"maxOutputTokens\":4096}}");
    assert_true(json_equal(j, want));
    json_decref(want);
    json_decref(j);
    /* Only inside the generation config. */
    assert_int_equal(limit_of("{\"maxOutputTokens\":5,\"max_tokens\":5}", SL_OP_GENERATE, SL_PROTO_GEMINI, 0, &l), 0);
    assert_false(l.given);
}

static void test_default_and_injection(void **state)
{
    (void)state;
    static const struct {
        sl_op op;
        sl_proto surface;
        const char *body;
        const char *want; /* the request after injection */
    } cases[] = {
        {SL_OP_CHAT, SL_PROTO_OPENAI, "{\"model\":\"m\"}", "{\"model\": \"m\", \"max_completion_tokens\": 4096}"},
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "{\"model\":\"m\"}", "{\"model\": \"m\", \"max_tokens\": 4096}"},
        {SL_OP_RESPONSES, SL_PROTO_RESPONSES, "{\"model\":\"m\"}",
         "{\"model\": \"m\", \"max_output_tokens\": 4096}"},
        {SL_OP_GENERATE, SL_PROTO_GEMINI, "{\"contents\":[]}",
         "{\"contents\": [], \"generationConfig\": {\"maxOutputTokens\": 4096}}"},
        {SL_OP_GENERATE, SL_PROTO_GEMINI, "{\"generationConfig\":{\"temperature\":0}}",
         "{\"generationConfig\": {\"temperature\": 0, \"maxOutputTokens\": 4096}}"},
        {SL_OP_GENERATE, SL_PROTO_GEMINI, "{\"generation_config\":{\"temperature\":0}}",
         "{\"generation_config\": {\"temperature\": 0, \"maxOutputTokens\": 4096}}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        for (int inject = 0; inject <= 1; inject++) {
            json_t *j = parse(cases[i].body);
            sl_limit l;
            assert_int_equal(sl_admit_output_limit(j, cases[i].op, cases[i].surface, inject, &l, err, sizeof err), 0);
            assert_false(l.given);
            assert_int_equal(l.output, SL_DEFAULT_OUTPUT_TOKENS);
            assert_int_equal(l.worst, SL_DEFAULT_OUTPUT_TOKENS);
            assert_int_equal(l.injected, inject);
            json_t *want = parse(inject ? cases[i].want : cases[i].body);
            if (!json_equal(j, want)) {
                char *got = json_dumps(j, JSON_COMPACT);
                fail_msg("%s (inject %d) became %s", cases[i].body, inject, got);
            }
            json_decref(want);
            json_decref(j);
        }
    }
    /* A limit the client gave is never rewritten. */
    json_t *j = parse("{\"max_tokens\":50}");
    sl_limit l;
    assert_int_equal(sl_admit_output_limit(j, SL_OP_CHAT, SL_PROTO_OPENAI, 1, &l, err, sizeof err), 0);
    assert_false(l.injected);
    assert_int_equal(json_object_size(j), 1);
    json_decref(j);
}

static void test_thinking_raises_worst(void **state)
{
    (void)state;
    static const struct {
        sl_op op;
        sl_proto surface;
        const char *body;
        int64_t output, worst;
    } cases[] = {
        /* An Anthropic request's thinking goes to Anthropic as sent, and
         * the OpenAI and Gemini writers keep its max_tokens: no raise. */
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC,
         "{\"max_tokens\":1000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":8000}}", 1000, 1000},
        /* A limit above the budget already covers it. */
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC,
         "{\"max_tokens\":20000,\"thinking\":{\"type\":\"enabled\",\"budget_tokens\":8000}}", 20000, 20000},
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "{\"max_tokens\":10,\"thinking\":{\"budget_tokens\":-5}}", 10, 10},
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "{\"max_tokens\":10,\"thinking\":{\"budget_tokens\":99999999999}}", 10, 10},
        {SL_OP_CHAT, SL_PROTO_OPENAI, "{\"max_tokens\":1000,\"reasoning_effort\":\"high\"}", 1000, 20480},
        /* low = 2048 budget tokens, below the default limit: no raise. */
        {SL_OP_CHAT, SL_PROTO_OPENAI, "{\"reasoning_effort\":\"low\"}", 4096, 4096},
        {SL_OP_GENERATE, SL_PROTO_GEMINI,
         "{\"generationConfig\":{\"maxOutputTokens\":100,\"thinkingConfig\":{\"thinkingBudget\":24576}}}", 100, 28672},
        {SL_OP_GENERATE, SL_PROTO_GEMINI,
         "{\"generation_config\":{\"thinking_config\":{\"thinking_budget\":-1}}}", 4096, 12288},
        /* Responses: the limit is max_output_tokens, the effort in reasoning. */
        {SL_OP_RESPONSES, SL_PROTO_RESPONSES, "{\"max_output_tokens\":1000,\"reasoning\":{\"effort\":\"high\"}}",
         1000, 20480},
        {SL_OP_RESPONSES, SL_PROTO_RESPONSES, "{\"max_output_tokens\":300,\"max_tokens\":9}", 300, 300},
        /* No thinking: the worst case is the limit itself. */
        {SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "{\"max_tokens\":77}", 77, 77},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        sl_limit l;
        if (limit_of(cases[i].body, cases[i].op, cases[i].surface, 0, &l) != 0)
            fail_msg("%s refused: %s", cases[i].body, err);
        if (l.output != cases[i].output || l.worst != cases[i].worst)
            fail_msg("%s: output %lld worst %lld", cases[i].body, (long long)l.output, (long long)l.worst);
    }
}

/* The Responses surface reads max_output_tokens alone, and refuses it
 * on the same terms as the other surfaces' fields. */
static void test_responses_limit(void **state)
{
    (void)state;
    assert_int_equal(accepted("{\"max_output_tokens\":123}", SL_OP_RESPONSES, SL_PROTO_RESPONSES), 123);
    refused("{\"max_output_tokens\":0}", SL_OP_RESPONSES, SL_PROTO_RESPONSES, "max_output_tokens");
    refused("{\"max_output_tokens\":\"9\"}", SL_OP_RESPONSES, SL_PROTO_RESPONSES, "max_output_tokens");
    refused("{\"max_output_tokens\":99999999999}", SL_OP_RESPONSES, SL_PROTO_RESPONSES, "max_output_tokens");
}

static void test_nothing_generated(void **state)
{
    (void)state;
    static const char *const bodies[] = {"{\"max_tokens\":\"not even a number\"}", "{}",
                                         "{\"max_tokens\":5,\"thinking\":{\"budget_tokens\":9000}}"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        json_t *j = parse(bodies[i]);
        json_t *orig = json_deep_copy(j);
        sl_limit l;
        assert_int_equal(sl_admit_output_limit(j, SL_OP_COUNT_TOKENS, SL_PROTO_ANTHROPIC, 1, &l, err, sizeof err), 0);
        assert_int_equal(l.output + l.worst + l.given + l.injected, 0);
        assert_int_equal(sl_admit_output_limit(j, SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, 1, &l, err, sizeof err), 0);
        assert_int_equal(l.output + l.worst + l.given + l.injected, 0);
        assert_true(json_equal(j, orig));
        json_decref(orig);
        json_decref(j);
    }
}

/* ---- who pays in USD ---------------------------------------------------------- */

static int key_of(const char *name)
{
    for (uint32_t i = 0; i < T->key_count; i++)
        if (strcmp(T->keys[i].name, name) == 0)
            return (int)i;
    fail_msg("no key %s", name);
    return -1;
}

static void test_usd_budget(void **state)
{
    (void)state;
    assert_true(sl_gov_usd_budget_applies(T, key_of("own-usd")));
    assert_true(sl_gov_usd_budget_applies(T, key_of("team-usd")));
    assert_false(sl_gov_usd_budget_applies(T, key_of("tokens-only")));
    assert_false(sl_gov_usd_budget_applies(T, key_of("open")));
    assert_false(sl_gov_usd_budget_applies(T, -1)); /* an open gateway */
}

/* ---- worst-case pricing ----------------------------------------------------------- */

static size_t plan_for(const char *model, sl_attempt *plan)
{
    int e = sl_route_lookup(T, model, strlen(model));
    assert_true(e >= 0);
    sl_router *r = sl_router_new(T);
    assert_non_null(r);
    size_t n = sl_route_plan(r, (uint32_t)e, plan, SL_ROUTE_PLAN_MAX);
    sl_router_free(r);
    return n;
}

static const char *upstream(const sl_attempt *a)
{
    return T->targets[a->target].model;
}

static void test_price_is_max_over_plan(void **state)
{
    (void)state;
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    sl_usage_counts worst = {.input = 1000, .output = 4096};
    for (int usd = 0; usd <= 1; usd++) {
        size_t n = plan_for("smart", plan);
        assert_int_equal(n, 3);
        int unpriced;
        /* claude-sonnet-4-5: 1000 * 3 + 4096 * 15 = 64440 micro-USD, more
         * than gpt-4o (43460) or gpt-4o-mini (2608). */
        assert_int_equal(sl_admit_price_plan(T, plan, &n, "smart", &worst, usd, &unpriced), 64440);
        assert_int_equal(n, 3);
        assert_int_equal(unpriced, -1);
    }
    size_t n = plan_for("cheap", plan);
    int unpriced;
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "cheap", &worst, 1, &unpriced), 2608); /* 2607.6 */
}

static void test_unpriced_dropped_only_under_usd_budget(void **state)
{
    (void)state;
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    sl_usage_counts worst = {.input = 1000, .output = 4096};
    size_t n = plan_for("home", plan);
    assert_int_equal(n, 4);
    assert_string_equal(upstream(&plan[0]), "llama3.2");
    int unpriced;
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "home", &worst, 0, &unpriced), 64440);
    assert_int_equal(n, 4);
    assert_int_equal(unpriced, -1);

    uint32_t local = plan[0].target;
    sl_attempt rest[3] = {plan[1], plan[2], plan[3]};
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "home", &worst, 1, &unpriced), 64440);
    assert_int_equal(n, 3);
    assert_int_equal(unpriced, (int)local);
    assert_memory_equal(plan, rest, sizeof rest); /* the rest keep their order */

    /* A glob entry is priced by the name the client sent. */
    n = plan_for("claude-haiku-4-5", plan);
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "claude-haiku-4-5", &worst, 1, &unpriced), 21480);
    assert_int_equal(n, 1);
    n = plan_for("claude-unpriced-9", plan);
    uint32_t glob_target = plan[0].target;
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "claude-unpriced-9", &worst, 0, &unpriced), 0);
    assert_int_equal(n, 1);
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "claude-unpriced-9", &worst, 1, &unpriced), 0);
    assert_int_equal(n, 0); /* nothing left: the caller refuses, naming the target */
    assert_int_equal(unpriced, (int)glob_target);
}

static void test_price_saturates(void **state)
{
    (void)state;
    /* The largest limit a client may ask for at the largest price a spec
     * may write: about 10^19 micro-USD, past int64. It must saturate, not
     * wrap into a negative reservation (which the plan's maximum turned
     * into 0: free). */
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    sl_usage_counts worst = {.input = 1000, .output = SL_MAX_OUTPUT_TOKENS + 4096};
    size_t n = plan_for("absurd", plan);
    int unpriced;
    assert_int_equal(sl_admit_price_plan(T, plan, &n, "absurd", &worst, 1, &unpriced), INT64_MAX);
    assert_int_equal(n, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_openai_spellings),
        cmocka_unit_test(test_refused_values),
        cmocka_unit_test(test_anthropic_and_gemini_spellings),
        cmocka_unit_test(test_default_and_injection),
        cmocka_unit_test(test_thinking_raises_worst),
        cmocka_unit_test(test_responses_limit),
        cmocka_unit_test(test_nothing_generated),
        cmocka_unit_test(test_usd_budget),
        cmocka_unit_test(test_price_is_max_over_plan),
        cmocka_unit_test(test_unpriced_dropped_only_under_usd_budget),
        cmocka_unit_test(test_price_saturates),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
