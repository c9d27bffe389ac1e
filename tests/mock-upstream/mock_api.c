/* The mock upstream's provider behaviour: it answers the OpenAI, Anthropic
 * and Gemini endpoints a gateway forwards to, with responses shaped like the
 * real services' (ids, echoed model, usage, SSE event sequences, tool
 * calls, error bodies), and keeps a log of every request for tests to
 * inspect through GET /__calls. Text is deterministic so tests can compare
 * it, and behaviour can be steered per request with a directive such as
 * `[[mock chunks=5 interval_ms=50 status=429]]` in the model name or the
 * last user message; that is how tests ask for slow streams, errors and
 * broken connections without any side channel. Everything here only builds
 * a reply plan; mock_server.c puts it on the wire.
 *
 * This file holds the dispatcher (routing, the call log, auth, the
 * directives' sources, simulated failures) and the /__ control endpoints;
 * the shared reply machinery is in mock_send.c, answer generation in
 * mock_answer.c, and each provider's shapes in mock_openai.c,
 * mock_anthropic.c and mock_gemini.c (see mock_api_internal.h). */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static mu_config g_cfg;
static json_t *g_calls;          /* array of call entries */
static long long g_logged;       /* calls logged since start: the entries' seq */
static unsigned long long g_rng;

/* ---- small helpers ---------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static unsigned long long rng_next(void)
{
    /* xorshift64*: reproducible jitter for a given --seed */
    g_rng ^= g_rng >> 12;
    g_rng ^= g_rng << 25;
    g_rng ^= g_rng >> 27;
    return g_rng * 2685821657736338717ULL;
}

static const char *hdr(const ctx *c, const char *name)
{
    return json_string_value(json_object_get(c->rq->headers, name));
}

/* Percent-decodes a path segment (Gemini puts the model in the path) into
 * o, which has room for n + 1 bytes. */
static void pct_decode(const char *s, size_t n, char *o)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n && isxdigit((unsigned char)s[i + 1]) &&
            isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            o[k++] = (char)strtol(h, NULL, 16);
            i += 2;
        } else {
            o[k++] = s[i];
        }
    }
    o[k] = '\0';
}

/* ---- dispatch --------------------------------------------------------- */

static void internal(const mu_request *rq, mu_reply *rp, const char *path)
{
    ctx c = {.rq = rq, .rp = rp, .proto = P_OPENAI, .retry_after = -1};
    snprintf(c.req_id, sizeof c.req_id, "req_mock_internal");
    if (!strcmp(path, "/__calls") && !strcmp(rq->method, "GET"))
        mu_send_json(&c, 200, json_incref(g_calls));
    else if (!strcmp(path, "/__reset") && !strcmp(rq->method, "POST")) {
        json_array_clear(g_calls);
        mu_send_json(&c, 200, json_pack("{s:b}", "ok", 1));
    } else if (!strcmp(path, "/__health"))
        mu_send_json(&c, 200, json_pack("{s:s}", "status", "ok"));
    else if (!mu_oauth_route(&c, path)) /* /__oauth */
        mu_send_error(&c, 404, "no such mock-upstream control endpoint");
}

static int authenticated(const ctx *c)
{
    const char *auth = hdr(c, "authorization");
    /* Vertex AI takes only its own tokens; with a token endpoint
     * configured, so does every bearer check (mock_oauth.c). */
    if (c->vertex || (mu_oauth_enabled() && auth && !strncasecmp(auth, "Bearer ", 7)))
        return mu_oauth_bearer_ok(auth);
    if (g_cfg.no_auth)
        return 1;
    int bearer = auth && !strncasecmp(auth, "Bearer ", 7) && auth[7];
    if (c->proto == P_GEMINI) {
        const char *key = hdr(c, "x-goog-api-key");
        const char *q = strchr(c->rq->target, '?');
        return (key && *key) || (q && (strstr(q, "?key=") == q || strstr(q, "&key=")));
    }
    if (c->proto == P_ANTHROPIC) {
        const char *key = hdr(c, "x-api-key");
        return (key && *key) || bearer;
    }
    /* Azure OpenAI takes its key in an `api-key` header. */
    const char *akey = hdr(c, "api-key");
    return bearer || (c->azure && akey && *akey);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

/* --reject MODEL=PARAM: the parameter this request carries that the
 * configured model refuses, or NULL. */
static const char *rejected_param(const ctx *c)
{
    for (int i = 0; i < g_cfg.nreject; i++) {
        const char *eq = strchr(g_cfg.reject[i], '=');
        size_t ml = (size_t)(eq - g_cfg.reject[i]);
        if (strlen(c->model) == ml && !memcmp(c->model, g_cfg.reject[i], ml) &&
            json_object_get(c->body, eq + 1))
            return eq + 1;
    }
    return NULL;
}

void mu_api_handle(const mu_request *rq, mu_reply *rp)
{
    const char *q = strchr(rq->target, '?');
    size_t plen = q ? (size_t)(q - rq->target) : strlen(rq->target);
    char path[512];
    snprintf(path, sizeof path, "%.*s", (int)(plen < sizeof path ? plen : sizeof path - 1),
             rq->target);
    if (!strncmp(path, "/__", 3)) {
        internal(rq, rp, path);
        return;
    }

    ctx c = {.rq = rq, .rp = rp, .retry_after = -1, .created = (long long)time(NULL)};
    c.proto = !strncmp(path, "/v1beta/", 8) ? P_GEMINI
              : !strncmp(path, "/v1/messages", 12) ||
                      (!strcmp(path, "/v1/models") && json_object_get(rq->headers, "anthropic-version"))
                  ? P_ANTHROPIC : P_OPENAI;
    mu_new_id(c.req_id, sizeof c.req_id, c.proto == P_ANTHROPIC ? "req_" : "req_mock");
    c.base_delay = g_cfg.latency_ms;
    if (g_cfg.jitter_ms)
        c.base_delay += (unsigned)(rng_next() % (g_cfg.jitter_ms + 1ULL));

    /* Log first, so even requests we reject are visible to the tests. */
    json_t *body_log = json_loadb(rq->body, rq->body_len, JSON_DECODE_ANY, NULL);
    if (!body_log)
        body_log = rq->body_len ? json_stringn(rq->body, rq->body_len) : json_null();
    if (!body_log)
        body_log = json_sprintf("<%zu bytes, not UTF-8>", rq->body_len);
    json_t *entry = json_pack("{s:I,s:s,s:s,s:O,s:o,s:f,s:b,s:b,s:b}", "seq",
                              (json_int_t)g_logged++, "method", rq->method,
                              "path", rq->target, "headers", rq->headers, "body", body_log,
                              "time", now_s(), "stream", 0, "closed_early", 0,
                              "completed", 0);
    if (g_cfg.max_calls > 0) {
        /* A benchmark sends millions of requests: keep the newest entries,
         * dropping the older half at once so trimming stays cheap. */
        if ((long)json_array_size(g_calls) >= g_cfg.max_calls) {
            json_t *keep = json_array();
            size_t n = json_array_size(g_calls);
            for (size_t i = n - (size_t)g_cfg.max_calls / 2; i < n; i++)
                json_array_append(keep, json_array_get(g_calls, i));
            json_array_clear(g_calls);
            json_array_extend(g_calls, keep);
            json_decref(keep);
        }
        json_array_append(g_calls, entry);
    }
    rp->call = entry; /* the reference json_pack gave us */
    if (!strncmp(path, "/model/", 7) || !strcmp(path, "/aws/credentials")) { /* AWS Bedrock, ECS creds */
        mu_bedrock_handle(&c, path);
        return;
    }

    if (mu_oauth_route(&c, path))
        return;
    int is_post = !strcmp(rq->method, "POST");
    int is_get = !strcmp(rq->method, "GET");
    enum { R_NONE, R_CHAT, R_EMB, R_MODELS, R_MSG, R_COUNT, R_GEN, R_RESP } route = R_NONE;
    int wrong_method = 0;
    int gen_stream = 0;
    char gen_model[sizeof path]; /* Gemini: the model is a path segment */
    /* OpenAI-compatible providers serve the same operations under their
     * own prefixes (/openai/v1, /inference/v1, /compatibility/v1, none);
     * Azure's is /openai/deployments/{name}, with api-version required. */
    c.azure = strstr(path, "/openai/deployments/") != NULL;
    int azure_ok = !c.azure || (q && (strstr(q, "?api-version=") == q || strstr(q, "&api-version=")));
    int vx_anth = 0;
    if (mu_vertex_path(path, q, gen_model, sizeof gen_model, &vx_anth, &gen_stream)) {
        c.vertex = 1;
        c.proto = vx_anth ? P_ANTHROPIC : P_GEMINI;
        /* Claude's token count is a model of its own, the model in the body */
        route = !vx_anth ? R_GEN : strcmp(gen_model, "count-tokens") ? R_MSG : R_COUNT;
        wrong_method = !is_post;
        char pm[sizeof path];
        pct_decode(gen_model, strlen(gen_model), pm);
        snprintf(gen_model, sizeof gen_model, "%s", pm);
    } else if (c.proto == P_OPENAI && ends_with(path, "/chat/completions") && azure_ok)
        route = R_CHAT, wrong_method = !is_post;
    else if (c.proto == P_OPENAI && ends_with(path, "/embeddings") && azure_ok)
        route = R_EMB, wrong_method = !is_post;
    else if (c.proto == P_OPENAI && ends_with(path, "/responses") && !c.azure)
        route = R_RESP, wrong_method = !is_post;
    else if (!strcmp(path, "/v1/models")) route = R_MODELS, wrong_method = !is_get;
    else if (!strcmp(path, "/v1/messages")) route = R_MSG, wrong_method = !is_post;
    else if (!strcmp(path, "/v1/messages/count_tokens")) route = R_COUNT, wrong_method = !is_post;
    else if (!strncmp(path, "/v1beta/models/", 15)) {
        const char *m = path + 15, *colon = strrchr(m, ':');
        int sse = q && (strstr(q, "?alt=sse") == q || strstr(q, "&alt=sse"));
        if (colon && colon > m && !strcmp(colon, ":generateContent"))
            route = R_GEN;
        else if (colon && colon > m && !strcmp(colon, ":streamGenerateContent") && sse)
            route = R_GEN, gen_stream = 1;
        if (route == R_GEN) {
            wrong_method = !is_post;
            pct_decode(m, (size_t)(colon - m), gen_model);
        }
    }
    if (route == R_NONE) {
        mu_send_error(&c, 404, "mock-upstream: no such endpoint");
        return;
    }
    if (wrong_method) {
        mu_send_error(&c, 405, "mock-upstream: method not allowed");
        return;
    }
    if (!authenticated(&c)) {
        mu_send_error(&c, 401, c.proto == P_ANTHROPIC ? "x-api-key header is required"
                            : c.proto == P_GEMINI
                                ? "Method doesn't allow unregistered callers. Please use an API key."
                                : "You didn't provide an API key in the Authorization header.");
        return;
    }
    if (c.proto == P_ANTHROPIC && !c.vertex && !hdr(&c, "anthropic-version")) {
        mu_send_error(&c, 400, "anthropic-version: header is required");
        return;
    }
    if (route == R_MODELS) {
        mu_models_list(&c);
        return;
    }

    json_error_t jerr;
    c.body = json_loadb(rq->body, rq->body_len, 0, &jerr);
    if (!json_is_object(c.body)) {
        char msg[300];
        snprintf(msg, sizeof msg, "request body is not a JSON object: %s", jerr.text);
        mu_send_error(&c, 400, msg);
        json_decref(c.body);
        return;
    }
    json_t *model = route == R_GEN ? NULL : json_object_get(c.body, "model");
    json_t *gen_name = route == R_GEN ? json_string(gen_model) : NULL;
    json_decref(gen_name);
    if (route == R_GEN && !gen_name) {
        /* Every answer echoes the model, which JSON cannot carry unless it
         * is UTF-8: say so instead (a gateway should not have sent it). */
        mu_send_error(&c, 400, "* GenerateContentRequest.model: the model name is not valid UTF-8");
        json_decref(c.body);
        return;
    } else if (route == R_GEN || (c.vertex && route == R_MSG)) {
        const char *why = c.vertex && route == R_MSG ? mu_vertex_check_body(&c, gen_stream) : NULL;
        if (why) {
            mu_send_error(&c, 400, why);
            json_decref(c.body);
            return;
        }
        c.model = gen_model;
    } else if (!json_is_string(model) || !*json_string_value(model)) {
        mu_send_error(&c, 400, c.proto == P_ANTHROPIC ? "model: Field required"
                                                   : "you must provide a model parameter");
        json_decref(c.body);
        return;
    } else {
        c.model = json_string_value(model);
    }

    /* Directives: the model name first, then the last user message (or the
     * embedding input), so a test can steer any request. */
    char err[256] = "";
    int bad = mu_apply_directives(&c, c.model, err, sizeof err);
    if (!bad) {
        mu_buf t = {0};
        if (route == R_EMB) {
            json_t *in = json_object_get(c.body, "input");
            if (json_is_string(in))
                mu_buf_str(&t, json_string_value(in));
            size_t i;
            json_t *v;
            json_array_foreach(in, i, v) if (json_is_string(v)) mu_buf_str(&t, json_string_value(v));
        } else if (route == R_GEN) {
            mu_gemini_user_text(json_object_get(c.body, "contents"), &t);
        } else if (route == R_RESP) {
            mu_rs_user_text(json_object_get(c.body, "input"), &t);
        } else {
            mu_content_text(json_object_get(mu_last_message(json_object_get(c.body, "messages"),
                                                      "user"), "content"), &t);
        }
        mu_buf_add(&t, "", 0);
        bad = mu_apply_directives(&c, t.p, err, sizeof err);
        if (!bad && c.echo) {
            /* the text without [[mock ...]] parts, blanks trimmed */
            size_t o = 0;
            for (const char *s = t.p; *s && o + 1 < sizeof c.echo_text;) {
                const char *e = !strncmp(s, "[[mock", 6) ? strstr(s, "]]") : NULL;
                if (e) {
                    s = e + 2;
                    continue;
                }
                c.echo_text[o++] = *s++;
            }
            while (o && isspace((unsigned char)c.echo_text[o - 1]))
                o--;
            c.echo_text[o] = '\0';
        }
        mu_buf_free(&t);
    }
    const char *refused = bad || c.proto != P_OPENAI ? NULL : rejected_param(&c);
    if (bad) {
        mu_send_error(&c, 400, err);
    } else if (refused) {
        char msg[200];
        snprintf(msg, sizeof msg, "Unsupported parameter: '%s' is not supported with this model.",
                 refused);
        mu_send_error(&c, 400, msg);
    } else if (c.fail == F_RESET) {
        /* a wait, then RST with nothing sent */
        mu_reply_data(rp, c.base_delay + c.delay_ms, NULL, 0);
        rp->end = MU_END_RESET;
    } else if (c.redirect[0]) {
        /* A provider that moved: 302 (or the 3xx `status=` names) to the
         * given Location, which a gateway must not follow. */
        int code = c.status >= 300 && c.status < 400 ? c.status : 302;
        mu_send_json(&c, code, json_pack("{s:s}", "location", c.redirect));
    } else if (c.status && c.status != 200) {
        char msg[160];
        snprintf(msg, sizeof msg, "mock-upstream: simulated %d (requested by a [[mock]] directive)",
                 c.status);
        mu_send_error(&c, c.status, msg);
    } else if (route == R_CHAT) {
        mu_openai_chat(&c);
    } else if (route == R_EMB) {
        mu_openai_embeddings(&c);
    } else if (route == R_RESP) {
        mu_openai_responses(&c);
    } else if (route == R_MSG) {
        mu_anthropic_messages(&c);
    } else if (route == R_GEN) {
        mu_gemini_generate(&c, gen_stream);
    } else {
        mu_anthropic_count_tokens(&c);
    }
    json_decref(c.body);
}

void mu_api_init(const mu_config *cfg)
{
    g_cfg = *cfg;
    g_rng = cfg->seed ? cfg->seed : 0x9E3779B97F4A7C15ULL;
    g_calls = json_array();
}

void mu_api_free(void)
{
    json_decref(g_calls);
    g_calls = NULL;
}
