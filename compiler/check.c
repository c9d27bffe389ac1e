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

static int find_model(const slc_spec *s, slc_str name)
{
    for (size_t i = 0; i < s->nmodels; i++)
        if (str_eq(name, s->models[i].name.s))
            return (int)i;
    return -1;
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
            int idx = find_model(c->s, f);
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
 * are decided by spec order, which deserves a mention. */
static void check_globs(checker *c)
{
    slc_spec *s = c->s;
    for (size_t i = 0; i < s->nmodels; i++) {
        slc_model *b = &s->models[i];
        if (!b->is_glob)
            continue;
        size_t bp = slc_glob_prefix_len(b->name.s);
        for (size_t j = 0; j < s->nmodels; j++) {
            slc_model *a = &s->models[j];
            if (j == i || !a->is_glob || !a->emitted)
                continue;
            size_t ap = slc_glob_prefix_len(a->name.s);
            bool ahead = ap > bp || (ap == bp && j < i);
            if (ahead && slc_glob_covers(a->name.s, b->name.s)) {
                slc_warning(c->d, b->name.pos,
                            "model '%s' can never match: every name it matches goes to '%s' first",
                            b->name.s, a->name.s);
                b->emitted = false;
                break;
            }
        }
    }
    for (size_t i = 0; i < s->nmodels; i++) {
        slc_model *b = &s->models[i];
        if (!b->is_glob || !b->emitted)
            continue;
        size_t bp = slc_glob_prefix_len(b->name.s);
        for (size_t j = 0; j < i; j++) {
            slc_model *a = &s->models[j];
            if (!a->is_glob || !a->emitted || slc_glob_prefix_len(a->name.s) != bp)
                continue;
            /* Specific before general (a inside b) is the intended order. */
            if (slc_glob_overlap(a->name.s, b->name.s) && !slc_glob_covers(b->name.s, a->name.s)) {
                slc_warning(c->d, b->name.pos,
                            "models '%s' and '%s' both match some names with the same literal "
                            "prefix; '%s' wins because it comes first",
                            a->name.s, b->name.s, a->name.s);
                break;
            }
        }
    }
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

static void resolve_scope(checker *c, slc_key *k)
{
    slc_spec *s = c->s;
    if (k->all_models)
        return;
    k->scope = slc_alloc(c->a, (s->nmodels ? s->nmodels : 1) * sizeof *k->scope);
    bool *in = calloc(s->nmodels ? s->nmodels : 1, 1);
    if (!in)
        abort();
    for (size_t i = 0; i < k->nmodels; i++) {
        slc_str m = k->models[i];
        int exact = find_model(s, m);
        bool any = false;
        /* A glob allows every entry whose names it covers, so `claude-*`
         * also admits a more specific `claude-3-*` entry: the key's owner
         * meant "Claude models", however the routes are split. */
        if (slc_is_glob(m.s)) {
            for (size_t j = 0; j < s->nmodels; j++)
                if (slc_glob_covers(m.s, s->models[j].name.s))
                    in[j] = any = true;
            if (!any)
                slc_error(c->d, m.pos, "key '%s' allows '%s', which matches no model entry",
                          k->name.s, m.s);
            continue;
        }
        if (exact >= 0)
            in[exact] = any = true;
        if (!any)
            slc_error(c->d, m.pos, "key '%s' allows unknown model '%s'%s", k->name.s, m.s,
                      hint(c, m.s, model_at, s->nmodels));
    }
    for (size_t j = 0; j < s->nmodels; j++)
        if (in[j])
            k->scope[k->nscope++] = (uint32_t)j;
    free(in);
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
    for (size_t i = 0; i < s->nteams; i++)
        check_period(c, &s->teams[i].budget, slc_aprintf(c->a, "team '%s'", s->teams[i].name.s));
    for (size_t i = 0; i < s->nkeys; i++) {
        slc_key *k = &s->keys[i];
        if (k->hash.s && !parse_hash(k->hash, k->hash_bytes))
            slc_error(c->d, k->hash.pos,
                      "key '%s': hash must be 'sha256:' followed by 64 lowercase hex digits "
                      "(the SHA-256 of the key, not the key itself)",
                      k->name.s);
        for (size_t j = 0; j < i && k->hash.s; j++)
            if (s->keys[j].hash.s && s->keys[j].hash.len == k->hash.len &&
                memcmp(s->keys[j].hash.s, k->hash.s, k->hash.len) == 0) {
                slc_error(c->d, k->hash.pos, "key '%s' has the same hash as key '%s'", k->name.s,
                          s->keys[j].name.s);
                break;
            }
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
        for (size_t j = 0; j < s->nkeys; j++) {
            if (s->keys[j].hash.s && s->keys[j].hash.len == s->admin_hash.len &&
                memcmp(s->keys[j].hash.s, s->admin_hash.s, s->admin_hash.len) == 0) {
                slc_error(c->d, s->admin_hash.pos,
                          "admin hash is the same as the hash of key '%s'; use a separate key",
                          s->keys[j].name.s);
                break;
            }
        }
    }
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

static void check_listen(checker *c)
{
    slc_spec *s = c->s;
    slc_listen l;
    if (slc_parse_listen(s->listen.s, &l) != 0) {
        const char *colon = strchr(s->listen.s, ':');
        bool bare_v6 = s->listen.s[0] != '[' && colon && strchr(colon + 1, ':');
        slc_error(c->d, s->listen.pos, "listen '%s' must be HOST:PORT or [IPV6]:PORT%s", s->listen.s,
                  bare_v6 ? " (put IPv6 addresses in brackets, like [::1]:4000)" : "");
        return;
    }
    if (!s->has_keys_section && !l.loopback)
        slc_error(c->d, s->listen.pos,
                  "listen '%s' is not a loopback address, but the spec has no 'keys': anyone who "
                  "can reach the port could spend your provider credit",
                  s->listen.s);
}

static bool has_price(const slc_spec *s, int provider, const char *model)
{
    for (size_t i = 0; i < s->nprices; i++)
        if (s->prices[i].provider_idx == provider && str_eq(s->prices[i].model, model))
            return true;
    return false;
}

/* A USD budget only means something if requests cost money. */
static void check_priced(checker *c)
{
    slc_spec *s = c->s;
    bool usd = false;
    for (size_t i = 0; i < s->nteams; i++)
        usd |= s->teams[i].budget.usd_micros >= 0;
    for (size_t i = 0; i < s->nkeys; i++)
        usd |= s->keys[i].budget.usd_micros >= 0;
    if (!usd)
        return;
    for (size_t i = 0; i < s->nmodels; i++) {
        slc_model *m = &s->models[i];
        for (size_t j = 0; j < m->ntargets; j++) {
            slc_target *t = &m->targets[j];
            if (t->provider_idx < 0 || s->providers[t->provider_idx].kind == SLC_KIND_MOCK)
                continue;
            const char *model = t->model.s ? t->model.s : m->is_glob ? NULL : m->name.s;
            if (!model || has_price(s, t->provider_idx, model))
                continue;
            /* Once per provider/model, at its first use. */
            bool seen = false;
            for (size_t pi = 0; pi <= i && !seen; pi++) {
                slc_model *pm = &s->models[pi];
                for (size_t pj = 0; pj < (pi == i ? j : pm->ntargets) && !seen; pj++) {
                    slc_target *pt = &pm->targets[pj];
                    const char *pmodel = pt->model.s ? pt->model.s : pm->is_glob ? NULL : pm->name.s;
                    seen = pt->provider_idx == t->provider_idx && pmodel && strcmp(pmodel, model) == 0;
                }
            }
            if (!seen)
                slc_warning(c->d, t->pos,
                            "USD budgets are set, but '%s/%s' (used by model '%s') has no price; "
                            "its spend counts as $0",
                            s->providers[t->provider_idx].name.s, model, m->name.s);
        }
    }
}

void slc_check(slc_spec *s, slc_arena *a, slc_diags *d)
{
    checker c = {.s = s, .a = a, .d = d};
    check_providers(&c);
    check_targets(&c);
    check_fallbacks(&c);
    check_cycles(&c);
    check_globs(&c);
    check_unused(&c);
    check_prices(&c);
    check_keys(&c);
    check_listen(&c);
    check_priced(&c);
}
