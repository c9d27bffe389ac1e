/*
 * Unit tests for runtime/aws/creds.c over creds.yaml: env and file
 * sources (a file's trailing newline dropped), the AWS_* defaults with an
 * optional session token, an optional provider without credentials,
 * values with line breaks refused, and errors that name the source but
 * never the secret. Files are read relative to a scratch directory.
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

#include "aws/creds.h"

static char dir[] = "/tmp/sluice-creds-XXXXXX";

static void write_secret(const char *v)
{
    FILE *f = fopen("t-secret.txt", "w");
    assert_non_null(f);
    fputs(v, f);
    fclose(f);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(dir) || chdir(dir) != 0)
        return -1;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    unlink("t-secret.txt");
    return chdir("/") == 0 && rmdir(dir) == 0 ? 0 : -1;
}

static void base_env(void)
{
    setenv("T_AK", "AKIDA", 1);
    setenv("T_TOK", "tok-a", 1);
    setenv("AWS_ACCESS_KEY_ID", "AKIDB", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret-b", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("T_C_AK");
    unsetenv("T_C_SK");
    write_secret("secret-a\n");
}

static void test_sources(void **state)
{
    (void)state;
    base_env();
    char err[256] = "";
    assert_int_equal(sl_aws_creds_init(&sl_spec, err, sizeof err), 0);
    sl_arena a;
    sl_arena_init(&a, 1024);
    sl_aws_creds c;
    assert_int_equal(sl_aws_creds_copy("a", &a, &c), 0);
    assert_string_equal(c.key_id, "AKIDA");
    assert_string_equal(c.secret, "secret-a");
    assert_string_equal(c.token, "tok-a");
    assert_int_equal(sl_aws_creds_copy("b", &a, &c), 0);
    assert_string_equal(c.key_id, "AKIDB");
    assert_string_equal(c.secret, "secret-b");
    assert_null(c.token); /* AWS_SESSION_TOKEN unset: none */
    assert_int_equal(sl_aws_creds_copy("c", &a, &c), -1); /* optional, unset */
    assert_int_equal(sl_aws_creds_have(2), 0);
    assert_int_equal(sl_aws_creds_have(0), 1);
    assert_int_equal(sl_aws_creds_have(3), 0); /* the mock */
    assert_int_equal(sl_aws_creds_copy("nope", &a, &c), -1);
    sl_arena_free(&a);
    sl_aws_creds_shutdown();
}

static void test_missing_and_bad(void **state)
{
    (void)state;
    base_env();
    char err[256] = "";
    unsetenv("T_TOK"); /* named in the spec: required */
    assert_int_equal(sl_aws_creds_init(&sl_spec, err, sizeof err), -1);
    assert_string_equal(err, "provider 'a': AWS credential env:T_TOK is not set or empty (set it, or mark the "
                             "provider optional: true in the spec)");
    sl_aws_creds_shutdown();
    base_env();
    write_secret("");
    assert_int_equal(sl_aws_creds_init(&sl_spec, err, sizeof err), -1);
    assert_string_equal(err, "provider 'a': credentials: file 't-secret.txt' is empty");
    sl_aws_creds_shutdown();
    base_env();
    setenv("AWS_SECRET_ACCESS_KEY", "secret\r\nX-Injected: 1", 1);
    assert_int_equal(sl_aws_creds_init(&sl_spec, err, sizeof err), -1);
    assert_string_equal(err, "provider 'b': credentials: AWS_SECRET_ACCESS_KEY contains a line break");
    assert_null(strstr(err, "secret\r"));
    sl_aws_creds_shutdown();
    base_env();
    unlink("t-secret.txt");
    assert_int_equal(sl_aws_creds_init(&sl_spec, err, sizeof err), -1);
    assert_non_null(strstr(err, "provider 'a': credentials: cannot read 't-secret.txt': No such file or directory "
                                "(a relative path is read in the working directory, "));
    sl_aws_creds_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sources),
        cmocka_unit_test(test_missing_and_bad),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
