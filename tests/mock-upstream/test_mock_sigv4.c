/* The mock's SigV4 verifier (mock_sigv4.c) against AWS's documented IAM
 * ListUsers example: the published Authorization line verifies; a changed
 * signature, secret, date, region, header value or body does not; and a
 * Bedrock-shaped request whose signature was computed outside this code
 * (Python's hmac/hashlib) verifies, path segment encoded again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "mock_sigv4.h"

#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define IAM_AUTH                                                                                             \
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, "                        \
    "SignedHeaders=content-type;host;x-amz-date, "                                                          \
    "Signature=5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"

static json_t *iam_headers(const char *auth)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "host", "iam.amazonaws.com", "content-type",
                     "application/x-www-form-urlencoded; charset=utf-8", "x-amz-date", "20150830T123600Z",
                     "authorization", auth);
}

static const mu_aws iam = {.key_id = "AKIDEXAMPLE", .secret = SECRET, .region = "us-east-1",
                           .service = "iam", .date = "20150830T123600Z"};

static void test_documented_example(void **state)
{
    (void)state;
    json_t *h = iam_headers(IAM_AUTH);
    assert_int_equal(mu_sigv4_verify(&iam, "GET", "/?Version=2010-05-08&Action=ListUsers", h, "", 0, NULL, 0),
                     MU_SIG_OK);
    json_decref(h);
}

static void test_changes_fail(void **state)
{
    (void)state;
    char auth[] = IAM_AUTH;
    auth[strlen(auth) - 1] = '8';
    json_t *h = iam_headers(auth);
    const char *t = "/?Action=ListUsers&Version=2010-05-08";
    assert_int_equal(mu_sigv4_verify(&iam, "GET", t, h, "", 0, NULL, 0), MU_SIG_MISMATCH);
    json_decref(h);
    h = iam_headers(IAM_AUTH);
    mu_aws wrong = iam;
    wrong.secret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ";
    assert_int_equal(mu_sigv4_verify(&wrong, "GET", t, h, "", 0, NULL, 0), MU_SIG_MISMATCH);
    wrong = iam;
    wrong.date = "20150830T123601Z";
    assert_int_equal(mu_sigv4_verify(&wrong, "GET", t, h, "", 0, NULL, 0), MU_SIG_DATE);
    wrong = iam;
    wrong.region = "us-west-2";
    assert_int_equal(mu_sigv4_verify(&wrong, "GET", t, h, "", 0, NULL, 0), MU_SIG_SCOPE);
    wrong = iam;
    wrong.key_id = "AKIDOTHER";
    assert_int_equal(mu_sigv4_verify(&wrong, "GET", t, h, "", 0, NULL, 0), MU_SIG_KEY);
    assert_int_equal(mu_sigv4_verify(&iam, "GET", t, h, "x", 1, NULL, 0), MU_SIG_MISMATCH);
    assert_int_equal(mu_sigv4_verify(&iam, "POST", t, h, "", 0, NULL, 0), MU_SIG_MISMATCH);
    json_object_set_new(h, "host", json_string("iam.amazonaws.com.evil"));
    assert_int_equal(mu_sigv4_verify(&iam, "GET", t, h, "", 0, NULL, 0), MU_SIG_MISMATCH);
    json_decref(h);
}

static void test_bedrock_request(void **state)
{
    (void)state;
    const char *body = "{\"anthropic_version\":\"bedrock-2023-05-31\",\"max_tokens\":16,"
                       "\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    mu_aws aws = {.key_id = "AKIDEXAMPLE", .secret = SECRET, .token = "FQoGZXIvYXdzEXAMPLETOKEN",
                  .region = "us-west-2", .service = "bedrock", .date = "20241022T101500Z"};
    json_t *h = json_pack(
        "{s:s,s:s,s:s,s:s,s:s}", "host", "bedrock-runtime.us-west-2.amazonaws.com", "content-type",
        "application/json", "x-amz-date", "20241022T101500Z", "x-amz-security-token", "FQoGZXIvYXdzEXAMPLETOKEN",
        "authorization",
        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20241022/us-west-2/bedrock/aws4_request, "
        "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, "
        "Signature=dcf206a7a1982f4bc9581ec239c09773830b1bc81e80065224fbd6a7174e78be");
    const char *path = "/model/anthropic.claude-3-5-sonnet-20241022-v2%3A0/invoke";
    assert_int_equal(mu_sigv4_verify(&aws, "POST", path, h, body, strlen(body), NULL, 0), MU_SIG_OK);
    aws.token = "another";
    assert_int_equal(mu_sigv4_verify(&aws, "POST", path, h, body, strlen(body), NULL, 0), MU_SIG_TOKEN);
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_documented_example),
        cmocka_unit_test(test_changes_fail),
        cmocka_unit_test(test_bedrock_request),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
