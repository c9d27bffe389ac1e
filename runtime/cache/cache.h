/*
 * Response caching: the module's parts and the one door the request path
 * uses. The proxy reaches the module only through t->cache_ops, which
 * only a table generated from a spec with `cache:` points at
 * sl_cache_module_ops, so a gateway without caching links none of this.
 *
 * What is cached: the answer as the client received it (status, content
 * type, body bytes; for a stream, every event byte as relayed), keyed by a
 * SHA-256 of the normalized request that includes the client's protocol,
 * the endpoint and stream-ness. A hit replays those bytes unchanged, so a
 * stream replays byte for byte and no translator runs again; the price is
 * that one question asked over two protocols is stored twice.
 *
 * Where: one store per cache rule, shared by every worker behind a mutex
 * held for a hash probe and a list splice (never while bytes are copied:
 * entries are reference-counted). Per-worker stores would each hold their
 * own copy and miss whenever SO_REUSEPORT hands a repeated request to
 * another worker, which for N workers is (N-1)/N of the time.
 */
#ifndef SLUICE_CACHE_H
#define SLUICE_CACHE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "core/buf.h"
#include "core/proto.h"
#include "table.h"

struct sl_exchange;
struct sl_finish;
struct sl_filter;

/* ---- the door (stage.c) -------------------------------------------------- */

typedef struct sl_cache_ops {
    /* After routing and the key's scope check, before admission: 1 when
     * the exchange was answered (a hit, finished through the one exit),
     * else 0; x->cache is then set when the answer may be stored. */
    int (*lookup)(struct sl_exchange *x);
    /* A stream to be stored: the relay's last filter, recording what the
     * client receives. 0, or -1 (then nothing is recorded). */
    int (*stream_filter)(struct sl_exchange *x, struct sl_filter *f);
    /* At the finish, after accounting: stores a complete 2xx answer that
     * cost `cost_micros`. */
    void (*finish)(struct sl_exchange *x, const struct sl_finish *f, int64_t cost_micros);
    /* /metrics: the stores' families. 0, or -1 when memory runs out. */
    int (*metrics)(sl_buf *out, const sl_table *t);
} sl_cache_ops;

extern const sl_cache_ops sl_cache_module_ops;

/* ---- keys (key.c) ----------------------------------------------------------- */

typedef struct sl_cache_key_in {
    uint32_t rule;
    int entry;
    const char *client_model; /* the name sent: a glob entry forwards it */
    sl_op op;
    sl_proto surface;
    int legacy;
    int stream;
    const char *scope;        /* key name for per-key rules, "" when shared */
    const char *alt;          /* Gemini ?alt= (the stream's framing), or NULL */
    size_t alt_len;
    const json_t *body;       /* the client's parsed body */
} sl_cache_key_in;

#define SL_CACHE_KEY_LEN 32

/* SHA-256 over the request fields above and the body serialised with
 * sorted object members, without the members that do not change the
 * answer (model, stream, user, metadata, safety_identifier). 0, or -1
 * when memory runs out. */
int sl_cache_key(const sl_cache_key_in *in, uint8_t out[SL_CACHE_KEY_LEN]);

/* 1 when the request asks for temperature 0 explicitly (top-level
 * `temperature`, Gemini `generationConfig.temperature`). Absent means
 * the provider's default, which is above 0 everywhere. */
int sl_cache_temperature_zero(const json_t *body, sl_op op);

/* ---- stores (store.c) --------------------------------------------------- */

typedef struct sl_cache_store sl_cache_store;

typedef struct sl_cache_meta {
    int status;
    int stream;
    int32_t provider;          /* who answered first, -1 = unknown */
    int64_t cost_micros;       /* what that answer cost: a hit saves it */
    char ctype[128];
    char upstream_model[160];
} sl_cache_meta;

typedef struct sl_cache_entry sl_cache_entry;

typedef struct sl_cache_stats {
    uint64_t hits, misses, bypasses, stored;
    uint64_t evicted_lru, evicted_ttl;
    uint64_t bytes, entries;
} sl_cache_stats;

/* max_bytes caps everything held (answers plus per-entry overhead). NULL
 * when memory runs out. */
sl_cache_store *sl_cache_store_new(uint64_t max_bytes, uint32_t ttl_ms);
void sl_cache_store_free(sl_cache_store *s);
/* The largest answer the store takes (a quarter of max_bytes, so one
 * answer never empties the store). */
size_t sl_cache_store_max_entry(const sl_cache_store *s);
/* The live entry for key, held until sl_cache_entry_release, or NULL;
 * counts a hit or a miss. now_ms is injectable for tests. */
const sl_cache_entry *sl_cache_get(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], int64_t now_ms);
void sl_cache_entry_release(const sl_cache_entry *e);
const sl_cache_meta *sl_cache_entry_meta(const sl_cache_entry *e);
const char *sl_cache_entry_data(const sl_cache_entry *e, size_t *len);
/* Stores (or replaces) key's answer, evicting least recently used ones
 * for room. 0, or -1 when too large or out of memory. */
int sl_cache_put(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], const sl_cache_meta *m,
                 const char *data, size_t len, int64_t now_ms);
void sl_cache_count_bypass(sl_cache_store *s);
void sl_cache_store_stats(sl_cache_store *s, int64_t now_ms, sl_cache_stats *out);

#endif
