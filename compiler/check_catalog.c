/*
 * What the model catalog contributes to a checked spec: each target whose
 * upstream model the catalog knows gets the catalog entry (capabilities and
 * output limit, lowered into sl_target.caps), and prices the spec does not
 * give come from the catalog. A spec price always wins: catalog rows are
 * added only for provider/model names no spec price (exact or glob)
 * matches, so the runtime's "exact before glob" lookup cannot let a
 * catalog row shadow a spec glob.
 */
#include <stdlib.h>
#include <string.h>

#include "catalog.h"
#include "check_internal.h"
#include "glob.h"
#include "presets.h"

static bool spec_priced(const slc_spec *s, size_t nspec, int prov, const char *model)
{
    for (size_t i = 0; i < nspec; i++) {
        const slc_price *p = &s->prices[i];
        if (p->provider_idx != prov || !p->model.s)
            continue;
        if (strcmp(p->model.s, model) == 0 || (slc_is_glob(p->model.s) && slc_glob_match(p->model.s, model)))
            return true;
    }
    return false;
}

typedef struct adder {
    slc_checker *c;
    size_t nspec;           /* the spec's own rows come first */
    slc_price *rows;
    size_t n, cap;
} adder;

static void add(adder *a, int prov, const slc_cat_model *m)
{
    if (m->input < 0 || m->output < 0)
        return; /* a catalog row without prices prices nothing */
    slc_spec *s = a->c->s;
    if (spec_priced(s, a->nspec, prov, m->model))
        return;
    for (size_t i = a->nspec; i < a->n; i++)
        if (a->rows[i].provider_idx == prov && strcmp(a->rows[i].model.s, m->model) == 0)
            return;
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : a->nspec + 16;
        slc_price *r = slc_alloc(a->c->a, cap * sizeof *r);
        if (a->n)
            memcpy(r, a->rows, a->n * sizeof *r);
        a->rows = r;
        a->cap = cap;
    }
    const char *pname = s->providers[prov].name.s;
    const char *key = slc_aprintf(a->c->a, "%s/%s", pname, m->model);
    a->rows[a->n++] = (slc_price){
        .key = {.s = key, .len = strlen(key)},
        .provider = {.s = pname, .len = strlen(pname)},
        .model = {.s = m->model, .len = strlen(m->model)},
        .provider_idx = prov,
        .input = m->input,
        .output = m->output,
        .cache_read = m->cache_read < 0 ? 0 : m->cache_read,
        .cache_write = m->cache_write < 0 ? 0 : m->cache_write,
        .from_catalog = true,
    };
}

/* Is `id` one of the blank-separated catalog ids of a preset (Vertex
 * prices Gemini and Claude models from two sections)? */
static bool in_list(const char *list, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = list; *p;) {
        size_t w = strcspn(p, " ");
        if (w == n && memcmp(p, id, n) == 0)
            return true;
        p += w + (p[w] == ' ');
    }
    return false;
}

/* The catalog row of `model` in the first of the preset's sections that
 * has one. */
static const slc_cat_model *find_in(const char *list, const char *model)
{
    char id[64];
    for (const char *p = list; *p;) {
        size_t w = strcspn(p, " ");
        if (w < sizeof id) {
            memcpy(id, p, w);
            id[w] = '\0';
            const slc_cat_model *r = slc_catalog_find(id, model);
            if (r)
                return r;
        }
        p += w + (p[w] == ' ');
    }
    return NULL;
}

void slc_chk_catalog(slc_checker *c)
{
    slc_spec *s = c->s;
    adder a = {.c = c, .nspec = s->nprices, .rows = s->prices, .n = s->nprices, .cap = s->nprices};
    size_t ncat;
    const slc_cat_model *all = slc_catalog_all(&ncat);
    for (size_t i = 0; i < s->nmodels; i++) {
        slc_model *m = &s->models[i];
        for (size_t j = 0; j < m->ntargets; j++) {
            slc_target *t = &m->targets[j];
            if (t->provider_idx < 0)
                continue;
            const slc_preset *ps = slc_preset_of(&s->providers[t->provider_idx]);
            if (!ps || !ps->catalog)
                continue;
            if (t->model.s || !m->is_glob) {
                const char *model = t->model.s ? t->model.s : m->name.s;
                t->cat = find_in(ps->catalog, model);
                if (t->cat)
                    add(&a, t->provider_idx, t->cat);
                continue;
            }
            /* The client's name passes through: price every catalog model
             * of the provider that the entry's glob can ask for. */
            for (size_t k = 0; k < ncat; k++)
                if (in_list(ps->catalog, all[k].provider) && slc_glob_match(m->name.s, all[k].model))
                    add(&a, t->provider_idx, &all[k]);
        }
    }
    s->prices = a.rows;
    s->nprices = a.n;
}
