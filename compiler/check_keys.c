/*
 * Rules over keys and money (see check.c): prices name known providers,
 * budgets have known periods and a key's is no larger than its team's,
 * key hashes parse and differ, the models a key allows resolve (a glob to
 * every entry it covers), allow_ips entries parse, with keys every entry
 * is reachable by some key, and a USD budget never pays for a target that
 * has no price.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"
#include "glob.h"
#include "suggest.h"

static const char *team_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->teams[i].name.s;
}

void slc_chk_prices(slc_checker *c)
{
    for (size_t i = 0; i < c->s->nprices; i++) {
        slc_price *p = &c->s->prices[i];
        if (!p->provider.s)
            continue;
        p->provider_idx = slc_chk_find_provider(c->s, p->provider);
        if (p->provider_idx < 0)
            slc_error(c->d, p->key.pos, "price '%s' names unknown provider '%s'%s", p->key.s,
                      p->provider.s,
                      slc_chk_hint(c, p->provider.s, slc_chk_provider_at, c->s->nproviders));
    }
}

static void check_period(slc_checker *c, slc_budget *b, const char *owner)
{
    static const char *const names[] = {"day", "week", "month", "total"};
    if (!b->present || !b->per.s)
        return;
    for (size_t i = 0; i < 4; i++)
        if (strcmp(b->per.s, names[i]) == 0) {
            b->period = (slc_period)(i + 1);
            return;
        }
    const char *h = slc_suggest(b->per.s, names, 4);
    slc_error(c->d, b->per.pos, "budget of %s has unknown period '%s'%s; use day, week, month or total",
              owner, b->per.s, h ? slc_aprintf(c->a, " (did you mean '%s'?)", h) : "");
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    return -1;
}

/* `sha256:` + 64 lowercase hex -> 32 bytes. */
static bool parse_hash(slc_str h, uint8_t out[32])
{
    if (h.len != 71 || memcmp(h.s, "sha256:", 7) != 0)
        return false;
    for (size_t i = 0; i < 32; i++) {
        int hi = hexval(h.s[7 + 2 * i]), lo = hexval(h.s[8 + 2 * i]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (uint8_t)(hi << 4 | lo);
    }
    return true;
}

static const slc_spec *sort_spec;

static int cmp_by_name(const void *pa, const void *pb)
{
    return strcmp(sort_spec->models[*(const uint32_t *)pa].name.s,
                  sort_spec->models[*(const uint32_t *)pb].name.s);
}

/* The entries a glob in a key's models list covers, as a count followed by
 * indices. A covered name starts with the glob's literal prefix, so only
 * that range of the sorted names is tested, and each distinct glob once. */
static const uint32_t *glob_scope(slc_checker *c, const char *glob)
{
    slc_spec *s = c->s;
    size_t glen = strlen(glob);
    size_t hit = slc_strmap_get(&c->scope_cache, glob, glen);
    if (hit != SIZE_MAX)
        return c->scope_sets[hit];
    if (!c->by_name) {
        c->by_name = calloc(s->nmodels ? s->nmodels : 1, sizeof *c->by_name);
        if (!c->by_name)
            abort();
        for (size_t i = 0; i < s->nmodels; i++)
            c->by_name[i] = (uint32_t)i;
        sort_spec = s;
        qsort(c->by_name, s->nmodels, sizeof *c->by_name, cmp_by_name);
        slc_strmap_init(&c->scope_cache, 16);
    }
    size_t plen = slc_glob_prefix_len(glob), lo = 0, hi = s->nmodels;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strncmp(s->models[c->by_name[mid]].name.s, glob, plen) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    uint32_t *set = slc_alloc(c->a, (s->nmodels + 1) * sizeof *set);
    for (size_t i = lo; i < s->nmodels; i++) {
        const char *name = s->models[c->by_name[i]].name.s;
        if (strncmp(name, glob, plen) != 0)
            break;
        if (slc_glob_covers(glob, name))
            set[1 + set[0]++] = c->by_name[i];
    }
    if (c->nscope_sets % 64 == 0) {
        c->scope_sets = realloc(c->scope_sets, (c->nscope_sets + 64) * sizeof *c->scope_sets);
        if (!c->scope_sets)
            abort();
    }
    c->scope_sets[c->nscope_sets] = set;
    slc_strmap_put(&c->scope_cache, glob, glen, c->nscope_sets++);
    return set;
}

static int cmp_u32(const void *pa, const void *pb)
{
    uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
    return a < b ? -1 : a > b;
}

static void resolve_scope(slc_checker *c, slc_key *k)
{
    slc_spec *s = c->s;
    if (k->all_models)
        return;
    /* Collected, then sorted and deduplicated: proportional to what the
     * key allows, not to the number of entries in the spec. */
    size_t cap = k->nmodels ? k->nmodels : 1, n = 0;
    uint32_t *list = malloc(cap * sizeof *list);
    if (!list)
        abort();
    for (size_t i = 0; i < k->nmodels; i++) {
        slc_str m = k->models[i];
        /* A glob allows every entry whose names it covers, so `claude-*`
         * also admits a more specific `claude-3-*` entry: the key's owner
         * meant "Claude models", however the routes are split. */
        if (slc_is_glob(m.s)) {
            const uint32_t *set = glob_scope(c, m.s);
            if (!set[0]) {
                slc_error(c->d, m.pos, "key '%s' allows '%s', which matches no model entry",
                          k->name.s, m.s);
                c->scope_errors = true;
            }
            if (n + set[0] > cap) {
                cap = (n + set[0]) * 2;
                list = realloc(list, cap * sizeof *list);
                if (!list)
                    abort();
            }
            memcpy(list + n, set + 1, set[0] * sizeof *list);
            n += set[0];
            continue;
        }
        int exact = slc_chk_find_model(c, m);
        if (exact < 0) {
            slc_error(c->d, m.pos, "key '%s' allows unknown model '%s'%s", k->name.s, m.s,
                      slc_chk_hint(c, m.s, slc_chk_model_at, s->nmodels));
            c->scope_errors = true;
            continue;
        }
        if (n == cap) {
            cap *= 2;
            list = realloc(list, cap * sizeof *list);
            if (!list)
                abort();
        }
        list[n++] = (uint32_t)exact;
    }
    qsort(list, n, sizeof *list, cmp_u32);
    k->scope = slc_alloc(c->a, (n ? n : 1) * sizeof *k->scope);
    for (size_t i = 0; i < n; i++)
        if (i == 0 || list[i] != list[i - 1])
            k->scope[k->nscope++] = list[i];
    free(list);
    if (k->nmodels == 0)
        slc_warning(c->d, k->name.pos, "key '%s' has an empty 'models' list and can use no model",
                    k->name.s);
}

static const char *money(slc_checker *c, int64_t micros)
{
    return slc_aprintf(c->a, "$%lld.%02lld", (long long)(micros / 1000000),
                       (long long)(micros % 1000000 / 10000));
}

void slc_chk_keys(slc_checker *c)
{
    slc_spec *s = c->s;
    slc_strmap hashes;
    slc_strmap_init(&hashes, s->nkeys);
    for (size_t i = 0; i < s->nteams; i++)
        check_period(c, &s->teams[i].budget, slc_aprintf(c->a, "team '%s'", s->teams[i].name.s));
    for (size_t i = 0; i < s->nkeys; i++) {
        slc_key *k = &s->keys[i];
        if (k->hash.s && !parse_hash(k->hash, k->hash_bytes))
            slc_error(c->d, k->hash.pos,
                      "key '%s': hash must be 'sha256:' followed by 64 lowercase hex digits "
                      "(the SHA-256 of the key, not the key itself)",
                      k->name.s);
        size_t twin = k->hash.s ? slc_strmap_put(&hashes, k->hash.s, k->hash.len, i) : SIZE_MAX;
        if (twin != SIZE_MAX)
            slc_error(c->d, k->hash.pos, "key '%s' has the same hash as key '%s'", k->name.s,
                      s->keys[twin].name.s);
        if (k->team.s) {
            for (size_t t = 0; t < s->nteams; t++)
                if (slc_chk_str_eq(k->team, s->teams[t].name.s))
                    k->team_idx = (int)t;
            if (k->team_idx < 0)
                slc_error(c->d, k->team.pos, "key '%s' belongs to unknown team '%s'%s", k->name.s,
                          k->team.s, slc_chk_hint(c, k->team.s, team_at, s->nteams));
        }
        check_period(c, &k->budget, slc_aprintf(c->a, "key '%s'", k->name.s));
        if (k->team_idx >= 0) {
            slc_budget *tb = &s->teams[k->team_idx].budget;
            if (k->budget.period && k->budget.period == tb->period && tb->usd_micros >= 0 &&
                k->budget.usd_micros > tb->usd_micros)
                slc_warning(c->d, k->budget.pos,
                            "budget of key '%s' (%s per %s) is larger than that of its team '%s' "
                            "(%s per %s)",
                            k->name.s, money(c, k->budget.usd_micros), k->budget.per.s,
                            s->teams[k->team_idx].name.s, money(c, tb->usd_micros), tb->per.s);
        }
        resolve_scope(c, k);
        for (size_t j = 0; j < k->ncidrs; j++) {
            slc_cidr *ci = &k->cidrs[j];
            int r = slc_parse_cidr(ci->text.s, &ci->family, &ci->prefix, ci->addr);
            if (r < 0)
                slc_error(c->d, ci->text.pos,
                          "key '%s': allow_ips entry '%s' is not an IP address or CIDR", k->name.s,
                          ci->text.s);
            else if (r > 0)
                slc_warning(c->d, ci->text.pos,
                            "key '%s': allow_ips entry '%s' has host bits set; they are ignored",
                            k->name.s, ci->text.s);
        }
    }
    if (s->has_admin) {
        if (!parse_hash(s->admin_hash, s->admin_hash_bytes))
            slc_error(c->d, s->admin_hash.pos,
                      "admin: hash must be 'sha256:' followed by 64 lowercase hex digits");
        size_t j = slc_strmap_get(&hashes, s->admin_hash.s, s->admin_hash.len);
        if (j != SIZE_MAX)
            slc_error(c->d, s->admin_hash.pos,
                      "admin hash is the same as the hash of key '%s'; use a separate key",
                      s->keys[j].name.s);
    }
    slc_strmap_free(&hashes);
}

/* Prices sorted by provider then model, for lookups in specs with
 * thousands of entries. */
typedef struct price_index {
    const slc_price **p;
    size_t n;
} price_index;

static int cmp_price(const void *pa, const void *pb)
{
    const slc_price *a = *(const slc_price *const *)pa, *b = *(const slc_price *const *)pb;
    if (a->provider_idx != b->provider_idx)
        return a->provider_idx < b->provider_idx ? -1 : 1;
    return strcmp(a->model.s, b->model.s);
}

static void price_index_build(const slc_spec *s, price_index *ix)
{
    ix->p = calloc(s->nprices ? s->nprices : 1, sizeof *ix->p);
    if (!ix->p)
        abort();
    ix->n = 0;
    for (size_t i = 0; i < s->nprices; i++)
        if (s->prices[i].provider_idx >= 0 && s->prices[i].model.s)
            ix->p[ix->n++] = &s->prices[i];
    qsort(ix->p, ix->n, sizeof *ix->p, cmp_price);
}

/* First index whose (provider, model) is >= (provider, prefix). */
static size_t price_lower(const price_index *ix, int provider, const char *prefix, size_t plen)
{
    size_t lo = 0, hi = ix->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const slc_price *p = ix->p[mid];
        int c = p->provider_idx < provider ? -1 : p->provider_idx > provider ? 1 : 0;
        if (!c) {
            size_t ml = p->model.len;
            c = memcmp(p->model.s, prefix, ml < plen ? ml : plen);
            if (!c && ml < plen)
                c = -1;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool price_exact(const price_index *ix, int provider, const char *model)
{
    size_t len = strlen(model), i = price_lower(ix, provider, model, len);
    return i < ix->n && ix->p[i]->provider_idx == provider && strcmp(ix->p[i]->model.s, model) == 0;
}

/* Some price of `provider` has a model the glob matches. */
static bool price_glob(const price_index *ix, int provider, const char *glob)
{
    size_t plen = slc_glob_prefix_len(glob);
    for (size_t i = price_lower(ix, provider, glob, plen); i < ix->n; i++) {
        const slc_price *p = ix->p[i];
        if (p->provider_idx != provider || p->model.len < plen || memcmp(p->model.s, glob, plen) != 0)
            break;
        if (slc_glob_match(glob, p->model.s))
            return true;
    }
    return false;
}

/* A glob price of `provider` matches the exact name `model`, as the
 * runtime's price lookup does. */
static bool price_by_glob(const price_index *ix, int provider, const char *model)
{
    for (size_t i = price_lower(ix, provider, "", 0); i < ix->n && ix->p[i]->provider_idx == provider; i++)
        if (slc_is_glob(ix->p[i]->model.s) && slc_glob_match(ix->p[i]->model.s, model))
            return true;
    return false;
}

/* Entries some key may ask for, plus everything they fall back to:
 * reach[i] is the index + 1 of the first key that reaches entry i. With
 * `usd_only`, only keys spending against a USD budget count. */
static size_t *reachable(slc_checker *c, bool usd_only)
{
    slc_spec *s = c->s;
    size_t n = s->nmodels;
    size_t *reach = calloc(n ? n : 1, sizeof *reach);
    size_t *queue = calloc(n ? n : 1, sizeof *queue);
    if (!reach || !queue)
        abort();
    size_t qt = 0;
    for (size_t k = 0; k < s->nkeys; k++) {
        const slc_key *key = &s->keys[k];
        if (usd_only && key->budget.usd_micros < 0 &&
            !(key->team_idx >= 0 && s->teams[key->team_idx].budget.usd_micros >= 0))
            continue;
        size_t cnt = key->all_models ? n : key->nscope;
        for (size_t j = 0; j < cnt; j++) {
            size_t e = key->all_models ? j : key->scope[j];
            if (!reach[e]) {
                reach[e] = k + 1;
                queue[qt++] = e;
            }
        }
        if (key->all_models && n)
            break; /* every entry is reached already */
    }
    for (size_t qh = 0; qh < qt; qh++) {
        const slc_model *m = &s->models[queue[qh]];
        for (size_t f = 0; f < m->nfallbacks; f++) {
            size_t e = m->fallback_idx[f];
            if (!reach[e]) {
                reach[e] = reach[queue[qh]];
                queue[qt++] = e;
            }
        }
    }
    free(queue);
    return reach;
}

/* With keys, an entry that no key may ask for and that is no fallback of
 * one they may is dead configuration. */
void slc_chk_unreachable(slc_checker *c)
{
    slc_spec *s = c->s;
    /* A misspelt scope already has an error; guessing on is noise. */
    if (!s->nkeys || c->scope_errors)
        return;
    size_t *reach = reachable(c, false);
    for (size_t i = 0; i < s->nmodels; i++)
        if (!reach[i] && s->models[i].emitted)
            slc_warning(c->d, s->models[i].name.pos,
                        "no key may use model '%s', and no model a key may use falls back to it",
                        s->models[i].name.s);
    free(reach);
}

/* A USD budget is only enforced if every request it pays for has a price:
 * an unpriced target would count as $0 and silently lift the cap. */
void slc_chk_priced(slc_checker *c)
{
    slc_spec *s = c->s;
    size_t *reach = reachable(c, true);
    price_index ix;
    price_index_build(s, &ix);
    /* Once per provider/model: remembered as "provider\0model" strings. */
    const char **seen = NULL;
    size_t nseen = 0, capseen = 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        if (!reach[i])
            continue;
        slc_model *m = &s->models[i];
        const slc_key *key = &s->keys[reach[i] - 1];
        for (size_t j = 0; j < m->ntargets; j++) {
            slc_target *t = &m->targets[j];
            if (t->provider_idx < 0 || s->providers[t->provider_idx].kind == SLC_KIND_MOCK)
                continue;
            const char *model = t->model.s ? t->model.s : m->name.s;
            bool glob = !t->model.s && m->is_glob;
            if (glob ? price_glob(&ix, t->provider_idx, model)
                     : price_exact(&ix, t->provider_idx, model) ||
                           price_by_glob(&ix, t->provider_idx, model))
                continue;
            const char *pname = s->providers[t->provider_idx].name.s;
            const char *id = slc_aprintf(c->a, "%s/%s", pname, model);
            bool dup = false;
            for (size_t k = 0; k < nseen && !dup; k++)
                dup = strcmp(seen[k], id) == 0;
            if (dup)
                continue;
            if (nseen == capseen) {
                capseen = capseen ? capseen * 2 : 16;
                seen = realloc(seen, capseen * sizeof *seen);
                if (!seen)
                    abort();
            }
            seen[nseen++] = id;
            const char *who =
                key->budget.usd_micros >= 0
                    ? slc_aprintf(c->a, "key '%s' has a USD budget and can use it", key->name.s)
                    : slc_aprintf(c->a, "key '%s' can use it and its team '%s' has a USD budget",
                                  key->name.s, s->teams[key->team_idx].name.s);
            if (glob)
                slc_error(c->d, t->pos,
                          "model '%s' sends the client's model name to provider '%s', but no "
                          "price '%s/...' matches '%s' and %s; add prices for the models it "
                          "serves",
                          m->name.s, pname, pname, model, who);
            else
                slc_error(c->d, t->pos,
                          "model '%s' routes to '%s', which has no price, but %s; add '%s' under "
                          "'prices:'",
                          m->name.s, id, who, id);
        }
    }
    free(seen);
    free(ix.p);
    free(reach);
}
