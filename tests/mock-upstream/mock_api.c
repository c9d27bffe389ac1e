/* The mock upstream's provider behaviour: it answers the OpenAI, Anthropic
 * and Gemini endpoints a gateway forwards to, with responses shaped like the
 * real services' (ids, echoed model, usage, SSE event sequences, tool
 * calls, error bodies), and keeps a log of every request for tests to
 * inspect through GET /__calls. Text is deterministic so tests can compare
 * it, and behaviour can be steered per request with a directive such as
 * `[[mock chunks=5 interval_ms=50 status=429]]` in the model name or the
 * last user message; that is how tests ask for slow streams, errors and
 * broken connections without any side channel. Everything here only builds
 * a reply plan; mock_server.c puts it on the wire. */
#define _GNU_SOURCE
#include "mock_upstream.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static mu_config g_cfg;
static json_t *g_calls;          /* array of call entries */
static unsigned long long g_seq; /* ids: deterministic for a given request order */
static long long g_logged;       /* calls logged since start: the entries' seq */
static unsigned long long g_rng;

enum proto { P_OPENAI, P_ANTHROPIC, P_GEMINI };
enum fail { F_NONE, F_RESET, F_TRUNCATE, F_ABORT, F_STALL };

typedef struct ctx {
    const mu_request *rq;
    mu_reply *rp;
    enum proto proto;
    int azure;    /* an Azure OpenAI deployment path */
    json_t *body; /* parsed request body, or NULL */
    const char *model;
    long long created;
    unsigned base_delay;
    char req_id[40];
    /* directives */
    int chunks; /* 0: default for the reply kind */
    unsigned interval_ms, delay_ms, first_byte_ms;
    int status;      /* 0: none */
    int retry_after; /* -1: none */
    enum fail fail;
    int words; /* 0: default */
    char redirect[256]; /* Location of a 3xx answer; "" = none */
    /* Tool calls: which declared tool to call ("" = tool_choice or the
     * first; no_tool = answer text even when tools are declared), whether
     * arguments fill only the schema's required properties, and a value
     * for their string arguments ("" = mock-<name>). */
    char tool[128];
    int no_tool;
    int args_required;
    char arg_str[256];
    /* echo=1: the reply is the last user message without its directives
     * (guardrail tests: what the gateway let through comes back). */
    int echo;
    char echo_text[1024];
    /* Misbehaviour a gateway must contain: no usage in the answer, the
     * account and rate-limit headers real providers send, a bare CR inside
     * the request-id header's value, and one endless `data:` line (this
     * many bytes, no newline) in place of a stream's second half. */
    int usage_none;
    /* Prompt-cache tokens the usage reports (read: OpenAI cached_tokens,
     * Anthropic cache_read_input_tokens, Gemini cachedContentTokenCount;
     * write: Anthropic cache_creation_input_tokens), so gateways can be
     * held to cache prices. */
    long cache_read, cache_write;
    int account_headers;
    int bare_cr;
    long huge_line;
} ctx;

static const char *const WORDS[] = {
    "Hello", "from", "mock-upstream.", "This", "deterministic", "reply",
    "streams", "word", "by", "word", "so", "tests", "can", "count", "chunks",
    "and", "tokens."};
#define NWORDS ((int)(sizeof WORDS / sizeof WORDS[0]))

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

static char *dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

static int count_words(const char *s)
{
    int n = 0, in = 0;
    for (; *s; s++) {
        int sp = isspace((unsigned char)*s);
        if (!sp && !in)
            n++;
        in = !sp;
    }
    return n;
}

static long long input_tokens(const ctx *c)
{
    /* The rough 4-bytes-a-token rule: stable, and grows with the prompt. */
    long long n = (long long)((c->rq->body_len + 3) / 4);
    return n ? n : 1;
}

static void new_id(char *out, size_t n, const char *prefix)
{
    snprintf(out, n, "%s%016llx", prefix, ++g_seq);
}

/* Extra response headers every answer carries. Caller frees. */
static char *extra_headers(const ctx *c, int stream)
{
    mu_buf b = {0};
    /* A bare CR (no LF) inside the value: an HTTP/1.1 reader that splits
     * lines on CR sees a Set-Cookie header of the mock's choosing. */
    const char *tail = c->bare_cr ? "\rSet-Cookie: mock_smuggled=1" : "";
    if (c->proto == P_ANTHROPIC)
        mu_buf_printf(&b, "request-id: %s%s\r\n", c->req_id, tail);
    else if (c->proto == P_OPENAI || c->bare_cr)
        mu_buf_printf(&b, "x-request-id: %s%s\r\n", c->req_id, tail);
    if (c->account_headers && c->proto == P_OPENAI)
        mu_buf_str(&b, "openai-organization: org-mock-account\r\n"
                       "openai-project: proj_mock_account\r\n"
                       "openai-processing-ms: 12\r\n"
                       "x-ratelimit-limit-requests: 500\r\n"
                       "x-ratelimit-remaining-requests: 499\r\n"
                       "x-ratelimit-reset-requests: 120ms\r\n");
    else if (c->account_headers && c->proto == P_ANTHROPIC)
        mu_buf_str(&b, "anthropic-organization-id: 5e1f0000-0000-4000-8000-00000000mock\r\n"
                       "anthropic-ratelimit-requests-limit: 50\r\n"
                       "anthropic-ratelimit-requests-remaining: 49\r\n");
    if (c->retry_after >= 0)
        mu_buf_printf(&b, "retry-after: %d\r\n", c->retry_after);
    if (c->redirect[0])
        mu_buf_printf(&b, "Location: %s\r\n", c->redirect);
    if (stream)
        mu_buf_str(&b, "Cache-Control: no-cache\r\n");
    mu_buf_add(&b, "", 0);
    return b.p;
}

static void set_call(const ctx *c, const char *key, json_t *v)
{
    if (c->rp->call)
        json_object_set_new(c->rp->call, key, v);
    else
        json_decref(v);
}

/* Puts the usage the answer reports into `obj` under `key` and records a
 * copy on the call, so tests can compare a gateway's accounting with what
 * the provider said; with usage=none the answer carries none. */
static void put_usage(const ctx *c, json_t *obj, const char *key, json_t *usage)
{
    if (c->usage_none) {
        json_decref(usage);
        return;
    }
    set_call(c, "usage", json_deep_copy(usage));
    json_object_set_new(obj, key, usage);
}

/* ---- sending ---------------------------------------------------------- */

/* A complete JSON answer, with the fail modes that make sense for one:
 * stall after the headers, or cut the body in half. `wait_ms` is extra
 * time before the headers (the non-stream stand-in for a slow stream). */
static void send_json_wait(ctx *c, int status, json_t *obj, unsigned wait_ms)
{
    char *body = dump(obj);
    json_decref(obj);
    size_t len = strlen(body);
    char *extra = extra_headers(c, 0);
    set_call(c, "status", json_integer(status));
    mu_reply_head(c->rp, c->base_delay + c->delay_ms + wait_ms, status,
                  "application/json", (long)len, extra);
    free(extra);
    if (c->fail == F_STALL) {
        c->rp->end = MU_END_STALL;
    } else if (c->fail == F_TRUNCATE || c->fail == F_ABORT) {
        mu_reply_data(c->rp, c->first_byte_ms, body, len / 2);
        c->rp->end = c->fail == F_ABORT ? MU_END_RESET : MU_END_CUT;
    } else {
        mu_reply_data(c->rp, c->first_byte_ms, body, len);
        c->rp->end = MU_END_DONE;
    }
    free(body);
}

static void send_json(ctx *c, int status, json_t *obj) { send_json_wait(c, status, obj, 0); }

static const char *error_type(const ctx *c, int status)
{
    if (c->proto == P_ANTHROPIC) {
        switch (status) {
        case 400: return "invalid_request_error";
        case 401: return "authentication_error";
        case 403: return "permission_error";
        case 404: return "not_found_error";
        case 413: return "request_too_large";
        case 429: return "rate_limit_error";
        case 529: return "overloaded_error";
        default: return "api_error";
        }
    }
    switch (status) {
    case 400: case 401: case 404: case 405: case 413: case 422:
        return "invalid_request_error";
    case 403: return "permission_error";
    case 429: return "requests";
    default: return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

static const char *gemini_status(int status)
{
    switch (status) {
    case 400: return "INVALID_ARGUMENT";
    case 401: return "UNAUTHENTICATED";
    case 403: return "PERMISSION_DENIED";
    case 404: return "NOT_FOUND";
    case 429: return "RESOURCE_EXHAUSTED";
    case 503: return "UNAVAILABLE";
    case 504: return "DEADLINE_EXCEEDED";
    default: return status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT";
    }
}

/* An error body in the shape of the caller's provider. */
static void send_error(ctx *c, int status, const char *message)
{
    json_t *j;
    if (c->proto == P_GEMINI) {
        j = json_pack("{s:{s:i,s:s,s:s}}", "error", "code", status, "message", message, "status",
                      gemini_status(status));
    } else if (c->proto == P_ANTHROPIC) {
        j = json_pack("{s:s,s:{s:s,s:s},s:s}", "type", "error", "error", "type",
                      error_type(c, status), "message", message, "request_id", c->req_id);
    } else {
        const char *code = status == 429 ? "rate_limit_exceeded"
                         : status == 401 ? "invalid_api_key"
                         : status == 404 ? "model_not_found" : NULL;
        j = json_pack("{s:{s:s,s:s,s:n,s:o}}", "error", "message", message, "type",
                      error_type(c, status), "param", "code",
                      code ? json_string(code) : json_null());
    }
    send_json(c, status, j);
}

/* A list of SSE events with their delays, collected before framing so
 * truncation can cut it at its middle. */
typedef struct evlist {
    mu_step *v;
    size_t n, cap;
} evlist;

static void ev_add(evlist *l, unsigned delay_ms, const char *event, json_t *data)
{
    mu_buf b = {0};
    if (event)
        mu_buf_printf(&b, "event: %s\n", event);
    if (data) {
        char *s = dump(data);
        json_decref(data);
        mu_buf_printf(&b, "data: %s\n\n", s);
        free(s);
    } else {
        mu_buf_str(&b, "data: [DONE]\n\n");
    }
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        if (!l->v)
            abort();
    }
    l->v[l->n++] = (mu_step){delay_ms, b.p, b.len};
}

static void send_stream(ctx *c, evlist *l)
{
    char *extra = extra_headers(c, 1);
    set_call(c, "status", json_integer(200));
    mu_reply_head(c->rp, c->base_delay + c->delay_ms, 200,
                  "text/event-stream; charset=utf-8", -1, extra);
    free(extra);
    size_t n = l->n;
    if (c->fail == F_STALL)
        n = 0;
    else if (c->fail == F_TRUNCATE || c->fail == F_ABORT || c->huge_line)
        n = l->n / 2;
    for (size_t i = 0; i < n; i++)
        mu_reply_data(c->rp, l->v[i].delay_ms + (i == 0 ? c->first_byte_ms : 0),
                      l->v[i].data, l->v[i].len);
    if (c->huge_line && c->fail == F_NONE) {
        /* One `data:` line that never ends, then the end of the body. */
        size_t hl = 6 + (size_t)c->huge_line;
        char *line = malloc(hl);
        if (!line)
            abort();
        memcpy(line, "data: ", 6);
        memset(line + 6, 'x', (size_t)c->huge_line);
        mu_reply_data(c->rp, c->interval_ms, line, hl);
        free(line);
    }
    if (c->fail == F_STALL) {
        c->rp->end = MU_END_STALL;
    } else if (c->fail == F_TRUNCATE) {
        c->rp->end = MU_END_CUT;
    } else if (c->fail == F_ABORT) {
        c->rp->end = MU_END_RESET;
    } else {
        mu_reply_finish(c->rp);
        c->rp->end = MU_END_DONE;
    }
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i].data);
    free(l->v);
}

/* ---- directives ------------------------------------------------------- */

static int parse_uint(const char *v, long lo, long hi, long *out)
{
    char *e;
    long n = strtol(v, &e, 10);
    if (!*v || *e || n < lo || n > hi)
        return -1;
    *out = n;
    return 0;
}

static int directive(ctx *c, const char *key, const char *val, char *err, size_t errlen)
{
    long n;
    if (!strcmp(key, "fail")) {
        if (!strcmp(val, "reset")) c->fail = F_RESET;
        else if (!strcmp(val, "truncate")) c->fail = F_TRUNCATE;
        else if (!strcmp(val, "abort")) c->fail = F_ABORT;
        else if (!strcmp(val, "stall")) c->fail = F_STALL;
        else if (!strcmp(val, "none")) c->fail = F_NONE;
        else {
            snprintf(err, errlen,
                     "mock directive fail=%s: want reset, truncate, abort, stall or none", val);
            return -1;
        }
        return 0;
    }
    if (!strcmp(key, "tool")) {
        if (!strcmp(val, "none")) {
            c->no_tool = 1;
            c->tool[0] = '\0';
        } else if (strlen(val) < sizeof c->tool) {
            c->no_tool = 0;
            memcpy(c->tool, val, strlen(val) + 1);
        } else {
            snprintf(err, errlen, "mock directive tool=%.40s...: want a tool name (up to %zu bytes)", val,
                     sizeof c->tool - 1);
            return -1;
        }
        return 0;
    }
    if (!strcmp(key, "args")) {
        if (!strcmp(val, "required")) c->args_required = 1;
        else if (!strcmp(val, "all")) c->args_required = 0;
        else {
            snprintf(err, errlen, "mock directive args=%s: want required or all", val);
            return -1;
        }
        return 0;
    }
    if (!strcmp(key, "arg_str")) {
        if (strlen(val) >= sizeof c->arg_str) {
            snprintf(err, errlen, "mock directive arg_str: up to %zu bytes", sizeof c->arg_str - 1);
            return -1;
        }
        memcpy(c->arg_str, val, strlen(val) + 1);
        return 0;
    }
    if (!strcmp(key, "redirect")) {
        /* The value becomes a header line: no control characters. */
        size_t vlen = strlen(val);
        int ok = vlen > 0 && vlen < sizeof c->redirect;
        for (size_t i = 0; ok && i < vlen; i++)
            ok = (unsigned char)val[i] > 0x20 && val[i] != 0x7f;
        if (!ok) {
            snprintf(err, errlen, "mock directive redirect=%s: want a URL (up to %zu bytes)", val,
                     sizeof c->redirect - 1);
            return -1;
        }
        memcpy(c->redirect, val, vlen + 1);
        return 0;
    }
    if (!strcmp(key, "echo")) {
        c->echo = !strcmp(val, "1");
        return 0;
    }
    if (!strcmp(key, "usage")) {
        if (!strcmp(val, "none")) c->usage_none = 1;
        else if (!strcmp(val, "report")) c->usage_none = 0;
        else {
            snprintf(err, errlen, "mock directive usage=%s: want none or report", val);
            return -1;
        }
        return 0;
    }
    static const struct { const char *key; long lo, hi; } nums[] = {
        {"chunks", 1, 100000}, {"interval_ms", 0, 600000}, {"status", 100, 599},
        {"retry_after", 0, 86400}, {"delay_ms", 0, 600000},
        {"first_byte_ms", 0, 600000}, {"words", 1, 100000},
        {"account_headers", 0, 1}, {"bare_cr", 0, 1}, {"huge_line", 1, 64L << 20},
        {"cache_read", 0, 100000000}, {"cache_write", 0, 100000000},
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        if (strcmp(key, nums[i].key))
            continue;
        if (parse_uint(val, nums[i].lo, nums[i].hi, &n)) {
            snprintf(err, errlen, "mock directive %s=%s: want an integer in %ld..%ld",
                     key, val, nums[i].lo, nums[i].hi);
            return -1;
        }
        switch (i) {
        case 0: c->chunks = (int)n; break;
        case 1: c->interval_ms = (unsigned)n; break;
        case 2: c->status = (int)n; break;
        case 3: c->retry_after = (int)n; break;
        case 4: c->delay_ms = (unsigned)n; break;
        case 5: c->first_byte_ms = (unsigned)n; break;
        case 6: c->words = (int)n; break;
        case 7: c->account_headers = (int)n; break;
        case 8: c->bare_cr = (int)n; break;
        case 9: c->huge_line = n; break;
        case 10: c->cache_read = n; break;
        case 11: c->cache_write = n; break;
        }
        return 0;
    }
    snprintf(err, errlen, "unknown mock directive '%.24s' (know: chunks interval_ms status "
             "retry_after delay_ms first_byte_ms fail words redirect tool args arg_str usage "
             "account_headers bare_cr huge_line cache_read cache_write echo)", key);
    return -1;
}

/* Applies every `[[mock k=v ...]]` in s; later ones override earlier. */
static int apply_directives(ctx *c, const char *s, char *err, size_t errlen)
{
    const char *p = s;
    while (s && (p = strstr(p, "[[mock"))) {
        p += 6;
        if (*p && !isspace((unsigned char)*p) && *p != ']')
            continue; /* e.g. "[[mockery" is not ours */
        const char *end = strstr(p, "]]");
        if (!end) {
            snprintf(err, errlen, "unterminated [[mock ...]] directive");
            return -1;
        }
        while (p < end) {
            while (p < end && isspace((unsigned char)*p))
                p++;
            const char *t = p;
            while (p < end && !isspace((unsigned char)*p))
                p++;
            if (p == t)
                break;
            char tok[128];
            size_t tl = (size_t)(p - t) < sizeof tok - 1 ? (size_t)(p - t) : sizeof tok - 1;
            memcpy(tok, t, tl);
            tok[tl] = '\0';
            char *eq = strchr(tok, '=');
            if (!eq) {
                snprintf(err, errlen, "mock directive '%s' is not key=value", tok);
                return -1;
            }
            *eq = '\0';
            if (directive(c, tok, eq + 1, err, errlen))
                return -1;
        }
        p = end + 2;
    }
    return 0;
}

/* Appends the text parts of a message content (string or part array). */
static void content_text(json_t *content, mu_buf *out)
{
    if (json_is_string(content)) {
        mu_buf_str(out, json_string_value(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (type && !strcmp(type, "text") && json_is_string(text)) {
            if (out->len)
                mu_buf_str(out, "\n");
            mu_buf_str(out, json_string_value(text));
        }
    }
}

static json_t *last_message(json_t *messages, const char *role)
{
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *m = json_array_get(messages, i);
        const char *r = json_string_value(json_object_get(m, "role"));
        if (!role || (r && !strcmp(r, role)))
            return m;
    }
    return NULL;
}

/* ---- replies ---------------------------------------------------------- */

/* What the assistant says: text split into chunks, or one tool call. */
typedef struct answer {
    int is_tool;
    char *text;    /* text reply, or the tool arguments JSON */
    char **pieces; /* stream chunks; concatenated they give `text` */
    int npieces;
    int nchunks; /* chunk count, also what a non-stream answer waits for */
    const char *tool_name;
    json_t *tool_input; /* parsed arguments */
    char tool_id[48];
    long long out_tokens;
    int truncated; /* stopped at max_tokens */
} answer;

static void answer_free(answer *a)
{
    free(a->text);
    for (int i = 0; i < a->npieces; i++)
        free(a->pieces[i]);
    free(a->pieces);
    json_decref(a->tool_input);
}

static char *gen_words(int n)
{
    mu_buf b = {0};
    for (int i = 0; i < n; i++) {
        if (i)
            mu_buf_str(&b, " ");
        mu_buf_str(&b, WORDS[i % NWORDS]);
    }
    mu_buf_add(&b, "", 0);
    return b.p;
}

/* Splits text at word starts into n chunks whose concatenation is text. */
static void split_words(answer *a, int n)
{
    const char *t = a->text;
    size_t len = strlen(t);
    int w = count_words(t);
    size_t *starts = calloc((size_t)w + 1, sizeof *starts);
    if (!starts)
        abort();
    int k = 0, in = 0;
    for (size_t i = 0; i < len; i++) {
        int sp = isspace((unsigned char)t[i]);
        if (!sp && !in)
            starts[k++] = i;
        in = !sp;
    }
    if (w > 0)
        starts[0] = 0; /* leading blanks ride with the first word */
    starts[w] = len;
    if (n > w)
        n = w > 0 ? w : 1;
    a->pieces = calloc((size_t)n, sizeof *a->pieces);
    a->npieces = n;
    for (int i = 0; i < n; i++) {
        size_t from = w ? starts[(size_t)i * (size_t)w / (size_t)n] : 0;
        size_t to = w ? starts[(size_t)(i + 1) * (size_t)w / (size_t)n] : len;
        a->pieces[i] = strndup(t + from, to - from);
    }
    free(starts);
}

/* Splits a JSON string into n byte ranges without cutting a UTF-8 char. */
static void split_bytes(answer *a, int n)
{
    const char *t = a->text;
    size_t len = strlen(t);
    if ((size_t)n > len)
        n = len ? (int)len : 1;
    a->pieces = calloc((size_t)n, sizeof *a->pieces);
    a->npieces = n;
    size_t from = 0;
    for (int i = 0; i < n; i++) {
        size_t to = i == n - 1 ? len : (size_t)(i + 1) * len / (size_t)n;
        while (to < len && ((unsigned char)t[to] & 0xC0) == 0x80)
            to++;
        if (to < from)
            to = from;
        a->pieces[i] = strndup(t + from, to - from);
        from = to;
    }
}

static json_t *sample_str(const ctx *c, const char *name)
{
    return c->arg_str[0] ? json_string(c->arg_str) : json_sprintf("mock-%s", name);
}

/* Whether an object schema lists `name` among its required properties. */
static int is_required(json_t *schema, const char *name)
{
    size_t i;
    json_t *v;
    json_array_foreach(json_object_get(schema, "required"), i, v)
        if (json_is_string(v) && !strcmp(json_string_value(v), name))
            return 1;
    return 0;
}

/* A plausible argument value for a JSON Schema, so SDKs and gateways see
 * arguments that match the tool they declared. */
static json_t *sample(const ctx *c, json_t *schema, const char *name, int depth)
{
    if (!json_is_object(schema) || depth > 6)
        return sample_str(c, name);
    json_t *en = json_object_get(schema, "enum");
    if (json_array_size(en))
        return json_deep_copy(json_array_get(en, 0));
    json_t *def = json_object_get(schema, "default");
    if (def)
        return json_deep_copy(def);
    json_t *tj = json_object_get(schema, "type");
    const char *type = json_string_value(tj);
    if (json_is_array(tj)) {
        size_t i;
        json_t *v;
        json_array_foreach(tj, i, v) {
            if (json_is_string(v) && strcmp(json_string_value(v), "null")) {
                type = json_string_value(v);
                break;
            }
        }
    }
    json_t *props = json_object_get(schema, "properties");
    if (!type)
        type = json_is_object(props) ? "object" : "string";
    if (!strcmp(type, "integer"))
        return json_integer(42);
    if (!strcmp(type, "number"))
        return json_real(1.5);
    if (!strcmp(type, "boolean"))
        return json_true();
    if (!strcmp(type, "null"))
        return json_null();
    if (!strcmp(type, "array"))
        return json_pack("[o]", sample(c, json_object_get(schema, "items"), name, depth + 1));
    if (!strcmp(type, "object")) {
        json_t *o = json_object();
        const char *k;
        json_t *v;
        json_object_foreach(props, k, v) {
            if (!c->args_required || is_required(schema, k))
                json_object_set_new(o, k, sample(c, v, k, depth + 1));
        }
        return o;
    }
    return sample_str(c, name);
}

static void text_answer(ctx *c, answer *a, const char *quoted, long long max_tokens,
                        int stream)
{
    if (quoted) {
        mu_buf b = {0};
        mu_buf_printf(&b, "The tool returned: %s", quoted);
        a->text = b.p;
    } else if (c->echo && c->echo_text[0]) {
        a->text = strdup(c->echo_text);
    } else {
        int n = c->words ? c->words : NWORDS;
        if (c->chunks > n)
            n = c->chunks; /* every requested chunk gets a word */
        a->text = gen_words(n);
    }
    int w = count_words(a->text);
    if (max_tokens > 0 && w > max_tokens) {
        /* cut after the max_tokens-th word, as a provider stops at its limit */
        const char *t = a->text;
        int k = 0, in = 0;
        size_t i;
        for (i = 0; t[i]; i++) {
            int sp = isspace((unsigned char)t[i]);
            if (!sp && !in && k++ == max_tokens)
                break;
            in = !sp;
        }
        while (i > 0 && isspace((unsigned char)t[i - 1]))
            i--;
        a->text[i] = '\0';
        a->truncated = 1;
        w = (int)max_tokens;
    }
    a->out_tokens = w;
    a->nchunks = c->chunks ? c->chunks : w;
    if (stream)
        split_words(a, a->nchunks);
}

static void tool_answer(ctx *c, answer *a, const char *name, json_t *schema, int stream)
{
    a->is_tool = 1;
    a->tool_name = name;
    a->tool_input = sample(c, schema, name, 0);
    if (!json_is_object(a->tool_input)) {
        json_decref(a->tool_input);
        a->tool_input = json_object();
    }
    a->text = dump(a->tool_input);
    new_id(a->tool_id, sizeof a->tool_id, c->proto == P_OPENAI ? "call_mock" : "toolu_mock");
    a->out_tokens = (long long)(strlen(a->text) + 3) / 4;
    a->nchunks = c->chunks ? c->chunks : 3;
    if (stream)
        split_bytes(a, a->nchunks);
}

/* ---- OpenAI ----------------------------------------------------------- */

static json_t *oa_usage(const ctx *c, const answer *a)
{
    /* prompt_tokens counts the cached ones too, as OpenAI's does */
    long long in = input_tokens(c) + c->cache_read;
    return json_pack("{s:I,s:I,s:I,s:{s:I,s:i},s:{s:i,s:i,s:i,s:i}}",
                     "prompt_tokens", in, "completion_tokens", a->out_tokens,
                     "total_tokens", in + a->out_tokens,
                     "prompt_tokens_details", "cached_tokens", (json_int_t)c->cache_read, "audio_tokens", 0,
                     "completion_tokens_details", "reasoning_tokens", 0, "audio_tokens", 0,
                     "accepted_prediction_tokens", 0, "rejected_prediction_tokens", 0);
}

static json_t *oa_chunk(const ctx *c, const char *id, json_t *choices, int with_usage_null)
{
    json_t *j = json_pack("{s:s,s:s,s:I,s:s,s:s,s:s,s:o}", "id", id, "object",
                          "chat.completion.chunk", "created", c->created, "model",
                          c->model, "service_tier", "default", "system_fingerprint",
                          "fp_mock", "choices", choices);
    if (with_usage_null)
        json_object_set_new(j, "usage", json_null());
    return j;
}

static json_t *oa_choice(json_t *delta, const char *finish)
{
    return json_pack("[{s:i,s:o,s:n,s:o}]", "index", 0, "delta", delta, "logprobs",
                     "finish_reason", finish ? json_string(finish) : json_null());
}

static void openai_chat(ctx *c)
{
    json_t *b = c->body;
    json_t *messages = json_object_get(b, "messages");
    if (!json_is_array(messages) || !json_array_size(messages)) {
        send_error(c, 400, "'messages' must be a non-empty array");
        return;
    }
    int stream = json_is_true(json_object_get(b, "stream"));
    int include_usage = stream && json_is_true(json_object_get(
                                      json_object_get(b, "stream_options"), "include_usage"));
    /* null when the chunks carry no usage member at all (usage=none) */
    include_usage = include_usage && !c->usage_none;
    set_call(c, "stream", json_boolean(stream));
    long long max_tokens = json_integer_value(json_object_get(b, "max_completion_tokens"));
    if (!max_tokens)
        max_tokens = json_integer_value(json_object_get(b, "max_tokens"));

    json_t *last = last_message(messages, NULL);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    json_t *tools = json_object_get(b, "tools");
    json_t *choice = json_object_get(b, "tool_choice");
    const char *choice_s = json_string_value(choice);
    json_t *tool = NULL;
    if (json_array_size(tools) && last_role && !strcmp(last_role, "user") && !c->no_tool &&
        !(choice_s && !strcmp(choice_s, "none"))) {
        const char *want = c->tool[0] ? c->tool : json_string_value(
            json_object_get(json_object_get(choice, "function"), "name"));
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *n = json_string_value(
                json_object_get(json_object_get(t, "function"), "name"));
            if (n && (!want || !strcmp(n, want))) {
                tool = t;
                break;
            }
        }
        if (!tool && c->tool[0]) {
            char msg[200];
            snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such tool", c->tool);
            send_error(c, 400, msg);
            return;
        }
    }

    answer a = {0};
    if (tool) {
        json_t *fn = json_object_get(tool, "function");
        tool_answer(c, &a, json_string_value(json_object_get(fn, "name")),
                    json_object_get(fn, "parameters"), stream);
    } else if (last_role && !strcmp(last_role, "tool")) {
        mu_buf q = {0};
        content_text(json_object_get(last, "content"), &q);
        mu_buf_add(&q, "", 0);
        text_answer(c, &a, q.p, max_tokens, stream);
        mu_buf_free(&q);
    } else {
        text_answer(c, &a, NULL, max_tokens, stream);
    }
    const char *finish = a.is_tool ? "tool_calls" : a.truncated ? "length" : "stop";
    char id[48];
    new_id(id, sizeof id, "chatcmpl-mock");

    if (!stream) {
        json_t *msg;
        if (a.is_tool)
            msg = json_pack("{s:s,s:n,s:[{s:s,s:s,s:{s:s,s:s}}],s:n,s:[]}", "role",
                            "assistant", "content", "tool_calls", "id", a.tool_id, "type",
                            "function", "function", "name", a.tool_name, "arguments",
                            a.text, "refusal", "annotations");
        else
            msg = json_pack("{s:s,s:s,s:n,s:[]}", "role", "assistant", "content", a.text,
                            "refusal", "annotations");
        json_t *resp = json_pack(
            "{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:s}]}", "id", id, "object",
            "chat.completion", "created", c->created, "model", c->model, "choices",
            "index", 0, "message", msg, "logprobs", "finish_reason", finish);
        put_usage(c, resp, "usage", oa_usage(c, &a));
        json_object_set_new(resp, "service_tier", json_string("default"));
        json_object_set_new(resp, "system_fingerprint", json_string("fp_mock"));
        send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        answer_free(&a);
        return;
    }

    evlist l = {0};
    if (a.is_tool) {
        ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
            "{s:s,s:n,s:[{s:i,s:s,s:s,s:{s:s,s:s}}],s:n}", "role", "assistant", "content",
            "tool_calls", "index", 0, "id", a.tool_id, "type", "function", "function",
            "name", a.tool_name, "arguments", "", "refusal"), NULL), include_usage));
        for (int i = 0; i < a.npieces; i++)
            ev_add(&l, i ? c->interval_ms : 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
                "{s:[{s:i,s:{s:s}}]}", "tool_calls", "index", 0, "function", "arguments",
                a.pieces[i]), NULL), include_usage));
    } else {
        ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
            "{s:s,s:s,s:n}", "role", "assistant", "content", "", "refusal"), NULL),
            include_usage));
        for (int i = 0; i < a.npieces; i++)
            ev_add(&l, i ? c->interval_ms : 0, NULL, oa_chunk(c, id, oa_choice(json_pack(
                "{s:s}", "content", a.pieces[i]), NULL), include_usage));
    }
    ev_add(&l, 0, NULL, oa_chunk(c, id, oa_choice(json_object(), finish), include_usage));
    if (include_usage && !c->usage_none) {
        json_t *u = oa_chunk(c, id, json_array(), 0);
        put_usage(c, u, "usage", oa_usage(c, &a));
        ev_add(&l, 0, NULL, u);
    }
    ev_add(&l, 0, NULL, NULL); /* data: [DONE] */
    send_stream(c, &l);
    answer_free(&a);
}

/* Adds the pseudo-random vector seeded by s[0..len) (FNV-1a, then an LCG). */
static void add_hashed(const char *s, size_t len, int dims, float *out)
{
    unsigned long long h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    for (int i = 0; i < dims; i++) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        out[i] += (float)((double)(h >> 11) / (double)(1ULL << 53) * 2.0 - 1.0);
    }
}

/* Deterministic unit vector for one input: a hashed bag of words, the sum
 * of one pseudo-random vector per word (letters and digits, case folded),
 * so texts sharing most words point the same way, as real embeddings of
 * near-identical prompts do (semantic cache tests rely on it). Input
 * without words hashes whole. */
static void embed(const char *s, size_t len, int dims, float *out)
{
    memset(out, 0, (size_t)dims * sizeof *out);
    char word[64];
    size_t wn = 0;
    int words = 0;
    for (size_t i = 0; i <= len; i++) {
        unsigned char ch = i < len ? (unsigned char)s[i] : ' ';
        if (isalnum(ch)) {
            if (wn < sizeof word)
                word[wn++] = (char)tolower(ch);
        } else if (wn) {
            add_hashed(word, wn, dims, out);
            words++;
            wn = 0;
        }
    }
    if (!words)
        add_hashed(s, len, dims, out);
    double norm = 0;
    for (int i = 0; i < dims; i++)
        norm += (double)out[i] * out[i];
    norm = norm > 0 ? 1.0 / sqrt(norm) : 1.0;
    for (int i = 0; i < dims; i++)
        out[i] = (float)(out[i] * norm);
}

static char *base64(const unsigned char *p, size_t n)
{
    static const char tbl[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
    if (!o)
        abort();
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) |
                     (i + 2 < n ? p[i + 2] : 0);
        *q++ = tbl[v >> 18 & 63];
        *q++ = tbl[v >> 12 & 63];
        *q++ = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        *q++ = i + 2 < n ? tbl[v & 63] : '=';
    }
    *q = '\0';
    return o;
}

static void openai_embeddings(ctx *c)
{
    json_t *input = json_object_get(c->body, "input");
    json_t *list;
    /* input: a string, an array of strings, an array of token ids, or an
     * array of such arrays; each top-level item is one embedding. */
    if (json_is_string(input) ||
        (json_is_array(input) && json_array_size(input) &&
         json_is_integer(json_array_get(input, 0))))
        list = json_pack("[O]", input);
    else if (json_is_array(input) && json_array_size(input))
        list = json_incref(input);
    else {
        send_error(c, 400, "'input' must be a string or a non-empty array");
        return;
    }
    long long dims = json_integer_value(json_object_get(c->body, "dimensions"));
    if (dims <= 0 || dims > 4096)
        dims = 16;
    const char *fmt = json_string_value(json_object_get(c->body, "encoding_format"));
    int b64 = fmt && !strcmp(fmt, "base64");
    json_t *data = json_array();
    float *vec = malloc((size_t)dims * sizeof *vec);
    long long tokens = 0;
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item) {
        char *s = dump(item);
        size_t sl = strlen(s);
        tokens += (long long)(sl + 3) / 4;
        embed(s, sl, (int)dims, vec);
        free(s);
        json_t *e;
        if (b64) {
            /* float32 little-endian, which is what the SDKs decode */
            unsigned char *raw = malloc((size_t)dims * 4);
            for (long long k = 0; k < dims; k++) {
                unsigned u;
                memcpy(&u, &vec[k], 4);
                raw[k * 4] = (unsigned char)u;
                raw[k * 4 + 1] = (unsigned char)(u >> 8);
                raw[k * 4 + 2] = (unsigned char)(u >> 16);
                raw[k * 4 + 3] = (unsigned char)(u >> 24);
            }
            char *enc = base64(raw, (size_t)dims * 4);
            e = json_string(enc);
            free(enc);
            free(raw);
        } else {
            e = json_array();
            for (long long k = 0; k < dims; k++)
                json_array_append_new(e, json_real(vec[k]));
        }
        json_array_append_new(data, json_pack("{s:s,s:I,s:o}", "object", "embedding",
                                              "index", (json_int_t)i, "embedding", e));
    }
    free(vec);
    json_decref(list);
    send_json(c, 200, json_pack("{s:s,s:o,s:s,s:{s:I,s:I}}", "object", "list", "data",
                                data, "model", c->model, "usage", "prompt_tokens", tokens,
                                "total_tokens", tokens));
}

static void models_list(ctx *c)
{
    static const char *const oa[] = {"gpt-4o", "gpt-4o-mini", "text-embedding-3-small"};
    static const char *const an[] = {"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"};
    json_t *data = json_array();
    if (c->proto == P_ANTHROPIC) {
        for (size_t i = 0; i < 3; i++)
            json_array_append_new(data, json_pack("{s:s,s:s,s:s,s:s}", "type", "model",
                                                  "id", an[i], "display_name", an[i],
                                                  "created_at", "2025-01-01T00:00:00Z"));
        send_json(c, 200, json_pack("{s:o,s:b,s:s,s:s}", "data", data, "has_more", 0,
                                    "first_id", an[0], "last_id", an[2]));
    } else {
        for (size_t i = 0; i < 3; i++)
            json_array_append_new(data, json_pack("{s:s,s:s,s:i,s:s}", "id", oa[i],
                                                  "object", "model", "created", 1700000000,
                                                  "owned_by", "mock-upstream"));
        send_json(c, 200, json_pack("{s:s,s:o}", "object", "list", "data", data));
    }
}

/* ---- Anthropic -------------------------------------------------------- */

static json_t *an_usage(const ctx *c, long long out)
{
    return json_pack("{s:I,s:I,s:I,s:I,s:s}", "input_tokens", input_tokens(c),
                     "cache_creation_input_tokens", (json_int_t)c->cache_write, "cache_read_input_tokens",
                     (json_int_t)c->cache_read, "output_tokens", out, "service_tier", "standard");
}

/* The first tool_result block of a user message, as text; NULL if none. */
static char *tool_result_text(json_t *msg)
{
    json_t *content = json_object_get(msg, "content");
    size_t i;
    json_t *blk;
    json_array_foreach(content, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        if (type && !strcmp(type, "tool_result")) {
            mu_buf q = {0};
            content_text(json_object_get(blk, "content"), &q);
            mu_buf_add(&q, "", 0);
            return q.p;
        }
    }
    return NULL;
}

static void anthropic_messages(ctx *c)
{
    json_t *b = c->body;
    json_t *messages = json_object_get(b, "messages");
    if (!json_is_array(messages) || !json_array_size(messages)) {
        send_error(c, 400, "messages: Field required");
        return;
    }
    json_t *mt = json_object_get(b, "max_tokens");
    if (!json_is_integer(mt) || json_integer_value(mt) < 1) {
        send_error(c, 400, "max_tokens: Field required");
        return;
    }
    long long max_tokens = json_integer_value(mt);
    int stream = json_is_true(json_object_get(b, "stream"));
    set_call(c, "stream", json_boolean(stream));

    json_t *last = last_message(messages, NULL);
    const char *last_role = json_string_value(json_object_get(last, "role"));
    char *result = last_role && !strcmp(last_role, "user") ? tool_result_text(last) : NULL;
    json_t *tools = json_object_get(b, "tools");
    json_t *choice = json_object_get(b, "tool_choice");
    const char *ctype = json_string_value(json_object_get(choice, "type"));
    json_t *tool = NULL;
    if (!result && json_array_size(tools) && last_role && !strcmp(last_role, "user") &&
        !c->no_tool && !(ctype && !strcmp(ctype, "none"))) {
        const char *want = c->tool[0] ? c->tool
                           : ctype && !strcmp(ctype, "tool")
                               ? json_string_value(json_object_get(choice, "name")) : NULL;
        size_t i;
        json_t *t;
        json_array_foreach(tools, i, t) {
            const char *n = json_string_value(json_object_get(t, "name"));
            if (n && (!want || !strcmp(n, want))) {
                tool = t;
                break;
            }
        }
        if (!tool && c->tool[0]) {
            char msg[200];
            snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such tool", c->tool);
            send_error(c, 400, msg);
            return;
        }
    }

    answer a = {0};
    if (tool)
        tool_answer(c, &a, json_string_value(json_object_get(tool, "name")),
                    json_object_get(tool, "input_schema"), stream);
    else
        text_answer(c, &a, result, max_tokens, stream);
    free(result);
    const char *stop = a.is_tool ? "tool_use" : a.truncated ? "max_tokens" : "end_turn";
    char id[48];
    new_id(id, sizeof id, "msg_mock");

    if (!stream) {
        json_t *block = a.is_tool
            ? json_pack("{s:s,s:s,s:s,s:O}", "type", "tool_use", "id", a.tool_id, "name",
                        a.tool_name, "input", a.tool_input)
            : json_pack("{s:s,s:s}", "type", "text", "text", a.text);
        json_t *resp = json_pack("{s:s,s:s,s:s,s:s,s:[o],s:s,s:n}", "id", id, "type",
                                 "message", "role", "assistant", "model", c->model,
                                 "content", block, "stop_reason", stop, "stop_sequence");
        put_usage(c, resp, "usage", an_usage(c, a.out_tokens));
        send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        answer_free(&a);
        return;
    }

    evlist l = {0};
    json_t *start = json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n}}", "type", "message_start", "message",
        "id", id, "type", "message", "role", "assistant", "model", c->model, "content",
        "stop_reason", "stop_sequence");
    if (!c->usage_none)
        json_object_set_new(json_object_get(start, "message"), "usage", an_usage(c, 1));
    ev_add(&l, 0, "message_start", start);
    json_t *start_block = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use", "id", a.tool_id, "name",
                    a.tool_name, "input")
        : json_pack("{s:s,s:s}", "type", "text", "text", "");
    ev_add(&l, 0, "content_block_start", json_pack("{s:s,s:i,s:o}", "type",
           "content_block_start", "index", 0, "content_block", start_block));
    ev_add(&l, 0, "ping", json_pack("{s:s}", "type", "ping"));
    for (int i = 0; i < a.npieces; i++) {
        json_t *delta = a.is_tool
            ? json_pack("{s:s,s:s}", "type", "input_json_delta", "partial_json", a.pieces[i])
            : json_pack("{s:s,s:s}", "type", "text_delta", "text", a.pieces[i]);
        ev_add(&l, i ? c->interval_ms : 0, "content_block_delta",
               json_pack("{s:s,s:i,s:o}", "type", "content_block_delta", "index", 0,
                         "delta", delta));
    }
    ev_add(&l, 0, "content_block_stop",
           json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    json_t *mdelta = json_pack("{s:s,s:{s:s,s:n}}", "type", "message_delta", "delta",
                               "stop_reason", stop, "stop_sequence");
    if (!c->usage_none) {
        /* what the whole stream reports: message_start's input, this output */
        set_call(c, "usage", an_usage(c, a.out_tokens));
        json_object_set_new(mdelta, "usage", json_pack("{s:I}", "output_tokens", a.out_tokens));
    }
    ev_add(&l, 0, "message_delta", mdelta);
    ev_add(&l, 0, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    send_stream(c, &l);
    answer_free(&a);
}

static void anthropic_count_tokens(ctx *c)
{
    if (!json_is_array(json_object_get(c->body, "messages"))) {
        send_error(c, 400, "messages: Field required");
        return;
    }
    send_json(c, 200, json_pack("{s:I}", "input_tokens", input_tokens(c)));
}

/* ---- Gemini ----------------------------------------------------------- */

/* The text parts of the last user turn of a generateContent request. */
static void gemini_user_text(json_t *contents, mu_buf *out)
{
    for (size_t i = json_array_size(contents); i-- > 0;) {
        json_t *turn = json_array_get(contents, i);
        const char *role = json_string_value(json_object_get(turn, "role"));
        if (role && strcmp(role, "user"))
            continue;
        size_t k;
        json_t *part;
        json_array_foreach(json_object_get(turn, "parts"), k, part) {
            json_t *t = json_object_get(part, "text");
            if (json_is_string(t)) {
                if (out->len)
                    mu_buf_str(out, "\n");
                mu_buf_str(out, json_string_value(t));
            }
        }
        return;
    }
}

static json_t *gm_usage(const ctx *c, long long out)
{
    long long in = input_tokens(c) + c->cache_read;
    json_t *u = json_pack("{s:I,s:I,s:I}", "promptTokenCount", in, "candidatesTokenCount", out,
                          "totalTokenCount", in + out);
    if (c->cache_read)
        json_object_set_new(u, "cachedContentTokenCount", json_integer(c->cache_read));
    return u;
}

static json_t *gm_chunk(const ctx *c, const char *id, const char *text, const char *finish)
{
    json_t *cand = json_pack("{s:{s:[{s:s}],s:s},s:i}", "content", "parts", "text", text, "role",
                             "model", "index", 0);
    if (finish)
        json_object_set_new(cand, "finishReason", json_string(finish));
    return json_pack("{s:[o],s:s,s:s}", "candidates", cand, "modelVersion", c->model,
                     "responseId", id);
}

/* The function declaration to call, as for the other protocols: when the
 * request declares functions, its last turn is the user's own (no
 * functionResponse part) and toolConfig does not say NONE; the tool=
 * directive's, else the single allowedFunctionNames entry, else the first.
 * *err set when tool= names no declaration. */
static json_t *gemini_pick_tool(ctx *c, json_t *contents, int *err)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    size_t k;
    json_t *part;
    json_array_foreach(json_object_get(last, "parts"), k, part) if (json_object_get(part, "functionResponse")) return NULL;
    json_t *fcc = json_object_get(json_object_get(c->body, "toolConfig"), "functionCallingConfig");
    const char *mode = json_string_value(json_object_get(fcc, "mode"));
    if (c->no_tool || (mode && !strcmp(mode, "NONE")))
        return NULL;
    json_t *allowed = json_object_get(fcc, "allowedFunctionNames");
    const char *want = c->tool[0] ? c->tool
                       : json_array_size(allowed) == 1 ? json_string_value(json_array_get(allowed, 0))
                                                       : NULL;
    size_t i, j;
    json_t *t, *fd;
    json_t *any = NULL;
    json_array_foreach(json_object_get(c->body, "tools"), i, t) {
        json_array_foreach(json_object_get(t, "functionDeclarations"), j, fd) {
            const char *n = json_string_value(json_object_get(fd, "name"));
            if (n && (!want || !strcmp(n, want)))
                return fd;
            any = any ? any : fd;
        }
    }
    *err = any != NULL && c->tool[0];
    return NULL;
}

/* "The tool returned: ..." quotes the last functionResponse's response. */
static char *gemini_tool_result(json_t *contents)
{
    json_t *last = json_array_get(contents, json_array_size(contents) - 1);
    size_t k;
    json_t *part;
    json_array_foreach(json_object_get(last, "parts"), k, part) {
        json_t *fr = json_object_get(part, "functionResponse");
        if (fr)
            return dump(json_object_get(fr, "response"));
    }
    return NULL;
}

/* generateContent, or streamGenerateContent with alt=sse (the only stream
 * framing sluice asks for): text or function-call answers, the last chunk
 * of a stream carrying finishReason and usageMetadata. A function call
 * comes whole in one part, streamed or not, as Gemini sends it. */
static void gemini_generate(ctx *c, int stream)
{
    json_t *contents = json_object_get(c->body, "contents");
    if (!json_is_array(contents) || !json_array_size(contents)) {
        send_error(c, 400, "* GenerateContentRequest.contents: contents is not specified");
        return;
    }
    json_t *gc = json_object_get(c->body, "generationConfig");
    json_t *mo = json_object_get(gc, "maxOutputTokens");
    if (mo && (!json_is_integer(mo) || json_integer_value(mo) < 1)) {
        send_error(c, 400, "generationConfig.maxOutputTokens must be a positive integer");
        return;
    }
    long long max_tokens = json_integer_value(mo);
    set_call(c, "stream", json_boolean(stream));
    int bad_tool = 0;
    json_t *fd = gemini_pick_tool(c, contents, &bad_tool);
    if (bad_tool) {
        char msg[200];
        snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such function", c->tool);
        send_error(c, 400, msg);
        return;
    }
    char id[48];
    new_id(id, sizeof id, "mockresp");
    answer a = {0};
    if (fd) {
        json_t *schema = json_object_get(fd, "parametersJsonSchema");
        tool_answer(c, &a, json_string_value(json_object_get(fd, "name")),
                    schema ? schema : json_object_get(fd, "parameters"), 0);
        json_t *resp = json_pack("{s:[{s:{s:[{s:{s:s,s:O}}],s:s},s:s,s:i}],s:s,s:s}", "candidates",
                                 "content", "parts", "functionCall", "name", a.tool_name, "args", a.tool_input,
                                 "role", "model", "finishReason", "STOP", "index", 0, "modelVersion", c->model,
                                 "responseId", id);
        put_usage(c, resp, "usageMetadata", gm_usage(c, a.out_tokens));
        if (stream) {
            evlist l = {0};
            ev_add(&l, 0, NULL, resp);
            send_stream(c, &l);
        } else {
            send_json_wait(c, 200, resp, 0);
        }
        answer_free(&a);
        return;
    }
    char *result = gemini_tool_result(contents);
    text_answer(c, &a, result, max_tokens, stream);
    free(result);
    const char *finish = a.truncated ? "MAX_TOKENS" : "STOP";
    if (!stream) {
        json_t *resp = gm_chunk(c, id, a.text, finish);
        put_usage(c, resp, "usageMetadata", gm_usage(c, a.out_tokens));
        send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        answer_free(&a);
        return;
    }
    evlist l = {0};
    for (int i = 0; i < a.npieces; i++) {
        int last = i == a.npieces - 1;
        json_t *ch = gm_chunk(c, id, a.pieces[i], last ? finish : NULL);
        if (last)
            put_usage(c, ch, "usageMetadata", gm_usage(c, a.out_tokens));
        ev_add(&l, i ? c->interval_ms : 0, NULL, ch);
    }
    send_stream(c, &l);
    answer_free(&a);
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

/* ---- OpenAI Responses API ------------------------------------------------ */

/* The Responses usage object: input_tokens counts cached ones too (as
 * OpenAI's does), broken out in input_tokens_details. */
static json_t *rs_usage(const ctx *c, long long out)
{
    long long in = input_tokens(c) + c->cache_read;
    return json_pack("{s:I,s:{s:I},s:I,s:{s:i},s:I}", "input_tokens", in, "input_tokens_details",
                     "cached_tokens", (json_int_t)c->cache_read, "output_tokens", out,
                     "output_tokens_details", "reasoning_tokens", 0, "total_tokens", in + out);
}

/* Text of a Responses message's content: a string or input_text /
 * output_text parts. */
static void rs_content_text(json_t *content, mu_buf *out)
{
    if (json_is_string(content)) {
        mu_buf_str(out, json_string_value(content));
        return;
    }
    size_t i;
    json_t *part;
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (type && (!strcmp(type, "input_text") || !strcmp(type, "output_text")) && json_is_string(text)) {
            if (out->len)
                mu_buf_str(out, "\n");
            mu_buf_str(out, json_string_value(text));
        }
    }
}

/* The text of the last user message of `input` (a string or items). */
static void rs_user_text(json_t *input, mu_buf *out)
{
    if (json_is_string(input)) {
        mu_buf_str(out, json_string_value(input));
        return;
    }
    for (size_t i = json_array_size(input); i-- > 0;) {
        json_t *it = json_array_get(input, i);
        const char *role = json_string_value(json_object_get(it, "role"));
        if (role && !strcmp(role, "user")) {
            rs_content_text(json_object_get(it, "content"), out);
            return;
        }
    }
}

/* The response envelope, echoing what OpenAI echoes of the request. */
static json_t *rs_response(const ctx *c, const char *id, const char *status, json_t *output)
{
    json_t *b = c->body;
    json_t *r = json_pack("{s:s,s:s,s:I,s:s,s:n,s:n,s:s,s:o,s:b}", "id", id, "object", "response", "created_at",
                          c->created, "status", status, "error", "incomplete_details", "model", c->model, "output",
                          output, "parallel_tool_calls", 1);
    static const char *const echo[] = {"instructions", "previous_response_id", "store", "metadata", "reasoning",
                                       "tool_choice", "tools", "text", "max_output_tokens"};
    for (size_t i = 0; i < sizeof echo / sizeof *echo; i++) {
        json_t *v = json_object_get(b, echo[i]);
        json_object_set_new(r, echo[i], v ? json_deep_copy(v) : json_null());
    }
    if (!json_object_get(b, "store"))
        json_object_set_new(r, "store", json_true());
    json_object_set_new(r, "usage", json_null());
    return r;
}

static json_t *rs_seq(json_t *ev, const char *type, long *seq)
{
    json_object_set_new(ev, "type", json_string(type));
    json_object_set_new(ev, "sequence_number", json_integer((*seq)++));
    return ev;
}

static void openai_responses(ctx *c)
{
    json_t *b = c->body;
    json_t *input = json_object_get(b, "input");
    if (!json_is_string(input) && !json_array_size(input)) {
        send_error(c, 400, "Missing required parameter: 'input'.");
        return;
    }
    int stream = json_is_true(json_object_get(b, "stream"));
    set_call(c, "stream", json_boolean(stream));
    long long max_tokens = json_integer_value(json_object_get(b, "max_output_tokens"));

    /* A tool result as the last item is answered; a user message with
     * function tools offered gets a call of the first (or the named) one. */
    json_t *last = json_is_array(input) ? json_array_get(input, json_array_size(input) - 1) : NULL;
    const char *last_type = json_string_value(json_object_get(last, "type"));
    const char *last_role = json_string_value(json_object_get(last, "role"));
    int user_last = json_is_string(input) || (last_role && !strcmp(last_role, "user"));
    char *result = NULL;
    if (last_type && !strcmp(last_type, "function_call_output")) {
        json_t *o = json_object_get(last, "output");
        mu_buf q = {0};
        rs_content_text(o, &q);
        mu_buf_add(&q, "", 0);
        result = q.p;
    }
    json_t *choice = json_object_get(b, "tool_choice");
    const char *choice_s = json_string_value(choice);
    json_t *tool = NULL;
    if (!result && user_last && !c->no_tool && !(choice_s && !strcmp(choice_s, "none"))) {
        const char *want = c->tool[0] ? c->tool : json_string_value(json_object_get(choice, "name"));
        size_t i;
        json_t *t;
        json_array_foreach(json_object_get(b, "tools"), i, t) {
            const char *type = json_string_value(json_object_get(t, "type"));
            const char *n = json_string_value(json_object_get(t, "name"));
            if (type && !strcmp(type, "function") && n && (!want || !strcmp(n, want))) {
                tool = t;
                break;
            }
        }
        if (!tool && c->tool[0]) {
            char msg[200];
            snprintf(msg, sizeof msg, "mock directive tool=%s: the request declares no such tool", c->tool);
            send_error(c, 400, msg);
            free(result);
            return;
        }
    }
    answer a = {0};
    if (tool)
        tool_answer(c, &a, json_string_value(json_object_get(tool, "name")), json_object_get(tool, "parameters"),
                    stream);
    else
        text_answer(c, &a, result, max_tokens, stream);
    free(result);
    char id[48], item[48];
    new_id(id, sizeof id, "resp_mock");
    new_id(item, sizeof item, a.is_tool ? "fc_mock" : "msg_mock");
    const char *status = a.truncated ? "incomplete" : "completed";
    json_t *done_item = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item, "type", "function_call", "status", "completed",
                    "arguments", a.text, "call_id", a.tool_id, "name", a.tool_name)
        : json_pack("{s:s,s:s,s:s,s:[{s:s,s:[],s:[],s:s}],s:s}", "id", item, "type", "message", "status",
                    "completed", "content", "type", "output_text", "annotations", "logprobs", "text", a.text,
                    "role", "assistant");

    if (!stream) {
        json_t *r = rs_response(c, id, status, json_pack("[o]", done_item));
        if (a.truncated)
            json_object_set_new(r, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
        if (c->usage_none)
            json_object_del(r, "usage");
        put_usage(c, r, "usage", rs_usage(c, a.out_tokens));
        send_json_wait(c, 200, r, (unsigned)a.nchunks * c->interval_ms);
        answer_free(&a);
        return;
    }

    /* The event sequence OpenAI sends, each with its sequence number. */
    evlist l = {0};
    long seq = 0;
    const char *ev;
    ev = "response.created";
    ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", rs_response(c, id, "in_progress", json_array())), ev, &seq));
    ev = "response.in_progress";
    ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", rs_response(c, id, "in_progress", json_array())), ev, &seq));
    json_t *added = a.is_tool
        ? json_pack("{s:s,s:s,s:s,s:s,s:s,s:s}", "id", item, "type", "function_call", "status", "in_progress",
                    "arguments", "", "call_id", a.tool_id, "name", a.tool_name)
        : json_pack("{s:s,s:s,s:s,s:[],s:s}", "id", item, "type", "message", "status", "in_progress", "content",
                    "role", "assistant");
    ev = "response.output_item.added";
    ev_add(&l, 0, ev, rs_seq(json_pack("{s:i,s:o}", "output_index", 0, "item", added), ev, &seq));
    if (a.is_tool) {
        for (int i = 0; i < a.npieces; i++) {
            ev = "response.function_call_arguments.delta";
            ev_add(&l, i ? c->interval_ms : 0, ev,
                   rs_seq(json_pack("{s:s,s:i,s:s}", "item_id", item, "output_index", 0, "delta", a.pieces[i]), ev,
                          &seq));
        }
        ev = "response.function_call_arguments.done";
        ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:s}", "item_id", item, "output_index", 0, "arguments", a.text), ev, &seq));
    } else {
        ev = "response.content_part.added";
        ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:{s:s,s:[],s:[],s:s}}", "item_id", item, "output_index", 0,
                                "content_index", 0, "part", "type", "output_text", "annotations", "logprobs", "text",
                                ""),
                      ev, &seq));
        for (int i = 0; i < a.npieces; i++) {
            ev = "response.output_text.delta";
            ev_add(&l, i ? c->interval_ms : 0, ev,
                   rs_seq(json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", item, "output_index", 0, "content_index",
                                    0, "delta", a.pieces[i], "logprobs"),
                          ev, &seq));
        }
        ev = "response.output_text.done";
        ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:s,s:[]}", "item_id", item, "output_index", 0, "content_index", 0,
                                "text", a.text, "logprobs"),
                      ev, &seq));
        ev = "response.content_part.done";
        ev_add(&l, 0, ev,
               rs_seq(json_pack("{s:s,s:i,s:i,s:O}", "item_id", item, "output_index", 0, "content_index", 0, "part",
                                json_array_get(json_object_get(done_item, "content"), 0)),
                      ev, &seq));
    }
    ev = "response.output_item.done";
    ev_add(&l, 0, ev, rs_seq(json_pack("{s:i,s:O}", "output_index", 0, "item", done_item), ev, &seq));
    json_t *final = rs_response(c, id, status, json_pack("[o]", done_item));
    if (a.truncated)
        json_object_set_new(final, "incomplete_details", json_pack("{s:s}", "reason", "max_output_tokens"));
    if (c->usage_none)
        json_object_del(final, "usage");
    else
        put_usage(c, final, "usage", rs_usage(c, a.out_tokens));
    ev = a.truncated ? "response.incomplete" : "response.completed";
    ev_add(&l, 0, ev, rs_seq(json_pack("{s:o}", "response", final), ev, &seq));
    send_stream(c, &l);
    answer_free(&a);
}

/* ---- dispatch --------------------------------------------------------- */

static void internal(const mu_request *rq, mu_reply *rp, const char *path)
{
    ctx c = {.rq = rq, .rp = rp, .proto = P_OPENAI, .retry_after = -1};
    snprintf(c.req_id, sizeof c.req_id, "req_mock_internal");
    if (!strcmp(path, "/__calls") && !strcmp(rq->method, "GET"))
        send_json(&c, 200, json_incref(g_calls));
    else if (!strcmp(path, "/__reset") && !strcmp(rq->method, "POST")) {
        json_array_clear(g_calls);
        send_json(&c, 200, json_pack("{s:b}", "ok", 1));
    } else if (!strcmp(path, "/__health"))
        send_json(&c, 200, json_pack("{s:s}", "status", "ok"));
    else
        send_error(&c, 404, "no such mock-upstream control endpoint");
}

static int authenticated(const ctx *c)
{
    if (g_cfg.no_auth)
        return 1;
    const char *auth = hdr(c, "authorization");
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
    new_id(c.req_id, sizeof c.req_id, c.proto == P_ANTHROPIC ? "req_" : "req_mock");
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
    if (c.proto == P_OPENAI && ends_with(path, "/chat/completions") && azure_ok)
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
        send_error(&c, 404, "mock-upstream: no such endpoint");
        return;
    }
    if (wrong_method) {
        send_error(&c, 405, "mock-upstream: method not allowed");
        return;
    }
    if (!authenticated(&c)) {
        send_error(&c, 401, c.proto == P_ANTHROPIC ? "x-api-key header is required"
                            : c.proto == P_GEMINI
                                ? "Method doesn't allow unregistered callers. Please use an API key."
                                : "You didn't provide an API key in the Authorization header.");
        return;
    }
    if (c.proto == P_ANTHROPIC && !hdr(&c, "anthropic-version")) {
        send_error(&c, 400, "anthropic-version: header is required");
        return;
    }
    if (route == R_MODELS) {
        models_list(&c);
        return;
    }

    json_error_t jerr;
    c.body = json_loadb(rq->body, rq->body_len, 0, &jerr);
    if (!json_is_object(c.body)) {
        char msg[300];
        snprintf(msg, sizeof msg, "request body is not a JSON object: %s", jerr.text);
        send_error(&c, 400, msg);
        json_decref(c.body);
        return;
    }
    json_t *model = route == R_GEN ? NULL : json_object_get(c.body, "model");
    json_t *gen_name = route == R_GEN ? json_string(gen_model) : NULL;
    json_decref(gen_name);
    if (route == R_GEN && !gen_name) {
        /* Every answer echoes the model, which JSON cannot carry unless it
         * is UTF-8: say so instead (a gateway should not have sent it). */
        send_error(&c, 400, "* GenerateContentRequest.model: the model name is not valid UTF-8");
        json_decref(c.body);
        return;
    } else if (route == R_GEN) {
        c.model = gen_model;
    } else if (!json_is_string(model) || !*json_string_value(model)) {
        send_error(&c, 400, c.proto == P_ANTHROPIC ? "model: Field required"
                                                   : "you must provide a model parameter");
        json_decref(c.body);
        return;
    } else {
        c.model = json_string_value(model);
    }

    /* Directives: the model name first, then the last user message (or the
     * embedding input), so a test can steer any request. */
    char err[256] = "";
    int bad = apply_directives(&c, c.model, err, sizeof err);
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
            gemini_user_text(json_object_get(c.body, "contents"), &t);
        } else if (route == R_RESP) {
            rs_user_text(json_object_get(c.body, "input"), &t);
        } else {
            content_text(json_object_get(last_message(json_object_get(c.body, "messages"),
                                                      "user"), "content"), &t);
        }
        mu_buf_add(&t, "", 0);
        bad = apply_directives(&c, t.p, err, sizeof err);
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
        send_error(&c, 400, err);
    } else if (refused) {
        char msg[200];
        snprintf(msg, sizeof msg, "Unsupported parameter: '%s' is not supported with this model.",
                 refused);
        send_error(&c, 400, msg);
    } else if (c.fail == F_RESET) {
        /* a wait, then RST with nothing sent */
        mu_reply_data(rp, c.base_delay + c.delay_ms, NULL, 0);
        rp->end = MU_END_RESET;
    } else if (c.redirect[0]) {
        /* A provider that moved: 302 (or the 3xx `status=` names) to the
         * given Location, which a gateway must not follow. */
        int code = c.status >= 300 && c.status < 400 ? c.status : 302;
        send_json(&c, code, json_pack("{s:s}", "location", c.redirect));
    } else if (c.status && c.status != 200) {
        char msg[160];
        snprintf(msg, sizeof msg, "mock-upstream: simulated %d (requested by a [[mock]] directive)",
                 c.status);
        send_error(&c, c.status, msg);
    } else if (route == R_CHAT) {
        openai_chat(&c);
    } else if (route == R_EMB) {
        openai_embeddings(&c);
    } else if (route == R_RESP) {
        openai_responses(&c);
    } else if (route == R_MSG) {
        anthropic_messages(&c);
    } else if (route == R_GEN) {
        gemini_generate(&c, gen_stream);
    } else {
        anthropic_count_tokens(&c);
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
