/*
 * Tests for the provider adapters (runtime/providers/): the URL of every
 * kind and operation built from the spec alone (the client's query never
 * reaches a provider, except Anthropic's own beta=true), auth header
 * formats, the headers each kind adds, which operations each kind serves
 * in which protocol; and the mock provider as the in-process transfer it
 * is, on a real libev loop: answers in both protocols, streaming or not,
 * pause and resume, abort, and cancel with no callback after it. Providers
 * come from tests/runtime/providers.yaml.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ev.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "govern/usage.h"
#include "providers/provider.h"

static const sl_table *T = &sl_spec;
static sl_arena arena;
static char raw[2048];
static sl_http_request req;
static sl_http_header req_headers[SL_HTTP_MAX_HEADERS];

static int setup(void **state)
{
    (void)state;
    sl_arena_init(&arena, 1024);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    sl_arena_free(&arena);
    return 0;
}

static const sl_provider *prov(const char *name)
{
    for (uint32_t i = 0; i < T->provider_count; i++)
        if (strcmp(T->providers[i].name, name) == 0)
            return &T->providers[i];
    fail_msg("no provider %s", name);
    return NULL;
}

/* The client's request as the server parsed it. */
static const sl_http_request *client(const char *target, const char *headers)
{
    int n = snprintf(raw, sizeof raw, "POST %s HTTP/1.1\r\nHost: localhost\r\n%s\r\n", target,
                     headers ? headers : "");
    assert_true(n > 0 && (size_t)n < sizeof raw);
    req.headers = req_headers;
    req.header_cap = SL_HTTP_MAX_HEADERS;
    assert_int_equal(sl_http_parse_request(raw, (size_t)n, sizeof raw, SL_HTTP_MAX_HEADERS, &req, NULL), SL_HTTP_OK);
    return &req;
}

static const char *url(const char *provider, sl_op op, sl_proto from, const char *target, const char *model,
                       int stream)
{
    const sl_provider *p = prov(provider);
    sl_call c = {.arena = &arena, .prov = p, .op = op, .client = from, .req = client(target, NULL),
                 .model = model, .stream = stream};
    const char *u = sl_provider_ops_of(p->kind)->url(&c);
    assert_non_null(u);
    return u;
}

/* ---- URLs ------------------------------------------------------------------ */

static void test_openai_urls(void **state)
{
    (void)state;
    assert_string_equal(url("oai", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions?x=1", "gpt-4o", 0),
                        "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(url("oai", SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, "/v1/embeddings", "e", 0),
                        "http://127.0.0.1:9/v1/embeddings");
    /* Other protocols' chat operations arrive translated to chat. */
    assert_string_equal(url("oai", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages?beta=true", "gpt-4o", 1),
                        "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(url("oai", SL_OP_GENERATE, SL_PROTO_GEMINI, "/v1beta/models/g:generateContent?key=k", "g", 0),
                        "http://127.0.0.1:9/v1/chat/completions");
    assert_string_equal(url("oai", SL_OP_RESPONSES, SL_PROTO_RESPONSES, "/v1/responses", "gpt-4o", 1),
                        "http://127.0.0.1:9/v1/chat/completions");
}

/* Azure OpenAI: the deployment in the path (the upstream model's name,
 * percent-escaped, unless the spec fixes one), api-version in the query,
 * nothing of the client's query. */
static void test_azure_urls(void **state)
{
    (void)state;
    assert_string_equal(url("az", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions?x=1", "gpt-4o", 0),
                        "https://contoso.openai.azure.com/openai/deployments/gpt-4o/chat/completions"
                        "?api-version=2024-10-21");
    assert_string_equal(url("az", SL_OP_EMBEDDINGS, SL_PROTO_OPENAI, "/v1/embeddings", "te-3", 0),
                        "https://contoso.openai.azure.com/openai/deployments/te-3/embeddings?api-version=2024-10-21");
    assert_string_equal(url("az", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages", "a b/c?d", 1),
                        "https://contoso.openai.azure.com/openai/deployments/a%20b%2Fc%3Fd/chat/completions"
                        "?api-version=2024-10-21");
    assert_string_equal(url("az-fixed", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions", "gpt-4o", 1),
                        "https://eu.example.com/openai/deployments/prod-4o/chat/completions"
                        "?api-version=2025-01-01-preview");
}

/* A preset's auth header and operations override its protocol's. */
typedef struct lines_t {
    char v[4][128];
    size_t n;
} lines_t;

static void test_preset_auth_and_ops(void **state)
{
    (void)state;
    char line[64];
    snprintf(line, sizeof line, sl_provider_auth_format(prov("az")), "k");
    assert_string_equal(line, "api-key: k");
    snprintf(line, sizeof line, sl_provider_auth_format(prov("gq")), "k");
    assert_string_equal(line, "Authorization: Bearer k");
    snprintf(line, sizeof line, sl_provider_auth_format(prov("ant")), "k");
    assert_string_equal(line, "x-api-key: k");
    assert_null(sl_provider_auth_format(prov("demo")));
    assert_true(sl_provider_serves(prov("gq"), SL_OP_CHAT));
    assert_true(sl_provider_serves(prov("gq"), SL_OP_MESSAGES));
    assert_false(sl_provider_serves(prov("gq"), SL_OP_EMBEDDINGS));
    assert_true(sl_provider_serves(prov("az"), SL_OP_EMBEDDINGS));
    assert_true(sl_provider_serves(prov("oai"), SL_OP_EMBEDDINGS));
    assert_false(sl_provider_serves(prov("ant"), SL_OP_EMBEDDINGS));
    assert_string_equal(prov("gq")->preset, "groq");
    assert_null(prov("oai")->preset);
}

static void add_line(void *ctx, const char *line)
{
    lines_t *l = ctx;
    assert_non_null(line);
    assert_true(l->n < 4);
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", line);
}

/* A preset's extra header lines go out one by one; none, none. */
static void test_preset_extra_headers(void **state)
{
    (void)state;
    sl_provider p = *prov("gq");
    p.headers = "X-Title: sluice\nHTTP-Referer: https://example.test\n";
    sl_call c = {.arena = &arena, .prov = &p, .op = SL_OP_CHAT};
    lines_t l = {0};
    sl_provider_extra_headers(&c, add_line, &l);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "X-Title: sluice");
    assert_string_equal(l.v[1], "HTTP-Referer: https://example.test");
    l.n = 0;
    c.prov = prov("gq");
    sl_provider_extra_headers(&c, add_line, &l);
    assert_int_equal(l.n, 0);
}

static void test_anthropic_urls_and_beta(void **state)
{
    (void)state;
    assert_string_equal(url("ant", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages", "c", 1),
                        "https://api.anthropic.com/v1/messages");
    assert_string_equal(url("ant", SL_OP_COUNT_TOKENS, SL_PROTO_ANTHROPIC, "/v1/messages/count_tokens", "c", 0),
                        "https://api.anthropic.com/v1/messages/count_tokens");
    assert_string_equal(url("ant", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages?beta=true", "c", 1),
                        "https://api.anthropic.com/v1/messages?beta=true");
    assert_string_equal(url("ant", SL_OP_COUNT_TOKENS, SL_PROTO_ANTHROPIC, "/v1/messages/count_tokens?beta=true", "c", 0),
                        "https://api.anthropic.com/v1/messages/count_tokens?beta=true");
    /* Only beta=true itself survives; nothing else of the query does. */
    const char *u = url("ant", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages?key=secret&beta=true", "c", 1);
    assert_string_equal(u, "https://api.anthropic.com/v1/messages?beta=true");
    assert_null(strstr(u, "secret"));
    static const char *const not_beta[] = {
        "/v1/messages?beta=false", "/v1/messages?beta=TRUE", "/v1/messages?beta=true1",
        "/v1/messages?beta=", "/v1/messages?beta", "/v1/messages?xbeta=true",
        "/v1/messages?beta%3Dtrue", "/v1/messages?secret=beta=true",
    };
    for (size_t i = 0; i < sizeof not_beta / sizeof *not_beta; i++)
        assert_string_equal(url("ant", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, not_beta[i], "c", 1),
                            "https://api.anthropic.com/v1/messages");
    /* beta=true is the Anthropic protocol's parameter: other clients'
     * queries mean nothing to it. */
    assert_string_equal(url("ant", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions?beta=true", "c", 1),
                        "https://api.anthropic.com/v1/messages");
}

static void test_gemini_urls(void **state)
{
    (void)state;
    assert_string_equal(url("gem", SL_OP_GENERATE, SL_PROTO_GEMINI, "/v1beta/models/x:generateContent?key=secret",
                            "gemini-2.5-flash", 0),
                        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent");
    assert_string_equal(url("gem", SL_OP_GENERATE, SL_PROTO_GEMINI, "/v1beta/models/x:streamGenerateContent?alt=sse&key=s",
                            "gemini-2.5-flash", 1),
                        "https://generativelanguage.googleapis.com/v1beta/models/"
                        "gemini-2.5-flash:streamGenerateContent?alt=sse");
    /* The model is a path segment: a glob passes client spellings through. */
    assert_string_equal(url("gem", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions", "../a/b c?d#e:f", 0),
                        "https://generativelanguage.googleapis.com/v1beta/models/"
                        "..%2Fa%2Fb%20c%3Fd%23e%3Af:generateContent");
}

static void test_mock_urls(void **state)
{
    (void)state;
    assert_string_equal(url("demo", SL_OP_CHAT, SL_PROTO_OPENAI, "/v1/chat/completions?a=b", "m", 0),
                        "mock:/v1/chat/completions");
    assert_string_equal(url("demo", SL_OP_MESSAGES, SL_PROTO_ANTHROPIC, "/v1/messages?beta=true", "m", 0),
                        "mock:/v1/messages");
    assert_string_equal(url("demo", SL_OP_COUNT_TOKENS, SL_PROTO_ANTHROPIC, "/v1/messages/count_tokens", "m", 0),
                        "mock:/v1/messages/count_tokens");
    assert_string_equal(url("demo", SL_OP_RESPONSES, SL_PROTO_RESPONSES, "/v1/responses", "m", 0),
                        "mock:/v1/messages");
}

/* ---- auth, headers, serves/proto ---------------------------------------------- */

static void test_auth_formats(void **state)
{
    (void)state;
    static const struct {
        sl_kind kind;
        const char *want;
    } cases[] = {
        {SL_KIND_OPENAI, "Authorization: Bearer sk-x"},
        {SL_KIND_ANTHROPIC, "x-api-key: sk-x"},
        {SL_KIND_GEMINI, "x-goog-api-key: sk-x"},
    };
    char line[64];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const char *fmt = sl_provider_ops_of(cases[i].kind)->auth_format;
        assert_non_null(fmt);
        snprintf(line, sizeof line, fmt, "sk-x");
        assert_string_equal(line, cases[i].want);
    }
    assert_null(sl_provider_ops_of(SL_KIND_MOCK)->auth_format);
}

typedef struct lines {
    char v[8][128];
    size_t n;
} lines;

static void collect(void *ctx, const char *line)
{
    lines *l = ctx;
    assert_true(l->n < 8);
    snprintf(l->v[l->n++], sizeof l->v[0], "%s", line);
}

static lines headers_of(const char *provider, sl_proto from, const char *hdrs)
{
    const sl_provider *p = prov(provider);
    sl_call c = {.arena = &arena, .prov = p, .op = SL_OP_MESSAGES, .client = from,
                 .req = client("/v1/messages", hdrs), .model = "c"};
    lines l = {.n = 0};
    const sl_provider_ops *ops = sl_provider_ops_of(p->kind);
    if (ops->headers)
        ops->headers(&c, collect, &l);
    return l;
}

static void test_anthropic_headers(void **state)
{
    (void)state;
    lines l = headers_of("ant", SL_PROTO_ANTHROPIC,
                         "Anthropic-Version: 2024-10-22\r\nANTHROPIC-BETA: tools-2024,cache\r\n");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "anthropic-version: 2024-10-22");
    assert_string_equal(l.v[1], "anthropic-beta: tools-2024,cache");
    /* No version sent: the one sluice is written against. */
    l = headers_of("ant", SL_PROTO_ANTHROPIC, "anthropic-beta: b\r\n");
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0], "anthropic-version: 2023-06-01");
    assert_string_equal(l.v[1], "anthropic-beta: b");
    l = headers_of("ant", SL_PROTO_ANTHROPIC, NULL);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "anthropic-version: 2023-06-01");
    /* Another protocol's client: its anthropic-* headers are not ours to
     * forward. */
    l = headers_of("ant", SL_PROTO_OPENAI, "anthropic-version: 2024-10-22\r\nanthropic-beta: b\r\n");
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0], "anthropic-version: 2023-06-01");
    /* Other kinds add nothing of the client's. */
    assert_int_equal(headers_of("oai", SL_PROTO_ANTHROPIC, "anthropic-version: 1\r\n").n, 0);
    assert_int_equal(headers_of("gem", SL_PROTO_ANTHROPIC, "anthropic-version: 1\r\n").n, 0);
    assert_int_equal(headers_of("demo", SL_PROTO_ANTHROPIC, "anthropic-version: 1\r\n").n, 0);
}

static void test_serves_and_proto(void **state)
{
    (void)state;
    static const sl_op ops[] = {SL_OP_CHAT,     SL_OP_MESSAGES,   SL_OP_COUNT_TOKENS,
                                SL_OP_GENERATE, SL_OP_EMBEDDINGS, SL_OP_RESPONSES};
    static const struct {
        sl_kind kind;
        const char *name;
        int serves[6];
        sl_proto proto[6];
    } m[] = {
        /* Responses requests reach every kind translated (chat for OpenAI
         * kinds until a provider declares the Responses API). */
        {SL_KIND_OPENAI, "openai", {1, 1, 1, 1, 1, 1},
         {SL_PROTO_OPENAI, SL_PROTO_OPENAI, SL_PROTO_OPENAI, SL_PROTO_OPENAI, SL_PROTO_OPENAI, SL_PROTO_OPENAI}},
        {SL_KIND_ANTHROPIC, "anthropic", {1, 1, 1, 1, 0, 1},
         {SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC,
          SL_PROTO_ANTHROPIC}},
        {SL_KIND_GEMINI, "gemini", {1, 1, 1, 1, 0, 1},
         {SL_PROTO_GEMINI, SL_PROTO_GEMINI, SL_PROTO_GEMINI, SL_PROTO_GEMINI, SL_PROTO_GEMINI, SL_PROTO_GEMINI}},
        {SL_KIND_MOCK, "mock", {1, 1, 1, 0, 0, 1},
         {SL_PROTO_OPENAI, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC, SL_PROTO_ANTHROPIC,
          SL_PROTO_ANTHROPIC}},
    };
    for (size_t k = 0; k < sizeof m / sizeof *m; k++) {
        const sl_provider_ops *p = sl_provider_ops_of(m[k].kind);
        assert_string_equal(p->kind, m[k].name);
        assert_non_null(p->transport);
        /* Real providers share libcurl; the mock travels in process. */
        assert_int_equal(p->transport == &sl_transport_curl, m[k].kind != SL_KIND_MOCK);
        for (size_t i = 0; i < 6; i++) {
            if (!!p->serves(ops[i]) != m[k].serves[i])
                fail_msg("%s serves op %zu: %d", m[k].name, i, p->serves(ops[i]));
            if (m[k].serves[i])
                assert_int_equal(p->proto(ops[i]), m[k].proto[i]);
        }
    }
}

/* ---- the mock transfer -------------------------------------------------------- */

typedef struct rx {
    struct ev_loop *loop;
    void *xfer;
    int heads, dones, data_calls;
    int status;
    char ctype[64];
    sl_buf body;
    sl_xfer_result result;
    int pause_first;   /* pause on the first on_data */
    size_t accept;     /* take at most this many bytes per call (0 = all) */
    int abort_data;    /* return 0 from on_data */
    int cancel_in;     /* 1: cancel from on_head, 2: from on_data */
    int head_after_data;
} rx;

static void on_head(void *ctx, const sl_xfer_head *h)
{
    rx *r = ctx;
    r->heads++;
    r->status = h->status;
    snprintf(r->ctype, sizeof r->ctype, "%s", h->content_type ? h->content_type : "");
    assert_int_equal(h->retry_after_s, -1);
    if (r->cancel_in == 1)
        sl_provider_mock.transport->cancel(r->xfer);
}

static size_t on_data(void *ctx, const char *p, size_t n)
{
    rx *r = ctx;
    r->data_calls++;
    if (!r->heads)
        r->head_after_data = 1;
    if (r->cancel_in == 2) {
        sl_provider_mock.transport->cancel(r->xfer);
        return n;
    }
    if (r->abort_data)
        return 0;
    if (r->pause_first) {
        r->pause_first = 0;
        return SL_XFER_PAUSE;
    }
    size_t take = r->accept && r->accept < n ? r->accept : n;
    assert_int_equal(sl_buf_append(&r->body, p, take), 0);
    return take;
}

static void on_done(void *ctx, sl_xfer_result res, const char *detail)
{
    (void)detail;
    rx *r = ctx;
    r->dones++;
    r->result = res;
    r->xfer = NULL;
}

static const sl_xfer_callbacks cbs = {on_head, on_data, on_done};

static void mock_start(rx *r, const char *u, const char *body)
{
    r->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(r->loop);
    sl_xfer_spec spec = {.url = u, .body = body, .body_len = strlen(body)};
    r->xfer = sl_provider_mock.transport->start(r->loop, NULL, &spec, &cbs, r);
    assert_non_null(r->xfer);
    /* Never answers from inside start(). */
    assert_int_equal(r->heads + r->data_calls + r->dones, 0);
}

static void mock_end(rx *r)
{
    sl_buf_append(&r->body, "", 1);
    ev_loop_destroy(r->loop);
}

static json_t *run_json(rx *r, const char *u, const char *body)
{
    mock_start(r, u, body);
    ev_run(r->loop, 0);
    mock_end(r);
    assert_int_equal(r->heads, 1);
    assert_int_equal(r->dones, 1);
    assert_int_equal(r->result, SL_XFER_OK);
    assert_false(r->head_after_data);
    assert_string_equal(r->ctype, "application/json");
    json_t *j = json_loads(r->body.data, 0, NULL);
    assert_non_null(j);
    return j;
}

#define CHAT_BODY(extra) "{\"model\":\"gpt-echo\",\"messages\":[{\"role\":\"user\",\"content\":\"ping\"}]" extra "}"

static void test_mock_chat(void **state)
{
    (void)state;
    rx r = {0};
    json_t *j = run_json(&r, "mock:/v1/chat/completions", CHAT_BODY(""));
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "object")), "chat.completion");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "gpt-echo");
    json_t *msg = json_object_get(json_array_get(json_object_get(j, "choices"), 0), "message");
    assert_non_null(strstr(json_string_value(json_object_get(msg, "content")), "You said: ping"));
    sl_usage_counts u = {0};
    sl_usage_from_body(r.body.data, r.body.len - 1, &u);
    assert_true(u.have && u.input > 0 && u.output > 0);
    json_decref(j);
    sl_buf_free(&r.body);

    /* Streamed, with the usage chunk only when asked for. */
    for (int usage = 0; usage <= 1; usage++) {
        rx s = {0};
        mock_start(&s, "mock:/v1/chat/completions",
                   usage ? CHAT_BODY(",\"stream\":true,\"stream_options\":{\"include_usage\":true}")
                         : CHAT_BODY(",\"stream\":true"));
        ev_run(s.loop, 0);
        mock_end(&s);
        assert_int_equal(s.dones, 1);
        assert_string_equal(s.ctype, "text/event-stream");
        assert_non_null(strstr(s.body.data, "\"chat.completion.chunk\""));
        assert_non_null(strstr(s.body.data, "\"model\":\"gpt-echo\""));
        assert_non_null(strstr(s.body.data, " ping"));
        assert_int_equal(strstr(s.body.data, "\"choices\":[]") != NULL, usage);
        size_t n = strlen(s.body.data);
        assert_true(n > 14 && strcmp(s.body.data + n - 14, "data: [DONE]\n\n") == 0);
        sl_buf_free(&s.body);
    }
}

static void test_mock_messages(void **state)
{
    (void)state;
    rx r = {0};
    json_t *j = run_json(&r, "mock:/v1/messages",
                         "{\"model\":\"claude-echo\",\"max_tokens\":5,\"messages\":[{\"role\":\"user\","
                         "\"content\":[{\"type\":\"text\",\"text\":\"pong\"}]}]}");
    assert_string_equal(json_string_value(json_object_get(j, "type")), "message");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "claude-echo");
    json_t *block = json_array_get(json_object_get(j, "content"), 0);
    assert_non_null(strstr(json_string_value(json_object_get(block, "text")), "You said: pong"));
    json_decref(j);
    sl_buf_free(&r.body);

    rx s = {0};
    mock_start(&s, "mock:/v1/messages",
               "{\"model\":\"claude-echo\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"pong\"}]}");
    ev_run(s.loop, 0);
    mock_end(&s);
    assert_string_equal(s.ctype, "text/event-stream");
    const char *start = strstr(s.body.data, "event: message_start\n");
    const char *stop = strstr(s.body.data, "event: message_stop\n");
    assert_non_null(start);
    assert_non_null(stop);
    assert_true(start < stop);
    assert_non_null(strstr(s.body.data, "\"model\":\"claude-echo\""));
    sl_usage_stream us = {0};
    sl_usage_stream_feed(&us, s.body.data, strlen(s.body.data));
    assert_true(us.done && us.u.have && us.u.output > 0);
    sl_usage_stream_free(&us);
    sl_buf_free(&s.body);

    rx c = {0};
    j = run_json(&c, "mock:/v1/messages/count_tokens", "{\"messages\":[]}");
    assert_true(json_integer_value(json_object_get(j, "input_tokens")) > 0);
    json_decref(j);
    sl_buf_free(&c.body);

    /* No model in the body: the mock names itself. */
    rx d = {0};
    j = run_json(&d, "mock:/v1/messages", "{\"messages\":[]}");
    assert_string_equal(json_string_value(json_object_get(j, "model")), "mock");
    json_decref(j);
    sl_buf_free(&d.body);

    rx e = {0};
    j = run_json(&e, "mock:/v1/chat/completions", "[not json");
    assert_int_equal(e.status, 400);
    json_decref(j);
    sl_buf_free(&e.body);
}

static void test_mock_pause_resume_and_partial_reads(void **state)
{
    (void)state;
    rx whole = {0};
    json_decref(run_json(&whole, "mock:/v1/chat/completions", CHAT_BODY("")));

    rx r = {.pause_first = 1, .accept = 7};
    mock_start(&r, "mock:/v1/chat/completions", CHAT_BODY(""));
    ev_run(r.loop, 0);
    /* Paused: the loop has nothing left to do and nothing is done. */
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.data_calls, 1);
    assert_int_equal(r.dones, 0);
    assert_int_equal(r.body.len, 0);
    sl_provider_mock.transport->resume(r.xfer);
    sl_provider_mock.transport->resume(r.xfer); /* twice is harmless */
    ev_run(r.loop, 0);
    mock_end(&r);
    assert_int_equal(r.heads, 1);
    assert_int_equal(r.dones, 1);
    assert_int_equal(r.result, SL_XFER_OK);
    assert_true(r.data_calls > 2);
    /* The same answer as unpaused, apart from the id and clock. */
    json_t *a = json_loads(r.body.data, 0, NULL), *b = json_loads(whole.body.data, 0, NULL);
    assert_non_null(a);
    assert_non_null(b);
    json_object_del(a, "id");
    json_object_del(b, "id");
    json_object_del(a, "created");
    json_object_del(b, "created");
    assert_true(json_equal(a, b));
    json_decref(a);
    json_decref(b);
    sl_buf_free(&r.body);
    sl_buf_free(&whole.body);
}

static void test_mock_abort_and_cancel(void **state)
{
    (void)state;
    rx a = {.abort_data = 1};
    mock_start(&a, "mock:/v1/chat/completions", CHAT_BODY(""));
    ev_run(a.loop, 0);
    mock_end(&a);
    assert_int_equal(a.dones, 1);
    assert_int_equal(a.result, SL_XFER_ERROR);
    sl_buf_free(&a.body);

    /* Cancelled before its first tick: no callback at all, nothing leaks. */
    rx c = {0};
    mock_start(&c, "mock:/v1/chat/completions", CHAT_BODY(""));
    sl_provider_mock.transport->cancel(c.xfer);
    ev_run(c.loop, 0);
    mock_end(&c);
    assert_int_equal(c.heads + c.data_calls + c.dones, 0);
    sl_buf_free(&c.body);

    /* Cancelled while paused. */
    rx p = {.pause_first = 1};
    mock_start(&p, "mock:/v1/chat/completions", CHAT_BODY(""));
    ev_run(p.loop, 0);
    sl_provider_mock.transport->cancel(p.xfer);
    ev_run(p.loop, 0);
    mock_end(&p);
    assert_int_equal(p.dones, 0);
    sl_buf_free(&p.body);

    /* Cancelled from inside its own callbacks, as sl_xfer_cancel allows:
     * nothing is called afterwards. */
    for (int where = 1; where <= 2; where++) {
        rx x = {.cancel_in = where};
        mock_start(&x, "mock:/v1/chat/completions", CHAT_BODY(",\"stream\":true"));
        ev_run(x.loop, 0);
        mock_end(&x);
        assert_int_equal(x.heads, 1);
        assert_int_equal(x.data_calls, where == 1 ? 0 : 1);
        assert_int_equal(x.dones, 0);
        sl_buf_free(&x.body);
    }
}

/* --provider-url: a writable copy of the providers, re-pointed by name;
 * what the compiler would refuse in a base_url is refused here too. */
static void test_set_url(void **state)
{
    (void)state;
    sl_provider p[8];
    assert_true(T->provider_count <= 8);
    memcpy(p, T->providers, T->provider_count * sizeof *p);
    char err[300];
    assert_int_equal(sl_provider_set_url(p, T->provider_count, "oai=https://staging.test/v1///", err, sizeof err), 0);
    assert_string_equal(p[0].base_url, "https://staging.test/v1");
    assert_string_equal(T->providers[0].base_url, "http://127.0.0.1:9/v1"); /* the compiled table is untouched */
    static const struct { const char *arg, *why; } bad[] = {
        {"nope=http://x/v1", "no provider 'nope'"},
        {"oai", "NAME=URL"},
        {"=http://x", "NAME=URL"},
        {"oai=file:///etc/passwd", "http:// or https://"},
        {"oai=https://", "no host"},
        {"oai=http://x/v1?debug=1", "'?'"},
        {"oai=http://x/v1#f", "'?'"},
        {"oai=http://x/v1\r\nX-Evil: 1", "control bytes"},
        {"demo=http://x", "mock"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = '\0';
        assert_int_equal(sl_provider_set_url(p, T->provider_count, bad[i].arg, err, sizeof err), -1);
        if (!strstr(err, bad[i].why))
            fail_msg("'%s': '%s' does not say '%s'", bad[i].arg, err, bad[i].why);
    }
    assert_string_equal(p[0].base_url, "https://staging.test/v1");
    /* The override is the module's to free, at exit. A second override of
     * the same provider replaces (and frees) the first. */
    assert_int_equal(sl_provider_set_url(p, T->provider_count, "oai=https://other.test/v1", err, sizeof err), 0);
    assert_string_equal(p[0].base_url, "https://other.test/v1");
}

/* A provider whose spec turns TLS verification off (allowed by sluicec
 * for loopback hosts only) cannot be moved off loopback at run time; and
 * the files a provider's tls: names must load at start. */
static void test_provider_tls(void **state)
{
    (void)state;
    sl_provider p[8];
    memcpy(p, T->providers, T->provider_count * sizeof *p);
    static const sl_provider_tls unverified = {.verify = 0};
    p[0].tls = &unverified;
    char err[1024];
    static const char *const refused[] = {"oai=https://staging.test/v1", "oai=http://127.0.0.1:9/v1",
                                          "oai=https://10.0.0.1/v1"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        assert_int_equal(sl_provider_set_url(p, T->provider_count, refused[i], err, sizeof err), -1);
        assert_non_null(strstr(err, "verify: false"));
    }
    assert_int_equal(sl_provider_set_url(p, T->provider_count, "oai=https://127.0.0.1:8443/v1", err, sizeof err), 0);
    assert_int_equal(sl_provider_set_url(p, T->provider_count, "oai=https://localhost:8443/v1", err, sizeof err), 0);

    assert_int_equal(sl_provider_check_tls(p, T->provider_count, err, sizeof err), 0);
    static const sl_provider_tls missing = {.ca = "no/such/ca.pem", .verify = 1};
    p[0].tls = &missing;
    assert_int_equal(sl_provider_check_tls(p, T->provider_count, err, sizeof err), -1);
    assert_non_null(strstr(err, "provider 'oai': tls ca: cannot read 'no/such/ca.pem'"));
    assert_non_null(strstr(err, "working directory"));
}

int main(void)
{
#define T_(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T_(test_openai_urls),
        T_(test_azure_urls),
        T_(test_preset_auth_and_ops),
        T_(test_preset_extra_headers),
        T_(test_anthropic_urls_and_beta),
        T_(test_gemini_urls),
        T_(test_mock_urls),
        T_(test_auth_formats),
        T_(test_anthropic_headers),
        T_(test_serves_and_proto),
        T_(test_mock_chat),
        T_(test_mock_messages),
        T_(test_mock_pause_resume_and_partial_reads),
        T_(test_mock_abort_and_cancel),
        T_(test_set_url),
        T_(test_provider_tls),
    };
#undef T_
    return cmocka_run_group_tests(tests, NULL, NULL);
}
