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
#include "govern/usage.h"
#include "core/sat.h"
#include "json/json_scan.h"
#include "json/json_top.h"
#include "translate/sse.h"
#include "translate/translate.h"

#include <jansson.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

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

/* The quoted keys the stream readers look for. */
enum { K_USAGE = 1, K_USAGE_META = 2, K_STOP = 4, K_NO_CHOICES = 8 };

#define KEY_AT(lit) (left >= sizeof lit - 1 && memcmp(q, lit, sizeof lit - 1) == 0)

/* The key starting at the quote q (left bytes to the end), or 0. */
static inline unsigned key_at(const char *q, size_t left)
{
    switch (q[1]) {
    case 'u':
        if (KEY_AT("\"usage\""))
            return K_USAGE;
        return KEY_AT("\"usageMetadata\"") ? K_USAGE_META : 0;
    case 'm': return KEY_AT("\"message_stop\"") ? K_STOP : 0;
    case 'r': return KEY_AT("\"response.completed\"") ? K_STOP : 0;
    case 'c': return KEY_AT("\"choices\":[]") ? K_NO_CHOICES : 0;
    default: return 0;
    }
}

/* Which keys occur in p/n: the same answer as a memmem per key, in one
 * pass (this runs on every streamed event; four memmems were a third of
 * sluice's instructions per event). Every key is a quote followed by one
 * of u, m, r, c; with SSE2, 16 positions are tested for that pair at once
 * and only the few matches compared. */
static unsigned keys_in(const char *p, size_t n)
{
    unsigned k = 0;
    size_t i = 0;
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), cu = _mm_set1_epi8('u'), cm = _mm_set1_epi8('m'),
                  cr = _mm_set1_epi8('r'), cc = _mm_set1_epi8('c');
    for (; i + 17 <= n; i += 16) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(p + i));
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)(p + i + 1));
        __m128i next = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(b, cu), _mm_cmpeq_epi8(b, cm)),
                                    _mm_or_si128(_mm_cmpeq_epi8(b, cr), _mm_cmpeq_epi8(b, cc)));
        unsigned mask = (unsigned)_mm_movemask_epi8(_mm_and_si128(_mm_cmpeq_epi8(a, quote), next));
        while (mask) {
            unsigned j = (unsigned)__builtin_ctz(mask);
            k |= key_at(p + i + j, n - i - j);
            mask &= mask - 1;
        }
    }
#endif
    for (; i + 7 <= n; i++) /* the shortest key is 7 bytes */
        if (p[i] == '"')
            k |= key_at(p + i, n - i);
    return k;
}

/* One line of the stream: counts it and reads usage from it. Returns the
 * keys a data line holds (0 for any other line). */
static unsigned on_line(sl_usage_stream *s, const char *p, size_t n)
{
    if (n < 5 || memcmp(p, "data:", 5) != 0)
        return 0;
    s->events++;
    p += 5;
    n -= 5;
    while (n && *p == ' ') {
        p++;
        n--;
    }
    if (n == 6 && memcmp(p, "[DONE]", 6) == 0) {
        s->done = 1;
        return 0;
    }
    unsigned k = keys_in(p, n);
    if (k & K_STOP)
        s->done = 1;
    if (!(k & K_USAGE)) {
        if (k & K_USAGE_META)
            from_gemini(p, n, &s->u);
        return k;
    }
    json_t *j = json_loadb(p, n, 0, NULL);
    if (!j)
        return k;
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
    return k;
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

typedef struct relay_ctx {
    sl_usage_stream *s;
    sl_buf *keep;
    /* Span mode (see sl_usage_stream_strip): every line lies in `base`, so
     * a dropped line is cut out of it rather than the rest copied. */
    const char *base;
    size_t copied;      /* base[0, copied) is dealt with */
    int cut;            /* a line was dropped */
} relay_ctx;

/* Leaves the line l/n and its LF out of the client's copy of base. */
static int cut_line(relay_ctx *r, const char *l, size_t n)
{
    size_t at = (size_t)(l - r->base);
    if (sl_buf_append(r->keep, r->base + r->copied, at - r->copied) != 0)
        return -1;
    r->copied = at + n + 1;
    r->cut = 1;
    return 0;
}

/* One line from the shared splitter (translate/sse.c). Kept lines are
 * re-emitted with an LF ending: CRLF and CR endings mean the same to
 * every SSE reader. The usage-only chunk (`"choices":[]` with `usage`)
 * and the blank line that ends it are left out. */
static int relay_line(void *ctx, const char *l, size_t n)
{
    relay_ctx *r = ctx;
    sl_usage_stream *s = r->s;
    unsigned k = n ? on_line(s, l, n) : 0;
    if (!r->keep)
        return 0;
    int drop = 0;
    if (n == 0 && s->skip_blank) {
        s->skip_blank = 0;
        drop = 1;
    } else if ((k & (K_USAGE | K_NO_CHOICES)) == (K_USAGE | K_NO_CHOICES)) {
        s->skip_blank = 1;
        drop = 1;
    }
    if (r->base)
        return drop ? cut_line(r, l, n) : 0;
    if (drop)
        return 0;
    if (sl_buf_append(r->keep, l, n) != 0 || sl_buf_append(r->keep, "\n", 1) != 0)
        return -1;
    return 0;
}

int sl_usage_stream_strip(sl_usage_stream *s, const char *p, size_t n, sl_buf *keep)
{
    relay_ctx r = {s, keep, NULL, 0, 0};
    /* Whole LF-ended lines and nothing held from before (the usual read:
     * whole events): every line lies in p, so what the client gets is p
     * itself, or p with the usage-only chunk cut out. Otherwise lines are
     * copied one by one, endings normalised, an unfinished one held. */
    if (n && p[n - 1] == '\n' && s->lines.line.len == 0 && !s->lines.after_cr && !s->lines.failed &&
        (s->lines.started || (unsigned char)p[0] != 0xEF) && !memchr(p, '\r', n))
        r.base = p;
    int rc = sl_sse_lines_feed(&s->lines, p, n, relay_line, &r);
    s->failed = s->lines.failed;
    if (rc != 0)
        return -1;
    if (!r.base)
        return 0;
    if (!r.cut)
        return 1;
    return sl_buf_append(keep, p + r.copied, n - r.copied) != 0 ? -1 : 0;
}

int sl_usage_stream_relay(sl_usage_stream *s, const char *p, size_t n, sl_buf *keep)
{
    if (!keep) {
        relay_ctx r = {s, NULL, NULL, 0, 0};
        int rc = sl_sse_lines_feed(&s->lines, p, n, relay_line, &r);
        s->failed = s->lines.failed;
        return rc == 0 ? 0 : -1;
    }
    int rc = sl_usage_stream_strip(s, p, n, keep);
    if (rc == 1)
        rc = sl_buf_append(keep, p, n) != 0 ? -1 : 0;
    return rc;
}

void sl_usage_stream_free(sl_usage_stream *s)
{
    sl_sse_lines_free(&s->lines);
}

int64_t sl_usage_estimate_tokens(size_t bytes)
{
    return (int64_t)(bytes / 4 + (bytes % 4 != 0));
}
