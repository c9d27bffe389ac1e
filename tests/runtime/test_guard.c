/*
 * Guardrails (runtime/guard): every built-in detector against golden true
 * positives and near misses (checksums that fail, shapes one character
 * off, neighbours that make a match part of a longer token), each action,
 * placeholders and restore, the incremental stream scan with a match split
 * over two pieces, and the JSON body filter. The scanners are the ones
 * sluicec generated from guard.yaml next to this file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "guard/guard.h"
#include "table.h"

enum { REDACT = 1u << 0, DENY = 1u << 1, LOG = 1u << 2 };

static const sl_guard_spec *spec(void)
{
    return sl_spec.guard;
}

/* The request text after rails `mask`; NULL when blocked. */
static char *run(sl_guard_req *g, sl_guard_dir dir, const char *in)
{
    sl_buf out = {0};
    size_t used;
    int rc = sl_guard_text(g, dir, in, strlen(in), 1, &out, &used);
    assert_int_not_equal(rc, -1);
    if (rc == 1) {
        sl_buf_free(&out);
        return NULL;
    }
    assert_int_equal(used, strlen(in));
    char *s = strndup(out.data ? out.data : "", out.len);
    sl_buf_free(&out);
    return s;
}

static void expect(const char *in, const char *want)
{
    sl_guard_req *g = sl_guard_req_new(spec(), REDACT);
    char *got = run(g, SL_GUARD_REQUEST, in);
    if (!got || strcmp(got, want) != 0)
        fail_msg("in:   %s\nwant: %s\ngot:  %s", in, want, got ? got : "(blocked)");
    free(got);
    sl_guard_req_free(g);
}

static void untouched(const char *in)
{
    expect(in, in);
}

static void test_email(void **state)
{
    (void)state;
    expect("write to alice.smith+tag@mail.example.co.uk today", "write to [EMAIL_1] today");
    expect("<bob@example.com>.", "<[EMAIL_1]>.");
    untouched("alice@localhost");
    untouched("a@b.c");
    untouched("no at sign here.com");
}

static void test_phone(void **state)
{
    (void)state;
    expect("call +1 415 555 2671 now", "call [PHONE_1] now");
    expect("call +14155552671", "call [PHONE_1]");
    expect("US (415) 555-2671", "US [PHONE_1]");
    expect("US 415-555-2671", "US [PHONE_1]");
    expect("UK +44 20 7946 0958", "UK [PHONE_1]");
    expect("UK 020 7946 0958", "UK [PHONE_1]");
    expect("DE +49 (30) 901820", "DE [PHONE_1]");
    untouched("call 555-2671");
    untouched("version 1.2.3 of 2024-01-15");
    untouched("+12345");
    untouched("order 415-555-26710");
}

static void test_card(void **state)
{
    (void)state;
    expect("card 4111 1111 1111 1111 ok", "card [CARD_1] ok");
    expect("card 4111-1111-1111-1111", "card [CARD_1]");
    expect("card 4111111111111111", "card [CARD_1]");
    expect("amex 378282246310005.", "amex [CARD_1].");
    untouched("card 4111 1111 1111 1112 fails Luhn");
    untouched("id 41111111111111111111 is 20 digits");
    untouched("ref X4111111111111111");
    untouched("acct 3704 0044 0532 0130 01 (passes Luhn, not grouped like a card)");
}

static void test_iban(void **state)
{
    (void)state;
    expect("IBAN DE89 3704 0044 0532 0130 00 please", "IBAN [IBAN_1] please");
    expect("GB82WEST12345698765432", "[IBAN_1]");
    expect("DE89370400440532013000 AND more", "[IBAN_1] AND more");
    untouched("IBAN DE89 3704 0044 0532 0130 01 has a bad checksum");
    untouched("GB82WEST12345698765433");
    assert_true(sl_guard_iban_ok((const unsigned char *)"FR1420041010050500013M02606", 27));
    assert_false(sl_guard_iban_ok((const unsigned char *)"FR1420041010050500013M02607", 27));
}

static void test_ssn(void **state)
{
    (void)state;
    expect("SSN 123-45-6789.", "SSN [SSN_1].");
    untouched("000-12-3456");
    untouched("666-12-3456");
    untouched("923-12-3456");
    untouched("123-00-6789");
    untouched("123-45-0000");
    untouched("123-45-67890");
}

static void test_ip(void **state)
{
    (void)state;
    expect("host 192.168.1.20, gw 10.0.0.1", "host [IPV4_1], gw [IPV4_2]");
    untouched("999.1.1.1");
    untouched("1.2.3");
    untouched("1.2.3.4.5");
    expect("v6 2001:db8::8a2e:370:7334 up", "v6 [IPV6_1] up");
    expect("fe80::1ff:fe23:4567:890a", "[IPV6_1]");
    expect("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "[IPV6_1]");
    untouched("std::vector<int> at 12:30:45, ::1");
    untouched("mac 00:1a:2b:3c:4d:5e");
}

static void test_secrets(void **state)
{
    (void)state;
    expect("key sk-proj-abc123DEF456ghi789JKL012xyz", "key [SECRET_1]");
    expect("key=sk-ant-api03-abcdefghij0123456789_XYZ", "key=[SECRET_1]");
    expect("aws AKIAIOSFODNN7EXAMPLE ok", "aws [SECRET_1] ok");
    expect("gh ghp_abcdefghijklmnopqrstuvwxyz0123456789", "gh [SECRET_1]");
    expect("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk.",
           "jwt [SECRET_1].");
    expect("x -----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\nabc\n-----END RSA PRIVATE KEY----- y",
           "x [SECRET_1] y");
    untouched("task-management-system-design-doc");
    untouched("sk-short1");
    untouched("sk-this-is-a-long-hyphenated-phrase");
    untouched("AKIAIOSFODNN7EXAMPLEX");
    untouched("ghp_tooshort123");
}

static void test_same_value_same_placeholder(void **state)
{
    (void)state;
    expect("a@x.com b@x.com a@x.com 4111111111111111", "[EMAIL_1] [EMAIL_2] [EMAIL_1] [CARD_1]");
}

static void test_restore(void **state)
{
    (void)state;
    sl_guard_req *g = sl_guard_req_new(spec(), REDACT);
    char *r = run(g, SL_GUARD_REQUEST, "from a@x.com to b@x.com");
    assert_string_equal(r, "from [EMAIL_1] to [EMAIL_2]");
    free(r);
    /* the answer: known placeholders back, unknown ones left, and new PII
     * in the answer itself redacted (response action redact) */
    r = run(g, SL_GUARD_RESPONSE, "[EMAIL_2] wrote to [EMAIL_1]; [EMAIL_9] and [CARD_1] are not ours, c@x.com is new");
    assert_string_equal(r, "b@x.com wrote to a@x.com; [EMAIL_9] and [CARD_1] are not ours, [EMAIL_3] is new");
    free(r);
    sl_guard_req_free(g);
}

static void test_block_never_echoes(void **state)
{
    (void)state;
    static const char *const blocked[] = {"about Project Falcon", "see ACME-1234", "this is TOP \t SECRET",
                                          "xababcdy", "go 123!"};
    static const char *const fine[] = {"about project falcon", "acme-123", "top-secret", "xy", "go ab1!"};
    for (size_t i = 0; i < 5; i++) {
        sl_guard_req *g = sl_guard_req_new(spec(), DENY);
        assert_null(run(g, SL_GUARD_REQUEST, blocked[i]));
        const char *m = sl_guard_message(g);
        assert_non_null(strstr(m, "guardrail 'deny'"));
        assert_non_null(strstr(m, "deny pattern"));
        assert_null(strstr(m, "Falcon"));
        assert_null(strstr(m, "1234"));
        assert_true(sl_guard_fired(g) & (1u << SL_GDET_COUNT));
        sl_guard_req_free(g);
        g = sl_guard_req_new(spec(), DENY);
        char *r = run(g, SL_GUARD_REQUEST, fine[i]);
        assert_non_null(r);
        assert_string_equal(r, fine[i]);
        free(r);
        sl_guard_req_free(g);
    }
}

static void test_log_counts(void **state)
{
    (void)state;
    uint64_t before = sl_guard_hits(2, SL_GDET_EMAIL, SL_GUARD_REQUEST);
    sl_guard_req *g = sl_guard_req_new(spec(), LOG);
    char *r = run(g, SL_GUARD_REQUEST, "mail a@b.com and c@d.org");
    assert_string_equal(r, "mail a@b.com and c@d.org");
    free(r);
    assert_int_equal(sl_guard_hits(2, SL_GDET_EMAIL, SL_GUARD_REQUEST), before + 2);
    assert_int_equal(sl_guard_fired(g), 1u << SL_GDET_EMAIL);
    char names[64];
    spec()->ops->ledger(g, names, sizeof names);
    assert_string_equal(names, "email");
    assert_true(sl_guard_active(g, SL_GUARD_RESPONSE)); /* action: applies both ways */
    assert_false(sl_guard_rewrites(g, SL_GUARD_RESPONSE));
    sl_guard_req_free(g);
}

/* A stream: pieces arrive, undecided text is held and fed again. */
static char *stream(sl_guard_req *g, sl_guard_dir dir, const char *const *pieces, size_t n, size_t *max_held)
{
    sl_buf held = {0}, all = {0};
    *max_held = 0;
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(sl_buf_append(&held, pieces[i], strlen(pieces[i])), 0);
        size_t used;
        int rc = sl_guard_text(g, dir, held.data, held.len, i + 1 == n, &all, &used);
        if (rc == 1) {
            sl_buf_free(&held);
            sl_buf_free(&all);
            return NULL;
        }
        assert_int_equal(rc, 0);
        memmove(held.data, held.data + used, held.len - used);
        held.len -= used;
        if (held.len > *max_held)
            *max_held = held.len;
    }
    assert_int_equal(held.len, 0);
    char *s = strndup(all.data ? all.data : "", all.len);
    sl_buf_free(&held);
    sl_buf_free(&all);
    return s;
}

static void test_stream_split_match(void **state)
{
    (void)state;
    static const char *const card[] = {"pay with 4111 11", "11 1111 1111 today, mail bo", "b@example.com", "."};
    sl_guard_req *g = sl_guard_req_new(spec(), REDACT);
    size_t held;
    char *r = stream(g, SL_GUARD_RESPONSE, card, 4, &held);
    assert_string_equal(r, "pay with [CARD_1] today, mail [EMAIL_1].");
    assert_true(held <= SL_GUARD_WINDOW);
    free(r);
    /* a placeholder cut in two is restored whole */
    static const char *const ph[] = {"hi [EMA", "IL_1] there"};
    r = stream(g, SL_GUARD_RESPONSE, ph, 2, &held);
    assert_string_equal(r, "hi bob@example.com there");
    free(r);
    sl_guard_req_free(g);
    /* block: the match spans pieces, and nothing after it is released */
    static const char *const deny[] = {"the Project Fal", "con plan"};
    g = sl_guard_req_new(spec(), DENY);
    assert_null(stream(g, SL_GUARD_RESPONSE, deny, 2, &held));
    sl_guard_req_free(g);
}

static void test_stream_holdback_bounded(void **state)
{
    (void)state;
    /* an endless run of local-part characters: held at most a window */
    char big[4000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    const char *const pieces[] = {big, big, "!"};
    sl_guard_req *g = sl_guard_req_new(spec(), REDACT);
    size_t held;
    char *r = stream(g, SL_GUARD_RESPONSE, pieces, 3, &held);
    assert_true(held <= SL_GUARD_WINDOW);
    assert_int_equal(strlen(r), 2 * (sizeof big - 1) + 1);
    free(r);
    sl_guard_req_free(g);
}

static void test_luhn(void **state)
{
    (void)state;
    assert_true(sl_guard_luhn((const unsigned char *)"4111 1111 1111 1111", 19));
    assert_true(sl_guard_luhn((const unsigned char *)"79927398713", 11));
    assert_false(sl_guard_luhn((const unsigned char *)"79927398710", 11));
    assert_false(sl_guard_luhn((const unsigned char *)"", 0));
}

static void test_body(void **state)
{
    (void)state;
    sl_guard_req *g = sl_guard_req_new(spec(), REDACT);
    char *r = run(g, SL_GUARD_REQUEST, "mine is a@x.com");
    free(r);
    const char *in = "{\"id\":\"chatcmpl-a@x.com\",\"model\":\"m\",\"choices\":[{\"message\":{\"role\":\"assistant\","
                     "\"content\":\"ok [EMAIL_1], call 415-555-2671\",\"tool_calls\":[{\"id\":\"c1\",\"function\":"
                     "{\"name\":\"f\",\"arguments\":\"{\\\"to\\\":\\\"[EMAIL_1]\\\"}\"}}]}}]}";
    char *body = strdup(in);
    size_t len = strlen(body);
    char msg[128];
    assert_int_equal(spec()->ops->body(g, &body, &len, msg, sizeof msg), 0);
    assert_non_null(strstr(body, "\"content\":\"ok a@x.com, call [PHONE_1]\""));
    assert_non_null(strstr(body, "\\\"to\\\":\\\"a@x.com\\\""));
    assert_non_null(strstr(body, "\"id\":\"chatcmpl-a@x.com\"")); /* ids are not text */
    assert_int_equal(len, strlen(body));
    free(body);
    /* no depth at which text goes unscanned */
    size_t depth = 1500;
    body = malloc(2 * depth + 16);
    memset(body, '[', depth);
    memcpy(body + depth, "\"z@x.com\"", 9);
    memset(body + depth + 9, ']', depth);
    body[2 * depth + 9] = '\0';
    len = strlen(body);
    assert_int_equal(spec()->ops->body(g, &body, &len, msg, sizeof msg), 0);
    assert_non_null(strstr(body, "\"[EMAIL_2]\""));
    assert_null(strstr(body, "z@x.com"));
    free(body);
    sl_guard_req_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_email),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_iban),
        cmocka_unit_test(test_ssn),
        cmocka_unit_test(test_ip),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_same_value_same_placeholder),
        cmocka_unit_test(test_restore),
        cmocka_unit_test(test_block_never_echoes),
        cmocka_unit_test(test_log_counts),
        cmocka_unit_test(test_stream_split_match),
        cmocka_unit_test(test_stream_holdback_bounded),
        cmocka_unit_test(test_luhn),
        cmocka_unit_test(test_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
