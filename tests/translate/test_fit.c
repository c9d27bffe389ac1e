/*
 * Tests for runtime/translate/fit.c: golden fixtures under fixtures/fit/
 * (<name>.in.json holds the upstream protocol, the target's catalog
 * capabilities, output limit and quirks, and the body; <name>.expected.json
 * the body the provider must get), plus what a request needs (tools,
 * images) in every client protocol. SLUICE_TRANSLATE_REGEN=1 rewrites the
 * expected files (review the diff).
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

#include "table.h"
#include "translate/fit.h"

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "fixtures"
#endif

static uint32_t bits(const json_t *list, int quirks)
{
    static const struct {
        const char *name;
        uint32_t bit;
    } caps[] = {{"known", SL_CAP_KNOWN},
                {"tools", SL_CAP_TOOLS},
                {"vision", SL_CAP_VISION},
                {"reasoning", SL_CAP_REASONING},
                {"caching", SL_CAP_CACHING},
                {"max_completion", SL_CAP_MAX_COMPLETION},
                {"max_tokens", SL_CAP_MAX_TOKENS},
                {"no_temperature", SL_CAP_NO_TEMPERATURE},
                {"minimal", SL_CAP_EFFORT_MINIMAL},
                {"low", SL_CAP_EFFORT_LOW},
                {"medium", SL_CAP_EFFORT_MEDIUM},
                {"high", SL_CAP_EFFORT_HIGH},
                {"budget", SL_CAP_EFFORT_BUDGET}},
      qk[] = {{"no_stream_options", SL_QUIRK_NO_STREAM_OPTIONS}};
    uint32_t out = 0;
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v) {
        int found = 0;
        size_t n = quirks ? 1 : sizeof caps / sizeof caps[0];
        for (size_t k = 0; k < n; k++)
            if (!strcmp(json_string_value(v), quirks ? qk[k].name : caps[k].name)) {
                out |= quirks ? qk[k].bit : caps[k].bit;
                found = 1;
            }
        if (!found)
            fail_msg("unknown %s '%s'", quirks ? "quirk" : "capability", json_string_value(v));
    }
    return out;
}

static sl_proto proto_of(const char *s)
{
    return !strcmp(s, "anthropic")   ? SL_PROTO_ANTHROPIC
           : !strcmp(s, "gemini")    ? SL_PROTO_GEMINI
           : !strcmp(s, "responses") ? SL_PROTO_RESPONSES
                                     : SL_PROTO_OPENAI;
}

static void fixtures(void **state)
{
    (void)state;
    DIR *d = opendir(FIXTURE_DIR "/fit");
    assert_non_null(d);
    int regen = getenv("SLUICE_TRANSLATE_REGEN") != NULL, count = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (n < 9 || strcmp(e->d_name + n - 8, ".in.json") != 0)
            continue;
        char in[1024], exp[1024];
        snprintf(in, sizeof in, "%s/fit/%s", FIXTURE_DIR, e->d_name);
        snprintf(exp, sizeof exp, "%s/fit/%.*s.expected.json", FIXTURE_DIR, (int)(n - 8), e->d_name);
        json_error_t err;
        json_t *fx = json_load_file(in, 0, &err);
        if (!fx)
            fail_msg("%s: %s", in, err.text);
        json_t *body = json_object_get(fx, "body");
        sl_fit_request(proto_of(json_string_value(json_object_get(fx, "up"))), body,
                       bits(json_object_get(fx, "caps"), 0),
                       (uint32_t)json_integer_value(json_object_get(fx, "max_output")),
                       bits(json_object_get(fx, "quirks"), 1));
        if (regen) {
            json_dump_file(body, exp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        } else {
            json_t *want = json_load_file(exp, 0, &err);
            if (!want)
                fail_msg("%s: %s", exp, err.text);
            if (!json_equal(body, want)) {
                char *got = json_dumps(body, JSON_INDENT(2) | JSON_SORT_KEYS);
                fail_msg("fixture %s: got\n%s", e->d_name, got);
            }
            json_decref(want);
        }
        json_decref(fx);
        count++;
    }
    closedir(d);
    assert_true(count >= 10);
}

static uint32_t needs(sl_proto p, const char *js)
{
    json_t *j = json_loads(js, 0, NULL);
    assert_non_null(j);
    uint32_t n = sl_fit_needs(p, j);
    json_decref(j);
    return n;
}

/* Tools and images are found in every client protocol's shape, and a
 * request without them needs nothing. */
static void request_needs(void **state)
{
    (void)state;
    assert_int_equal(needs(SL_PROTO_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"tools\":[]}"), 0);
    assert_int_equal(needs(SL_PROTO_OPENAI, "{\"messages\":[],\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}]}"),
                     SL_CAP_TOOLS);
    assert_int_equal(needs(SL_PROTO_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"image_url\","
                                            "\"image_url\":{\"url\":\"data:image/png;base64,AA\"}}]}]}"),
                     SL_CAP_VISION);
    assert_int_equal(needs(SL_PROTO_ANTHROPIC, "{\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"tool_result\","
                                               "\"tool_use_id\":\"t\",\"content\":[{\"type\":\"image\",\"source\":{}}]}]}],"
                                               "\"tools\":[{\"name\":\"x\",\"input_schema\":{}}]}"),
                     SL_CAP_TOOLS | SL_CAP_VISION);
    assert_int_equal(needs(SL_PROTO_RESPONSES, "{\"input\":[{\"role\":\"user\",\"content\":[{\"type\":\"input_image\","
                                               "\"image_url\":\"https://x/y.png\"}]}]}"),
                     SL_CAP_VISION);
    assert_int_equal(needs(SL_PROTO_GEMINI, "{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":\"image/jpeg\","
                                            "\"data\":\"AA\"}}]}],\"tools\":[{\"functionDeclarations\":[{\"name\":\"f\"}]}]}"),
                     SL_CAP_TOOLS | SL_CAP_VISION);
    /* A PDF is not an image; Gemini's built-in tools declare no function. */
    assert_int_equal(needs(SL_PROTO_GEMINI, "{\"contents\":[{\"parts\":[{\"inlineData\":{\"mimeType\":\"application/pdf\","
                                            "\"data\":\"AA\"}}]}],\"tools\":[{\"googleSearch\":{}}]}"),
                     0);
    /* The word "image" in text is not an image. */
    assert_int_equal(needs(SL_PROTO_OPENAI, "{\"messages\":[{\"role\":\"user\",\"content\":\"type image\"}]}"), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(fixtures), cmocka_unit_test(request_needs)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
