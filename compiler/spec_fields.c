/*
 * The spec readers' field readers (spec_internal.h), shared by spec.c and
 * the readers of other sections (spec_tls.c, cache.c, guard.c): each
 * checks that a field has the shape it must, reports a problem with the
 * name of the thing the field belongs to, and returns false (or -1) when
 * the field is absent or unusable, so callers carry on and one run shows
 * every problem.
 */
#include "spec_internal.h"

#include <stdio.h>
#include <string.h>

#include "suggest.h"
#include "units.h"

static const char *kind_word(slc_node_kind k)
{
    return k == SLC_NODE_MAP ? "a mapping" : k == SLC_NODE_SEQ ? "a sequence" : "a scalar";
}

/* `what` names the value, e.g. "'targets' in model 'smart'". */
bool slc_spec_want(slc_builder *b, const slc_node *n, slc_node_kind k, const char *what)
{
    if (n->kind == k && !slc_node_is_null(n))
        return true;
    slc_error(b->d, n->pos, "expected %s for %s, got %s", kind_word(k), what,
              slc_node_describe(n));
    return false;
}

slc_str slc_spec_str_of(const slc_node *n)
{
    return (slc_str){.s = n->str, .len = n->len, .pos = n->pos, .end = n->end};
}

/* Reports keys of `map` not in `allowed`; `where` is NULL at top level. */
void slc_spec_check_keys(slc_builder *b, const slc_node *map, const char *const *allowed, size_t n,
                         const char *where)
{
    for (size_t i = 0; i < map->n; i++) {
        const slc_node *k = map->keys[i];
        bool ok = false;
        for (size_t j = 0; j < n && !ok; j++)
            ok = k->len == strlen(allowed[j]) && memcmp(k->str, allowed[j], k->len) == 0;
        /* Top-level `x-...` keys are the user's own (anchors for reuse), as
         * in other YAML-configured tools. */
        if (!where && k->len > 2 && memcmp(k->str, "x-", 2) == 0)
            ok = true;
        if (ok)
            continue;
        const char *hint = slc_suggest(k->str, allowed, n);
        char tail[128] = "";
        if (hint)
            snprintf(tail, sizeof tail, " (did you mean '%s'?)", hint);
        if (where)
            slc_error(b->d, k->pos, "unknown key '%s' in %s%s", k->str, where, tail);
        else
            slc_error(b->d, k->pos, "unknown top-level key '%s'%s", k->str, tail);
    }
}

const char *slc_spec_field_desc(slc_builder *b, const char *key, const char *where)
{
    return where ? slc_aprintf(b->a, "'%s' in %s", key, where) : slc_aprintf(b->a, "'%s'", key);
}

/* A non-empty scalar string field; false when absent or unusable. */
bool slc_spec_str_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        slc_str *out)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n)
        return false;
    if (!slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return false;
    if (n->len == 0) {
        slc_error(b->d, n->pos, "%s must not be empty", slc_spec_field_desc(b, key, where));
        return false;
    }
    if (memchr(n->str, '\0', n->len)) {
        slc_error(b->d, n->pos, "%s must not contain NUL characters", slc_spec_field_desc(b, key, where));
        return false;
    }
    *out = slc_spec_str_of(n);
    return true;
}

/* A scalar that must be one of `names`; its index, or -1 when absent or
 * not one of them (diagnosed, with a suggestion when one is close). */
int slc_spec_enum_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        const char *const *names, size_t n)
{
    slc_str s = {0};
    if (!slc_spec_str_field(b, map, key, where, &s))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], s.s) == 0)
            return (int)i;
    const char *list = names[0];
    for (size_t i = 1; i < n; i++)
        list = slc_aprintf(b->a, "%s%s%s", list, i + 1 == n ? " or " : ", ", names[i]);
    const char *hint = slc_suggest(s.s, names, n);
    slc_error(b->d, s.pos, "%s is '%s'; expected %s%s%s%s", slc_spec_field_desc(b, key, where), s.s, list,
              hint ? " (did you mean '" : "", hint ? hint : "", hint ? "'?)" : "");
    return -1;
}

void slc_spec_missing(slc_builder *b, const slc_node *map, const char *where, const char *key)
{
    slc_error(b->d, map->pos, "%s is missing '%s'", where, key);
}

void slc_spec_duration_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                             uint32_t *out, bool positive)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return;
    char err[128];
    uint32_t v;
    if (slc_parse_duration_ms(n->str, n->len, &v, err, sizeof err) != 0) {
        slc_error(b->d, n->pos, "invalid duration '%s' for %s: %s", n->str,
                  slc_spec_field_desc(b, key, where), err);
        return;
    }
    if (positive && v == 0) {
        slc_error(b->d, n->pos, "%s must be longer than 0ms", slc_spec_field_desc(b, key, where));
        return;
    }
    *out = v;
}

bool slc_spec_money_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                          int64_t *out)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return false;
    char err[128];
    if (slc_parse_money_micros(n->str, n->len, out, err, sizeof err) != 0) {
        slc_error(b->d, n->pos, "invalid amount '%s' for %s: %s", n->str,
                  slc_spec_field_desc(b, key, where), err);
        return false;
    }
    return true;
}

void slc_spec_size_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                         uint64_t *out, uint64_t max)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return;
    char err[128];
    uint64_t v;
    if (slc_parse_size(n->str, n->len, &v, err, sizeof err) != 0) {
        slc_error(b->d, n->pos, "invalid size '%s' for %s: %s", n->str, slc_spec_field_desc(b, key, where),
                  err);
        return;
    }
    if (v == 0 || v > max) {
        slc_error(b->d, n->pos, "%s must be between 1 and %llu bytes", slc_spec_field_desc(b, key, where),
                  (unsigned long long)max);
        return;
    }
    *out = v;
}

/* An integer field. Returns false when absent or invalid. */
bool slc_spec_int_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        int64_t *out, slc_pos *pos)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return false;
    if (slc_parse_int(n->str, n->len, out) != 0) {
        slc_error(b->d, n->pos, "expected an integer for %s, got '%s'", slc_spec_field_desc(b, key, where),
                  n->str);
        return false;
    }
    if (pos)
        *pos = n->pos;
    return true;
}

/* true or false, as YAML 1.2's core schema spells them. */
bool slc_spec_bool_field(slc_builder *b, const slc_node *map, const char *key, const char *where, bool *out,
                         slc_pos *pos)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_SCALAR, slc_spec_field_desc(b, key, where)))
        return false;
    if (strcmp(n->str, "true") != 0 && strcmp(n->str, "false") != 0) {
        slc_error(b->d, n->pos, "expected true or false for %s, got '%s'", slc_spec_field_desc(b, key, where), n->str);
        return false;
    }
    *out = n->str[0] == 't';
    *pos = n->pos;
    return true;
}

void slc_spec_count_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                          uint32_t *out)
{
    int64_t v;
    slc_pos pos;
    if (!slc_spec_int_field(b, map, key, where, &v, &pos))
        return;
    if (v < 1 || v > UINT32_MAX) {
        slc_error(b->d, pos, "%s must be between 1 and %u (omit it for no limit)",
                  slc_spec_field_desc(b, key, where), UINT32_MAX);
        return;
    }
    *out = (uint32_t)v;
}

/* A mapping-valued section: the node, or NULL (absent or reported). */
const slc_node *slc_spec_section(slc_builder *b, const slc_node *map, const char *key, const char *where)
{
    const slc_node *n = slc_map_get(map, key);
    if (!n || !slc_spec_want(b, n, SLC_NODE_MAP, slc_spec_field_desc(b, key, where)))
        return NULL;
    return n;
}

bool slc_spec_valid_name(slc_builder *b, const slc_node *k, const char *what)
{
    if (k->len == 0) {
        slc_error(b->d, k->pos, "%s name must not be empty", what);
        return false;
    }
    if (memchr(k->str, '\0', k->len)) {
        slc_error(b->d, k->pos, "%s name must not contain NUL characters", what);
        return false;
    }
    return true;
}

