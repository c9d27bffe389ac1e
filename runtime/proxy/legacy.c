/*
 * Completions <-> chat conversion. Only the shapes change: the text is the
 * assistant message's content (or each delta's content), finish reasons
 * and usage carry over as they are.
 */
#include "json/json_out.h"
#include "proxy/legacy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *sl_legacy_to_chat(json_t *req, char *err, size_t errlen)
{
    json_t *prompt = json_object_get(req, "prompt");
    json_t *text = NULL;
    if (json_is_string(prompt)) {
        text = json_incref(prompt);
    } else if (json_is_array(prompt) && json_array_size(prompt) == 1 &&
               json_is_string(json_array_get(prompt, 0))) {
        text = json_incref(json_array_get(prompt, 0));
    } else {
        snprintf(err, errlen, "'prompt' must be a string (token arrays and batches are not supported)");
        return NULL;
    }
    json_t *chat = json_deep_copy(req);
    if (!chat) {
        json_decref(text);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    json_object_del(chat, "prompt");
    json_object_del(chat, "echo");
    json_object_del(chat, "best_of");
    json_object_del(chat, "suffix");
    json_object_del(chat, "logprobs");
    json_object_set_new(chat, "messages", json_pack("[{s:s,s:o}]", "role", "user", "content", text));
    return chat;
}

char *sl_legacy_from_chat(const char *body, size_t len)
{
    json_t *c = json_loadb(body, len, 0, NULL);
    if (!json_is_object(c)) {
        json_decref(c);
        return NULL;
    }
    json_t *choices = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(c, "choices"), i, ch) {
        json_t *content = json_object_get(json_object_get(ch, "message"), "content");
        json_array_append_new(choices, json_pack("{s:s,s:o,s:n,s:O}", "text",
                                                 json_is_string(content) ? json_string_value(content) : "",
                                                 "index", json_object_get(ch, "index") ? json_incref(json_object_get(ch, "index")) : json_integer(0),
                                                 "logprobs", "finish_reason",
                                                 json_object_get(ch, "finish_reason") ? json_object_get(ch, "finish_reason") : json_null()));
    }
    json_t *out = json_pack("{s:O?,s:s,s:O?,s:O?,s:o}", "id", json_object_get(c, "id"), "object",
                            "text_completion", "created", json_object_get(c, "created"), "model",
                            json_object_get(c, "model"), "choices", choices);
    json_t *usage = json_object_get(c, "usage");
    if (usage)
        json_object_set(out, "usage", usage);
    char *s = sl_json_dumps(out, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(out);
    json_decref(c);
    return s;
}

/* One event with data d: each line of a multi-line payload gets its own
 * "data: " so the client rebuilds the same payload. */
static int pass_event(const char *d, size_t dn, sl_buf *out)
{
    for (;;) {
        const char *nl = memchr(d, '\n', dn);
        size_t ln = nl ? (size_t)(nl - d) : dn;
        if (sl_buf_append(out, "data: ", 6) != 0 || sl_buf_append(out, d, ln) != 0 ||
            sl_buf_append(out, "\n", 1) != 0)
            return -1;
        if (!nl)
            break;
        d += ln + 1;
        dn -= ln + 1;
    }
    return sl_buf_append(out, "\n", 1);
}

typedef struct convert_ctx {
    sl_buf *out;
    int strip_usage;
} convert_ctx;

/* One chat.completion.chunk event -> one text_completion event. */
static int convert_event(void *ctx, const sl_sse_event *ev)
{
    const convert_ctx *cc = ctx;
    sl_buf *out = cc->out;
    const char *d = ev->data;
    size_t dn = ev->data_len;
    json_t *c = json_loadb(d, dn, 0, NULL);
    if (!json_is_object(c) || json_object_get(c, "error")) {
        /* [DONE], error events and anything unparsable pass unchanged. */
        json_decref(c);
        return pass_event(d, dn, out);
    }
    /* The chat stream reaches this filter with the usage chunk sluice
     * asked for (the same-protocol translator before it passes every
     * event on): a client that did not ask must not get it, here as a
     * text_completion without choices (it did, before). */
    if (cc->strip_usage && json_object_get(c, "usage") &&
        json_array_size(json_object_get(c, "choices")) == 0) {
        json_decref(c);
        return 0;
    }
    json_t *choices = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(c, "choices"), i, ch) {
        json_t *content = json_object_get(json_object_get(ch, "delta"), "content");
        json_t *fin = json_object_get(ch, "finish_reason");
        json_array_append_new(choices, json_pack("{s:s,s:o,s:n,s:O}", "text",
                                                 json_is_string(content) ? json_string_value(content) : "",
                                                 "index", json_object_get(ch, "index") ? json_incref(json_object_get(ch, "index")) : json_integer(0),
                                                 "logprobs", "finish_reason", fin ? fin : json_null()));
    }
    json_t *o = json_pack("{s:O?,s:s,s:O?,s:O?,s:o}", "id", json_object_get(c, "id"), "object",
                          "text_completion", "created", json_object_get(c, "created"), "model",
                          json_object_get(c, "model"), "choices", choices);
    if (json_object_get(c, "usage"))
        json_object_set(o, "usage", json_object_get(c, "usage"));
    char *s = sl_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = s ? pass_event(s, strlen(s), out) : -1;
    free(s);
    json_decref(o);
    json_decref(c);
    return rc;
}

int sl_legacy_stream_feed(sl_legacy_stream *s, const char *p, size_t n, sl_buf *out)
{
    if (s->failed)
        return -1;
    if (!s->ready) {
        sl_sse_init(&s->sse, SL_SSE_MAX_LINE);
        s->ready = 1;
    }
    convert_ctx cc = {out, s->strip_usage};
    if (sl_sse_feed(&s->sse, p, n, convert_event, &cc) != 0) {
        s->failed = 1;
        sl_sse_free(&s->sse); /* the partial event may be a megabyte */
        s->ready = 0;
        return -1;
    }
    return 0;
}

void sl_legacy_stream_free(sl_legacy_stream *s)
{
    if (s->ready)
        sl_sse_free(&s->sse);
    s->ready = 0;
}
