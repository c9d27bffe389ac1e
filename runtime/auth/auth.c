/*
 * Key lookup. The index is a sorted array of key indices by hash, built
 * once at start-up (the table itself is const). Timing: every presented
 * key, well-formed or not, is hashed the same way before lookup, so an
 * unknown key and a malformed one cost the same; the search branches only
 * on hash bytes, which reveal nothing usable about any key.
 */
#include "auth/auth.h"

#include <arpa/inet.h>
#include <bearssl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static uint32_t *index_by_hash;
static const sl_table *index_table;

void sl_auth_sha256(const void *data, size_t len, uint8_t out[32])
{
    br_sha256_context ctx;
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, data, len);
    br_sha256_out(&ctx, out);
}

int sl_auth_ct_equal(const uint8_t *a, const uint8_t *b, size_t n)
{
    uint8_t d = 0;
    for (size_t i = 0; i < n; i++)
        d |= (uint8_t)(a[i] ^ b[i]);
    return d == 0;
}

static int cmp_idx(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
    return memcmp(index_table->keys[a].hash, index_table->keys[b].hash, 32);
}

int sl_auth_init(const sl_table *t)
{
    free(index_by_hash);
    index_by_hash = NULL;
    index_table = t;
    if (t->key_count == 0)
        return 0;
    index_by_hash = malloc(sizeof *index_by_hash * t->key_count);
    if (!index_by_hash)
        return -1;
    for (uint32_t i = 0; i < t->key_count; i++)
        index_by_hash[i] = i;
    qsort(index_by_hash, t->key_count, sizeof *index_by_hash, cmp_idx);
    return 0;
}

void sl_auth_shutdown(void)
{
    free(index_by_hash);
    index_by_hash = NULL;
}

static const char *presented_in_headers(const sl_http_request *req, size_t *len)
{
    const sl_http_header *h = sl_http_find_header(req, "authorization");
    if (h && h->value_len > 7 && strncasecmp(h->value, "Bearer ", 7) == 0) {
        const char *v = h->value + 7;
        size_t n = h->value_len - 7;
        while (n && *v == ' ') {
            v++;
            n--;
        }
        *len = n;
        return v;
    }
    h = sl_http_find_header(req, "x-api-key");
    if (!h)
        h = sl_http_find_header(req, "x-goog-api-key");
    if (h) {
        *len = h->value_len;
        return h->value;
    }
    return NULL;
}

const char *sl_auth_presented(const sl_http_request *req, size_t *len)
{
    const char *k = presented_in_headers(req, len);
    if (k)
        return k;
    /* Gemini clients may pass ?key=... */
    k = sl_http_query_param(req, "key", len);
    if (k && *len > 0)
        return k;
    return NULL;
}

static int lookup_hash(const sl_table *t, const uint8_t h[32])
{
    size_t lo = 0, hi = t->key_count;
    size_t at = 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(t->keys[index_by_hash[mid]].hash, h, 32);
        if (c == 0) {
            at = mid;
            break;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    /* The deciding comparison is constant time whether or not the search
     * landed on a match. */
    uint32_t k = index_by_hash[at];
    return sl_auth_ct_equal(t->keys[k].hash, h, 32) ? (int)k : -1;
}

static int addr_allowed(const sl_table *t, const sl_key *k, const char *peer)
{
    if (k->cidr_count == 0)
        return 1;
    uint8_t addr[16] = {0};
    int fam = 0;
    char host[64];
    size_t n = strlen(peer);
    if (peer[0] == '[') {
        const char *e = strchr(peer, ']');
        n = e ? (size_t)(e - peer - 1) : 0;
        if (n >= sizeof host)
            return 0;
        memcpy(host, peer + 1, n);
    } else {
        const char *c = strrchr(peer, ':');
        n = c ? (size_t)(c - peer) : n;
        if (n >= sizeof host)
            return 0;
        memcpy(host, peer, n);
    }
    host[n] = '\0';
    if (inet_pton(AF_INET, host, addr) == 1)
        fam = 4;
    else if (inet_pton(AF_INET6, host, addr) == 1)
        fam = 6;
    for (uint32_t i = 0; i < k->cidr_count; i++) {
        const sl_cidr *c = &t->cidrs[k->cidr_first + i];
        if (c->family != fam)
            continue;
        unsigned bits = c->prefix, full = bits / 8, rest = bits % 8;
        if (memcmp(c->addr, addr, full) != 0)
            continue;
        if (rest && ((c->addr[full] ^ addr[full]) & (uint8_t)(0xff << (8 - rest))))
            continue;
        return 1;
    }
    return 0;
}

sl_auth_status sl_auth_identify(const sl_table *t, const sl_http_request *req, const char *peer,
                                int *key)
{
    *key = -1;
    if (t->key_count == 0)
        return SL_AUTH_OK;
    size_t len = 0;
    const char *presented = sl_auth_presented(req, &len);
    uint8_t h[32];
    /* Hash even when absent, so "missing" costs what "unknown" costs. */
    sl_auth_sha256(presented ? presented : "", presented ? len : 0, h);
    if (!presented || len == 0)
        return SL_AUTH_MISSING;
    int k = lookup_hash(t, h);
    if (k < 0)
        return SL_AUTH_UNKNOWN;
    const sl_key *kk = &t->keys[k];
    if (kk->expires_unix && time(NULL) >= kk->expires_unix)
        return SL_AUTH_EXPIRED;
    if (!addr_allowed(t, kk, peer))
        return SL_AUTH_ADDRESS;
    *key = k;
    return SL_AUTH_OK;
}

int sl_auth_is_admin(const sl_table *t, const sl_http_request *req)
{
    if (!t->has_admin)
        return 0;
    size_t len = 0;
    /* Headers only: an admin key in a URL ends up in shell history and
     * proxy logs. */
    const char *presented = presented_in_headers(req, &len);
    uint8_t h[32];
    sl_auth_sha256(presented ? presented : "", presented ? len : 0, h);
    return presented && len && sl_auth_ct_equal(h, t->admin_hash, 32);
}

int sl_auth_allows(const sl_table *t, int key, uint32_t entry)
{
    if (key < 0)
        return 1;
    const sl_key *k = &t->keys[key];
    if (k->all_models)
        return 1;
    for (uint32_t i = 0; i < k->scope_count; i++)
        if (t->scopes[k->scope_first + i] == entry)
            return 1;
    return 0;
}
