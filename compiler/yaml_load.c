/*
 * libyaml event stream -> slc_node tree (see yaml_load.h). The tree is built
 * with an explicit stack rather than recursion so a deeply nested document
 * cannot blow the C stack. Aliases share the anchored node instead of
 * copying it; the expanded size is still counted, because every later pass
 * walks the expanded tree.
 */
#include "yaml_load.h"

#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct frame {
    slc_node *node;
    slc_node **items;    /* keys and values interleaved for mappings */
    size_t n, cap;
    char *anchor;
} frame;

typedef struct anchor {
    char *name;
    slc_node *node;
} anchor;

typedef struct loader {
    slc_arena *a;
    slc_diags *d;
    frame *stack;
    size_t depth, cap;
    anchor *anchors;
    size_t nanchors, anchors_cap;
    size_t total;        /* expanded nodes so far */
    size_t aliased;      /* of which added by aliases */
    bool failed;
    slc_node *root;
} loader;

static slc_pos mark_pos(yaml_mark_t m)
{
    return (slc_pos){(uint32_t)m.line + 1, (uint32_t)m.column + 1};
}

static void push_item(frame *f, slc_node *n)
{
    if (f->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 8;
        f->items = realloc(f->items, f->cap * sizeof *f->items);
        if (!f->items)
            abort();
    }
    f->items[f->n++] = n;
}

static void add_anchor(loader *l, const char *name, slc_node *n)
{
    if (l->nanchors == l->anchors_cap) {
        l->anchors_cap = l->anchors_cap ? l->anchors_cap * 2 : 8;
        l->anchors = realloc(l->anchors, l->anchors_cap * sizeof *l->anchors);
        if (!l->anchors)
            abort();
    }
    l->anchors[l->nanchors].name = slc_strdup(l->a, name);
    l->anchors[l->nanchors].node = n;
    l->nanchors++;
}

static slc_node *find_anchor(loader *l, const char *name)
{
    /* Latest definition wins, as YAML allows re-anchoring a name. */
    for (size_t i = l->nanchors; i-- > 0;)
        if (strcmp(l->anchors[i].name, name) == 0)
            return l->anchors[i].node;
    return NULL;
}

static size_t sat_add(size_t a, size_t b)
{
    return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

/* Attach a finished node to its parent (or make it the root). */
static void attach(loader *l, slc_node *n)
{
    if (l->depth == 0) {
        l->root = n;
        return;
    }
    push_item(&l->stack[l->depth - 1], n);
}

/* Nodes written in the file cost bytes and are bounded by its size; what
 * aliases add costs nothing to write, so that is what the guard limits. */
static bool count(loader *l, size_t weight, slc_pos pos, bool alias)
{
    l->total = sat_add(l->total, weight);
    if (alias)
        l->aliased = sat_add(l->aliased, weight);
    if (l->aliased > SLC_YAML_MAX_ALIASED) {
        slc_error(l->d, pos, "aliases expand to more than %d nodes (alias bomb?)",
                  SLC_YAML_MAX_ALIASED);
        l->failed = true;
        return false;
    }
    return true;
}

static bool is_merge_key(const slc_node *k)
{
    return k->kind == SLC_NODE_SCALAR && k->plain && k->len == 2 && memcmp(k->str, "<<", 2) == 0;
}

/* Builds the mapping from interleaved key/value items: checks keys, reports
 * duplicates, applies merge keys in place of the `<<` entry. */
static void finish_map(loader *l, frame *f)
{
    slc_node *m = f->node;
    size_t pairs = f->n / 2;
    size_t cap = pairs;
    /* Merged sources can add keys; size for the worst case. */
    for (size_t i = 0; i < pairs; i++) {
        slc_node *k = f->items[2 * i], *v = f->items[2 * i + 1];
        if (is_merge_key(k)) {
            if (v->kind == SLC_NODE_MAP)
                cap += v->n;
            else if (v->kind == SLC_NODE_SEQ)
                for (size_t j = 0; j < v->n; j++)
                    if (v->vals[j]->kind == SLC_NODE_MAP)
                        cap += v->vals[j]->n;
        }
    }
    m->keys = slc_alloc(l->a, (cap ? cap : 1) * sizeof *m->keys);
    m->vals = slc_alloc(l->a, (cap ? cap : 1) * sizeof *m->vals);
    m->n = 0;
    m->weight = 1;
    slc_strmap seen;
    slc_strmap_init(&seen, cap);
    for (size_t i = 0; i < pairs; i++) {
        slc_node *k = f->items[2 * i], *v = f->items[2 * i + 1];
        if (k->kind != SLC_NODE_SCALAR) {
            slc_error(l->d, k->pos, "mapping keys must be scalars, got %s", slc_node_describe(k));
            continue;
        }
        if (is_merge_key(k))
            continue;
        /* A hash of the keys so far: mappings with thousands of entries
         * (models, keys, prices) stay linear. */
        size_t first = slc_strmap_put(&seen, k->str, k->len, 2 * i);
        if (first != SIZE_MAX) {
            slc_node *prev = f->items[first];
            slc_error(l->d, k->pos, "duplicate key '%s' (first defined at %u:%u)", k->str,
                      prev->pos.line, prev->pos.col);
            continue;
        }
        m->keys[m->n] = k;
        m->vals[m->n] = v;
        m->weight = sat_add(m->weight, sat_add(k->weight, v->weight));
        m->n++;
    }
    /* Merged keys never override explicit ones nor earlier merges. */
    for (size_t i = 0; i < pairs; i++) {
        slc_node *k = f->items[2 * i], *v = f->items[2 * i + 1];
        if (!is_merge_key(k))
            continue;
        slc_node **srcs = &v;
        size_t nsrc = 1;
        if (v->kind == SLC_NODE_SEQ) {
            srcs = v->vals;
            nsrc = v->n;
        }
        for (size_t s = 0; s < nsrc; s++) {
            slc_node *src = srcs[s];
            if (src->kind != SLC_NODE_MAP) {
                slc_error(l->d, src->pos, "'<<' merges mappings only, got %s",
                          slc_node_describe(src));
                continue;
            }
            for (size_t j = 0; j < src->n; j++) {
                if (slc_strmap_put(&seen, src->keys[j]->str, src->keys[j]->len, 0) != SIZE_MAX)
                    continue;
                m->keys[m->n] = src->keys[j];
                m->vals[m->n] = src->vals[j];
                m->weight = sat_add(m->weight, sat_add(src->keys[j]->weight, src->vals[j]->weight));
                m->n++;
            }
        }
    }
    slc_strmap_free(&seen);
}

static void finish_seq(loader *l, frame *f)
{
    slc_node *s = f->node;
    s->n = f->n;
    s->vals = slc_alloc(l->a, (f->n ? f->n : 1) * sizeof *s->vals);
    s->weight = 1;
    for (size_t i = 0; i < f->n; i++) {
        s->vals[i] = f->items[i];
        s->weight = sat_add(s->weight, f->items[i]->weight);
    }
}

/* Line/column of a byte offset, for reader errors that carry no mark. */
static slc_pos offset_pos(const char *src, size_t len, size_t off)
{
    slc_pos p = {1, 1};
    for (size_t i = 0; i < off && i < len; i++) {
        if (src[i] == '\n') {
            p.line++;
            p.col = 1;
        } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

static void syntax_error(loader *l, yaml_parser_t *p, const char *src, size_t len)
{
    slc_pos pos;
    if (p->error == YAML_READER_ERROR)
        pos = offset_pos(src, len, p->problem_offset);
    else
        pos = mark_pos(p->problem_mark);
    const char *problem = p->problem ? p->problem : "invalid YAML";
    bool tab = p->error != YAML_READER_ERROR && p->problem_mark.index < len &&
               src[p->problem_mark.index] == '\t';
    slc_pos ctx = mark_pos(p->context_mark);
    if (tab)
        slc_error(l->d, pos, "found a tab character where YAML expects spaces; indent with spaces");
    else if (p->context && ctx.line != pos.line)
        slc_error(l->d, pos, "%s (%s at %u:%u)", problem, p->context, ctx.line, ctx.col);
    else if (p->context)
        slc_error(l->d, pos, "%s (%s)", problem, p->context);
    else
        slc_error(l->d, pos, "%s", problem);
    l->failed = true;
}

static void free_loader(loader *l)
{
    for (size_t i = 0; i < l->depth; i++)
        free(l->stack[i].items);
    free(l->stack);
    free(l->anchors);
}

slc_node *slc_yaml_load(const char *src, size_t len, slc_arena *a, slc_diags *d)
{
    loader l = {.a = a, .d = d};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p))
        abort();
    yaml_parser_set_input_string(&p, (const unsigned char *)src, len);
    int docs = 0;
    bool done = false;
    while (!done && !l.failed) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            syntax_error(&l, &p, src, len);
            break;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++docs > 1) {
                slc_error(d, mark_pos(ev.start_mark), "a spec is one YAML document; found a second one");
                l.failed = true;
            }
            break;
        case YAML_SCALAR_EVENT:
        case YAML_ALIAS_EVENT:
        case YAML_MAPPING_START_EVENT:
        case YAML_SEQUENCE_START_EVENT: {
            slc_pos pos = mark_pos(ev.start_mark);
            if (ev.type == YAML_ALIAS_EVENT) {
                slc_node *target = find_anchor(&l, (const char *)ev.data.alias.anchor);
                if (!target) {
                    slc_error(d, pos, "unknown anchor '%s'", ev.data.alias.anchor);
                    l.failed = true;
                    break;
                }
                if (!count(&l, target->weight, pos, true))
                    break;
                attach(&l, target);
                break;
            }
            if (!count(&l, 1, pos, false))
                break;
            slc_node *n = slc_alloc(a, sizeof *n);
            n->pos = pos;
            n->end = mark_pos(ev.end_mark);
            n->weight = 1;
            const unsigned char *anchor_name = NULL;
            if (ev.type == YAML_SCALAR_EVENT) {
                n->kind = SLC_NODE_SCALAR;
                n->str = slc_strndup(a, (const char *)ev.data.scalar.value, ev.data.scalar.length);
                n->len = ev.data.scalar.length;
                n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                anchor_name = ev.data.scalar.anchor;
                if (anchor_name)
                    add_anchor(&l, (const char *)anchor_name, n);
                attach(&l, n);
                break;
            }
            n->kind = ev.type == YAML_MAPPING_START_EVENT ? SLC_NODE_MAP : SLC_NODE_SEQ;
            anchor_name = ev.type == YAML_MAPPING_START_EVENT ? ev.data.mapping_start.anchor
                                                              : ev.data.sequence_start.anchor;
            if (l.depth == l.cap) {
                l.cap = l.cap ? l.cap * 2 : 16;
                l.stack = realloc(l.stack, l.cap * sizeof *l.stack);
                if (!l.stack)
                    abort();
            }
            l.stack[l.depth++] = (frame){
                .node = n,
                .anchor = anchor_name ? slc_strdup(a, (const char *)anchor_name) : NULL,
            };
            break;
        }
        case YAML_MAPPING_END_EVENT:
        case YAML_SEQUENCE_END_EVENT: {
            frame f = l.stack[--l.depth];
            f.node->end = mark_pos(ev.end_mark);
            if (f.node->kind == SLC_NODE_MAP)
                finish_map(&l, &f);
            else
                finish_seq(&l, &f);
            free(f.items);
            if (f.anchor)
                add_anchor(&l, f.anchor, f.node);
            attach(&l, f.node);
            break;
        }
        default:
            break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&p);
    free_loader(&l);
    if (l.failed)
        return NULL;
    if (!l.root) {
        slc_pos whole = {0, 0};
        slc_error(d, whole, "empty spec");
        return NULL;
    }
    if (slc_node_is_null(l.root)) {
        slc_error(d, l.root->pos, "empty spec");
        return NULL;
    }
    return slc_diags_errors(d) ? NULL : l.root;
}

slc_node *slc_map_get(const slc_node *map, const char *key)
{
    if (!map || map->kind != SLC_NODE_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (map->keys[i]->len == klen && memcmp(map->keys[i]->str, key, klen) == 0)
            return map->vals[i];
    return NULL;
}

bool slc_node_is_null(const slc_node *n)
{
    if (!n || n->kind != SLC_NODE_SCALAR || !n->plain)
        return false;
    return n->len == 0 || strcmp(n->str, "~") == 0 || strcmp(n->str, "null") == 0 ||
           strcmp(n->str, "Null") == 0 || strcmp(n->str, "NULL") == 0;
}

const char *slc_node_describe(const slc_node *n)
{
    switch (n->kind) {
    case SLC_NODE_MAP:
        return "a mapping";
    case SLC_NODE_SEQ:
        return "a sequence";
    case SLC_NODE_SCALAR:
        break;
    }
    if (slc_node_is_null(n))
        return "null";
    return "a scalar";
}
