/*
 * Tests for status-line reason phrases (runtime/http/reason.c): every
 * status the gateway produces has its RFC 9110 phrase, unknown codes get
 * their class, and no code gets NULL or an empty phrase.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "http/http.h"

static void test_known(void **state)
{
    assert_string_equal(sl_http_reason(100), "Continue");
    assert_string_equal(sl_http_reason(200), "OK");
    assert_string_equal(sl_http_reason(308), "Permanent Redirect");
    assert_string_equal(sl_http_reason(401), "Unauthorized");
    assert_string_equal(sl_http_reason(408), "Request Timeout");
    assert_string_equal(sl_http_reason(413), "Content Too Large");
    assert_string_equal(sl_http_reason(431), "Request Header Fields Too Large");
    assert_string_equal(sl_http_reason(503), "Service Unavailable");
    assert_string_equal(sl_http_reason(529), "Site Overloaded");
}

static void test_classes(void **state)
{
    assert_string_equal(sl_http_reason(299), "OK");
    assert_string_equal(sl_http_reason(399), "Redirection");
    assert_string_equal(sl_http_reason(418), "Client Error");
    assert_string_equal(sl_http_reason(599), "Server Error");
}

static void test_never_empty(void **state)
{
    for (int s = 100; s < 600; s++) {
        const char *r = sl_http_reason(s);
        assert_non_null(r);
        assert_true(strlen(r) > 0);
        /* A phrase must not break the status line. */
        assert_null(strpbrk(r, "\r\n"));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known),
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_never_empty),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
