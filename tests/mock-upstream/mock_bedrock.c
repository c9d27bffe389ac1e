/* mock-upstream: AWS Bedrock runtime. POST /model/{modelId}/invoke,
 * /invoke-with-response-stream, /converse and /converse-stream, as the
 * real service answers them: an Anthropic message (InvokeModel) or a
 * Converse response as JSON, or application/vnd.amazon.eventstream frames
 * (prelude, headers, payload, CRC32s computed with zlib) carrying
 * base64 Anthropic events in {"bytes": ...} chunks or Converse events.
 *
 * Every request must carry a SigV4 signature that mock_sigv4.c verifies
 * for the test credentials and the fixed date given on the command line
 * (--aws KEYID:SECRET, --aws-region, --aws-date, --aws-token); a wrong one
 * gets the 403 and x-amzn-ErrorType AWS sends. Bodies are checked for the
 * shape Bedrock documents (InvokeModel: anthropic_version
 * "bedrock-2023-05-31", no model, no stream; Converse: messages of content
 * blocks, known top-level keys only), else a 400 ValidationException.
 * Converse requests with toolConfig get a toolUse of the first tool (or
 * tool=NAME's), and after a toolResult "The tool returned: ...".
 * Directives as elsewhere, plus for streams fail=corrupt (one frame's
 * payload byte flipped, its CRC left as it was), fail=exception (a
 * throttlingException frame half-way) and fail=early_exception (one as
 * the first frame). */
#define _GNU_SOURCE
#include "mock_api_internal.h"
#include "mock_sigv4.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

static mu_aws g_aws;
static int g_aws_on;

void mu_bedrock_config(const mu_aws *aws)
{
    g_aws = *aws;
    g_aws_on = aws->key_id != NULL;
}

/* ---- wire shapes ------------------------------------------------------- */

static void aws_error(ctx *c, int status, const char *type, const char *message)
{
    json_t *j = json_pack("{s:s}", "message", message);
    char *body = mu_dump(j);
    json_decref(j);
    char extra[256];
    snprintf(extra, sizeof extra,
             "x-amzn-RequestId: %s\r\nx-amzn-ErrorType: %s:http://internal.amazon.com/coral/com.amazon.bedrock/\r\n",
             c->req_id, type);
    mu_set_call(c, "status", json_integer(status));
    mu_set_call(c, "aws_error", json_string(type));
    mu_reply_head(c->rp, c->base_delay, status, "application/json", (long)strlen(body), extra);
    mu_reply_data(c->rp, 0, body, strlen(body));
    c->rp->end = MU_END_DONE;
    free(body);
}

static void put32(mu_buf *b, uint32_t v)
{
    unsigned char x[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    mu_buf_add(b, x, 4);
}

static void str_header(mu_buf *h, const char *name, const char *value)
{
    unsigned char nl = (unsigned char)strlen(name);
    mu_buf_add(h, &nl, 1);
    mu_buf_add(h, name, nl);
    unsigned char t = 7, vl[2] = {(unsigned char)(strlen(value) >> 8), (unsigned char)strlen(value)};
    mu_buf_add(h, &t, 1);
    mu_buf_add(h, vl, 2);
    mu_buf_add(h, value, strlen(value));
}

/* One event-stream message; takes the payload reference. */
static void frame(mu_buf *out, const char *msg_type, const char *type_hdr, const char *type, json_t *payload)
{
    mu_buf h = {0};
    str_header(&h, type_hdr, type);
    str_header(&h, ":content-type", "application/json");
    str_header(&h, ":message-type", msg_type);
    char *p = mu_dump(payload);
    json_decref(payload);
    size_t pl = strlen(p);
    mu_buf m = {0};
    put32(&m, (uint32_t)(16 + h.len + pl));
    put32(&m, (uint32_t)h.len);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.p, 8));
    mu_buf_add(&m, h.p, h.len);
    mu_buf_add(&m, p, pl);
    put32(&m, (uint32_t)crc32(0, (const Bytef *)m.p, (uInt)m.len));
    mu_buf_add(out, m.p, m.len);
    mu_buf_free(&m);
    mu_buf_free(&h);
    free(p);
}

static char *b64(const char *s)
{
    static const char t[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t n = strlen(s);
    char *o = malloc(n / 3 * 4 + 5), *q = o;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t w = (uint32_t)(unsigned char)s[i] << 16;
        if (i + 1 < n)
            w |= (uint32_t)(unsigned char)s[i + 1] << 8;
        if (i + 2 < n)
            w |= (unsigned char)s[i + 2];
        *q++ = t[w >> 18 & 63];
        *q++ = t[w >> 12 & 63];
        *q++ = i + 1 < n ? t[w >> 6 & 63] : '=';
        *q++ = i + 2 < n ? t[w & 63] : '=';
    }
    *q = '\0';
    return o;
}

/* An InvokeModel stream chunk: one Anthropic event, base64 in "bytes",
 * with the "p" padding field Bedrock adds. */
static void chunk(mu_buf *out, json_t *event)
{
    char *js = mu_dump(event);
    json_decref(event);
    char *enc = b64(js);
    free(js);
    frame(out, "event", ":event-type", "chunk", json_pack("{s:s,s:s}", "bytes", enc, "p", "abcdefghij"));
    free(enc);
}

/* Plays the frames: each its own write (so a corrupt or cut one arrives
 * after good ones), with the stream fail modes. */
static void send_frames(ctx *c, mu_buf *frames, size_t n, size_t *ends)
{
    char extra[160];
    snprintf(extra, sizeof extra, "x-amzn-RequestId: %s\r\nX-Amzn-Bedrock-Content-Type: application/json\r\n",
             c->req_id);
    mu_set_call(c, "status", json_integer(200));
    mu_reply_head(c->rp, c->base_delay + c->delay_ms, 200, "application/vnd.amazon.eventstream", -1, extra);
    size_t half = n / 2;
    for (size_t i = 0; i < n; i++) {
        size_t s = i ? ends[i - 1] : 0, e = ends[i];
        unsigned delay = i ? c->interval_ms : c->first_byte_ms;
        if (c->fail == F_TRUNCATE && i == half) {
            mu_reply_data(c->rp, delay, frames->p + s, (e - s) / 2); /* inside a frame */
            c->rp->end = MU_END_CUT;
            return;
        }
        if (c->fail == F_CORRUPT && i == half)
            frames->p[e - 6] ^= 0x20; /* a payload byte: the message CRC no longer matches */
        if ((c->fail == F_EXCEPTION && i == half) || (c->fail == F_EARLY_EXCEPTION && i == 0)) {
            mu_buf x = {0};
            frame(&x, "exception", ":exception-type", "throttlingException",
                  json_pack("{s:s}", "message", "Too many requests, please wait before trying again."));
            mu_reply_data(c->rp, delay, x.p, x.len);
            mu_buf_free(&x);
            break;
        }
        mu_reply_data(c->rp, delay, frames->p + s, e - s);
    }
    mu_reply_finish(c->rp);
    c->rp->end = MU_END_DONE;
}

/* ---- requests ------------------------------------------------------------ */

/* The last user message's text, Anthropic or Converse blocks. */
static void user_text(json_t *messages, mu_buf *t)
{
    json_t *m = mu_last_message(messages, "user");
    json_t *content = json_object_get(m, "content");
    if (json_is_string(content)) {
        mu_buf_str(t, json_string_value(content));
        return;
    }
    size_t i;
    json_t *b;
    json_array_foreach(content, i, b) {
        const char *s = json_string_value(json_object_get(b, "text"));
        if (s) {
            mu_buf_str(t, s);
            mu_buf_add(t, " ", 1);
        }
    }
}

static int converse_shape(json_t *body, char *err, size_t n)
{
    static const char *const known[] = {"messages", "system", "inferenceConfig", "toolConfig",
                                        "additionalModelRequestFields", "guardrailConfig",
                                        "promptVariables", "additionalModelResponseFieldPaths",
                                        "requestMetadata", "performanceConfig"};
    const char *k;
    json_t *v;
    json_object_foreach(body, k, v) {
        size_t i;
        for (i = 0; i < sizeof known / sizeof known[0] && strcmp(k, known[i]); i++)
            ;
        if (i == sizeof known / sizeof known[0]) {
            snprintf(n ? err : err, n, "Malformed input request: extraneous key [%s] is not permitted", k);
            return -1;
        }
    }
    json_t *msgs = json_object_get(body, "messages");
    if (!json_array_size(msgs)) {
        snprintf(err, n, "A conversation must start with a user message.");
        return -1;
    }
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) {
        json_t *content = json_object_get(m, "content");
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role || (strcmp(role, "user") && strcmp(role, "assistant")) || !json_is_array(content)) {
            snprintf(err, n, "messages.%zu: role must be user or assistant and content a list of blocks", i);
            return -1;
        }
    }
    json_t *ic = json_object_get(body, "inferenceConfig");
    if (ic && (!json_is_object(ic) || json_object_get(ic, "max_tokens"))) {
        snprintf(err, n, "inferenceConfig: unknown member (maxTokens, temperature, topP, stopSequences)");
        return -1;
    }
    return 0;
}

static void answer_invoke(ctx *c, int stream, long long max_tokens)
{
    answer a = {0};
    mu_text_answer(c, &a, NULL, max_tokens, stream);
    const char *stop = a.truncated ? "max_tokens" : "end_turn";
    char id[48];
    mu_new_id(id, sizeof id, "msg_bdrk_");
    long long in = mu_input_tokens(c);
    mu_set_call(c, "usage", json_pack("{s:I,s:I}", "input_tokens", in, "output_tokens", a.out_tokens));
    if (!stream) {
        json_t *resp = json_pack("{s:s,s:s,s:s,s:s,s:[{s:s,s:s}],s:s,s:n,s:{s:I,s:I}}", "id", id, "type",
                                 "message", "role", "assistant", "model", c->model, "content", "type", "text",
                                 "text", a.text, "stop_reason", stop, "stop_sequence", "usage", "input_tokens",
                                 in, "output_tokens", a.out_tokens);
        mu_send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }
    mu_buf f = {0};
    size_t ends[256], n = 0;
    chunk(&f, json_pack("{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:{s:I,s:i}}}", "type", "message_start", "message",
                        "id", id, "type", "message", "role", "assistant", "model", c->model, "content",
                        "stop_reason", "stop_sequence", "usage", "input_tokens", in, "output_tokens", 1));
    ends[n++] = f.len;
    chunk(&f, json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_start", "index", 0, "content_block",
                        "type", "text", "text", ""));
    ends[n++] = f.len;
    for (int i = 0; i < a.npieces && n < 250; i++) {
        chunk(&f, json_pack("{s:s,s:i,s:{s:s,s:s}}", "type", "content_block_delta", "index", 0, "delta", "type",
                            "text_delta", "text", a.pieces[i]));
        ends[n++] = f.len;
    }
    chunk(&f, json_pack("{s:s,s:i}", "type", "content_block_stop", "index", 0));
    ends[n++] = f.len;
    chunk(&f, json_pack("{s:s,s:{s:s,s:n},s:{s:I}}", "type", "message_delta", "delta", "stop_reason", stop,
                        "stop_sequence", "usage", "output_tokens", a.out_tokens));
    ends[n++] = f.len;
    chunk(&f, json_pack("{s:s,s:{s:I,s:I,s:i,s:i}}", "type", "message_stop", "amazon-bedrock-invocationMetrics",
                        "inputTokenCount", in, "outputTokenCount", a.out_tokens, "invocationLatency", 12,
                        "firstByteLatency", 5));
    ends[n++] = f.len;
    send_frames(c, &f, n, ends);
    mu_buf_free(&f);
    mu_answer_free(&a);
}

/* Converse tool use: when toolConfig declares tools and the last user
 * message carries no toolResult, call the first tool (or tool=NAME's);
 * after a toolResult, say what it returned. */
static json_t *converse_tool(ctx *c, char **result)
{
    json_t *last = mu_last_message(json_object_get(c->body, "messages"), "user");
    size_t i;
    json_t *b;
    *result = NULL;
    json_array_foreach(json_object_get(last, "content"), i, b) {
        json_t *tr = json_object_get(b, "toolResult");
        if (json_is_object(tr)) {
            mu_buf q = {0};
            size_t k;
            json_t *rb;
            json_array_foreach(json_object_get(tr, "content"), k, rb)
                if (json_string_value(json_object_get(rb, "text")))
                    mu_buf_str(&q, json_string_value(json_object_get(rb, "text")));
            mu_buf_add(&q, "", 1);
            *result = q.p;
            return NULL;
        }
    }
    if (c->no_tool)
        return NULL;
    json_t *t;
    json_array_foreach(json_object_get(json_object_get(c->body, "toolConfig"), "tools"), i, t) {
        json_t *spec = json_object_get(t, "toolSpec");
        const char *n = json_string_value(json_object_get(spec, "name"));
        if (n && (!c->tool[0] || !strcmp(n, c->tool)))
            return spec;
    }
    return NULL;
}

static void answer_converse(ctx *c, int stream)
{
    json_t *ic = json_object_get(c->body, "inferenceConfig");
    json_t *mt = json_object_get(ic, "maxTokens");
    answer a = {0};
    char *result;
    json_t *tool = converse_tool(c, &result);
    if (tool)
        mu_tool_answer(c, &a, json_string_value(json_object_get(tool, "name")),
                       json_object_get(json_object_get(tool, "inputSchema"), "json"), stream);
    else
        mu_text_answer(c, &a, result, json_is_integer(mt) ? json_integer_value(mt) : 0, stream);
    free(result);
    const char *stop = a.is_tool ? "tool_use" : a.truncated ? "max_tokens" : "end_turn";
    long long in = mu_input_tokens(c);
    mu_set_call(c, "usage", json_pack("{s:I,s:I}", "inputTokens", in, "outputTokens", a.out_tokens));
    if (!stream) {
        json_t *block = a.is_tool ? json_pack("{s:{s:s,s:s,s:O}}", "toolUse", "toolUseId", a.tool_id, "name",
                                              a.tool_name, "input", a.tool_input)
                                  : json_pack("{s:s}", "text", a.text);
        json_t *resp = json_pack("{s:{s:{s:s,s:[o]}},s:s,s:{s:I,s:I,s:I},s:{s:i}}", "output", "message",
                                 "role", "assistant", "content", block, "stopReason", stop, "usage",
                                 "inputTokens", in, "outputTokens", a.out_tokens, "totalTokens",
                                 in + a.out_tokens, "metrics", "latencyMs", 12);
        mu_send_json_wait(c, 200, resp, (unsigned)a.nchunks * c->interval_ms);
        mu_answer_free(&a);
        return;
    }
    mu_buf f = {0};
    size_t ends[256], n = 0;
    frame(&f, "event", ":event-type", "messageStart", json_pack("{s:s,s:s}", "role", "assistant", "p", "abcd"));
    ends[n++] = f.len;
    if (a.is_tool) {
        frame(&f, "event", ":event-type", "contentBlockStart",
              json_pack("{s:i,s:{s:{s:s,s:s}},s:s}", "contentBlockIndex", 0, "start", "toolUse", "toolUseId",
                        a.tool_id, "name", a.tool_name, "p", "ab"));
        ends[n++] = f.len;
    }
    for (int i = 0; i < a.npieces && n < 250; i++) {
        json_t *delta = a.is_tool ? json_pack("{s:{s:s}}", "toolUse", "input", a.pieces[i])
                                  : json_pack("{s:s}", "text", a.pieces[i]);
        frame(&f, "event", ":event-type", "contentBlockDelta",
              json_pack("{s:i,s:o,s:s}", "contentBlockIndex", 0, "delta", delta, "p", "ab"));
        ends[n++] = f.len;
    }
    frame(&f, "event", ":event-type", "contentBlockStop", json_pack("{s:i,s:s}", "contentBlockIndex", 0, "p", "a"));
    ends[n++] = f.len;
    frame(&f, "event", ":event-type", "messageStop", json_pack("{s:s,s:s}", "stopReason", stop, "p", "abc"));
    ends[n++] = f.len;
    frame(&f, "event", ":event-type", "metadata",
          json_pack("{s:{s:I,s:I,s:I},s:{s:i},s:s}", "usage", "inputTokens", in, "outputTokens", a.out_tokens,
                    "totalTokens", in + a.out_tokens, "metrics", "latencyMs", 12, "p", "abcdef"));
    ends[n++] = f.len;
    send_frames(c, &f, n, ends);
    mu_buf_free(&f);
    mu_answer_free(&a);
}

/* The container credentials endpoint: the test credentials, as ECS and
 * EKS hand them out. */
static void container_credentials(ctx *c)
{
    const char *auth = json_string_value(json_object_get(c->rq->headers, "authorization"));
    if (!g_aws_on || (g_aws.container_auth && (!auth || strcmp(auth, g_aws.container_auth)))) {
        aws_error(c, 403, "AccessDeniedException", "container credentials: wrong or missing Authorization");
        return;
    }
    json_t *j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "AccessKeyId", g_aws.key_id, "SecretAccessKey", g_aws.secret,
                          "Token", g_aws.token ? g_aws.token : "", "Expiration",
                          g_aws.expiration ? g_aws.expiration : "2024-10-22T11:15:00Z", "RoleArn",
                          "arn:aws:iam::123456789012:role/mock");
    mu_send_json(c, 200, j);
}

void mu_bedrock_handle(ctx *c, const char *path)
{
    if (!strcmp(path, "/aws/credentials")) {
        container_credentials(c);
        return;
    }
    /* /model/{id}/{operation} */
    const char *id = path + 7, *slash = strrchr(id, '/');
    const char *op = slash ? slash + 1 : "";
    int invoke = !strcmp(op, "invoke"), invoke_s = !strcmp(op, "invoke-with-response-stream"),
        conv = !strcmp(op, "converse"), conv_s = !strcmp(op, "converse-stream");
    if (!slash || slash == id || !(invoke || invoke_s || conv || conv_s)) {
        aws_error(c, 404, "UnknownOperationException", "Unknown operation");
        return;
    }
    if (strcmp(c->rq->method, "POST") != 0) {
        aws_error(c, 405, "UnknownOperationException", "Unknown operation");
        return;
    }
    if (g_aws_on) {
        char why[300];
        mu_sig_result r = mu_sigv4_verify(&g_aws, c->rq->method, c->rq->target, c->rq->headers, c->rq->body,
                                          c->rq->body_len, why, sizeof why);
        mu_set_call(c, "sigv4", json_string(r == MU_SIG_OK ? "ok" : why));
        if (r != MU_SIG_OK) {
            aws_error(c, 403,
                      r == MU_SIG_KEY || r == MU_SIG_TOKEN ? "UnrecognizedClientException"
                      : r == MU_SIG_MISSING                ? "MissingAuthenticationTokenException"
                                                           : "InvalidSignatureException",
                      r == MU_SIG_KEY ? "The security token included in the request is invalid." : why);
            return;
        }
    }
    size_t idn = (size_t)(slash - id);
    if (memchr(id, ':', idn)) {
        aws_error(c, 400, "ValidationException", "mock-upstream: the model id's ':' must be sent as %3A");
        return;
    }
    static char model[512];
    char raw[512];
    snprintf(raw, sizeof raw, "%.*s", (int)(idn < sizeof raw ? idn : sizeof raw - 1), id);
    size_t k = 0;
    for (size_t i = 0; raw[i] && k + 1 < sizeof model; i++) {
        unsigned hv;
        if (raw[i] == '%' && sscanf(raw + i + 1, "%2x", &hv) == 1 && raw[i + 1] && raw[i + 2]) {
            model[k++] = (char)hv;
            i += 2;
        } else {
            model[k++] = raw[i];
        }
    }
    model[k] = '\0';
    c->model = model;
    const char *ct = json_string_value(json_object_get(c->rq->headers, "content-type"));
    if (!ct || strncmp(ct, "application/json", 16) != 0) {
        aws_error(c, 400, "ValidationException", "Content-Type must be application/json");
        return;
    }
    c->body = json_loadb(c->rq->body, c->rq->body_len, 0, NULL);
    if (!json_is_object(c->body)) {
        aws_error(c, 400, "ValidationException", "Malformed input request, please reformat your input and try again.");
        json_decref(c->body);
        return;
    }
    char err[256] = "";
    int stream = invoke_s || conv_s;
    mu_set_call(c, "stream", json_boolean(stream));
    json_t *b = c->body;
    if (invoke || invoke_s) {
        const char *v = json_string_value(json_object_get(b, "anthropic_version"));
        if (!v || strcmp(v, "bedrock-2023-05-31"))
            snprintf(err, sizeof err, "Malformed input request: #: required key [anthropic_version] not found");
        else if (json_object_get(b, "model") || json_object_get(b, "stream"))
            snprintf(err, sizeof err, "Malformed input request: #: extraneous key [%s] is not permitted",
                     json_object_get(b, "model") ? "model" : "stream");
        else if (!json_is_integer(json_object_get(b, "max_tokens")) || !json_array_size(json_object_get(b, "messages")))
            snprintf(err, sizeof err, "Malformed input request: #: required key [max_tokens] or [messages] not found");
    } else {
        converse_shape(b, err, sizeof err);
    }
    if (!err[0]) {
        mu_buf t = {0};
        user_text(json_object_get(b, "messages"), &t);
        mu_buf_add(&t, "", 1);
        if (mu_apply_directives(c, c->model, err, sizeof err) == 0)
            mu_apply_directives(c, t.p, err, sizeof err);
        mu_buf_free(&t);
    }
    if (err[0]) {
        aws_error(c, 400, "ValidationException", err);
    } else if (c->status && c->status != 200) {
        aws_error(c, c->status, c->status == 429 ? "ThrottlingException" : "InternalServerException",
                  "mock-upstream: simulated error (requested by a [[mock]] directive)");
    } else if (invoke || invoke_s) {
        answer_invoke(c, stream, json_integer_value(json_object_get(b, "max_tokens")));
    } else {
        answer_converse(c, stream);
    }
    json_decref(c->body);
    c->body = NULL;
}
