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
        json_array_append_new(choices, json_pack("{s:s,s:O,s:n,s:O}", "text",
                                                 json_is_string(content) ? json_string_value(content) : "",
                                                 "index", json_object_get(ch, "index") ? json_object_get(ch, "index") : json_integer(0),
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

static void convert_line(const char *p, size_t n, sl_buf *out)
{
    const char *d = p + 5;
    size_t dn = n - 5;
    while (dn && *d == ' ') {
        d++;
        dn--;
    }
    json_t *c = json_loadb(d, dn, 0, NULL);
    if (!json_is_object(c)) {
        /* [DONE] and anything unparsable pass through unchanged. */
        json_decref(c);
        sl_buf_append(out, p, n);
        sl_buf_append(out, "\n\n", 2);
        return;
    }
    if (json_object_get(c, "error")) {
        sl_buf_append(out, p, n);
        sl_buf_append(out, "\n\n", 2);
        json_decref(c);
        return;
    }
    json_t *choices = json_array();
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(c, "choices"), i, ch) {
        json_t *content = json_object_get(json_object_get(ch, "delta"), "content");
        json_t *fin = json_object_get(ch, "finish_reason");
        json_array_append_new(choices, json_pack("{s:s,s:O,s:n,s:O}", "text",
                                                 json_is_string(content) ? json_string_value(content) : "",
                                                 "index", json_object_get(ch, "index") ? json_object_get(ch, "index") : json_integer(0),
                                                 "logprobs", "finish_reason", fin ? fin : json_null()));
    }
    json_t *o = json_pack("{s:O?,s:s,s:O?,s:O?,s:o}", "id", json_object_get(c, "id"), "object",
                          "text_completion", "created", json_object_get(c, "created"), "model",
                          json_object_get(c, "model"), "choices", choices);
    if (json_object_get(c, "usage"))
        json_object_set(o, "usage", json_object_get(c, "usage"));
    char *s = sl_json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    if (s) {
        sl_buf_append(out, "data: ", 6);
        sl_buf_append(out, s, strlen(s));
        sl_buf_append(out, "\n\n", 2);
        free(s);
    }
    json_decref(o);
    json_decref(c);
}

void sl_legacy_stream_feed(sl_legacy_stream *s, const char *p, size_t n, sl_buf *out)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        sl_buf_append(&s->line, p, take);
        if (!nl)
            return;
        size_t ln = s->line.len;
        if (ln && s->line.data[ln - 1] == '\r')
            ln--;
        if (ln >= 5 && memcmp(s->line.data, "data:", 5) == 0)
            convert_line(s->line.data, ln, out);
        sl_buf_clear(&s->line);
        p = nl + 1;
        n -= take + 1;
    }
}

void sl_legacy_stream_free(sl_legacy_stream *s)
{
    sl_buf_free(&s->line);
}
