/*
 * lower: a checked spec becomes the runtime's sl_table in memory, laid out
 * as the generated C lays it out (contiguous per-entry targets and
 * fallbacks, per-key scopes and addresses, defaults and "none" values the
 * runtime expects), and the plans sluicec prints are sl_route_plan's on it.
 * That the printed table is byte for byte the golden C is run_golden.sh's
 * job; here the in-memory values are pinned.
 */
#include "helpers.h"

#include "emit.h"
#include "lower.h"

#define HASH1 "1111111111111111111111111111111111111111111111111111111111111111"
#define HASH2 "2222222222222222222222222222222222222222222222222222222222222222"
#define HASH3 "3333333333333333333333333333333333333333333333333333333333333333"

static const char *const FULL =
    "sluice: 1\n"
    "listen: 127.0.0.1:4100\n"
    "state: s.db\n"
    "server: { max_body: 1MiB }\n"
    "providers:\n"
    "  m: { kind: mock }\n"
    "  o: { kind: openai, api_key: env:OK, timeouts: { connect: 1500ms } }\n"
    "  a: { kind: anthropic, base_url: http://127.0.0.1:9/x, api_key: env:AK }\n"
    "models:\n"
    "  smart:\n"
    "    targets: [{ provider: a, model: big, weight: 3 }, o]\n"
    "    fallbacks: [cheap, \"g-*\"]\n"
    "    retry: { attempts: 3, backoff: 50ms, cap: 1s, on: [503, connect] }\n"
    "    cooldown: { failures: 2, period: 5s }\n"
    "  cheap: { targets: [m] }\n"
    "  \"g-*\": { targets: [o/gx, m] }\n"
    "prices:\n"
    "  a/big: { input: 3, output: 15 }\n"
    "  o/smart: { input: 1, output: 2, cache_read: 0.5 }\n"
    "teams:\n"
    "  t: { budget: { tokens: 5000, per: week }, limits: { rpm: 10 } }\n"
    "keys:\n"
    "  k1: { hash: sha256:" HASH1 ", team: t, models: [cheap, \"g-*\"],\n"
    "        allow_ips: [10.0.0.0/8, \"::1/128\"], expires: 2030-01-01 }\n"
    "  k2: { hash: sha256:" HASH2 ", budget: { tokens: 1000, per: day }, limits: { tpm: 7 } }\n"
    "admin: { hash: sha256:" HASH3 " }\n";

static void layout(void **state)
{
    compiled *c = compile_str(FULL);
    assert_clean(c);
    slc_lowered l;
    slc_lower(c->spec, "abc", &l);
    const sl_table *t = &l.t;

    assert_int_equal(t->abi, SL_TABLE_ABI);
    assert_string_equal(t->spec_sha256, "abc");
    assert_string_equal(t->listen, "127.0.0.1:4100");
    assert_string_equal(t->state, "s.db");
    assert_int_equal(t->server.max_body_bytes, 1 << 20);
    assert_null(t->match_model);

    assert_int_equal(t->provider_count, 3);
    assert_int_equal(t->providers[0].kind, SL_KIND_MOCK);
    assert_string_equal(t->providers[0].base_url, "");
    assert_null(t->providers[0].api_key_env);
    assert_int_equal(t->providers[1].kind, SL_KIND_OPENAI);
    assert_string_equal(t->providers[1].base_url, "https://api.openai.com/v1");
    assert_string_equal(t->providers[1].api_key_env, "OK");
    assert_int_equal(t->providers[1].connect_ms, 1500);
    assert_int_equal(t->providers[2].kind, SL_KIND_ANTHROPIC);
    assert_string_equal(t->providers[2].base_url, "http://127.0.0.1:9/x");

    /* Targets and fallbacks contiguous per entry, in spec order. */
    assert_int_equal(t->model_count, 3);
    assert_int_equal(t->target_count, 5);
    assert_int_equal(t->fallback_count, 2);
    const sl_model_entry *smart = &t->models[0], *cheap = &t->models[1], *g = &t->models[2];
    assert_string_equal(smart->name, "smart");
    assert_int_equal(smart->is_glob, 0);
    assert_int_equal(smart->target_first, 0);
    assert_int_equal(smart->target_count, 2);
    assert_int_equal(smart->fallback_first, 0);
    assert_int_equal(smart->fallback_count, 2);
    assert_int_equal(t->fallbacks[0], 1);
    assert_int_equal(t->fallbacks[1], 2);
    assert_int_equal(smart->retry.attempts, 3);
    assert_int_equal(smart->retry.backoff_ms, 50);
    assert_int_equal(smart->retry.backoff_cap_ms, 1000);
    assert_int_equal(smart->retry.on_connect, 1);
    assert_int_equal(smart->retry.on_timeout, 0);
    assert_int_equal(smart->retry.status_bits[503 / 64], 1ull << (503 % 64));
    assert_int_equal(smart->retry.status_bits[429 / 64] & (1ull << (429 % 64)), 0);
    assert_int_equal(smart->cooldown_failures, 2);
    assert_int_equal(smart->cooldown_ms, 5000);
    assert_int_equal(cheap->target_first, 2);
    assert_int_equal(cheap->fallback_first, 2);
    assert_int_equal(cheap->fallback_count, 0);
    assert_int_equal(cheap->cooldown_failures, 0); /* the runtime's default */
    assert_int_equal(g->is_glob, 1);
    assert_int_equal(g->target_first, 3);
    assert_int_equal(g->target_count, 2);

    assert_int_equal(t->targets[0].provider, 2);
    assert_string_equal(t->targets[0].model, "big");
    assert_int_equal(t->targets[0].weight, 3);
    assert_int_equal(t->targets[1].provider, 1);
    assert_null(t->targets[1].model);
    assert_int_equal(t->targets[1].weight, 1);
    assert_string_equal(t->targets[3].model, "gx");

    assert_int_equal(t->team_count, 1);
    assert_int_equal(t->teams[0].budget.usd_micros, -1);
    assert_int_equal(t->teams[0].budget.tokens, 5000);
    assert_int_equal(t->teams[0].budget.per, SL_PERIOD_WEEK);
    assert_int_equal(t->teams[0].limits.rpm, 10);

    /* Keys: scopes and addresses contiguous per key; no budget is -1/NONE. */
    assert_int_equal(t->key_count, 2);
    const sl_key *k1 = &t->keys[0], *k2 = &t->keys[1];
    assert_int_equal(k1->hash[0], 0x11);
    assert_int_equal(k1->team, 0);
    assert_int_equal(k1->all_models, 0);
    assert_int_equal(k1->scope_first, 0);
    assert_int_equal(k1->scope_count, 2);
    assert_int_equal(t->scopes[0], 1);
    assert_int_equal(t->scopes[1], 2);
    assert_int_equal(k1->budget.per, SL_PERIOD_NONE);
    assert_int_equal(k1->budget.usd_micros, -1);
    assert_int_equal(k1->expires_unix, 1893456000);
    assert_int_equal(k1->cidr_first, 0);
    assert_int_equal(k1->cidr_count, 2);
    assert_int_equal(t->cidrs[0].family, 4);
    assert_int_equal(t->cidrs[0].prefix, 8);
    assert_int_equal(t->cidrs[0].addr[0], 10);
    assert_int_equal(t->cidrs[1].family, 6);
    assert_int_equal(t->cidrs[1].addr[15], 1);
    assert_int_equal(k2->team, -1);
    assert_int_equal(k2->all_models, 1);
    assert_int_equal(k2->scope_first, 2);
    assert_int_equal(k2->scope_count, 0);
    assert_int_equal(k2->cidr_first, 2);
    assert_int_equal(k2->budget.tokens, 1000);
    assert_int_equal(k2->budget.usd_micros, -1);
    assert_int_equal(k2->budget.per, SL_PERIOD_DAY);
    assert_int_equal(k2->limits.tpm, 7);
    assert_int_equal(k2->expires_unix, 0);

    assert_int_equal(t->price_count, 2);
    assert_int_equal(t->prices[0].provider, 2);
    assert_string_equal(t->prices[0].model, "big");
    assert_int_equal(t->prices[0].input, 3000000);
    assert_int_equal(t->prices[0].output, 15000000);
    assert_int_equal(t->prices[1].cache_read, 500000);
    assert_int_equal(t->prices[1].cache_write, 0);

    assert_int_equal(t->has_admin, 1);
    assert_int_equal(t->admin_hash[31], 0x33);

    slc_lowered_free(&l);
    compiled_free(c);
}

/* Empty sections lower to NULL arrays with zero counts, as generated C
 * has them (C has no empty arrays). */
static void empty_sections(void **state)
{
    compiled *c = compile_str(SPEC_HEAD "models:\n  m: { targets: [demo] }\n");
    assert_clean(c);
    slc_lowered l;
    slc_lower(c->spec, "0", &l);
    assert_int_equal(l.t.model_count, 1);
    assert_null(l.t.fallbacks);
    assert_int_equal(l.t.fallback_count, 0);
    assert_null(l.t.keys);
    assert_null(l.t.scopes);
    assert_null(l.t.cidrs);
    assert_null(l.t.teams);
    assert_null(l.t.prices);
    assert_int_equal(l.t.has_admin, 0);
    slc_lowered_free(&l);
    compiled_free(c);
}

/* emit prints the lowered table: a change made to the lowered table shows
 * in the printed C, and slc_emit_table is exactly lower + print. */
static void emit_prints_lowered(void **state)
{
    compiled *c = compile_str(FULL);
    assert_clean(c);
    slc_lowered l;
    slc_lower(c->spec, "abc", &l);
    slc_buf a = {0}, b = {0};
    slc_emit_lowered(&l.t, &a);
    slc_emit_table(c->spec, "abc", &b);
    assert_string_equal(a.p, b.p);
    slc_buf_free(&a);
    l.providers[1].base_url = "http://127.0.0.1:1/v1";
    l.targets[0].weight = 9;
    slc_emit_lowered(&l.t, &a);
    assert_non_null(strstr(a.p, ".base_url = \"http://127.0.0.1:1/v1\""));
    assert_non_null(strstr(a.p, "[0] = {.provider = 2, .model = \"big\", .weight = 9},"));
    assert_null(strstr(b.p, ".weight = 9}"));
    slc_buf_free(&a);
    slc_buf_free(&b);
    slc_lowered_free(&l);
    compiled_free(c);
}

/* Plans on the lowered table are sl_route_plan's with fresh counters:
 * heaviest target first, the rest by weight, then the fallbacks breadth
 * first; what each step asks upstream follows sl_route_upstream_model. */
static void plans(void **state)
{
    compiled *c = compile_str(FULL);
    assert_clean(c);
    slc_lowered l;
    slc_lower(c->spec, "abc", &l);
    sl_attempt p[SLC_PLAN_MAX];
    size_t n = slc_plan_first(&l.t, 0, p);
    static const uint32_t want_entry[] = {0, 0, 1, 2, 2};
    static const uint32_t want_target[] = {0, 1, 2, 3, 4};
    static const char *const want_model[] = {"big", "smart", "cheap", "gx", "g-9"};
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(p[i].entry, want_entry[i]);
        assert_int_equal(p[i].target, want_target[i]);
        assert_string_equal(sl_route_upstream_model(&l.t, &p[i], "g-9"), want_model[i]);
    }
    /* Fresh counters on every call: the same first pick each time. */
    assert_int_equal(slc_plan_first(&l.t, 0, p), 5);
    assert_int_equal(p[0].target, 0);
    /* A glob's model-less target has no name without a client's. */
    assert_int_equal(slc_plan_first(&l.t, 2, p), 2);
    assert_null(sl_route_upstream_model(&l.t, &p[1], NULL));
    slc_lowered_free(&l);
    compiled_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(layout),
        cmocka_unit_test(empty_sections),
        cmocka_unit_test(emit_prints_lowered),
        cmocka_unit_test(plans),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
