/*
 * Rules over model entries (see check.c): targets name known providers
 * with sane weights and retries, fallbacks resolve and never loop, and no
 * glob is hidden behind another or ambiguous with one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "glob.h"

void slc_chk_targets(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nmodels; i++) {
        slc_model *m = &c->s->models[i];
        for (size_t j = 0; j < m->ntargets; j++) {
            slc_target *t = &m->targets[j];
            if (!t->provider.s)
                continue;
            t->provider_idx = slc_chk_find_provider(c->s, t->provider);
            if (t->provider_idx < 0) {
                slc_error(c->d, t->provider.pos, "model '%s' targets unknown provider '%s'%s",
                          m->name.s, t->provider.s,
                          slc_chk_hint(c, t->provider.s, slc_chk_provider_at, c->s->nproviders));
                continue;
            }
            c->s->providers[t->provider_idx].used = true;
            if (t->weight <= 0)
                slc_error(c->d, t->weight_pos,
                          "target '%s' of model '%s' has weight %lld; weights must be at least 1",
                          t->provider.s, m->name.s, (long long)t->weight);
            else if (t->weight > UINT32_MAX)
                slc_error(c->d, t->weight_pos, "target '%s' of model '%s' has weight %lld; at most %u",
                          t->provider.s, m->name.s, (long long)t->weight, UINT32_MAX);
        }
        if (m->retry.attempts < 0 || m->retry.attempts > 10)
            slc_error(c->d, m->retry.attempts_pos,
                      "retry attempts %lld in model '%s' is out of range 0..10",
                      (long long)m->retry.attempts, m->name.s);
        if (m->retry.backoff_ms > m->retry.cap_ms)
            slc_warning(c->d, m->name.pos,
                        "retry backoff of model '%s' (%ums) is longer than its cap (%ums)",
                        m->name.s, m->retry.backoff_ms, m->retry.cap_ms);
    }
}

void slc_chk_fallbacks(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nmodels; i++) {
        slc_model *m = &c->s->models[i];
        m->fallback_idx = slc_alloc(c->a, (m->nfallbacks ? m->nfallbacks : 1) * sizeof(uint32_t));
        size_t kept = 0;
        for (size_t j = 0; j < m->nfallbacks; j++) {
            slc_str f = m->fallbacks[j];
            int idx = slc_chk_find_model(c, f);
            if (idx < 0) {
                slc_error(c->d, f.pos, "model '%s' falls back to unknown model '%s'%s", m->name.s,
                          f.s, slc_chk_hint(c, f.s, slc_chk_model_at, c->s->nmodels));
                continue;
            }
            if ((size_t)idx == i) {
                slc_error(c->d, f.pos, "model '%s' falls back to itself", m->name.s);
                continue;
            }
            bool dup = false;
            for (size_t k = 0; k < kept && !dup; k++)
                dup = m->fallback_idx[k] == (uint32_t)idx;
            if (dup) {
                slc_warning(c->d, f.pos, "model '%s' lists fallback '%s' twice", m->name.s, f.s);
                continue;
            }
            m->fallbacks[kept] = f;
            m->fallback_idx[kept++] = (uint32_t)idx;
        }
        m->nfallbacks = kept;
    }
}

/* Iterative DFS over fallback edges; each back edge is one cycle report. */
void slc_chk_cycles(slc_checker *c)
{
    size_t n = c->s->nmodels;
    if (!n)
        return;
    unsigned char *color = calloc(n, 1); /* 0 new, 1 on stack, 2 done */
    size_t *stack = calloc(n, sizeof *stack), *edge = calloc(n, sizeof *edge);
    if (!color || !stack || !edge)
        abort();
    for (size_t root = 0; root < n; root++) {
        if (color[root])
            continue;
        size_t depth = 0;
        stack[depth] = root;
        edge[depth] = 0;
        color[root] = 1;
        depth++;
        while (depth) {
            size_t u = stack[depth - 1];
            slc_model *m = &c->s->models[u];
            if (edge[depth - 1] == m->nfallbacks) {
                color[u] = 2;
                depth--;
                continue;
            }
            size_t e = edge[depth - 1]++;
            size_t v = m->fallback_idx[e];
            if (color[v] == 0) {
                color[v] = 1;
                stack[depth] = v;
                edge[depth] = 0;
                depth++;
            } else if (color[v] == 1) {
                slc_buf b = {0};
                size_t from = 0;
                while (stack[from] != v)
                    from++;
                for (size_t k = from; k < depth; k++)
                    slc_buf_printf(&b, "%s -> ", c->s->models[stack[k]].name.s);
                slc_buf_puts(&b, c->s->models[v].name.s);
                slc_error(c->d, m->fallbacks[e].pos, "fallback cycle: %s", b.p);
                slc_buf_free(&b);
            }
        }
    }
    free(color);
    free(stack);
    free(edge);
}

/* Globs go to the matcher ordered by literal prefix, longest first, then
 * spec order. A glob is dead when one ahead of it in that order covers it;
 * two globs of equal prefix length that overlap, neither inside the other,
 * are decided by spec order, which deserves a mention.
 *
 * Both relations need equal literal prefixes: a glob ahead of b has a
 * prefix at least as long, and covering b needs one no longer, and two
 * equal-length prefixes of overlapping globs must be the same text. So
 * globs are grouped by prefix and only compared within a group, which
 * keeps large specs linear; a group is compared pairwise only up to a
 * budget, past which a note says the check was cut short. */
#define GLOB_PAIR_BUDGET 4000000

typedef struct glob_ref {
    const char *name;
    size_t prefix;
    size_t idx;
} glob_ref;

static int cmp_glob_ref(const void *pa, const void *pb)
{
    const glob_ref *a = pa, *b = pb;
    if (a->prefix != b->prefix)
        return a->prefix < b->prefix ? -1 : 1;
    int r = memcmp(a->name, b->name, a->prefix);
    if (r)
        return r;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

void slc_chk_globs(slc_checker *c)
{
    slc_spec *s = c->s;
    glob_ref *g = calloc(s->nmodels ? s->nmodels : 1, sizeof *g);
    if (!g)
        abort();
    size_t ng = 0;
    for (size_t i = 0; i < s->nmodels; i++)
        if (s->models[i].is_glob)
            g[ng++] = (glob_ref){s->models[i].name.s, slc_glob_prefix_len(s->models[i].name.s), i};
    qsort(g, ng, sizeof *g, cmp_glob_ref);
    size_t budget = GLOB_PAIR_BUDGET;
    bool cut = false;
    for (size_t lo = 0, hi; lo < ng; lo = hi) {
        hi = lo + 1;
        while (hi < ng && g[hi].prefix == g[lo].prefix &&
               memcmp(g[hi].name, g[lo].name, g[lo].prefix) == 0)
            hi++;
        /* Within a group, spec order: shadowing first, as before. */
        for (size_t x = lo + 1; x < hi; x++) {
            slc_model *b = &s->models[g[x].idx];
            for (size_t y = lo; y < x; y++) {
                slc_model *a = &s->models[g[y].idx];
                if (!a->emitted)
                    continue;
                if (!budget--) {
                    cut = true;
                    goto done;
                }
                if (slc_glob_covers(a->name.s, b->name.s)) {
                    slc_warning(c->d, b->name.pos,
                                "model '%s' can never match: every name it matches goes to '%s' "
                                "first",
                                b->name.s, a->name.s);
                    b->emitted = false;
                    break;
                }
            }
        }
        for (size_t x = lo + 1; x < hi; x++) {
            slc_model *b = &s->models[g[x].idx];
            if (!b->emitted)
                continue;
            for (size_t y = lo; y < x; y++) {
                slc_model *a = &s->models[g[y].idx];
                if (!a->emitted)
                    continue;
                if (!budget--) {
                    cut = true;
                    goto done;
                }
                /* Specific before general (a inside b) is the intended order. */
                if (slc_glob_overlap(a->name.s, b->name.s) &&
                    !slc_glob_covers(b->name.s, a->name.s)) {
                    slc_warning(c->d, b->name.pos,
                                "models '%s' and '%s' both match some names with the same "
                                "literal prefix; '%s' wins because it comes first",
                                a->name.s, b->name.s, a->name.s);
                    break;
                }
            }
        }
    }
done:
    if (cut)
        slc_note(c->d, s->pos,
                 "glob shadowing and ambiguity checks stopped after %d comparisons; too many "
                 "globs share one literal prefix",
                 GLOB_PAIR_BUDGET);
    free(g);
}

void slc_chk_unused(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nproviders; i++)
        if (!c->s->providers[i].used)
            slc_warning(c->d, c->s->providers[i].name.pos,
                        "provider '%s' is not used by any model", c->s->providers[i].name.s);
}
