/*
 * Tests for the upstream client (runtime/upstream/upstream.c) against a real
 * HTTP server: a small loopback server on 127.0.0.1:0 runs in the same libev
 * loop as the transfers (ev_io callbacks, blocking writes of small pieces),
 * and each test scripts how it answers: normally, in pieces released one at
 * a time by the client, silently, stalling, closing mid-body, redirecting.
 * No mocks: libcurl does real TCP, so the watchdog timeouts, the failure
 * classification and the cancel/pause paths are the ones the gateway runs.
 * This file: what a transfer delivers (body, head, status, filtering);
 * test_upstream_failures.c: connect failures, timeouts and resets;
 * test_upstream_cancel.c: cancel, abort and pause. The server and the
 * client callbacks are in upstream_fixture.c.
 * Each test gets a fresh loop and upstream; AddressSanitizer's leak check
 * covers "nothing leaks".
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream/upstream.h"
#include "upstream_fixture.h"

static void test_ok_in_pieces(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_PIECES;
    f->lockstep = 1;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/chat/completions", url, sizeof url);
    struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
    h = curl_slist_append(h, "Authorization: Bearer up-key");
    sp.headers = h;
    const char body[] = "{\"model\":\"m\",\"stream\":true}";
    sp.body = body;
    sp.body_len = sizeof body - 1;
    run(f, &sp, 3.0);
    curl_slist_free_all(h);

    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_string_equal(f->detail, "");
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->content_type, "text/event-stream");
    /* Each chunk reached on_data on its own, as it arrived: nothing waited
     * for the end of the response. */
    assert_int_equal(f->datas, 3);
    assert_int_equal(f->data_len, 15);
    assert_memory_equal(f->data, "alphabeta-gamma", 15);
    assert_int_equal(f->first_delivery_len, 5);
    assert_memory_equal(f->first_delivery, "alpha", 5);
    /* The request went out as specified. */
    assert_int_equal(f->s.requests, 1);
    assert_true(strncmp(f->s.last_req, "POST /v1/chat/completions HTTP/1.1\r\n", 36) == 0);
    assert_non_null(strstr(f->s.last_req, "\r\nAuthorization: Bearer up-key\r\n"));
    assert_non_null(strstr(f->s.last_req, "\r\nContent-Type: application/json\r\n"));
    assert_int_equal(memcmp(f->s.last_req + f->s.last_req_len - (sizeof body - 1), body,
                            sizeof body - 1), 0);
}

static void test_head_filtering(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_HEADERS;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/get", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->content_type, "application/json; charset=utf-8");
    assert_int_equal(f->retry_after, 7);
    assert_int_equal(f->data_len, 11);
    assert_memory_equal(f->data, "{\"ok\":true}", 11);
    /* A GET when there is no body. */
    assert_true(strncmp(f->s.last_req, "GET /get HTTP/1.1\r\n", 19) == 0);

    /* Rate-limit and request-id headers pass, values trimmed, names as
     * sent; nothing else does. */
    const char *kept[] = {
        "x-ratelimit-remaining-requests: 99\r\n", "X-RateLimit-Limit-Tokens: 1000\r\n",
        "anthropic-ratelimit-requests-limit: 50\r\n", "request-id: req_123\r\n",
        "x-upstream-request-id: abc-def\r\n", "openai-processing-ms: 12\r\n", "Retry-After: 7\r\n",
    };
    size_t total = 0;
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) {
        if (!strstr(f->pass, kept[i]))
            fail_msg("missing '%s' in passthrough:\n%s", kept[i], f->pass);
        total += strlen(kept[i]);
    }
    assert_int_equal(strlen(f->pass), total);
    const char *dropped[] = {"Set-Cookie", "secret", "Connection", "Keep-Alive", "Server", "Via",
                             "Content-Length", "Content-Type"};
    for (size_t i = 0; i < sizeof dropped / sizeof *dropped; i++)
        if (strstr(f->pass, dropped[i]))
            fail_msg("'%s' must not pass:\n%s", dropped[i], f->pass);
}

static void run_status(fixture *f, const char *canned)
{
    f->s.sc = SC_STATUS;
    f->s.canned = canned;
    f->dones = f->heads = f->datas = 0;
    f->data_len = 0;
    f->retry_after = -2;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/s", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
}

static void test_status_and_retry_after(void **state)
{
    fixture *f = *state;
    run_status(f, "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 30\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 429);
    assert_int_equal(f->retry_after, 30);
    assert_false(f->has_content_type);
    assert_int_equal(f->datas, 0);

    run_status(f, "HTTP/1.1 503 Service Unavailable\r\n"
                  "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\nContent-Length: 2\r\n\r\nno");
    assert_int_equal(f->status, 503);
    assert_int_equal(f->retry_after, -1);
    assert_memory_equal(f->data, "no", 2);

    run_status(f, "HTTP/1.1 529 Overloaded\r\nretry-after: 0\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 529);
    assert_int_equal(f->retry_after, 0);

    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: -5\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: 12abc\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 429 Slow Down\r\nretry-after: 99999999\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->retry_after, -1);
    run_status(f, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    assert_int_equal(f->status, 200);
    assert_int_equal(f->retry_after, -1);
    assert_string_equal(f->pass, "");
    /* All on one kept-alive connection. */
    assert_int_equal(f->s.requests, 7);
}

static void test_interim_response_ignored(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_EARLY_HINTS;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->pass, "x-upstream-request-id: final\r\n");
    assert_int_equal(f->retry_after, -1);
    assert_memory_equal(f->data, "ok", 2);
}

/* A bare CR (or another control byte) inside a header value must never
 * reach the client: a client that treats CR as a line end would see a
 * header the upstream smuggled in. Such headers are dropped whole. */
static void test_head_values_validated(void **state)
{
    fixture *f = *state;
    char big[400];
    memset(big, 'a', sizeof big);
    big[sizeof big - 1] = '\0';
    char canned[2048];
    snprintf(canned, sizeof canned,
             "HTTP/1.1 200 OK\r\n"
             "x-request-id: abc\rSet-Cookie: session=stolen\r\n"
             "x-ratelimit-remaining-requests: 5\x01\r\n"
             "x-ratelimit-reset-requests: 1s\x7f\r\n"
             "anthropic-ratelimit-tokens-limit: 10 \r 20\r\n"
             "request-id: %s\r\n"
             "x-ratelimit-limit-requests:\t60\t\r\n"
             "retry-after-ms: 1500\r\n"
             "Content-Length: 2\r\n\r\nok",
             big);
    run_status(f, canned);
    assert_int_equal(f->status, 200);
    assert_string_equal(f->pass, "x-ratelimit-limit-requests: 60\r\nretry-after-ms: 1500\r\n");
    assert_null(strchr(f->pass, '\x01'));
    assert_null(strstr(f->pass, "stolen"));
}

/* Only request ids, rate limits and Retry-After pass: identifiers of the
 * operator's upstream account (organisation, project) and everything
 * else the provider sends stay behind the gateway. */
static void test_head_allow_list(void **state)
{
    fixture *f = *state;
    run_status(f, "HTTP/1.1 200 OK\r\n"
                  "openai-organization: org-secret\r\n"
                  "openai-project: proj_secret\r\n"
                  "openai-version: 2020-10-01\r\n"
                  "anthropic-organization-id: 0000-secret\r\n"
                  "x-goog-upload-url: https://secret\r\n"
                  "cf-ray: 8f00secret\r\n"
                  "Strict-Transport-Security: max-age=1\r\n"
                  "x-request-id-extra: secret\r\n"
                  "request-idx: secret\r\n"
                  "x-ratelimit-remaining-tokens: 99\r\n"
                  "Content-Length: 0\r\n\r\n");
    assert_string_equal(f->pass, "x-ratelimit-remaining-tokens: 99\r\n");
}

static void test_redirect_not_followed(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_REDIRECT;
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/models", url, sizeof url);
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->heads, 1);
    assert_int_equal(f->status, 302);
    assert_null(strstr(f->pass, "Location"));
    assert_int_equal(f->data_len, 5);
    assert_memory_equal(f->data, "moved", 5);
    assert_int_equal(f->s.requests, 1);
    assert_null(strstr(f->s.last_req, "/elsewhere"));
}

static void test_large_body_no_expect_wait(void **state)
{
    fixture *f = *state;
    /* Long-context requests run to megabytes. curl would send them with
     * "Expect: 100-continue" and then wait up to a second for a "100" that
     * many servers never send; the body must go out at once instead. */
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    size_t big = 3u << 20;
    char *body = malloc(big);
    assert_non_null(body);
    memset(body, 'b', big);
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/v1/messages", url, sizeof url);
    sp.body = body;
    sp.body_len = big;
    double t0 = now_s(f);
    run(f, &sp, 5.0);
    double took = now_s(f) - t0;
    free(body);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->status, 200);
    assert_int_equal(f->s.body_seen, big);
    assert_null(strcasestr(f->s.last_req, "expect:"));
    assert_true(took < 0.8);
}

/* Finished easy handles are kept without curl_easy_reset: the next
 * transfer on the same handle must carry nothing of the last one (its
 * method, body, headers, URL) and still refuse other schemes. */
static void test_kept_handle_starts_clean(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    char url[128];
    sl_xfer_spec sp = spec_for(f, "/first", url, sizeof url);
    struct curl_slist *h = curl_slist_append(NULL, "X-Old: yes");
    sp.headers = h;
    static const char body[] = "{\"old\":true}";
    sp.body = body;
    sp.body_len = sizeof body - 1;
    run(f, &sp, 3.0);
    curl_slist_free_all(h);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_true(strncmp(f->s.last_req, "POST /first HTTP/1.1\r\n", 22) == 0);

    f->dones = 0;
    char url2[128];
    sl_xfer_spec get = spec_for(f, "/second", url2, sizeof url2);
    run(f, &get, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->s.requests, 2);
    assert_true(strncmp(f->s.last_req, "GET /second HTTP/1.1\r\n", 22) == 0);
    assert_null(strcasestr(f->s.last_req, "x-old"));
    assert_null(strstr(f->s.last_req, "old\":true"));
    assert_null(strcasestr(f->s.last_req, "content-length"));

    f->dones = 0;
    sl_xfer_spec bad = {.url = "file:///etc/hostname", .first_byte_ms = 1000, .idle_ms = 1000};
    run(f, &bad, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_ERROR);
}

static void test_only_http_schemes(void **state)
{
    fixture *f = *state;
    /* The URL comes from the spec, but curl must still refuse anything that
     * is not HTTP(S). */
    sl_xfer_spec sp = {.url = "file:///etc/hostname", .first_byte_ms = 1000, .idle_ms = 1000};
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_ERROR);
    assert_int_equal(f->heads + f->datas, 0);
}

/* Without proxy variables libcurl is told "no proxy" once per handle
 * instead of reading the environment per transfer (every other test runs
 * that way); with them, the environment must still rule: http_proxy sends
 * the request through the proxy in absolute form, and NO_PROXY still
 * exempts its hosts. */
static void test_proxy_from_environment(void **state)
{
    fixture *f = *state;
    f->s.sc = SC_STATUS;
    f->s.canned = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    char proxy[64];
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", f->s.port);
    setenv("http_proxy", proxy, 1);
    sl_xfer_spec sp = {.url = "http://upstream.invalid/v1/models", .first_byte_ms = 2000, .idle_ms = 2000};
    run(f, &sp, 3.0);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->s.requests, 1);
    static const char line[] = "GET http://upstream.invalid/v1/models HTTP/1.1\r\n";
    assert_true(strncmp(f->s.last_req, line, sizeof line - 1) == 0);

    /* A proxy nobody listens on, and NO_PROXY naming the loopback. */
    int dead = 0;
    int fd = listen_loopback(0, &dead);
    snprintf(proxy, sizeof proxy, "http://127.0.0.1:%d", dead);
    setenv("http_proxy", proxy, 1);
    setenv("NO_PROXY", "127.0.0.1", 1);
    f->dones = 0;
    char url[128];
    sl_xfer_spec direct = spec_for(f, "/direct", url, sizeof url);
    run(f, &direct, 3.0);
    unsetenv("http_proxy");
    unsetenv("NO_PROXY");
    close(fd);
    assert_int_equal(f->dones, 1);
    assert_int_equal(f->result, SL_XFER_OK);
    assert_int_equal(f->s.requests, 2);
    static const char direct_line[] = "GET /direct HTTP/1.1\r\n";
    assert_true(strncmp(f->s.last_req, direct_line, sizeof direct_line - 1) == 0);
}

static void test_result_names(void **state)
{
    assert_string_equal(sl_xfer_result_name(SL_XFER_OK), "ok");
    assert_string_equal(sl_xfer_result_name(SL_XFER_CONNECT), "connect");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_FIRST_BYTE), "first_byte_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_IDLE), "idle_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TIMEOUT_TOTAL), "total_timeout");
    assert_string_equal(sl_xfer_result_name(SL_XFER_RESET), "reset");
    assert_string_equal(sl_xfer_result_name(SL_XFER_ERROR), "error");
    assert_string_equal(sl_xfer_result_name(SL_XFER_TLS), "tls");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_result_names),
        T(test_ok_in_pieces),
        T(test_head_filtering),
        T(test_status_and_retry_after),
        T(test_interim_response_ignored),
        T(test_head_values_validated),
        T(test_head_allow_list),
        T(test_redirect_not_followed),
        T(test_large_body_no_expect_wait),
        T(test_only_http_schemes),
        T(test_kept_handle_starts_clean),
        T(test_proxy_from_environment),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
