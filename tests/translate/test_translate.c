/*
 * Tests for runtime/translate: the golden fixtures under fixtures/ (every
 * direction between the three protocols, requests, responses, streams and
 * errors; streams fed whole and one byte at a time), plus targeted cases
 * for what breaks clients silently: Anthropic block indices and stops,
 * truncated upstream streams, usage accounting, pass-through. This file
 * runs the fixtures; test_translate_stream.c and test_translate_request.c
 * hold the targeted cases, translate_check.c the shared helpers.
 *
 * Fixture layout: fixtures/<from>-to-<to>/<kind>_<name>.in.json and
 * .expected.json, where <from> -> <to> is the direction the data travels:
 * for request_* fixtures the client's protocol to the upstream's, for
 * response_*, stream_* and error_* the upstream's to the client's.
 * SLUICE_TRANSLATE_REGEN=1 rewrites the expected files (review the diff).
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

#ifndef FIXTURE_DIR
#define FIXTURE_DIR "fixtures"
#endif

/* ---- fixture runner ------------------------------------------------------ */

typedef struct fixture {
    char dir[64];
    char name[128];
    char path_in[512];
    char path_expected[512];
} fixture;

static json_t *run_fixture(const fixture *fx, json_t *in, const char *in_text, size_t in_len)
{
    const char *sep = strstr(fx->dir, "-to-");
    assert_non_null(sep);
    sl_proto from = proto_of(fx->dir, (size_t)(sep - fx->dir));
    sl_proto to = proto_of(sep + 4, strlen(sep + 4));
    char err[256] = "";
    if (!strncmp(fx->name, "request_", 8)) {
        int stream = json_is_true(json_object_get(in, "stream")) || strstr(fx->name, "stream") != NULL;
        char *out = sl_translate_request(from, to, in, UPSTREAM_MODEL, stream, err, sizeof err);
        if (!out)
            return json_pack("{s:s}", "error", err);
        json_t *o = parse_text(out);
        free(out);
        return o;
    }
    if (!strncmp(fx->name, "response_", 9)) {
        char *out = sl_translate_response(from, to, in_text, in_len, CLIENT_MODEL, err, sizeof err);
        if (!out)
            return json_pack("{s:s}", "error", err);
        json_t *o = parse_text(out);
        free(out);
        sl_usage_counts u;
        if (sl_translate_usage(from, in_text, in_len, &u) == 0)
            o = json_pack("{s:o,s:o}", "body", o, "usage", usage_json(&u));
        else
            o = json_pack("{s:o}", "body", o);
        return o;
    }
    if (!strncmp(fx->name, "error_", 6)) {
        char *body = json_dumps(json_object_get(in, "body"), JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *raw = json_object_get(in, "raw");
        const char *b = json_is_string(raw) ? json_string_value(raw) : body;
        int st = 0;
        char *out = sl_translate_error(from, to, (int)json_integer_value(json_object_get(in, "status")), b,
                                       strlen(b), &st);
        free(body);
        assert_non_null(out);
        json_t *o = json_pack("{s:i,s:o}", "status", st, "body", parse_text(out));
        free(out);
        return o;
    }
    if (!strncmp(fx->name, "stream_", 7)) {
        size_t len;
        char *sse = sse_of(json_object_get(in, "events"), json_is_true(json_object_get(in, "crlf")), &len);
        json_t *whole = run_stream(from, to, sse, len, 0);
        json_t *bytes = run_stream(from, to, sse, len, 1);
        json_t *sevens = run_stream(from, to, sse, len, 7);
        assert_json_equal(bytes, whole, "stream fed one byte at a time vs whole");
        assert_json_equal(sevens, whole, "stream fed 7 bytes at a time vs whole");
        int complete = json_integer_value(json_object_get(whole, "finish")) == 0;
        check_client_stream(to, json_object_get(whole, "events"), complete);
        free(sse);
        json_decref(bytes);
        json_decref(sevens);
        return whole;
    }
    fail_msg("fixture %s/%s: unknown kind", fx->dir, fx->name);
    return NULL;
}

static void test_fixture(void **state)
{
    const fixture *fx = *state;
    size_t in_len;
    char *in_text = read_file(fx->path_in, &in_len);
    assert_non_null(in_text);
    json_error_t jerr;
    json_t *in = json_loads(in_text, 0, &jerr);
    if (!in)
        fail_msg("%s: %s (line %d)", fx->path_in, jerr.text, jerr.line);
    json_t *got = run_fixture(fx, in, in_text, in_len);
    if (getenv("SLUICE_TRANSLATE_REGEN")) {
        FILE *f = fopen(fx->path_expected, "w");
        assert_non_null(f);
        char *s = json_dumps(got, JSON_INDENT(2));
        fprintf(f, "%s\n", s);
        free(s);
        fclose(f);
    } else {
        char *want_text = read_file(fx->path_expected, NULL);
        if (!want_text)
            fail_msg("missing %s (run with SLUICE_TRANSLATE_REGEN=1 and review)", fx->path_expected);
        json_t *want = parse_text(want_text);
        assert_json_equal(got, want, fx->path_expected);
        json_decref(want);
        free(want_text);
    }
    json_decref(got);
    json_decref(in);
    free(in_text);
}

static int fixture_cmp(const void *a, const void *b)
{
    const fixture *x = a, *y = b;
    int c = strcmp(x->dir, y->dir);
    return c ? c : strcmp(x->name, y->name);
}

static size_t list_fixtures(fixture **out)
{
    size_t n = 0, cap = 64;
    fixture *fx = calloc(cap, sizeof *fx);
    DIR *top = opendir(FIXTURE_DIR);
    if (!top)
        return 0;
    struct dirent *d;
    while ((d = readdir(top))) {
        if (d->d_name[0] == '.' || !strstr(d->d_name, "-to-"))
            continue;
        char sub[400];
        snprintf(sub, sizeof sub, "%.300s/%.60s", FIXTURE_DIR, d->d_name);
        DIR *dd = opendir(sub);
        if (!dd)
            continue;
        struct dirent *f;
        while ((f = readdir(dd))) {
            size_t l = strlen(f->d_name);
            if (l < 9 || strcmp(f->d_name + l - 8, ".in.json") != 0)
                continue;
            if (n == cap) {
                cap *= 2;
                fx = realloc(fx, cap * sizeof *fx);
            }
            fixture *x = &fx[n++];
            memset(x, 0, sizeof *x);
            snprintf(x->dir, sizeof x->dir, "%.60s", d->d_name);
            snprintf(x->name, sizeof x->name, "%.*s", (int)(l - 8 > 120 ? 120 : l - 8), f->d_name);
            snprintf(x->path_in, sizeof x->path_in, "%.380s/%.120s", sub, f->d_name);
            snprintf(x->path_expected, sizeof x->path_expected, "%.360s/%.120s.expected.json", sub, x->name);
        }
        closedir(dd);
    }
    closedir(top);
    qsort(fx, n, sizeof *fx, fixture_cmp);
    *out = fx;
    return n;
}

int main(void)
{
    fixture *fx = NULL;
    size_t n = list_fixtures(&fx);
    if (n == 0) {
        fprintf(stderr, "no fixtures found under %s\n", FIXTURE_DIR);
        return 1;
    }
    struct CMUnitTest *tests = calloc(n, sizeof *tests);
    char (*names)[200] = calloc(n, sizeof *names);
    for (size_t i = 0; i < n; i++) {
        snprintf(names[i], sizeof names[i], "%s/%s", fx[i].dir, fx[i].name);
        tests[i].name = names[i];
        tests[i].test_func = test_fixture;
        tests[i].initial_state = &fx[i];
    }
    int failed = _cmocka_run_group_tests("translate_fixtures", tests, n, NULL, NULL);
    free(tests);
    free(names);
    free(fx);
    return failed;
}
