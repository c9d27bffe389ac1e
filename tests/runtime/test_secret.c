/*
 * Tests for runtime/auth/secret.c: secrets from variables and files
 * (trailing newlines trimmed; empty, multi-line, NUL-holding, missing and
 * oversized files refused, naming the path and never the content).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/secret.h"

static char path[64];

static void write_file(const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    snprintf(path, sizeof path, "/tmp/sluice-secret-test-%ld", (long)getpid());
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink(path);
    return 0;
}

static void test_file(void **state)
{
    (void)state;
    char why[512];
    int unset;
    write_file("sk-file-secret\r\n\n", 17);
    char *v = sl_secret_value(NULL, path, &unset, why, sizeof why);
    assert_string_equal(v, "sk-file-secret");
    sl_secret_free(v);
    write_file("\n", 1);
    assert_null(sl_secret_value(NULL, path, &unset, why, sizeof why));
    assert_non_null(strstr(why, "is empty"));
    assert_non_null(strstr(why, path));
    assert_int_equal(unset, 0);
    write_file("line-one-secret\nline-two\n", 25);
    assert_null(sl_secret_value(NULL, path, &unset, why, sizeof why));
    assert_non_null(strstr(why, "more than one line"));
    assert_null(strstr(why, "line-one-secret"));
    write_file("ab\0cd", 5);
    assert_null(sl_secret_value(NULL, path, &unset, why, sizeof why));
    assert_non_null(strstr(why, "NUL"));
    unlink(path);
    assert_null(sl_secret_value(NULL, path, &unset, why, sizeof why));
    assert_non_null(strstr(why, "cannot read"));
    assert_non_null(strstr(why, "No such file"));
    char *big = calloc(1, 70000);
    memset(big, 'a', 69999);
    write_file(big, 69999);
    free(big);
    assert_null(sl_secret_value(NULL, path, &unset, why, sizeof why));
    assert_non_null(strstr(why, "larger than 64 KiB"));
    /* a relative path names the directory it is read in */
    assert_null(sl_secret_value(NULL, "no-such-secret-file", &unset, why, sizeof why));
    assert_non_null(strstr(why, "working directory"));
}

static void test_env(void **state)
{
    (void)state;
    char why[512];
    int unset;
    setenv("SLUICE_TEST_SECRET", "sk-env", 1);
    char *v = sl_secret_value("SLUICE_TEST_SECRET", NULL, &unset, why, sizeof why);
    assert_string_equal(v, "sk-env");
    sl_secret_free(v);
    setenv("SLUICE_TEST_SECRET", "", 1);
    assert_null(sl_secret_value("SLUICE_TEST_SECRET", NULL, &unset, why, sizeof why));
    assert_int_equal(unset, 1);
    assert_string_equal(why, "environment variable SLUICE_TEST_SECRET is empty");
    unsetenv("SLUICE_TEST_SECRET");
    assert_null(sl_secret_value("SLUICE_TEST_SECRET", NULL, &unset, why, sizeof why));
    assert_string_equal(why, "environment variable SLUICE_TEST_SECRET is not set");
    setenv("SLUICE_TEST_SECRET", "a\nb", 1);
    assert_null(sl_secret_value("SLUICE_TEST_SECRET", NULL, &unset, why, sizeof why));
    assert_int_equal(unset, 0);
    assert_string_equal(why, "SLUICE_TEST_SECRET contains a line break");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_env),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
