/*
 * One cache store (see cache.h): a chained hash table over the keys, a
 * recency list for LRU eviction and an insertion list for expiry. Every
 * entry of a store lives the same TTL, so insertion order is expiry
 * order and expired entries are dropped from the head of that list on
 * every call: expired answers never hold bytes for long, whatever their
 * recency. Entries are reference-counted so a hit is replayed outside
 * the lock and an eviction meanwhile frees nothing in use.
 */
#include "cache/cache.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* What an entry costs beyond its bytes, for the byte cap. */
#define ENTRY_OVERHEAD (sizeof(struct sl_cache_entry) + 16)

struct sl_cache_entry {
    uint8_t key[SL_CACHE_KEY_LEN];
    struct sl_cache_entry *hnext;          /* hash chain */
    struct sl_cache_entry *lprev, *lnext;  /* recency: head most recent */
    struct sl_cache_entry *fprev, *fnext;  /* insertion: head newest */
    int64_t expires_ms;
    int refs;                              /* the store's one, plus readers */
    sl_cache_meta meta;
    uint8_t ctx[SL_CACHE_KEY_LEN];         /* semantic index, when dim > 0 */
    float *vec;                            /* unit length, inside this allocation */
    uint32_t dim;
    size_t len;
    size_t size;                           /* counted against max_bytes */
    char data[];
};

typedef struct list {
    sl_cache_entry *head, *tail;
} list;

struct sl_cache_store {
    pthread_mutex_t mu;
    uint64_t max_bytes;
    uint32_t ttl_ms;
    sl_cache_entry **buckets;
    size_t nbuckets;
    list lru, fifo;
    sl_cache_stats st;
    uint64_t bypasses, misses, embed_ok, embed_failed; /* atomic: counted without the lock */
};

sl_cache_store *sl_cache_store_new(uint64_t max_bytes, uint32_t ttl_ms)
{
    sl_cache_store *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->nbuckets = 256;
    s->buckets = calloc(s->nbuckets, sizeof *s->buckets);
    if (!s->buckets) {
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->max_bytes = max_bytes;
    s->ttl_ms = ttl_ms;
    return s;
}

static void unref(sl_cache_entry *e)
{
    if (__atomic_sub_fetch(&e->refs, 1, __ATOMIC_ACQ_REL) == 0)
        free(e);
}

void sl_cache_store_free(sl_cache_store *s)
{
    if (!s)
        return;
    for (sl_cache_entry *e = s->fifo.head, *n; e; e = n) {
        n = e->fnext;
        unref(e);
    }
    free(s->buckets);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

size_t sl_cache_store_max_entry(const sl_cache_store *s)
{
    uint64_t m = s->max_bytes / 4;
    return m > ENTRY_OVERHEAD ? (size_t)(m - ENTRY_OVERHEAD) : 0;
}

static size_t bucket(const sl_cache_store *s, const uint8_t *key)
{
    size_t h;
    memcpy(&h, key, sizeof h); /* SHA-256 bytes: already uniform */
    return h & (s->nbuckets - 1);
}

#define LINK(l, e, P, N)                                                                          \
    do {                                                                                          \
        (e)->P = NULL;                                                                            \
        (e)->N = (l)->head;                                                                       \
        if ((l)->head)                                                                            \
            (l)->head->P = (e);                                                                   \
        else                                                                                      \
            (l)->tail = (e);                                                                      \
        (l)->head = (e);                                                                          \
    } while (0)
#define UNLINK(l, e, P, N)                                                                        \
    do {                                                                                          \
        if ((e)->P)                                                                               \
            (e)->P->N = (e)->N;                                                                   \
        else                                                                                      \
            (l)->head = (e)->N;                                                                   \
        if ((e)->N)                                                                               \
            (e)->N->P = (e)->P;                                                                   \
        else                                                                                      \
            (l)->tail = (e)->P;                                                                   \
    } while (0)

/* The insertion list keeps the newest at its head, so the oldest is its
 * tail; the recency list likewise. */
static void drop(sl_cache_store *s, sl_cache_entry *e)
{
    sl_cache_entry **pp = &s->buckets[bucket(s, e->key)];
    while (*pp != e)
        pp = &(*pp)->hnext;
    *pp = e->hnext;
    UNLINK(&s->lru, e, lprev, lnext);
    UNLINK(&s->fifo, e, fprev, fnext);
    s->st.bytes -= e->size;
    s->st.entries--;
    unref(e);
}

static void expire(sl_cache_store *s, int64_t now_ms)
{
    while (s->fifo.tail && s->fifo.tail->expires_ms <= now_ms) {
        drop(s, s->fifo.tail);
        s->st.evicted_ttl++;
    }
}

static sl_cache_entry *find(sl_cache_store *s, const uint8_t *key)
{
    for (sl_cache_entry *e = s->buckets[bucket(s, key)]; e; e = e->hnext)
        if (memcmp(e->key, key, SL_CACHE_KEY_LEN) == 0)
            return e;
    return NULL;
}

const sl_cache_entry *sl_cache_get(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], int64_t now_ms)
{
    pthread_mutex_lock(&s->mu);
    expire(s, now_ms);
    sl_cache_entry *e = find(s, key);
    if (e) {
        UNLINK(&s->lru, e, lprev, lnext);
        LINK(&s->lru, e, lprev, lnext);
        __atomic_add_fetch(&e->refs, 1, __ATOMIC_RELAXED);
        s->st.hits++;
    }
    pthread_mutex_unlock(&s->mu);
    return e;
}

void sl_cache_entry_hold(const sl_cache_entry *e)
{
    __atomic_add_fetch(&((sl_cache_entry *)e)->refs, 1, __ATOMIC_RELAXED);
}

void sl_cache_entry_release(const sl_cache_entry *e)
{
    if (e)
        unref((sl_cache_entry *)e);
}

const sl_cache_meta *sl_cache_entry_meta(const sl_cache_entry *e)
{
    return &e->meta;
}

const char *sl_cache_entry_data(const sl_cache_entry *e, size_t *len)
{
    *len = e->len;
    return e->data;
}

/* Doubles the table when it holds more entries than buckets; a failed
 * growth only lengthens chains. */
static void grow(sl_cache_store *s)
{
    if (s->st.entries <= s->nbuckets)
        return;
    size_t n = s->nbuckets * 2;
    sl_cache_entry **b = calloc(n, sizeof *b);
    if (!b)
        return;
    sl_cache_entry **old = s->buckets;
    size_t on = s->nbuckets;
    s->buckets = b;
    s->nbuckets = n;
    for (size_t i = 0; i < on; i++)
        for (sl_cache_entry *e = old[i], *next; e; e = next) {
            next = e->hnext;
            size_t k = bucket(s, e->key);
            e->hnext = b[k];
            b[k] = e;
        }
    free(old);
}

int sl_cache_put(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], const sl_cache_meta *m,
                 const char *data, size_t len, const sl_cache_vec *vec, int64_t now_ms)
{
    uint32_t dim = vec && vec->v ? vec->dim : 0;
    size_t vec_at = (len + sizeof(float) - 1) / sizeof(float) * sizeof(float);
    size_t extra = vec_at - len + (size_t)dim * sizeof(float);
    if (len + extra > sl_cache_store_max_entry(s))
        return -1;
    sl_cache_entry *e = malloc(sizeof *e + len + extra);
    if (!e)
        return -1;
    memset(e, 0, sizeof *e);
    memcpy(e->key, key, SL_CACHE_KEY_LEN);
    e->meta = *m;
    e->len = len;
    e->size = len + extra + ENTRY_OVERHEAD;
    memcpy(e->data, data, len);
    if (dim) {
        /* Stored at unit length, so similarity is a dot product. */
        e->vec = (float *)(void *)(e->data + vec_at);
        e->dim = dim;
        memcpy(e->ctx, vec->ctx, SL_CACHE_KEY_LEN);
        double n2 = 0;
        for (uint32_t i = 0; i < dim; i++)
            n2 += (double)vec->v[i] * vec->v[i];
        double inv = n2 > 0 ? 1.0 / sqrt(n2) : 0;
        for (uint32_t i = 0; i < dim; i++)
            e->vec[i] = (float)(vec->v[i] * inv);
    }
    e->refs = 1;
    e->expires_ms = now_ms + s->ttl_ms;
    pthread_mutex_lock(&s->mu);
    expire(s, now_ms);
    sl_cache_entry *old = find(s, key);
    if (old)
        drop(s, old);
    while (s->lru.tail && s->st.bytes + e->size > s->max_bytes) {
        drop(s, s->lru.tail);
        s->st.evicted_lru++;
    }
    size_t k = bucket(s, key);
    e->hnext = s->buckets[k];
    s->buckets[k] = e;
    LINK(&s->lru, e, lprev, lnext);
    LINK(&s->fifo, e, fprev, fnext);
    s->st.bytes += e->size;
    s->st.entries++;
    s->st.stored++;
    grow(s);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

const sl_cache_entry *sl_cache_nearest(sl_cache_store *s, const sl_cache_vec *v, double threshold, int64_t now_ms,
                                       double *sim)
{
    double n2 = 0;
    for (uint32_t i = 0; i < v->dim; i++)
        n2 += (double)v->v[i] * v->v[i];
    if (n2 <= 0)
        return NULL;
    double inv = 1.0 / sqrt(n2), best_sim = -2;
    sl_cache_entry *best = NULL;
    pthread_mutex_lock(&s->mu);
    expire(s, now_ms);
    for (sl_cache_entry *e = s->lru.head; e; e = e->lnext) {
        if (e->dim != v->dim || memcmp(e->ctx, v->ctx, SL_CACHE_KEY_LEN) != 0)
            continue;
        double dot = 0;
        for (uint32_t i = 0; i < v->dim; i++)
            dot += (double)e->vec[i] * v->v[i];
        dot *= inv;
        if (dot > best_sim) {
            best_sim = dot;
            best = e;
        }
    }
    if (best && best_sim >= threshold) {
        UNLINK(&s->lru, best, lprev, lnext);
        LINK(&s->lru, best, lprev, lnext);
        __atomic_add_fetch(&best->refs, 1, __ATOMIC_RELAXED);
        s->st.hits++;
        *sim = best_sim > 1 ? 1 : best_sim;
    } else {
        best = NULL;
    }
    pthread_mutex_unlock(&s->mu);
    return best;
}

void sl_cache_count_bypass(sl_cache_store *s)
{
    __atomic_add_fetch(&s->bypasses, 1, __ATOMIC_RELAXED);
}

void sl_cache_count_embedding(sl_cache_store *s, int ok)
{
    __atomic_add_fetch(ok ? &s->embed_ok : &s->embed_failed, 1, __ATOMIC_RELAXED);
}

void sl_cache_count_miss(sl_cache_store *s)
{
    __atomic_add_fetch(&s->misses, 1, __ATOMIC_RELAXED);
}

void sl_cache_store_stats(sl_cache_store *s, int64_t now_ms, sl_cache_stats *out)
{
    pthread_mutex_lock(&s->mu);
    expire(s, now_ms);
    *out = s->st;
    pthread_mutex_unlock(&s->mu);
    out->bypasses = __atomic_load_n(&s->bypasses, __ATOMIC_RELAXED);
    out->misses = __atomic_load_n(&s->misses, __ATOMIC_RELAXED);
    out->embeddings_ok = __atomic_load_n(&s->embed_ok, __ATOMIC_RELAXED);
    out->embeddings_failed = __atomic_load_n(&s->embed_failed, __ATOMIC_RELAXED);
}
