/*
 * Usage extraction. OpenAI reports prompt_tokens (cached ones included, and
 * broken out in prompt_tokens_details.cached_tokens); Anthropic reports
 * input_tokens (uncached) with cache_read/cache_creation separately. We
 * normalise to uncached input + cache read + cache write + output so one
 * price table applies to both. Gemini reports `usageMetadata` instead,
 * read by the translator's reader (one copy of that mapping). On streams
 * only `data:` lines that mention usage or a terminal marker are parsed,
 * so relaying stays cheap.
 */
#define _GNU_SOURCE /* memmem */
#include "govern/usage.h"
#include "core/sat.h"
#include "json/json_scan.h"
#include "json/json_top.h"
#include "translate/sse.h"
#include "translate/translate.h"

#include <jansson.h>
#include <string.h>

void sl_usage_from_json(json_t *usage, sl_usage_counts *u)
{
    sl_translate_usage_object(usage, u); /* the one reader of every shape */
}

/* A Gemini response (or one streamed chunk of it) with usageMetadata. Before
 * this, only "usage" was looked for, so a Gemini answer relayed to a Gemini
 * client was never read: charged an estimate (for streams one token per
 * event, far below what a real Gemini chunk holds), never what Gemini
 * reported. */
static void from_gemini(const char *p, size_t n, sl_usage_counts *u)
{
    sl_usage_counts g = {0};
    if (sl_translate_usage(SL_PROTO_GEMINI, p, n, &g) != 0)
        return;
    *u = g;
    u->have = 1;
}

/* The members the usage readers look at (translate/common.c), at the top
 * of a usage object and inside its *_details objects. */
static const char *const usage_names[] = {"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
                                          "cache_read_input_tokens", "cache_creation_input_tokens",
                                          "promptTokenCount", "candidatesTokenCount", "prompt_tokens_details",
                                          "completion_tokens_details", "input_tokens_details",
                                          "output_tokens_details"};
static const char *const detail_names[] = {"cached_tokens", "reasoning_tokens"};

static json_t *light_object(const char *p, size_t n, const char *const *names, size_t nn, int nested);

/* null, a plain non-negative integer, or (one level down) a details
 * object; NULL for anything else, which sends the caller to jansson. */
static json_t *light_value(const char *p, sl_json_span s, int nested)
{
    const char *v = p + s.start;
    size_t n = s.end - s.start;
    if (n == 4 && memcmp(v, "null", 4) == 0)
        return json_null();
    if (n >= 1 && n <= 18 && v[0] >= '0' && v[0] <= '9') {
        json_int_t x = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < '0' || v[i] > '9')
                return NULL;
            x = x * 10 + (v[i] - '0');
        }
        return json_integer(x);
    }
    if (!nested && n && v[0] == '{')
        return light_object(v, n, detail_names, sizeof detail_names / sizeof *detail_names, 1);
    return NULL;
}

/* A usage object as jansson values holding only what the readers use,
 * built from a scan (json/json_top.h) instead of a parse of the whole
 * object: this runs on every answer. NULL when the scan is unsure or a
 * member is of another kind (the caller then parses with jansson). */
static json_t *light_object(const char *p, size_t n, const char *const *names, size_t nn, int nested)
{
    sl_json_span m[sizeof usage_names / sizeof *usage_names];
    if (nn > sizeof m / sizeof *m || sl_json_top_scan(p, n, names, nn, m) != SL_JSON_TOP_OK)
        return NULL;
    json_t *o = json_object();
    for (size_t i = 0; o && i < nn; i++) {
        if (!m[i].end)
            continue;
        json_t *v = light_value(p, m[i], nested);
        if (!v || json_object_set_new(o, names[i], v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

void sl_usage_from_body(const char *body, size_t len, sl_usage_counts *u)
{
    /* Parse only the top-level "usage" member, not the whole answer: a
     * completion can be many kilobytes and this runs on every request. */
    size_t s, e;
    json_t *j;
    if (sl_json_find_member(body, len, "usage", &s, &e) == 0) {
        j = light_object(body + s, e - s, usage_names, sizeof usage_names / sizeof *usage_names, 0);
        if (!j)
            j = json_loadb(body + s, e - s, 0, NULL);
        sl_usage_from_json(j, u);
        json_decref(j);
        return;
    }
    if (sl_json_find_member(body, len, "usageMetadata", &s, &e) == 0) {
        from_gemini(body, len, u);
        return;
    }
    j = json_loadb(body, len, 0, NULL);
    if (!j)
        return;
    sl_usage_from_json(json_object_get(j, "usage"), u);
    json_decref(j);
}

static void on_line(sl_usage_stream *s, const char *p, size_t n)
{
    if (n < 5 || memcmp(p, "data:", 5) != 0)
        return;
    s->events++;
    p += 5;
    n -= 5;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
        s->done = 1;
        return;
    }
    int has_usage = memmem(p, n, "\"usage\"", 7) != NULL;
    int stop = memmem(p, n, "\"message_stop\"", 14) != NULL ||
               memmem(p, n, "\"response.completed\"", 20) != NULL;
    if (stop)
        s->done = 1;
    if (!has_usage) {
        if (memmem(p, n, "\"usageMetadata\"", 15))
            from_gemini(p, n, &s->u);
        return;
    }
    json_t *j = json_loadb(p, n, 0, NULL);
    if (!j)
        return;
    json_t *usage = json_object_get(j, "usage");
    if (!usage) /* Anthropic message_start nests it in "message" */
        usage = json_object_get(json_object_get(j, "message"), "usage");
    if (!usage) /* Responses events carry the whole response; usage is
                 * null until response.completed (or .incomplete) */
        usage = json_object_get(json_object_get(j, "response"), "usage");
    /* Anthropic's message_delta carries only output_tokens; keep the input
     * counts message_start gave. */
    sl_usage_from_json(usage, &s->u);
    json_decref(j);
}

int sl_usage_stream_feed(sl_usage_stream *s, const char *p, size_t n)
{
    return sl_usage_stream_relay(s, p, n, NULL);
}

int64_t sl_usage_total(const sl_usage_counts *u)
{
    return sl_sat_add_count(sl_sat_add_count(u->input, u->output),
                            sl_sat_add_count(u->cache_read, u->cache_write));
}

static int usage_only(const char *p, size_t n)
{
    return n > 5 && memcmp(p, "data:", 5) == 0 && memmem(p, n, "\"choices\":[]", 12) &&
           memmem(p, n, "\"usage\"", 7);
}

typedef struct relay_ctx {
    sl_usage_stream *s;
    sl_buf *keep;
} relay_ctx;

/* One line from the shared splitter (translate/sse.c). Kept lines are
 * re-emitted with an LF ending: CRLF and CR endings mean the same to
 * every SSE reader. */
static int relay_line(void *ctx, const char *l, size_t n)
{
    relay_ctx *r = ctx;
    sl_usage_stream *s = r->s;
    if (n)
        on_line(s, l, n);
    if (!r->keep)
        return 0;
    if (n == 0 && s->skip_blank) {
        s->skip_blank = 0;
        return 0;
    }
    if (usage_only(l, n)) {
        s->skip_blank = 1;
        return 0;
    }
    if (sl_buf_append(r->keep, l, n) != 0 || sl_buf_append(r->keep, "\n", 1) != 0)
        return -1;
    return 0;
}

int sl_usage_stream_relay(sl_usage_stream *s, const char *p, size_t n, sl_buf *keep)
{
    relay_ctx r = {s, keep};
    int rc = sl_sse_lines_feed(&s->lines, p, n, relay_line, &r);
    s->failed = s->lines.failed;
    return rc == 0 ? 0 : -1;
}

void sl_usage_stream_free(sl_usage_stream *s)
{
    sl_sse_lines_free(&s->lines);
}

int64_t sl_usage_estimate_tokens(size_t bytes)
{
    return (int64_t)(bytes / 4 + (bytes % 4 != 0));
}
