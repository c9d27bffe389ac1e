/*
 * AWS Bedrock runtime. The adapter speaks Anthropic Messages to the rest
 * of sluice (see bedrock.h); on the wire a request goes to
 *   {base}/model/{model id, percent-encoded}/invoke            (InvokeModel)
 *   {base}/model/{id}/invoke-with-response-stream
 *   {base}/model/{id}/converse, /converse-stream                (Converse)
 * with, for InvokeModel, the Anthropic body minus model and stream plus
 * anthropic_version "bedrock-2023-05-31", and for Converse the body
 * translate/converse.c builds. Every request is signed with SigV4
 * (aws/sigv4.h) over content-type, host, x-amz-date and the session token
 * when there is one; the Host header is sent explicitly so what curl sends
 * is what was signed. Error bodies ({"message": ...}) become Anthropic
 * errors so each client gets its own error shape.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "aws/creds.h"
#include "aws/sigv4.h"
#include "json/json_out.h"
#include "providers/bedrock.h"
#include "providers/provider.h"
#include "translate/converse.h"

static int serves(sl_op op)
{
    /* count_tokens is answered with sluice's estimate (forward.c). */
    return op == SL_OP_CHAT || op == SL_OP_MESSAGES || op == SL_OP_GENERATE || op == SL_OP_RESPONSES ||
           op == SL_OP_COUNT_TOKENS;
}

static sl_proto proto(sl_op op)
{
    (void)op;
    return SL_PROTO_ANTHROPIC;
}

int sl_bedrock_converse(const sl_provider *p, const char *model)
{
    if (p->aws && p->aws->api != SL_AWS_API_AUTO)
        return p->aws->api == SL_AWS_API_CONVERSE;
    if (strncmp(model, "anthropic.", 10) == 0)
        return 0;
    /* Cross-region inference profiles: us.anthropic..., eu.anthropic...,
     * apac.anthropic..., global.anthropic... */
    const char *dot = strchr(model, '.');
    return !(dot && strncmp(dot + 1, "anthropic.", 10) == 0 && !memchr(model, '/', (size_t)(dot - model)));
}

static const char *url(const sl_call *c)
{
    size_t n = strlen(c->model);
    char *enc = sl_arena_alloc(c->arena, n * 3 + 1);
    if (!enc)
        return NULL;
    sl_sigv4_uri_encode(c->model, n, 0, enc);
    int conv = sl_bedrock_converse(c->prov, c->model);
    const char *op = conv ? (c->stream ? "converse-stream" : "converse")
                          : (c->stream ? "invoke-with-response-stream" : "invoke");
    return sl_arena_printf(c->arena, "%s/model/%s/%s", c->prov->base_url, enc, op);
}

static int body(const sl_call *c, const char **b, size_t *len, char *err, size_t errlen)
{
    json_t *j = json_loadb(*b, *len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        snprintf(err, errlen, "request body is not a JSON object");
        return -1;
    }
    char *out;
    if (sl_bedrock_converse(c->prov, c->model)) {
        out = sl_converse_request(j, err, errlen);
    } else {
        /* The model is in the path and the stream in the operation. */
        json_object_del(j, "model");
        json_object_del(j, "stream");
        json_object_set_new(j, "anthropic_version", json_string("bedrock-2023-05-31"));
        out = sl_json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (!out)
            snprintf(err, errlen, "out of memory");
    }
    json_decref(j);
    if (!out)
        return -1;
    *len = strlen(out);
    *b = sl_arena_strndup(c->arena, out, *len);
    free(out);
    if (!*b) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

static void headers(const sl_call *c, sl_header_add add, void *ctx)
{
    sl_aws_creds copy, *cr = sl_aws_creds_copy(c->prov->name, c->arena, &copy) == 0 ? &copy : NULL;
    const char *full = cr ? url(c) : NULL;
    if (!full) {
        add(ctx, NULL); /* no credentials (an optional provider) or no memory: the try fails */
        return;
    }
    /* Host and path of the URL this try goes to (base path + operation). */
    const char *h = strstr(full, "://");
    h = h ? h + 3 : full;
    size_t hn = strcspn(h, "/");
    const char *fp = h + hn;
    char *host = sl_arena_strndup(c->arena, h, hn);
    if (!host) {
        add(ctx, NULL);
        return;
    }
    sl_sigv4_header sh[] = {{"content-type", "application/json"}, {"host", host}};
    sl_sigv4_input in = {.method = "POST", .path = fp, .headers = sh, .nheaders = 2, .body = c->body,
                         .body_len = c->body_len, .region = c->prov->aws->region, .service = "bedrock",
                         .key_id = cr->key_id, .secret = cr->secret, .token = cr->token, .now = time(NULL)};
    sl_sigv4_output out;
    int signed_ok = sl_sigv4_sign(&in, &out) == 0;
    /* The arena is reused by later requests: the secret's copy goes now. */
    explicit_bzero(cr->secret, strlen(cr->secret));
    if (!signed_ok) {
        add(ctx, NULL);
        return;
    }
    add(ctx, sl_arena_printf(c->arena, "Host: %s", host));
    add(ctx, sl_arena_printf(c->arena, "X-Amz-Date: %s", out.amz_date));
    if (cr->token)
        add(ctx, sl_arena_printf(c->arena, "X-Amz-Security-Token: %s", cr->token));
    add(ctx, sl_arena_printf(c->arena, "Authorization: %s", out.authorization));
    explicit_bzero(&out, sizeof out);
}

static const char *error_type(int status)
{
    switch (status) {
    case 400: return "invalid_request_error";
    case 401: return "authentication_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 408: return "timeout_error";
    case 429: return "rate_limit_error";
    case 503: return "overloaded_error";
    default: return "api_error";
    }
}

static void replace(sl_buf *b, char *js)
{
    if (!js)
        return;
    sl_buf_clear(b);
    if (sl_buf_append(b, js, strlen(js)) != 0)
        sl_buf_clear(b);
    free(js);
}

static void response(const sl_call *c, int status, sl_buf *b)
{
    if (status >= 200 && status < 300) {
        if (!sl_bedrock_converse(c->prov, c->model))
            return; /* InvokeModel answers an Anthropic message */
        char err[128];
        char *js = sl_converse_response(b->data ? b->data : "", b->len, c->model, err, sizeof err);
        if (js)
            replace(b, js);
        return; /* unreadable: the relay reports it */
    }
    json_t *j = json_loadb(b->data ? b->data : "", b->len, 0, NULL);
    const char *m = json_string_value(json_object_get(j, "message"));
    if (!m)
        m = json_string_value(json_object_get(j, "Message"));
    char msg[600];
    snprintf(msg, sizeof msg, "Bedrock answered HTTP %d: %.500s", status, m ? m : "(no message)");
    json_decref(j);
    json_t *e = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error", "type", error_type(status), "message", msg);
    replace(b, e ? sl_json_dumps(e, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL);
    json_decref(e);
}

static void *stream_new(const sl_call *c)
{
    sl_bedrock_stream *s = sl_bedrock_stream_new(sl_bedrock_converse(c->prov, c->model), c->model);
    if (s && sl_arena_on_reset(c->arena, sl_bedrock_stream_free, s) != 0) {
        sl_bedrock_stream_free(s);
        return NULL;
    }
    return s;
}

static int stream_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    return sl_bedrock_stream_feed(st, p, n, out);
}

static int stream_finish(void *st, sl_buf *out)
{
    return sl_bedrock_stream_finish(st, out);
}

static const char *stream_error(void *st)
{
    return sl_bedrock_stream_error(st);
}

const sl_provider_ops sl_provider_bedrock = {
    .kind = "bedrock",
    .serves = serves,
    .proto = proto,
    .url = url,
    .auth_format = NULL,
    .headers = headers,
    .transport = &sl_transport_curl,
    .body = body,
    .response = response,
    .stream_new = stream_new,
    .stream_feed = stream_feed,
    .stream_finish = stream_finish,
    .stream_error = stream_error,
};
