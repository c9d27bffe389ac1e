/*
 * Tests for runtime/translate's request, response and error translation,
 * cases the golden fixtures (test_translate.c) do not pin down: bad
 * requests, same-protocol requests, defaults and limits, tool_choice,
 * tools round-tripping, garbage responses, error status mapping, tools a
 * protocol cannot carry, and the token estimate.
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
    return cmocka_run_group_tests_name("translate_request", fixed, NULL, NULL);
}
