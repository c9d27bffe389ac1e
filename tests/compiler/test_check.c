/*
 * Semantic rules and reference resolution, plus the glob and suggestion
 * helpers they rest on.
 */
#include "catalog.h"
#include "check.h"
#include "table.h"
#include "glob.h"
#include "helpers.h"
#include "suggest.h"

static void suggestions(void **state)
{
    const char *const names[] = {"local", "smart", "targets"};
    assert_string_equal(slc_suggest("locl", names, 3), "local");
    assert_string_equal(slc_suggest("taregts", names, 3), "targets");
    assert_null(slc_suggest("zzzzzz", names, 3));
    assert_null(slc_suggest("local", names, 3)); /* identical is no typo */
    assert_int_equal(slc_edit_distance("ab", 2, "ba", 2), 1);
    assert_int_equal(slc_edit_distance("", 0, "abc", 3), 3);
}

static void globs(void **state)
{
    assert_true(slc_glob_match("claude-*", "claude-3-opus"));
    assert_true(slc_glob_match("claude-*", "claude-"));
    assert_false(slc_glob_match("claude-*", "claude"));
    assert_true(slc_glob_match("a?c", "abc"));
    assert_false(slc_glob_match("a?c", "ac"));
    assert_true(slc_glob_match("*-mini", "gpt-4o-mini"));
    assert_int_equal(slc_glob_prefix_len("claude-3-*"), 9);
    assert_int_equal(slc_glob_prefix_len("*"), 0);
    assert_true(slc_glob_covers("claude-*", "claude-*-latest"));
    assert_true(slc_glob_covers("*", "a?b*"));
    assert_true(slc_glob_covers("a*", "abc"));
    assert_true(slc_glob_covers("a?*", "ab*"));
    assert_false(slc_glob_covers("a?", "a*"));
    assert_false(slc_glob_covers("claude-3-*", "claude-*"));
    assert_true(slc_glob_overlap("*-mini*", "*-latest"));
    assert_false(slc_glob_overlap("a*", "b*"));
    assert_false(slc_glob_overlap("*-mini", "*-latest"));
    assert_true(slc_glob_overlap("a?c", "*c"));
}

static void listen_parse(void **state)
{
    slc_listen l;
    assert_int_equal(slc_parse_listen("127.0.0.1:4000", &l), 0);
    assert_int_equal(l.port, 4000);
    assert_true(l.loopback);
    assert_int_equal(slc_parse_listen("127.3.2.1:1", &l), 0);
    assert_true(l.loopback);
    assert_int_equal(slc_parse_listen("[::1]:80", &l), 0);
    assert_true(l.loopback);
    assert_string_equal(l.host, "::1");
    assert_int_equal(slc_parse_listen("localhost:8080", &l), 0);
    assert_true(l.loopback);
    assert_int_equal(slc_parse_listen("0.0.0.0:4000", &l), 0);
    assert_false(l.loopback);
    assert_int_equal(slc_parse_listen("[::]:4000", &l), 0);
    assert_false(l.loopback);
    assert_int_equal(slc_parse_listen("gw.internal:443", &l), 0);
    assert_false(l.loopback);
    assert_int_equal(slc_parse_listen("::1:4000", &l), -1);
    assert_int_equal(slc_parse_listen("127.0.0.1", &l), -1);
    assert_int_equal(slc_parse_listen(":4000", &l), -1);
    assert_int_equal(slc_parse_listen("h:0", &l), -1);
    assert_int_equal(slc_parse_listen("h:65536", &l), -1);
    assert_int_equal(slc_parse_listen("[nope]:1", &l), -1);
}

static void cidr_parse(void **state)
{
    uint8_t fam, prefix, addr[16];
    assert_int_equal(slc_parse_cidr("10.0.0.0/8", &fam, &prefix, addr), 0);
    assert_int_equal(fam, 4);
    assert_int_equal(prefix, 8);
    assert_int_equal(addr[0], 10);
    assert_int_equal(slc_parse_cidr("192.168.1.7/24", &fam, &prefix, addr), 1);
    assert_int_equal(addr[3], 0);
    assert_int_equal(slc_parse_cidr("192.168.1.7", &fam, &prefix, addr), 0);
    assert_int_equal(prefix, 32);
    assert_int_equal(slc_parse_cidr("2001:db8::/32", &fam, &prefix, addr), 0);
    assert_int_equal(fam, 6);
    assert_int_equal(addr[1], 0x01);
    assert_int_equal(slc_parse_cidr("::1", &fam, &prefix, addr), 0);
    assert_int_equal(prefix, 128);
    assert_int_equal(slc_parse_cidr("10.0.0.0/33", &fam, &prefix, addr), -1);
    assert_int_equal(slc_parse_cidr("300.0.0.0", &fam, &prefix, addr), -1);
    assert_int_equal(slc_parse_cidr("10.0.0.0/", &fam, &prefix, addr), -1);
    assert_int_equal(slc_parse_cidr("/8", &fam, &prefix, addr), -1);
}

static void references(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  openai: { kind: openai }\n"
                              "  ollama: { kind: openai, base_url: http://127.0.0.1:11434/v1 }\n"
                              "models:\n  smart: { targets: [opnai], fallbacks: [locl] }\n"
                              "  local: { targets: [ollama] }\n");
    assert_error(c, "model 'smart' targets unknown provider 'opnai' (did you mean 'openai'?)");
    assert_error(c, "model 'smart' falls back to unknown model 'locl' (did you mean 'local'?)");
    compiled_free(c);
}

static void cycles(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  a: { targets: [demo], fallbacks: [b] }\n"
                                        "  b: { targets: [demo], fallbacks: [a] }\n"
                                        "  s: { targets: [demo], fallbacks: [s] }\n");
    assert_error(c, "fallback cycle: a -> b -> a");
    assert_error(c, "model 's' falls back to itself");
    assert_int_equal(slc_diags_errors(c->diags), 2);
    compiled_free(c);
    /* A diamond is not a cycle. */
    c = compile_str(SPEC_HEAD "models:\n  a: { targets: [demo], fallbacks: [b, c] }\n"
                              "  b: { targets: [demo], fallbacks: [d] }\n"
                              "  c: { targets: [demo], fallbacks: [d] }\n  d: { targets: [demo] }\n");
    assert_clean(c);
    compiled_free(c);
}

static void providers(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n"
                              "  o: { kind: openai }\n  a: { kind: anthropic }\n"
                              "  g: { kind: gemini, base_url: 'https://g.example//' }\n"
                              "  m: { kind: mock }\n"
                              "models:\n  x: { targets: [o, a, g, m] }\n");
    assert_clean(c);
    slc_spec *s = c->spec;
    assert_string_equal(s->providers[0].base_url.s, "https://api.openai.com/v1");
    assert_string_equal(s->providers[1].base_url.s, "https://api.anthropic.com");
    assert_string_equal(s->providers[2].base_url.s, "https://g.example");
    assert_string_equal(s->providers[3].base_url.s, "");
    assert_null(s->providers[0].api_key_env);
    compiled_free(c);
}

static void secrets(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai, api_key: sk-live-123 }\n"
                              "models:\n  x: { targets: [o] }\n");
    assert_error(c, "provider 'o': api_key must be env:NAME or file:PATH; a literal secret does not belong in the spec");
    slc_severity sev;
    const char *m;
    for (size_t i = 0; (m = slc_diags_message(c->diags, i, &sev, NULL)); i++)
        assert_null(strstr(m, "sk-live"));
    compiled_free(c);
    c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai, api_key: env:OPENAI_KEY }\n"
                    "models:\n  x: { targets: [o] }\n");
    assert_clean(c);
    assert_string_equal(c->spec->providers[0].api_key_env, "OPENAI_KEY");
    compiled_free(c);
}

static void weights_and_attempts(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m:\n    targets: [{ provider: demo, weight: 0 }]\n"
                                        "    retry: { attempts: 11 }\n");
    assert_error(c, "has weight 0; weights must be at least 1");
    assert_error(c, "retry attempts 11 in model 'm' is out of range 0..10");
    compiled_free(c);
}

#define HASH1 "sha256:1111111111111111111111111111111111111111111111111111111111111111"
#define HASH2 "sha256:2222222222222222222222222222222222222222222222222222222222222222"

static void keys_and_scopes(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  smart: { targets: [demo] }\n"
                                        "  \"claude-*\": { targets: [demo] }\n"
                                        "  \"claude-3-*\": { targets: [demo] }\n  other: { targets: [demo] }\n"
                                        "teams:\n  t: { budget: { usd: 10, per: day } }\n"
                                        "keys:\n  k:\n    hash: " HASH1 "\n    team: t\n"
                                        "    models: [\"claude-*\", smart]\n"
                                        "  j: { hash: " HASH2 " }\n");
    assert_clean(c);
    slc_key *k = &c->spec->keys[0];
    assert_int_equal(k->team_idx, 0);
    assert_false(k->all_models);
    assert_int_equal(k->nscope, 3);
    assert_int_equal(k->scope[0], 0);
    assert_int_equal(k->scope[1], 1);
    assert_int_equal(k->scope[2], 2);
    assert_int_equal(k->hash_bytes[0], 0x11);
    assert_true(c->spec->keys[1].all_models);
    assert_int_equal(c->spec->teams[0].budget.period, SLC_PERIOD_DAY);
    compiled_free(c);
}

static void key_errors(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  smart: { targets: [demo] }\n"
                                        "keys:\n  k: { hash: " HASH1 ", models: [smrt, \"x*\"], team: nope,\n"
                                        "       budget: { usd: 1, per: dya } }\n"
                                        "  j: { hash: " HASH1 " }\n  h: { hash: abc }\n");
    assert_error(c, "key 'k' allows unknown model 'smrt' (did you mean 'smart'?)");
    assert_error(c, "key 'k' allows 'x*', which matches no model entry");
    assert_error(c, "key 'k' belongs to unknown team 'nope'");
    assert_error(c, "budget of key 'k' has unknown period 'dya' (did you mean 'day'?)");
    assert_error(c, "key 'j' has the same hash as key 'k'");
    assert_error(c, "key 'h': hash must be 'sha256:' followed by 64 lowercase hex digits");
    compiled_free(c);
}

static void open_listener(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "listen: 0.0.0.0:4000\nmodels:\n  m: { targets: [demo] }\n");
    assert_error(c, "is not a loopback address, but the spec has no 'keys'");
    compiled_free(c);
    c = compile_str(SPEC_HEAD "listen: 0.0.0.0:4000\nmodels:\n  m: { targets: [demo] }\n"
                              "keys:\n  k: { hash: " HASH1 " }\n");
    assert_error(c, "serves plain HTTP on an address that is not loopback");
    compiled_free(c);
    c = compile_str(SPEC_HEAD "listen: 0.0.0.0:4000\nallow_plaintext: true\n"
                              "models:\n  m: { targets: [demo] }\nkeys:\n  k: { hash: " HASH1 " }\n");
    assert_clean(c);
    compiled_free(c);
    c = compile_str(SPEC_HEAD "listen: \"[::1]:4000\"\nmodels:\n  m: { targets: [demo] }\n");
    assert_clean(c);
    compiled_free(c);
}

static void shadowing(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  \"a*\": { targets: [demo] }\n"
                                        "  \"a*b\": { targets: [demo] }\n  \"ab*\": { targets: [demo] }\n");
    assert_warning(c, "model 'a*b' can never match: every name it matches goes to 'a*' first");
    assert_int_equal(slc_diags_warnings(c->diags), 1);
    assert_false(c->spec->models[1].emitted);
    assert_true(c->spec->models[2].emitted);
    compiled_free(c);
}

static void budgets(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\n"
                              "models:\n  my-ft: { targets: [o] }\n"
                              "teams:\n  t: { budget: { usd: 10, per: day } }\n"
                              "keys:\n  k: { hash: " HASH1 ", team: t, budget: { usd: 11, per: day } }\n");
    assert_warning(c, "budget of key 'k' ($11.00 per day) is larger than that of its team 't' ($10.00 per day)");
    assert_error(c, "model 'my-ft' routes to 'o/my-ft', which has no price, but key 'k' has a "
                    "USD budget and can use it; add 'o/my-ft' under 'prices:'");
    assert_int_equal(slc_diags_errors(c->diags), 1);
    compiled_free(c);
}

static const slc_price *price_of(const compiled *c, const char *model)
{
    for (size_t i = 0; i < c->spec->nprices; i++)
        if (strcmp(c->spec->prices[i].model.s, model) == 0)
            return &c->spec->prices[i];
    return NULL;
}

/* A model the catalog knows is priced without prices:, and its target
 * carries the catalog's capabilities; a spec price (exact or glob) wins,
 * and no catalog row is added beside it. */
static void catalog_prices(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\n"
                              "  g: { kind: groq, api_key: env:GROQ_API_KEY }\n"
                              "models:\n  gpt-4o: { targets: [o] }\n  gpt-4.1: { targets: [o] }\n"
                              "  llama: { targets: [g/llama-3.3-70b-versatile] }\n"
                              "prices:\n  o/gpt-4.*: { input: 7, output: 8 }\n"
                              "keys:\n  k: { hash: " HASH1 ", budget: { usd: 11, per: day } }\n");
    assert_int_equal(slc_diags_errors(c->diags), 0);
    const slc_price *p = price_of(c, "gpt-4o");
    assert_non_null(p);
    assert_true(p->from_catalog);
    assert_int_equal(p->input, 2500000);
    assert_int_equal(p->output, 10000000);
    assert_null(price_of(c, "gpt-4.1")); /* the spec's glob covers it */
    p = price_of(c, "llama-3.3-70b-versatile");
    assert_non_null(p);
    assert_int_equal(p->provider_idx, 1);
    const slc_target *t = &c->spec->models[0].targets[0];
    assert_non_null(t->cat);
    assert_int_equal(t->cat->max_output, 16384);
    assert_false(t->cat->caps & (SL_CAP_MAX_COMPLETION | SL_CAP_MAX_TOKENS)); /* takes both */
    assert_true(t->cat->caps & SL_CAP_TOOLS);
    assert_false(t->cat->caps & SL_CAP_EFFORTS);
    compiled_free(c);
}

/* Only models a USD-budgeted key can reach (directly or as a fallback)
 * need prices; team budgets count through the team's keys. */
static void unpriced_reach(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\n"
                              "models:\n  a: { targets: [o/x], fallbacks: [b] }\n"
                              "  b: { targets: [o/y] }\n  c: { targets: [o/z] }\n"
                              "  \"g-*\": { targets: [o] }\n"
                              "prices:\n  o/x: { input: 1 }\n  o/g-1: { input: 1 }\n"
                              "teams:\n  t: { budget: { usd: 10, per: day } }\n"
                              "keys:\n  k: { hash: " HASH1 ", team: t, models: [a, \"g-*\"] }\n"
                              "  free: { hash: " HASH2 ", models: [c] }\n");
    assert_error(c, "model 'b' routes to 'o/y', which has no price, but key 'k' can use it and its "
                    "team 't' has a USD budget");
    assert_int_equal(slc_diags_errors(c->diags), 1);
    assert_int_equal(slc_diags_warnings(c->diags), 0);
    compiled_free(c);

    c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\n"
                    "models:\n  \"g-*\": { targets: [o] }\n"
                    "prices:\n  o/h-1: { input: 1 }\n"
                    "keys:\n  k: { hash: " HASH1 ", budget: { usd: 1, per: day } }\n");
    assert_error(c, "model 'g-*' sends the client's model name to provider 'o', but no price "
                    "'o/...' matches 'g-*'");
    compiled_free(c);
}

static void unreachable_entries(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  a: { targets: [demo], fallbacks: [b] }\n"
                                        "  b: { targets: [demo] }\n  c: { targets: [demo] }\n"
                                        "keys:\n  k: { hash: " HASH1 ", models: [a] }\n");
    assert_warning(c, "no key may use model 'c', and no model a key may use falls back to it");
    assert_int_equal(slc_diags_warnings(c->diags), 1);
    compiled_free(c);
    /* Without keys every entry is open: nothing to say. */
    c = compile_str(SPEC_HEAD "models:\n  a: { targets: [demo] }\n  c: { targets: [demo] }\n");
    assert_clean(c);
    compiled_free(c);
}

static void plain_http(void **state)
{
    compiled *c = compile_str(
        "sluice: 1\nproviders:\n"
        "  a: { kind: openai, base_url: \"http://10.1.2.3:8000/v1\", api_key: env:K }\n"
        "  b: { kind: openai, base_url: \"http://localhost:11434/v1\" }\n"
        "  c: { kind: openai, base_url: \"http://[::1]:8080/v1\" }\n"
        "  d: { kind: openai, base_url: \"http://127.0.0.2/v1\" }\n"
        "  e: { kind: openai, base_url: \"http://user@LOCALHOST/v1\" }\n"
        "  f: { kind: openai, base_url: \"https://10.1.2.3/v1\" }\n"
        "models:\n  m: { targets: [a, b, c, d, e, f] }\n");
    assert_warning(c, "provider 'a': base_url 'http://10.1.2.3:8000/v1' is plain HTTP to a host "
                      "that is not loopback; prompts and the provider key cross the network "
                      "unencrypted (use https://)");
    assert_int_equal(slc_diags_warnings(c->diags), 1);
    compiled_free(c);
}

/* Credential shapes anywhere in the file, masked in every message. */
static void secrets_anywhere(void **state)
{
    const char *key = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    char src[1024];
    snprintf(src, sizeof src,
             SPEC_HEAD "# old key: %s\nmodels:\n  m: { targets: [demo] }\n  %s: { targets: [demo] }\n",
             key, key);
    compiled *c = compile_str(src);
    assert_error(c, "this looks like an Anthropic API key; secrets do not belong in the spec");
    assert_int_equal(slc_diags_errors(c->diags), 2);
    slc_severity sev;
    const char *m;
    for (size_t i = 0; (m = slc_diags_message(c->diags, i, &sev, NULL)); i++)
        assert_null(strstr(m, "AbCdEfGhIjKl"));
    compiled_free(c);
    /* Lower-case names with a familiar prefix are not keys. */
    c = compile_str(SPEC_HEAD "models:\n  sk-learn-regressor-2024-preview-long: { targets: [demo] }\n");
    assert_clean(c);
    compiled_free(c);
}

static void encoding(void **state)
{
    compiled *c = compile_str("\xEF\xBB\xBF" SPEC_HEAD "models:\n  m: { targets: [demo] }\n");
    assert_warning(c, "the spec starts with a UTF-8 byte-order mark");
    assert_int_equal(slc_diags_count(c->diags), 1);
    compiled_free(c);
    c = compile_str(SPEC_HEAD "models:\n  caf\xE9: { targets: [demo] }\n");
    assert_error(c, "invalid UTF-8 (byte 0xE9)");
    slc_pos pos;
    slc_diags_message(c->diags, 0, NULL, &pos);
    assert_int_equal(pos.line, 5);
    assert_int_equal(pos.col, 6);
    compiled_free(c);
    /* Overlong encodings and surrogates are not UTF-8 either. */
    c = compile_str(SPEC_HEAD "x-a: \"\xC0\xAF\"\n");
    assert_error(c, "invalid UTF-8 (byte 0xC0)");
    compiled_free(c);
    c = compile_str(SPEC_HEAD "x-a: \"\xED\xA0\x80\"\n");
    assert_error(c, "invalid UTF-8 (byte 0xED)");
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(suggestions),  cmocka_unit_test(globs),
        cmocka_unit_test(listen_parse), cmocka_unit_test(cidr_parse),
        cmocka_unit_test(references),   cmocka_unit_test(cycles),
        cmocka_unit_test(providers),    cmocka_unit_test(secrets),
        cmocka_unit_test(weights_and_attempts), cmocka_unit_test(keys_and_scopes),
        cmocka_unit_test(key_errors),   cmocka_unit_test(open_listener),
        cmocka_unit_test(shadowing),    cmocka_unit_test(budgets), cmocka_unit_test(catalog_prices),
        cmocka_unit_test(unpriced_reach), cmocka_unit_test(unreachable_entries),
        cmocka_unit_test(plain_http),   cmocka_unit_test(secrets_anywhere),
        cmocka_unit_test(encoding),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
