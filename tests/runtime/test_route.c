/*
 * Tests for routing (runtime/route/route.c) against the table compiled from
 * tests/runtime/unit.yaml: name lookup through the generated matcher (exact
 * names beat globs, the longest literal prefix wins among globs, malformed
 * names never match), smooth weighted round robin (exact proportions over
 * every window of sum(weights) picks, interleaved rather than in bursts),
 * and attempt plans (picked target, the entry's other targets, then the
 * fallbacks' targets, never an entry twice), and the model name each
 * attempt asks its upstream for.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "route/route.h"
#include "table.h"

/* Entry index by its spec name, so the tests do not depend on emit order. */
static int entry(const char *name)
{
    for (uint32_t i = 0; i < sl_spec.model_count; i++)
        if (strcmp(sl_spec.models[i].name, name) == 0)
            return (int)i;
    fail_msg("no entry '%s' in unit.yaml", name);
    return -1;
}

static int lookup(const char *name) { return sl_route_lookup(&sl_spec, name, strlen(name)); }

static void test_lookup_exact(void **state)
{
    assert_int_equal(lookup("demo-model"), entry("demo-model"));
    assert_int_equal(lookup("gpt-4o-mini"), entry("gpt-4o-mini"));
    assert_int_equal(lookup("smart"), entry("smart"));
    /* Names are exact: no prefix, suffix or case folding. */
    assert_int_equal(lookup("smar"), -1);
    assert_int_equal(lookup("smartt"), -1);
    assert_int_equal(lookup("SMART"), -1);
    assert_int_equal(lookup("gpt-4o"), -1);
}

static void test_lookup_globs(void **state)
{
    int c = entry("claude-*"), c3 = entry("claude-3-*");
    /* Longest literal prefix wins, whatever the spec order. */
    assert_int_equal(lookup("claude-3-x"), c3);
    assert_int_equal(lookup("claude-3-opus-20240229"), c3);
    assert_int_equal(lookup("claude-x"), c);
    assert_int_equal(lookup("claude-sonnet-4-5"), c);
    assert_int_equal(lookup("claude-3"), c); /* "claude-3-" prefix not met */
    assert_int_equal(lookup("claude-35"), c);
    /* '*' matches the empty string too. */
    assert_int_equal(lookup("claude-"), c);
    assert_int_equal(lookup("claude-3-"), c3);
    assert_int_equal(lookup("claude"), -1);
    assert_int_equal(lookup("xclaude-x"), -1);
}

static void test_lookup_unknown_and_malformed(void **state)
{
    assert_int_equal(lookup("unknown-model"), -1);
    assert_int_equal(sl_route_lookup(&sl_spec, "", 0), -1);
    /* Embedded NUL: "smart\0" and "claude-\0x" must not match as the
     * C string before the NUL would. */
    assert_int_equal(sl_route_lookup(&sl_spec, "smart\0", 6), -1);
    assert_int_equal(sl_route_lookup(&sl_spec, "smart\0x", 7), -1);
    assert_int_equal(sl_route_lookup(&sl_spec, "claude-\0x", 9), -1);
    /* len is honoured: a longer buffer is cut to len bytes. */
    assert_int_equal(sl_route_lookup(&sl_spec, "smartXYZ", 5), entry("smart"));
    /* 1 KiB is the limit: a glob that would match a longer name does not. */
    char name[1100];
    memcpy(name, "claude-", 7);
    memset(name + 7, 'a', sizeof name - 7);
    assert_int_equal(sl_route_lookup(&sl_spec, name, 1024), entry("claude-*"));
    assert_int_equal(sl_route_lookup(&sl_spec, name, 1025), -1);
    assert_int_equal(sl_route_lookup(&sl_spec, name, sizeof name), -1);
}

static void test_wrr_exact_and_smooth(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    assert_non_null(r);
    uint32_t e = (uint32_t)entry("smart");
    const sl_model_entry *me = &sl_spec.models[e];
    assert_int_equal(me->target_count, 2);
    uint32_t heavy = me->target_first, light = me->target_first + 1;
    assert_int_equal(sl_spec.targets[heavy].weight, 3);
    assert_int_equal(sl_spec.targets[light].weight, 1);

    enum { N = 4000 };
    static uint32_t seq[N];
    for (int i = 0; i < N; i++) {
        seq[i] = sl_route_pick(r, e);
        assert_true(seq[i] == heavy || seq[i] == light);
    }
    /* The heavier target goes first. */
    assert_int_equal(seq[0], heavy);
    /* Every window of 4 consecutive picks, aligned or not, has exactly
     * 3 heavy and 1 light: the light target is spread out, never bunched. */
    for (int i = 0; i + 4 <= N; i++) {
        int lights = 0;
        for (int k = 0; k < 4; k++)
            lights += seq[i + k] == light;
        assert_int_equal(lights, 1);
    }
    /* Period 4, and not the bursty "heavy, heavy, heavy, light" order of
     * plain round robin by weight: the light pick sits inside the period. */
    for (int i = 4; i < N; i++)
        assert_int_equal(seq[i], seq[i - 4]);
    assert_true(seq[3] != light);
    int total_light = 0;
    for (int i = 0; i < N; i++)
        total_light += seq[i] == light;
    assert_int_equal(total_light, N / 4);
    sl_router_free(r);
}

static void test_wrr_single_target(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    uint32_t e = (uint32_t)entry("gpt-4o-mini");
    for (int i = 0; i < 100; i++)
        assert_int_equal(sl_route_pick(r, e), sl_spec.models[e].target_first);
    sl_router_free(r);
}

static void test_routers_are_independent(void **state)
{
    /* Per-worker state: one router's picks do not move another's. */
    sl_router *a = sl_router_new(&sl_spec), *b = sl_router_new(&sl_spec);
    uint32_t e = (uint32_t)entry("smart");
    uint32_t first_a = sl_route_pick(a, e);
    for (int i = 0; i < 7; i++)
        sl_route_pick(a, e);
    assert_int_equal(sl_route_pick(b, e), first_a);
    sl_router_free(a);
    sl_router_free(b);
    sl_router_free(NULL);
}

static void test_plan_order(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    uint32_t smart = (uint32_t)entry("smart"), demo = (uint32_t)entry("demo-model");
    const sl_model_entry *me = &sl_spec.models[smart];
    uint32_t heavy = me->target_first, light = me->target_first + 1;
    int light_first = 0;
    for (int round = 0; round < 8; round++) {
        sl_attempt plan[16];
        size_t n = sl_route_plan(r, smart, plan, 16);
        assert_int_equal(n, 3);
        /* The picked target, then the entry's other target, then the
         * fallback entry's target. */
        assert_int_equal(plan[0].entry, smart);
        assert_int_equal(plan[1].entry, smart);
        assert_true((plan[0].target == heavy && plan[1].target == light) ||
                    (plan[0].target == light && plan[1].target == heavy));
        light_first += plan[0].target == light;
        assert_int_equal(plan[2].entry, demo);
        assert_int_equal(plan[2].target, sl_spec.models[demo].target_first);
    }
    /* Plans rotate the first choice with the weights: 2 of 8 lead with
     * the weight-1 target. */
    assert_int_equal(light_first, 2);
    sl_router_free(r);
}

static void test_plan_truncated_by_max(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    uint32_t smart = (uint32_t)entry("smart");
    sl_attempt plan[3];
    memset(plan, 0xff, sizeof plan);
    assert_int_equal(sl_route_plan(r, smart, plan, 1), 1);
    assert_int_equal(plan[0].entry, smart);
    /* Nothing written past max. */
    assert_int_equal(plan[1].entry, UINT32_MAX);
    assert_int_equal(sl_route_plan(r, smart, plan, 2), 2);
    assert_int_equal(plan[1].entry, smart);
    assert_true(plan[0].target != plan[1].target);
    assert_int_equal(plan[2].entry, UINT32_MAX);
    assert_int_equal(sl_route_plan(r, smart, plan, 0), 0);
    sl_router_free(r);
}

static void test_plan_without_fallbacks(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    uint32_t c3 = (uint32_t)entry("claude-3-*");
    sl_attempt plan[8];
    assert_int_equal(sl_route_plan(r, c3, plan, 8), 1);
    assert_int_equal(plan[0].entry, c3);
    assert_int_equal(plan[0].target, sl_spec.models[c3].target_first);
    sl_router_free(r);
}

/* A hand-built table whose fallbacks form cycles and diamonds (the compiler
 * rejects cycles; the plan must guard anyway) and name one entry twice. */
static const sl_provider cyc_providers[] = {{.name = "p", .kind = SL_KIND_MOCK, .base_url = ""}};
static const sl_target cyc_targets[] = {
    {.provider = 0, .model = "a1", .weight = 1}, {.provider = 0, .model = "a2", .weight = 5},
    {.provider = 0, .model = "b1", .weight = 1}, {.provider = 0, .model = "c1", .weight = 1},
};
/* a -> [b, c, b, a]; b -> [c, a]; c -> [a, b] */
static const uint32_t cyc_fallbacks[] = {1, 2, 1, 0, 2, 0, 0, 1};
static const sl_model_entry cyc_models[] = {
    {.name = "a", .target_first = 0, .target_count = 2, .fallback_first = 0, .fallback_count = 4},
    {.name = "b", .target_first = 2, .target_count = 1, .fallback_first = 4, .fallback_count = 2},
    {.name = "c", .target_first = 3, .target_count = 1, .fallback_first = 6, .fallback_count = 2},
};
static int cyc_match(const char *name, size_t len) { return -1; }
static const sl_table cyc_table = {
    .abi = SL_TABLE_ABI,
    .providers = cyc_providers, .provider_count = 1,
    .models = cyc_models, .model_count = 3,
    .targets = cyc_targets, .target_count = 4,
    .fallbacks = cyc_fallbacks, .fallback_count = 8,
    .match_model = cyc_match,
};

static void test_plan_never_repeats_entries(void **state)
{
    sl_router *r = sl_router_new(&cyc_table);
    for (uint32_t start = 0; start < 3; start++) {
        sl_attempt plan[32];
        size_t n = sl_route_plan(r, start, plan, 32);
        assert_int_equal(n, 4); /* every target of every entry, once */
        for (size_t i = 0; i < n; i++)
            for (size_t k = i + 1; k < n; k++)
                assert_false(plan[i].target == plan[k].target);
        /* Entries appear in contiguous runs: the starting entry first,
         * then the fallbacks breadth first in spec order. */
        assert_int_equal(plan[0].entry, start);
        uint32_t order[3][3] = {{0, 1, 2}, {1, 2, 0}, {2, 0, 1}};
        size_t i = 0;
        for (int k = 0; k < 3; k++) {
            uint32_t want = order[start][k];
            size_t run = cyc_models[want].target_count;
            for (size_t j = 0; j < run; j++, i++)
                assert_int_equal(plan[i].entry, want);
        }
    }
    /* Within entry "a" the weight-5 target leads the first plan. */
    sl_router *fresh = sl_router_new(&cyc_table);
    sl_attempt plan[8];
    sl_route_plan(fresh, 0, plan, 8);
    assert_int_equal(plan[0].target, 1);
    assert_int_equal(plan[1].target, 0);
    sl_router_free(fresh);
    sl_router_free(r);
}


/* ---- backoff schedule ------------------------------------------------ */

static sl_retry retry_of(uint32_t base, uint32_t cap)
{
    sl_retry r;
    memset(&r, 0, sizeof r);
    r.attempts = 5;
    r.backoff_ms = base;
    r.backoff_cap_ms = cap;
    return r;
}

/* Each retry waits base * 2^n with equal jitter: within [d/2, d]. */
/* A target's model wins; without one an exact entry asks for its own name
 * (also as a fallback, whatever the client asked for) and a glob passes
 * the client's name on. */
static void test_upstream_model(void **state)
{
    sl_router *r = sl_router_new(&sl_spec);
    sl_attempt plan[8];
    size_t n = sl_route_plan(r, (uint32_t)entry("smart"), plan, 8);
    assert_int_equal(n, 3);
    assert_string_equal(sl_route_upstream_model(&sl_spec, &plan[0], "smart"), "claude-sonnet-4-5");
    assert_string_equal(sl_route_upstream_model(&sl_spec, &plan[1], "smart"), "gpt-4o");
    assert_int_equal(plan[2].entry, entry("demo-model"));
    assert_string_equal(sl_route_upstream_model(&sl_spec, &plan[2], "smart"), "demo-model");
    n = sl_route_plan(r, (uint32_t)entry("claude-*"), plan, 8);
    assert_int_equal(n, 1);
    assert_string_equal(sl_route_upstream_model(&sl_spec, &plan[0], "claude-x"), "claude-x");
    n = sl_route_plan(r, (uint32_t)entry("gpt-4o-mini"), plan, 8);
    assert_string_equal(sl_route_upstream_model(&sl_spec, &plan[0], "gpt-4o-mini"), "gpt-4o-mini");
    sl_router_free(r);
}

static void test_backoff_doubles_with_jitter(void **state)
{
    (void)state;
    sl_retry r = retry_of(200, 10000);
    unsigned seed = 7;
    for (int n = 0; n < 5; n++) {
        uint32_t d = 200u << n;
        uint32_t lo = UINT32_MAX, hi = 0;
        for (int i = 0; i < 2000; i++) {
            uint32_t v = sl_route_backoff_ms(&r, n, -1, &seed);
            assert_true(v >= d / 2 && v <= d);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        /* The jitter really spreads over the half-interval. */
        assert_true(lo < d / 2 + d / 8);
        assert_true(hi > d - d / 8);
    }
}

static void test_backoff_capped(void **state)
{
    (void)state;
    sl_retry r = retry_of(200, 1000);
    unsigned seed = 1;
    for (int i = 0; i < 1000; i++) {
        uint32_t v = sl_route_backoff_ms(&r, 10, -1, &seed);
        assert_true(v >= 500 && v <= 1000);
    }
    /* No overflow for absurd retry numbers. */
    assert_true(sl_route_backoff_ms(&r, 1000, -1, &seed) <= 1000);
}

static void test_backoff_honours_retry_after_up_to_cap(void **state)
{
    (void)state;
    sl_retry r = retry_of(50, 2000);
    unsigned seed = 3;
    /* Longer than the computed backoff: Retry-After wins. */
    assert_int_equal(sl_route_backoff_ms(&r, 0, 1, &seed), 1000);
    /* Beyond the cap: the cap. */
    assert_int_equal(sl_route_backoff_ms(&r, 0, 5, &seed), 2000);
    /* Shorter than the backoff: the backoff stands. */
    sl_retry big = retry_of(4000, 10000);
    uint32_t v = sl_route_backoff_ms(&big, 0, 0, &seed);
    assert_true(v >= 2000 && v <= 4000);
}

static void test_backoff_zero_base(void **state)
{
    (void)state;
    sl_retry r = retry_of(0, 0);
    unsigned seed = 9;
    assert_int_equal(sl_route_backoff_ms(&r, 3, -1, &seed), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_exact),
        cmocka_unit_test(test_lookup_globs),
        cmocka_unit_test(test_lookup_unknown_and_malformed),
        cmocka_unit_test(test_wrr_exact_and_smooth),
        cmocka_unit_test(test_wrr_single_target),
        cmocka_unit_test(test_routers_are_independent),
        cmocka_unit_test(test_plan_order),
        cmocka_unit_test(test_plan_truncated_by_max),
        cmocka_unit_test(test_plan_without_fallbacks),
        cmocka_unit_test(test_plan_never_repeats_entries),
        cmocka_unit_test(test_upstream_model),
        cmocka_unit_test(test_backoff_doubles_with_jitter),
        cmocka_unit_test(test_backoff_capped),
        cmocka_unit_test(test_backoff_honours_retry_after_up_to_cap),
        cmocka_unit_test(test_backoff_zero_base),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
