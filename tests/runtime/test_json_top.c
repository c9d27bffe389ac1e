/*
 * Tests for the validating top-level scan (runtime/json/json_top.c). It
 * may say "unsure" about anything, but when it says OK jansson must accept
 * the same bytes (with JSON_REJECT_DUPLICATES) and the member spans must
 * hold jansson's values: checked on hand-picked documents, on every
 * single-byte change of a few request bodies, and on the fuzz seed
 * corpora in the tree (a differential test against jansson). It must also
 * say OK for the ordinary requests the fast path exists for.
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

#include "json/json_top.h"

static const char *const names[] = {"model", "stream", "max_tokens", "messages"};
enum { N = sizeof names / sizeof *names };

/* Scans p[0..n) from an exact-size copy; checks the scan against jansson
 * and returns the scan's answer. */
static int differential(const char *data, size_t n, sl_json_span *m)
{
    char *p = malloc(n ? n : 1);
    assert_non_null(p);
    memcpy(p, data, n);
    sl_json_top_result r = sl_json_top_scan(p, n, names, N, m);
    if (r == SL_JSON_TOP_OK) {
        json_error_t e;
        json_t *doc = json_loadb(p, n, JSON_REJECT_DUPLICATES, &e);
        if (!json_is_object(doc))
            fail_msg("scan said OK, jansson says %s: %.*s", e.text, (int)(n > 200 ? 200 : n), p);
        for (size_t i = 0; i < N; i++) {
            json_t *want = json_object_get(doc, names[i]);
            if (!m[i].end) {
                assert_null(want);
                continue;
            }
            assert_true(m[i].start < m[i].end && m[i].end <= n);
            json_t *got = json_loadb(p + m[i].start, m[i].end - m[i].start, JSON_DECODE_ANY, NULL);
            assert_non_null(got);
            assert_true(json_equal(got, want));
            json_decref(got);
        }
        json_decref(doc);
    }
    free(p);
    return r;
}

static int scan_str(const char *doc, sl_json_span *m) { return differential(doc, strlen(doc), m); }

static void test_ordinary_requests_are_ok(void **state)
{
    (void)state;
    sl_json_span m[N];
    const char *chat = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\",\"content\":\"Say h\\u00e9llo \\\"twice\\\"\\n\"}],"
                       "\"max_tokens\":64,\"temperature\":0.7,\"top_p\":1e-1,\"stop\":null,\"n\":-0}";
    assert_int_equal(scan_str(chat, m), SL_JSON_TOP_OK);
    const char *s;
    size_t l;
    assert_int_equal(sl_json_span_plain_string(chat, m[0], &s, &l), 0);
    assert_int_equal(l, 6);
    assert_memory_equal(s, "gpt-4o", 6);
    assert_int_equal(m[1].end, 0); /* no stream */
    assert_memory_equal(chat + m[2].start, "64", 2);
    assert_int_equal(m[2].end - m[2].start, 2);
    const char *msgs = " {\n \"stream\" : true , \"model\":\"claude ✓\", \"max_tokens\": 1024,"
                       "\"messages\":[{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"é\"}]}]}\r\n";
    assert_int_equal(scan_str(msgs, m), SL_JSON_TOP_OK);
    assert_true(sl_json_span_is_true(msgs, m[1]));
    assert_int_equal(sl_json_span_plain_string(msgs, m[2], &s, &l), -1); /* a number */
    assert_int_equal(scan_str("{}", m), SL_JSON_TOP_OK);
    assert_int_equal(m[0].end, 0);
    /* nested members of the same name are not top-level ones */
    assert_int_equal(scan_str("{\"a\":{\"model\":\"x\"},\"b\":[\"model\"]}", m), SL_JSON_TOP_OK);
    assert_int_equal(m[0].end, 0);
}

static void test_unsure(void **state)
{
    (void)state;
    sl_json_span m[N];
    static const char *const docs[] = {
        "", " ", "[]", "\"x\"", "1", "{", "{\"model\"}", "{\"model\":}", "{\"model\":\"x\",}", "{,}",
        "{\"a\":1}x", "{\"a\":1}{}", "{\"a\":01}", "{\"a\":1.}", "{\"a\":.5}", "{\"a\":1e}", "{\"a\":+1}",
        "{\"a\":tru}", "{\"a\":nul}", "{\"a\":True}", "{\"a\":\"\\x\"}", "{\"a\":\"\\u12\"}",
        "{\"a\":\"\\u0000\"}", "{\"a\":\"\\ud83d\\ude00\"}", "{\"a\":\"\\ud83d\"}", "{\"a\":\"\x01\"}",
        "{\"a\":\"\xc3\"}", "{\"a\":\"\xed\xa0\x80\"}", "{\"a\":\"\xc0\xaf\"}", "{\"a\":\"\xf4\x90\x80\x80\"}",
        "{\"model\":\"a\",\"model\":\"b\"}", "{\"a\":{\"x\":1,\"x\":2}}", "{\"mod\\u0065l\":\"x\"}",
        "{\"a\":1234567890123456789}", "{\"a\":1e123}", "{\"a\":1.00000000000000000000000001}",
        "{\"a\":\"unterminated}", "{\"a\":[1,2}", "{\"a\":[1,]}", "{'a':1}", "{\"a\" 1}",
    };
    for (size_t i = 0; i < sizeof docs / sizeof *docs; i++)
        if (scan_str(docs[i], m) != SL_JSON_TOP_UNSURE)
            fail_msg("expected unsure: %s", docs[i]);
    /* deeper than the scan goes */
    char deep[300];
    size_t k = 0;
    deep[k++] = '{';
    deep[k++] = '"';
    deep[k++] = 'a';
    deep[k++] = '"';
    deep[k++] = ':';
    for (int i = 0; i < 100; i++)
        deep[k++] = '[';
    for (int i = 0; i < 100; i++)
        deep[k++] = ']';
    deep[k++] = '}';
    assert_int_equal(differential(deep, k, m), SL_JSON_TOP_UNSURE);
}

/* Every position of a few bodies replaced by each of a set of bytes, and
 * every prefix: the scan never says OK where jansson refuses. */
static void test_single_byte_mutations(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{\"model\":\"m\",\"stream\":true,\"max_tokens\":12,\"messages\":[{\"role\":\"user\",\"content\":\"h\\u00e9 \\\"q\\\" ✓\"}],"
        "\"t\":-1.5e+2,\"n\":null,\"f\":false,\"o\":{\"k\":[0,{}]}}",
    };
    static const char bytes[] = "{}[]\":,\\ 0-1.eE+tfnu\x01\x7f\x80\xc3\xed";
    sl_json_span m[N];
    for (size_t b = 0; b < sizeof bodies / sizeof *bodies; b++) {
        size_t n = strlen(bodies[b]);
        char *buf = malloc(n);
        assert_non_null(buf);
        for (size_t i = 0; i < n; i++) {
            differential(bodies[b], i, m); /* prefix */
            for (size_t j = 0; j < sizeof bytes - 1; j++) {
                memcpy(buf, bodies[b], n);
                buf[i] = bytes[j];
                differential(buf, n, m);
            }
        }
        free(buf);
    }
}

/* The fuzz seed corpora that hold JSON bodies. */
static void test_fuzz_corpora(void **state)
{
    (void)state;
    static const char *const dirs[] = {"json_top/seeds", "json_scan/seeds", "translate_request/seeds",
                                       "cache_key/seeds", "admit/seeds"};
    sl_json_span m[N];
    int files = 0, ok = 0;
    for (size_t d = 0; d < sizeof dirs / sizeof *dirs; d++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", FUZZ_DIR, dirs[d]);
        DIR *dir = opendir(path);
        if (!dir)
            continue;
        struct dirent *e;
        while ((e = readdir(dir))) {
            if (e->d_name[0] == '.')
                continue;
            char file[1400];
            snprintf(file, sizeof file, "%s/%s", path, e->d_name);
            FILE *f = fopen(file, "rb");
            if (!f)
                continue;
            static char data[1 << 20];
            size_t n = fread(data, 1, sizeof data, f);
            fclose(f);
            files++;
            ok += differential(data, n, m) == SL_JSON_TOP_OK;
        }
        closedir(dir);
    }
    assert_true(files > 10);
    assert_true(ok > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ordinary_requests_are_ok),
        cmocka_unit_test(test_unsure),
        cmocka_unit_test(test_single_byte_mutations),
        cmocka_unit_test(test_fuzz_corpora),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
