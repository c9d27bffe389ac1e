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
    /* After routing and the key's scope check, before admission: 0 to go
     * on at once (x->cache is then set when the answer may be stored);
     * 1 when the exchange was answered (a hit, finished through the one
     * exit) or will be: a semantic lookup waits for its embeddings and
     * then answers or calls serve(x) to go on. */
    int (*lookup)(struct sl_exchange *x, void (*serve)(struct sl_exchange *x));
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
    int without_prompt;       /* the semantic context: leave the prompt out */
    size_t alt_len;
    const json_t *body;       /* the client's parsed body */
} sl_cache_key_in;

#define SL_CACHE_KEY_LEN 32

/* SHA-256 over the request fields above and the body serialised with
 * sorted object members, without the members that do not change the
 * answer (model, stream, user, metadata, safety_identifier). 0, or -1
 * when memory runs out. */
int sl_cache_key(const sl_cache_key_in *in, uint8_t out[SL_CACHE_KEY_LEN]);

/* The prompt as text for an embedding: every string under the members
 * that carry the conversation (messages, input, contents, system,
 * instructions, systemInstruction, prompt), one per line. 0, or -1 when
 * memory runs out; an empty buffer when there is no text. */
int sl_cache_prompt_text(const json_t *body, sl_buf *out);

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
    uint64_t embeddings_ok, embeddings_failed; /* semantic lookups' embeddings calls */
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
 * counts a hit (a miss is the caller's to count: a semantic lookup may
 * still find one). now_ms is injectable for tests. */
const sl_cache_entry *sl_cache_get(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], int64_t now_ms);
void sl_cache_entry_hold(const sl_cache_entry *e);
void sl_cache_entry_release(const sl_cache_entry *e);
const sl_cache_meta *sl_cache_entry_meta(const sl_cache_entry *e);
const char *sl_cache_entry_data(const sl_cache_entry *e, size_t *len);
/* A semantic entry's place in the index: the hash of everything but the
 * prompt (only answers to the same tools, sampling, protocol... compete)
 * and the prompt's embedding. */
typedef struct sl_cache_vec {
    uint8_t ctx[SL_CACHE_KEY_LEN];
    const float *v;
    uint32_t dim;
} sl_cache_vec;

/* Stores (or replaces) key's answer, with its embedding when vec is not
 * NULL, evicting least recently used ones for room. 0, or -1 when too
 * large or out of memory. */
int sl_cache_put(sl_cache_store *s, const uint8_t key[SL_CACHE_KEY_LEN], const sl_cache_meta *m,
                 const char *data, size_t len, const sl_cache_vec *vec, int64_t now_ms);
/* The live entry whose embedding in the same ctx is most similar to v
 * (cosine), if that similarity is at least threshold: held, with *sim
 * set, and counted as a hit; else NULL. A linear scan under the store's
 * lock. */
const sl_cache_entry *sl_cache_nearest(sl_cache_store *s, const sl_cache_vec *v, double threshold, int64_t now_ms,
                                       double *sim);
void sl_cache_count_bypass(sl_cache_store *s);
void sl_cache_count_miss(sl_cache_store *s);
void sl_cache_count_embedding(sl_cache_store *s, int ok);
void sl_cache_store_stats(sl_cache_store *s, int64_t now_ms, sl_cache_stats *out);

/* ---- embeddings (semantic.c) ------------------------------------------- */

typedef struct sl_cache_embed sl_cache_embed;
/* v (dim floats, valid during the call) or NULL with why. */
typedef void (*sl_cache_embed_done)(void *ctx, const float *v, uint32_t dim, const char *why);

/* Asks `provider` (an index into x's table) for the embedding of text
 * with `model`, on x's worker; done follows unless the call is freed
 * first. NULL when the provider serves no embeddings or memory runs out. */
sl_cache_embed *sl_cache_embed_start(struct sl_exchange *x, uint32_t provider, const char *model, const char *text,
                                     size_t len, sl_cache_embed_done done, void *ctx);
/* Cancels a call in flight; after done, releases it. */
void sl_cache_embed_free(sl_cache_embed *e);

#endif
