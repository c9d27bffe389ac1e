/*
 * `cache:` through the compiler (see cache.h). A model entry or a key may
 * say
 *
 *   cache: { mode: exact|semantic, ttl: 10m, max_bytes: 64MiB, scope: key|shared,
 *            allow_temperature: false,
 *            semantic: { provider: NAME, model: NAME, threshold: 0.92 } }
 *
 * or `cache: false` (a key opting out of its entries' caches). Every
 * field is optional except the semantic provider and model.
 */
#include "cache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache/rule.h"
#include "core/proto.h"
#include "emit.h"
#include "spec_internal.h"
#include "explain.h"
#include "presets.h"
#include "suggest.h"
#include "units.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct rd {
    slc_diags *d;
    slc_arena *a;
    const char *where; /* "cache of model 'smart'" */
} rd;

/* Unknown keys are reported by the spec reader's one check. */
static void unknown_keys(rd *r, const slc_node *map, const char *const *allowed, size_t n,
                         const char *where)
{
    slc_builder b = {.a = r->a, .d = r->d};
    slc_spec_check_keys(&b, map, allowed, n, where);
}

/* A non-empty scalar, or NULL (absent, or reported). */
static const slc_node *scalar(rd *r, const slc_node *map, const char *key, const char *where)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n)
        return NULL;
    if (n->kind != SLC_NODE_SCALAR || slc_node_is_null(n) || n->len == 0 || memchr(n->str, '\0', n->len)) {
        slc_error(r->d, n->pos, "expected a non-empty scalar for '%s' in %s, got %s", key, where,
                  slc_node_describe(n));
        return NULL;
    }
    return n;
}

static void read_semantic(rd *r, const slc_node *n, slc_cache *c)
{
    const char *where = slc_aprintf(r->a, "'semantic' of the %s", r->where);
    if (n->kind != SLC_NODE_MAP) {
        slc_error(r->d, n->pos, "expected a mapping for %s, got %s", where, slc_node_describe(n));
        return;
    }
    static const char *const keys[] = {"provider", "model", "threshold"};
    unknown_keys(r, n, keys, COUNT(keys), where);
    const slc_node *p = scalar(r, n, "provider", where), *m = scalar(r, n, "model", where);
    if (p)
        c->sem_provider = (slc_str){.s = p->str, .len = p->len, .pos = p->pos, .end = p->end};
    else if (!slc_map_get(n, "provider"))
        slc_error(r->d, n->pos, "%s is missing 'provider' (the embeddings provider)", where);
    if (m)
        c->sem_model = (slc_str){.s = m->str, .len = m->len, .pos = m->pos, .end = m->end};
    else if (!slc_map_get(n, "model"))
        slc_error(r->d, n->pos, "%s is missing 'model' (the embeddings model)", where);
    const slc_node *t = scalar(r, n, "threshold", where);
    if (t) {
        char *end = NULL;
        double v = strtod(t->str, &end);
        if (end == t->str || *end || !(v > 0.0 && v <= 1.0))
            slc_error(r->d, t->pos, "'threshold' in %s must be a number above 0 and at most 1, got '%s'",
                      where, t->str);
        else
            c->threshold = v;
    }
}

void slc_cache_read(slc_diags *d, slc_arena *a, const slc_node *owner, const char *where, slc_cache *out)
{
    out->sem_provider_idx = -1;
    const slc_node *n = slc_map_get(owner, "cache");
    if (!n)
        return;
    rd r = {.d = d, .a = a, .where = slc_aprintf(a, "cache of %s", where)};
    out->pos = n->pos;
    if (n->kind == SLC_NODE_SCALAR && strcmp(n->str, "false") == 0) {
        out->mode = SLC_CACHE_OFF;
        return;
    }
    if (n->kind != SLC_NODE_MAP) {
        slc_error(d, n->pos, "expected a mapping or false for 'cache' in %s, got %s", where,
                  n->kind == SLC_NODE_SCALAR && !slc_node_is_null(n) ? slc_aprintf(a, "'%s'", n->str)
                                                                      : slc_node_describe(n));
        return;
    }
    out->mode = SLC_CACHE_EXACT;
    out->ttl_ms = SLC_CACHE_TTL_MS;
    out->max_bytes = SLC_CACHE_MAX_BYTES;
    out->threshold = SLC_CACHE_THRESHOLD;
    static const char *const keys[] = {"mode", "ttl", "max_bytes", "scope", "allow_temperature", "semantic"};
    unknown_keys(&r, n, keys, COUNT(keys), r.where);
    slc_builder b = {.a = a, .d = d};
    static const char *const modes[] = {"exact", "semantic"};
    if (slc_spec_enum_field(&b, n, "mode", r.where, modes, COUNT(modes)) == 1)
        out->mode = SLC_CACHE_SEMANTIC;
    static const char *const scopes[] = {"key", "shared"};
    out->shared = slc_spec_enum_field(&b, n, "scope", r.where, scopes, COUNT(scopes)) == 1;
    slc_pos tpos;
    slc_spec_bool_field(&b, n, "allow_temperature", r.where, &out->allow_temperature, &tpos);
    char err[128];
    const slc_node *v = scalar(&r, n, "ttl", r.where);
    if (v) {
        uint32_t ms;
        if (slc_parse_duration_ms(v->str, v->len, &ms, err, sizeof err) != 0)
            slc_error(d, v->pos, "invalid duration '%s' for 'ttl' in %s: %s", v->str, r.where, err);
        else if (ms < 1000)
            slc_error(d, v->pos, "'ttl' in %s must be at least 1s", r.where);
        else
            out->ttl_ms = ms;
    }
    v = scalar(&r, n, "max_bytes", r.where);
    if (v) {
        uint64_t bytes;
        if (slc_parse_size(v->str, v->len, &bytes, err, sizeof err) != 0)
            slc_error(d, v->pos, "invalid size '%s' for 'max_bytes' in %s: %s", v->str, r.where, err);
        else if (bytes < 4096 || bytes > (1ull << 40))
            slc_error(d, v->pos, "'max_bytes' in %s must be between 4KiB and 1TiB", r.where);
        else
            out->max_bytes = bytes;
    }
    const slc_node *sem = slc_map_get(n, "semantic");
    if (sem && out->mode != SLC_CACHE_SEMANTIC)
        slc_error(d, sem->pos, "'semantic' in %s is used only with 'mode: semantic'", r.where);
    else if (sem)
        read_semantic(&r, sem, out);
    else if (out->mode == SLC_CACHE_SEMANTIC)
        slc_error(d, n->pos, "%s has 'mode: semantic' but no 'semantic: { provider, model }'", r.where);
}

/* ---- check -------------------------------------------------------------- */

static const char *provider_at(const void *spec, size_t i)
{
    return ((const slc_spec *)spec)->providers[i].name.s;
}

static void check_one(slc_spec *s, slc_diags *d, slc_cache *c, const char *where)
{
    if (c->mode != SLC_CACHE_SEMANTIC || !c->sem_provider.s)
        return;
    for (size_t i = 0; i < s->nproviders; i++)
        if (s->providers[i].name.len == c->sem_provider.len &&
            memcmp(s->providers[i].name.s, c->sem_provider.s, c->sem_provider.len) == 0)
            c->sem_provider_idx = (int)i;
    if (c->sem_provider_idx < 0) {
        const char *hint = slc_suggest_fn(c->sem_provider.s, provider_at, s, s->nproviders);
        slc_error(d, c->sem_provider.pos, "cache of %s names unknown embeddings provider '%s'%s%s%s", where,
                  c->sem_provider.s, hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
        return;
    }
    slc_provider *p = &s->providers[c->sem_provider_idx];
    p->used = true;
    const slc_preset *ps = slc_preset_of(p);
    if (p->kind != SLC_KIND_OPENAI || (ps && ps->ops && !(ps->ops & (1u << SL_OP_EMBEDDINGS))))
        slc_error(d, c->sem_provider.pos,
                  "cache of %s: provider '%s' is of kind %s, which serves no embeddings (use an openai-kind "
                  "provider such as OpenAI, Ollama or vLLM)",
                  where, p->name.s, p->kind_word.s ? p->kind_word.s : slc_kind_name(p->kind));
}

void slc_cache_check(slc_spec *s, slc_diags *d)
{
    char where[300];
    for (size_t i = 0; i < s->nmodels; i++) {
        snprintf(where, sizeof where, "model '%s'", s->models[i].name.s);
        check_one(s, d, &s->models[i].cache, where);
    }
    for (size_t i = 0; i < s->nkeys; i++) {
        snprintf(where, sizeof where, "key '%s'", s->keys[i].name.s);
        check_one(s, d, &s->keys[i].cache, where);
    }
}

/* ---- lower and emit ------------------------------------------------------ */

static sl_cache_rule rule_of(const slc_cache *c, int of_key, uint32_t owner)
{
    return (sl_cache_rule){
        .mode = c->mode == SLC_CACHE_SEMANTIC ? SL_CACHE_SEMANTIC
                : c->mode == SLC_CACHE_EXACT  ? SL_CACHE_EXACT
                                              : SL_CACHE_OFF,
        .of_key = (uint8_t)of_key, .shared = c->shared, .allow_temperature = c->allow_temperature,
        .owner = owner, .ttl_ms = c->ttl_ms, .max_bytes = c->max_bytes,
        .sem_provider = c->mode == SLC_CACHE_SEMANTIC ? c->sem_provider_idx : -1,
        .sem_model = c->mode == SLC_CACHE_SEMANTIC ? c->sem_model.s : NULL,
        .threshold = c->mode == SLC_CACHE_SEMANTIC ? c->threshold : 0,
    };
}

sl_cache_rule *slc_cache_lower(const slc_spec *s, uint32_t *n)
{
    *n = 0;
    sl_cache_rule *r = calloc(s->nmodels + s->nkeys + 1, sizeof *r);
    if (!r)
        abort();
    for (size_t i = 0; i < s->nmodels; i++)
        if (s->models[i].cache.mode != SLC_CACHE_NONE)
            r[(*n)++] = rule_of(&s->models[i].cache, 0, (uint32_t)i);
    for (size_t i = 0; i < s->nkeys; i++)
        if (s->keys[i].cache.mode != SLC_CACHE_NONE)
            r[(*n)++] = rule_of(&s->keys[i].cache, 1, (uint32_t)i);
    return r;
}

void slc_cache_emit(const sl_table *t, slc_buf *out)
{
    if (!t->cache_rule_count)
        return;
    static const char *const modes[] = {"SL_CACHE_OFF", "SL_CACHE_EXACT", "SL_CACHE_SEMANTIC"};
    slc_buf_printf(out, "\nstatic const sl_cache_rule sl_spec_cache_rules[%u] = {\n", t->cache_rule_count);
    for (uint32_t i = 0; i < t->cache_rule_count; i++) {
        const sl_cache_rule *r = &t->cache_rules[i];
        slc_buf_printf(out,
                       "    [%u] = {.mode = %s, .of_key = %u, .shared = %u, .allow_temperature = %u,\n"
                       "           .owner = %u, .ttl_ms = %u, .max_bytes = %lluu,\n"
                       "           .sem_provider = %d, .sem_model = ",
                       i, modes[r->mode], r->of_key, r->shared, r->allow_temperature, r->owner, r->ttl_ms,
                       (unsigned long long)r->max_bytes, r->sem_provider);
        if (r->sem_model)
            slc_emit_c_string(out, r->sem_model, strlen(r->sem_model));
        else
            slc_buf_puts(out, "NULL");
        slc_buf_printf(out, ", .threshold = %.17g},\n", r->threshold);
    }
    slc_buf_puts(out, "};\n");
}

/* ---- diff and explain ------------------------------------------------------- */

void slc_cache_describe(slc_buf *b, const slc_cache *c)
{
    if (c->mode == SLC_CACHE_NONE || c->mode == SLC_CACHE_OFF) {
        slc_buf_puts(b, c->mode == SLC_CACHE_OFF ? "off (cache: false)" : "none");
        return;
    }
    slc_buf_printf(b, "%s, scope %s, ttl ", c->mode == SLC_CACHE_SEMANTIC ? "semantic" : "exact",
                   c->shared ? "shared" : "key");
    slc_fmt_duration(b, c->ttl_ms);
    slc_buf_printf(b, ", max_bytes %llu%s", (unsigned long long)c->max_bytes,
                   c->allow_temperature ? ", any temperature" : "");
    if (c->mode == SLC_CACHE_SEMANTIC)
        slc_buf_printf(b, ", embeddings %s/%s at %.4g", c->sem_provider.s ? c->sem_provider.s : "?",
                       c->sem_model.s ? c->sem_model.s : "?", c->threshold);
}

static void jstr(slc_buf *b, const char *s)
{
    slc_buf_putc(b, '"');
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\')
            slc_buf_printf(b, "\\%c", ch);
        else if (ch < 0x20)
            slc_buf_printf(b, "\\u%04x", ch);
        else
            slc_buf_putc(b, (char)ch);
    }
    slc_buf_putc(b, '"');
}

void slc_cache_explain(const sl_table *t, int entry, int key, int json, slc_buf *b)
{
    if (!t->cache_rule_count)
        return; /* a spec without cache: says nothing about it */
    int i = sl_cache_rule_for(t, entry, key);
    const sl_cache_rule *r = i >= 0 ? &t->cache_rules[i] : NULL;
    const char *owner = !r ? NULL : r->of_key ? t->keys[r->owner].name : t->models[r->owner].name;
    if (json) {
        if (!r) {
            slc_buf_puts(b, ",\"cache\":null");
            return;
        }
        slc_buf_puts(b, ",\"cache\":");
        slc_buf_printf(b, "{\"from\":\"%s\",\"owner\":", r->of_key ? "key" : "model");
        jstr(b, owner);
        slc_buf_printf(b, ",\"mode\":\"%s\",\"scope\":\"%s\",\"ttl_ms\":%u,\"max_bytes\":%llu,"
                          "\"allow_temperature\":%s",
                       r->mode == SL_CACHE_SEMANTIC ? "semantic" : "exact", r->shared ? "shared" : "key",
                       r->ttl_ms, (unsigned long long)r->max_bytes, r->allow_temperature ? "true" : "false");
        if (r->mode == SL_CACHE_SEMANTIC) {
            slc_buf_puts(b, ",\"semantic\":{\"provider\":");
            const char *p = t->providers[r->sem_provider].name;
            jstr(b, p);
            slc_buf_puts(b, ",\"model\":");
            jstr(b, r->sem_model);
            slc_buf_printf(b, ",\"threshold\":%.4g}", r->threshold);
        }
        slc_buf_putc(b, '}');
        return;
    }
    slc_buf_puts(b, "\ncache:\n");
    if (!r) {
        int off = 0;
        for (uint32_t j = 0; j < t->cache_rule_count; j++)
            off |= t->cache_rules[j].of_key && key >= 0 && t->cache_rules[j].owner == (uint32_t)key;
        slc_buf_puts(b, off ? "  none: this key says 'cache: false'\n" : "  none: answers are not cached\n");
        return;
    }
    slc_buf_printf(b, "  %s (from %s '%s'), scope %s, ttl ", r->mode == SL_CACHE_SEMANTIC ? "semantic" : "exact",
                   r->of_key ? "key" : "model", owner,
                   r->shared ? "shared (one answer for every key)" : "key (each key its own answers)");
    slc_fmt_duration(b, r->ttl_ms);
    slc_buf_printf(b, ", at most %llu bytes (LRU)\n", (unsigned long long)r->max_bytes);
    slc_buf_puts(b, r->allow_temperature ? "  requests at any temperature are cached\n"
                                         : "  only requests with temperature 0 are cached\n");
    if (r->mode == SL_CACHE_SEMANTIC)
        slc_buf_printf(b, "  similar prompts: embeddings from %s/%s, hit at cosine similarity >= %.4g\n",
                       t->providers[r->sem_provider].name, r->sem_model, r->threshold);
}
