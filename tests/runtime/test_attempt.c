/*
 * Tests for the attempt state machine (runtime/proxy/attempt.c), driven as
 * proxy/forward.c drives it: fake ops record every start, wait and
 * exhausted call; the table is compiled from tests/runtime/attempt.yaml;
 * plans come from the real planner; circuit state is the real breaker
 * (route/health.c), tripped by the machine's own reports. Backoff jitter
 * is seeded, so waits are asserted as ranges over many seeds.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proxy/attempt.h"
#include "route/health.h"
#include "route/route.h"
#include "table.h"

typedef struct event {
    char kind; /* 'S'tart, 'W'ait, 'X' exhausted */
    uint32_t target;
    uint32_t ms;
} event;

typedef struct fake {
    event ev[64];
    size_t n;
    size_t starts, waits, exhausted;
} fake;

static void record(fake *f, event e)
{
    assert_true(f->n < sizeof f->ev / sizeof *f->ev);
    f->ev[f->n++] = e;
}

static void op_start(void *ctx, const sl_attempt *a)
{
    fake *f = ctx;
    f->starts++;
    record(f, (event){'S', a->target, 0});
}

static void op_wait(void *ctx, uint32_t ms)
{
    fake *f = ctx;
    f->waits++;
    record(f, (event){'W', 0, ms});
}

static void op_exhausted(void *ctx)
{
    fake *f = ctx;
    f->exhausted++;
    record(f, (event){'X', 0, 0});
}

static const sl_attempt_ops ops = {op_start, op_wait, op_exhausted};

static const sl_table *T = &sl_spec;
static sl_router *router;
static fake f;
static sl_attempts m;
static sl_arena arena; /* the failure text's, as a request's arena */

static int setup(void **state)
{
    (void)state;
    memset(&f, 0, sizeof f);
    sl_arena_init(&arena, 1024);
    router = sl_router_new(T);
    return router && sl_health_init(T) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sl_router_free(router);
    sl_health_shutdown();
    sl_arena_free(&arena);
    return 0;
}

static uint32_t entry_of(const char *name)
{
    int e = sl_route_lookup(T, name, strlen(name));
    assert_true(e >= 0);
    return (uint32_t)e;
}

static const char *prov_of(uint32_t target)
{
    return T->providers[T->targets[target].provider].name;
}

static uint32_t target_of(const char *provider)
{
    for (uint32_t i = 0; i < T->target_count; i++)
        if (strcmp(prov_of(i), provider) == 0)
            return i;
    fail_msg("no target on provider %s", provider);
    return 0;
}

static size_t plan_for(const char *model, sl_attempt *plan)
{
    return sl_route_plan(router, entry_of(model), plan, SL_ROUTE_PLAN_MAX);
}

static void begin_on(sl_attempts *am, fake *af, const char *model, unsigned seed)
{
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    size_t n = plan_for(model, plan);
    assert_true(n >= 1);
    sl_attempts_init(am, T, plan, n, &ops, af, seed, &arena);
    sl_attempts_begin(am);
}

static void begin(const char *model, unsigned seed)
{
    begin_on(&m, &f, model, seed);
}

static const char *current(const sl_attempts *am)
{
    return prov_of(sl_attempts_current(am)->target);
}

/* What forward.c does with an HTTP answer: tell the breaker, then move on
 * when the entry retries the status. 0 when the answer is final. */
static int answer(int status, int retry_after_s)
{
    sl_attempts_report(&m, !sl_attempts_status_is_target_failure(status));
    if (!sl_attempts_retry_status(&m, status))
        return 0;
    char why[32];
    snprintf(why, sizeof why, "HTTP %d", status);
    sl_attempts_next(&m, current(&m), why, retry_after_s);
    return 1;
}

/* ... and with a transport failure; a final one is only noted. */
static int xfer_failed(sl_xfer_result r)
{
    sl_attempts_report(&m, 0);
    if (!sl_attempts_retry_xfer(&m, r)) {
        sl_attempts_note(&m, current(&m), sl_xfer_result_name(r));
        return 0;
    }
    sl_attempts_next(&m, current(&m), sl_xfer_result_name(r), -1);
    return 1;
}

static void assert_start(size_t i, const char *provider)
{
    assert_true(i < f.n);
    assert_int_equal(f.ev[i].kind, 'S');
    assert_string_equal(prov_of(f.ev[i].target), provider);
}

static void assert_wait(size_t i, uint32_t lo, uint32_t hi)
{
    assert_true(i < f.n);
    assert_int_equal(f.ev[i].kind, 'W');
    assert_in_range(f.ev[i].ms, lo, hi);
}

static uint32_t fails_of(const char *provider, sl_health_state *st)
{
    uint32_t fails;
    int64_t rem;
    *st = sl_health_state_of(target_of(provider), sl_health_now_ms(), &fails, &rem);
    return fails;
}

/* Opens a target's circuit the way traffic does: failed tries reported
 * under its entry's cooldown settings. */
static void trip(const char *model, const char *provider, int failures)
{
    for (int i = 0; i < failures; i++) {
        sl_attempts tm;
        fake tf = {0};
        sl_attempt one = {entry_of(model), target_of(provider)};
        sl_attempts_init(&tm, T, &one, 1, &ops, &tf, 1, &arena);
        sl_attempts_begin(&tm);
        sl_attempts_report(&tm, 0);
    }
}

/* ---- plan walking ---------------------------------------------------------- */

static void test_fixture_plan(void **state)
{
    (void)state;
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    assert_int_equal(plan_for("primary", plan), 5);
    const char *want[] = {"a1", "a2", "b1", "c1", "c2"};
    const char *entries[] = {"primary", "primary", "second", "third", "third"};
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(prov_of(plan[i].target), want[i]);
        assert_int_equal(plan[i].entry, entry_of(entries[i]));
    }
}

static void test_retries_rotate_then_fall_back_in_order(void **state)
{
    (void)state;
    begin("primary", 42);
    assert_int_equal(f.starts, 1);
    assert_start(0, "a1");

    /* A retry waits first and starts nothing until the timer fires. */
    assert_true(answer(503, -1));
    assert_int_equal(f.starts, 1);
    assert_wait(1, 150, 300);
    sl_attempts_resume(&m);
    assert_start(2, "a2"); /* the next target in rotation */
    assert_true(answer(502, -1));
    assert_wait(3, 250, 500);
    sl_attempts_resume(&m);
    assert_start(4, "a1");
    /* Retries spent: the first fallback entry at once, no backoff. */
    assert_true(answer(500, -1));
    assert_start(5, "b1");
    /* second retries nothing: straight on to the next fallback. */
    assert_true(answer(503, -1));
    assert_start(6, "c1");
    assert_true(answer(503, -1));
    assert_wait(7, 500, 1000);
    sl_attempts_resume(&m);
    assert_start(8, "c2");
    assert_true(answer(503, -1));
    assert_int_equal(f.ev[9].kind, 'X');
    assert_int_equal(f.n, 10);
    assert_int_equal(f.exhausted, 1);
    assert_int_equal(m.tries, 6);
    assert_string_equal(sl_attempts_failures(&m), "a1: HTTP 503; a2: HTTP 502; a1: HTTP 500; b1: HTTP 503; "
                                    "c1: HTTP 503; c2: HTTP 503");
}

static void test_backoff_bounds_and_determinism(void **state)
{
    (void)state;
    uint32_t first_seen[2] = {UINT32_MAX, 0};
    for (unsigned seed = 0; seed < 64; seed++) {
        sl_health_init(T);
        memset(&f, 0, sizeof f);
        begin("primary", seed);
        answer(503, -1);
        sl_attempts_resume(&m);
        answer(503, -1);
        /* backoff 300ms, equal jitter: [150, 300]; then 600ms capped at
         * 500ms: [250, 500]. */
        assert_wait(1, 150, 300);
        assert_wait(3, 250, 500);
        uint32_t w1 = f.ev[1].ms, w2 = f.ev[3].ms;
        if (w1 < first_seen[0])
            first_seen[0] = w1;
        if (w1 > first_seen[1])
            first_seen[1] = w1;
        /* The same seed gives the same waits (seed 0 is seed 1). */
        sl_attempts again;
        fake af = {0};
        begin_on(&again, &af, "primary", seed ? seed : 1);
        sl_attempts_next(&again, "a", "x", -1);
        sl_attempts_resume(&again);
        sl_attempts_next(&again, "a", "x", -1);
        assert_int_equal(af.ev[1].ms, w1);
        assert_int_equal(af.ev[3].ms, w2);
    }
    /* Jitter spreads clients out: not every seed waits the same. */
    assert_true(first_seen[1] > first_seen[0]);
}

static void test_retry_after_honoured_up_to_cap(void **state)
{
    (void)state;
    begin("primary", 7);
    /* Longer than the backoff: honoured, but the entry caps it (500ms). */
    answer(429, 30);
    assert_int_equal(f.ev[1].ms, 500);
    sl_attempts_resume(&m);
    /* Shorter than the backoff: the backoff stands. */
    answer(429, 0);
    assert_wait(3, 250, 500);
    sl_attempts_resume(&m);
    assert_start(4, "a1");
    answer(503, -1); /* to b1 */
    answer(503, -1); /* to c1: backoff 1s, cap 3s */
    assert_start(6, "c1");
    answer(503, 2);
    assert_int_equal(f.ev[7].ms, 2000);

    memset(&f, 0, sizeof f);
    begin("third", 7);
    answer(503, 5);
    assert_int_equal(f.ev[1].ms, 3000);
    /* Retry-After of one answer does not stretch the next wait. */
    sl_attempts_resume(&m);
    assert_int_equal(m.retry_after_s, -1);
}

static void test_retry_conditions_follow_the_current_entry(void **state)
{
    (void)state;
    begin("primary", 1);
    assert_string_equal(sl_attempts_entry(&m)->name, "primary");
    assert_true(sl_attempts_retry_status(&m, 429));
    assert_true(sl_attempts_retry_status(&m, 500));
    assert_true(sl_attempts_retry_status(&m, 599));
    assert_false(sl_attempts_retry_status(&m, 400));
    assert_false(sl_attempts_retry_status(&m, 404));
    assert_false(sl_attempts_retry_status(&m, 408)); /* not in this `on:` list */
    assert_false(sl_attempts_retry_status(&m, 200));
    assert_false(sl_attempts_retry_status(&m, -1));
    assert_false(sl_attempts_retry_status(&m, 640));
    assert_false(sl_attempts_retry_status(&m, 100000));
    assert_true(sl_attempts_retry_xfer(&m, SL_XFER_CONNECT));
    assert_true(sl_attempts_retry_xfer(&m, SL_XFER_RESET));
    assert_true(sl_attempts_retry_xfer(&m, SL_XFER_TLS)); /* connect-class: another target may do */
    assert_false(sl_attempts_retry_xfer(&m, SL_XFER_TIMEOUT_FIRST_BYTE));
    assert_false(sl_attempts_retry_xfer(&m, SL_XFER_TIMEOUT_IDLE));
    assert_false(sl_attempts_retry_xfer(&m, SL_XFER_ERROR));
    assert_false(sl_attempts_retry_xfer(&m, SL_XFER_OK));

    /* Walk to the third entry: its own list (503, timeout) applies. */
    for (int i = 0; i < 4; i++) {
        answer(500, -1);
        if (f.ev[f.n - 1].kind == 'W')
            sl_attempts_resume(&m);
    }
    assert_string_equal(current(&m), "c1");
    assert_string_equal(sl_attempts_entry(&m)->name, "third");
    assert_true(sl_attempts_retry_status(&m, 503));
    assert_false(sl_attempts_retry_status(&m, 500));
    assert_false(sl_attempts_retry_status(&m, 429));
    assert_true(sl_attempts_retry_xfer(&m, SL_XFER_TIMEOUT_FIRST_BYTE));
    assert_true(sl_attempts_retry_xfer(&m, SL_XFER_TIMEOUT_TOTAL));
    assert_false(sl_attempts_retry_xfer(&m, SL_XFER_CONNECT));

    assert_true(sl_attempts_status_is_target_failure(500));
    assert_true(sl_attempts_status_is_target_failure(429));
    assert_true(sl_attempts_status_is_target_failure(408));
    assert_false(sl_attempts_status_is_target_failure(400));
    assert_false(sl_attempts_status_is_target_failure(200));
}

static void test_final_outcomes_start_nothing_more(void **state)
{
    (void)state;
    sl_health_state st;
    begin("primary", 1);
    assert_false(answer(400, -1)); /* the client's fault: the answer is final */
    assert_int_equal(f.n, 1);
    assert_int_equal(fails_of("a1", &st), 0); /* and not the target's fault */

    memset(&f, 0, sizeof f);
    begin("third", 1);
    /* A 500 is the target's fault, but third does not retry it. */
    const char *tried = current(&m);
    assert_false(answer(500, -1));
    assert_int_equal(f.n, 1);
    assert_int_equal(fails_of(tried, &st), 1);
    /* Neither does it retry connect failures: noted for the final error. */
    memset(&f, 0, sizeof f);
    begin("third", 1);
    char want[32];
    snprintf(want, sizeof want, "%s: connect", current(&m));
    assert_false(xfer_failed(SL_XFER_CONNECT));
    assert_int_equal(f.n, 1);
    assert_string_equal(sl_attempts_failures(&m), want);
}

static void test_stream_started_then_failed(void **state)
{
    (void)state;
    sl_health_state st;
    begin("primary", 1);
    /* Bytes reached the client, then the stream broke: the caller only
     * reports, because a retry may no longer happen. */
    sl_attempts_report(&m, 0);
    assert_int_equal(f.n, 1);
    assert_int_equal(f.waits + f.exhausted, 0);
    assert_int_equal(fails_of("a1", &st), 1);
    assert_int_equal(st, SL_HEALTH_CLOSED);
}

/* ---- cooldown ---------------------------------------------------------------- */

static void test_open_circuit_is_skipped(void **state)
{
    (void)state;
    sl_health_state st;
    trip("cool", "x1", 2);
    assert_int_equal(fails_of("x1", &st), 2);
    assert_int_equal(st, SL_HEALTH_OPEN);
    /* Whichever order the balancer gives, x1 is passed over. */
    for (int round = 0; round < 2; round++) {
        memset(&f, 0, sizeof f);
        begin("cool", 1);
        assert_start(0, "x2");
        assert_string_equal(sl_attempts_failures(&m), "");
    }
    /* Retries stay on the healthy target, then the fallback. */
    answer(503, -1);
    sl_attempts_resume(&m);
    assert_start(2, "x2");
    answer(503, -1);
    assert_start(3, "y1");
}

static void test_cooling_group_moves_to_fallback(void **state)
{
    (void)state;
    trip("cool", "x1", 2);
    trip("cool", "x2", 2);
    begin("cool", 1);
    assert_start(0, "y1");
    assert_int_equal(f.waits, 0);
    assert_non_null(strstr(sl_attempts_failures(&m), ": all targets cooling down"));
    assert_true(xfer_failed(SL_XFER_CONNECT));
    assert_int_equal(f.exhausted, 1);
    assert_non_null(strstr(sl_attempts_failures(&m), "; y1: connect"));
}

static void test_everything_cooling_still_tries(void **state)
{
    (void)state;
    trip("cool", "x1", 2);
    trip("cool", "x2", 2);
    trip("cool-fallback", "y1", 2);
    sl_attempt plan[SL_ROUTE_PLAN_MAX];
    size_t n = plan_for("cool", plan);
    sl_attempts_init(&m, T, plan, n, &ops, &f, 1, &arena);
    sl_attempts_begin(&m);
    /* A degraded answer beats none: the rotation's target, as no probe. */
    assert_int_equal(f.ev[0].target, plan[0].target);
    assert_false(m.probe);
    xfer_failed(SL_XFER_CONNECT);
    sl_attempts_resume(&m);
    assert_int_equal(f.ev[2].target, plan[1].target);
    xfer_failed(SL_XFER_CONNECT);
    assert_start(3, "y1");
    xfer_failed(SL_XFER_CONNECT);
    assert_int_equal(f.ev[4].kind, 'X');
    assert_int_equal(f.n, 5);
}

static void wait_out_flaky_period(void)
{
    sl_health_state st;
    usleep(30 * 1000);
    fails_of("z1", &st);
    assert_int_equal(st, SL_HEALTH_HALF_OPEN);
}

static void test_probe_released_on_abandon(void **state)
{
    (void)state;
    sl_health_state st;
    trip("flaky", "z1", 1);
    fails_of("z1", &st);
    assert_int_equal(st, SL_HEALTH_OPEN);
    wait_out_flaky_period();
    uint32_t z1 = target_of("z1");

    begin("flaky", 1);
    assert_true(m.probe); /* exactly one request tests the target */
    assert_false(sl_health_usable(z1, sl_health_now_ms()));

    /* Meanwhile another request finds nothing usable and tries anyway,
     * without the probe slot; its abandon must not free the slot. */
    sl_attempts other;
    fake of = {0};
    begin_on(&other, &of, "flaky", 1);
    assert_int_equal(of.starts, 1);
    assert_false(other.probe);
    sl_attempts_abandon(&other);
    assert_false(sl_health_usable(z1, sl_health_now_ms()));

    /* The prober's client goes away: the slot is free again. */
    sl_attempts_abandon(&m);
    assert_false(m.probe);
    assert_true(sl_health_usable(z1, sl_health_now_ms()));
    memset(&f, 0, sizeof f);
    begin("flaky", 1);
    assert_true(m.probe);
    /* The probe succeeds: closed for everyone. */
    sl_attempts_report(&m, 1);
    assert_int_equal(fails_of("z1", &st), 0);
    assert_int_equal(st, SL_HEALTH_CLOSED);
}

static void test_failed_probe_reopens(void **state)
{
    (void)state;
    sl_health_state st;
    trip("flaky", "z1", 1);
    wait_out_flaky_period();
    begin("flaky", 1);
    assert_true(m.probe);
    assert_true(answer(503, -1));
    assert_int_equal(f.exhausted, 1);
    fails_of("z1", &st);
    assert_int_equal(st, SL_HEALTH_OPEN);
    assert_false(m.probe);
}

/* ---- bounds ------------------------------------------------------------------- */

static void test_plan_length_cap(void **state)
{
    (void)state;
    assert_int_equal(SL_MAX_ATTEMPTS, SL_ROUTE_PLAN_MAX);
    /* Alternating entries: every step is a group of its own. */
    sl_attempt plan[SL_ROUTE_PLAN_MAX + 4];
    uint32_t e2 = entry_of("second"), e3 = entry_of("flaky");
    for (size_t i = 0; i < SL_ROUTE_PLAN_MAX + 4; i++)
        plan[i] = i % 2 ? (sl_attempt){e3, target_of("z1")} : (sl_attempt){e2, target_of("b1")};
    sl_attempts_init(&m, T, plan, SL_ROUTE_PLAN_MAX + 4, &ops, &f, 1, &arena);
    assert_int_equal(m.plan_len, SL_ROUTE_PLAN_MAX);
    sl_attempts_begin(&m);
    while (!f.exhausted) {
        assert_true(f.starts <= SL_ROUTE_PLAN_MAX);
        sl_attempts_next(&m, current(&m), "HTTP 503", -1);
    }
    assert_int_equal(f.starts, SL_ROUTE_PLAN_MAX);
    assert_int_equal(f.waits, 0);
    assert_int_equal(m.tries, SL_ROUTE_PLAN_MAX);
}

static void test_failure_text_is_bounded(void **state)
{
    (void)state;
    begin("second", 1);
    for (int i = 0; i < 100; i++)
        sl_attempts_note(&m, "a-provider-with-a-rather-long-name", "HTTP 503");
    assert_int_equal(m.failures_len, SL_ATTEMPTS_FAILURES_MAX - 1);
    assert_int_equal(strlen(sl_attempts_failures(&m)), m.failures_len);
    assert_memory_equal(sl_attempts_failures(&m), "a-provider-with-a-rather-long-name: HTTP 503; a-provider", 56);
    sl_attempts_note(&m, NULL, "late");
    assert_int_equal(strlen(sl_attempts_failures(&m)), SL_ATTEMPTS_FAILURES_MAX - 1);

    begin("second", 1);
    sl_attempts_note(&m, NULL, "why");
    assert_string_equal(sl_attempts_failures(&m), "?: why");
}

int main(void)
{
#define T_(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_fixture_plan),
        T_(test_retries_rotate_then_fall_back_in_order),
        T_(test_backoff_bounds_and_determinism),
        T_(test_retry_after_honoured_up_to_cap),
        T_(test_retry_conditions_follow_the_current_entry),
        T_(test_final_outcomes_start_nothing_more),
        T_(test_stream_started_then_failed),
        T_(test_open_circuit_is_skipped),
        T_(test_cooling_group_moves_to_fallback),
        T_(test_everything_cooling_still_tries),
        T_(test_probe_released_on_abandon),
        T_(test_failed_probe_reopens),
        T_(test_plan_length_cap),
        T_(test_failure_text_is_bounded),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
