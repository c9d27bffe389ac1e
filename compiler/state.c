/*
 * `state:` in the spec: where a gateway keeps what outlives a request. The
 * string form names the SQLite ledger (`state: sluice.db`); the mapping
 * form adds Redis, shared by replicas for budgets and rate limits:
 *
 *   state:
 *     file: sluice.db
 *     redis: { url: redis://10.0.0.5:6379/0, password: env:REDIS_PASSWORD,
 *              prefix: "sluice:prod:", timeout: 100ms, lease: 15m,
 *              on_state_error: fail_closed, replicas: 3, share_circuits: true }
 *
 * Everything about it is local to this section, so its shape and its value
 * checks live here together: the URL is split into host, port and
 * database, so the runtime parses nothing, and a password is an `env:`
 * reference like a provider key (a literal is an error, never echoed).
 */
#include "spec.h"
#include "spec_internal.h"

#include <stdio.h>
#include <string.h>

#include "secret.h"
#include "state/url.h"
#include "suggest.h"
#include "units.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The spec reader's one check of unknown keys (with its suggestion). */
static void unknown_keys(slc_arena *a, slc_diags *d, const slc_node *map, const char *const *allowed, size_t n,
                         const char *where)
{
    slc_builder b = {.a = a, .d = d};
    slc_spec_check_keys(&b, map, allowed, n, where);
}

/* A non-empty scalar without NUL or control bytes; false when absent or
 * reported. */
static bool text(slc_diags *d, const slc_node *map, const char *key, const char *where, slc_str *out)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n)
        return false;
    if (n->kind != SLC_NODE_SCALAR || slc_node_is_null(n)) {
        slc_error(d, n->pos, "expected a scalar for '%s' in %s, got %s", key, where, slc_node_describe(n));
        return false;
    }
    if (n->len == 0) {
        slc_error(d, n->pos, "'%s' in %s must not be empty", key, where);
        return false;
    }
    for (size_t i = 0; i < n->len; i++)
        if ((unsigned char)n->str[i] < 0x20 || n->str[i] == 0x7f) {
            slc_error(d, n->pos, "'%s' in %s must not contain control characters", key, where);
            return false;
        }
    *out = (slc_str){.s = n->str, .len = n->len, .pos = n->pos, .end = n->end};
    return true;
}

static void duration(slc_diags *d, const slc_node *map, const char *key, const char *where, uint32_t min_ms,
                     uint32_t max_ms, uint32_t *out)
{
    slc_str v;
    if (!text(d, map, key, where, &v))
        return;
    char err[128];
    uint32_t ms;
    if (slc_parse_duration_ms(v.s, v.len, &ms, err, sizeof err) != 0) {
        slc_error(d, v.pos, "invalid duration '%s' for '%s' in %s: %s", v.s, key, where, err);
        return;
    }
    if (ms < min_ms || ms > max_ms) {
        slc_error(d, v.pos, "'%s' in %s must be between %ums and %ums", key, where, min_ms, max_ms);
        return;
    }
    *out = ms;
}

/* Splits the url with the parser the gateway uses for --redis. */
static void parse_url(slc_diags *d, slc_arena *a, slc_redis *r)
{
    char host[SL_REDIS_HOST_MAX], why[160];
    if (sl_redis_url_parse(r->url.s, host, &r->port, &r->db, why, sizeof why) != 0) {
        if (strchr(r->url.s, '@')) /* never echoed: the URL holds a password */
            slc_error_redacted(d, r->url.pos, r->url.end, "state: redis url: it %s", why);
        else
            slc_error(d, r->url.pos, "state: redis url '%s': it %s", r->url.s, why);
        return;
    }
    r->host = slc_strndup(a, host, strlen(host));
}

static void read_redis(const slc_node *n, slc_spec *s, slc_arena *a, slc_diags *d)
{
    const char *where = "'redis' in 'state'";
    slc_redis *r = &s->redis;
    if (n->kind != SLC_NODE_MAP) {
        slc_error(d, n->pos, "expected a mapping for %s, got %s", where, slc_node_describe(n));
        return;
    }
    static const char *const keys[] = {"url",   "password",       "prefix",   "timeout",
                                       "lease", "on_state_error", "replicas", "share_circuits"};
    unknown_keys(a, d, n, keys, COUNT(keys), where);
    r->pos = n->pos;
    r->timeout_ms = 100;
    r->lease_ms = 15 * 60 * 1000;
    r->prefix = (slc_str){.s = "sluice:", .len = 7, .pos = n->pos};
    bool ok = true;
    if (!slc_map_get(n, "url")) {
        slc_error(d, n->pos, "%s is missing 'url'", where);
        ok = false;
    } else if (text(d, n, "url", where, &r->url)) {
        if (strchr(r->url.s, '@')) /* userinfo: no message may quote it */
            slc_diags_redact(d, r->url.pos, r->url.end);
        size_t before = slc_diags_errors(d);
        parse_url(d, a, r);
        ok &= slc_diags_errors(d) == before;
    } else {
        ok = false;
    }
    if (text(d, n, "password", where, &r->password)) {
        if (strncmp(r->password.s, "env:", 4) != 0)
            slc_diags_redact(d, r->password.pos, r->password.end);
        if (strncmp(r->password.s, "env:", 4) != 0)
            slc_error_redacted(d, r->password.pos, r->password.end,
                               "state: redis password must be env:NAME; a literal secret does not "
                               "belong in the spec");
        else if (!slc_valid_env_name(r->password.s + 4))
            slc_error(d, r->password.pos, "state: redis password '%s' does not name a valid environment variable",
                      r->password.s);
        else
            r->password_env = r->password.s + 4;
    }
    slc_str p;
    if (text(d, n, "prefix", where, &p)) {
        if (strpbrk(p.s, " \"\\") || p.len > 64)
            slc_error(d, p.pos, "state: redis prefix '%s' must be at most 64 characters without blanks, "
                                "quotes or backslashes", p.s);
        else
            r->prefix = p;
    }
    duration(d, n, "timeout", where, 1, 60000, &r->timeout_ms);
    duration(d, n, "lease", where, 1000, 24u * 3600 * 1000, &r->lease_ms);
    slc_str pol = {0};
    if (text(d, n, "on_state_error", where, &pol)) {
        static const char *const words[] = {"fail_closed", "local"};
        if (strcmp(pol.s, "fail_closed") == 0) {
            r->on_error = SLC_STATE_FAIL_CLOSED;
        } else if (strcmp(pol.s, "local") == 0) {
            r->on_error = SLC_STATE_LOCAL;
        } else {
            const char *hint = slc_suggest(pol.s, words, COUNT(words));
            slc_error(d, pol.pos, "state: unknown on_state_error '%s' (%s%s%s)", pol.s,
                      hint ? "did you mean '" : "expected fail_closed or local", hint ? hint : "",
                      hint ? "'?" : "");
        }
    }
    const slc_node *rep = slc_map_get(n, "replicas");
    if (rep) {
        int64_t v;
        if (rep->kind != SLC_NODE_SCALAR || slc_parse_int(rep->str, rep->len, &v) != 0 || v < 1 || v > 1000)
            slc_error(d, rep->pos, "'replicas' in %s must be a whole number between 1 and 1000", where);
        else
            r->replicas = (uint32_t)v;
    }
    const slc_node *sc = slc_map_get(n, "share_circuits");
    if (sc) {
        if (sc->kind != SLC_NODE_SCALAR || (strcmp(sc->str, "true") != 0 && strcmp(sc->str, "false") != 0))
            slc_error(d, sc->pos, "expected true or false for 'share_circuits' in %s", where);
        else
            r->share_circuits = sc->str[0] == 't';
    }
    if (r->on_error == SLC_STATE_LOCAL && !rep)
        slc_error(d, pol.pos,
                  "state: on_state_error: local needs 'replicas' (each replica then spends at most "
                  "1/replicas of a budget while Redis is unreachable)");
    r->present = ok;
}

void slc_state_read(const slc_node *root, slc_spec *s, slc_arena *a, slc_diags *d)
{
    s->state = (slc_str){.s = "sluice.db", .len = 9, .pos = root->pos};
    const slc_node *n = slc_map_get(root, "state");
    if (!n)
        return;
    if (n->kind == SLC_NODE_SCALAR && !slc_node_is_null(n)) {
        if (n->len == 0) {
            slc_error(d, n->pos, "'state' must not be empty");
            return;
        }
        if (memchr(n->str, '\0', n->len)) {
            slc_error(d, n->pos, "'state' must not contain NUL characters");
            return;
        }
        s->state = (slc_str){.s = n->str, .len = n->len, .pos = n->pos, .end = n->end};
        return;
    }
    if (n->kind != SLC_NODE_MAP) {
        slc_error(d, n->pos, "expected a file name or a mapping for 'state', got %s", slc_node_describe(n));
        return;
    }
    static const char *const keys[] = {"file", "redis"};
    unknown_keys(a, d, n, keys, COUNT(keys), "'state'");
    slc_str f;
    if (text(d, n, "file", "'state'", &f))
        s->state = f;
    const slc_node *r = slc_map_get(n, "redis");
    if (r)
        read_redis(r, s, a, d);
}
