/*
 * Unit tests for runtime/route/glob.c: wildcard semantics ('*' any run of
 * bytes, '?' one byte), the literal prefix that ranks globs, and a
 * pathological pattern that would take exponential time with naive
 * recursive backtracking.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "route/glob.h"

static void test_literal(void **state)
{
    (void)state;
    assert_true(sl_glob_match("gpt-4o", "gpt-4o"));
    assert_false(sl_glob_match("gpt-4o", "gpt-4o-mini"));
    assert_false(sl_glob_match("gpt-4o-mini", "gpt-4o"));
    assert_true(sl_glob_match("", ""));
    assert_false(sl_glob_match("", "a"));
    assert_false(sl_glob_match("a", ""));
    /* Case matters: model names are case-sensitive upstream. */
    assert_false(sl_glob_match("Claude", "claude"));
}

static void test_star(void **state)
{
    (void)state;
    assert_true(sl_glob_match("claude-*", "claude-sonnet-4-5"));
    assert_true(sl_glob_match("claude-*", "claude-"));
    assert_false(sl_glob_match("claude-*", "claude"));
    assert_false(sl_glob_match("claude-*", "xclaude-3"));
    assert_true(sl_glob_match("*", ""));
    assert_true(sl_glob_match("*", "anything/at all"));
    assert_true(sl_glob_match("**", "x"));
    assert_true(sl_glob_match("*-mini", "gpt-4o-mini"));
    assert_false(sl_glob_match("*-mini", "gpt-4o-mini-2"));
    assert_true(sl_glob_match("a*b*c", "abc"));
    assert_true(sl_glob_match("a*b*c", "a--b--b--c"));
    assert_false(sl_glob_match("a*b*c", "a--c--b"));
    /* The star must give back bytes for a later literal to match. */
    assert_true(sl_glob_match("*ab", "aaab"));
    assert_true(sl_glob_match("*aab", "aaab"));
    assert_true(sl_glob_match("a*ab*b", "aabab"));
}

static void test_question(void **state)
{
    (void)state;
    assert_true(sl_glob_match("gpt-?", "gpt-4"));
    assert_false(sl_glob_match("gpt-?", "gpt-"));
    assert_false(sl_glob_match("gpt-?", "gpt-4o"));
    assert_true(sl_glob_match("??", "ab"));
    assert_true(sl_glob_match("*?", "a"));
    assert_false(sl_glob_match("*?", ""));
    assert_true(sl_glob_match("?*?", "ab"));
    /* One byte, not one character: a two-byte UTF-8 letter needs two. */
    assert_false(sl_glob_match("?", "\xc3\xa9"));
    assert_true(sl_glob_match("??", "\xc3\xa9"));
}

static void test_prefix_len(void **state)
{
    (void)state;
    assert_int_equal(sl_glob_prefix_len("claude-*"), 7);
    assert_int_equal(sl_glob_prefix_len("claude-3-*"), 9);
    assert_int_equal(sl_glob_prefix_len("*"), 0);
    assert_int_equal(sl_glob_prefix_len("gpt-?o"), 4);
    assert_int_equal(sl_glob_prefix_len("plain"), 5);
    assert_int_equal(sl_glob_prefix_len(""), 0);
    assert_true(sl_glob_is_glob("a*"));
    assert_true(sl_glob_is_glob("a?"));
    assert_false(sl_glob_is_glob("abc"));
    assert_false(sl_glob_is_glob(""));
}

static void test_no_exponential_backtracking(void **state)
{
    (void)state;
    /* a*a*a*...*b against 4000 'a's: naive backtracking tries every way of
     * splitting the name between the stars and never finishes. */
    char pat[64];
    size_t k = 0;
    for (int i = 0; i < 20; i++) {
        pat[k++] = 'a';
        pat[k++] = '*';
    }
    pat[k++] = 'b';
    pat[k] = '\0';
    size_t n = 4000;
    char *name = malloc(n + 1);
    assert_non_null(name);
    memset(name, 'a', n);
    name[n] = '\0';
    clock_t t0 = clock();
    assert_false(sl_glob_match(pat, name));
    name[n - 1] = 'b';
    assert_true(sl_glob_match(pat, name));
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    free(name);
    assert_true(secs < 1.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literal),
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_question),
        cmocka_unit_test(test_prefix_len),
        cmocka_unit_test(test_no_exponential_backtracking),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
