/*
 * Unit tests for runtime/aws/sigv4.c against the values AWS publishes:
 * the IAM ListUsers example of the SigV4 documentation (its signature and
 * Authorization line) and the get-vanilla case of the SigV4 test suite,
 * plus a Bedrock-shaped request whose model id has ':' (sent as %3A,
 * signed as %253A) and a session token, whose expected signature was
 * computed with Python's hmac/hashlib, not with this code.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "aws/sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"

static void test_iam_list_users(void **state)
{
    (void)state;
    sl_sigv4_header h[] = {
        {"host", "iam.amazonaws.com"},
        {"content-type", "application/x-www-form-urlencoded; charset=utf-8"},
    };
    sl_sigv4_input in = {.method = "GET", .path = "/", .query = "Action=ListUsers&Version=2010-05-08",
                         .headers = h, .nheaders = 2, .region = "us-east-1", .service = "iam",
                         .key_id = "AKIDEXAMPLE", .secret = SECRET, .now = 1440938160};
    sl_sigv4_output out;
    assert_int_equal(sl_sigv4_sign(&in, &out), 0);
    assert_string_equal(out.amz_date, "20150830T123600Z");
    assert_string_equal(out.authorization,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "
                        "SignedHeaders=content-type;host;x-amz-date, "
                        "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7");
}

static void test_get_vanilla(void **state)
{
    (void)state;
    sl_sigv4_header h[] = {{"host", "example.amazonaws.com"}};
    sl_sigv4_input in = {.method = "GET", .path = "/", .headers = h, .nheaders = 1, .region = "us-east-1",
                         .service = "service", .key_id = "AKIDEXAMPLE", .secret = SECRET, .now = 1440938160};
    sl_sigv4_output out;
    assert_int_equal(sl_sigv4_sign(&in, &out), 0);
    assert_non_null(strstr(out.authorization,
                           "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"));
}

static void test_bedrock_colon_and_token(void **state)
{
    (void)state;
    const char *body = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":16,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    sl_sigv4_header h[] = {{"host", "bedrock-runtime.us-west-2.amazonaws.com"},
                           {"content-type", "application/json"}};
    sl_sigv4_input in = {.method = "POST", .path = "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke",
                         .headers = h, .nheaders = 2, .body = body, .body_len = strlen(body),
                         .region = "us-west-2", .service = "bedrock", .key_id = "AKIDEXAMPLE",
                         .secret = SECRET, .token = "FQoGZXIvYXdzEXAMPLETOKEN", .now = 1729592100};
    sl_sigv4_output out;
    assert_int_equal(sl_sigv4_sign(&in, &out), 0);
    assert_string_equal(out.authorization,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20241022/us-west-2/bedrock/aws4_request, "
                        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
                        "Signature=dcf206a7a1982f4bc9581ec239c09773830b1bc81e80065224fbd6a7174e78be");
    /* The secret itself never appears in what goes on the wire. */
    assert_null(strstr(out.authorization, SECRET));
}

static void test_uri_encode(void **state)
{
    (void)state;
    char out[64];
    sl_sigv4_uri_encode("a:b/c d~", 8, 0, out);
    assert_string_equal(out, "a%3Ab%2Fc%20d~");
    sl_sigv4_uri_encode("/m/a%3A0", 8, 1, out);
    assert_string_equal(out, "/m/a%253A0");
}

static void test_limits(void **state)
{
    (void)state;
    sl_sigv4_header h[9];
    for (int i = 0; i < 9; i++)
        h[i] = (sl_sigv4_header){"x", "y"};
    sl_sigv4_input in = {.method = "GET", .path = "/", .headers = h, .nheaders = 9, .region = "r",
                         .service = "s", .key_id = "k", .secret = "s", .now = 0};
    sl_sigv4_output out;
    assert_int_equal(sl_sigv4_sign(&in, &out), -1);
    in.nheaders = 1;
    in.key_id = NULL;
    assert_int_equal(sl_sigv4_sign(&in, &out), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iam_list_users),
        cmocka_unit_test(test_get_vanilla),
        cmocka_unit_test(test_bedrock_colon_and_token),
        cmocka_unit_test(test_uri_encode),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
