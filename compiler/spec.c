/*
 * YAML tree -> typed spec (see spec.h). Each reader checks that a node has
 * the shape its place in the spec demands, reports what it cannot use with
 * the name of the thing it belongs to, and carries on, so one run shows
 * every shape problem at once.
 */
#include "spec.h"

#include <stdio.h>
#include <string.h>

#include "cache.h"
#include "guard.h"
#include "presets.h"
#include "spec_internal.h"
#include "suggest.h"
#include "units.h"

typedef slc_builder builder;

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

const char *slc_kind_name(slc_kind k)
{
    static const char *const names[] = {"openai", "anthropic", "gemini", "mock", "bedrock", "vertex"};
    return (unsigned)k < COUNT(names) ? names[k] : "?";
}

static void read_provider(builder *b, const slc_node *k, const slc_node *v, slc_provider *p)
{
    const char *where = slc_aprintf(b->a, "provider '%s'", k->str);
    p->name = slc_spec_str_of(k);
    p->connect_ms = 5000;
    p->first_byte_ms = 120000;
    p->idle_ms = 120000;
    p->total_ms = 600000;
    /* `provider/model` targets and price keys split at the first '/'. */
    if (memchr(k->str, '/', k->len))
        slc_error(b->d, k->pos, "provider name '%s' must not contain '/'", k->str);
    if (!slc_spec_want(b, v, SLC_NODE_MAP, where))
        return;
    static const char *const keys[] = {"kind",        "base_url",  "api_key", "optional",
                                       "responses",   "timeouts",  "http2",   "tls",
                                       "resource",    "deployment", "api_version",
                                       "region",      "credentials", "api",
                                       "project",     "location",  "publisher",
                                       "auth",        "tenant_id", "client_id", "client_secret",
                                       "token_url"};
    slc_spec_check_keys(b, v, keys, COUNT(keys), where);
    slc_str kind = {0};
    p->preset = -1;
    if (!slc_map_get(v, "kind")) {
        slc_spec_missing(b, v, where, "kind");
    } else if (slc_spec_str_field(b, v, "kind", where, &kind)) {
        p->kind_word = kind;
        size_t np;
        const slc_preset *all = slc_preset_all(&np);
        const slc_preset *ps = slc_preset_find(kind.s, kind.len);
        if (ps) {
            p->preset = (int)(ps - all);
            p->kind = ps->kind;
        } else {
            const char *names[64];
            size_t n = np < COUNT(names) ? np : COUNT(names);
            for (size_t i = 0; i < n; i++)
                names[i] = all[i].name;
            const char *hint = slc_suggest(kind.s, names, n);
            if (hint)
                slc_error(b->d, kind.pos, "%s has unknown kind '%s' (did you mean '%s'?)", where,
                          kind.s, hint);
            else
                slc_error(b->d, kind.pos,
                          "%s has unknown kind '%s' (expected openai, anthropic, gemini, mock or a "
                          "preset such as groq or azure: see README \"Provider presets\")",
                          where, kind.s);
        }
    }
    slc_spec_str_field(b, v, "resource", where, &p->resource);
    slc_spec_str_field(b, v, "deployment", where, &p->deployment);
    slc_spec_str_field(b, v, "api_version", where, &p->api_version);
    slc_spec_str_field(b, v, "base_url", where, &p->base_url);
    if (slc_spec_str_field(b, v, "api_key", where, &p->api_key) && strncmp(p->api_key.s, "env:", 4) != 0 &&
        strncmp(p->api_key.s, "file:", 5) != 0)
        slc_diags_redact(b->d, p->api_key.pos, p->api_key.end); /* a literal key: never quoted */
    slc_spec_read_cloud(b, v, where, &p->cloud, p->kind == SLC_KIND_VERTEX);
    slc_spec_bool_field(b, v, "optional", where, &p->optional, &p->optional_pos);
    slc_spec_bool_field(b, v, "responses", where, &p->responses, &p->responses_pos);
    /* Same order as sl_http2. */
    static const char *const http2[] = {"auto", "on", "off"};
    int h2 = slc_spec_enum_field(b, v, "http2", where, http2, COUNT(http2));
    p->http2 = h2 < 0 ? 0 : h2;
    if (slc_map_get(v, "http2"))
        p->http2_pos = slc_map_get(v, "http2")->pos;
    const char *twhere = slc_aprintf(b->a, "timeouts of %s", where);
    const slc_node *t = slc_spec_section(b, v, "timeouts", where);
    if (t) {
        static const char *const tkeys[] = {"connect", "first_byte", "idle", "total"};
        slc_spec_check_keys(b, t, tkeys, COUNT(tkeys), twhere);
        slc_spec_duration_field(b, t, "connect", twhere, &p->connect_ms, true);
        slc_spec_duration_field(b, t, "first_byte", twhere, &p->first_byte_ms, true);
        slc_spec_duration_field(b, t, "idle", twhere, &p->idle_ms, true);
        slc_spec_duration_field(b, t, "total", twhere, &p->total_ms, true);
    }
    slc_spec_read_provider_tls(b, v, where, &p->tls);
    /* credentials: is a service-account key file for vertex, AWS's otherwise */
    if (p->kind != SLC_KIND_VERTEX)
        slc_spec_read_provider_aws(b, v, where, &p->aws);
}

static void read_target(builder *b, const slc_node *n, const char *where, slc_target *t)
{
    t->pos = n->pos;
    t->weight = 1;
    t->weight_pos = n->pos;
    t->provider_idx = -1;
    if (n->kind == SLC_NODE_SCALAR && !slc_node_is_null(n)) {
        /* `provider` or `provider/model`; the model may contain '/'. */
        const char *slash = memchr(n->str, '/', n->len);
        size_t plen = slash ? (size_t)(slash - n->str) : n->len;
        if (plen == 0 || (slash && (size_t)(slash - n->str) + 1 == n->len)) {
            slc_error(b->d, n->pos, "target '%s' in %s must be PROVIDER or PROVIDER/MODEL", n->str,
                      where);
            return;
        }
        t->provider = (slc_str){.s = slc_strndup(b->a, n->str, plen), .len = plen, .pos = n->pos,
                                .end = n->end};
        if (slash)
            t->model = (slc_str){.s = slash + 1, .len = n->len - plen - 1, .pos = n->pos,
                                 .end = n->end};
        return;
    }
    const char *twhere = slc_aprintf(b->a, "target of %s", where);
    if (n->kind != SLC_NODE_MAP) {
        slc_error(b->d, n->pos, "expected a provider name or a mapping for a target of %s, got %s",
                  where, slc_node_describe(n));
        return;
    }
    static const char *const keys[] = {"provider", "model", "weight"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), twhere);
    if (!slc_map_get(n, "provider"))
        slc_spec_missing(b, n, twhere, "provider");
    else
        slc_spec_str_field(b, n, "provider", twhere, &t->provider);
    slc_spec_str_field(b, n, "model", twhere, &t->model);
    slc_spec_int_field(b, n, "weight", twhere, &t->weight, &t->weight_pos);
}

static void default_retry(slc_retry *r)
{
    static const int codes[] = {408, 429, 500, 502, 503, 504, 529};
    r->attempts = 2;
    r->backoff_ms = 200;
    r->cap_ms = 10000;
    r->on_connect = r->on_timeout = true;
    for (size_t i = 0; i < COUNT(codes); i++)
        r->status_bits[codes[i] / 64] |= 1ull << (codes[i] % 64);
}

static void read_retry(builder *b, const slc_node *n, const char *where, slc_retry *r)
{
    const char *rwhere = slc_aprintf(b->a, "retry of %s", where);
    if (!slc_spec_want(b, n, SLC_NODE_MAP, rwhere))
        return;
    static const char *const keys[] = {"attempts", "backoff", "cap", "on"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), rwhere);
    slc_spec_int_field(b, n, "attempts", rwhere, &r->attempts, &r->attempts_pos);
    slc_spec_duration_field(b, n, "backoff", rwhere, &r->backoff_ms, false);
    slc_spec_duration_field(b, n, "cap", rwhere, &r->cap_ms, false);
    const slc_node *on = slc_map_get(n, "on");
    if (!on || !slc_spec_want(b, on, SLC_NODE_SEQ, slc_spec_field_desc(b, "on", rwhere)))
        return;
    /* A written list replaces the defaults: it says exactly what retries. */
    r->on_connect = r->on_timeout = false;
    memset(r->status_bits, 0, sizeof r->status_bits);
    for (size_t i = 0; i < on->n; i++) {
        const slc_node *c = on->vals[i];
        if (!slc_spec_want(b, c, SLC_NODE_SCALAR, slc_aprintf(b->a, "an item of 'on' in %s", rwhere)))
            continue;
        int64_t code;
        if (strcmp(c->str, "connect") == 0) {
            r->on_connect = true;
        } else if (strcmp(c->str, "timeout") == 0) {
            r->on_timeout = true;
        } else if (c->len == 3 && (c->str[0] == '4' || c->str[0] == '5') &&
                   (c->str[1] == 'x' || c->str[1] == 'X') && (c->str[2] == 'x' || c->str[2] == 'X')) {
            int base = (c->str[0] - '0') * 100;
            for (int s = base; s < base + 100; s++)
                r->status_bits[s / 64] |= 1ull << (s % 64);
        } else if (slc_parse_int(c->str, c->len, &code) == 0) {
            if (code < 100 || code > 599) {
                slc_error(b->d, c->pos, "HTTP status %s in %s is out of range 100..599", c->str,
                          rwhere);
                continue;
            }
            r->status_bits[code / 64] |= 1ull << (code % 64);
        } else {
            static const char *const words[] = {"connect", "timeout", "4xx", "5xx"};
            const char *hint = slc_suggest(c->str, words, COUNT(words));
            if (hint)
                slc_error(b->d, c->pos, "unknown retry condition '%s' in %s (did you mean '%s'?)",
                          c->str, rwhere, hint);
            else
                slc_error(b->d, c->pos,
                          "unknown retry condition '%s' in %s (use a status like 429, 4xx, 5xx, "
                          "connect or timeout)",
                          c->str, rwhere);
        }
    }
}

static void read_cooldown(builder *b, const slc_node *n, const char *where, slc_model *m)
{
    const char *cwhere = slc_aprintf(b->a, "cooldown of %s", where);
    if (!slc_spec_want(b, n, SLC_NODE_MAP, cwhere))
        return;
    static const char *const keys[] = {"failures", "period"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), cwhere);
    int64_t v;
    slc_pos pos;
    if (slc_spec_int_field(b, n, "failures", cwhere, &v, &pos)) {
        if (v < 1 || v > 1000)
            slc_error(b->d, pos, "'failures' in %s must be between 1 and 1000", cwhere);
        else
            m->cooldown_failures = (uint32_t)v;
    }
    slc_spec_duration_field(b, n, "period", cwhere, &m->cooldown_ms, true);
}

static void read_model(builder *b, const slc_node *k, const slc_node *v, slc_model *m)
{
    const char *where = slc_aprintf(b->a, "model '%s'", k->str);
    m->name = slc_spec_str_of(k);
    m->emitted = true;
    default_retry(&m->retry);
    if (!slc_spec_want(b, v, SLC_NODE_MAP, where))
        return;
    static const char *const keys[] = {"targets", "fallbacks", "retry", "cooldown", "cache", "guardrails"};
    slc_spec_check_keys(b, v, keys, COUNT(keys), where);
    const slc_node *t = slc_map_get(v, "targets");
    if (!t) {
        slc_spec_missing(b, v, where, "targets");
    } else if (slc_spec_want(b, t, SLC_NODE_SEQ, slc_spec_field_desc(b, "targets", where))) {
        if (t->n == 0)
            slc_error(b->d, t->pos, "%s has no targets", where);
        m->targets = slc_alloc(b->a, (t->n ? t->n : 1) * sizeof *m->targets);
        m->ntargets = t->n;
        for (size_t i = 0; i < t->n; i++)
            read_target(b, t->vals[i], where, &m->targets[i]);
    }
    const slc_node *f = slc_map_get(v, "fallbacks");
    if (f && slc_spec_want(b, f, SLC_NODE_SEQ, slc_spec_field_desc(b, "fallbacks", where))) {
        m->fallbacks = slc_alloc(b->a, (f->n ? f->n : 1) * sizeof *m->fallbacks);
        for (size_t i = 0; i < f->n; i++) {
            if (!slc_spec_want(b, f->vals[i], SLC_NODE_SCALAR,
                      slc_aprintf(b->a, "a fallback of %s", where)))
                continue;
            m->fallbacks[m->nfallbacks++] = slc_spec_str_of(f->vals[i]);
        }
    }
    const slc_node *r = slc_map_get(v, "retry");
    if (r)
        read_retry(b, r, where, &m->retry);
    const slc_node *cd = slc_map_get(v, "cooldown");
    if (cd)
        read_cooldown(b, cd, where, m);
    slc_cache_read(b->d, b->a, v, where, &m->cache);
}

static void read_budget(builder *b, const slc_node *owner, const char *where, slc_budget *bu)
{
    bu->usd_micros = -1;
    bu->tokens = -1;
    const slc_node *n = slc_map_get(owner, "budget");
    if (!n)
        return;
    const char *bwhere = slc_aprintf(b->a, "budget of %s", where);
    if (!slc_spec_want(b, n, SLC_NODE_MAP, bwhere))
        return;
    bu->present = true;
    bu->pos = n->pos;
    static const char *const keys[] = {"usd", "tokens", "per"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), bwhere);
    slc_spec_money_field(b, n, "usd", bwhere, &bu->usd_micros);
    slc_pos tpos;
    if (slc_spec_int_field(b, n, "tokens", bwhere, &bu->tokens, &tpos) && bu->tokens < 1) {
        slc_error(b->d, tpos, "'tokens' in %s must be at least 1", bwhere);
        bu->tokens = -1;
    }
    if (!slc_map_get(n, "usd") && !slc_map_get(n, "tokens"))
        slc_error(b->d, n->pos, "%s sets neither 'usd' nor 'tokens'", bwhere);
    if (!slc_map_get(n, "per"))
        slc_spec_missing(b, n, bwhere, "per");
    else
        slc_spec_str_field(b, n, "per", bwhere, &bu->per);
}

static void read_limits(builder *b, const slc_node *owner, const char *where, slc_limits *l)
{
    const char *lwhere = slc_aprintf(b->a, "limits of %s", where);
    const slc_node *n = slc_spec_section(b, owner, "limits", where);
    if (!n)
        return;
    static const char *const keys[] = {"rpm", "tpm"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), lwhere);
    slc_spec_count_field(b, n, "rpm", lwhere, &l->rpm);
    slc_spec_count_field(b, n, "tpm", lwhere, &l->tpm);
}

static void read_team(builder *b, const slc_node *k, const slc_node *v, slc_team *t)
{
    const char *where = slc_aprintf(b->a, "team '%s'", k->str);
    t->name = slc_spec_str_of(k);
    t->budget.usd_micros = t->budget.tokens = -1;
    if (!slc_spec_want(b, v, SLC_NODE_MAP, where))
        return;
    static const char *const keys[] = {"budget", "limits", "guardrails"};
    slc_spec_check_keys(b, v, keys, COUNT(keys), where);
    read_budget(b, v, where, &t->budget);
    read_limits(b, v, where, &t->limits);
}

static void read_key(builder *b, const slc_node *k, const slc_node *v, slc_key *key)
{
    const char *where = slc_aprintf(b->a, "key '%s'", k->str);
    key->name = slc_spec_str_of(k);
    key->team_idx = -1;
    key->all_models = true;
    key->budget.usd_micros = key->budget.tokens = -1;
    if (!slc_spec_want(b, v, SLC_NODE_MAP, where))
        return;
    static const char *const keys[] = {"hash", "team", "models", "limits", "budget", "expires",
                                       "allow_ips", "cache",
                                       "guardrails"};
    slc_spec_check_keys(b, v, keys, COUNT(keys), where);
    if (!slc_map_get(v, "hash"))
        slc_spec_missing(b, v, where, "hash");
    else
        slc_spec_str_field(b, v, "hash", where, &key->hash);
    slc_spec_str_field(b, v, "team", where, &key->team);
    const slc_node *m = slc_map_get(v, "models");
    if (m && slc_spec_want(b, m, SLC_NODE_SEQ, slc_spec_field_desc(b, "models", where))) {
        key->all_models = false;
        key->models = slc_alloc(b->a, (m->n ? m->n : 1) * sizeof *key->models);
        for (size_t i = 0; i < m->n; i++)
            if (slc_spec_want(b, m->vals[i], SLC_NODE_SCALAR,
                     slc_aprintf(b->a, "an item of 'models' in %s", where)))
                key->models[key->nmodels++] = slc_spec_str_of(m->vals[i]);
    }
    read_limits(b, v, where, &key->limits);
    read_budget(b, v, where, &key->budget);
    if (slc_spec_str_field(b, v, "expires", where, &key->expires)) {
        char err[128];
        if (slc_parse_time_unix(key->expires.s, key->expires.len, &key->expires_unix, err,
                                sizeof err) != 0)
            slc_error(b->d, key->expires.pos, "invalid time '%s' for 'expires' in %s: %s",
                      key->expires.s, where, err);
    }
    const slc_node *ips = slc_map_get(v, "allow_ips");
    if (ips && slc_spec_want(b, ips, SLC_NODE_SEQ, slc_spec_field_desc(b, "allow_ips", where))) {
        key->cidrs = slc_alloc(b->a, (ips->n ? ips->n : 1) * sizeof *key->cidrs);
        for (size_t i = 0; i < ips->n; i++)
            if (slc_spec_want(b, ips->vals[i], SLC_NODE_SCALAR,
                     slc_aprintf(b->a, "an item of 'allow_ips' in %s", where)))
                key->cidrs[key->ncidrs++].text = slc_spec_str_of(ips->vals[i]);
    }
    slc_cache_read(b->d, b->a, v, where, &key->cache);
}

static void read_price(builder *b, const slc_node *k, const slc_node *v, slc_price *p)
{
    const char *where = slc_aprintf(b->a, "price '%s'", k->str);
    p->key = slc_spec_str_of(k);
    p->provider_idx = -1;
    const char *slash = memchr(k->str, '/', k->len);
    if (!slash || slash == k->str || (size_t)(slash - k->str) + 1 == k->len) {
        slc_error(b->d, k->pos, "price key '%s' must be PROVIDER/MODEL", k->str);
    } else {
        size_t plen = (size_t)(slash - k->str);
        p->provider = (slc_str){.s = slc_strndup(b->a, k->str, plen), .len = plen, .pos = k->pos,
                                .end = k->end};
        p->model = (slc_str){.s = slash + 1, .len = k->len - plen - 1, .pos = k->pos, .end = k->end};
    }
    if (!slc_spec_want(b, v, SLC_NODE_MAP, where))
        return;
    static const char *const keys[] = {"input", "output", "cache_read", "cache_write"};
    slc_spec_check_keys(b, v, keys, COUNT(keys), where);
    slc_spec_money_field(b, v, "input", where, &p->input);
    slc_spec_money_field(b, v, "output", where, &p->output);
    slc_spec_money_field(b, v, "cache_read", where, &p->cache_read);
    slc_spec_money_field(b, v, "cache_write", where, &p->cache_write);
}

static void read_server(builder *b, const slc_node *root, slc_server *s)
{
    s->max_header_bytes = 16 * 1024;
    s->max_headers = 100;
    s->max_body_bytes = 10 * 1024 * 1024;
    s->header_timeout_ms = 10000;
    s->body_timeout_ms = 10000;
    s->keepalive_timeout_ms = 75000;
    s->max_connections = 10000;
    s->max_inflight = 10000;
    s->handshake_timeout_ms = 10000;
    s->max_handshakes = 1024;
    const slc_node *n = slc_spec_section(b, root, "server", NULL);
    if (!n)
        return;
    static const char *const keys[] = {"max_header",      "max_headers",       "max_body",
                                       "header_timeout",  "body_timeout",      "keepalive_timeout",
                                       "max_connections", "max_inflight",      "handshake_timeout",
                                       "max_handshakes"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), "'server'");
    uint64_t v = s->max_header_bytes;
    slc_spec_size_field(b, n, "max_header", "'server'", &v, UINT32_MAX);
    s->max_header_bytes = (uint32_t)v;
    slc_spec_count_field(b, n, "max_headers", "'server'", &s->max_headers);
    slc_spec_size_field(b, n, "max_body", "'server'", &s->max_body_bytes, UINT64_MAX);
    slc_spec_duration_field(b, n, "header_timeout", "'server'", &s->header_timeout_ms, true);
    slc_spec_duration_field(b, n, "body_timeout", "'server'", &s->body_timeout_ms, true);
    slc_spec_duration_field(b, n, "keepalive_timeout", "'server'", &s->keepalive_timeout_ms, false);
    slc_spec_count_field(b, n, "max_connections", "'server'", &s->max_connections);
    slc_spec_count_field(b, n, "max_inflight", "'server'", &s->max_inflight);
    slc_spec_duration_field(b, n, "handshake_timeout", "'server'", &s->handshake_timeout_ms, true);
    slc_spec_count_field(b, n, "max_handshakes", "'server'", &s->max_handshakes);
}

/* `responses: { retention: 30d }`. Stored responses live for days, longer
 * than a duration in ms can say, so retention is whole hours or days. */
static void read_responses(builder *b, const slc_node *root, slc_spec *s)
{
    const slc_node *r = slc_spec_section(b, root, "responses", NULL);
    if (!r)
        return;
    static const char *const rkeys[] = {"retention"};
    slc_spec_check_keys(b, r, rkeys, COUNT(rkeys), "'responses'");
    const slc_node *n = slc_map_get(r, "retention");
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, "'retention' of 'responses'"))
        return;
    int64_t v = 0;
    char unit = n->len ? n->str[n->len - 1] : 0;
    if (n->len < 2 || (unit != 'd' && unit != 'h') || slc_parse_int(n->str, n->len - 1, &v) != 0 || v < 1 ||
        v > (unit == 'd' ? 3650 : 3650 * 24)) {
        slc_error(b->d, n->pos,
                  "invalid retention '%s' for 'responses': expected whole hours or days between 1h and "
                  "3650d, like 12h or 30d",
                  n->str);
        return;
    }
    s->responses_retention_s = (uint32_t)(v * (unit == 'd' ? 86400 : 3600));
}

/* Calls `fn` for each valid entry of a named-section mapping. */
#define READ_SECTION(field, nfield, key, what, fn)                                             \
    do {                                                                                        \
        const slc_node *sec_ = slc_spec_section(&b, root, key, NULL);                                   \
        if (!sec_)                                                                              \
            break;                                                                              \
        s->field = slc_alloc(a, (sec_->n ? sec_->n : 1) * sizeof *s->field);                   \
        for (size_t i_ = 0; i_ < sec_->n; i_++)                                                 \
            if (slc_spec_valid_name(&b, sec_->keys[i_], what))                                           \
                fn(&b, sec_->keys[i_], sec_->vals[i_], &s->field[s->nfield++]);                 \
    } while (0)

slc_spec *slc_spec_build(const slc_node *root, slc_arena *a, slc_diags *d)
{
    builder b = {.a = a, .d = d};
    if (root->kind != SLC_NODE_MAP) {
        slc_error(d, root->pos, "expected a mapping at the top level of the spec, got %s",
                  slc_node_describe(root));
        return NULL;
    }
    slc_spec *s = slc_alloc(a, sizeof *s);
    s->pos = root->pos;
    static const char *const keys[] = {"sluice", "listen", "tls",    "listen_plain", "allow_plaintext",
                                       "state",  "server", "providers", "models", "prices",
                                       "teams",  "keys",   "admin", "telemetry", "responses",
                                       "guardrails"};
    slc_spec_check_keys(&b, root, keys, COUNT(keys), NULL);

    const slc_node *ver = slc_map_get(root, "sluice");
    if (!ver) {
        slc_error(d, root->pos, "missing 'sluice: %d' (the spec format version)", SLC_SPEC_VERSION);
    } else if (ver->kind != SLC_NODE_SCALAR || strcmp(ver->str, "1") != 0) {
        slc_error(d, ver->pos, "unsupported spec format version %s%s%s (this sluicec reads 'sluice: %d')",
                  ver->kind == SLC_NODE_SCALAR ? "'" : "",
                  ver->kind == SLC_NODE_SCALAR ? ver->str : slc_node_describe(ver),
                  ver->kind == SLC_NODE_SCALAR ? "'" : "", SLC_SPEC_VERSION);
    }

    if (!slc_spec_str_field(&b, root, "listen", NULL, &s->listen))
        s->listen = (slc_str){.s = "127.0.0.1:4000", .len = 14, .pos = root->pos};
    slc_spec_read_tls(&b, root, s);
    slc_spec_str_field(&b, root, "listen_plain", NULL, &s->listen_plain);
    const slc_node *ap = slc_map_get(root, "allow_plaintext");
    if (ap && slc_spec_want(&b, ap, SLC_NODE_SCALAR, "'allow_plaintext'")) {
        if (strcmp(ap->str, "true") == 0)
            s->allow_plaintext = true;
        else if (strcmp(ap->str, "false") != 0)
            slc_error(d, ap->pos, "expected true or false for 'allow_plaintext', got '%s'", ap->str);
        s->allow_plaintext_pos = ap->pos;
    }
    slc_state_read(root, s, a, d);
    read_server(&b, root, &s->server);

    if (!slc_map_get(root, "providers"))
        slc_error(d, root->pos, "spec is missing 'providers'");
    if (!slc_map_get(root, "models"))
        slc_error(d, root->pos, "spec is missing 'models'");
    READ_SECTION(providers, nproviders, "providers", "provider", read_provider);
    READ_SECTION(models, nmodels, "models", "model", read_model);
    READ_SECTION(prices, nprices, "prices", "price", read_price);
    READ_SECTION(teams, nteams, "teams", "team", read_team);
    const slc_node *kn = slc_map_get(root, "keys");
    if (kn) {
        s->has_keys_section = true;
        for (size_t i = 0; i < root->n; i++)
            if (root->vals[i] == kn)
                s->keys_pos = root->keys[i]->pos;
    }
    READ_SECTION(keys, nkeys, "keys", "key", read_key);
    for (size_t i = 0; i < s->nmodels; i++)
        s->models[i].is_glob = strpbrk(s->models[i].name.s, "*?") != NULL;

    const slc_node *adm = slc_spec_section(&b, root, "admin", NULL);
    if (adm) {
        static const char *const akeys[] = {"hash"};
        slc_spec_check_keys(&b, adm, akeys, COUNT(akeys), "'admin'");
        if (!slc_map_get(adm, "hash"))
            slc_spec_missing(&b, adm, "'admin'", "hash");
        else if (slc_spec_str_field(&b, adm, "hash", "'admin'", &s->admin_hash))
            s->has_admin = true;
    }
    const slc_node *tel = slc_spec_section(&b, root, "telemetry", NULL);
    if (tel) {
        static const char *const tkeys[] = {"otlp", "service_name"};
        slc_spec_check_keys(&b, tel, tkeys, COUNT(tkeys), "'telemetry'");
        if (!slc_map_get(tel, "otlp"))
            slc_spec_missing(&b, tel, "'telemetry'", "otlp");
        else if (slc_spec_str_field(&b, tel, "otlp", "'telemetry'", &s->telemetry.otlp))
            s->telemetry.present = true;
        slc_spec_str_field(&b, tel, "service_name", "'telemetry'", &s->telemetry.service_name);
    }
    slc_guard_read(root, s, a, d);
    read_responses(&b, root, s);
    return s;
}
