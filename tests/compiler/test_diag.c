/*
 * Diagnostic output: exact format, source order, caret alignment with tabs
 * and multi-byte characters, redaction of secrets, the summary line.
 */
#include "helpers.h"

static char *render(slc_diags *d)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    slc_diags_print(d, f);
    fclose(f);
    return buf;
}

static void json_lines(void **state)
{
    const char *src = "a: 1\nbb: 2\n";
    slc_diags *d = slc_diags_new("dir/x \"1\".yaml", src, strlen(src));
    slc_pos p2 = {2, 2}, whole = {0, 0};
    slc_warning(d, p2, "tab\there \\ \"q\" caf\xC3\xA9 bad\xFF");
    slc_error(d, whole, "empty spec");
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    slc_diags_print_json(d, f);
    fclose(f);
    assert_string_equal(buf,
        "{\"file\":\"dir/x \\\"1\\\".yaml\",\"line\":0,\"column\":0,\"severity\":\"error\","
        "\"message\":\"empty spec\"}\n"
        "{\"file\":\"dir/x \\\"1\\\".yaml\",\"line\":2,\"column\":2,\"severity\":\"warning\","
        "\"message\":\"tab\\there \\\\ \\\"q\\\" caf\xC3\xA9 bad\\ufffd\"}\n");
    free(buf);
    slc_diags_free(d);
}

static void format_and_order(void **state)
{
    const char *src = "a: 1\nbb: 2\n";
    slc_diags *d = slc_diags_new("x.yaml", src, strlen(src));
    slc_pos p2 = {2, 2}, p1 = {1, 4};
    slc_warning(d, p2, "second %d", 2);
    slc_error(d, p1, "first");
    slc_note(d, p1, "about first");
    assert_int_equal(slc_diags_errors(d), 1);
    assert_int_equal(slc_diags_warnings(d), 1);
    char *out = render(d);
    assert_string_equal(out, "x.yaml:1:4: error: first\n"
                             "a: 1\n"
                             "   ^\n"
                             "x.yaml:1:4: note: about first\n"
                             "a: 1\n"
                             "   ^\n"
                             "x.yaml:2:2: warning: second 2\n"
                             "bb: 2\n"
                             " ^\n");
    free(out);
    slc_diags_free(d);
}

static void note_follows_its_parent(void **state)
{
    const char *src = "a\nb\nc\n";
    slc_diags *d = slc_diags_new("x.yaml", src, strlen(src));
    slc_pos p3 = {3, 1}, p1 = {1, 1}, p2 = {2, 1};
    slc_error(d, p3, "on c");
    slc_note(d, p1, "points at a");
    slc_error(d, p2, "on b");
    slc_severity sev;
    assert_string_equal(slc_diags_message(d, 0, &sev, NULL), "on b");
    assert_string_equal(slc_diags_message(d, 1, &sev, NULL), "on c");
    assert_string_equal(slc_diags_message(d, 2, &sev, NULL), "points at a");
    assert_int_equal(sev, SLC_NOTE);
    slc_diags_free(d);
}

static void caret_keeps_tabs_and_counts_characters(void **state)
{
    const char *src = "\tk: \xc3\xa9t\xc3\xa9 x\n";
    slc_diags *d = slc_diags_new("t.yaml", src, strlen(src));
    slc_pos p = {1, 9};
    slc_error(d, p, "here");
    char *out = render(d);
    assert_string_equal(out, "t.yaml:1:9: error: here\n"
                             "\tk: \xc3\xa9t\xc3\xa9 x\n"
                             "\t       ^\n");
    free(out);
    slc_diags_free(d);
}

static void redaction(void **state)
{
    const char *src = "key: { api_key: sk-secret, x: 1 }\n";
    slc_diags *d = slc_diags_new("s.yaml", src, strlen(src));
    slc_pos start = {1, 17}, end = {1, 26};
    slc_error_redacted(d, start, end, "no secrets");
    char *out = render(d);
    assert_null(strstr(out, "sk-secret"));
    assert_non_null(strstr(out, "key: { api_key: *********, x: 1 }\n"));
    free(out);
    slc_diags_free(d);
}

static void whole_file_and_missing_line(void **state)
{
    slc_diags *d = slc_diags_new("e.yaml", "", 0);
    slc_pos whole = {0, 0}, beyond = {5, 1};
    slc_error(d, whole, "empty spec");
    slc_error(d, beyond, "past the end");
    char *out = render(d);
    assert_string_equal(out, "e.yaml: error: empty spec\ne.yaml:5:1: error: past the end\n");
    free(out);
    slc_diags_free(d);
}

static void summary(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    slc_diags_summary(f, 0, 0);
    slc_diags_summary(f, 2, 1);
    slc_diags_summary(f, 1, 0);
    slc_diags_summary(f, 0, 3);
    fclose(f);
    assert_string_equal(buf, "2 errors, 1 warning generated.\n"
                             "1 error generated.\n"
                             "3 warnings generated.\n");
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(format_and_order), cmocka_unit_test(json_lines),
        cmocka_unit_test(note_follows_its_parent),
        cmocka_unit_test(caret_keeps_tabs_and_counts_characters),
        cmocka_unit_test(redaction),
        cmocka_unit_test(whole_file_and_missing_line),
        cmocka_unit_test(summary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
