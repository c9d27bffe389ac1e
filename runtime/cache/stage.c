/*
 * The cache stage of the request path (see cache.h): lookup between
 * routing and admission, so a hit is never admitted and costs nothing
 * against budgets or rate limits; recording of streams as the relay's
 * last filter; storing at the one finish, after accounting, so the entry
 * knows what the answer cost and a hit can report the saving.
 *
 * The client decides per request: `x-sluice-cache: bypass` skips the
 * cache both ways, `Cache-Control: no-store` likewise, `Cache-Control:
 * no-cache` asks upstream but stores the fresh answer. Every answer under
 * a cache rule says what happened in `x-sluice-cache: hit|miss|bypass`.
 */
#include "cache/cache.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cache/rule.h"
#include "core/log.h"
#include "core/membudget.h"
#include "metrics/metrics.h"
#include "proxy/exchange.h"
#include "proxy/relay.h"

typedef struct sl_cache_req {
    sl_exchange *x;
    int rule;
    uint8_t key[SL_CACHE_KEY_LEN];
    sl_buf rec;           /* a stream's client bytes so far */
    size_t charged;       /* rec's bytes charged to the memory budget */
    size_t cap;
    int rec_failed;       /* too large or no memory: this answer is not stored */
    /* Semantic rules: the embeddings call, then the prompt's vector. */
    sl_cache_embed *embed;
    void (*serve)(sl_exchange *x);
    sl_cache_vec vec;     /* vec.v malloc'd, NULL until known */
    int refresh;          /* Cache-Control: no-cache: store, never serve */
} sl_cache_req;

/* ---- the stores, one per rule, made on first use ---------------------------- */

static const sl_table *stores_table;
static sl_cache_store **stores;
static pthread_once_t stores_once = PTHREAD_ONCE_INIT;

static void stores_make(void)
{
    const sl_table *t = __atomic_load_n(&stores_table, __ATOMIC_ACQUIRE);
    stores = calloc(t->cache_rule_count ? t->cache_rule_count : 1, sizeof *stores);
    for (uint32_t i = 0; stores && i < t->cache_rule_count; i++)
        if (t->cache_rules[i].mode != SL_CACHE_OFF)
            stores[i] = sl_cache_store_new(t->cache_rules[i].max_bytes, t->cache_rules[i].ttl_ms);
}

static sl_cache_store *store_of(const sl_table *t, int rule)
{
    /* Every caller passes the one compiled table. */
    __atomic_store_n(&stores_table, t, __ATOMIC_RELEASE);
    pthread_once(&stores_once, stores_make);
    return stores ? stores[rule] : NULL;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- lookup ------------------------------------------------------------------ */

static void req_cleanup(void *p)
{
    sl_cache_req *q = p;
    sl_cache_embed_free(q->embed);
    q->embed = NULL;
    free((void *)q->vec.v);
    q->vec.v = NULL;
    sl_buf_free(&q->rec);
    sl_membudget_release(q->charged);
    q->charged = 0;
}

static int header_has(const sl_http_request *req, const char *name, const char *word)
{
    const sl_http_header *h = sl_http_find_header(req, name);
    if (!h)
        return 0;
    size_t wl = strlen(word);
    for (size_t i = 0; i + wl <= h->value_len; i++)
        if (strncasecmp(h->value + i, word, wl) == 0)
            return 1;
    return 0;
}

/* The exchange's exact key under rule ri, or (without_prompt) its
 * semantic context. */
static int key_of(const sl_exchange *x, int ri, int without_prompt, uint8_t out[SL_CACHE_KEY_LEN])
{
    const sl_cache_rule *rule = &x->t->cache_rules[ri];
    size_t alt_len = 0;
    const char *alt = x->op == SL_OP_GENERATE ? sl_http_query_param(x->req, "alt", &alt_len) : NULL;
    sl_cache_key_in in = {
        .rule = (uint32_t)ri, .entry = x->entry, .client_model = x->client_model, .op = x->op,
        .surface = x->surface, .legacy = x->legacy, .stream = x->stream,
        .scope = rule->shared || x->key < 0 ? "" : x->t->keys[x->key].name, .alt = alt, .alt_len = alt_len,
        .body = x->json, .without_prompt = without_prompt,
    };
    return sl_cache_key(&in, out);
}

/* A stream replayed at the client's pace: pieces of up to REPLAY_PIECE
 * bytes cut after an event's blank line, written while the connection
 * holds less than its high-water mark, the rest when it drains, so a
 * large answer to many slow clients does not pile up in their buffers.
 * The entry stays held (an eviction meanwhile frees nothing) until the
 * exchange's arena is reset. */
#define REPLAY_PIECE 16384

typedef struct replay_st {
    sl_exchange *x;
    const sl_cache_entry *e;
    size_t off;
    int pumping, failed; /* failed: no more writes (client gone, or done) */
} replay_st;

static void replay_release(void *p)
{
    replay_st *r = p;
    sl_cache_entry_release(r->e);
    r->e = NULL;
}

static void replay_abort(void *p)
{
    replay_st *r = p;
    sl_finish f = {.kind = SL_FINISH_GONE, .status = 499, .delivered = r->off};
    sl_exchange_finish(r->x, &f);
}

static void replay_pump(void *p)
{
    replay_st *r = p;
    if (r->pumping || r->failed)
        return; /* a write drained at once and called back: the loop below goes on */
    r->pumping = 1;
    sl_exchange *x = r->x;
    size_t len;
    const char *d = sl_cache_entry_data(r->e, &len);
    while (r->off < len && sl_conn_out_pending(x->conn) <= SL_CONN_HIGH_WATER) {
        size_t n = len - r->off;
        if (n > REPLAY_PIECE) {
            n = REPLAY_PIECE;
            while (n > 2 && !(d[r->off + n - 1] == '\n' && d[r->off + n - 2] == '\n'))
                n--;
            if (n <= 2)
                n = REPLAY_PIECE; /* one event longer than a piece */
        }
        if (sl_conn_stream_write(x->conn, d + r->off, n) != 0) {
            r->failed = 1; /* the client is gone: its abort hook finishes */
            r->pumping = 0;
            return;
        }
        r->off += n;
    }
    r->pumping = 0;
    if (r->off == len) {
        /* Ending the stream flushes, which may call this hook again. */
        r->failed = 1;
        const sl_cache_meta *m = sl_cache_entry_meta(r->e);
        sl_finish f = {.kind = SL_FINISH_STREAM_END, .status = m->status, .delivered = len, .complete = 1};
        sl_exchange_finish(x, &f);
    }
}

static const sl_conn_hooks replay_hooks = {replay_abort, replay_pump};

/* The answer from an entry: its bytes as first relayed, sluice's headers
 * with x-sluice-cache: hit. The entry stays held by the caller until this
 * returns; a stream takes its own hold. */
static void replay(sl_exchange *x, const sl_cache_entry *e)
{
    const sl_cache_meta *m = sl_cache_entry_meta(e);
    size_t len;
    const char *data = sl_cache_entry_data(e, &len);
    x->cache_hit = 1;
    x->cache_result = "hit";
    x->cache_saved = m->cost_micros;
    if (m->provider >= 0 && (uint32_t)m->provider < x->t->provider_count) {
        x->prov = &x->t->providers[m->provider];
        x->upstream_model = sl_arena_strndup(x->arena, m->upstream_model, strlen(m->upstream_model));
    }
    const char *headers = sl_arena_printf(
        x->arena, "x-sluice-model: %s\r\nx-sluice-provider: %s\r\nx-sluice-attempts: 0\r\n%s%s",
        x->t->models[x->entry].name, x->prov ? x->prov->name : "-", x->dropped_tools ? x->dropped_tools : "",
        x->cache_header);
    x->ttfb_ms = (ev_time() - x->started) * 1000.0;
    if (!m->stream) {
        char *body = malloc(len ? len : 1);
        if (!body) {
            sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
            return;
        }
        memcpy(body, data, len);
        sl_finish f = {.kind = SL_FINISH_RESPOND, .status = m->status, .ctype = m->ctype, .headers = headers,
                       .body = body, .len = len, .delivered = len, .complete = 1};
        sl_exchange_finish(x, &f);
        return;
    }
    replay_st *r = sl_arena_alloc(x->arena, sizeof *r);
    if (!r || sl_arena_on_reset(x->arena, replay_release, r) != 0) {
        sl_exchange_fail(x, 503, "overloaded", "Retry-After: 1\r\n", "out of memory; retry shortly");
        return;
    }
    *r = (replay_st){.x = x, .e = e};
    sl_cache_entry_hold(e);
    x->streaming = 1;
    sl_conn_set_exchange(x->conn, r, &replay_hooks);
    if (sl_conn_stream_begin(x->conn, m->status, m->ctype, headers) != 0) {
        r->failed = 1; /* the abort hook finishes */
        return;
    }
    replay_pump(r);
}

static void embedded(void *ctx, const float *v, uint32_t dim, const char *why);
static int semantic_begin(sl_exchange *x, sl_cache_req *q, const sl_cache_rule *rule, void (*serve)(sl_exchange *));

static int lookup(sl_exchange *x, void (*serve)(sl_exchange *x))
{
    if (x->op != SL_OP_CHAT && x->op != SL_OP_MESSAGES && x->op != SL_OP_GENERATE && x->op != SL_OP_RESPONSES)
        return 0;
    const sl_table *t = x->t;
    int ri = sl_cache_rule_for(t, x->entry, x->key);
    if (ri < 0)
        return 0;
    const sl_cache_rule *rule = &t->cache_rules[ri];
    sl_cache_store *s = store_of(t, ri);
    if (!s)
        return 0;
    int bypass = header_has(x->req, "x-sluice-cache", "bypass") || header_has(x->req, "cache-control", "no-store");
    int refresh = header_has(x->req, "cache-control", "no-cache");
    if (!rule->allow_temperature && !sl_cache_temperature_zero(x->json, x->op))
        bypass = 1;
    if (bypass || refresh) {
        x->cache_header = "x-sluice-cache: bypass\r\n";
        x->cache_result = "bypass";
        sl_cache_count_bypass(s);
        if (bypass)
            return 0;
    }
    sl_cache_req *q = sl_arena_alloc(x->arena, sizeof *q);
    if (!q)
        return 0;
    memset(q, 0, sizeof *q);
    q->x = x;
    q->rule = ri;
    q->cap = sl_cache_store_max_entry(s);
    if (key_of(x, ri, 0, q->key) != 0 || sl_arena_on_reset(x->arena, req_cleanup, q) != 0)
        return 0;
    x->cache = q;
    if (refresh) {
        /* Upstream answers; a semantic rule still wants the prompt's
         * vector to store with it. */
        q->refresh = 1;
        return rule->mode == SL_CACHE_SEMANTIC && semantic_begin(x, q, rule, serve);
    }
    const sl_cache_entry *e = sl_cache_get(s, q->key, now_ms());
    if (!e) {
        x->cache_header = "x-sluice-cache: miss\r\n";
        x->cache_result = "miss";
        if (rule->mode == SL_CACHE_SEMANTIC && semantic_begin(x, q, rule, serve))
            return 1; /* embedded() counts the outcome */
        sl_cache_count_miss(s);
        return 0;
    }
    x->cache = NULL; /* nothing to store */
    x->cache_header = rule->mode == SL_CACHE_SEMANTIC ? "x-sluice-cache: hit\r\nx-sluice-cache-similarity: 1.0000\r\n"
                                                      : "x-sluice-cache: hit\r\n";
    replay(x, e);
    sl_cache_entry_release(e);
    return 1;
}

/* ---- semantic lookup ------------------------------------------------------------ */

static void wait_abort(void *ex)
{
    sl_exchange *x = ex;
    if (x->cache) {
        sl_cache_embed_free(x->cache->embed);
        x->cache->embed = NULL;
    }
    sl_finish f = {.kind = SL_FINISH_GONE, .status = 499};
    sl_exchange_finish(x, &f);
}

static const sl_conn_hooks wait_hooks = {wait_abort, NULL};

/* After an exact miss: the prompt's embedding, then the nearest answer.
 * 1 while waiting; 0 to go on at once (no text, or the call could not
 * start: then the answer is stored without a vector). */
static int semantic_begin(sl_exchange *x, sl_cache_req *q, const sl_cache_rule *rule, void (*serve)(sl_exchange *))
{
    sl_buf text = {0};
    if (key_of(x, q->rule, 1, q->vec.ctx) != 0 || sl_cache_prompt_text(x->json, &text) != 0 || text.len == 0) {
        sl_buf_free(&text);
        return 0;
    }
    q->serve = serve;
    q->embed = sl_cache_embed_start(x, (uint32_t)rule->sem_provider, rule->sem_model, text.data, text.len,
                                    embedded, q);
    sl_buf_free(&text);
    if (!q->embed)
        return 0;
    x->wait_started = ev_time(); /* an upstream wait, not sluice's overhead */
    sl_conn_set_exchange(x->conn, x, &wait_hooks);
    return 1;
}

static void embedded(void *ctx, const float *v, uint32_t dim, const char *why)
{
    sl_cache_req *q = ctx;
    sl_exchange *x = q->x;
    sl_cache_embed_free(q->embed);
    q->embed = NULL;
    x->waited_s += ev_time() - x->wait_started;
    x->wait_started = 0;
    const sl_cache_rule *rule = &x->t->cache_rules[q->rule];
    sl_cache_store *s = store_of(x->t, q->rule);
    if (s)
        sl_cache_count_embedding(s, v != NULL);
    if (!v) {
        sl_log_warn("cache: embeddings from provider '%s' failed (%s); the answer is cached for exact repeats only",
                    x->t->providers[rule->sem_provider].name, why);
    } else {
        float *copy = malloc(dim * sizeof *copy);
        if (copy) {
            memcpy(copy, v, dim * sizeof *copy);
            q->vec.v = copy;
            q->vec.dim = dim;
        }
        double sim = 0;
        const sl_cache_entry *e =
            s && copy && !q->refresh ? sl_cache_nearest(s, &q->vec, rule->threshold, now_ms(), &sim) : NULL;
        if (e) {
            x->cache = NULL;
            x->cache_header = sl_arena_printf(x->arena, "x-sluice-cache: hit\r\nx-sluice-cache-similarity: %.4f\r\n",
                                              sim);
            if (!x->cache_header)
                x->cache_header = "x-sluice-cache: hit\r\n";
            replay(x, e);
            sl_cache_entry_release(e);
            return;
        }
    }
    if (s && !q->refresh)
        sl_cache_count_miss(s);
    q->serve(x);
}

/* ---- recording and storing ------------------------------------------------------ */

/* Passes the client's bytes on as they are and keeps a copy, up to the
 * store's largest entry and the process memory budget; past either it
 * stops recording, never the stream. */
static int record_feed(void *st, const char *p, size_t n, sl_buf *out)
{
    sl_cache_req *q = st;
    (void)out;
    if (q->rec_failed)
        return SL_FILTER_UNCHANGED;
    if (q->rec.len + n > q->cap || sl_membudget_reserve(n) != 0) {
        q->rec_failed = 1;
        sl_buf_free(&q->rec);
        sl_membudget_release(q->charged);
        q->charged = 0;
        return SL_FILTER_UNCHANGED;
    }
    q->charged += n;
    if (sl_buf_append(&q->rec, p, n) != 0)
        q->rec_failed = 1;
    return SL_FILTER_UNCHANGED;
}

static int stream_filter(sl_exchange *x, struct sl_filter *f)
{
    if (!x->cache)
        return -1;
    sl_buf_clear(&x->cache->rec); /* a new try starts a new recording */
    *f = (sl_filter){"cache", 0, record_feed, NULL, x->cache};
    return 0;
}

static void finish(sl_exchange *x, const sl_finish *f, int64_t cost_micros)
{
    sl_cache_req *q = x->cache;
    x->cache = NULL; /* one answer per exchange */
    if (!q || x->cache_hit || !f->complete || f->status < 200 || f->status > 299)
        return;
    sl_cache_store *s = store_of(x->t, q->rule);
    sl_cache_meta m = {.status = f->status, .provider = x->prov ? (int32_t)(x->prov - x->t->providers) : -1,
                       .cost_micros = cost_micros};
    snprintf(m.upstream_model, sizeof m.upstream_model, "%s", x->upstream_model ? x->upstream_model : "");
    const char *data;
    size_t len;
    if (f->kind == SL_FINISH_STREAM_END) {
        if (q->rec_failed)
            return;
        m.stream = 1;
        /* The content type forward.c began the stream with. */
        snprintf(m.ctype, sizeof m.ctype, "%s",
                 x->relay.xl || !x->content_type ? "text/event-stream" : x->content_type);
        data = q->rec.data ? q->rec.data : "";
        len = q->rec.len;
    } else if (f->kind == SL_FINISH_RESPOND) {
        snprintf(m.ctype, sizeof m.ctype, "%s", f->ctype ? f->ctype : "application/json");
        data = f->body ? f->body : "";
        len = f->len;
    } else {
        return;
    }
    if (s && sl_cache_put(s, q->key, &m, data, len, q->vec.v ? &q->vec : NULL, now_ms()) != 0)
        sl_log(SL_LOG_DEBUG, "cache: answer of %zu bytes not stored (larger than a quarter of max_bytes, or no memory)",
                     len);
}

/* ---- metrics ------------------------------------------------------------------------ */

static int metrics(sl_buf *o, const sl_table *t)
{
    static const struct {
        const char *name, *type, *help;
    } fam[] = {
        {"sluice_cache_requests_total", "counter", "Requests under a cache rule, by result (hit, miss, bypass)"},
        {"sluice_cache_evictions_total", "counter", "Cached answers removed, by reason (lru: for room, ttl: expired)"},
        {"sluice_cache_bytes", "gauge", "Bytes the cache holds (answers and per-entry overhead)"},
        {"sluice_cache_entries", "gauge", "Answers the cache holds"},
        {"sluice_cache_embeddings_total", "counter", "Semantic lookups' embeddings calls, by result (ok, error)"},
    };
    int rc = 0;
    sl_cache_stats st[t->cache_rule_count ? t->cache_rule_count : 1];
    for (uint32_t i = 0; i < t->cache_rule_count; i++) {
        sl_cache_store *s = t->cache_rules[i].mode != SL_CACHE_OFF ? store_of(t, (int)i) : NULL;
        memset(&st[i], 0, sizeof st[i]);
        if (s)
            sl_cache_store_stats(s, now_ms(), &st[i]);
    }
    for (size_t f = 0; f < sizeof fam / sizeof fam[0]; f++) {
        rc |= sl_metrics_text_family(o, fam[f].name, fam[f].type, fam[f].help);
        for (uint32_t i = 0; i < t->cache_rule_count; i++) {
            const sl_cache_rule *r = &t->cache_rules[i];
            if (r->mode == SL_CACHE_OFF)
                continue;
            const char *name = r->of_key ? t->keys[r->owner].name : t->models[r->owner].name;
            if (f == 4 && r->mode != SL_CACHE_SEMANTIC)
                continue;
            static const char *const results[] = {"hit", "miss", "bypass"}, *const reasons[] = {"lru", "ttl"},
                                     *const outcomes[] = {"ok", "error"};
            const uint64_t counts[] = {st[i].hits, st[i].misses, st[i].bypasses};
            const uint64_t evicted[] = {st[i].evicted_lru, st[i].evicted_ttl};
            const uint64_t embedded[] = {st[i].embeddings_ok, st[i].embeddings_failed};
            size_t nv = f == 0 ? 3 : f == 1 || f == 4 ? 2 : 1;
            for (size_t v = 0; v < nv; v++) {
                int n = 0;
                rc |= sl_metrics_text_begin(o, fam[f].name);
                rc |= sl_metrics_text_label(o, &n, "scope", r->of_key ? "key" : "model");
                rc |= sl_metrics_text_label(o, &n, "name", name);
                if (f == 0)
                    rc |= sl_metrics_text_label(o, &n, "result", results[v]);
                if (f == 1)
                    rc |= sl_metrics_text_label(o, &n, "reason", reasons[v]);
                if (f == 4)
                    rc |= sl_metrics_text_label(o, &n, "result", outcomes[v]);
                double val = f == 0 ? (double)counts[v] : f == 1 ? (double)evicted[v]
                             : f == 2 ? (double)st[i].bytes : f == 3 ? (double)st[i].entries
                                                                   : (double)embedded[v];
                rc |= sl_metrics_text_end(o, n, val);
            }
        }
    }
    return rc;
}

const sl_cache_ops sl_cache_module_ops = {lookup, stream_filter, finish, metrics};
