/*
 * Explain (see explain.h). Text output is meant for people and kept
 * stable line by line so it can be pasted into reviews; --format=json
 * carries the same facts for tools. Nothing here is on a hot path: specs
 * are small next to the cost of printing them, so plain linear scans.
 */
#include "explain.h"
#include "explain_catalog.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "catalog.h"
#include "glob.h"
#include "guard.h"
#include "lower.h"
#include "route/glob.h"

int slc_match_model(const slc_spec *s, const char *name, size_t len)
{
    /* The runtime refuses these before the DFA sees them. */
    if (len == 0 || len > 1024 || memchr(name, '\0', len))
        return -1;
    for (size_t i = 0; i < s->nmodels; i++)
        if (!s->models[i].is_glob && s->models[i].name.len == len &&
            memcmp(s->models[i].name.s, name, len) == 0)
            return (int)i;
    int best = -1;
    size_t best_prefix = 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        const slc_model *m = &s->models[i];
        if (!m->is_glob || !m->emitted || !slc_glob_match(m->name.s, name))
            continue;
        size_t p = slc_glob_prefix_len(m->name.s);
        if (best < 0 || p > best_prefix) {
            best = (int)i;
            best_prefix = p;
        }
    }
    return best;
}

void slc_fmt_duration(slc_buf *b, uint32_t ms)
{
    if (ms == 0)
        slc_buf_puts(b, "0s");
    else if (ms % 3600000 == 0)
        slc_buf_printf(b, "%uh", ms / 3600000);
    else if (ms % 60000 == 0)
        slc_buf_printf(b, "%um", ms / 60000);
    else if (ms % 1000 == 0)
        slc_buf_printf(b, "%us", ms / 1000);
    else if (ms > 1000) {
        char frac[8];
        snprintf(frac, sizeof frac, "%03u", ms % 1000);
        for (int i = 2; i > 0 && frac[i] == '0'; i--)
            frac[i] = '\0';
        slc_buf_printf(b, "%u.%ss", ms / 1000, frac);
    } else
        slc_buf_printf(b, "%ums", ms);
}

void slc_fmt_money(slc_buf *b, int64_t micros)
{
    long long whole = micros / 1000000, frac = micros % 1000000;
    if (frac % 10000 == 0)
        slc_buf_printf(b, "$%lld.%02lld", whole, frac / 10000);
    else {
        char f[8];
        snprintf(f, sizeof f, "%06lld", frac);
        for (int i = 5; i > 2 && f[i] == '0'; i--)
            f[i] = '\0';
        slc_buf_printf(b, "$%lld.%s", whole, f);
    }
}

static bool bit(const slc_retry *r, int code)
{
    return (r->status_bits[code / 64] >> (code % 64)) & 1;
}

/* "408, 429, 5xx, connect, timeout": whole classes collapse, runs become
 * ranges. */
void slc_fmt_retry_on(slc_buf *b, const slc_retry *r)
{
    size_t start = b->len;
    for (int cls = 1; cls <= 5; cls++) {
        int base = cls * 100;
        bool all = true;
        for (int c = base; c < base + 100 && all; c++)
            all = bit(r, c);
        if (all) {
            slc_buf_printf(b, "%s%dxx", b->len > start ? ", " : "", cls);
            continue;
        }
        for (int c = base; c < base + 100; c++) {
            if (!bit(r, c))
                continue;
            int e = c;
            while (e + 1 < base + 100 && bit(r, e + 1))
                e++;
            if (e == c)
                slc_buf_printf(b, "%s%d", b->len > start ? ", " : "", c);
            else
                slc_buf_printf(b, "%s%d-%d", b->len > start ? ", " : "", c, e);
            c = e;
        }
    }
    if (r->on_connect)
        slc_buf_printf(b, "%sconnect", b->len > start ? ", " : "");
    if (r->on_timeout)
        slc_buf_printf(b, "%stimeout", b->len > start ? ", " : "");
    if (b->len == start)
        slc_buf_puts(b, "nothing");
}

/* ---- output helpers ------------------------------------------------------ */

static void jstr(slc_buf *b, const char *s)
{
    if (!s)
        slc_buf_puts(b, "null");
    else
        slc_buf_json_string(b, s, strlen(s));
}

static void budget_text(slc_buf *b, const slc_budget *bu)
{
    if (!bu->present) {
        slc_buf_puts(b, "none");
        return;
    }
    bool any = false;
    if (bu->usd_micros >= 0) {
        slc_fmt_money(b, bu->usd_micros);
        any = true;
    }
    if (bu->tokens >= 0)
        slc_buf_printf(b, "%s%lld tokens", any ? " and " : "", (long long)bu->tokens);
    slc_buf_printf(b, " per %s", bu->per.s ? bu->per.s : "?");
}

static void limits_text(slc_buf *b, const slc_limits *l)
{
    if (!l->rpm && !l->tpm) {
        slc_buf_puts(b, "none");
        return;
    }
    if (l->rpm)
        slc_buf_printf(b, "%u requests/min", l->rpm);
    if (l->tpm)
        slc_buf_printf(b, "%s%u tokens/min", l->rpm ? ", " : "", l->tpm);
}

static void budget_json(slc_buf *b, const slc_budget *bu)
{
    if (!bu->present) {
        slc_buf_puts(b, "null");
        return;
    }
    slc_buf_puts(b, "{\"usd\":");
    if (bu->usd_micros >= 0) {
        slc_buf_putc(b, '"');
        slc_fmt_money(b, bu->usd_micros);
        slc_buf_putc(b, '"');
    } else
        slc_buf_puts(b, "null");
    if (bu->tokens >= 0)
        slc_buf_printf(b, ",\"tokens\":%lld", (long long)bu->tokens);
    else
        slc_buf_puts(b, ",\"tokens\":null");
    slc_buf_puts(b, ",\"per\":");
    jstr(b, bu->per.s);
    slc_buf_putc(b, '}');
}

static void limits_json(slc_buf *b, const slc_limits *l)
{
    slc_buf_printf(b, "{\"rpm\":%u,\"tpm\":%u}", l->rpm, l->tpm);
}

static bool key_allows(const slc_key *k, uint32_t entry)
{
    if (k->all_models)
        return true;
    for (size_t i = 0; i < k->nscope; i++)
        if (k->scope[i] == entry)
            return true;
    return false;
}

/* ---- explain ------------------------------------------------------------- */

typedef struct ctx {
    const slc_spec *s;
    slc_lowered low;   /* what the gateway would be built from */
    const char *name;
    int entry;
    const slc_key *key;
    sl_attempt plan[SLC_PLAN_MAX];
    size_t nplan;
    /* Entries that appear in the plan, in plan order. */
    uint32_t groups[SLC_PLAN_MAX];
    size_t ngroups;
    /* Providers used by the plan, in first-use order. */
    uint16_t providers[SLC_PLAN_MAX];
    size_t nproviders;
} ctx;

/* What the attempt asks its provider for, by the gateway's own rule
 * (runtime/route), never a rule of explain's. */
static const char *upstream(const ctx *c, sl_attempt a)
{
    return sl_route_upstream_model(&c->low.t, &a, c->name);
}

static const char *provider_of(const ctx *c, sl_attempt a)
{
    return c->low.t.providers[c->low.t.targets[a.target].provider].name;
}

static void attempt_label(slc_buf *b, const ctx *c, sl_attempt a)
{
    slc_buf_printf(b, "%s/%s", provider_of(c, a), upstream(c, a));
}

/* The attempt for the entry's j-th target as written in the spec. */
static sl_attempt target_attempt(const ctx *c, uint32_t entry, size_t j)
{
    return (sl_attempt){entry, c->low.t.models[entry].target_first + (uint32_t)j};
}

static void prepare(ctx *c)
{
    c->nplan = slc_plan_first(&c->low.t, (uint32_t)c->entry, c->plan);
    for (size_t i = 0; i < c->nplan; i++) {
        if (!c->ngroups || c->groups[c->ngroups - 1] != c->plan[i].entry)
            c->groups[c->ngroups++] = c->plan[i].entry;
        uint16_t p = c->low.t.targets[c->plan[i].target].provider;
        bool seen = false;
        for (size_t k = 0; k < c->nproviders && !seen; k++)
            seen = c->providers[k] == p;
        if (!seen)
            c->providers[c->nproviders++] = p;
    }
}

typedef struct rival {
    size_t idx;
    const char *why;
} rival;

/* Globs that also match the name, and why each loses. */
static size_t rivals(const ctx *c, rival *out)
{
    const slc_spec *s = c->s;
    const slc_model *win = &s->models[c->entry];
    size_t n = 0, wp = win->is_glob ? slc_glob_prefix_len(win->name.s) : 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        const slc_model *m = &s->models[i];
        if ((int)i == c->entry || !m->is_glob || !slc_glob_match(m->name.s, c->name))
            continue;
        size_t p = slc_glob_prefix_len(m->name.s);
        const char *why;
        if (!m->emitted)
            why = "never matches: an earlier glob covers every name it matches";
        else if (!win->is_glob)
            why = "an exact name wins over every glob";
        else if (p < wp)
            why = "shorter literal prefix";
        else
            why = "same literal prefix, later in the spec";
        out[n++] = (rival){i, why};
    }
    return n;
}

static void text_retry(slc_buf *b, const slc_model *m)
{
    const slc_retry *r = &m->retry;
    slc_buf_printf(b, "  %s: %lld retr%s", m->name.s, (long long)r->attempts,
                   r->attempts == 1 ? "y" : "ies");
    if (r->attempts) {
        slc_buf_puts(b, ", backoff ");
        slc_fmt_duration(b, r->backoff_ms);
        slc_buf_puts(b, " doubling up to ");
        slc_fmt_duration(b, r->cap_ms);
        slc_buf_puts(b, " (with jitter; Retry-After honoured up to the cap), on ");
        slc_fmt_retry_on(b, r);
    }
    slc_buf_putc(b, '\n');
}

/* The price the gateway charges for attempt a (its own lookup), and where
 * it came from. */
static const sl_price *attempt_price(const ctx *c, sl_attempt a, const char **source)
{
    const sl_table *t = &c->low.t;
    const sl_price *p = sl_price_for(t, t->targets[a.target].provider, upstream(c, a));
    if (p && source)
        *source = c->s->prices[p - t->prices].from_catalog ? "catalog" : "spec";
    return p;
}

static void explain_text(ctx *c, slc_buf *b)
{
    const slc_spec *s = c->s;
    const slc_model *e = &s->models[c->entry];
    slc_buf_printf(b, "model '%s' -> entry '%s' (%s, line %u)\n", c->name, e->name.s,
                   e->is_glob ? "glob" : "exact name", e->name.pos.line);
    if (e->is_glob) {
        size_t p = slc_glob_prefix_len(e->name.s);
        slc_buf_printf(b, "  matched by glob '%s', literal prefix '%.*s' (%zu character%s); no "
                          "exact entry has this name\n",
                       e->name.s, (int)p, e->name.s, p, p == 1 ? "" : "s");
    } else {
        slc_buf_puts(b, "  matched exactly; exact names win over globs\n");
    }
    rival *rv = calloc(s->nmodels ? s->nmodels : 1, sizeof *rv);
    if (!rv)
        abort();
    size_t nr = rivals(c, rv);
    for (size_t i = 0; i < nr; i++) {
        const slc_model *m = &s->models[rv[i].idx];
        size_t p = slc_glob_prefix_len(m->name.s);
        slc_buf_printf(b, "  also matches: '%s' (literal prefix '%.*s') loses: %s\n", m->name.s,
                       (int)p, m->name.s, rv[i].why);
    }
    free(rv);

    slc_buf_printf(b, "\ntargets (smooth weighted round-robin):\n");
    int64_t total = 0;
    for (size_t i = 0; i < e->ntargets; i++)
        total += e->targets[i].weight;
    for (size_t i = 0; i < e->ntargets; i++) {
        const slc_target *t = &e->targets[i];
        slc_buf_puts(b, "  ");
        attempt_label(b, c, target_attempt(c, (uint32_t)c->entry, i));
        slc_buf_printf(b, "  weight %lld (%lld%% of requests)%s\n", (long long)t->weight,
                       total ? (long long)(t->weight * 100 + total / 2) / total : 0,
                       t->model.s ? "" : "  [upstream model = the name the client sent]");
    }
    if (e->nfallbacks) {
        slc_buf_puts(b, "fallbacks:");
        for (size_t i = 0; i < e->nfallbacks; i++)
            slc_buf_printf(b, "%s %s", i ? "," : "", e->fallbacks[i].s);
        slc_buf_putc(b, '\n');
    } else {
        slc_buf_puts(b, "fallbacks: none\n");
    }

    slc_buf_puts(b, "\nattempt plan for the first request after start (at most 16):\n");
    for (size_t i = 0; i < c->nplan; i++) {
        slc_buf_printf(b, "  %2zu. [%s] ", i + 1, s->models[c->plan[i].entry].name.s);
        attempt_label(b, c, c->plan[i]);
        slc_buf_putc(b, '\n');
    }
    slc_buf_puts(b, "  Later requests rotate the first pick in proportion to the weights. Within\n"
                    "  an entry a retryable failure moves to its next target after a backoff,\n"
                    "  until its retries are spent; then the next entry starts at once. Targets\n"
                    "  whose circuit is open are skipped while any other is usable.\n");

    slc_buf_puts(b, "\nprices and model limits (per target in the plan):\n");
    bool used_catalog = false;
    for (size_t i = 0; i < c->nplan; i++) {
        bool dup = false;
        for (size_t j = 0; j < i && !dup; j++)
            dup = c->plan[j].target == c->plan[i].target;
        const sl_target *tg = &c->low.t.targets[c->plan[i].target];
        const sl_provider *pv = &c->low.t.providers[tg->provider];
        if (dup || pv->kind == SL_KIND_MOCK)
            continue;
        slc_buf_puts(b, "  ");
        attempt_label(b, c, c->plan[i]);
        slc_buf_puts(b, ": ");
        const char *src = NULL;
        const sl_price *p = attempt_price(c, c->plan[i], &src);
        used_catalog |= (src && strcmp(src, "catalog") == 0) || (tg->caps & SL_CAP_KNOWN);
        if (p)
            slc_explain_price_text(b, p, src);
        else
            slc_buf_puts(b, "no price (a USD budget never calls it)");
        const slc_model *pe = &s->models[c->plan[i].entry];
        const slc_target *st = &pe->targets[c->plan[i].target - c->low.t.models[c->plan[i].entry].target_first];
        slc_buf_puts(b, "\n    ");
        if (st->cat)
            slc_buf_printf(b, "context %u, ", st->cat->context);
        slc_explain_caps_text(b, tg, pv->kind);
        slc_buf_putc(b, '\n');
    }
    if (used_catalog)
        slc_buf_printf(b, "  catalog: %s\n", slc_catalog_source());

    slc_buf_puts(b, "\nretries:\n");
    for (size_t g = 0; g < c->ngroups; g++)
        text_retry(b, &s->models[c->groups[g]]);
    slc_buf_puts(b, "\ncooldown (circuit breaker per target):\n");
    for (size_t g = 0; g < c->ngroups; g++) {
        const slc_model *m = &s->models[c->groups[g]];
        uint32_t f = m->cooldown_failures ? m->cooldown_failures : 5;
        uint32_t ms = m->cooldown_ms ? m->cooldown_ms : 30000;
        slc_buf_printf(b, "  %s: after %u consecutive failure%s a target rests for ", m->name.s, f,
                       f == 1 ? "" : "s");
        slc_fmt_duration(b, ms);
        slc_buf_printf(b, ", then one probe decides%s\n",
                       m->cooldown_failures || m->cooldown_ms ? "" : " (runtime default)");
    }
    slc_buf_puts(b, "\ntimeouts:\n");
    for (size_t i = 0; i < c->nproviders; i++) {
        const slc_provider *p = &s->providers[c->providers[i]];
        slc_buf_printf(b, "  %s (%s", p->name.s, p->kind_word.s ? p->kind_word.s : slc_kind_name(p->kind));
        if (p->kind == SLC_KIND_MOCK) {
            slc_buf_puts(b, ", answers locally)\n");
            continue;
        }
        slc_buf_printf(b, ", %s): connect ", p->base_url.s);
        slc_fmt_duration(b, p->connect_ms);
        slc_buf_puts(b, ", first byte ");
        slc_fmt_duration(b, p->first_byte_ms);
        slc_buf_puts(b, ", idle ");
        slc_fmt_duration(b, p->idle_ms);
        slc_buf_puts(b, ", total ");
        slc_fmt_duration(b, p->total_ms);
        slc_buf_putc(b, '\n');
    }
    slc_cache_explain(&c->low.t, c->entry, c->key ? (int)(c->key - s->keys) : -1, 0, b);

    if (!c->key) {
        if (s->nkeys)
            slc_buf_printf(b, "\nkeys: %zu in the spec; add --key NAME to see one key's access\n",
                           s->nkeys);
        else
            slc_buf_puts(b, "\nkeys: none; the gateway serves any client that can reach it\n");
        return;
    }
    const slc_key *k = c->key;
    bool ok = key_allows(k, (uint32_t)c->entry);
    slc_buf_printf(b, "\nkey '%s': %s\n", k->name.s,
                   ok ? (k->all_models ? "may use this entry (it may use every model)"
                                       : "may use this entry (listed in its models)")
                      : "may NOT use this entry: the gateway answers 403");
    if (ok && c->nplan && c->ngroups > 1)
        slc_buf_puts(b, "  fallbacks are served whatever the key's models list says\n");
    if (k->team_idx >= 0) {
        const slc_team *t = &s->teams[k->team_idx];
        slc_buf_printf(b, "  team: %s\n  team budget: ", t->name.s);
        budget_text(b, &t->budget);
        slc_buf_puts(b, "\n  team limits: ");
        limits_text(b, &t->limits);
        slc_buf_putc(b, '\n');
    } else {
        slc_buf_puts(b, "  team: none\n");
    }
    slc_buf_puts(b, "  key budget: ");
    budget_text(b, &k->budget);
    slc_buf_puts(b, "\n  key limits: ");
    limits_text(b, &k->limits);
    slc_buf_puts(b, "\n  expires: ");
    if (k->expires.s)
        slc_buf_printf(b, "%s", k->expires.s);
    else
        slc_buf_puts(b, "never");
    slc_buf_puts(b, "\n  allowed addresses: ");
    if (!k->ncidrs)
        slc_buf_puts(b, "any");
    for (size_t i = 0; i < k->ncidrs; i++)
        slc_buf_printf(b, "%s%s", i ? ", " : "", k->cidrs[i].text.s);
    slc_buf_putc(b, '\n');
}

static void json_retry(slc_buf *b, const slc_model *m)
{
    const slc_retry *r = &m->retry;
    slc_buf_printf(b, "{\"attempts\":%lld,\"backoff_ms\":%u,\"cap_ms\":%u,\"on\":",
                   (long long)r->attempts, r->backoff_ms, r->cap_ms);
    slc_buf on = {0};
    slc_fmt_retry_on(&on, r);
    jstr(b, on.p);
    slc_buf_free(&on);
    slc_buf_putc(b, '}');
}

static void explain_json(ctx *c, slc_buf *b)
{
    const slc_spec *s = c->s;
    const slc_model *e = &s->models[c->entry];
    slc_buf_puts(b, "{\"model\":");
    jstr(b, c->name);
    slc_buf_puts(b, ",\"entry\":{\"name\":");
    jstr(b, e->name.s);
    slc_buf_printf(b, ",\"index\":%d,\"match\":\"%s\",\"line\":%u,\"column\":%u", c->entry,
                   e->is_glob ? "glob" : "exact", e->name.pos.line, e->name.pos.col);
    if (e->is_glob) {
        size_t p = slc_glob_prefix_len(e->name.s);
        slc_buf_puts(b, ",\"prefix\":");
        slc_buf_json_string(b, e->name.s, p);
    }
    slc_buf_puts(b, "},\"also_matching\":[");
    rival *rv = calloc(s->nmodels ? s->nmodels : 1, sizeof *rv);
    if (!rv)
        abort();
    size_t nr = rivals(c, rv);
    for (size_t i = 0; i < nr; i++) {
        const slc_model *m = &s->models[rv[i].idx];
        slc_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        jstr(b, m->name.s);
        slc_buf_puts(b, ",\"prefix\":");
        slc_buf_json_string(b, m->name.s, slc_glob_prefix_len(m->name.s));
        slc_buf_puts(b, ",\"loses_because\":");
        jstr(b, rv[i].why);
        slc_buf_putc(b, '}');
    }
    free(rv);
    slc_buf_puts(b, "],\"targets\":[");
    for (size_t i = 0; i < e->ntargets; i++) {
        const slc_target *t = &e->targets[i];
        slc_buf_puts(b, i ? ",{\"provider\":" : "{\"provider\":");
        sl_attempt a = target_attempt(c, (uint32_t)c->entry, i);
        jstr(b, provider_of(c, a));
        slc_buf_puts(b, ",\"upstream_model\":");
        jstr(b, upstream(c, a));
        slc_buf_printf(b, ",\"model_from_client\":%s,\"weight\":%lld}", t->model.s ? "false" : "true",
                       (long long)t->weight);
    }
    slc_buf_puts(b, "],\"fallbacks\":[");
    for (size_t i = 0; i < e->nfallbacks; i++) {
        if (i)
            slc_buf_putc(b, ',');
        jstr(b, e->fallbacks[i].s);
    }
    slc_buf_puts(b, "],\"plan\":[");
    for (size_t i = 0; i < c->nplan; i++) {
        slc_buf_puts(b, i ? ",{\"entry\":" : "{\"entry\":");
        jstr(b, s->models[c->plan[i].entry].name.s);
        slc_buf_puts(b, ",\"provider\":");
        jstr(b, provider_of(c, c->plan[i]));
        slc_buf_puts(b, ",\"upstream_model\":");
        jstr(b, upstream(c, c->plan[i]));
        const char *src = NULL;
        const sl_target *tg = &c->low.t.targets[c->plan[i].target];
        bool mock = c->low.t.providers[tg->provider].kind == SL_KIND_MOCK;
        const sl_price *p = mock ? NULL : attempt_price(c, c->plan[i], &src);
        if (p)
            slc_buf_printf(b,
                           ",\"price\":{\"input_micros\":%lld,\"output_micros\":%lld,"
                           "\"cache_read_micros\":%lld,\"cache_write_micros\":%lld,\"source\":\"%s\"}",
                           (long long)p->input, (long long)p->output, (long long)p->cache_read,
                           (long long)p->cache_write, src);
        else if (!mock)
            slc_buf_puts(b, ",\"price\":null");
        if (tg->caps & SL_CAP_KNOWN) {
            const slc_model *pe = &s->models[c->plan[i].entry];
            const slc_target *st =
                &pe->targets[c->plan[i].target - c->low.t.models[c->plan[i].entry].target_first];
            slc_explain_caps_json(b, tg, st->cat ? st->cat->context : 0);
        }
        slc_buf_putc(b, '}');
    }
    slc_buf_puts(b, "],\"entries\":[");
    for (size_t g = 0; g < c->ngroups; g++) {
        const slc_model *m = &s->models[c->groups[g]];
        slc_buf_puts(b, g ? ",{\"name\":" : "{\"name\":");
        jstr(b, m->name.s);
        slc_buf_puts(b, ",\"retry\":");
        json_retry(b, m);
        slc_buf_printf(b, ",\"cooldown\":{\"failures\":%u,\"period_ms\":%u,\"default\":%s}}",
                       m->cooldown_failures ? m->cooldown_failures : 5,
                       m->cooldown_ms ? m->cooldown_ms : 30000,
                       m->cooldown_failures || m->cooldown_ms ? "false" : "true");
    }
    slc_buf_puts(b, "],\"providers\":[");
    for (size_t i = 0; i < c->nproviders; i++) {
        const slc_provider *p = &s->providers[c->providers[i]];
        slc_buf_puts(b, i ? ",{\"name\":" : "{\"name\":");
        jstr(b, p->name.s);
        slc_buf_printf(b, ",\"kind\":\"%s\",", slc_kind_name(p->kind));
        if (p->kind_word.s && strcmp(p->kind_word.s, slc_kind_name(p->kind)) != 0) {
            slc_buf_puts(b, "\"preset\":");
            jstr(b, p->kind_word.s);
            slc_buf_putc(b, ',');
        }
        slc_buf_puts(b, "\"base_url\":");
        jstr(b, p->base_url.s);
        slc_buf_printf(b,
                       ",\"timeouts_ms\":{\"connect\":%u,\"first_byte\":%u,\"idle\":%u,"
                       "\"total\":%u}}",
                       p->connect_ms, p->first_byte_ms, p->idle_ms, p->total_ms);
    }
    slc_buf_puts(b, "]");
    slc_cache_explain(&c->low.t, c->entry, c->key ? (int)(c->key - s->keys) : -1, 1, b);
    if (c->key) {
        const slc_key *k = c->key;
        slc_buf_puts(b, ",\"key\":{\"name\":");
        jstr(b, k->name.s);
        slc_buf_printf(b, ",\"allowed\":%s,\"all_models\":%s,\"team\":",
                       key_allows(k, (uint32_t)c->entry) ? "true" : "false",
                       k->all_models ? "true" : "false");
        if (k->team_idx >= 0) {
            const slc_team *t = &s->teams[k->team_idx];
            slc_buf_puts(b, "{\"name\":");
            jstr(b, t->name.s);
            slc_buf_puts(b, ",\"budget\":");
            budget_json(b, &t->budget);
            slc_buf_puts(b, ",\"limits\":");
            limits_json(b, &t->limits);
            slc_buf_putc(b, '}');
        } else {
            slc_buf_puts(b, "null");
        }
        slc_buf_puts(b, ",\"budget\":");
        budget_json(b, &k->budget);
        slc_buf_puts(b, ",\"limits\":");
        limits_json(b, &k->limits);
        slc_buf_puts(b, ",\"expires\":");
        jstr(b, k->expires.s);
        slc_buf_puts(b, ",\"allow_ips\":[");
        for (size_t i = 0; i < k->ncidrs; i++) {
            if (i)
                slc_buf_putc(b, ',');
            jstr(b, k->cidrs[i].text.s);
        }
        slc_buf_puts(b, "]}");
    }
    slc_buf_puts(b, "}\n");
}

int slc_explain(const slc_spec *s, const char *name, const char *key, bool json, slc_buf *out)
{
    ctx c = {.s = s, .name = name};
    if (key) {
        for (size_t i = 0; i < s->nkeys && !c.key; i++)
            if (strcmp(s->keys[i].name.s, key) == 0)
                c.key = &s->keys[i];
        if (!c.key) {
            slc_buf_printf(out, "no key named '%s' in the spec", key);
            return 2;
        }
    }
    c.entry = slc_match_model(s, name, strlen(name));
    if (c.entry < 0) {
        if (json) {
            slc_buf_puts(out, "{\"model\":");
            jstr(out, name);
            slc_buf_puts(out, ",\"entry\":null}\n");
        } else {
            slc_buf_printf(out, "model '%s' matches no entry: the gateway answers 404 "
                                "(model_not_found)\n", name);
        }
        return 1;
    }
    slc_lower(s, NULL, &c.low);
    prepare(&c);
    if (json)
        explain_json(&c, out);
    else
        explain_text(&c, out);
    if (s->guard) {
        int key_idx = c.key ? (int)(c.key - s->keys) : -1;
        if (json && out->len >= 2)
            out->len -= 2; /* reopen the object: "}\n" */
        slc_guard_explain(s, c.entry, key_idx, json, out);
        if (json)
            slc_buf_puts(out, "}\n");
    }
    slc_lowered_free(&c.low);
    return 0;
}
