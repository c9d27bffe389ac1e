/*
 * diff: identical tables mean "no change" whatever the YAML looks like;
 * every route-level change is named once, in reviewer terms.
 */
#include "helpers.h"

#include "diff.h"

static char *run(const char *old, const char *new_, bool json, bool *differs)
{
    compiled *a = compile_str(old), *b = compile_str(new_);
    assert_int_equal(slc_diags_errors(a->diags), 0);
    assert_int_equal(slc_diags_errors(b->diags), 0);
    slc_buf out = {0};
    *differs = slc_diff(a->spec, b->spec, json, &out);
    compiled_free(a);
    compiled_free(b);
    return out.p;
}

#define BASE                                                                                    \
    "sluice: 1\nlisten: 0.0.0.0:4000\nallow_plaintext: true\nproviders:\n  m: { kind: mock }\n"                       \
    "  o: { kind: openai, api_key: env:K }\n"                                                  \
    "models:\n  smart: { targets: [{ provider: o, model: big, weight: 3 }, m/small], fallbacks: [x, y] }\n" \
    "  x: { targets: [m] }\n  y: { targets: [m] }\n"                                          \
    "prices:\n  o/big: { input: 1, output: 2 }\n"                                               \
    "keys:\n  k: { hash: sha256:1111111111111111111111111111111111111111111111111111111111111111,"  \
    " models: [smart], limits: { rpm: 5 } }\n"

static void identical_when_tables_match(void **state)
{
    bool d;
    /* Comments, flow vs block style and key order do not matter. */
    char *out = run(BASE, "# reformatted\n" BASE "\n# trailing comment\n", false, &d);
    assert_false(d);
    assert_string_equal(out, "no changes: both specs compile to the same tables\n");
    free(out);
    out = run(BASE, BASE, true, &d);
    assert_false(d);
    assert_string_equal(out, "{\"identical\":true,\"changes\":[]}\n");
    free(out);
}

static void route_changes(void **state)
{
    const char *changed =
        "sluice: 1\nlisten: 0.0.0.0:4001\nallow_plaintext: true\nproviders:\n  m: { kind: mock }\n"
        "  o: { kind: openai, api_key: env:K2, timeouts: { connect: 1s } }\n"
        "models:\n  smart:\n    targets: [{ provider: o, model: bigger, weight: 3 }, { provider: m, model: small, weight: 2 }]\n"
        "    fallbacks: [y, x]\n    retry: { attempts: 1 }\n    cooldown: { failures: 2, period: 5s }\n"
        "  x: { targets: [m] }\n  y: { targets: [m] }\n  new: { targets: [m] }\n"
        "prices:\n  o/big: { input: 1, output: 3 }\n  o/bigger: { input: 1, output: 3 }\n"
        "keys:\n  k: { hash: sha256:1111111111111111111111111111111111111111111111111111111111111111,"
        " models: [smart, new], limits: { rpm: 6 }, budget: { usd: 1, per: day } }\n"
        "  k2: { hash: sha256:2222222222222222222222222222222222222222222222222222222222222222 }\n";
    bool d;
    char *out = run(BASE, changed, false, &d);
    assert_true(d);
    assert_string_equal(out,
        "listen: changed: 0.0.0.0:4000 -> 0.0.0.0:4001\n"
        "provider 'o': api_key environment variable: K -> K2\n"
        "provider 'o': timeouts: connect 5s, first_byte 2m, idle 2m, total 10m -> connect 1s, first_byte 2m, idle 2m, total 10m\n"
        "model 'smart': weight of m/small: 1 -> 2\n"
        "model 'smart': upstream model changed: o/big -> o/bigger\n"
        "model 'smart': fallbacks: [x, y] -> [y, x]\n"
        "model 'smart': retry: attempts 2, backoff 200ms, cap 10s, on 408, 429, 500, 502-504, 529, connect, timeout -> attempts 1, backoff 200ms, cap 10s, on 408, 429, 500, 502-504, 529, connect, timeout\n"
        "model 'smart': cooldown: runtime default -> 2 failures, 5s\n"
        "model 'smart': first-request attempt plan: smart:o/big, smart:m/small, x:m/x, y:m/y -> smart:o/bigger, smart:m/small, y:m/y, x:m/x\n"
        "model 'new': added: [m/(client's name) w1]\n"
        "key 'k': models: [smart] -> [smart, new]\n"
        "key 'k': budget: none -> $1.00 per day\n"
        "key 'k': limits: rpm 5, tpm unlimited -> rpm 6, tpm unlimited\n"
        "key 'k2': added: may use every model\n"
        "price 'o/big': changed: input $1.00, output $2.00, cache_read $0.00, cache_write $0.00 -> input $1.00, output $3.00, cache_read $0.00, cache_write $0.00\n"
        "price 'o/bigger': added: input $1.00, output $3.00, cache_read $0.00, cache_write $0.00\n");
    free(out);
    out = run(changed, BASE, true, &d);
    assert_true(d);
    assert_non_null(strstr(out, "{\"identical\":false,\"changes\":[\n  {\"section\":\"listen\""));
    assert_non_null(strstr(out, "{\"section\":\"model\",\"name\":\"new\",\"change\":\"removed\","
                                "\"before\":\"[m/(client's name) w1]\",\"after\":null}"));
    assert_non_null(strstr(out, "{\"section\":\"key\",\"name\":\"k2\",\"change\":\"removed\""));
    free(out);
}

static void key_rotation_and_order(void **state)
{
    bool d;
    char *rotated = strdup(BASE);
    char *h = strstr(rotated, "sha256:1");
    memset(h + 7, 'a', 64);
    char *out = run(BASE, rotated, false, &d);
    assert_true(d);
    assert_string_equal(out, "key 'k': hash changed (the old key stops working)\n");
    free(out);
    free(rotated);
    /* Reordering entries changes the table (indices) but no route: the
     * catch-all keeps the report and the exit status in step. */
    const char *a = SPEC_HEAD "models:\n  a: { targets: [demo] }\n  b: { targets: [demo] }\n";
    const char *b = SPEC_HEAD "models:\n  b: { targets: [demo] }\n  a: { targets: [demo] }\n";
    out = run(a, b, false, &d);
    assert_true(d);
    assert_non_null(strstr(out, "tables: the generated tables differ"));
    free(out);
}

/* Moving budgets to Redis, or changing what happens without it, is a
 * change a reviewer must see. */
static void state_redis_changes(void **state)
{
    bool d;
    const char *with = BASE "state:\n  redis: { url: \"redis://10.0.0.5:6379/0\", on_state_error: local, replicas: 3 }\n";
    const char *moved = BASE "state:\n  redis: { url: \"redis://10.0.0.6:6379/0\", prefix: \"p:\" }\n";
    char *out = run(BASE, with, false, &d);
    assert_true(d);
    assert_string_equal(out, "state.redis: url: (none: this replica's own counters) -> redis://10.0.0.5:6379/0\n");
    free(out);
    out = run(with, moved, false, &d);
    assert_true(d);
    assert_string_equal(out, "state.redis: url: redis://10.0.0.5:6379/0 -> redis://10.0.0.6:6379/0\n"
                             "state.redis: prefix: sluice: -> p:\n"
                             "state.redis: on_state_error: local, replicas 3 -> fail_closed, replicas 0\n");
    free(out);
}

/* Two presets of one protocol are different providers to a reviewer, and
 * the catalog prices that come and go with them are named. */
static void preset_changes(void **state)
{
    const char *a = "sluice: 1\nproviders:\n  p: { kind: groq, api_key: env:K }\n"
                    "  z: { kind: azure, resource: r1, api_version: 2024-10-21, api_key: env:Z }\n"
                    "models:\n  m: { targets: [p/llama-3.3-70b-versatile, z/gpt-4o] }\n";
    const char *b = "sluice: 1\nproviders:\n  p: { kind: together, api_key: env:K }\n"
                    "  z: { kind: azure, resource: r1, api_version: 2025-01-01, api_key: env:Z }\n"
                    "models:\n  m: { targets: [p/llama-3.3-70b-versatile, z/gpt-4o] }\n";
    bool d;
    char *out = run(a, b, false, &d);
    assert_true(d);
    assert_non_null(strstr(out, "provider 'p': kind: groq -> together\n"));
    assert_non_null(strstr(out, "provider 'p': base_url: https://api.groq.com/openai/v1 -> https://api.together.xyz/v1\n"));
    assert_non_null(strstr(out, "provider 'z': api_version: 2024-10-21 -> 2025-01-01\n"));
    assert_non_null(strstr(out, "price 'p/llama-3.3-70b-versatile': removed"));
    free(out);
}

/* Who sluice trusts upstream is a review matter: a provider's tls: change
 * is named with both sides. (compile_str reads no files, so the paths
 * need not exist.) */
static void upstream_trust_changes(void **state)
{
    const char *a = SPEC_HEAD "  p: { kind: openai, base_url: https://127.0.0.1:8443/v1 }\n"
                              "models:\n  m: { targets: [p] }\n";
    const char *b = SPEC_HEAD "  p: { kind: openai, base_url: https://127.0.0.1:8443/v1,\n"
                              "       tls: { ca: ca.pem, client_cert: c.pem, client_key: c.key } }\n"
                              "models:\n  m: { targets: [p] }\n";
    bool d;
    char *out = run(a, b, false, &d);
    assert_true(d);
    assert_non_null(strstr(out, "provider 'p': tls: (system CAs) -> ca ca.pem, client_cert c.pem, "
                                "client_key c.key, verify true\n"));
    free(out);
}

static void cache_changes(void **state)
{
    (void)state;
    bool d;
    const char *a = SPEC_HEAD "models:\n  a: { targets: [demo], cache: { ttl: 90s } }\n  b: { targets: [demo] }\n"
                              "keys:\n  k: { hash: sha256:1111111111111111111111111111111111111111111111111111111111111111 }\n";
    const char *b = SPEC_HEAD "models:\n  a: { targets: [demo], cache: { ttl: 2m, scope: shared } }\n"
                              "  b: { targets: [demo] }\n"
                              "keys:\n  k: { hash: sha256:1111111111111111111111111111111111111111111111111111111111111111,"
                              " cache: false }\n";
    char *out = run(a, b, false, &d);
    assert_true(d);
    assert_string_equal(out, "model 'a': cache: exact, scope key, ttl 90s, max_bytes 67108864 -> exact, scope shared, "
                             "ttl 2m, max_bytes 67108864\nkey 'k': cache: none -> off (cache: false)\n");
    free(out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(upstream_trust_changes),
        cmocka_unit_test(identical_when_tables_match),
        cmocka_unit_test(route_changes),
        cmocka_unit_test(state_redis_changes),
        cmocka_unit_test(key_rotation_and_order),
        cmocka_unit_test(preset_changes),
        cmocka_unit_test(cache_changes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
