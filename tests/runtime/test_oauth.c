/*
 * Tests for runtime/auth/oauth.c, the token source, against the upstream
 * fixture's loopback server standing in for a token endpoint (and the
 * API): one fetch for every request waiting, a refusal reported to each
 * with the endpoint's status and OAuth error code, the grant's form, the
 * token reused from the cache and sent as a bearer header, the bound on
 * waiting requests, cancelling waiters, and freeing a worker while its
 * fetch is in flight (ASan checks nothing leaks).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth.h"
#include "upstream_fixture.h"

typedef struct rec {
    int done;
    sl_xfer_result r;
    int status;
    char detail[256];
} rec;

static int target, finished;
static struct ev_loop *cur_loop;

static void r_head(void *ctx, const sl_xfer_head *h) { ((rec *)ctx)->status = h->status; }
static size_t r_data(void *ctx, const char *p, size_t n)
{
    (void)ctx;
    (void)p;
    return n;
}
static void r_done(void *ctx, sl_xfer_result r, const char *detail)
{
    rec *x = ctx;
    x->done++;
    x->r = r;
    snprintf(x->detail, sizeof x->detail, "%s", detail ? detail : "");
    if (++finished >= target)
        ev_break(cur_loop, EVBREAK_ONE);
}
static const sl_xfer_callbacks rcb = {r_head, r_data, r_done};

static char token_url[128], api_url[128];
static sl_provider_oauth grant = {.ops = &sl_oauth_module_ops, .grant = SL_OAUTH_ENTRA, .tenant_id = "t1", .client_id = "app-1",
                                  .secret_env = "SLUICE_TEST_ENTRA_SECRET", .token_url = token_url};
static sl_provider provs[1] = {{.name = "az", .kind = SL_KIND_OPENAI, .base_url = "http://127.0.0.1",
                                .oauth = &grant, .connect_ms = 2000}};
static sl_table table = {.providers = provs, .provider_count = 1};
static sl_oauth_worker *ow;

static int o_setup(void **state)
{
    setup(state);
    fixture *f = *state;
    snprintf(token_url, sizeof token_url, "http://127.0.0.1:%d/t1/oauth2/v2.0/token", f->s.port);
    snprintf(api_url, sizeof api_url, "http://127.0.0.1:%d/openai/deployments/d/chat/completions", f->s.port);
    setenv("SLUICE_TEST_ENTRA_SECRET", "s3cret+/=", 1);
    char err[256];
    assert_int_equal(sl_oauth_init(&table, err, sizeof err), 0);
    ow = sl_oauth_worker_new(&table, f->loop, f->u);
    assert_non_null(ow);
    cur_loop = f->loop;
    finished = 0;
    return 0;
}

static int o_teardown(void **state)
{
    sl_oauth_worker_free(ow);
    ow = NULL;
    sl_oauth_shutdown();
    return teardown(state);
}

static void *start(fixture *f, rec *r)
{
    sl_xfer_spec sp = {.url = api_url, .body = "{}", .body_len = 2, .first_byte_ms = 2000,
                       .idle_ms = 2000, .provider = &provs[0]};
    return sl_transport_oauth.start(f->loop, f->u, &sp, &rcb, r);
}

static void loop_until(fixture *f, int n, double max_s)
{
    target = n;
    ev_timer_init(&f->guard, guard_cb, max_s, 0.);
    f->guard.data = f;
    ev_timer_start(f->loop, &f->guard);
    if (finished < target)
        ev_run(f->loop, 0);
    ev_timer_stop(f->loop, &f->guard);
    assert_false(f->guard_fired);
}

static void test_refused_once_for_all(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 59\r\n\r\n"
                  "{\"error\":\"invalid_client\",\"error_description\":\"bad secret\"}";
    rec r[3] = {0};
    for (int i = 0; i < 3; i++)
        assert_non_null(start(f, &r[i]));
    loop_until(f, 3, 5);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(r[i].done, 1);
        assert_int_equal(r[i].r, SL_XFER_AUTH);
        assert_string_equal(r[i].detail,
                            "no access token: the token endpoint answered HTTP 401 (invalid_client)");
    }
    assert_int_equal(sl_oauth_worker_fetches(ow, 0), 1);
    assert_int_equal(f->s.requests, 1);
    /* the client-credentials form, percent-escaped */
    const char *q = f->s.last_req;
    assert_non_null(strstr(q, "POST /t1/oauth2/v2.0/token HTTP/1.1"));
    assert_non_null(strstr(q, "Content-Type: application/x-www-form-urlencoded"));
    assert_non_null(strstr(q, "grant_type=client_credentials&client_id=app-1&client_secret=s3cret%2B%2F%3D"
                              "&scope=https%3A%2F%2Fcognitiveservices.azure.com%2F.default"));
}

static void test_granted_cached_and_sent(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STATUS;
    /* the token endpoint and the API get the same answer: fine for both */
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 66\r\n\r\n"
                  "{\"access_token\":\"tok-123\",\"expires_in\":3600,\"token_type\":\"Bearer\"}";
    rec a = {0}, b = {0};
    assert_non_null(start(f, &a));
    loop_until(f, 1, 5);
    assert_int_equal(a.r, SL_XFER_OK);
    assert_int_equal(a.status, 200);
    assert_non_null(strstr(f->s.last_req, "POST /openai/deployments/d/chat/completions"));
    assert_non_null(strstr(f->s.last_req, "Authorization: Bearer tok-123\r\n"));
    finished = 0;
    assert_non_null(start(f, &b));
    loop_until(f, 1, 5);
    assert_int_equal(b.r, SL_XFER_OK);
    assert_int_equal(f->s.requests, 3); /* one token, two API requests */
    assert_int_equal(sl_oauth_worker_fetches(ow, 0), 1);
}

static void test_unusable_answer(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 32\r\n\r\n"
                  "{\"access_token\":\"a\\r\\nX-Bad: 1\"}";
    rec a = {0};
    assert_non_null(start(f, &a));
    loop_until(f, 1, 5);
    assert_int_equal(a.r, SL_XFER_AUTH);
    assert_non_null(strstr(a.detail, "the token endpoint's answer is unusable (the access_token is not printable"));
    assert_int_equal(f->s.requests, 1);
}

static void test_bound_cancel_and_free_in_flight(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_SILENT; /* the token endpoint never answers */
    enum { N = SL_OAUTH_MAX_WAITERS };
    rec *r = calloc(N + 1, sizeof *r);
    void **x = calloc(N + 1, sizeof *x);
    for (int i = 0; i <= N; i++)
        assert_non_null(x[i] = start(f, &r[i]));
    loop_until(f, 1, 5); /* the one over the bound fails at once */
    assert_int_equal(r[N].done, 1);
    assert_int_equal(r[N].r, SL_XFER_AUTH);
    assert_string_equal(r[N].detail, "no access token: too many requests are waiting for one");
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].done, 0);
    assert_int_equal(sl_oauth_worker_fetches(ow, 0), 1);
    /* waiters that leave are never called back */
    for (int i = 0; i < N / 2; i++)
        sl_transport_oauth.cancel(x[i]);
    ev_run(f->loop, EVRUN_NOWAIT);
    for (int i = 0; i < N; i++)
        assert_int_equal(r[i].done, 0);
    /* the rest leave with the worker; its fetch is cancelled */
    for (int i = N / 2; i < N; i++)
        sl_transport_oauth.cancel(x[i]);
    sl_oauth_worker_free(ow);
    ow = NULL;
    assert_int_equal(sl_upstream_active(f->u), 0);
    free(r);
    free(x);
}

static void test_bad_token_url_stops_start(void **state)
{
    (void)state;
    sl_oauth_shutdown();
    char saved[128], err[256];
    snprintf(saved, sizeof saved, "%s", token_url);
    snprintf(token_url, sizeof token_url, "http://example.com/token");
    assert_int_equal(sl_oauth_init(&table, err, sizeof err), -1);
    assert_string_equal(err, "provider 'az': token endpoint 'http://example.com/token' must be https:// "
                             "(or http:// to a loopback host)");
    unsetenv("SLUICE_TEST_ENTRA_SECRET");
    snprintf(token_url, sizeof token_url, "%s", saved);
    assert_int_equal(sl_oauth_init(&table, err, sizeof err), -1);
    assert_string_equal(err, "provider 'az': client_secret: environment variable SLUICE_TEST_ENTRA_SECRET is "
                             "not set");
    assert_int_equal(sl_oauth_set_token_url(provs, 1, "az=ftp://x", err, sizeof err), -1);
    assert_int_equal(sl_oauth_set_token_url(provs, 1, "nope=https://x/t", err, sizeof err), -1);
    assert_non_null(strstr(err, "no provider 'nope'"));
}

#define OT(fn) cmocka_unit_test_setup_teardown(fn, o_setup, o_teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        OT(test_refused_once_for_all),
        OT(test_granted_cached_and_sent),
        OT(test_unusable_answer),
        OT(test_bound_cancel_and_free_in_flight),
        OT(test_bad_token_url_stops_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
