/*
 * Semantic checks and reference resolution (see check.h). Each rule is one
 * function over the spec, reporting every violation it finds; the order of
 * the calls does not matter for output because diagnostics are sorted by
 * position when printed.
 */
#include "check.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "glob.h"
#include "suggest.h"

typedef struct checker {
    slc_spec *s;
    slc_arena *a;
    slc_diags *d;
    bool scope_errors;   /* some key scope did not resolve */
    slc_strmap model_ix; /* model name -> entry index */
    /* Entry indices sorted by name, for prefix ranges (glob scopes). */
    uint32_t *by_name;
    slc_strmap scope_cache; /* glob in a key's models -> into scope_sets */
    uint32_t **scope_sets;  /* per cached glob: count, then entry indices */
    size_t nscope_sets;
} checker;

const char *slc_default_base_url(slc_kind k)
{
    switch (k) {
    case SLC_KIND_OPENAI:
        return "https://api.openai.com/v1";
    case SLC_KIND_ANTHROPIC:
        return "https://api.anthropic.com";
    case SLC_KIND_GEMINI:
        return "https://generativelanguage.googleapis.com";
    case SLC_KIND_MOCK:
        break;
    }
    return "";
}

static const char *provider_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->providers[i].name.s;
}

static const char *model_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->models[i].name.s;
}

static const char *team_at(const void *ctx, size_t i)
{
    return ((const slc_spec *)ctx)->teams[i].name.s;
}

static bool str_eq(slc_str a, const char *b)
{
    return a.s && strlen(b) == a.len && memcmp(a.s, b, a.len) == 0;
}

static int find_provider(const slc_spec *s, slc_str name)
{
    for (size_t i = 0; i < s->nproviders; i++)
        if (str_eq(name, s->providers[i].name.s))
            return (int)i;
    return -1;
}

static int find_model(const checker *c, slc_str name)
{
    size_t i = slc_strmap_get(&c->model_ix, name.s, name.len);
    return i == SIZE_MAX ? -1 : (int)i;
}

/* " (did you mean 'x'?)" or "". */
static const char *hint(checker *c, const char *word, slc_name_at at, size_t n)
{
    const char *h = slc_suggest_fn(word, at, c->s, n);
    return h ? slc_aprintf(c->a, " (did you mean '%s'?)", h) : "";
}

static bool valid_env_name(const char *s)
{
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || *s == '_'))
        return false;
    for (s++; *s; s++)
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
              *s == '_'))
            return false;
    return true;
}

/* `rest` is the URL after `http://`. */
static bool url_host_is_loopback(const char *rest)
{
    const char *at = rest + strcspn(rest, "/?#");
    const char *user = memchr(rest, '@', (size_t)(at - rest));
    if (user)
        rest = user + 1;
    char host[256];
    size_t n;
    if (rest[0] == '[') {
        n = strcspn(rest + 1, "]");
        rest++;
    } else {
        n = strcspn(rest, ":/?#");
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, rest, n);
    host[n] = '\0';
    for (char *h = host; *h; h++)
        if (*h >= 'A' && *h <= 'Z')
            *h = (char)(*h - 'A' + 'a');
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(addr, one, 16) == 0;
    }
    size_t hl = strlen(host);
    return strcmp(host, "localhost") == 0 ||
           (hl > 10 && strcmp(host + hl - 10, ".localhost") == 0);
}

static void check_providers(checker *c)
{
    for (size_t i = 0; i < c->s->nproviders; i++) {
        slc_provider *p = &c->s->providers[i];
        const char *name = p->name.s;
        if (p->kind == SLC_KIND_MOCK) {
            if (p->base_url.s)
                slc_error(c->d, p->base_url.pos,
                          "provider '%s': a mock provider answers locally and takes no base_url",
                          name);
            if (p->api_key.s)
                slc_error_redacted(c->d, p->api_key.pos, p->api_key.end,
                                   "provider '%s': a mock provider takes no api_key", name);
            p->base_url = (slc_str){.s = "", .len = 0};
            continue;
        }
        if (p->api_key.s) {
            if (strncmp(p->api_key.s, "env:", 4) != 0) {
                /* Point at it but never echo it: CI logs are not a vault. */
                slc_error_redacted(c->d, p->api_key.pos, p->api_key.end,
                                   "provider '%s': api_key must be env:NAME; a literal secret does "
                                   "not belong in the spec",
                                   name);
            } else if (!valid_env_name(p->api_key.s + 4)) {
                slc_error(c->d, p->api_key.pos,
                          "provider '%s': api_key '%s' does not name a valid environment variable",
                          name, p->api_key.s);
            } else {
                p->api_key_env = p->api_key.s + 4;
            }
        }
        if (!p->base_url.s) {
            const char *def = slc_default_base_url(p->kind);
            p->base_url = (slc_str){.s = def, .len = strlen(def)};
            continue;
        }
        if (strncmp(p->base_url.s, "http://", 7) != 0 && strncmp(p->base_url.s, "https://", 8) != 0) {
            slc_error(c->d, p->base_url.pos,
                      "provider '%s': base_url '%s' must start with http:// or https://", name,
                      p->base_url.s);
            continue;
        }
        if (strncmp(p->base_url.s, "http://", 7) == 0 && !url_host_is_loopback(p->base_url.s + 7))
            slc_warning(c->d, p->base_url.pos,
                        "provider '%s': base_url '%s' is plain HTTP to a host that is not "
                        "loopback; prompts%s cross the network unencrypted (use https://)",
                        name, p->base_url.s, p->api_key_env ? " and the provider key" : "");
        size_t len = p->base_url.len;
        while (len > 8 && p->base_url.s[len - 1] == '/')
            len--;
        if (len != p->base_url.len) {
            p->base_url.s = slc_strndup(c->a, p->base_url.s, len);
            p->base_url.len = len;
        }
    }
}

static void check_targets(checker *c)
{
    for (size_t i = 0; i < c->s->nmodels; i++) {
        slc_model *m = &c->s->models[i];
        for (size_t j = 0; j < m->ntargets; j++) {
            slc_target *t = &m->targets[j];
            if (!t->provider.s)
                continue;
            t->provider_idx = find_provider(c->s, t->provider);
            if (t->provider_idx < 0) {
                slc_error(c->d, t->provider.pos, "model '%s' targets unknown provider '%s'%s",
                          m->name.s, t->provider.s,
                          hint(c, t->provider.s, provider_at, c->s->nproviders));
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

static void check_fallbacks(checker *c)
{
    for (size_t i = 0; i < c->s->nmodels; i++) {
        slc_model *m = &c->s->models[i];
        m->fallback_idx = slc_alloc(c->a, (m->nfallbacks ? m->nfallbacks : 1) * sizeof(uint32_t));
        size_t kept = 0;
        for (size_t j = 0; j < m->nfallbacks; j++) {
            slc_str f = m->fallbacks[j];
            int idx = find_model(c, f);
            if (idx < 0) {
                slc_error(c->d, f.pos, "model '%s' falls back to unknown model '%s'%s", m->name.s,
                          f.s, hint(c, f.s, model_at, c->s->nmodels));
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
static void check_cycles(checker *c)
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

static void check_globs(checker *c)
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

static void check_unused(checker *c)
{
    for (size_t i = 0; i < c->s->nproviders; i++)
        if (!c->s->providers[i].used)
            slc_warning(c->d, c->s->providers[i].name.pos,
                        "provider '%s' is not used by any model", c->s->providers[i].name.s);
}

static void check_prices(checker *c)
{
    for (size_t i = 0; i < c->s->nprices; i++) {
        slc_price *p = &c->s->prices[i];
        if (!p->provider.s)
            continue;
        p->provider_idx = find_provider(c->s, p->provider);
        if (p->provider_idx < 0)
            slc_error(c->d, p->key.pos, "price '%s' names unknown provider '%s'%s", p->key.s,
                      p->provider.s, hint(c, p->provider.s, provider_at, c->s->nproviders));
    }
}

static void check_period(checker *c, slc_budget *b, const char *owner)
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
static const uint32_t *glob_scope(checker *c, const char *glob)
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

static void resolve_scope(checker *c, slc_key *k)
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
        int exact = find_model(c, m);
        if (exact < 0) {
            slc_error(c->d, m.pos, "key '%s' allows unknown model '%s'%s", k->name.s, m.s,
                      hint(c, m.s, model_at, s->nmodels));
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

static const char *money(checker *c, int64_t micros)
{
    return slc_aprintf(c->a, "$%lld.%02lld", (long long)(micros / 1000000),
                       (long long)(micros % 1000000 / 10000));
}

static void check_keys(checker *c)
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
                if (str_eq(k->team, s->teams[t].name.s))
                    k->team_idx = (int)t;
            if (k->team_idx < 0)
                slc_error(c->d, k->team.pos, "key '%s' belongs to unknown team '%s'%s", k->name.s,
                          k->team.s, hint(c, k->team.s, team_at, s->nteams));
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

int slc_parse_listen(const char *s, slc_listen *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    size_t hlen = (size_t)(colon - s);
    const char *host = s;
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return -1;
        host = s + 1;
        hlen -= 2;
    } else if (memchr(s, ':', hlen)) {
        return -1; /* a bare v6 address is ambiguous with the port */
    }
    if (hlen >= sizeof out->host)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    const char *p = colon + 1;
    unsigned port = 0;
    if (!*p)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return -1;
        port = port * 10 + (unsigned)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return -1;
    out->port = port;
    unsigned char addr[16];
    if (s[0] == '[') {
        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return -1;
        static const unsigned char one[16] = {[15] = 1};
        out->loopback = memcmp(addr, one, 16) == 0;
    } else if (inet_pton(AF_INET, out->host, addr) == 1) {
        out->loopback = addr[0] == 127;
    } else {
        for (const char *h = out->host; *h; h++)
            if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
                  *h == '-' || *h == '.'))
                return -1;
        out->loopback = strcmp(out->host, "localhost") == 0;
    }
    return 0;
}

int slc_parse_cidr(const char *s, uint8_t *family, uint8_t *prefix, uint8_t addr[16])
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof buf)
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(addr, 0, 16);
    unsigned max;
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = 6;
        max = 128;
    } else {
        return -1;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return -1;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -1;
    }
    *prefix = (uint8_t)bits;
    int masked = 0;
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
        uint8_t mask = (uint8_t)(keep ? 0xFFu << (8 - keep) : 0);
        if (addr[i] & ~mask)
            masked = 1;
        addr[i] &= mask;
    }
    return masked;
}

/* One listen address; false (reported) when malformed. */
static bool listen_addr(checker *c, const char *field, const slc_str *v, slc_listen *l)
{
    if (slc_parse_listen(v->s, l) == 0)
        return true;
    const char *colon = strchr(v->s, ':');
    bool bare_v6 = v->s[0] != '[' && colon && strchr(colon + 1, ':');
    slc_error(c->d, v->pos, "%s '%s' must be HOST:PORT or [IPV6]:PORT%s", field, v->s,
              bare_v6 ? " (put IPv6 addresses in brackets, like [::1]:4000)" : "");
    return false;
}

/* Keys travel in request headers: on plain HTTP off loopback anyone on the
 * path can read and replay them. */
static void check_plaintext(checker *c, const char *field, const slc_str *v, const slc_listen *l,
                            const char *remedy)
{
    slc_spec *s = c->s;
    if (l->loopback || !s->has_keys_section || s->allow_plaintext)
        return;
    slc_error(c->d, v->pos,
              "%s '%s' serves plain HTTP on an address that is not loopback, and clients send "
              "their keys in request headers: anyone on the network path can read and reuse "
              "them; %s",
              field, v->s, remedy);
}

static void check_listen(checker *c)
{
    slc_spec *s = c->s;
    slc_listen l, p;
    bool ok = listen_addr(c, "listen", &s->listen, &l);
    if (ok && !s->has_keys_section && !l.loopback)
        slc_error(c->d, s->listen.pos,
                  "listen '%s' is not a loopback address, but the spec has no 'keys': anyone who "
                  "can reach the port could spend your provider credit",
                  s->listen.s);
    if (ok && !s->tls.present)
        check_plaintext(c, "listen", &s->listen, &l,
                        "add 'tls:' (or, when a TLS proxy in front terminates HTTPS, write "
                        "'allow_plaintext: true')");
    if (!s->listen_plain.s)
        return;
    if (!s->tls.present) {
        if (s->tls.pos.line != 0)
            return; /* a broken `tls:` block, already reported */
        slc_error(c->d, s->listen_plain.pos,
                  "'listen_plain' adds a plain HTTP listener next to an HTTPS one, but the spec "
                  "has no 'tls:' ('listen' is already plain HTTP)");
        return;
    }
    if (!listen_addr(c, "listen_plain", &s->listen_plain, &p))
        return;
    if (ok && p.port == l.port && strcmp(p.host, l.host) == 0)
        slc_error(c->d, s->listen_plain.pos, "listen_plain '%s' is the same address as 'listen'",
                  s->listen_plain.s);
    if (!s->has_keys_section && !p.loopback)
        slc_error(c->d, s->listen_plain.pos,
                  "listen_plain '%s' is not a loopback address, but the spec has no 'keys': "
                  "anyone who can reach the port could spend your provider credit",
                  s->listen_plain.s);
    check_plaintext(c, "listen_plain", &s->listen_plain, &p,
                    "keep it on loopback (it is meant for local health checks), or write "
                    "'allow_plaintext: true'");
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

/* Entries some key may ask for, plus everything they fall back to:
 * reach[i] is the index + 1 of the first key that reaches entry i. With
 * `usd_only`, only keys spending against a USD budget count. */
static size_t *reachable(checker *c, bool usd_only)
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
static void check_unreachable(checker *c)
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
static void check_priced(checker *c)
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
                     : price_exact(&ix, t->provider_idx, model))
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

void slc_check(slc_spec *s, slc_arena *a, slc_diags *d)
{
    checker c = {.s = s, .a = a, .d = d};
    slc_strmap_init(&c.model_ix, s->nmodels);
    for (size_t i = 0; i < s->nmodels; i++)
        slc_strmap_put(&c.model_ix, s->models[i].name.s, s->models[i].name.len, i);
    check_providers(&c);
    check_targets(&c);
    check_fallbacks(&c);
    check_cycles(&c);
    check_globs(&c);
    check_unused(&c);
    check_prices(&c);
    check_keys(&c);
    check_listen(&c);
    check_unreachable(&c);
    check_priced(&c);
    slc_strmap_free(&c.model_ix);
    slc_strmap_free(&c.scope_cache);
    free(c.by_name);
    free(c.scope_sets);
}
