/* mock-upstream: putting an answer into the reply plan (whose buffers and
 * HTTP framing are mock_reply.c's). Everything every provider shape shares
 * lives here: ids, usage recording on the /__calls entry, the extra
 * headers (request ids, account headers, retry-after, Location), complete JSON answers and provider-shaped error bodies, SSE
 * event lists and their framing with the fail modes (stall, truncate,
 * abort, huge_line), and the `[[mock k=v ...]]` directive parser that
 * fills a ctx. Split from mock_api.c so each provider file only builds
 * payloads and hands them to mu_send_json / mu_send_stream. */
#define _GNU_SOURCE
#include "mock_api_internal.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned long long g_seq; /* ids: deterministic for a given request order */

char *mu_dump(json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!s)
        abort();
    return s;
}

int mu_count_words(const char *s)
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

long long mu_input_tokens(const ctx *c)
{
    /* The rough 4-bytes-a-token rule: stable, and grows with the prompt. */
    long long n = (long long)((c->rq->body_len + 3) / 4);
    return n ? n : 1;
}

void mu_new_id(char *out, size_t n, const char *prefix)
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

void mu_set_call(const ctx *c, const char *key, json_t *v)
{
    if (c->rp->call)
        json_object_set_new(c->rp->call, key, v);
    else
        json_decref(v);
}

/* Puts the usage the answer reports into `obj` under `key` and records a
 * copy on the call, so tests can compare a gateway's accounting with what
 * the provider said; with usage=none the answer carries none. */
void mu_put_usage(const ctx *c, json_t *obj, const char *key, json_t *usage)
{
    if (c->usage_none) {
        json_decref(usage);
        return;
    }
    mu_set_call(c, "usage", json_deep_copy(usage));
    json_object_set_new(obj, key, usage);
}

/* ---- sending ---------------------------------------------------------- */

/* A complete JSON answer, with the fail modes that make sense for one:
 * stall after the headers, or cut the body in half. `wait_ms` is extra
 * time before the headers (the non-stream stand-in for a slow stream). */
void mu_send_json_wait(ctx *c, int status, json_t *obj, unsigned wait_ms)
{
    char *body = mu_dump(obj);
    json_decref(obj);
    size_t len = strlen(body);
    char *extra = extra_headers(c, 0);
    mu_set_call(c, "status", json_integer(status));
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

void mu_send_json(ctx *c, int status, json_t *obj) { mu_send_json_wait(c, status, obj, 0); }

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
void mu_send_error(ctx *c, int status, const char *message)
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
    mu_send_json(c, status, j);
}

void mu_ev_add(evlist *l, unsigned delay_ms, const char *event, json_t *data)
{
    mu_buf b = {0};
    if (event)
        mu_buf_printf(&b, "event: %s\n", event);
    if (data) {
        char *s = mu_dump(data);
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

void mu_send_stream(ctx *c, evlist *l)
{
    char *extra = extra_headers(c, 1);
    mu_set_call(c, "status", json_integer(200));
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
        else if (!strcmp(val, "corrupt")) c->fail = F_CORRUPT;     /* Bedrock event streams */
        else if (!strcmp(val, "exception")) c->fail = F_EXCEPTION; /* Bedrock event streams */
        else if (!strcmp(val, "early_exception")) c->fail = F_EARLY_EXCEPTION;
        else {
            snprintf(err, errlen,
                     "mock directive fail=%s: want reset, truncate, abort, stall, corrupt, exception, "
                     "early_exception or none",
                     val);
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
int mu_apply_directives(ctx *c, const char *s, char *err, size_t errlen)
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
void mu_content_text(json_t *content, mu_buf *out)
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

json_t *mu_last_message(json_t *messages, const char *role)
{
    for (size_t i = json_array_size(messages); i-- > 0;) {
        json_t *m = json_array_get(messages, i);
        const char *r = json_string_value(json_object_get(m, "role"));
        if (!role || (r && !strcmp(r, role)))
            return m;
    }
    return NULL;
}
