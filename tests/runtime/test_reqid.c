/*
 * Unit tests for request ids (runtime/core/reqid.c): client ids are taken
 * only when short and made of token characters; generated ids are 32 hex
 * digits and do not repeat.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "core/reqid.h"

static void test_acceptable(void **state)
{
    (void)state;
    assert_true(sl_reqid_acceptable("abc-123_X.y~", 12));
    assert_true(sl_reqid_acceptable("0123456789012345678901234567890123456789012345678901234567890123", 64));
    assert_false(sl_reqid_acceptable("01234567890123456789012345678901234567890123456789012345678901234", 65));
    assert_false(sl_reqid_acceptable("", 0));
    assert_false(sl_reqid_acceptable(NULL, 3));
    assert_false(sl_reqid_acceptable("a b", 3));
    assert_false(sl_reqid_acceptable("a\"b", 3));
    assert_false(sl_reqid_acceptable("a\\b", 3));
    assert_false(sl_reqid_acceptable("a\nb", 3));
    assert_false(sl_reqid_acceptable("a\0b", 3));
    assert_false(sl_reqid_acceptable("caf\xc3\xa9", 5));
    assert_false(sl_reqid_acceptable("a,b", 3));
}

static int all_hex(const char *s)
{
    for (; *s; s++)
        if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
            return 0;
    return 1;
}

static void test_generated(void **state)
{
    (void)state;
    static char ids[500][SL_REQID_MAX + 1];
    for (int i = 0; i < 500; i++) {
        sl_reqid_new(ids[i]);
        assert_int_equal(strlen(ids[i]), 32);
        assert_true(all_hex(ids[i]));
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

static void test_take(void **state)
{
    (void)state;
    char out[SL_REQID_MAX + 1];
    sl_reqid_take(out, "client-id-1", 11);
    assert_string_equal(out, "client-id-1");
    sl_reqid_take(out, "bad id", 6);
    assert_int_equal(strlen(out), 32);
    assert_true(all_hex(out));
    sl_reqid_take(out, NULL, 0);
    assert_int_equal(strlen(out), 32);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_acceptable),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_take),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
