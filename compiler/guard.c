/*
 * Guardrails in the spec (see guard.h): reading, checking, lowering and
 * the generated code. The attachment lists on model entries, keys and
 * teams are read here from the tree, by owner name, so the readers of
 * those sections only have to accept the `guardrails` key.
 */
#include "guard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "emit.h"
#include "spec_internal.h"
#include "suggest.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const char *const det_names[SL_GDET_COUNT] = {"email", "phone", "card", "iban",
                                                      "ssn",   "ipv4",  "ipv6", "secrets"};
static const char *const action_names[] = {"none", "log", "redact", "block"};

const char *slc_guard_detector_name(int det)
{
    return det >= 0 && det < SL_GDET_COUNT ? det_names[det] : "deny";
}

/* The built-in detectors as re2c expressions. Each finds candidates only;
 * the runtime checks boundaries and checksums (Luhn, mod-97), so these
 * stay small DFAs. No class contains NUL (the scanners' sentinel). */
#define D "[0-9]"
#define H "[0-9A-Fa-f]"
#define OCT "(\"25\" [0-5] | \"2\" [0-4] " D " | \"1\" " D "{2} | [1-9]? " D ")"
static const char *const det_re[SL_GDET_COUNT] = {
    [SL_GDET_EMAIL] = "[A-Za-z0-9._%+\\-]+ \"@\" [A-Za-z0-9\\-]+ (\".\" [A-Za-z0-9\\-]+)* \".\" [A-Za-z]{2,24}",
    [SL_GDET_PHONE] = "\"+\" [1-9] ([ .\\-]? " D "){6,14}"
                      " | \"+\" [1-9] " D "{0,2} [ .\\-]? \"(\" " D "{1,4} \")\" ([ .\\-]? " D "){4,12}"
                      " | \"(\" " D "{3} \")\" [ ]? " D "{3} [ .\\-] " D "{4}"
                      " | " D "{3} [.\\-] " D "{3} [.\\-] " D "{4}"
                      " | \"0\" [1-9] " D "{1,3} [ \\-] " D "{3,4} [ \\-]? " D "{3,4}",
    [SL_GDET_CARD] = D " ([ \\-]? " D "){12,18}",
    [SL_GDET_IBAN] = "[A-Z]{2} " D "{2} ([ ]? [A-Z0-9]{4}){2,7} ([ ]? [A-Z0-9]{1,3})?",
    [SL_GDET_SSN] = D "{3} \"-\" " D "{2} \"-\" " D "{4}",
    [SL_GDET_IPV4] = OCT " \".\" " OCT " \".\" " OCT " \".\" " OCT,
    [SL_GDET_IPV6] = H "{0,4} \":\" " H "{0,4} \":\" [0-9A-Fa-f:]{0,37}",
    /* Key shapes by prefix; the runtime extends a match over the rest of
     * the token and checks each shape's length, so the DFA stays small. */
    [SL_GDET_SECRETS] = "\"sk-\" [A-Za-z0-9_\\-]{8}"
                        " | (\"AKIA\" | \"ASIA\") [A-Z0-9]{16}"
                        " | \"gh\" [pousr] \"_\" [A-Za-z0-9]{8}"
                        " | \"github_pat_\" [A-Za-z0-9_]{8}"
                        " | \"AIza\" [A-Za-z0-9_\\-]{8}"
                        " | \"xox\" [baprs] \"-\" [A-Za-z0-9\\-]{8}"
                        " | (\"sk\" | \"rk\") \"_live_\" [A-Za-z0-9]{8}"
                        " | \"eyJ\" [A-Za-z0-9_\\-]{5,} \".\" \"eyJ\" [A-Za-z0-9_\\-]{5,} \".\" [A-Za-z0-9_\\-]{10}",
};
static const char pem_re[] = "\"-----BEGIN \" ([A-Z0-9]+ \" \")? \"PRIVATE KEY-----\"";

/* ---- reading ------------------------------------------------------------ */


static int action_of(slc_diags *d, const slc_node *n, const char *what)
{
    if (n->kind == SLC_NODE_SCALAR && !slc_node_is_null(n))
        for (int i = 1; i < (int)COUNT(action_names); i++)
            if (strcmp(n->str, action_names[i]) == 0)
                return i;
    slc_error(d, n->pos, "%s must be block, redact or log, got %s%s%s", what,
              n->kind == SLC_NODE_SCALAR ? "'" : "", n->kind == SLC_NODE_SCALAR ? n->str : slc_node_describe(n),
              n->kind == SLC_NODE_SCALAR ? "'" : "");
    return SL_GUARD_NONE;
}

/* Where character `off` of a scalar's value is in the file: exact for
 * plain and single-quoted one-line scalars, the usual way patterns are
 * written. */
static slc_pos pos_in(const slc_node *n, size_t off)
{
    slc_pos p = n->pos;
    p.col += (uint32_t)off + (n->plain ? 0 : 1);
    return p;
}

static void read_pattern(slc_arena *a, slc_diags *d, const slc_node *n, const char *where, size_t idx,
                         slc_guard_pat *pt)
{
    pt->text = slc_spec_str_of(n);
    const char *s = n->str;
    size_t len = n->len;
    if (len == 0) {
        slc_error(d, n->pos, "deny pattern %zu of %s is empty", idx + 1, where);
        return;
    }
    bool icase = false;
    size_t body = 0, blen = len;
    if (len >= 2 && s[0] == '/') {
        const char *close = s + len - 1;
        if (*close == 'i' && len >= 3 && close[-1] == '/') {
            icase = true;
            close--;
        }
        if (*close != '/' || close == s) {
            slc_error(d, pos_in(n, len - 1),
                      "deny pattern %zu of %s starts with '/' but does not end with '/' or '/i' "
                      "(write a literal starting with '/' as /\\/.../)",
                      idx + 1, where);
            return;
        }
        pt->regex = true;
        body = 1;
        blen = (size_t)(close - s) - 1;
    }
    if (!pt->regex) {
        slc_buf b = {0};
        slc_buf_putc(&b, '"');
        for (size_t i = 0; i < len; i++)
            slc_buf_printf(&b, "\\x%02X", (unsigned char)s[i]);
        slc_buf_putc(&b, '"');
        if (memchr(s, '\0', len))
            slc_error(d, n->pos, "deny pattern %zu of %s contains NUL, which cannot be matched", idx + 1, where);
        else
            pt->re2c = slc_strndup(a, b.p, b.len);
        slc_buf_free(&b);
        return;
    }
    char err[160];
    size_t off = 0;
    const char *src = s + body;
    size_t skip = 0;
    if (blen >= 4 && memcmp(src, "(?i)", 4) == 0) {
        icase = true;
        skip = 4;
    }
    pt->re2c = slc_guard_regex(a, src + skip, blen - skip, icase, &off, err, sizeof err);
    if (!pt->re2c)
        slc_error(d, pos_in(n, body + skip + off), "deny pattern %zu of %s: %s (column %zu of the pattern)",
                  idx + 1, where, err, skip + off + 1);
}

static void read_rail(slc_arena *a, slc_diags *d, const slc_node *k, const slc_node *v, slc_guardrail *g)
{
    const char *where = slc_aprintf(a, "guardrail '%s'", k->str);
    g->name = slc_spec_str_of(k);
    if (v->kind != SLC_NODE_MAP || slc_node_is_null(v)) {
        slc_error(d, v->pos, "expected a mapping for %s, got %s", where, slc_node_describe(v));
        return;
    }
    static const char *const keys[] = {"detectors", "deny", "action", "request", "response", "restore"};
    slc_builder b = {.a = a, .d = d};
    slc_spec_check_keys(&b, v, keys, COUNT(keys), where);
    const slc_node *det = slc_map_get(v, "detectors");
    if (det && (det->kind != SLC_NODE_SEQ || slc_node_is_null(det))) {
        slc_error(d, det->pos, "expected a sequence for 'detectors' in %s, got %s", where, slc_node_describe(det));
    } else if (det) {
        for (size_t i = 0; i < det->n; i++) {
            const slc_node *e = det->vals[i];
            int found = -1;
            for (int j = 0; e->kind == SLC_NODE_SCALAR && j < SL_GDET_COUNT; j++)
                if (strcmp(e->str, det_names[j]) == 0)
                    found = j;
            if (found < 0) {
                const char *hint = e->kind == SLC_NODE_SCALAR ? slc_suggest(e->str, det_names, SL_GDET_COUNT) : NULL;
                slc_error(d, e->pos, "unknown detector %s%s%s in %s (%s%s%s)", e->kind == SLC_NODE_SCALAR ? "'" : "",
                          e->kind == SLC_NODE_SCALAR ? e->str : slc_node_describe(e),
                          e->kind == SLC_NODE_SCALAR ? "'" : "", where, hint ? "did you mean '" : "expected email, phone, card, iban, ssn, ipv4, ipv6 or secrets",
                          hint ? hint : "", hint ? "'?" : "");
            } else if (g->detectors & (1u << found)) {
                slc_warning(d, e->pos, "detector '%s' is listed twice in %s", det_names[found], where);
            }
            if (found >= 0)
                g->detectors |= 1u << found;
        }
    }
    const slc_node *deny = slc_map_get(v, "deny");
    if (deny && (deny->kind != SLC_NODE_SEQ || slc_node_is_null(deny))) {
        slc_error(d, deny->pos, "expected a sequence for 'deny' in %s, got %s", where, slc_node_describe(deny));
    } else if (deny) {
        g->deny = slc_alloc(a, (deny->n ? deny->n : 1) * sizeof *g->deny);
        for (size_t i = 0; i < deny->n; i++) {
            const slc_node *e = deny->vals[i];
            if (e->kind != SLC_NODE_SCALAR || slc_node_is_null(e)) {
                slc_error(d, e->pos, "expected a string for deny pattern %zu of %s, got %s", i + 1, where,
                          slc_node_describe(e));
                continue;
            }
            read_pattern(a, d, e, where, i, &g->deny[g->ndeny]);
            for (size_t j = 0; j < g->ndeny; j++)
                if (g->deny[j].text.len == e->len && memcmp(g->deny[j].text.s, e->str, e->len) == 0)
                    slc_error(d, e->pos, "deny pattern %zu of %s repeats pattern %zu", i + 1, where, j + 1);
            g->ndeny++;
        }
    }
    if (!g->detectors && !g->ndeny && (!det || det->kind == SLC_NODE_SEQ) && (!deny || deny->kind == SLC_NODE_SEQ))
        slc_error(d, v->pos, "%s has neither detectors nor deny patterns", where);
    const slc_node *act = slc_map_get(v, "action");
    const slc_node *rq = slc_map_get(v, "request"), *rs = slc_map_get(v, "response");
    if (act && act->kind == SLC_NODE_MAP) {
        static const char *const dirs[] = {"request", "response"};
        for (size_t i = 0; i < act->n; i++)
            if (strcmp(act->keys[i]->str, "request") != 0 && strcmp(act->keys[i]->str, "response") != 0) {
                const char *hint = slc_suggest(act->keys[i]->str, dirs, 2);
                slc_error(d, act->keys[i]->pos, "unknown key '%s' in the action of %s (%s%s%s)", act->keys[i]->str,
                          where, hint ? "did you mean '" : "expected request or response", hint ? hint : "",
                          hint ? "'?" : "");
            }
        rq = rq ? rq : slc_map_get(act, "request");
        rs = rs ? rs : slc_map_get(act, "response");
    } else if (act) {
        g->request = g->response = action_of(d, act, slc_aprintf(a, "'action' of %s", where));
    }
    if (rq)
        g->request = action_of(d, rq, slc_aprintf(a, "the request action of %s", where));
    if (rs)
        g->response = action_of(d, rs, slc_aprintf(a, "the response action of %s", where));
    if (!act && !rq && !rs)
        slc_error(d, v->pos, "%s has no action (action: block | redact | log, or request: / response:)", where);
    const slc_node *rst = slc_map_get(v, "restore");
    if (rst) {
        g->restore_pos = rst->pos;
        if (rst->kind != SLC_NODE_SCALAR || (strcmp(rst->str, "true") != 0 && strcmp(rst->str, "false") != 0))
            slc_error(d, rst->pos, "expected true or false for 'restore' in %s", where);
        else
            g->restore = rst->str[0] == 't';
        if (g->restore && g->request != SL_GUARD_REDACT)
            slc_error(d, rst->pos, "restore: true in %s needs the request action redact (it restores what was redacted)",
                      where);
    }
}

/* The `guardrails:` list of one owner node, if any. */
static void read_refs(slc_arena *a, slc_diags *d, const slc_node *owner, const char *what, slc_guard_refs *r)
{
    if (!owner || owner->kind != SLC_NODE_MAP)
        return;
    const slc_node *n = slc_map_get(owner, "guardrails");
    if (!n)
        return;
    if (n->kind != SLC_NODE_SEQ || slc_node_is_null(n)) {
        slc_error(d, n->pos, "expected a sequence of guardrail names for 'guardrails' in %s, got %s", what,
                  slc_node_describe(n));
        return;
    }
    r->names = slc_alloc(a, (n->n ? n->n : 1) * sizeof *r->names);
    for (size_t i = 0; i < n->n; i++) {
        if (n->vals[i]->kind != SLC_NODE_SCALAR || slc_node_is_null(n->vals[i])) {
            slc_error(d, n->vals[i]->pos, "expected a guardrail name in 'guardrails' of %s", what);
            continue;
        }
        r->names[r->n++] = slc_spec_str_of(n->vals[i]);
    }
}

static const slc_node *owner_node(const slc_node *root, const char *section, const char *name)
{
    const slc_node *sec = slc_map_get(root, section);
    return sec && sec->kind == SLC_NODE_MAP ? slc_map_get(sec, name) : NULL;
}

void slc_guard_read(const slc_node *root, slc_spec *s, slc_arena *a, slc_diags *d)
{
    slc_guard_set *g = slc_alloc(a, sizeof *g);
    bool any = false;
    g->models = slc_alloc(a, (s->nmodels ? s->nmodels : 1) * sizeof *g->models);
    g->keys = slc_alloc(a, (s->nkeys ? s->nkeys : 1) * sizeof *g->keys);
    g->teams = slc_alloc(a, (s->nteams ? s->nteams : 1) * sizeof *g->teams);
    for (size_t i = 0; i < s->nmodels; i++) {
        read_refs(a, d, owner_node(root, "models", s->models[i].name.s),
                  slc_aprintf(a, "model '%s'", s->models[i].name.s), &g->models[i]);
        any |= g->models[i].names != NULL;
    }
    for (size_t i = 0; i < s->nkeys; i++) {
        read_refs(a, d, owner_node(root, "keys", s->keys[i].name.s), slc_aprintf(a, "key '%s'", s->keys[i].name.s),
                  &g->keys[i]);
        any |= g->keys[i].names != NULL;
    }
    for (size_t i = 0; i < s->nteams; i++) {
        read_refs(a, d, owner_node(root, "teams", s->teams[i].name.s),
                  slc_aprintf(a, "team '%s'", s->teams[i].name.s), &g->teams[i]);
        any |= g->teams[i].names != NULL;
    }
    const slc_node *sec = slc_map_get(root, "guardrails");
    if (sec && (sec->kind != SLC_NODE_MAP || slc_node_is_null(sec))) {
        slc_error(d, sec->pos, "expected a mapping for 'guardrails', got %s", slc_node_describe(sec));
    } else if (sec) {
        any = true;
        g->rails = slc_alloc(a, (sec->n ? sec->n : 1) * sizeof *g->rails);
        for (size_t i = 0; i < sec->n; i++) {
            if (sec->keys[i]->len == 0 || memchr(sec->keys[i]->str, '\0', sec->keys[i]->len)) {
                slc_error(d, sec->keys[i]->pos, "guardrail name must not be empty");
                continue;
            }
            read_rail(a, d, sec->keys[i], sec->vals[i], &g->rails[g->nrails++]);
        }
        if (g->nrails > SLC_GUARD_MAX_RAILS)
            slc_error(d, sec->pos, "%zu guardrails; a spec may define at most %d", g->nrails, SLC_GUARD_MAX_RAILS);
    }
    s->guard = any ? g : NULL;
}

/* ---- checking ----------------------------------------------------------- */

static const char *rail_at(const void *ctx, size_t i)
{
    return ((const slc_guard_set *)ctx)->rails[i].name.s;
}

static void resolve(slc_guard_set *g, slc_arena *a, slc_diags *d, slc_guard_refs *r, const char *what)
{
    for (size_t i = 0; i < r->n; i++) {
        size_t j = 0;
        while (j < g->nrails && !(g->rails[j].name.len == r->names[i].len &&
                                  memcmp(g->rails[j].name.s, r->names[i].s, r->names[i].len) == 0))
            j++;
        if (j == g->nrails) {
            const char *hint = slc_suggest_fn(r->names[i].s, rail_at, g, g->nrails);
            slc_error(d, r->names[i].pos, "%s names unknown guardrail '%s'%s", what, r->names[i].s,
                      hint ? slc_aprintf(a, " (did you mean '%s'?)", hint) : "");
            continue;
        }
        if (j < SLC_GUARD_MAX_RAILS)
            r->mask |= 1u << j;
        g->rails[j].used = true;
    }
}

void slc_guard_check(slc_spec *s, slc_arena *a, slc_diags *d)
{
    slc_guard_set *g = s->guard;
    if (!g)
        return;
    for (size_t i = 0; i < s->nmodels; i++)
        resolve(g, a, d, &g->models[i], slc_aprintf(a, "model '%s'", s->models[i].name.s));
    for (size_t i = 0; i < s->nkeys; i++)
        resolve(g, a, d, &g->keys[i], slc_aprintf(a, "key '%s'", s->keys[i].name.s));
    for (size_t i = 0; i < s->nteams; i++)
        resolve(g, a, d, &g->teams[i], slc_aprintf(a, "team '%s'", s->teams[i].name.s));
    for (size_t i = 0; i < g->nrails; i++)
        if (!g->rails[i].used)
            slc_warning(d, g->rails[i].name.pos,
                        "guardrail '%s' is not attached to any model entry, key or team", g->rails[i].name.s);
}

/* ---- lowering and code ---------------------------------------------------- */

sl_guard_spec *slc_guard_lower(const slc_spec *s)
{
    const slc_guard_set *g = s->guard;
    if (!g || !g->nrails)
        return NULL;
    sl_guard_spec *o = calloc(1, sizeof *o);
    sl_guardrail *rails = calloc(g->nrails, sizeof *rails);
    uint32_t *mm = calloc(s->nmodels + 1, sizeof *mm), *km = calloc(s->nkeys + 1, sizeof *km),
             *tm = calloc(s->nteams + 1, sizeof *tm);
    if (!o || !rails || !mm || !km || !tm)
        abort();
    for (size_t i = 0; i < g->nrails; i++) {
        const slc_guardrail *r = &g->rails[i];
        rails[i] = (sl_guardrail){.name = r->name.s, .detectors = r->detectors, .deny_count = (uint32_t)r->ndeny,
                                  .request = (uint8_t)r->request, .response = (uint8_t)r->response,
                                  .restore = r->restore};
    }
    for (size_t i = 0; i < s->nmodels; i++)
        mm[i] = g->models[i].mask;
    for (size_t i = 0; i < s->nkeys; i++)
        km[i] = g->keys[i].mask;
    for (size_t i = 0; i < s->nteams; i++)
        tm[i] = g->teams[i].mask;
    *o = (sl_guard_spec){.rails = rails, .rail_count = (uint32_t)g->nrails, .model_rails = mm,
                         .key_rails = km, .team_rails = tm};
    return o;
}

void slc_guard_lower_free(sl_guard_spec *g)
{
    if (!g)
        return;
    free((void *)g->rails);
    free((void *)g->model_rails);
    free((void *)g->key_rails);
    free((void *)g->team_rails);
    free(g);
}

static void masks(slc_buf *out, const char *name, const uint32_t *m, uint32_t n)
{
    if (!n)
        return;
    slc_buf_printf(out, "\nstatic const uint32_t %s[%u] = {", name, n);
    for (uint32_t i = 0; i < n; i++)
        slc_buf_printf(out, "%s%s0x%xu", i ? "," : "", i % 8 ? " " : "\n    ", m[i]);
    slc_buf_puts(out, "\n};\n");
}

void slc_guard_emit_table(const sl_guard_spec *g, uint32_t nmodels, uint32_t nkeys, uint32_t nteams,
                          slc_buf *out)
{
    slc_buf_puts(out, "\n");
    for (uint32_t i = 0; i < g->rail_count; i++) {
        slc_buf_printf(out,
                       "int sl_spec_guard_scan_%u(const unsigned char *s, const unsigned char *lim, int *partial, "
                       "size_t *len);\n",
                       i);
        if (g->rails[i].deny_count && g->rails[i].detectors)
            slc_buf_printf(out,
                           "int sl_spec_guard_word_%u(const unsigned char *s, const unsigned char *lim, int *partial, "
                           "size_t *len);\n",
                           i);
    }
    slc_buf_printf(out, "\nstatic const sl_guardrail sl_spec_guardrails[%u] = {\n", g->rail_count);
    for (uint32_t i = 0; i < g->rail_count; i++) {
        const sl_guardrail *r = &g->rails[i];
        slc_buf_printf(out, "    [%u] = {.name = ", i);
        slc_emit_c_string(out, r->name, strlen(r->name));
        slc_buf_printf(out,
                       ", .detectors = 0x%xu, .deny_count = %u,\n           .request = %u, .response = %u, "
                       ".restore = %u,\n           .scan = sl_spec_guard_scan_%u, .scan_word = ",
                       r->detectors, r->deny_count, r->request, r->response, r->restore, i);
        if (!r->deny_count)
            slc_buf_puts(out, "NULL},\n");
        else if (!r->detectors)
            slc_buf_printf(out, "sl_spec_guard_scan_%u},\n", i);
        else
            slc_buf_printf(out, "sl_spec_guard_word_%u},\n", i);
    }
    slc_buf_puts(out, "};\n");
    masks(out, "sl_spec_guard_models", g->model_rails, nmodels);
    masks(out, "sl_spec_guard_keys", g->key_rails, nkeys);
    masks(out, "sl_spec_guard_teams", g->team_rails, nteams);
    slc_buf_printf(out,
                   "\nstatic const sl_guard_spec sl_spec_guard = {\n"
                   "    .rails = sl_spec_guardrails, .rail_count = %u,\n"
                   "    .model_rails = %s, .key_rails = %s, .team_rails = %s,\n"
                   "    .ops = &sl_guard_runtime_ops,\n};\n",
                   g->rail_count, nmodels ? "sl_spec_guard_models" : "NULL", nkeys ? "sl_spec_guard_keys" : "NULL",
                   nteams ? "sl_spec_guard_teams" : "NULL");
}

static void scanner(slc_buf *out, const slc_guardrail *r, const char *fn, size_t i, bool detectors)
{
    slc_buf_printf(out,
                   "int sl_spec_guard_%s_%zu(const unsigned char *s, const unsigned char *lim, int *partial, "
                   "size_t *len);\n"
                   "int sl_spec_guard_%s_%zu(const unsigned char *s, const unsigned char *lim, int *partial, "
                   "size_t *len)\n"
                   "{\n"
                   "    const unsigned char *YYCURSOR = s, *YYMARKER = s, *YYLIMIT = lim;\n"
                   "    (void)YYMARKER;\n"
                   "    *partial = 0;\n"
                   "    /*!re2c\n"
                   "        re2c:define:YYCTYPE = \"unsigned char\";\n"
                   "        re2c:yyfill:enable = 1;\n"
                   "        re2c:define:YYFILL = \"(*partial = 1, 0)\";\n"
                   "        re2c:define:YYFILL:naked = 1;\n"
                   "        re2c:eof = 0;\n\n",
                   fn, i, fn, i);
    for (size_t k = 0; k < r->ndeny; k++)
        if (r->deny[k].re2c)
            slc_buf_printf(out, "        %s { *len = (size_t)(YYCURSOR - s); return %d; }\n", r->deny[k].re2c,
                           SL_GDET_DENY + (int)k);
    for (int k = 0; detectors && k < SL_GDET_COUNT; k++)
        if (r->detectors & (1u << k))
            slc_buf_printf(out, "        %s { *len = (size_t)(YYCURSOR - s); return %d; }\n", det_re[k], k);
    if (detectors && (r->detectors & (1u << SL_GDET_SECRETS)))
        slc_buf_printf(out, "        %s { *len = (size_t)(YYCURSOR - s); return %d; }\n", pem_re, SL_GDET_PEM);
    slc_buf_puts(out, "        $ { return -1; }\n"
                      "        * { return -1; }\n"
                      "    */\n"
                      "}\n");
}

void slc_guard_emit_re(const slc_spec *s, slc_buf *out)
{
    const slc_guard_set *g = s->guard;
    if (!g)
        return;
    for (size_t i = 0; i < g->nrails; i++) {
        const slc_guardrail *r = &g->rails[i];
        slc_buf_printf(out,
                       "\n/* Guardrail '%s': deny patterns first (a tie goes to the user's rule),\n"
                       " * then the built-in detectors. Anchored at s; *lim is a NUL sentinel. */\n",
                       r->name.s);
        scanner(out, r, "scan", i, true);
        if (r->ndeny && r->detectors) {
            slc_buf_puts(out, "\n/* The same guardrail's deny patterns alone, for positions inside a word,\n"
                              " * where no built-in detector may start. */\n");
            scanner(out, r, "word", i, false);
        }
    }
}

/* ---- explain -------------------------------------------------------------- */

static void rail_text(slc_buf *b, const slc_guardrail *r, const char *via)
{
    slc_buf_printf(b, "  %s (via %s): request %s, response %s%s\n    detectors:", r->name.s, via,
                   action_names[r->request], action_names[r->response], r->restore ? ", restore" : "");
    int any = 0;
    for (int k = 0; k < SL_GDET_COUNT; k++)
        if (r->detectors & (1u << k))
            slc_buf_printf(b, "%s %s", any++ ? "," : "", det_names[k]);
    if (!any)
        slc_buf_puts(b, " none");
    slc_buf_printf(b, "; deny patterns: %zu\n", r->ndeny);
}

static void rail_json(slc_buf *b, const slc_guardrail *r, const char *via)
{
    slc_buf_puts(b, "{\"name\":");
    slc_buf_json_string(b, r->name.s, r->name.len);
    slc_buf_printf(b, ",\"via\":\"%s\",\"request\":\"%s\",\"response\":\"%s\",\"restore\":%s,\"detectors\":[", via,
                   action_names[r->request], action_names[r->response], r->restore ? "true" : "false");
    int any = 0;
    for (int k = 0; k < SL_GDET_COUNT; k++)
        if (r->detectors & (1u << k))
            slc_buf_printf(b, "%s\"%s\"", any++ ? "," : "", det_names[k]);
    slc_buf_printf(b, "],\"deny_patterns\":%zu}", r->ndeny);
}

void slc_guard_explain(const slc_spec *s, int entry, int key, bool json, slc_buf *out)
{
    const slc_guard_set *g = s->guard;
    uint32_t mm = g && entry >= 0 ? g->models[entry].mask : 0;
    uint32_t km = g && key >= 0 ? g->keys[key].mask : 0;
    int team = key >= 0 ? s->keys[key].team_idx : -1;
    uint32_t tm = g && team >= 0 ? g->teams[team].mask : 0;
    uint32_t all = mm | km | tm;
    if (json) {
        slc_buf_puts(out, ",\"guardrails\":[");
    } else {
        slc_buf_puts(out, all ? "\nguardrails (each scans the text; block wins, then redact, then log):\n" : "");
        if (!all && g && key < 0)
            slc_buf_puts(out, "\nguardrails: none on this entry (keys and teams may add some; see --key)\n");
        else if (!all && g)
            slc_buf_puts(out, "\nguardrails: none for this entry and key\n");
    }
    int n = 0;
    for (size_t i = 0; g && i < g->nrails && i < SLC_GUARD_MAX_RAILS; i++) {
        if (!(all & (1u << i)))
            continue;
        const char *via = mm & (1u << i) ? "model entry" : km & (1u << i) ? "key" : "team";
        if (json) {
            if (n)
                slc_buf_putc(out, ',');
            rail_json(out, &g->rails[i], via);
        } else {
            rail_text(out, &g->rails[i], via);
        }
        n++;
    }
    if (json)
        slc_buf_puts(out, "]");
}
