/*
 * Model lookup and attempt planning. The DFA does the name matching; this
 * file only keeps the per-worker balancing counters and orders attempts.
 * It is built on its own (sl_route_lib) and linked into sluicec too, so
 * `sluicec explain` prints the plan this very code makes: it must depend
 * on nothing but table.h and libc.
 */
#include "route/route.h"

#include <stdlib.h>
#include <string.h>

struct sl_router {
    const sl_table *t;
    int64_t *current;   /* smooth WRR current weight per target */
};

int sl_route_lookup(const sl_table *t, const char *name, size_t len)
{
    if (len == 0 || len > 1024 || memchr(name, '\0', len))
        return -1;
    char buf[1025];
    memcpy(buf, name, len);
    buf[len] = '\0';
    return t->match_model(buf, len);
}

sl_router *sl_router_new(const sl_table *t)
{
    sl_router *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->t = t;
    r->current = calloc(t->target_count ? t->target_count : 1, sizeof *r->current);
    if (!r->current) {
        free(r);
        return NULL;
    }
    return r;
}

void sl_router_free(sl_router *r)
{
    if (!r)
        return;
    free(r->current);
    free(r);
}

uint32_t sl_route_pick(sl_router *r, uint32_t entry)
{
    const sl_model_entry *e = &r->t->models[entry];
    int64_t total = 0;
    uint32_t best = e->target_first;
    for (uint32_t i = e->target_first; i < e->target_first + e->target_count; i++) {
        int64_t w = r->t->targets[i].weight;
        r->current[i] += w;
        total += w;
        if (r->current[i] > r->current[best])
            best = i;
    }
    r->current[best] -= total;
    return best;
}

static size_t add_entry(sl_router *r, uint32_t entry, sl_attempt *out, size_t n, size_t max)
{
    const sl_model_entry *e = &r->t->models[entry];
    if (e->target_count == 0)
        return n;
    uint32_t first = sl_route_pick(r, entry);
    if (n < max)
        out[n++] = (sl_attempt){entry, first};
    /* The rest by descending weight, spec order on ties: the next most
     * capable target is the better second choice. */
    uint32_t used_first = first;
    for (;;) {
        int64_t bw = -1;
        uint32_t best = UINT32_MAX;
        for (uint32_t i = e->target_first; i < e->target_first + e->target_count; i++) {
            if (i == used_first)
                continue;
            int seen = 0;
            for (size_t k = 0; k < n; k++)
                if (out[k].target == i && out[k].entry == entry)
                    seen = 1;
            if (!seen && (int64_t)r->t->targets[i].weight > bw) {
                bw = r->t->targets[i].weight;
                best = i;
            }
        }
        if (best == UINT32_MAX || n >= max)
            break;
        out[n++] = (sl_attempt){entry, best};
    }
    return n;
}

size_t sl_route_plan(sl_router *r, uint32_t entry, sl_attempt *out, size_t max)
{
    const sl_table *t = r->t;
    uint32_t visited[64];
    size_t nvisited = 0;
    uint32_t queue[64];
    size_t qh = 0, qt = 0;
    size_t n = 0;
    queue[qt++] = entry;
    while (qh < qt && n < max) {
        uint32_t ei = queue[qh++];
        int seen = 0;
        for (size_t k = 0; k < nvisited; k++)
            if (visited[k] == ei)
                seen = 1;
        if (seen || nvisited >= 64)
            continue;
        visited[nvisited++] = ei;
        n = add_entry(r, ei, out, n, max);
        /* Fallbacks of the entry, in order; a fallback's own fallbacks
         * come after every direct fallback (breadth first). */
        const sl_model_entry *e = &t->models[ei];
        for (uint32_t f = 0; f < e->fallback_count && qt < 64; f++)
            queue[qt++] = t->fallbacks[e->fallback_first + f];
    }
    return n;
}

const char *sl_route_upstream_model(const sl_table *t, const sl_attempt *a, const char *client_model)
{
    const sl_target *tg = &t->targets[a->target];
    if (tg->model)
        return tg->model;
    const sl_model_entry *e = &t->models[a->entry];
    return e->is_glob ? client_model : e->name;
}

uint32_t sl_route_backoff_ms(const sl_retry *r, int n, int retry_after_s, unsigned *seed)
{
    uint64_t d = r->backoff_ms;
    for (int i = 0; i < n && d < r->backoff_cap_ms; i++)
        d *= 2;
    if (r->backoff_cap_ms && d > r->backoff_cap_ms)
        d = r->backoff_cap_ms;
    uint64_t half = d / 2;
    d = half + (half ? (uint64_t)rand_r(seed) % (half + 1) : 0);
    if (retry_after_s >= 0) {
        uint64_t ra = (uint64_t)retry_after_s * 1000;
        if (r->backoff_cap_ms && ra > r->backoff_cap_ms)
            ra = r->backoff_cap_ms;
        if (ra > d)
            d = ra;
    }
    return (uint32_t)d;
}
