/*
 * Route-level spec diff (see diff.h). Each part of the spec is rendered to
 * short strings and compared by name, so a change is reported once, as
 * "what: before -> after". The verdict comes from comparing the lowered
 * tables (as generated C, with a fixed hash) and the matchers; if they
 * differ in a way no rule below describes, a catch-all line says so, so
 * the exit status and the report can never disagree. Attempt plans are
 * the gateway's own (runtime/route) on the lowered tables.
 */
#include "diff.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "emit.h"
#include "explain.h"
#include "lower.h"

typedef struct differ {
    slc_buf *out;
    bool json;
    size_t n;
    const sl_table *ta, *tb;   /* the lowered tables of the old and new spec */
} differ;

static void change(differ *d, const char *section, const char *name, const char *what,
                   const char *before, const char *after)
{
    if (d->json) {
        slc_buf_puts(d->out, d->n ? ",\n  {\"section\":" : "\n  {\"section\":");
        slc_buf_json_string(d->out, section, strlen(section));
        slc_buf_puts(d->out, ",\"name\":");
        if (name)
            slc_buf_json_string(d->out, name, strlen(name));
        else
            slc_buf_puts(d->out, "null");
        slc_buf_puts(d->out, ",\"change\":");
        slc_buf_json_string(d->out, what, strlen(what));
        slc_buf_puts(d->out, ",\"before\":");
        if (before)
            slc_buf_json_string(d->out, before, strlen(before));
        else
            slc_buf_puts(d->out, "null");
        slc_buf_puts(d->out, ",\"after\":");
        if (after)
            slc_buf_json_string(d->out, after, strlen(after));
        else
            slc_buf_puts(d->out, "null");
        slc_buf_putc(d->out, '}');
    } else {
        if (name)
            slc_buf_printf(d->out, "%s '%s': %s", section, name, what);
        else
            slc_buf_printf(d->out, "%s: %s", section, what);
        if (before && after)
            slc_buf_printf(d->out, ": %s -> %s", before, after);
        else if (after)
            slc_buf_printf(d->out, ": %s", after);
        else if (before)
            slc_buf_printf(d->out, ": %s", before);
        slc_buf_putc(d->out, '\n');
    }
    d->n++;
}

/* Compares two renderings; frees both. */
static void attr(differ *d, const char *section, const char *name, const char *what, slc_buf *a,
                 slc_buf *b)
{
    const char *x = a->p ? a->p : "", *y = b->p ? b->p : "";
    if (strcmp(x, y) != 0)
        change(d, section, name, what, x, y);
    slc_buf_free(a);
    slc_buf_free(b);
}

static void dur(slc_buf *b, uint32_t ms) { slc_fmt_duration(b, ms); }

/* ---- renderings ---------------------------------------------------------- */

static const char *pname(const slc_spec *s, int idx)
{
    return idx >= 0 ? s->providers[idx].name.s : "?";
}

static void r_timeouts(slc_buf *b, const slc_provider *p)
{
    slc_buf_puts(b, "connect ");
    dur(b, p->connect_ms);
    slc_buf_puts(b, ", first_byte ");
    dur(b, p->first_byte_ms);
    slc_buf_puts(b, ", idle ");
    dur(b, p->idle_ms);
    slc_buf_puts(b, ", total ");
    dur(b, p->total_ms);
}

/* Trust of an https upstream: a change here changes who sluice believes
 * it is talking to, so review shows it. */
static void r_tls(slc_buf *b, const slc_provider *p)
{
    const slc_provider_tls *t = &p->tls;
    if (!t->present) {
        slc_buf_puts(b, "(system CAs)");
        return;
    }
    slc_buf_printf(b, "ca %s, client_cert %s, client_key %s, verify %s",
                   t->ca.s ? t->ca.s : "(system)", t->client_cert.s ? t->client_cert.s : "(none)",
                   t->client_key.s ? t->client_key.s : "(none)", t->verify ? "true" : "false");
}

static void r_retry(slc_buf *b, const slc_retry *r)
{
    slc_buf_printf(b, "attempts %lld, backoff ", (long long)r->attempts);
    dur(b, r->backoff_ms);
    slc_buf_puts(b, ", cap ");
    dur(b, r->cap_ms);
    slc_buf_puts(b, ", on ");
    slc_fmt_retry_on(b, r);
}

static void r_cooldown(slc_buf *b, const slc_model *m)
{
    if (!m->cooldown_failures && !m->cooldown_ms) {
        slc_buf_puts(b, "runtime default");
        return;
    }
    slc_buf_printf(b, "%u failures, ", m->cooldown_failures ? m->cooldown_failures : 5);
    dur(b, m->cooldown_ms ? m->cooldown_ms : 30000);
}

static void r_target(slc_buf *b, const slc_spec *s, const slc_target *t)
{
    slc_buf_printf(b, "%s/%s", pname(s, t->provider_idx), t->model.s ? t->model.s : "(client's name)");
}

static void r_targets(slc_buf *b, const slc_spec *s, const slc_model *m)
{
    slc_buf_putc(b, '[');
    for (size_t i = 0; i < m->ntargets; i++) {
        if (i)
            slc_buf_puts(b, ", ");
        r_target(b, s, &m->targets[i]);
        slc_buf_printf(b, " w%lld", (long long)m->targets[i].weight);
    }
    slc_buf_putc(b, ']');
}

static void r_fallbacks(slc_buf *b, const slc_spec *s, const slc_model *m)
{
    slc_buf_putc(b, '[');
    for (size_t i = 0; i < m->nfallbacks; i++)
        slc_buf_printf(b, "%s%s", i ? ", " : "", s->models[m->fallback_idx[i]].name.s);
    slc_buf_putc(b, ']');
}

/* Each step as its entry and what the gateway asks upstream (the gateway's
 * own rule). Only a glob entry's model-less targets depend on the name a
 * client sends; they read "(client's name)". */
static void r_plan(slc_buf *b, const sl_table *t, size_t entry)
{
    sl_attempt plan[SLC_PLAN_MAX];
    size_t n = slc_plan_first(t, (uint32_t)entry, plan);
    for (size_t i = 0; i < n; i++) {
        const char *um = sl_route_upstream_model(t, &plan[i], NULL);
        slc_buf_printf(b, "%s%s:%s/%s", i ? ", " : "", t->models[plan[i].entry].name,
                       t->providers[t->targets[plan[i].target].provider].name,
                       um ? um : "(client's name)");
    }
}

static void r_budget(slc_buf *b, const slc_budget *bu)
{
    if (!bu->present) {
        slc_buf_puts(b, "none");
        return;
    }
    if (bu->usd_micros >= 0)
        slc_fmt_money(b, bu->usd_micros);
    if (bu->tokens >= 0)
        slc_buf_printf(b, "%s%lld tokens", bu->usd_micros >= 0 ? " + " : "", (long long)bu->tokens);
    slc_buf_printf(b, " per %s", bu->per.s ? bu->per.s : "?");
}

static void r_limits(slc_buf *b, const slc_limits *l)
{
    slc_buf_printf(b, "rpm %s", l->rpm ? "" : "unlimited");
    if (l->rpm)
        slc_buf_printf(b, "%u", l->rpm);
    slc_buf_printf(b, ", tpm %s", l->tpm ? "" : "unlimited");
    if (l->tpm)
        slc_buf_printf(b, "%u", l->tpm);
}

static void r_scope(slc_buf *b, const slc_spec *s, const slc_key *k)
{
    if (k->all_models) {
        slc_buf_puts(b, "every model");
        return;
    }
    slc_buf_putc(b, '[');
    for (size_t i = 0; i < k->nscope; i++)
        slc_buf_printf(b, "%s%s", i ? ", " : "", s->models[k->scope[i]].name.s);
    slc_buf_putc(b, ']');
}

static void r_price(slc_buf *b, const slc_price *p)
{
    slc_buf_puts(b, "input ");
    slc_fmt_money(b, p->input);
    slc_buf_puts(b, ", output ");
    slc_fmt_money(b, p->output);
    slc_buf_puts(b, ", cache_read ");
    slc_fmt_money(b, p->cache_read);
    slc_buf_puts(b, ", cache_write ");
    slc_fmt_money(b, p->cache_write);
}

/* ---- per-section comparisons --------------------------------------------- */

#define FIND(arr, n, field, want)                                                                 \
    ({                                                                                            \
        long r_ = -1;                                                                             \
        for (size_t i_ = 0; i_ < (n) && r_ < 0; i_++)                                             \
            if (strcmp((arr)[i_].field, (want)) == 0)                                             \
                r_ = (long)i_;                                                                    \
        r_;                                                                                       \
    })

#define CMP(section, name, what, A, B, render)                                                    \
    do {                                                                                          \
        slc_buf a_ = {0}, b_ = {0};                                                               \
        render(&a_, A);                                                                           \
        render(&b_, B);                                                                           \
        attr(d, section, name, what, &a_, &b_);                                                   \
    } while (0)

/* Shared state: where it lives and what happens without it. */
static void redis(differ *d, const slc_redis *a, const slc_redis *b)
{
    const char *ua = a->present ? a->url.s : "(none: this replica's own counters)";
    const char *ub = b->present ? b->url.s : "(none: this replica's own counters)";
    if (strcmp(ua, ub) != 0)
        change(d, "state.redis", NULL, "url", ua, ub);
    if (!a->present || !b->present)
        return;
    if (strcmp(a->prefix.s, b->prefix.s) != 0)
        change(d, "state.redis", NULL, "prefix", a->prefix.s, b->prefix.s);
    char pa[48], pb[48];
    snprintf(pa, sizeof pa, "%s, replicas %u", a->on_error == SLC_STATE_LOCAL ? "local" : "fail_closed",
             a->replicas);
    snprintf(pb, sizeof pb, "%s, replicas %u", b->on_error == SLC_STATE_LOCAL ? "local" : "fail_closed",
             b->replicas);
    if (strcmp(pa, pb) != 0)
        change(d, "state.redis", NULL, "on_state_error", pa, pb);
    if (a->share_circuits != b->share_circuits)
        change(d, "state.redis", NULL, "share_circuits", a->share_circuits ? "true" : "false",
               b->share_circuits ? "true" : "false");
}

static void server(differ *d, const slc_spec *a, const slc_spec *b)
{
    if (strcmp(a->listen.s, b->listen.s) != 0)
        change(d, "listen", NULL, "changed", a->listen.s, b->listen.s);
    if (strcmp(a->state.s, b->state.s) != 0)
        change(d, "state", NULL, "changed", a->state.s, b->state.s);
    redis(d, &a->redis, &b->redis);
    const char *pa = a->listen_plain.s ? a->listen_plain.s : "(none)";
    const char *pb = b->listen_plain.s ? b->listen_plain.s : "(none)";
    if (strcmp(pa, pb) != 0)
        change(d, "listen_plain", NULL, "changed", pa, pb);
    const char *ta = a->tls.present ? a->tls.cert.s : "(plain HTTP)";
    const char *tb = b->tls.present ? b->tls.cert.s : "(plain HTTP)";
    if (strcmp(ta, tb) != 0)
        change(d, "tls", NULL, "cert", ta, tb);
    if (a->allow_plaintext != b->allow_plaintext)
        change(d, "allow_plaintext", NULL, "changed", a->allow_plaintext ? "true" : "false",
               b->allow_plaintext ? "true" : "false");
    const slc_server *x = &a->server, *y = &b->server;
#define SV(field, fmt, cast)                                                                      \
    if (x->field != y->field) {                                                                   \
        char o_[32], n_[32];                                                                      \
        snprintf(o_, sizeof o_, fmt, (cast)x->field);                                            \
        snprintf(n_, sizeof n_, fmt, (cast)y->field);                                            \
        change(d, "server", NULL, #field, o_, n_);                                                \
    }
    SV(max_header_bytes, "%u", unsigned)
    SV(max_headers, "%u", unsigned)
    SV(max_body_bytes, "%llu", unsigned long long)
    SV(header_timeout_ms, "%u", unsigned)
    SV(body_timeout_ms, "%u", unsigned)
    SV(keepalive_timeout_ms, "%u", unsigned)
    SV(max_connections, "%u", unsigned)
    SV(max_inflight, "%u", unsigned)
    SV(handshake_timeout_ms, "%u", unsigned)
    SV(max_handshakes, "%u", unsigned)
#undef SV
}

/* The provider's `kind:` as written (a protocol or a preset name): two
 * presets of one protocol are different providers to a reviewer. */
static const char *kind_of(const slc_provider *p)
{
    return p->kind_word.s ? p->kind_word.s : slc_kind_name(p->kind);
}

static void providers(differ *d, const slc_spec *a, const slc_spec *b)
{
    for (size_t i = 0; i < a->nproviders; i++)
        if (FIND(b->providers, b->nproviders, name.s, a->providers[i].name.s) < 0)
            change(d, "provider", a->providers[i].name.s, "removed", NULL, NULL);
    for (size_t j = 0; j < b->nproviders; j++) {
        const slc_provider *q = &b->providers[j];
        long i = FIND(a->providers, a->nproviders, name.s, q->name.s);
        if (i < 0) {
            change(d, "provider", q->name.s, "added", NULL, kind_of(q));
            continue;
        }
        const slc_provider *p = &a->providers[i];
        if (strcmp(kind_of(p), kind_of(q)) != 0)
            change(d, "provider", q->name.s, "kind", kind_of(p), kind_of(q));
        static const char *const azure[] = {"resource", "deployment", "api_version"};
        const slc_str *pa[] = {&p->resource, &p->deployment, &p->api_version};
        const slc_str *qa[] = {&q->resource, &q->deployment, &q->api_version};
        for (size_t k = 0; k < 3; k++)
            if (strcmp(pa[k]->s ? pa[k]->s : "", qa[k]->s ? qa[k]->s : "") != 0)
                change(d, "provider", q->name.s, azure[k], pa[k]->s, qa[k]->s);
        if (strcmp(p->base_url.s ? p->base_url.s : "", q->base_url.s ? q->base_url.s : "") != 0)
            change(d, "provider", q->name.s, "base_url", p->base_url.s, q->base_url.s);
        /* Vertex AI and Entra ID settings; secrets here are env:/file: references */
        static const char *const cloud[] = {"project",   "location",  "credentials",   "publisher", "auth",
                                            "tenant_id", "client_id", "client_secret", "token_url"};
        const slc_str *pc[] = {&p->cloud.project,   &p->cloud.location,  &p->cloud.credentials,
                               &p->cloud.publisher, &p->cloud.auth,      &p->cloud.tenant_id,
                               &p->cloud.client_id, &p->cloud.client_secret, &p->cloud.token_url};
        const slc_str *qc[] = {&q->cloud.project,   &q->cloud.location,  &q->cloud.credentials,
                               &q->cloud.publisher, &q->cloud.auth,      &q->cloud.tenant_id,
                               &q->cloud.client_id, &q->cloud.client_secret, &q->cloud.token_url};
        for (size_t k = 0; k < sizeof cloud / sizeof cloud[0]; k++)
            if (strcmp(pc[k]->s ? pc[k]->s : "", qc[k]->s ? qc[k]->s : "") != 0)
                change(d, "provider", q->name.s, cloud[k], pc[k]->s, qc[k]->s);
        if (strcmp(p->api_key_file ? p->api_key_file : "", q->api_key_file ? q->api_key_file : "") != 0)
            change(d, "provider", q->name.s, "api_key file", p->api_key_file, q->api_key_file);
        const char *ka = p->api_key_env ? p->api_key_env : "(none)";
        const char *kb = q->api_key_env ? q->api_key_env : "(none)";
        if (strcmp(ka, kb) != 0)
            change(d, "provider", q->name.s, "api_key environment variable", ka, kb);
        CMP("provider", q->name.s, "timeouts", p, q, r_timeouts);
        CMP("provider", q->name.s, "tls", p, q, r_tls);
    }
}

static void targets(differ *d, const slc_spec *a, const slc_spec *b, const slc_model *x,
                    const slc_model *y)
{
    const char *name = y->name.s;
    bool *used_x = calloc(x->ntargets + 1, 1), *used_y = calloc(y->ntargets + 1, 1);
    size_t *pair = calloc(y->ntargets + 1, sizeof *pair);
    if (!used_x || !used_y || !pair)
        abort();
    /* Same provider and upstream model: the same target. */
    for (size_t j = 0; j < y->ntargets; j++) {
        const slc_target *t = &y->targets[j];
        for (size_t i = 0; i < x->ntargets; i++) {
            const slc_target *o = &x->targets[i];
            if (used_x[i] || strcmp(pname(a, o->provider_idx), pname(b, t->provider_idx)) != 0 ||
                !((!o->model.s && !t->model.s) ||
                  (o->model.s && t->model.s && strcmp(o->model.s, t->model.s) == 0)))
                continue;
            used_x[i] = used_y[j] = true;
            pair[j] = i;
            if (o->weight != t->weight) {
                slc_buf lbl = {0};
                char ow[24], nw[24];
                slc_buf_puts(&lbl, "weight of ");
                r_target(&lbl, b, t);
                snprintf(ow, sizeof ow, "%lld", (long long)o->weight);
                snprintf(nw, sizeof nw, "%lld", (long long)t->weight);
                change(d, "model", name, lbl.p, ow, nw);
                slc_buf_free(&lbl);
            }
            break;
        }
    }
    /* Same provider, another model: the upstream model changed. */
    for (size_t j = 0; j < y->ntargets; j++) {
        if (used_y[j])
            continue;
        const slc_target *t = &y->targets[j];
        for (size_t i = 0; i < x->ntargets; i++) {
            const slc_target *o = &x->targets[i];
            if (used_x[i] || strcmp(pname(a, o->provider_idx), pname(b, t->provider_idx)) != 0)
                continue;
            used_x[i] = used_y[j] = true;
            slc_buf ob = {0}, nb = {0};
            r_target(&ob, a, o);
            r_target(&nb, b, t);
            if (o->weight != t->weight) {
                slc_buf_printf(&ob, " w%lld", (long long)o->weight);
                slc_buf_printf(&nb, " w%lld", (long long)t->weight);
            }
            change(d, "model", name, "upstream model changed", ob.p, nb.p);
            slc_buf_free(&ob);
            slc_buf_free(&nb);
            break;
        }
    }
    for (size_t i = 0; i < x->ntargets; i++)
        if (!used_x[i]) {
            slc_buf ob = {0};
            r_target(&ob, a, &x->targets[i]);
            slc_buf_printf(&ob, " w%lld", (long long)x->targets[i].weight);
            change(d, "model", name, "target removed", ob.p, NULL);
            slc_buf_free(&ob);
        }
    for (size_t j = 0; j < y->ntargets; j++)
        if (!used_y[j]) {
            slc_buf nb = {0};
            r_target(&nb, b, &y->targets[j]);
            slc_buf_printf(&nb, " w%lld", (long long)y->targets[j].weight);
            change(d, "model", name, "target added", NULL, nb.p);
            slc_buf_free(&nb);
        }
    free(used_x);
    free(used_y);
    free(pair);
}

static void models(differ *d, const slc_spec *a, const slc_spec *b)
{
    for (size_t i = 0; i < a->nmodels; i++)
        if (FIND(b->models, b->nmodels, name.s, a->models[i].name.s) < 0) {
            slc_buf t = {0};
            r_targets(&t, a, &a->models[i]);
            change(d, "model", a->models[i].name.s, "removed", t.p, NULL);
            slc_buf_free(&t);
        }
    for (size_t j = 0; j < b->nmodels; j++) {
        const slc_model *y = &b->models[j];
        long i = FIND(a->models, a->nmodels, name.s, y->name.s);
        if (i < 0) {
            slc_buf t = {0};
            r_targets(&t, b, y);
            if (y->nfallbacks) {
                slc_buf_puts(&t, ", fallbacks ");
                r_fallbacks(&t, b, y);
            }
            change(d, "model", y->name.s, "added", NULL, t.p);
            slc_buf_free(&t);
            continue;
        }
        const slc_model *x = &a->models[i];
        targets(d, a, b, x, y);
        slc_buf fa = {0}, fb = {0};
        r_fallbacks(&fa, a, x);
        r_fallbacks(&fb, b, y);
        attr(d, "model", y->name.s, "fallbacks", &fa, &fb);
        CMP("model", y->name.s, "retry", &x->retry, &y->retry, r_retry);
        CMP("model", y->name.s, "cooldown", x, y, r_cooldown);
        CMP("model", y->name.s, "cache", &x->cache, &y->cache, slc_cache_describe);
        if (x->emitted != y->emitted)
            change(d, "model", y->name.s, y->emitted ? "now reachable by the matcher"
                                                     : "now shadowed by another glob", NULL, NULL);
        slc_buf pa = {0}, pb = {0};
        r_plan(&pa, d->ta, (size_t)i);
        r_plan(&pb, d->tb, j);
        attr(d, "model", y->name.s, "first-request attempt plan", &pa, &pb);
    }
}

static void teams(differ *d, const slc_spec *a, const slc_spec *b)
{
    for (size_t i = 0; i < a->nteams; i++)
        if (FIND(b->teams, b->nteams, name.s, a->teams[i].name.s) < 0)
            change(d, "team", a->teams[i].name.s, "removed", NULL, NULL);
    for (size_t j = 0; j < b->nteams; j++) {
        const slc_team *y = &b->teams[j];
        long i = FIND(a->teams, a->nteams, name.s, y->name.s);
        if (i < 0) {
            slc_buf t = {0};
            slc_buf_puts(&t, "budget ");
            r_budget(&t, &y->budget);
            slc_buf_puts(&t, ", limits ");
            r_limits(&t, &y->limits);
            change(d, "team", y->name.s, "added", NULL, t.p);
            slc_buf_free(&t);
            continue;
        }
        const slc_team *x = &a->teams[i];
        CMP("team", y->name.s, "budget", &x->budget, &y->budget, r_budget);
        CMP("team", y->name.s, "limits", &x->limits, &y->limits, r_limits);
    }
}

static void keys(differ *d, const slc_spec *a, const slc_spec *b)
{
    for (size_t i = 0; i < a->nkeys; i++)
        if (FIND(b->keys, b->nkeys, name.s, a->keys[i].name.s) < 0)
            change(d, "key", a->keys[i].name.s, "removed", NULL, NULL);
    for (size_t j = 0; j < b->nkeys; j++) {
        const slc_key *y = &b->keys[j];
        long i = FIND(a->keys, a->nkeys, name.s, y->name.s);
        if (i < 0) {
            slc_buf t = {0};
            slc_buf_puts(&t, "may use ");
            r_scope(&t, b, y);
            if (y->team_idx >= 0)
                slc_buf_printf(&t, ", team %s", b->teams[y->team_idx].name.s);
            change(d, "key", y->name.s, "added", NULL, t.p);
            slc_buf_free(&t);
            continue;
        }
        const slc_key *x = &a->keys[i];
        if (memcmp(x->hash_bytes, y->hash_bytes, 32) != 0)
            change(d, "key", y->name.s, "hash changed (the old key stops working)", NULL, NULL);
        const char *ta = x->team_idx >= 0 ? a->teams[x->team_idx].name.s : "(none)";
        const char *tb = y->team_idx >= 0 ? b->teams[y->team_idx].name.s : "(none)";
        if (strcmp(ta, tb) != 0)
            change(d, "key", y->name.s, "team", ta, tb);
        slc_buf sa = {0}, sb = {0};
        r_scope(&sa, a, x);
        r_scope(&sb, b, y);
        attr(d, "key", y->name.s, "models", &sa, &sb);
        CMP("key", y->name.s, "budget", &x->budget, &y->budget, r_budget);
        CMP("key", y->name.s, "limits", &x->limits, &y->limits, r_limits);
        CMP("key", y->name.s, "cache", &x->cache, &y->cache, slc_cache_describe);
        const char *ea = x->expires.s ? x->expires.s : "never";
        const char *eb = y->expires.s ? y->expires.s : "never";
        if (x->expires_unix != y->expires_unix)
            change(d, "key", y->name.s, "expires", ea, eb);
        slc_buf ca = {0}, cb = {0};
        for (size_t k = 0; k < x->ncidrs; k++)
            slc_buf_printf(&ca, "%s%s", k ? ", " : "", x->cidrs[k].text.s);
        for (size_t k = 0; k < y->ncidrs; k++)
            slc_buf_printf(&cb, "%s%s", k ? ", " : "", y->cidrs[k].text.s);
        if (!ca.p)
            slc_buf_puts(&ca, "any");
        if (!cb.p)
            slc_buf_puts(&cb, "any");
        attr(d, "key", y->name.s, "allow_ips", &ca, &cb);
    }
    if (a->has_admin != b->has_admin)
        change(d, "admin", NULL, b->has_admin ? "admin endpoints enabled" : "admin endpoints removed",
               NULL, NULL);
    else if (a->has_admin && memcmp(a->admin_hash_bytes, b->admin_hash_bytes, 32) != 0)
        change(d, "admin", NULL, "hash changed (the old admin key stops working)", NULL, NULL);
}

static void prices(differ *d, const slc_spec *a, const slc_spec *b)
{
    for (size_t i = 0; i < a->nprices; i++)
        if (FIND(b->prices, b->nprices, key.s, a->prices[i].key.s) < 0)
            change(d, "price", a->prices[i].key.s, "removed", NULL, NULL);
    for (size_t j = 0; j < b->nprices; j++) {
        const slc_price *y = &b->prices[j];
        long i = FIND(a->prices, a->nprices, key.s, y->key.s);
        if (i < 0) {
            slc_buf t = {0};
            r_price(&t, y);
            change(d, "price", y->key.s, "added", NULL, t.p);
            slc_buf_free(&t);
            continue;
        }
        CMP("price", y->key.s, "changed", &a->prices[i], y, r_price);
    }
}

/* Both sides are lowered and printed with this hash: only what the spec
 * means may differ, not its bytes. */
static const char fixed[65] = "0000000000000000000000000000000000000000000000000000000000000000";

static bool tables_differ(const slc_spec *a, const slc_spec *b, const sl_table *ta,
                          const sl_table *tb)
{
    slc_buf ca = {0}, cb = {0}, ra = {0}, rb = {0};
    slc_emit_lowered(ta, &ca);
    slc_emit_lowered(tb, &cb);
    slc_emit_models_re(a, fixed, &ra);
    slc_emit_models_re(b, fixed, &rb);
    bool differ_ = ca.len != cb.len || memcmp(ca.p, cb.p, ca.len) != 0 || ra.len != rb.len ||
                   memcmp(ra.p, rb.p, ra.len) != 0;
    slc_buf_free(&ca);
    slc_buf_free(&cb);
    slc_buf_free(&ra);
    slc_buf_free(&rb);
    return differ_;
}

bool slc_diff(const slc_spec *a, const slc_spec *b, bool json, slc_buf *out)
{
    slc_lowered la, lb;
    slc_lower(a, fixed, &la);
    slc_lower(b, fixed, &lb);
    differ d = {.out = out, .json = json, .ta = &la.t, .tb = &lb.t};
    bool differs = tables_differ(a, b, &la.t, &lb.t);
    if (json)
        slc_buf_printf(out, "{\"identical\":%s,\"changes\":[", differs ? "false" : "true");
    if (differs) {
        server(&d, a, b);
        providers(&d, a, b);
        models(&d, a, b);
        teams(&d, a, b);
        keys(&d, a, b);
        prices(&d, a, b);
        if (!d.n)
            change(&d, "tables", NULL,
                   "the generated tables differ (entry order or another detail no rule above "
                   "describes)",
                   NULL, NULL);
    } else if (!json) {
        slc_buf_puts(out, "no changes: both specs compile to the same tables\n");
    }
    if (json)
        slc_buf_puts(out, d.n ? "\n]}\n" : "]}\n");
    slc_lowered_free(&la);
    slc_lowered_free(&lb);
    return differs;
}
