/*
 * Tests for runtime/auth/oauth_parse.c: base64url against RFC 4648's
 * vectors; the service-account key parser (PKCS#8 and PKCS#1 RSA keys
 * BearSSL generates and encodes here, every missing or wrong field, EC,
 * short and inconsistent keys, messages that never quote the key); the RS256 JWT (header
 * and claims exactly as Google documents them, a signature that
 * br_rsa_i31_pkcs1_vrfy accepts with the public half and refuses once a
 * byte changes, deterministic for a given time); token answers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth_parse.h"

/* One 2048-bit key pair per test run, from a fixed seed. */
static unsigned char kbuf_priv[BR_RSA_KBUF_PRIV_SIZE(2048)], kbuf_pub[BR_RSA_KBUF_PUB_SIZE(2048)];
static br_rsa_private_key sk;
static br_rsa_public_key pk;
static char *pem_pkcs8, *pem_pkcs1;

static void pem_of(const void *der, size_t len, const char *name, char **out)
{
    size_t n = br_pem_encode(NULL, der, len, name, 0);
    *out = malloc(n + 1);
    br_pem_encode(*out, der, len, name, 0);
}

static int setup(void **state)
{
    (void)state;
    br_hmac_drbg_context rng;
    br_hmac_drbg_init(&rng, &br_sha256_vtable, "sluice-test-seed", 16);
    br_rsa_keygen kg = br_rsa_keygen_get_default();
    assert_int_equal(kg(&rng.vtable, &sk, kbuf_priv, &pk, kbuf_pub, 2048, 65537), 1);
    /* d is needed by the PKCS#8 and PKCS#1 encoders */
    unsigned char d[256];
    size_t dlen = br_rsa_compute_privexp_get_default()(d, &sk, 65537);
    assert_true(dlen > 0);
    size_t n8 = br_encode_rsa_pkcs8_der(NULL, &sk, &pk, d, dlen);
    unsigned char *der8 = malloc(n8);
    br_encode_rsa_pkcs8_der(der8, &sk, &pk, d, dlen);
    pem_of(der8, n8, "PRIVATE KEY", &pem_pkcs8);
    size_t n1 = br_encode_rsa_raw_der(NULL, &sk, &pk, d, dlen);
    unsigned char *der1 = malloc(n1);
    br_encode_rsa_raw_der(der1, &sk, &pk, d, dlen);
    pem_of(der1, n1, "RSA PRIVATE KEY", &pem_pkcs1);
    free(der8);
    free(der1);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    free(pem_pkcs8);
    free(pem_pkcs1);
    return 0;
}

static char *sa_json(const char *pem, const char *email, const char *uri, const char *type)
{
    json_t *o = json_object();
    if (type)
        json_object_set_new(o, "type", json_string(type));
    if (email)
        json_object_set_new(o, "client_email", json_string(email));
    if (pem)
        json_object_set_new(o, "private_key", json_string(pem));
    if (uri)
        json_object_set_new(o, "token_uri", json_string(uri));
    json_object_set_new(o, "project_id", json_string("p"));
    char *s = json_dumps(o, 0);
    json_decref(o);
    return s;
}

static int parse(const char *js, sl_sa_key *k, char *err, size_t n)
{
    return sl_sa_parse(js, strlen(js), k, err, n);
}

static void test_b64url(void **state)
{
    (void)state;
    static const struct { const char *in, *out; } v[] = {
        {"", ""}, {"f", "Zg"}, {"fo", "Zm8"}, {"foo", "Zm9v"}, {"foob", "Zm9vYg"},
        {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        size_t n = sl_b64url((const unsigned char *)v[i].in, strlen(v[i].in), out);
        assert_string_equal(out, v[i].out);
        assert_int_equal(n, strlen(v[i].out));
    }
}

static void test_sa_parse_ok(void **state)
{
    (void)state;
    char err[256];
    sl_sa_key k;
    char *js = sa_json(pem_pkcs8, "sa@p.iam.gserviceaccount.com", "https://oauth2.example/token",
                       "service_account");
    assert_int_equal(parse(js, &k, err, sizeof err), 0);
    assert_string_equal(k.client_email, "sa@p.iam.gserviceaccount.com");
    assert_string_equal(k.token_uri, "https://oauth2.example/token");
    assert_int_equal(k.rsa.n_bitlen, 2048);
    assert_memory_equal(k.rsa.p, sk.p, sk.plen);
    sl_sa_free(&k);
    free(js);
    /* PKCS#1, no type, no token_uri: Google's endpoint by default */
    js = sa_json(pem_pkcs1, "a@b", NULL, NULL);
    assert_int_equal(parse(js, &k, err, sizeof err), 0);
    assert_string_equal(k.token_uri, "https://oauth2.googleapis.com/token");
    sl_sa_free(&k);
    free(js);
}

static void expect_error(const char *js, const char *want)
{
    char err[256] = "";
    sl_sa_key k;
    assert_int_equal(sl_sa_parse(js, strlen(js), &k, err, sizeof err), -1);
    if (!strstr(err, want))
        fail_msg("error '%s' lacks '%s'", err, want);
    /* never the key's text */
    assert_null(strstr(err, "MII"));
    assert_null(k.mem);
    assert_null(k.client_email);
}

static void test_sa_parse_errors(void **state)
{
    (void)state;
    char *js;
    expect_error("", "not a JSON object");
    expect_error("[1]", "not a JSON object");
    expect_error("{\"a\":1,\"a\":2}", "not a JSON object");
    js = sa_json(pem_pkcs8, "a@b", NULL, "authorized_user");
    expect_error(js, "type is not \"service_account\"");
    free(js);
    js = sa_json(pem_pkcs8, NULL, NULL, NULL);
    expect_error(js, "no client_email");
    free(js);
    js = sa_json(NULL, "a@b", NULL, NULL);
    expect_error(js, "no private_key");
    free(js);
    js = sa_json(pem_pkcs8, "a b@c", NULL, NULL);
    expect_error(js, "client_email is not a plain address");
    free(js);
    js = sa_json(pem_pkcs8, "a@b", "https://x/\ttoken", NULL);
    expect_error(js, "token_uri is not a plain URL");
    free(js);
    js = sa_json("not pem at all", "a@b", NULL, NULL);
    expect_error(js, "no PEM \"PRIVATE KEY\" block");
    free(js);
    js = sa_json("-----BEGIN PRIVATE KEY-----\nMIIAAAAA\n-----END PRIVATE KEY-----\n", "a@b", NULL, NULL);
    expect_error(js, "private_key cannot be decoded");
    free(js);
    /* two keys in one */
    char *two = malloc(2 * strlen(pem_pkcs8) + 1);
    strcpy(two, pem_pkcs8);
    strcat(two, pem_pkcs8);
    js = sa_json(two, "a@b", NULL, NULL);
    expect_error(js, "more than one key");
    free(js);
    free(two);
    /* a key whose CRT values do not fit its primes decodes but cannot sign */
    {
        unsigned char dp[512], d[256];
        memcpy(dp, sk.dp, sk.dplen);
        dp[sk.dplen / 2] ^= 0x10;
        br_rsa_private_key bad = sk;
        bad.dp = dp;
        size_t dl = br_rsa_compute_privexp_get_default()(d, &sk, 65537);
        size_t nb = br_encode_rsa_pkcs8_der(NULL, &bad, &pk, d, dl);
        unsigned char *bder = malloc(nb);
        br_encode_rsa_pkcs8_der(bder, &bad, &pk, d, dl);
        char *bpem;
        pem_of(bder, nb, "PRIVATE KEY", &bpem);
        js = sa_json(bpem, "a@b", NULL, NULL);
        expect_error(js, "not a consistent RSA key");
        free(js);
        free(bpem);
        free(bder);
    }
    /* an EC key cannot sign RS256 */
    br_hmac_drbg_context rng;
    br_hmac_drbg_init(&rng, &br_sha256_vtable, "ec", 2);
    unsigned char kb[BR_EC_KBUF_PRIV_MAX_SIZE];
    br_ec_private_key ek;
    assert_true(br_ec_keygen(&rng.vtable, br_ec_get_default(), &ek, kb, BR_EC_secp256r1) > 0);
    size_t n = br_encode_ec_pkcs8_der(NULL, &ek, NULL);
    unsigned char *der = malloc(n);
    br_encode_ec_pkcs8_der(der, &ek, NULL);
    char *ecpem;
    pem_of(der, n, "PRIVATE KEY", &ecpem);
    js = sa_json(ecpem, "a@b", NULL, NULL);
    expect_error(js, "not an RSA key");
    free(js);
    free(ecpem);
    free(der);
    /* a 1024-bit RSA key is too short */
    static unsigned char sp[BR_RSA_KBUF_PRIV_SIZE(1024)], spb[BR_RSA_KBUF_PUB_SIZE(1024)];
    br_rsa_private_key ssk;
    br_rsa_public_key spk;
    assert_int_equal(br_rsa_keygen_get_default()(&rng.vtable, &ssk, sp, &spk, spb, 1024, 65537), 1);
    unsigned char d[128];
    size_t dl = br_rsa_compute_privexp_get_default()(d, &ssk, 65537);
    n = br_encode_rsa_pkcs8_der(NULL, &ssk, &spk, d, dl);
    der = malloc(n);
    br_encode_rsa_pkcs8_der(der, &ssk, &spk, d, dl);
    char *smallpem;
    pem_of(der, n, "PRIVATE KEY", &smallpem);
    js = sa_json(smallpem, "a@b", NULL, NULL);
    expect_error(js, "1024-bit RSA key");
    free(js);
    free(smallpem);
    free(der);
}

static json_t *b64_json(const char *s, size_t n)
{
    /* decode base64url (test-side, independent of the encoder) */
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    unsigned char out[2048];
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        const char *p = strchr(a, s[i]);
        assert_non_null(p);
        v = (v << 6) | (unsigned)(p - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return json_loadb((const char *)out, o, 0, NULL);
}

static size_t b64_dec_bytes(const char *s, unsigned char *out)
{
    static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    unsigned v = 0;
    int bits = 0;
    for (; *s; s++) {
        v = (v << 6) | (unsigned)(strchr(a, *s) - a);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(v >> bits);
        }
    }
    return o;
}

static int verifies(const char *jwt)
{
    const char *d2 = strrchr(jwt, '.');
    unsigned char sig[512], want[32], got[32];
    size_t n = b64_dec_bytes(d2 + 1, sig);
    br_sha256_context sc;
    br_sha256_init(&sc);
    br_sha256_update(&sc, jwt, (size_t)(d2 - jwt));
    br_sha256_out(&sc, want);
    /* i31 explicitly: not the default the signer picked */
    return br_rsa_i31_pkcs1_vrfy(sig, n, BR_HASH_OID_SHA256, 32, &pk, got) && memcmp(want, got, 32) == 0;
}

static void test_jwt(void **state)
{
    (void)state;
    char err[256];
    sl_sa_key k;
    char *js = sa_json(pem_pkcs8, "sa@p.iam.gserviceaccount.com", "https://oauth2.googleapis.com/token", NULL);
    assert_int_equal(parse(js, &k, err, sizeof err), 0);
    free(js);
    char *jwt = sl_sa_jwt(&k, "https://www.googleapis.com/auth/cloud-platform", 1700000000);
    assert_non_null(jwt);
    const char *d1 = strchr(jwt, '.'), *d2 = strrchr(jwt, '.');
    assert_true(d1 && d2 && d1 < d2);
    /* the header, byte for byte */
    assert_int_equal(d1 - jwt, 36);
    assert_memory_equal(jwt, "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9", 36);
    json_t *h = b64_json(jwt, (size_t)(d1 - jwt));
    assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
    json_decref(h);
    json_t *c = b64_json(d1 + 1, (size_t)(d2 - d1 - 1));
    assert_non_null(c);
    assert_int_equal(json_object_size(c), 5);
    assert_string_equal(json_string_value(json_object_get(c, "iss")), "sa@p.iam.gserviceaccount.com");
    assert_string_equal(json_string_value(json_object_get(c, "aud")), "https://oauth2.googleapis.com/token");
    assert_string_equal(json_string_value(json_object_get(c, "scope")),
                        "https://www.googleapis.com/auth/cloud-platform");
    assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
    assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700003600);
    json_decref(c);
    /* no padding, url alphabet only */
    assert_null(strpbrk(jwt, "=+/"));
    assert_int_equal(strlen(d2 + 1), 342); /* 256 bytes */
    assert_true(verifies(jwt));
    /* PKCS#1 v1.5 is deterministic: the same time signs the same bytes */
    char *again = sl_sa_jwt(&k, "https://www.googleapis.com/auth/cloud-platform", 1700000000);
    assert_string_equal(jwt, again);
    free(again);
    /* a changed claim no longer verifies */
    jwt[d1 - jwt + 5] ^= 1;
    assert_false(verifies(jwt));
    free(jwt);
    sl_sa_free(&k);
    assert_null(k.mem);
}

static void test_token_answers(void **state)
{
    (void)state;
    char *tok;
    int64_t exp;
    char err[200];
#define OK(js, want_tok, want_exp)                                                         \
    do {                                                                                   \
        assert_int_equal(sl_oauth_parse_token(js, strlen(js), &tok, &exp, err, sizeof err), 0); \
        assert_string_equal(tok, want_tok);                                                \
        assert_int_equal(exp, want_exp);                                                   \
        free(tok);                                                                         \
    } while (0)
#define BAD(js, want)                                                                      \
    do {                                                                                   \
        assert_int_equal(sl_oauth_parse_token(js, strlen(js), &tok, &exp, err, sizeof err), -1); \
        assert_null(tok);                                                                  \
        if (!strstr(err, want))                                                            \
            fail_msg("'%s' lacks '%s'", err, want);                                        \
    } while (0)
    OK("{\"access_token\":\"ya29.abc\",\"expires_in\":3599,\"token_type\":\"Bearer\"}", "ya29.abc", 3599);
    OK("{\"token_type\":\"bearer\",\"expires_in\":\"3600\",\"access_token\":\"eyJ0.x-y_z\"}", "eyJ0.x-y_z", 3600);
    OK("{\"access_token\":\"t\"}", "t", 3600);
    BAD("", "not a JSON object");
    BAD("{}", "no access_token");
    BAD("{\"access_token\":\"\"}", "no access_token");
    BAD("{\"access_token\":\"a b\"}", "not printable");
    BAD("{\"access_token\":\"a\\r\\nX-Evil: 1\"}", "not printable");
    BAD("{\"access_token\":\"a\",\"token_type\":\"mac\"}", "not Bearer");
    BAD("{\"access_token\":\"a\",\"expires_in\":0}", "expires_in");
    BAD("{\"access_token\":\"a\",\"expires_in\":-5}", "expires_in");
    BAD("{\"access_token\":\"a\",\"expires_in\":99999999}", "expires_in");
    BAD("{\"access_token\":\"a\",\"expires_in\":[1]}", "expires_in");
    /* the error never quotes the token */
    BAD("{\"access_token\":\"secret-token\",\"token_type\":\"mac\"}", "token_type");
    assert_null(strstr(err, "secret-token"));
    char code[72];
    const char *refusal = "{\"error\":\"invalid_client\",\"error_description\":\"x\"}";
    sl_oauth_error_code(refusal, strlen(refusal), code, sizeof code);
    assert_string_equal(code, "invalid_client");
    const char *evil = "{\"error\":\"bad\\r\\ncode\"}";
    sl_oauth_error_code(evil, strlen(evil), code, sizeof code);
    assert_string_equal(code, "");
    sl_oauth_error_code("<html>", 6, code, sizeof code);
    assert_string_equal(code, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_sa_parse_ok),
        cmocka_unit_test(test_sa_parse_errors),
        cmocka_unit_test(test_jwt),
        cmocka_unit_test(test_token_answers),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
