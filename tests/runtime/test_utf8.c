/*
 * Unit tests for runtime/core/utf8.c: every boundary of the well-formed
 * table (shortest forms at each length, the surrogate gap, U+10FFFF) and
 * the classic malformations (overlongs, lone continuations, truncation).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/utf8.h"

#define V(lit) assert_true(sl_utf8_valid(lit, sizeof(lit) - 1))
#define BAD(lit) assert_false(sl_utf8_valid(lit, sizeof(lit) - 1))

static void test_ascii_and_empty(void **state)
{
    (void)state;
    V("");
    V("claude-sonnet-4-5");
    V("\x7f");
    /* An embedded NUL is a valid code point; length is what counts. */
    assert_true(sl_utf8_valid("a\0b", 3));
    assert_true(sl_utf8_valid(NULL, 0));
}

static void test_boundaries(void **state)
{
    (void)state;
    V("\xc2\x80");             /* U+0080 */
    V("\xdf\xbf");             /* U+07FF */
    V("\xe0\xa0\x80");         /* U+0800 */
    V("\xed\x9f\xbf");         /* U+D7FF, below the surrogates */
    V("\xee\x80\x80");         /* U+E000, above them */
    V("\xef\xbf\xbf");         /* U+FFFF */
    V("\xf0\x90\x80\x80");     /* U+10000 */
    V("\xf4\x8f\xbf\xbf");     /* U+10FFFF */
    V("caf\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x98\x80");
}

static void test_overlongs(void **state)
{
    (void)state;
    BAD("\xc0\x80");           /* NUL in two bytes */
    BAD("\xc0\xaf");           /* '/' in two bytes */
    BAD("\xc1\xbf");
    BAD("\xe0\x80\xaf");
    BAD("\xe0\x9f\xbf");       /* U+07FF in three bytes */
    BAD("\xf0\x80\x80\xaf");
    BAD("\xf0\x8f\xbf\xbf");   /* U+FFFF in four bytes */
}

static void test_surrogates_and_range(void **state)
{
    (void)state;
    BAD("\xed\xa0\x80");       /* U+D800 */
    BAD("\xed\xbf\xbf");       /* U+DFFF */
    BAD("\xed\xa0\xbd\xed\xb8\x80"); /* a CESU-8 pair */
    BAD("\xf4\x90\x80\x80");   /* U+110000 */
    BAD("\xf5\x80\x80\x80");
    BAD("\xf8\x88\x80\x80\x80");
    BAD("\xff");
    BAD("\xfe");
}

static void test_malformed(void **state)
{
    (void)state;
    BAD("\x80");               /* lone continuation */
    BAD("a\xbf");
    BAD("\xc3");               /* truncated */
    BAD("\xe6\x97");
    BAD("\xf0\x9f\x98");
    BAD("\xc3\x28");           /* bad continuation */
    BAD("\xe6\x28\xa5");
    BAD("\xe6\x97\x28");
    BAD("\xf0\x9f\x28\x80");
    BAD("\xf0\x9f\x98\x28");
    /* Length is honoured: the bytes past n are not looked at. */
    assert_false(sl_utf8_valid("\xc3\xa9", 1));
    assert_true(sl_utf8_valid("ab\xc3", 2));
}

static void test_seq_len(void **state)
{
    (void)state;
    assert_int_equal(sl_utf8_seq_len("a", 1), 1);
    assert_int_equal(sl_utf8_seq_len("\xc3\xa9x", 3), 2);
    assert_int_equal(sl_utf8_seq_len("\xe6\x97\xa5", 3), 3);
    assert_int_equal(sl_utf8_seq_len("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(sl_utf8_seq_len("\xf0\x9f\x98\x80", 3), 0);
    assert_int_equal(sl_utf8_seq_len("\xed\xa0\x80", 3), 0);
    assert_int_equal(sl_utf8_seq_len("\x80", 1), 0);
    assert_int_equal(sl_utf8_seq_len("", 0), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ascii_and_empty),
        cmocka_unit_test(test_boundaries),
        cmocka_unit_test(test_overlongs),
        cmocka_unit_test(test_surrogates_and_range),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_seq_len),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
