/*
 * Tests for client authentication (runtime/auth/auth.c): SHA-256 against the
 * FIPS 180-2 vectors, the constant-time comparison, where a presented key is
 * taken from (Bearer, x-api-key, x-goog-api-key, ?key=), the open gateway of
 * unit.yaml, and a small keyed table built here by hand to cover missing,
 * unknown, expired, address-restricted and scoped keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "http/http.h"
#include "table.h"

static void hex(const uint8_t *h, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", h[i]);
}

static void assert_sha256(const void *data, size_t len, const char *want)
{
    uint8_t h[32];
    char got[65];
    sl_auth_sha256(data, len, h);
    hex(h, 32, got);
    assert_string_equal(got, want);
}

static void test_sha256_vectors(void **state)
{
    assert_sha256("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_sha256("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha256(two_blocks, strlen(two_blocks),
                  "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    char *million = malloc(1000000);
    assert_non_null(million);
    memset(million, 'a', 1000000);
    assert_sha256(million, 1000000,
                  "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(million);
}

static void test_ct_equal(void **state)
{
    uint8_t a[32], b[32];
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    assert_true(sl_auth_ct_equal(a, b, 32));
    assert_true(sl_auth_ct_equal(a, b, 0));
    /* A difference in any byte, in any bit, is seen. */
    for (int i = 0; i < 32; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b[i] ^= (uint8_t)(1 << bit);
            assert_false(sl_auth_ct_equal(a, b, 32));
            b[i] ^= (uint8_t)(1 << bit);
        }
    }
    b[31] ^= 1;
    assert_true(sl_auth_ct_equal(a, b, 31)); /* only n bytes are compared */
}

/* ---- requests built by hand ------------------------------------------- */

static sl_http_request req_with(const char *query, int nheaders, ...)
{
    /* Header storage outlives the returned request: a few requests may be
     * alive at once in one test. */
    static sl_http_header store[8][8];
    static unsigned next;
    sl_http_request r;
    memset(&r, 0, sizeof r);
    r.headers = store[next++ % 8];
    r.header_cap = 8;
    assert_true(nheaders <= 8);
    r.method = SL_HTTP_POST;
    r.path = "/v1/chat/completions";
    r.path_len = strlen(r.path);
    r.query = query ? query : "";
    r.query_len = query ? strlen(query) : 0;
    r.content_length = -1;
    va_list ap;
    va_start(ap, nheaders);
    for (int i = 0; i < nheaders; i++) {
        const char *name = va_arg(ap, const char *);
        const char *value = va_arg(ap, const char *);
        r.headers[i] = (sl_http_header){name, strlen(name), value, strlen(value)};
    }
    va_end(ap);
    r.header_count = (size_t)nheaders;
    return r;
}

/* The presented key as a string ("(null)" when none). */
static const char *presented(const sl_http_request *r)
{
    static char out[256];
    size_t len = 12345;
    const char *p = sl_auth_presented(r, &len);
    if (!p)
        return "(null)";
    assert_true(len < sizeof out);
    memcpy(out, p, len);
    out[len] = '\0';
    return out;
}

static void test_presented_sources(void **state)
{
    sl_http_request r = req_with(NULL, 1, "Authorization", "Bearer sk-abc");
    assert_string_equal(presented(&r), "sk-abc");
    r = req_with(NULL, 1, "authorization", "bearer  sk-spaces");
    assert_string_equal(presented(&r), "sk-spaces");
    r = req_with(NULL, 1, "X-Api-Key", "sk-ant");
    assert_string_equal(presented(&r), "sk-ant");
    r = req_with(NULL, 1, "x-goog-api-key", "goog-key");
    assert_string_equal(presented(&r), "goog-key");
    r = req_with("key=qkey", 0);
    assert_string_equal(presented(&r), "qkey");
    r = req_with("alt=sse&key=qkey2&x=1", 0);
    assert_string_equal(presented(&r), "qkey2");
    r = req_with("alt=sse&key=last", 0);
    assert_string_equal(presented(&r), "last");
}

static void test_presented_precedence(void **state)
{
    /* Authorization beats the API-key headers, which beat the query. */
    sl_http_request r = req_with("key=q", 3, "x-goog-api-key", "g", "x-api-key", "x",
                                 "Authorization", "Bearer b");
    assert_string_equal(presented(&r), "b");
    r = req_with("key=q", 2, "x-goog-api-key", "g", "x-api-key", "x");
    assert_string_equal(presented(&r), "x");
    r = req_with("key=q", 1, "x-goog-api-key", "g");
    assert_string_equal(presented(&r), "g");
    /* A non-Bearer Authorization is not a key; the others still count. */
    r = req_with(NULL, 2, "Authorization", "Basic dXNlcjpwYXNz", "x-api-key", "x");
    assert_string_equal(presented(&r), "x");
}

static void test_presented_absent(void **state)
{
    sl_http_request r = req_with(NULL, 1, "Content-Type", "application/json");
    assert_string_equal(presented(&r), "(null)");
    r = req_with(NULL, 1, "Authorization", "Basic dXNlcjpwYXNz");
    assert_string_equal(presented(&r), "(null)");
    r = req_with(NULL, 1, "Authorization", "Bearer");
    assert_string_equal(presented(&r), "(null)");
    /* Parameters that only look like key=. */
    r = req_with("apikey=x&monkey=y&key=", 0);
    assert_string_equal(presented(&r), "(null)");
    r = req_with("keys=x", 0);
    assert_string_equal(presented(&r), "(null)");
    r = req_with("", 0);
    assert_string_equal(presented(&r), "(null)");
}

static void test_open_table(void **state)
{
    /* unit.yaml has no keys: anyone is served, with key -1, any model. */
    assert_int_equal(sl_spec.key_count, 0);
    assert_int_equal(sl_auth_init(&sl_spec), 0);
    int key = 42;
    sl_http_request r = req_with(NULL, 0);
    assert_int_equal(sl_auth_identify(&sl_spec, &r, "127.0.0.1:5555", &key), SL_AUTH_OK);
    assert_int_equal(key, -1);
    r = req_with(NULL, 1, "Authorization", "Bearer whatever");
    key = 42;
    assert_int_equal(sl_auth_identify(&sl_spec, &r, "127.0.0.1:5555", &key), SL_AUTH_OK);
    assert_int_equal(key, -1);
    for (uint32_t e = 0; e < sl_spec.model_count; e++)
        assert_true(sl_auth_allows(&sl_spec, -1, e));
    assert_false(sl_auth_is_admin(&sl_spec, &r));
    sl_auth_shutdown();
}

/* ---- a keyed table ---------------------------------------------------- */

static sl_key keys[4];
static const uint32_t scopes[] = {2, 4}; /* alice: entries 2 and 4 */
static const sl_cidr cidrs[] = {
    {.family = 4, .prefix = 8, .addr = {10, 0, 0, 0}},
    {.family = 6, .prefix = 33, .addr = {0x20, 0x01, 0x0d, 0xb8, 0x80}}, /* 2001:db8:8000::/33 */
};
static sl_table keyed;

static int no_match(const char *name, size_t len) { return -1; }

static int setup_keyed(void **state)
{
    memset(keys, 0, sizeof keys);
    keys[0] = (sl_key){.name = "alice", .team = -1, .all_models = 0, .scope_first = 0,
                       .scope_count = 2};
    sl_auth_sha256("sk-alice", 8, keys[0].hash);
    keys[1] = (sl_key){.name = "old", .team = -1, .all_models = 1, .expires_unix = 1000000000};
    sl_auth_sha256("sk-old", 6, keys[1].hash);
    keys[2] = (sl_key){.name = "office", .team = -1, .all_models = 1, .cidr_first = 0,
                       .cidr_count = 2};
    sl_auth_sha256("sk-office", 9, keys[2].hash);
    keys[3] = (sl_key){.name = "future", .team = -1, .all_models = 1,
                       .expires_unix = 4102444800}; /* 2100-01-01 */
    sl_auth_sha256("sk-future", 9, keys[3].hash);
    memset(&keyed, 0, sizeof keyed);
    keyed.abi = SL_TABLE_ABI;
    keyed.keys = keys;
    keyed.key_count = 4;
    keyed.scopes = scopes;
    keyed.scope_count = 2;
    keyed.cidrs = cidrs;
    keyed.cidr_count = 2;
    keyed.model_count = 5;
    keyed.match_model = no_match;
    keyed.has_admin = 1;
    sl_auth_sha256("sk-admin", 8, keyed.admin_hash);
    return sl_auth_init(&keyed);
}

static int teardown_keyed(void **state)
{
    sl_auth_shutdown();
    return 0;
}

static sl_auth_status identify(const char *auth_header, const char *peer, int *key)
{
    sl_http_request r = auth_header ? req_with(NULL, 1, "x-api-key", auth_header) : req_with(NULL, 0);
    *key = 99;
    return sl_auth_identify(&keyed, &r, peer, key);
}

static void test_keyed_missing_unknown(void **state)
{
    int key;
    assert_int_equal(identify(NULL, "10.1.2.3:1", &key), SL_AUTH_MISSING);
    assert_int_equal(key, -1);
    assert_int_equal(identify("", "10.1.2.3:1", &key), SL_AUTH_MISSING);
    assert_int_equal(identify("sk-nobody", "10.1.2.3:1", &key), SL_AUTH_UNKNOWN);
    assert_int_equal(key, -1);
    /* Prefixes and extensions of a real key are different keys. */
    assert_int_equal(identify("sk-alic", "10.1.2.3:1", &key), SL_AUTH_UNKNOWN);
    assert_int_equal(identify("sk-alicee", "10.1.2.3:1", &key), SL_AUTH_UNKNOWN);
    assert_int_equal(identify("SK-ALICE", "10.1.2.3:1", &key), SL_AUTH_UNKNOWN);
}

static void test_keyed_ok_every_key_found(void **state)
{
    int key;
    assert_int_equal(identify("sk-alice", "192.168.1.1:40000", &key), SL_AUTH_OK);
    assert_int_equal(key, 0);
    assert_int_equal(identify("sk-future", "[::1]:40000", &key), SL_AUTH_OK);
    assert_int_equal(key, 3);
    /* Whatever the sort order of hashes, each key is found by the index. */
    sl_http_request r = req_with(NULL, 1, "Authorization", "Bearer sk-alice");
    assert_int_equal(sl_auth_identify(&keyed, &r, "127.0.0.1:1", &key), SL_AUTH_OK);
    assert_int_equal(key, 0);
    r = req_with("key=sk-future", 0);
    assert_int_equal(sl_auth_identify(&keyed, &r, "127.0.0.1:1", &key), SL_AUTH_OK);
    assert_int_equal(key, 3);
}

static void test_keyed_expired(void **state)
{
    int key;
    assert_int_equal(identify("sk-old", "10.1.2.3:1", &key), SL_AUTH_EXPIRED);
    assert_int_equal(key, -1);
}

static void test_keyed_address(void **state)
{
    int key;
    assert_int_equal(identify("sk-office", "10.200.3.4:5000", &key), SL_AUTH_OK);
    assert_int_equal(key, 2);
    assert_int_equal(identify("sk-office", "10.0.0.0:1", &key), SL_AUTH_OK);
    assert_int_equal(identify("sk-office", "10.255.255.255:1", &key), SL_AUTH_OK);
    assert_int_equal(identify("sk-office", "11.0.0.1:5000", &key), SL_AUTH_ADDRESS);
    assert_int_equal(key, -1);
    assert_int_equal(identify("sk-office", "9.255.255.255:1", &key), SL_AUTH_ADDRESS);
    assert_int_equal(identify("sk-office", "127.0.0.1:5000", &key), SL_AUTH_ADDRESS);
    /* IPv6 with a prefix that is not a whole number of bytes. */
    assert_int_equal(identify("sk-office", "[2001:db8:8000::1]:443", &key), SL_AUTH_OK);
    assert_int_equal(identify("sk-office", "[2001:db8:ffff::1]:443", &key), SL_AUTH_OK);
    assert_int_equal(identify("sk-office", "[2001:db8:7fff::1]:443", &key), SL_AUTH_ADDRESS);
    assert_int_equal(identify("sk-office", "[::1]:443", &key), SL_AUTH_ADDRESS);
    /* Garbage peers never pass a restriction. */
    assert_int_equal(identify("sk-office", "unix", &key), SL_AUTH_ADDRESS);
    assert_int_equal(identify("sk-office", "", &key), SL_AUTH_ADDRESS);
    assert_int_equal(identify("sk-office", "[10.1.2.3", &key), SL_AUTH_ADDRESS);
    /* Unrestricted keys do not care where the client is. */
    assert_int_equal(identify("sk-alice", "unix", &key), SL_AUTH_OK);
}

static void test_keyed_scopes(void **state)
{
    /* alice: entries 2 and 4 only. */
    assert_false(sl_auth_allows(&keyed, 0, 0));
    assert_false(sl_auth_allows(&keyed, 0, 1));
    assert_true(sl_auth_allows(&keyed, 0, 2));
    assert_false(sl_auth_allows(&keyed, 0, 3));
    assert_true(sl_auth_allows(&keyed, 0, 4));
    /* all_models keys may use everything; -1 is the open gateway. */
    for (uint32_t e = 0; e < 5; e++) {
        assert_true(sl_auth_allows(&keyed, 2, e));
        assert_true(sl_auth_allows(&keyed, -1, e));
    }
}

static void test_keyed_admin(void **state)
{
    sl_http_request r = req_with(NULL, 1, "Authorization", "Bearer sk-admin");
    assert_true(sl_auth_is_admin(&keyed, &r));
    r = req_with(NULL, 1, "Authorization", "Bearer sk-alice");
    assert_false(sl_auth_is_admin(&keyed, &r));
    r = req_with(NULL, 0);
    assert_false(sl_auth_is_admin(&keyed, &r));
    /* The admin key is not a client key. */
    int key;
    assert_int_equal(identify("sk-admin", "10.1.2.3:1", &key), SL_AUTH_UNKNOWN);
}

static void test_single_key_table(void **state)
{
    /* Index of one: the binary search's only slot must still be checked. */
    sl_table one = keyed;
    one.keys = &keys[3];
    one.key_count = 1;
    assert_int_equal(sl_auth_init(&one), 0);
    int key;
    sl_http_request r = req_with(NULL, 1, "x-api-key", "sk-future");
    assert_int_equal(sl_auth_identify(&one, &r, "127.0.0.1:1", &key), SL_AUTH_OK);
    assert_int_equal(key, 0);
    r = req_with(NULL, 1, "x-api-key", "sk-alice");
    assert_int_equal(sl_auth_identify(&one, &r, "127.0.0.1:1", &key), SL_AUTH_UNKNOWN);
    /* Back to the four-key index for the other tests. */
    assert_int_equal(sl_auth_init(&keyed), 0);
}

int main(void)
{
    const struct CMUnitTest plain[] = {
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_ct_equal),
        cmocka_unit_test(test_presented_sources),
        cmocka_unit_test(test_presented_precedence),
        cmocka_unit_test(test_presented_absent),
        cmocka_unit_test(test_open_table),
    };
    const struct CMUnitTest with_keys[] = {
        cmocka_unit_test(test_keyed_missing_unknown),
        cmocka_unit_test(test_keyed_ok_every_key_found),
        cmocka_unit_test(test_keyed_expired),
        cmocka_unit_test(test_keyed_address),
        cmocka_unit_test(test_keyed_scopes),
        cmocka_unit_test(test_keyed_admin),
        cmocka_unit_test(test_single_key_table),
    };
    int failed = cmocka_run_group_tests_name("auth", plain, NULL, NULL);
    failed += cmocka_run_group_tests_name("auth_keyed", with_keys, setup_keyed, teardown_keyed);
    return failed;
}
