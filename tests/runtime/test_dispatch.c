/*
 * Tests for the endpoint table (runtime/proxy/dispatch.c): every row is
 * reached by its path (exact or prefix, query ignored) with the methods it
 * takes; a strict row answers another method with 405 while a GET row lets
 * it fall through to 404; the surface errors are answered in follows the
 * row, or anthropic-version for rows without one. Requests are real bytes
 * through the HTTP parser, as the server hands them to dispatch.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "handlers/handlers.h"
#include "http/http.h"
#include "proxy/dispatch.h"
#include "proxy/inference.h"

static char raw[2048];
static sl_http_request req;
static sl_http_header req_headers[SL_HTTP_MAX_HEADERS];

/* Parses "METHOD target" plus extra header lines into req. */
static const sl_http_request *request(const char *method, const char *target, const char *headers)
{
    int n = snprintf(raw, sizeof raw, "%s %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", method, target,
                     headers ? headers : "");
    assert_true(n > 0 && (size_t)n < sizeof raw);
    const char *why = NULL;
    req.headers = req_headers;
    req.header_cap = SL_HTTP_MAX_HEADERS;
    int rc = sl_http_parse_request(raw, (size_t)n, sizeof raw, SL_HTTP_MAX_HEADERS, &req, &why);
    if (rc != SL_HTTP_OK)
        fail_msg("%s %s: parse %d (%s)", method, target, rc, why ? why : "");
    return &req;
}

static const sl_endpoint *find(const char *method, const char *target, int *wrong)
{
    return sl_dispatch_find(request(method, target, NULL), wrong);
}

typedef struct row {
    const char *method, *target;
    const char *path; /* the row's path, NULL = no row */
    int wrong_method;
    sl_op op;
    int surface;
    int legacy;
    sl_endpoint_auth auth;
    sl_endpoint_fn handler;
} row;

static const row rows[] = {
    {"GET", "/healthz", "/healthz", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_healthz},
    {"HEAD", "/healthz?detail=1", "/healthz", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_healthz},
    {"HEAD", "/", "/", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_service},
    {"GET", "/", "/", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_PUBLIC, sl_handle_service},
    {"GET", "/admin/spend", "/admin/", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_ADMIN, sl_handle_admin},
    {"DELETE", "/admin/keys/x", "/admin/", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0, SL_EP_ADMIN, sl_handle_admin},
    {"POST", "/v1/chat/completions", "/v1/chat/completions", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 0,
     SL_EP_CLIENT, sl_inference_handle},
    {"POST", "/v1/messages", "/v1/messages", 0, SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT,
     sl_inference_handle},
    {"POST", "/v1/messages?beta=true", "/v1/messages", 0, SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, 0,
     SL_EP_CLIENT, sl_inference_handle},
    {"POST", "/v1/messages/count_tokens?beta=true", "/v1/messages/count_tokens", 0, SL_OP_COUNT_TOKENS,
     SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT, sl_inference_handle},
    {"POST", "/v1/completions", "/v1/completions", 0, SL_OP_CHAT, SL_PROTO_OPENAI, 1, SL_EP_CLIENT,
     sl_inference_handle},
    {"POST", "/v1/responses", "/v1/responses", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT,
     sl_inference_handle},
    {"GET", "/v1/responses", "/v1/responses", 1, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT,
     sl_inference_handle},
    /* Stored responses: one prefix row; its handler tells the sub-paths
     * and methods apart. */
    {"GET", "/v1/responses/resp_1", "/v1/responses/", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT,
     sl_handle_responses},
    {"DELETE", "/v1/responses/resp_1", "/v1/responses/", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0, SL_EP_CLIENT,
     sl_handle_responses},
    {"GET", "/v1/responses/resp_1/input_items?limit=2", "/v1/responses/", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0,
     SL_EP_CLIENT, sl_handle_responses},
    {"POST", "/v1/responses/resp_1/cancel", "/v1/responses/", 0, SL_OP_RESPONSES, SL_PROTO_RESPONSES, 0,
     SL_EP_CLIENT, sl_handle_responses},
    {"POST", "/v1/embeddings", "/v1/embeddings", 0, SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, 0, SL_EP_CLIENT,
     sl_inference_handle},
    {"POST", "/v1beta/models/gemini-2.5-flash:generateContent", "/v1beta/models/", 0, SL_OP_GENERATE,
     SL_PROTO_GEMINI, 0, SL_EP_CLIENT, sl_inference_handle},
    {"POST", "/v1beta/models/g:streamGenerateContent?alt=sse", "/v1beta/models/", 0, SL_OP_GENERATE,
     SL_PROTO_GEMINI, 0, SL_EP_CLIENT, sl_inference_handle},
    {"GET", "/v1/models", "/v1/models", 0, SL_OP_CHAT, -1, 0, SL_EP_CLIENT, sl_handle_models},
    {"HEAD", "/v1/models", "/v1/models", 0, SL_OP_CHAT, -1, 0, SL_EP_CLIENT, sl_handle_models},
    /* Strict rows: the path is theirs, the method is wrong (405). */
    {"GET", "/v1/chat/completions", "/v1/chat/completions", 1, SL_OP_CHAT, SL_PROTO_OPENAI, 0,
     SL_EP_CLIENT, sl_inference_handle},
    {"PUT", "/v1/messages", "/v1/messages", 1, SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT,
     sl_inference_handle},
    {"GET", "/v1/messages/count_tokens", "/v1/messages/count_tokens", 1, SL_OP_COUNT_TOKENS,
     SL_PROTO_ANTHROPIC, 0, SL_EP_CLIENT, sl_inference_handle},
    {"GET", "/v1/completions", "/v1/completions", 1, SL_OP_CHAT, SL_PROTO_OPENAI, 1, SL_EP_CLIENT,
     sl_inference_handle},
    {"DELETE", "/v1/embeddings", "/v1/embeddings", 1, SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, 0, SL_EP_CLIENT,
     sl_inference_handle},
    {"GET", "/v1beta/models/g:generateContent", "/v1beta/models/", 1, SL_OP_GENERATE, SL_PROTO_GEMINI, 0,
     SL_EP_CLIENT, sl_inference_handle},
};

static void test_every_row(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const row *w = &rows[i];
        int wrong = -1;
        const sl_endpoint *ep = find(w->method, w->target, &wrong);
        if (!ep)
            fail_msg("%s %s: no row", w->method, w->target);
        if (strcmp(ep->path, w->path) != 0 || wrong != w->wrong_method)
            fail_msg("%s %s: row %s wrong_method %d", w->method, w->target, ep->path, wrong);
        assert_int_equal(ep->op, w->op);
        assert_int_equal(ep->surface, w->surface);
        assert_int_equal(ep->legacy, w->legacy);
        assert_int_equal(ep->auth, w->auth);
        assert_ptr_equal(ep->handler, w->handler);
        assert_int_equal(ep->prefix, w->path[strlen(w->path) - 1] == '/' && strlen(w->path) > 1);
    }
}

static void test_get_rows_fall_through(void **state)
{
    (void)state;
    /* GET rows are not strict: other methods get 404, not 405. */
    static const char *const cases[][2] = {
        {"POST", "/healthz"}, {"DELETE", "/healthz"}, {"POST", "/"},
        {"PUT", "/"},         {"POST", "/v1/models"}, {"OPTIONS", "/v1/models"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        int wrong = -1;
        if (find(cases[i][0], cases[i][1], &wrong))
            fail_msg("%s %s matched a row", cases[i][0], cases[i][1]);
        assert_int_equal(wrong, 0);
    }
}

static void test_unknown_paths(void **state)
{
    (void)state;
    static const char *const paths[] = {
        "/v1/chat/completions/",   /* exact rows want the exact path */
        "/v1/chat/completionsX",
        "/v1/chat",
        "/v1/messages/",
        "/v1/messages/batches",
        "/V1/messages",            /* paths are case-sensitive */
        "/healthz/",
        "/v1beta/models/",         /* a prefix row needs something after it */
        "/v1/responses/",
        "/v1beta/models",
        "/v1/models/gpt-4o",
        "/admin",
        "/nope",
        "//v1/messages",
        "/v1/embeddings%2F",
    };
    for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
        int wrong = -1;
        if (find("POST", paths[i], &wrong))
            fail_msg("POST %s matched a row", paths[i]);
        assert_int_equal(wrong, 0);
        if (find("GET", paths[i], &wrong))
            fail_msg("GET %s matched a row", paths[i]);
    }
    /* The query never takes part in matching. */
    int wrong;
    assert_null(find("POST", "/nope?path=/v1/messages", &wrong));
}

static void test_surface(void **state)
{
    (void)state;
    int wrong;
    const sl_http_request *r = request("GET", "/v1/models", NULL);
    const sl_endpoint *ep = sl_dispatch_find(r, &wrong);
    assert_non_null(ep);
    assert_int_equal(sl_dispatch_surface(ep, r), SL_PROTO_OPENAI);
    r = request("GET", "/v1/models", "Anthropic-Version: 2023-06-01\r\n");
    ep = sl_dispatch_find(r, &wrong);
    assert_int_equal(sl_dispatch_surface(ep, r), SL_PROTO_ANTHROPIC);

    /* A row with a surface of its own ignores the header. */
    r = request("POST", "/v1/chat/completions", "anthropic-version: 2023-06-01\r\n");
    ep = sl_dispatch_find(r, &wrong);
    assert_int_equal(sl_dispatch_surface(ep, r), SL_PROTO_OPENAI);
    r = request("POST", "/v1beta/models/g:generateContent", "anthropic-version: 2023-06-01\r\n");
    ep = sl_dispatch_find(r, &wrong);
    assert_int_equal(sl_dispatch_surface(ep, r), SL_PROTO_GEMINI);
    r = request("POST", "/v1/messages", NULL);
    ep = sl_dispatch_find(r, &wrong);
    assert_int_equal(sl_dispatch_surface(ep, r), SL_PROTO_ANTHROPIC);

    /* No row (404): the header alone decides. */
    r = request("GET", "/nope", NULL);
    assert_int_equal(sl_dispatch_surface(NULL, r), SL_PROTO_OPENAI);
    r = request("GET", "/nope", "anthropic-version: 2023-06-01\r\n");
    assert_int_equal(sl_dispatch_surface(NULL, r), SL_PROTO_ANTHROPIC);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_row),
        cmocka_unit_test(test_get_rows_fall_through),
        cmocka_unit_test(test_unknown_paths),
        cmocka_unit_test(test_surface),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
