/*
 * Lowering (see lower.h). Arrays are laid out exactly as the generated C
 * lays them out: every entry's targets and fallbacks, and every key's
 * scopes and addresses, contiguous and in spec order, so an index in the
 * lowered table is the index the gateway uses.
 */
#include "lower.h"

#include "catalog.h"
#include "presets.h"

#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "guard.h"

/* The spec's enums are the table's, value for value, so lowering casts. */
_Static_assert((int)SLC_KIND_OPENAI == (int)SL_KIND_OPENAI && (int)SLC_KIND_MOCK == (int)SL_KIND_MOCK &&
                   (int)SLC_KIND_ANTHROPIC == (int)SL_KIND_ANTHROPIC &&
                   (int)SLC_KIND_GEMINI == (int)SL_KIND_GEMINI &&
                   (int)SLC_KIND_BEDROCK == (int)SL_KIND_BEDROCK &&
                   (int)SLC_KIND_VERTEX == (int)SL_KIND_VERTEX,
               "slc_kind and sl_kind must agree");
_Static_assert((int)SLC_PERIOD_NONE == (int)SL_PERIOD_NONE && (int)SLC_PERIOD_DAY == (int)SL_PERIOD_DAY &&
                   (int)SLC_PERIOD_WEEK == (int)SL_PERIOD_WEEK &&
                   (int)SLC_PERIOD_MONTH == (int)SL_PERIOD_MONTH &&
                   (int)SLC_PERIOD_TOTAL == (int)SL_PERIOD_TOTAL,
               "slc_period and sl_period must agree");

static void *array(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p)
        abort();
    return p;
}

/* A provider's OAuth grant (check_cloud.c), or NULL when it has a key. */
static const sl_provider_oauth *lower_oauth(const slc_provider *p, sl_provider_oauth *o)
{
    const slc_provider_cloud *cl = &p->cloud;
    if (p->kind == SLC_KIND_VERTEX)
        *o = (sl_provider_oauth){.grant = SL_OAUTH_GOOGLE_SA, .credentials = cl->credentials_path,
                                 .credentials_env = cl->credentials_env, .token_url = cl->token_url.s};
    else if (cl->entra)
        *o = (sl_provider_oauth){.grant = SL_OAUTH_ENTRA, .tenant_id = cl->tenant_id.s,
                                 .client_id = cl->client_id.s, .secret_env = cl->secret_env,
                                 .secret_file = cl->secret_file, .token_url = cl->token_url.s};
    else
        return NULL;
    return o;
}

static sl_budget budget(const slc_budget *b)
{
    if (!b->present)
        return (sl_budget){.usd_micros = -1, .tokens = -1, .per = SL_PERIOD_NONE};
    return (sl_budget){.usd_micros = b->usd_micros, .tokens = b->tokens, .per = (sl_period)b->period};
}

static sl_limits limits(const slc_limits *l)
{
    return (sl_limits){.rpm = l->rpm, .tpm = l->tpm};
}

static void models(const slc_spec *s, slc_lowered *l)
{
    size_t ntargets = 0, nfallbacks = 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        ntargets += s->models[i].ntargets;
        nfallbacks += s->models[i].nfallbacks;
    }
    l->models = array(s->nmodels, sizeof *l->models);
    l->targets = array(ntargets, sizeof *l->targets);
    l->fallbacks = array(nfallbacks, sizeof *l->fallbacks);
    uint32_t tf = 0, ff = 0;
    for (size_t i = 0; i < s->nmodels; i++) {
        const slc_model *m = &s->models[i];
        const slc_retry *r = &m->retry;
        sl_model_entry *e = &l->models[i];
        *e = (sl_model_entry){
            .name = m->name.s,
            .is_glob = m->is_glob,
            .target_first = tf,
            .target_count = (uint32_t)m->ntargets,
            .fallback_first = ff,
            .fallback_count = (uint32_t)m->nfallbacks,
            .retry = {.attempts = (uint16_t)r->attempts,
                      .backoff_ms = r->backoff_ms,
                      .backoff_cap_ms = r->cap_ms,
                      .on_connect = r->on_connect,
                      .on_timeout = r->on_timeout},
            .cooldown_failures = m->cooldown_failures,
            .cooldown_ms = m->cooldown_ms,
        };
        memcpy(e->retry.status_bits, r->status_bits, sizeof e->retry.status_bits);
        for (size_t j = 0; j < m->ntargets; j++, tf++) {
            const slc_target *t = &m->targets[j];
            l->targets[tf] = (sl_target){.provider = (uint16_t)t->provider_idx,
                                         .model = t->model.s,
                                         .weight = (uint32_t)t->weight,
                                         .caps = t->cat ? t->cat->caps : 0,
                                         .max_output = t->cat ? t->cat->max_output : 0};
        }
        for (size_t j = 0; j < m->nfallbacks; j++)
            l->fallbacks[ff++] = m->fallback_idx[j];
    }
    l->t.models = s->nmodels ? l->models : NULL;
    l->t.model_count = (uint32_t)s->nmodels;
    l->t.targets = ntargets ? l->targets : NULL;
    l->t.target_count = (uint32_t)ntargets;
    l->t.fallbacks = nfallbacks ? l->fallbacks : NULL;
    l->t.fallback_count = (uint32_t)nfallbacks;
}

static void keys(const slc_spec *s, slc_lowered *l)
{
    size_t nscopes = 0, ncidrs = 0;
    for (size_t i = 0; i < s->nkeys; i++) {
        nscopes += s->keys[i].nscope;
        ncidrs += s->keys[i].ncidrs;
    }
    l->keys = array(s->nkeys, sizeof *l->keys);
    l->scopes = array(nscopes, sizeof *l->scopes);
    l->cidrs = array(ncidrs, sizeof *l->cidrs);
    uint32_t sf = 0, cf = 0;
    for (size_t i = 0; i < s->nkeys; i++) {
        const slc_key *k = &s->keys[i];
        sl_key *o = &l->keys[i];
        *o = (sl_key){
            .name = k->name.s,
            .team = k->team_idx,
            .all_models = k->all_models,
            .scope_first = sf,
            .scope_count = (uint32_t)k->nscope,
            .limits = limits(&k->limits),
            .budget = budget(&k->budget),
            .expires_unix = k->expires_unix,
            .cidr_first = cf,
            .cidr_count = (uint32_t)k->ncidrs,
        };
        memcpy(o->hash, k->hash_bytes, sizeof o->hash);
        for (size_t j = 0; j < k->nscope; j++)
            l->scopes[sf++] = k->scope[j];
        for (size_t j = 0; j < k->ncidrs; j++, cf++) {
            const slc_cidr *c = &k->cidrs[j];
            l->cidrs[cf] = (sl_cidr){.family = c->family, .prefix = c->prefix};
            memcpy(l->cidrs[cf].addr, c->addr, sizeof c->addr);
        }
    }
    l->t.keys = s->nkeys ? l->keys : NULL;
    l->t.key_count = (uint32_t)s->nkeys;
    l->t.scopes = nscopes ? l->scopes : NULL;
    l->t.scope_count = (uint32_t)nscopes;
    l->t.cidrs = ncidrs ? l->cidrs : NULL;
    l->t.cidr_count = (uint32_t)ncidrs;
}

void slc_lower(const slc_spec *s, const char *sha256_hex, slc_lowered *out)
{
    memset(out, 0, sizeof *out);
    sl_table *t = &out->t;
    const slc_server *sv = &s->server;
    t->abi = SL_TABLE_ABI;
    t->spec_sha256 = sha256_hex;
    t->listen = s->listen.s;
    t->listen_plain = s->listen_plain.s;
    if (s->tls.present) {
        /* ops stays NULL here: sluicec does not link the TLS module; emit
         * writes the reference into the generated table. */
        out->tls = (sl_tls_spec){.cert = s->tls.cert.s, .key = s->tls.key.s,
                                 .client_ca = s->tls.client_ca.s,
                                 .client_auth = !s->tls.client_ca.s   ? SL_CLIENT_AUTH_NONE
                                                : s->tls.client_required ? SL_CLIENT_AUTH_REQUIRE
                                                                         : SL_CLIENT_AUTH_OPTIONAL};
        t->tls = &out->tls;
    }
    t->state = s->state.s;
    if (s->redis.present) {
        /* ops stays NULL, as for tls: emit writes the module reference. */
        const slc_redis *r = &s->redis;
        out->redis = (sl_redis_spec){.host = r->host, .port = r->port, .db = r->db,
                                     .password_env = r->password_env, .prefix = r->prefix.s,
                                     .timeout_ms = r->timeout_ms, .lease_ms = r->lease_ms,
                                     .on_error = (sl_state_policy)r->on_error,
                                     .replicas = r->replicas, .share_circuits = r->share_circuits};
        t->redis = &out->redis;
    }
    t->server = (sl_server_limits){
        .max_header_bytes = sv->max_header_bytes,
        .max_headers = sv->max_headers,
        .max_body_bytes = sv->max_body_bytes,
        .header_timeout_ms = sv->header_timeout_ms,
        .body_timeout_ms = sv->body_timeout_ms,
        .keepalive_timeout_ms = sv->keepalive_timeout_ms,
        .max_connections = sv->max_connections,
        .max_inflight = sv->max_inflight,
        .handshake_timeout_ms = sv->handshake_timeout_ms,
        .max_handshakes = sv->max_handshakes,
    };

    out->providers = array(s->nproviders, sizeof *out->providers);
    out->provider_tls = array(s->nproviders, sizeof *out->provider_tls);
    out->provider_aws = array(s->nproviders, sizeof *out->provider_aws);
    out->provider_oauth = array(s->nproviders, sizeof *out->provider_oauth);
    for (size_t i = 0; i < s->nproviders; i++) {
        const slc_provider *p = &s->providers[i];
        if (p->tls.present)
            out->provider_tls[i] = (sl_provider_tls){.ca = p->tls.ca.s,
                                                     .client_cert = p->tls.client_cert.s,
                                                     .client_key = p->tls.client_key.s,
                                                     .verify = p->tls.verify};
        if (p->kind == SLC_KIND_BEDROCK) {
            /* Without credentials: the variables AWS's own tools read; the
             * session token then only when set. */
            bool given = p->aws.credentials_pos.line != 0, cont = p->aws.container;
            out->provider_aws[i] = (sl_provider_aws){
                .region = p->aws.region.s,
                .key_id = cont ? NULL : given ? p->aws.key_id.s : "env:AWS_ACCESS_KEY_ID",
                .secret = cont ? NULL : given ? p->aws.secret.s : "env:AWS_SECRET_ACCESS_KEY",
                .token = cont ? NULL : given ? p->aws.token.s : "env:AWS_SESSION_TOKEN",
                .token_optional = !given,
                .api = (uint8_t)p->aws.api,
                .container = cont};
        }
        const slc_preset *ps = slc_preset_of(p);
        bool named = ps && strcmp(ps->name, slc_kind_name(ps->kind)) != 0;
        out->providers[i] = (sl_provider){
            .name = p->name.s,
            .kind = (sl_kind)p->kind,
            .base_url = p->base_url.s ? p->base_url.s : "",
            .api_key_env = p->api_key_env,
            .api_key_file = p->api_key_file,
            .oauth = lower_oauth(p, &out->provider_oauth[i]),
            .project = p->cloud.project.s,
            .location = p->cloud.location.s,
            .publisher = (uint8_t)p->cloud.publisher_code,
            .preset = named ? ps->name : NULL,
            .auth_format = ps ? ps->auth : NULL,
            .headers = ps ? ps->headers : NULL,
            .ops = ps ? ps->ops : 0,
            .quirks = ps ? ps->quirks : 0,
            .url_style = ps ? ps->url_style : 0,
            .deployment = p->deployment.s,
            .api_version = p->api_version.s,
            .optional = p->optional,
            .responses = p->responses,
            .connect_ms = p->connect_ms,
            .first_byte_ms = p->first_byte_ms,
            .idle_ms = p->idle_ms,
            .total_ms = p->total_ms,
            .tls = p->tls.present ? &out->provider_tls[i] : NULL,
            .http2 = (sl_http2)p->http2,
            .aws = p->kind == SLC_KIND_BEDROCK ? &out->provider_aws[i] : NULL,
        };
    }
    t->providers = s->nproviders ? out->providers : NULL;
    t->provider_count = (uint32_t)s->nproviders;

    models(s, out);

    out->teams = array(s->nteams, sizeof *out->teams);
    for (size_t i = 0; i < s->nteams; i++)
        out->teams[i] = (sl_team){.name = s->teams[i].name.s,
                                  .budget = budget(&s->teams[i].budget),
                                  .limits = limits(&s->teams[i].limits)};
    t->teams = s->nteams ? out->teams : NULL;
    t->team_count = (uint32_t)s->nteams;

    keys(s, out);

    out->prices = array(s->nprices, sizeof *out->prices);
    for (size_t i = 0; i < s->nprices; i++) {
        const slc_price *p = &s->prices[i];
        out->prices[i] = (sl_price){.provider = (uint16_t)p->provider_idx,
                                    .model = p->model.s,
                                    .input = p->input,
                                    .output = p->output,
                                    .cache_read = p->cache_read,
                                    .cache_write = p->cache_write};
    }
    t->prices = s->nprices ? out->prices : NULL;
    t->price_count = (uint32_t)s->nprices;
    out->cache_rules = slc_cache_lower(s, &t->cache_rule_count);
    t->cache_rules = t->cache_rule_count ? out->cache_rules : NULL;
    /* cache_ops stays NULL: sluicec links no cache module; emit names it. */

    t->otlp_url = s->telemetry.present ? s->telemetry.otlp.s : NULL;
    t->service_name = s->telemetry.present
                          ? (s->telemetry.service_name.s ? s->telemetry.service_name.s : "sluice")
                          : NULL;
    t->guard = slc_guard_lower(s);
    t->responses_retention_s = s->responses_retention_s;
    t->has_admin = s->has_admin;
    if (s->has_admin)
        memcpy(t->admin_hash, s->admin_hash_bytes, sizeof t->admin_hash);
}

void slc_lowered_free(slc_lowered *l)
{
    free(l->providers);
    free(l->provider_tls);
    free(l->provider_aws);
    free(l->provider_oauth);
    free(l->models);
    free(l->targets);
    free(l->fallbacks);
    free(l->teams);
    free(l->keys);
    free(l->scopes);
    free(l->cidrs);
    free(l->prices);
    free(l->cache_rules);
    slc_guard_lower_free((sl_guard_spec *)l->t.guard);
    memset(l, 0, sizeof *l);
}

size_t slc_plan_first(const sl_table *t, uint32_t entry, sl_attempt out[SLC_PLAN_MAX])
{
    sl_router *r = sl_router_new(t);
    if (!r)
        abort();
    size_t n = sl_route_plan(r, entry, out, SLC_PLAN_MAX);
    sl_router_free(r);
    return n;
}
