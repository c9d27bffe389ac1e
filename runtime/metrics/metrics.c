/*
 * Per-worker metric shards and their exposition (see metrics.h). A series
 * is one slot whose 64-bit key packs the family and its label indices;
 * the owner thread claims an empty slot by publishing the key with a
 * release store after the (zeroed) values, so a concurrent scrape sees
 * either no series or a complete one. Values are only ever added to by
 * their one writer, so relaxed loads and stores suffice and the hot path
 * has no locked instruction. A scrape copies every live slot of every
 * shard, sorts by key and merges equal keys: output order is stable
 * (family, then label indices), which keeps tests and diffs simple.
 */
#include "metrics/metrics.h"

#include <inttypes.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CSLOTS 4096
#define HSLOTS 1024
#define HB 16 /* most buckets a histogram family has */

typedef struct cslot {
    _Atomic uint64_t key;
    _Atomic uint64_t v;
} cslot;

/* v[0..nb) per-bucket counts (not cumulative), v[HB] above the last
 * bound, v[HB + 1] the sum in the family's sum unit. */
typedef struct hslot {
    _Atomic uint64_t key;
    _Atomic uint64_t v[HB + 2];
} hslot;

struct sl_metrics_shard {
    _Atomic uint64_t begun, ended, dropped;
    cslot c[CSLOTS];
    hslot h[HSLOTS];
};

/* ---- label vocabularies ----------------------------------------------------- */

enum vocab { V_NONE, V_SURFACE, V_CLASS, V_RESULT, V_TOKEN, V_REASON, V_OP, V_ERROR, V_GENAI_TOKEN };

static const char *const surface_names[] = {"openai", "anthropic", "gemini", "responses"};
static const char *const class_names[] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
static const char *const result_names[] = {"ok", "http_3xx", "http_4xx", "http_429", "http_5xx", "connect",
                                           "timeout", "reset", "error", "cancelled"};
static const char *const token_names[] = {"input", "output", "cache_read", "cache_write"};
static const char *const reason_names[] = {"rate_limit", "budget"};
/* OpenTelemetry gen_ai.operation.name values; count_tokens has none. */
static const char *const op_names[] = {"chat", "text_completion", "embeddings", "generate_content",
                                       "count_tokens"};
/* error.type: the HTTP status of a failed request, from a fixed list so
 * the label stays bounded; "" for success, "_OTHER" as OTel spells it. */
static const int error_codes[] = {400, 401, 403, 404, 405, 408, 409, 413, 422, 429,
                                  499, 500, 501, 502, 503, 504, 529};
#define N_ERR (int)(sizeof error_codes / sizeof *error_codes)

static int op_index(sl_op op, int legacy)
{
    if (legacy)
        return 1;
    switch (op) {
    case SL_OP_EMBEDDINGS: return 2;
    case SL_OP_GENERATE: return 3;
    case SL_OP_COUNT_TOKENS: return 4;
    default: return 0;
    }
}

const char *sl_metrics_op_name(sl_op op, int legacy) { return op_names[op_index(op, legacy)]; }

const char *sl_metrics_result_name(sl_metrics_result r)
{
    return (unsigned)r < SL_MET_ATTEMPT_RESULTS ? result_names[r] : "error";
}

static int error_index(int status)
{
    if (status > 0 && status < 400)
        return 0;
    for (int i = 0; i < N_ERR; i++)
        if (error_codes[i] == status)
            return i + 1;
    return N_ERR + 1;
}

static int class_index(int status)
{
    return status >= 100 && status < 600 ? status / 100 : 0;
}

sl_metrics_result sl_metrics_result_of_status(int status)
{
    if (status >= 200 && status < 300)
        return SL_MET_ATTEMPT_OK;
    if (status == 429)
        return SL_MET_ATTEMPT_429;
    if (status >= 500)
        return SL_MET_ATTEMPT_5XX;
    if (status >= 400)
        return SL_MET_ATTEMPT_4XX;
    return SL_MET_ATTEMPT_3XX;
}

/* ---- families --------------------------------------------------------------- */

enum {
    F_REQUESTS = 1, F_ATTEMPTS, F_RETRIES, F_FALLBACKS, F_TOKENS, F_COST, F_REFUSALS,
    H_DURATION, H_TOKEN_USAGE, H_TTFT, H_OVERHEAD, F_COUNT
};

static const double dur_bounds[] = {0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28,
                                    2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
static const double ttft_bounds[] = {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,
                                     0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0};
static const double token_bounds[] = {1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
                                      1048576, 4194304, 16777216, 67108864};
static const double overhead_bounds[] = {0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0};
#define NB(a) (int)(sizeof a / sizeof *a)

typedef struct family {
    const char *name, *help;
    const double *bounds; /* NULL: a counter */
    int nb;
    double unit;          /* stored integer x unit = exposed value */
    const char *entry, *provider;
    int key;              /* key and team labels */
    const char *a;
    enum vocab av;
    const char *b;
    enum vocab bv;
} family;

#define GENAI_MODEL "gen_ai_request_model"
#define GENAI_PROVIDER "gen_ai_provider_name"
#define GENAI_OP "gen_ai_operation_name"

static const family families[F_COUNT] = {
    [F_REQUESTS] = {"sluice_requests_total", "Requests answered, by model entry asked, last provider, key, "
                    "client protocol and status class", NULL, 0, 1, "entry", "provider", 1, "surface",
                    V_SURFACE, "status_class", V_CLASS},
    [F_ATTEMPTS] = {"sluice_attempts_total", "Upstream tries, by the entry owning the target, provider and "
                    "outcome", NULL, 0, 1, "entry", "provider", 0, "result", V_RESULT, NULL, V_NONE},
    [F_RETRIES] = {"sluice_retries_total", "Tries after the first within one model entry, by entry asked",
                   NULL, 0, 1, "entry", NULL, 0, NULL, V_NONE, NULL, V_NONE},
    [F_FALLBACKS] = {"sluice_fallbacks_total", "Moves from a model entry to one of its fallbacks, by entry "
                     "asked", NULL, 0, 1, "entry", NULL, 0, NULL, V_NONE, NULL, V_NONE},
    [F_TOKENS] = {"sluice_tokens_total", "Tokens charged, by entry, provider, key and type", NULL, 0, 1,
                  "entry", "provider", 1, "type", V_TOKEN, NULL, V_NONE},
    [F_COST] = {"sluice_cost_usd_total", "Cost charged in USD, by entry, provider and key", NULL, 0, 1e-6,
                "entry", "provider", 1, NULL, V_NONE, NULL, V_NONE},
    [F_REFUSALS] = {"sluice_rate_limit_refusals_total", "Requests refused with 429 by a rate limit or a "
                    "budget, by key", NULL, 0, 1, NULL, NULL, 1, "reason", V_REASON, NULL, V_NONE},
    [H_DURATION] = {"gen_ai_client_operation_duration_seconds", "GenAI operation duration as the client sees "
                    "it", dur_bounds, NB(dur_bounds), 1e-9, GENAI_MODEL, GENAI_PROVIDER, 0, GENAI_OP, V_OP,
                    "error_type", V_ERROR},
    [H_TOKEN_USAGE] = {"gen_ai_client_token_usage", "Tokens used per operation, by token type",
                       token_bounds, NB(token_bounds), 1, GENAI_MODEL, GENAI_PROVIDER, 0, GENAI_OP, V_OP,
                       "gen_ai_token_type", V_GENAI_TOKEN},
    [H_TTFT] = {"gen_ai_server_time_to_first_token_seconds", "Time to the first streamed byte relayed to "
                "the client", ttft_bounds, NB(ttft_bounds), 1e-9, GENAI_MODEL, GENAI_PROVIDER, 0, GENAI_OP,
                V_OP, NULL, V_NONE},
    [H_OVERHEAD] = {"sluice_overhead_seconds", "Time spent in sluice per request, excluding upstream waits "
                    "and retry backoffs", overhead_bounds, NB(overhead_bounds), 1e-9, NULL, NULL, 0,
                    "surface", V_SURFACE, NULL, V_NONE},
};

/* Key layout: family 6 bits | entry+1 12 | provider+1 10 | key+1 14 |
 * a 6 | b 6. An index that does not fit is folded into the last value,
 * which no real spec reaches. */
static uint64_t field(int v, int bits)
{
    uint64_t max = (1u << bits) - 1;
    uint64_t u = v < 0 ? 0 : (uint64_t)v + 1;
    return u > max ? max : u;
}

static uint64_t pack(int fam, int entry, int provider, int key, int a, int b)
{
    return (uint64_t)fam << 58 | field(entry, 12) << 46 | field(provider, 10) << 36 | field(key, 14) << 22 |
           (uint64_t)(a & 63) << 16 | (uint64_t)(b & 63) << 10;
}

#define K_FAM(k) ((int)((k) >> 58))
#define K_ENTRY(k) ((int)(((k) >> 46) & 0xfff) - 1)
#define K_PROV(k) ((int)(((k) >> 36) & 0x3ff) - 1)
#define K_KEY(k) ((int)(((k) >> 22) & 0x3fff) - 1)
#define K_A(k) ((int)(((k) >> 16) & 63))
#define K_B(k) ((int)(((k) >> 10) & 63))

/* ---- shards ----------------------------------------------------------------- */

static const sl_table *table;
static sl_metrics_shard *_Atomic shards[SL_METRICS_MAX_SHARDS];

int sl_metrics_init(const sl_table *t)
{
    table = t;
    return 0;
}

void sl_metrics_shutdown(void)
{
    for (int i = 0; i < SL_METRICS_MAX_SHARDS; i++)
        free(atomic_exchange(&shards[i], NULL));
}

sl_metrics_shard *sl_metrics_shard_for(int id)
{
    if (id < 0 || id >= SL_METRICS_MAX_SHARDS)
        return NULL;
    sl_metrics_shard *s = atomic_load(&shards[id]);
    if (s)
        return s;
    s = calloc(1, sizeof *s);
    if (s)
        atomic_store(&shards[id], s);
    return s;
}

static inline void bump(_Atomic uint64_t *p, uint64_t d)
{
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + d, memory_order_relaxed);
}

static inline size_t slot_hash(uint64_t k, size_t cap)
{
    return (size_t)((k * 0x9E3779B97F4A7C15ull) >> 40) & (cap - 1);
}

static _Atomic uint64_t *counter(sl_metrics_shard *s, uint64_t k)
{
    for (size_t i = slot_hash(k, CSLOTS), n = 0; n < CSLOTS; n++, i = (i + 1) & (CSLOTS - 1)) {
        uint64_t have = atomic_load_explicit(&s->c[i].key, memory_order_relaxed);
        if (have == k)
            return &s->c[i].v;
        if (have == 0) {
            atomic_store_explicit(&s->c[i].key, k, memory_order_release);
            return &s->c[i].v;
        }
    }
    bump(&s->dropped, 1);
    return NULL;
}

static hslot *histogram(sl_metrics_shard *s, uint64_t k)
{
    for (size_t i = slot_hash(k, HSLOTS), n = 0; n < HSLOTS; n++, i = (i + 1) & (HSLOTS - 1)) {
        uint64_t have = atomic_load_explicit(&s->h[i].key, memory_order_relaxed);
        if (have == k)
            return &s->h[i];
        if (have == 0) {
            atomic_store_explicit(&s->h[i].key, k, memory_order_release);
            return &s->h[i];
        }
    }
    bump(&s->dropped, 1);
    return NULL;
}

static void count(sl_metrics_shard *s, uint64_t k, uint64_t d)
{
    _Atomic uint64_t *v = d ? counter(s, k) : NULL;
    if (v)
        bump(v, d);
}

static void observe(sl_metrics_shard *s, uint64_t k, double x)
{
    hslot *h = histogram(s, k);
    if (!h)
        return;
    const family *f = &families[K_FAM(k)];
    int i = 0;
    while (i < f->nb && x > f->bounds[i])
        i++;
    bump(&h->v[i < f->nb ? i : HB], 1);
    double units = x > 0 ? x / f->unit : 0;
    bump(&h->v[HB + 1], units < 1.8e19 ? (uint64_t)llround(units) : UINT64_MAX / 2);
}

void sl_metrics_request_begin(sl_metrics_shard *s)
{
    if (s)
        bump(&s->begun, 1);
}

void sl_metrics_request_end(sl_metrics_shard *s, const sl_metrics_request *r)
{
    if (!s)
        return;
    bump(&s->ended, 1);
    int e = r->entry, p = r->provider, key = r->key;
    int op = op_index(r->op, r->legacy);
    count(s, pack(F_REQUESTS, e, p, key, (int)r->surface, class_index(r->status)), 1);
    count(s, pack(F_RETRIES, e, -1, -1, 0, 0), (uint64_t)(r->retries > 0 ? r->retries : 0));
    count(s, pack(F_FALLBACKS, e, -1, -1, 0, 0), (uint64_t)(r->fallbacks > 0 ? r->fallbacks : 0));
    const int64_t tok[4] = {r->input, r->output, r->cache_read, r->cache_write};
    for (int i = 0; i < 4; i++)
        count(s, pack(F_TOKENS, e, p, key, i, 0), (uint64_t)(tok[i] > 0 ? tok[i] : 0));
    count(s, pack(F_COST, e, p, key, 0, 0), (uint64_t)(r->cost_micros > 0 ? r->cost_micros : 0));
    observe(s, pack(H_DURATION, e, p, -1, op, error_index(r->status)), r->duration_s);
    if (p >= 0 && (tok[0] > 0 || tok[1] > 0)) {
        /* OTel counts cached input as input. */
        observe(s, pack(H_TOKEN_USAGE, e, p, -1, op, 0), (double)(tok[0] + tok[2] + tok[3]));
        observe(s, pack(H_TOKEN_USAGE, e, p, -1, op, 1), (double)tok[1]);
    }
    if (r->stream && r->ttft_s >= 0)
        observe(s, pack(H_TTFT, e, p, -1, op, 0), r->ttft_s);
    observe(s, pack(H_OVERHEAD, -1, -1, -1, (int)r->surface, 0), r->overhead_s > 0 ? r->overhead_s : 0);
}

void sl_metrics_attempt(sl_metrics_shard *s, int entry, int provider, sl_metrics_result r)
{
    if (s)
        count(s, pack(F_ATTEMPTS, entry, provider, -1, (int)r, 0), 1);
}

void sl_metrics_refused(sl_metrics_shard *s, int key, sl_metrics_refusal why)
{
    if (s)
        count(s, pack(F_REFUSALS, -1, -1, key, (int)why, 0), 1);
}

int64_t sl_metrics_in_flight(void)
{
    int64_t n = 0;
    for (int i = 0; i < SL_METRICS_MAX_SHARDS; i++) {
        sl_metrics_shard *s = atomic_load(&shards[i]);
        if (s) /* ended first: a request is never seen ending before it began */
            n -= (int64_t)atomic_load_explicit(&s->ended, memory_order_relaxed),
            n += (int64_t)atomic_load_explicit(&s->begun, memory_order_relaxed);
    }
    return n > 0 ? n : 0;
}

/* ---- text format ------------------------------------------------------------- */

int sl_metrics_text_family(sl_buf *out, const char *name, const char *type, const char *help)
{
    return sl_buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

int sl_metrics_text_begin(sl_buf *out, const char *name)
{
    return sl_buf_append(out, name, strlen(name));
}

int sl_metrics_text_label(sl_buf *out, int *n, const char *label, const char *value)
{
    int rc = sl_buf_appendf(out, "%s%s=\"", *n ? "," : "{", label);
    for (const char *p = value ? value : ""; rc == 0 && *p; p++) {
        if (*p == '\\')
            rc = sl_buf_append(out, "\\\\", 2);
        else if (*p == '"')
            rc = sl_buf_append(out, "\\\"", 2);
        else if (*p == '\n')
            rc = sl_buf_append(out, "\\n", 2);
        else
            rc = sl_buf_append(out, p, 1);
    }
    (*n)++;
    return rc ? rc : sl_buf_append(out, "\"", 1);
}

int sl_metrics_text_end(sl_buf *out, int n, double v)
{
    if (n && sl_buf_append(out, "}", 1) != 0)
        return -1;
    if (v == (double)(int64_t)v && fabs(v) < 9e15)
        return sl_buf_appendf(out, " %" PRId64 "\n", (int64_t)v);
    return sl_buf_appendf(out, " %.12g\n", v);
}

/* ---- scrape ------------------------------------------------------------------- */

typedef struct series {
    uint64_t key;
    uint64_t v[HB + 2];
} series;

static int by_key(const void *a, const void *b)
{
    uint64_t x = ((const series *)a)->key, y = ((const series *)b)->key;
    return x < y ? -1 : x > y;
}

static const char *vocab_name(enum vocab v, int i)
{
#define PICK(arr) (i >= 0 && i < (int)(sizeof arr / sizeof *arr) ? arr[i] : "")
    switch (v) {
    case V_SURFACE: return PICK(surface_names);
    case V_CLASS: return PICK(class_names);
    case V_RESULT: return PICK(result_names);
    case V_TOKEN: return PICK(token_names);
    case V_GENAI_TOKEN: return i == 0 ? "input" : "output";
    case V_REASON: return PICK(reason_names);
    case V_OP: return PICK(op_names);
    case V_ERROR: {
        static char codes[N_ERR + 2][8];
        if (i == 0)
            return "";
        if (i > N_ERR)
            return "_OTHER";
        if (!codes[i][0]) /* same bytes from every thread: a benign fill */
            snprintf(codes[i], sizeof codes[i], "%d", error_codes[i - 1]);
        return codes[i];
    }
    default: return "";
    }
#undef PICK
}

static int labels(sl_buf *out, const family *f, uint64_t k, int *n)
{
    const sl_table *t = table;
    int rc = 0, e = K_ENTRY(k), p = K_PROV(k), key = K_KEY(k);
    if (f->entry)
        rc |= sl_metrics_text_label(out, n, f->entry,
                                    e >= 0 && t && (uint32_t)e < t->model_count ? t->models[e].name : "");
    if (f->provider)
        rc |= sl_metrics_text_label(out, n, f->provider,
                                    p >= 0 && t && (uint32_t)p < t->provider_count ? t->providers[p].name : "");
    if (f->key) {
        const sl_key *kk = key >= 0 && t && (uint32_t)key < t->key_count ? &t->keys[key] : NULL;
        rc |= sl_metrics_text_label(out, n, "key", kk ? kk->name : "");
        rc |= sl_metrics_text_label(out, n, "team", kk && kk->team >= 0 ? t->teams[kk->team].name : "");
    }
    if (f->a)
        rc |= sl_metrics_text_label(out, n, f->a, vocab_name(f->av, K_A(k)));
    if (f->b)
        rc |= sl_metrics_text_label(out, n, f->b, vocab_name(f->bv, K_B(k)));
    return rc;
}

static int render_series(sl_buf *out, const family *f, const series *s)
{
    int rc = 0, n = 0;
    if (!f->bounds) {
        rc |= sl_metrics_text_begin(out, f->name);
        rc |= labels(out, f, s->key, &n);
        if (f->unit == 1e-6) /* money: exact decimal from micro-USD */
            return rc | sl_buf_appendf(out, "%s %" PRIu64 ".%06" PRIu64 "\n", n ? "}" : "", s->v[0] / 1000000,
                                       s->v[0] % 1000000);
        return rc | sl_metrics_text_end(out, n, (double)s->v[0]);
    }
    char name[128];
    uint64_t cum = 0;
    for (int i = 0; i <= f->nb; i++) {
        cum += s->v[i < f->nb ? i : HB];
        char le[32];
        if (i < f->nb)
            snprintf(le, sizeof le, "%.9g", f->bounds[i]);
        else
            snprintf(le, sizeof le, "+Inf");
        snprintf(name, sizeof name, "%s_bucket", f->name);
        n = 0;
        rc |= sl_metrics_text_begin(out, name);
        rc |= labels(out, f, s->key, &n);
        rc |= sl_metrics_text_label(out, &n, "le", le);
        rc |= sl_metrics_text_end(out, n, (double)cum);
    }
    snprintf(name, sizeof name, "%s_sum", f->name);
    n = 0;
    rc |= sl_metrics_text_begin(out, name);
    rc |= labels(out, f, s->key, &n);
    rc |= sl_metrics_text_end(out, n, (double)s->v[HB + 1] * f->unit);
    snprintf(name, sizeof name, "%s_count", f->name);
    n = 0;
    rc |= sl_metrics_text_begin(out, name);
    rc |= labels(out, f, s->key, &n);
    return rc | sl_metrics_text_end(out, n, (double)cum);
}

/* Copies every live slot of every shard. */
static series *collect(size_t *len, uint64_t *dropped)
{
    size_t cap = 256, n = 0;
    series *all = malloc(cap * sizeof *all);
    *dropped = 0;
    if (!all)
        return NULL;
    for (int w = 0; w < SL_METRICS_MAX_SHARDS; w++) {
        sl_metrics_shard *s = atomic_load(&shards[w]);
        if (!s)
            continue;
        *dropped += atomic_load_explicit(&s->dropped, memory_order_relaxed);
        for (size_t i = 0; i < CSLOTS + HSLOTS; i++) {
            int hist = i >= CSLOTS;
            _Atomic uint64_t *kp = hist ? &s->h[i - CSLOTS].key : &s->c[i].key;
            uint64_t k = atomic_load_explicit(kp, memory_order_acquire);
            if (!k)
                continue;
            if (n == cap) {
                series *g = realloc(all, 2 * cap * sizeof *all);
                if (!g) {
                    free(all);
                    return NULL;
                }
                all = g;
                cap *= 2;
            }
            series *o = &all[n++];
            memset(o, 0, sizeof *o);
            o->key = k;
            if (hist)
                for (int j = 0; j < HB + 2; j++)
                    o->v[j] = atomic_load_explicit(&s->h[i - CSLOTS].v[j], memory_order_relaxed);
            else
                o->v[0] = atomic_load_explicit(&s->c[i].v, memory_order_relaxed);
        }
    }
    *len = n;
    return all;
}

int sl_metrics_render(sl_buf *out)
{
    size_t n;
    uint64_t dropped;
    series *all = collect(&n, &dropped);
    if (!all)
        return -1;
    qsort(all, n, sizeof *all, by_key);
    /* Merge the shards' copies of one series. */
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (m && all[m - 1].key == all[i].key) {
            for (int j = 0; j < HB + 2; j++)
                all[m - 1].v[j] += all[i].v[j];
        } else {
            all[m++] = all[i];
        }
    }
    int rc = 0;
    size_t i = 0;
    for (int fam = 1; fam < F_COUNT; fam++) {
        const family *f = &families[fam];
        rc |= sl_metrics_text_family(out, f->name, f->bounds ? "histogram" : "counter", f->help);
        for (; i < m && K_FAM(all[i].key) == fam; i++)
            rc |= render_series(out, f, &all[i]);
    }
    free(all);
    rc |= sl_metrics_text_family(out, "sluice_metrics_series_dropped_total", "counter",
                                 "Observations lost because a worker's series table was full");
    rc |= sl_metrics_text_begin(out, "sluice_metrics_series_dropped_total");
    rc |= sl_metrics_text_end(out, 0, (double)dropped);
    return rc ? -1 : 0;
}
