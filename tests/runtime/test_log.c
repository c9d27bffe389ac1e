/*
 * Unit tests for sl_log_escape (runtime/core/log.c): client-supplied
 * fields in log lines cannot carry line breaks, field separators, quotes,
 * terminal controls or invalid UTF-8, and the output is always a bounded,
 * NUL-terminated string cut between whole escapes or characters.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/log.h"

static void check(const char *src, size_t len, const char *want)
{
    char out[256];
    size_t n = sl_log_escape(out, sizeof out, src, len);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
}

#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void test_plain_passes(void **state)
{
    (void)state;
    CHECK("claude-sonnet-4-5", "claude-sonnet-4-5");
    CHECK("openai/gpt-4o:latest=x", "openai/gpt-4o:latest=x");
    CHECK("caf\xc3\xa9 \xe6\x97\xa5", "caf\xc3\xa9\\x20\xe6\x97\xa5");
    CHECK("", "");
}

static void test_injection_escaped(void **state)
{
    (void)state;
    /* A forged second log line and a forged field. */
    CHECK("m\n2024-01-01T00:00:00Z error: x", "m\\x0a2024-01-01T00:00:00Z\\x20error:\\x20x");
    CHECK("m key=admin", "m\\x20key=admin");
    CHECK("a\rb\tc", "a\\x0db\\x09c");
    CHECK("\"q\"\\", "\\x22q\\x22\\x5c");
    CHECK("\x1b[31mred", "\\x1b[31mred");
    CHECK("\x7f", "\\x7f");
    check("a\0b", 3, "a\\x00b");
    /* C1 CSI (U+009B) as UTF-8. */
    CHECK("\xc2\x9b" "2J", "\\xc2\\x9b2J");
    /* U+00A0 is printable UTF-8 and passes. */
    CHECK("\xc2\xa0", "\xc2\xa0");
}

static void test_invalid_utf8_escaped(void **state)
{
    (void)state;
    CHECK("\xff", "\\xff");
    CHECK("\xc0\xaf", "\\xc0\\xaf");
    CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");
    CHECK("ab\xc3", "ab\\xc3");
    CHECK("\xe6\x97x", "\\xe6\\x97x");
}

static void test_truncation(void **state)
{
    (void)state;
    char out[8];
    memset(out, 'Z', sizeof out);
    /* "ab" + "\x0a" would need 2 + 4 + NUL = 7; "ab\x0ac" 8 bytes + NUL. */
    size_t n = sl_log_escape(out, sizeof out, "ab\ncd", 5);
    assert_string_equal(out, "ab\\x0ac");
    assert_int_equal(n, 7);
    /* An escape that does not fit is left out whole. */
    n = sl_log_escape(out, 6, "ab\ncd", 5);
    assert_string_equal(out, "ab");
    assert_int_equal(n, 2);
    /* A multi-byte character is never split. */
    n = sl_log_escape(out, 4, "a\xe6\x97\xa5", 4);
    assert_string_equal(out, "a");
    n = sl_log_escape(out, 5, "a\xe6\x97\xa5", 4);
    assert_string_equal(out, "a\xe6\x97\xa5");
    assert_int_equal(n, 4);
    n = sl_log_escape(out, 1, "abc", 3);
    assert_string_equal(out, "");
    assert_int_equal(n, 0);
    /* cap 0 writes nothing at all. */
    out[0] = 'Q';
    assert_int_equal(sl_log_escape(out, 0, "abc", 3), 0);
    assert_int_equal(out[0], 'Q');
}

static void test_worst_case_size(void **state)
{
    (void)state;
    char src[64], out[SL_LOG_ESCAPED_MAX(64)];
    memset(src, '\n', sizeof src);
    assert_int_equal(sl_log_escape(out, sizeof out, src, sizeof src), 256);
    memset(src, '\xc2', sizeof src);
    for (size_t i = 1; i < sizeof src; i += 2)
        src[i] = '\x85'; /* NEL, a C1 control */
    assert_int_equal(sl_log_escape(out, sizeof out, src, sizeof src), 256);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_passes),
        cmocka_unit_test(test_injection_escaped),
        cmocka_unit_test(test_invalid_utf8_escaped),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_worst_case_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
