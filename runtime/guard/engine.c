/*
 * The scanning engine (see guard.h): every selected guardrail's scanner
 * over one text, validation, then one decision for the text: block wins,
 * redaction rewrites, everything found is counted. Redacted values live
 * only in the request's state, and are zeroed when it ends.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "guard/guard_internal.h"

static const char *const type_names[SL_GDET_COUNT + 1] = {"EMAIL", "PHONE", "CARD", "IBAN", "SSN",
                                                           "IPV4",  "IPV6",  "SECRET", "REDACTED"};
static const char *const det_names[SL_GDET_COUNT + 1] = {"email", "phone", "card", "iban", "ssn",
                                                          "ipv4",  "ipv6",  "secrets", "deny"};

/* Hits by guardrail, detector and direction. Rare events, so a relaxed
 * atomic add is cheap enough and keeps workers out of each other's way. */
static _Atomic uint64_t hit_count[32][SL_GDET_COUNT + 1][2];

/* Which bytes can start a match, per guardrail and scanner (0: after a
 * non-alphanumeric byte, 1: inside a word), asked of the scanners
 * themselves once: a byte that neither matches nor leaves the DFA wanting
 * more can be skipped without a call. */
static uint8_t first_byte[32][2][256];
static pthread_once_t first_once = PTHREAD_ONCE_INIT;
static const sl_guard_spec *first_spec;

static void first_init(void)
{
    for (uint32_t r = 0; r < first_spec->rail_count && r < 32; r++)
        for (int k = 0; k < 2; k++) {
            sl_guard_scan_fn fn = k ? first_spec->rails[r].scan_word : first_spec->rails[r].scan;
            for (int b = 0; b < 256 && fn; b++) {
                unsigned char s[2] = {(unsigned char)b, 0};
                int partial = 0;
                size_t len = 0;
                int rule = fn(s, s + 1, &partial, &len);
                first_byte[r][k][b] = rule >= 0 || partial;
            }
        }
}

uint64_t sl_guard_hits(uint32_t rail, int det, sl_guard_dir dir)
{
    return rail < 32 ? atomic_load_explicit(&hit_count[rail][sl_guard_kind(det)][dir], memory_order_relaxed) : 0;
}

sl_guard_req *sl_guard_req_new(const sl_guard_spec *spec, uint32_t rails)
{
    sl_guard_req *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    /* One spec per process (the compiled table; tests and fuzzers too). */
    first_spec = spec;
    pthread_once(&first_once, first_init);
    g->spec = spec;
    g->rails = rails;
    sl_sse_init(&g->sse, 0);
    return g;
}

void sl_guard_req_free(sl_guard_req *g)
{
    if (!g)
        return;
    sl_guard_stream_reset(g);
    sl_sse_free(&g->sse);
    for (size_t i = 0; i < g->nvalues; i++) {
        /* explicit_bzero: not optimised away before the free */
        explicit_bzero(g->values[i].text, g->values[i].len);
        free(g->values[i].text);
    }
    if (g->work.data)
        memset(g->work.data, 0, g->work.cap);
    sl_buf_free(&g->work);
    free(g->hits);
    free(g);
}

static int action(const sl_guard_req *g, uint32_t i, sl_guard_dir dir)
{
    const sl_guardrail *r = &g->spec->rails[i];
    return dir == SL_GUARD_REQUEST ? r->request : r->response;
}

int sl_guard_active(const sl_guard_req *g, sl_guard_dir dir)
{
    for (uint32_t i = 0; i < g->spec->rail_count; i++)
        if ((g->rails & (1u << i)) && action(g, i, dir) != SL_GUARD_NONE)
            return 1;
    return dir == SL_GUARD_RESPONSE && sl_guard_restores(g);
}

int sl_guard_restores(const sl_guard_req *g)
{
    for (uint32_t i = 0; i < g->spec->rail_count; i++)
        if ((g->rails & (1u << i)) && g->spec->rails[i].restore)
            return 1;
    return 0;
}

int sl_guard_rewrites(const sl_guard_req *g, sl_guard_dir dir)
{
    for (uint32_t i = 0; i < g->spec->rail_count; i++)
        if ((g->rails & (1u << i)) && action(g, i, dir) >= SL_GUARD_REDACT)
            return 1;
    return dir == SL_GUARD_RESPONSE && sl_guard_restores(g);
}

const char *sl_guard_message(const sl_guard_req *g)
{
    return g->msg;
}

uint32_t sl_guard_fired(const sl_guard_req *g)
{
    return g->fired;
}

static int add_hit(sl_guard_req *g, size_t start, size_t len, uint32_t rail, int det)
{
    if (g->nhits == g->caphits) {
        size_t cap = g->caphits ? g->caphits * 2 : 16;
        sl_guard_hit *h = realloc(g->hits, cap * sizeof *h);
        if (!h)
            return -1;
        g->hits = h;
        g->caphits = cap;
    }
    g->hits[g->nhits++] = (sl_guard_hit){start, len, rail, det};
    return 0;
}

/* One guardrail over w[0..n) (w[n] is NUL and w is writable: each try
 * gets a temporary sentinel at the end of its window). *safe is where
 * undecided text starts (n when final). */
static int scan_rail(sl_guard_req *g, uint32_t rail, unsigned char *w, size_t n, int final, size_t *safe)
{
    const sl_guardrail *r = &g->spec->rails[rail];
    size_t i = 0;
    while (i < n) {
        /* Every built-in detector starts after a non-alphanumeric byte
         * (detect.c checks it): inside words only deny patterns run. */
        int c = i ? w[i - 1] : ' ';
        int inword = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
        sl_guard_scan_fn scan = inword ? r->scan_word : r->scan;
        if (!scan || (rail < 32 && !first_byte[rail][inword][w[i]])) {
            i++;
            continue;
        }
        size_t cap = n - i > SL_GUARD_WINDOW ? i + SL_GUARD_WINDOW : n;
        unsigned char saved = w[cap];
        w[cap] = 0;
        int partial = 0;
        size_t len = 0;
        int rule = scan(w + i, w + cap, &partial, &len);
        w[cap] = saved;
        if (partial && cap == n && !final) {
            *safe = i;
            return 0;
        }
        if (rule >= 0 && len > 0) {
            size_t l = len;
            int det = sl_guard_validate(rule, w, n, i, &l);
            if (det >= 0 && !final && i + l >= n && n - i <= SL_GUARD_WINDOW) {
                *safe = i; /* what follows may still extend or void it */
                return 0;
            }
            if (det >= 0) {
                if (add_hit(g, i, l, rail, det) != 0)
                    return -1;
                i += l;
                continue;
            }
        }
        i++;
    }
    *safe = n;
    return 0;
}

static int cmp_hit(const void *pa, const void *pb)
{
    const sl_guard_hit *a = pa, *b = pb;
    if (a->start != b->start)
        return a->start < b->start ? -1 : 1;
    return a->len > b->len ? -1 : a->len < b->len;
}

static int placeholder(sl_guard_req *g, int det, const unsigned char *s, size_t n, sl_buf *out)
{
    int type = sl_guard_kind(det);
    for (size_t i = 0; i < g->nvalues; i++) {
        sl_guard_value *v = &g->values[i];
        if (v->type == type && v->len == n && memcmp(v->text, s, n) == 0)
            return sl_buf_appendf(out, "[%s_%u]", type_names[type], v->num);
    }
    if (g->nvalues == SL_GUARD_MAX_VALUES) /* redacted all the same, but not restorable */
        return sl_buf_appendf(out, "[%s]", type_names[type]);
    sl_guard_value *v = &g->values[g->nvalues];
    v->text = malloc(n ? n : 1);
    if (!v->text)
        return -1;
    memcpy(v->text, s, n);
    v->len = n;
    v->type = (uint8_t)type;
    v->num = ++g->next_num[type];
    g->nvalues++;
    return sl_buf_appendf(out, "[%s_%u]", type_names[type], v->num);
}

/* Copies s[0..n) with every known placeholder replaced by its value. */
static int restore(const sl_guard_req *g, const unsigned char *s, size_t n, sl_buf *out)
{
    size_t i = 0, from = 0;
    while (i < n) {
        const unsigned char *b = memchr(s + i, '[', n - i);
        if (!b)
            break;
        i = (size_t)(b - s);
        size_t j = i + 1;
        while (j < n && j - i <= 10 && s[j] >= 'A' && s[j] <= 'Z')
            j++;
        size_t tlen = j - i - 1;
        unsigned num = 0;
        size_t k = j + 1;
        while (k < n && k - j <= 6 && s[k] >= '0' && s[k] <= '9')
            num = num * 10 + (unsigned)(s[k++] - '0');
        if (tlen && j < n && s[j] == '_' && k > j + 1 && k < n && s[k] == ']') {
            for (size_t v = 0; v < g->nvalues; v++) {
                const sl_guard_value *gv = &g->values[v];
                if (gv->num == num && strlen(type_names[gv->type]) == tlen &&
                    memcmp(type_names[gv->type], s + i + 1, tlen) == 0) {
                    if (sl_buf_append(out, s + from, i - from) != 0 || sl_buf_append(out, gv->text, gv->len) != 0)
                        return -1;
                    from = k + 1;
                    break;
                }
            }
        }
        i++;
    }
    return sl_buf_append(out, s + from, n - from);
}

static void blocked(sl_guard_req *g, const sl_guard_hit *h, sl_guard_dir dir)
{
    const char *name = g->spec->rails[h->rail].name;
    if (h->det >= SL_GDET_DENY)
        snprintf(g->msg, sizeof g->msg, "%s blocked by guardrail '%s' (deny pattern %d)",
                 dir == SL_GUARD_REQUEST ? "request" : "response", name, h->det - SL_GDET_DENY + 1);
    else
        snprintf(g->msg, sizeof g->msg, "%s blocked by guardrail '%s' (detector %s)",
                 dir == SL_GUARD_REQUEST ? "request" : "response", name, det_names[h->det]);
}

int sl_guard_text(sl_guard_req *g, sl_guard_dir dir, const char *s, size_t n, int final, sl_buf *out,
                  size_t *used)
{
    *used = n;
    sl_buf_clear(&g->work);
    if (sl_buf_reserve(&g->work, n + 1) != 0)
        return -1;
    if (n)
        memcpy(g->work.data, s, n);
    g->work.data[n] = '\0';
    g->work.len = n;
    unsigned char *w = (unsigned char *)g->work.data;
    g->nhits = 0;
    size_t safe = n;
    for (uint32_t i = 0; i < g->spec->rail_count; i++) {
        if (!(g->rails & (1u << i)) || action(g, i, dir) == SL_GUARD_NONE)
            continue;
        size_t rs;
        if (scan_rail(g, i, w, n, final, &rs) != 0)
            return -1;
        if (rs < safe)
            safe = rs;
    }
    int restoring = dir == SL_GUARD_RESPONSE && sl_guard_restores(g);
    if (restoring && !final) {
        /* A placeholder cut in two: hold from its '['. */
        size_t lo = n > 24 ? n - 24 : 0;
        for (size_t i = n; i-- > lo;) {
            if (w[i] == ']')
                break;
            if (w[i] == '[') {
                if (i < safe)
                    safe = i;
                break;
            }
        }
    }
    size_t kept = 0;
    for (size_t i = 0; i < g->nhits; i++)
        if (g->hits[i].start + g->hits[i].len <= safe)
            g->hits[kept++] = g->hits[i];
    g->nhits = kept;
    for (size_t i = 0; i < g->nhits; i++)
        if (action(g, g->hits[i].rail, dir) == SL_GUARD_BLOCK) {
            blocked(g, &g->hits[i], dir);
            g->fired |= 1u << sl_guard_kind(g->hits[i].det);
            atomic_fetch_add_explicit(&hit_count[g->hits[i].rail][sl_guard_kind(g->hits[i].det)][dir], 1,
                                      memory_order_relaxed);
            return 1;
        }
    for (size_t i = 0; i < g->nhits; i++) {
        g->fired |= 1u << sl_guard_kind(g->hits[i].det);
        atomic_fetch_add_explicit(&hit_count[g->hits[i].rail][sl_guard_kind(g->hits[i].det)][dir], 1,
                                  memory_order_relaxed);
    }
    if (g->nhits > 1)
        qsort(g->hits, g->nhits, sizeof *g->hits, cmp_hit);
    size_t pos = 0;
    for (size_t i = 0; i < g->nhits; i++) {
        const sl_guard_hit *h = &g->hits[i];
        if (h->start < pos || action(g, h->rail, dir) != SL_GUARD_REDACT)
            continue;
        int rc = restoring ? restore(g, w + pos, h->start - pos, out) : sl_buf_append(out, w + pos, h->start - pos);
        if (rc != 0 || placeholder(g, h->det, w + h->start, h->len, out) != 0)
            return -1;
        pos = h->start + h->len;
    }
    int rc = restoring ? restore(g, w + pos, safe - pos, out) : sl_buf_append(out, w + pos, safe - pos);
    if (rc != 0)
        return -1;
    *used = safe;
    return 0;
}
