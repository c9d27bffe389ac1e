/*
 * Shape checks and defaults of the typed spec.
 */
#include "helpers.h"

static void defaults(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m: { targets: [demo] }\n");
    assert_clean(c);
    slc_spec *s = c->spec;
    assert_string_equal(s->listen.s, "127.0.0.1:4000");
    assert_string_equal(s->state.s, "sluice.db");
    assert_int_equal(s->server.max_header_bytes, 16384);
    assert_int_equal(s->server.max_headers, 100);
    assert_int_equal(s->server.max_body_bytes, 10485760);
    assert_int_equal(s->server.header_timeout_ms, 10000);
    assert_int_equal(s->server.body_timeout_ms, 10000);
    assert_int_equal(s->server.keepalive_timeout_ms, 75000);
    assert_int_equal(s->server.max_connections, 10000);
    assert_int_equal(s->server.max_inflight, 10000);
    assert_int_equal(s->providers[0].connect_ms, 5000);
    assert_int_equal(s->providers[0].first_byte_ms, 120000);
    assert_int_equal(s->providers[0].idle_ms, 120000);
    assert_int_equal(s->providers[0].total_ms, 600000);
    slc_retry *r = &s->models[0].retry;
    assert_int_equal(r->attempts, 2);
    assert_int_equal(r->backoff_ms, 200);
    assert_int_equal(r->cap_ms, 10000);
    assert_true(r->on_connect && r->on_timeout);
    const int on[] = {408, 429, 500, 502, 503, 504, 529};
    int set = 0;
    for (int code = 0; code < 640; code++)
        if (r->status_bits[code / 64] >> (code % 64) & 1)
            set++;
    assert_int_equal(set, 7);
    for (size_t i = 0; i < 7; i++)
        assert_true(r->status_bits[on[i] / 64] >> (on[i] % 64) & 1);
    compiled_free(c);
}

static void target_forms(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\nmodels:\n"
                              "  m:\n    targets:\n      - o\n      - o/org/model:7b\n"
                              "      - { provider: o, model: x, weight: 5 }\n");
    assert_clean(c);
    slc_model *m = &c->spec->models[0];
    assert_int_equal(m->ntargets, 3);
    assert_null(m->targets[0].model.s);
    assert_int_equal(m->targets[0].weight, 1);
    assert_string_equal(m->targets[1].provider.s, "o");
    assert_string_equal(m->targets[1].model.s, "org/model:7b");
    assert_int_equal(m->targets[2].weight, 5);
    assert_string_equal(m->targets[2].model.s, "x");
    compiled_free(c);
}

static void retry_on(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m:\n    targets: [demo]\n"
                                        "    retry: { attempts: 4, backoff: 1.5s, cap: 1m, on: [4xx, 503] }\n");
    assert_clean(c);
    slc_retry *r = &c->spec->models[0].retry;
    assert_int_equal(r->attempts, 4);
    assert_int_equal(r->backoff_ms, 1500);
    assert_int_equal(r->cap_ms, 60000);
    assert_false(r->on_connect);
    assert_false(r->on_timeout);
    assert_true(r->status_bits[400 / 64] >> (400 % 64) & 1);
    assert_true(r->status_bits[499 / 64] >> (499 % 64) & 1);
    assert_false(r->status_bits[500 / 64] >> (500 % 64) & 1);
    assert_true(r->status_bits[503 / 64] >> (503 % 64) & 1);
    compiled_free(c);
}

static void cooldown(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m:\n    targets: [demo]\n"
                                        "    cooldown: { failures: 7, period: 1.5m }\n"
                                        "  n: { targets: [demo] }\n");
    assert_clean(c);
    assert_int_equal(c->spec->models[0].cooldown_failures, 7);
    assert_int_equal(c->spec->models[0].cooldown_ms, 90000);
    /* Absent: 0, which the runtime reads as its default. */
    assert_int_equal(c->spec->models[1].cooldown_failures, 0);
    assert_int_equal(c->spec->models[1].cooldown_ms, 0);
    compiled_free(c);

    c = compile_str(SPEC_HEAD "models:\n  m:\n    targets: [demo]\n"
                              "    cooldown: { failures: 0, period: 0s, probe: 1 }\n");
    assert_error(c, "'failures' in cooldown of model 'm' must be between 1 and 1000");
    assert_error(c, "'period' in cooldown of model 'm' must be longer than 0ms");
    assert_error(c, "unknown key 'probe' in cooldown of model 'm'");
    compiled_free(c);
    c = compile_str(SPEC_HEAD "models:\n  m:\n    targets: [demo]\n    cooldown: { failures: 1001 }\n");
    assert_error(c, "'failures' in cooldown of model 'm' must be between 1 and 1000");
    compiled_free(c);
}

static void unknown_keys_suggest(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  smart: { taregts: [demo] }\nmdoels: {}\n");
    assert_error(c, "unknown key 'taregts' in model 'smart' (did you mean 'targets'?)");
    assert_error(c, "unknown top-level key 'mdoels' (did you mean 'models'?)");
    assert_error(c, "model 'smart' is missing 'targets'");
    compiled_free(c);
}

static void extension_keys(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "x-common: &t [demo]\nmodels:\n  m: { targets: *t }\n");
    assert_clean(c);
    compiled_free(c);
}

static void wrong_types(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders: [a]\nmodels:\n  m: { targets: x }\n");
    assert_error(c, "expected a mapping for 'providers', got a sequence");
    assert_error(c, "expected a sequence for 'targets' in model 'm', got a scalar");
    compiled_free(c);
    c = compile_str("sluice: 1\nproviders:\nmodels: {}\n");
    assert_error(c, "expected a mapping for 'providers', got null");
    compiled_free(c);
}

static void version(void **state)
{
    compiled *c = compile_str("providers: {}\nmodels: {}\n");
    assert_error(c, "missing 'sluice: 1'");
    compiled_free(c);
    c = compile_str("sluice: 2\nproviders: {}\nmodels: {}\n");
    assert_error(c, "unsupported spec format version '2'");
    compiled_free(c);
    c = compile_str("sluice: [1]\nproviders: {}\nmodels: {}\n");
    assert_error(c, "unsupported spec format version a sequence");
    compiled_free(c);
}

static void required(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  x: { base_url: http://h }\n");
    assert_error(c, "provider 'x' is missing 'kind'");
    assert_error(c, "spec is missing 'models'");
    compiled_free(c);
    c = compile_str(SPEC_HEAD "models:\n  m: { targets: [demo] }\nkeys:\n  k: { team: t }\n"
                              "teams:\n  t: { budget: { usd: 5 } }\n");
    assert_error(c, "key 'k' is missing 'hash'");
    assert_error(c, "budget of team 't' is missing 'per'");
    compiled_free(c);
}

static void server_section(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m: { targets: [demo] }\n"
                                        "server: { max_header: 8KiB, max_body: 1MiB, max_headers: 10,\n"
                                        "  header_timeout: 2s, body_timeout: 3s, keepalive_timeout: 4s,\n"
                                        "  max_connections: 5, max_inflight: 6 }\n");
    assert_clean(c);
    slc_server *s = &c->spec->server;
    assert_int_equal(s->max_header_bytes, 8192);
    assert_int_equal(s->max_body_bytes, 1048576);
    assert_int_equal(s->max_headers, 10);
    assert_int_equal(s->header_timeout_ms, 2000);
    assert_int_equal(s->body_timeout_ms, 3000);
    assert_int_equal(s->keepalive_timeout_ms, 4000);
    assert_int_equal(s->max_connections, 5);
    assert_int_equal(s->max_inflight, 6);
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(defaults),     cmocka_unit_test(target_forms),
        cmocka_unit_test(retry_on), cmocka_unit_test(cooldown),     cmocka_unit_test(unknown_keys_suggest),
        cmocka_unit_test(extension_keys), cmocka_unit_test(wrong_types),
        cmocka_unit_test(version),      cmocka_unit_test(required),
        cmocka_unit_test(server_section),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
