/*
 * Request fitting by catalog capability (see fit.h). Every rule changes
 * only what the target is known to reject or to cap; a model the catalog
 * lacks (no SL_CAP_KNOWN) gets its body as the client sent it.
 */
#include "translate/fit.h"

#include <string.h>

#include "table.h"

/* ---- what a request needs ------------------------------------------------- */

static int nonempty_array(const json_t *v)
{
    return json_is_array(v) && json_array_size(v) > 0;
}

/* An image anywhere in the request: OpenAI `image_url` parts, Responses
 * `input_image`, Anthropic `image` blocks (tool results included), Gemini
 * `inlineData`/`fileData` with an image MIME type. One walk serves every
 * protocol because the shapes do not collide. */
static int has_image(const json_t *v, int depth)
{
    if (depth > 64)
        return 0;
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e) if (has_image(e, depth + 1)) return 1;
        return 0;
    }
    if (!json_is_object(v))
        return 0;
    const char *type = json_string_value(json_object_get(v, "type"));
    if (type && (!strcmp(type, "image_url") || !strcmp(type, "input_image") || !strcmp(type, "image")))
        return 1;
    const char *keys[] = {"inlineData", "inline_data", "fileData", "file_data"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        const json_t *d = json_object_get(v, keys[i]);
        const char *mime = json_string_value(json_object_get(d, "mimeType"));
        if (!mime)
            mime = json_string_value(json_object_get(d, "mime_type"));
        if (mime && !strncmp(mime, "image/", 6))
            return 1;
    }
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)v, k, e) if (has_image(e, depth + 1)) return 1;
    return 0;
}

uint32_t sl_fit_needs(sl_proto p, const json_t *req)
{
    uint32_t need = 0;
    const json_t *tools = json_object_get(req, "tools");
    if (p == SL_PROTO_GEMINI) {
        size_t i;
        const json_t *t;
        json_array_foreach(tools, i, t) if (nonempty_array(json_object_get(t, "functionDeclarations")) ||
                                             nonempty_array(json_object_get(t, "function_declarations")))
            need |= SL_CAP_TOOLS;
    } else if (nonempty_array(tools)) {
        need |= SL_CAP_TOOLS;
    }
    const char *where = p == SL_PROTO_GEMINI ? "contents" : p == SL_PROTO_RESPONSES ? "input" : "messages";
    if (has_image(json_object_get(req, where), 0))
        need |= SL_CAP_VISION;
    return need;
}

/* ---- fitting -------------------------------------------------------------- */

static int del(json_t *o, const char *k)
{
    return json_object_del(o, k) == 0;
}

/* Lowers an integer member above `max` to `max`. */
static int clamp(json_t *o, const char *k, uint32_t max)
{
    json_t *v = json_object_get(o, k);
    if (!max || !json_is_integer(v) || json_integer_value(v) <= (json_int_t)max)
        return 0;
    json_object_set_new(o, k, json_integer(max));
    return 1;
}

static const char *const efforts[] = {"minimal", "low", "medium", "high"};

/* OpenAI's reasoning_effort: kept when the model takes the value, moved to
 * the nearest value it takes (up first: asking for less thought than the
 * client wanted is the worse surprise), left out when it takes none. A
 * value outside the four sluice knows goes as sent. */
static int fit_effort(json_t *o, const char *key, uint32_t caps)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return 0;
    if (!(caps & (SL_CAP_EFFORT_MINIMAL | SL_CAP_EFFORT_LOW | SL_CAP_EFFORT_MEDIUM | SL_CAP_EFFORT_HIGH)))
        return del(o, key);
    const char *s = json_string_value(v);
    int want = -1;
    for (int i = 0; s && i < 4; i++)
        if (!strcmp(s, efforts[i]))
            want = i;
    if (want < 0 || (caps & (SL_CAP_EFFORT_MINIMAL << want)))
        return 0;
    int pick = -1;
    for (int i = want + 1; i < 4 && pick < 0; i++)
        if (caps & (SL_CAP_EFFORT_MINIMAL << i))
            pick = i;
    for (int i = want - 1; i >= 0 && pick < 0; i--)
        if (caps & (SL_CAP_EFFORT_MINIMAL << i))
            pick = i;
    json_object_set_new(o, key, json_string(efforts[pick]));
    return 1;
}

static int fit_openai(json_t *o, uint32_t caps, uint32_t max_output)
{
    int n = 0;
    /* One output limit under the name the model insists on; a model that
     * takes both gets what the client sent. (Admission has checked that
     * two spellings agree.) */
    if (caps & (SL_CAP_MAX_COMPLETION | SL_CAP_MAX_TOKENS)) {
        const char *want = caps & SL_CAP_MAX_COMPLETION ? "max_completion_tokens" : "max_tokens";
        const char *other = caps & SL_CAP_MAX_COMPLETION ? "max_tokens" : "max_completion_tokens";
        json_t *ov = json_object_get(o, other);
        if (ov) {
            if (!json_object_get(o, want))
                json_object_set(o, want, ov);
            n += del(o, other);
        }
    }
    n += clamp(o, "max_completion_tokens", max_output);
    n += clamp(o, "max_tokens", max_output);
    if (caps & SL_CAP_NO_TEMPERATURE)
        n += del(o, "temperature");
    n += fit_effort(o, "reasoning_effort", caps);
    return n;
}

/* OpenAI's Responses API, passed through to a `responses: true` provider:
 * the limit is max_output_tokens, the effort sits in reasoning.effort, and
 * a model without reasoning rejects the whole reasoning object. */
static int fit_responses(json_t *o, uint32_t caps, uint32_t max_output)
{
    int n = clamp(o, "max_output_tokens", max_output);
    if (caps & SL_CAP_NO_TEMPERATURE)
        n += del(o, "temperature");
    json_t *r = json_object_get(o, "reasoning");
    if (!r)
        return n;
    if (!(caps & SL_CAP_REASONING) || !json_is_object(r))
        return n + del(o, "reasoning");
    json_t *r2 = json_copy(r); /* copy on write: see fit.h */
    int m = fit_effort(r2, "effort", caps);
    if (m && json_object_size(r2) == 0)
        del(o, "reasoning");
    else if (m)
        json_object_set(o, "reasoning", r2);
    json_decref(r2);
    return n + m;
}

int sl_fit_request(sl_proto up, json_t *body, uint32_t caps, uint32_t max_output, uint32_t quirks)
{
    if (!json_is_object(body))
        return 0;
    int n = 0;
    if (up == SL_PROTO_OPENAI && (quirks & SL_QUIRK_NO_STREAM_OPTIONS))
        n += del(body, "stream_options");
    if (!(caps & SL_CAP_KNOWN))
        return n;
    switch (up) {
    case SL_PROTO_OPENAI:
        n += fit_openai(body, caps, max_output);
        break;
    case SL_PROTO_ANTHROPIC: {
        n += clamp(body, "max_tokens", max_output);
        json_t *th = json_object_get(body, "thinking");
        if (th && !(caps & SL_CAP_REASONING)) {
            n += del(body, "thinking");
        } else if (th) {
            /* Anthropic wants the thinking budget below max_tokens (and
             * at least 1024): a clamped limit pulls the budget down. */
            json_int_t mt = json_integer_value(json_object_get(body, "max_tokens"));
            json_t *bt = json_object_get(th, "budget_tokens");
            if (json_is_integer(bt) && mt > 0 && json_integer_value(bt) >= mt) {
                if (mt > 1024) {
                    json_t *th2 = json_copy(th); /* copy on write: see fit.h */
                    json_object_set_new(th2, "budget_tokens", json_integer(mt - 1));
                    json_object_set_new(body, "thinking", th2);
                } else {
                    del(body, "thinking");
                }
                n++;
            }
        }
        break;
    }
    case SL_PROTO_GEMINI: {
        json_t *g = json_object_get(body, "generationConfig");
        if (json_is_object(g)) {
            json_t *g2 = json_copy(g); /* copy on write: see fit.h */
            int m = clamp(g2, "maxOutputTokens", max_output);
            if (!(caps & SL_CAP_REASONING))
                m += del(g2, "thinkingConfig");
            if (m)
                json_object_set_new(body, "generationConfig", g2);
            else
                json_decref(g2);
            n += m;
        }
        break;
    }
    case SL_PROTO_RESPONSES:
        n += fit_responses(body, caps, max_output);
        break;
    }
    return n;
}
