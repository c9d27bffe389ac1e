/*
 * Code generation: escaping for C and re2c, rule order in the matcher,
 * determinism, and the shape of the table.
 */
#include "emit.h"
#include "helpers.h"

static char *c_string(const char *s, size_t len)
{
    slc_buf b = {0};
    slc_emit_c_string(&b, s, len);
    return b.p;
}

static char *pattern(const char *name)
{
    slc_buf b = {0};
    slc_emit_re2c_pattern(&b, name);
    return b.p;
}

static void c_strings(void **state)
{
    char *s = c_string("a\"b\\c", 5);
    assert_string_equal(s, "\"a\\\"b\\\\c\"");
    free(s);
    s = c_string("\n\x01" "9\xc3\xa9", 5);
    assert_string_equal(s, "\"\\012\\0019\\303\\251\"");
    free(s);
    s = c_string("?\?=", 3);
    assert_string_equal(s, "\"\\?\\?=\"");
    free(s);
}

static void re2c_patterns(void **state)
{
    char *p = pattern("gpt-4o");
    assert_string_equal(p, "\"gpt-4o\" \"\\x00\"");
    free(p);
    p = pattern("claude-*");
    assert_string_equal(p, "\"claude-\" [^\\x00]* \"\\x00\"");
    free(p);
    p = pattern("a?b");
    assert_string_equal(p, "\"a\" [^\\x00] \"b\" \"\\x00\"");
    free(p);
    p = pattern("*");
    assert_string_equal(p, "[^\\x00]* \"\\x00\"");
    free(p);
    p = pattern("q\"\\\xc3\xa9");
    assert_string_equal(p, "\"q\\x22\\x5C\\xC3\\xA9\" \"\\x00\"");
    free(p);
}

static char *emit(compiled *c, int which)
{
    slc_buf b = {0};
    if (which)
        slc_emit_models_re(c->spec, "00", &b);
    else
        slc_emit_table(c->spec, "00", &b);
    return b.p;
}

static void rule_order(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  \"*\": { targets: [demo] }\n"
                                        "  \"c-*\": { targets: [demo] }\n  exact: { targets: [demo] }\n"
                                        "  \"c-3-*\": { targets: [demo] }\n  \"d-*\": { targets: [demo] }\n");
    assert_clean(c);
    char *re = emit(c, 1);
    /* The exact name is in the hash table (entry 2, offset 0, length 5),
     * which is consulted before the DFA of globs. */
    const char *exact = strstr(re, ", 2, 0, 5},");
    assert_non_null(strstr(re, "static const char names[6] =\n        \"exact\";"));
    const char *call = strstr(re, "int exact = match_exact(name, len);");
    assert_true(call && exact && exact < call && call < strstr(re, "/*!re2c"));
    const char *c3 = strstr(re, "\"c-3-\" [^\\x00]* \"\\x00\" { return 3; }");
    const char *cx = strstr(re, "\"c-\" [^\\x00]* \"\\x00\" { return 1; }");
    const char *dx = strstr(re, "\"d-\" [^\\x00]* \"\\x00\" { return 4; }");
    const char *all = strstr(re, "[^\\x00]* \"\\x00\" { return 0; }");
    const char *def = strstr(re, "* { return -1; }");
    assert_true(c3 && cx && dx && all && def);
    assert_null(strstr(re, "\"exact\" \"\\x00\""));
    assert_true(c3 < cx && cx < dx && dx < all && all < def);
    assert_non_null(strstr(re, "re2c:yyfill:enable = 0;"));
    assert_non_null(strstr(re, "int sl_spec_match_model(const char *name, size_t len)"));
    free(re);
    compiled_free(c);
}

static void shadowed_globs_are_left_out(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  \"a*\": { targets: [demo] }\n"
                                        "  \"a*z\": { targets: [demo] }\n");
    char *re = emit(c, 1);
    assert_null(strstr(re, "return 1;"));
    free(re);
    char *table = emit(c, 0);
    assert_non_null(strstr(table, ".name = \"a*z\""));
    free(table);
    compiled_free(c);
}

/* The TLS module is referenced only from tables of specs with `tls:`, so
 * only those gateways link it; the key file's path is compiled in, never
 * its contents. */
static void tls_table(void **state)
{
    compiled *c = compile_str("sluice: 1\nlisten: 127.0.0.1:4443\n"
                              "tls: { cert: certs/chain.pem, key: certs/server.key }\n"
                              "listen_plain: 127.0.0.1:4001\nproviders:\n  m: { kind: mock }\n"
                              "models:\n  x: { targets: [m] }\n");
    assert_clean(c);
    char *t = emit(c, 0);
    assert_non_null(strstr(t, ".cert = \"certs/chain.pem\""));
    assert_non_null(strstr(t, ".key = \"certs/server.key\""));
    assert_non_null(strstr(t, ".ops = &sl_tls_server_ops"));
    assert_non_null(strstr(t, ".tls = &sl_spec_tls"));
    assert_non_null(strstr(t, ".listen_plain = \"127.0.0.1:4001\""));
    free(t);
    compiled_free(c);
    c = compile_str("sluice: 1\nproviders:\n  m: { kind: mock }\nmodels:\n  x: { targets: [m] }\n");
    t = emit(c, 0);
    assert_null(strstr(t, "sl_tls_server_ops"));
    assert_non_null(strstr(t, ".tls = NULL"));
    free(t);
    compiled_free(c);
}

static void telemetry_emitted(void **state)
{
    (void)state;
    compiled *c = compile_str("sluice: 1\nproviders:\n  d: { kind: mock }\n"
                              "models:\n  m: { targets: [d] }\n"
                              "telemetry: { otlp: \"http://127.0.0.1:4318/\" }\n");
    assert_clean(c);
    char *t = emit(c, 0);
    assert_non_null(strstr(t, ".otlp_url = \"http://127.0.0.1:4318\", .service_name = \"sluice\","));
    free(t);
    compiled_free(c);
}

static void table_shape(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai, api_key: env:K }\n"
                              "models:\n  m: { targets: [\"o/x\"] }\n"
                              "prices:\n  o/x: { input: 0.30 }\n");
    assert_clean(c);
    char *t = emit(c, 0);
    assert_non_null(strstr(t, "#include \"table.h\""));
    char abi[64];
    snprintf(abi, sizeof abi, "_Static_assert(SL_TABLE_ABI == %d,", SL_TABLE_ABI);
    assert_non_null(strstr(t, abi));
    assert_non_null(strstr(t, ".otlp_url = NULL, .service_name = NULL,"));
    assert_non_null(strstr(t, ".api_key_env = \"K\""));
    assert_non_null(strstr(t, "{.provider = 0, .model = \"x\", .weight = 1}"));
    assert_non_null(strstr(t, ".input = 300000,"));
    assert_non_null(strstr(t, ".keys = NULL, .key_count = 0,"));
    assert_non_null(strstr(t, ".spec_sha256 = \"00\""));
    assert_non_null(strstr(t, ".match_model = sl_spec_match_model,"));
    assert_null(strstr(t, "/tmp"));
    /* Same input, same bytes. */
    char *again = emit(c, 0);
    assert_string_equal(t, again);
    free(again);
    free(t);
    compiled_free(c);
}

static void sha256(void **state)
{
    char hex[65];
    slc_sha256_hex("", 0, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    slc_sha256_hex("abc", 3, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(c_strings),   cmocka_unit_test(re2c_patterns),
        cmocka_unit_test(rule_order),  cmocka_unit_test(shadowed_globs_are_left_out),
        cmocka_unit_test(table_shape),
        cmocka_unit_test(tls_table), cmocka_unit_test(telemetry_emitted), cmocka_unit_test(sha256),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
