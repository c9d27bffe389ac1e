/*
 * Loads one YAML document into a small node tree (scalars, mappings,
 * sequences) where every node remembers its line and column, so later
 * passes can point at the exact spot a problem comes from. Syntax errors,
 * duplicate mapping keys, anchors that expand into huge trees and empty
 * files are reported here; nothing about sluice's spec is known yet.
 */
#ifndef SLC_YAML_LOAD_H
#define SLC_YAML_LOAD_H

#include <stdbool.h>
#include <stddef.h>

#include "diag.h"
#include "mem.h"

typedef enum slc_node_kind {
    SLC_NODE_SCALAR,
    SLC_NODE_MAP,
    SLC_NODE_SEQ,
} slc_node_kind;

typedef struct slc_node slc_node;
struct slc_node {
    slc_node_kind kind;
    slc_pos pos;        /* first character of the node */
    slc_pos end;        /* just after its last character */
    /* Scalars: value bytes (NUL-terminated, may contain NUL from escapes). */
    const char *str;
    size_t len;
    bool plain;         /* unquoted: may be null, a number, ... */
    /* Mappings: keys[i] -> vals[i]; keys are scalars. Sequences: vals. */
    size_t n;
    slc_node **keys;
    slc_node **vals;
    size_t weight;      /* nodes in the fully expanded subtree */
};

/* The alias-expansion guard: aliases may not add more nodes than this to
 * the expanded tree (nodes written out in the file are not limited: a
 * spec with ten thousand entries and keys is a few hundred thousand). */
#define SLC_YAML_MAX_ALIASED 100000

/* Returns the document root, or NULL when errors were reported. Merge keys
 * (`<<: *defaults`) are applied; explicit keys win over merged ones. */
slc_node *slc_yaml_load(const char *src, size_t len, slc_arena *a, slc_diags *d);

/* Helpers for the passes that read the tree. */
slc_node *slc_map_get(const slc_node *map, const char *key);
bool slc_node_is_null(const slc_node *n);
/* "a mapping", "a sequence", "a string", "null", ... for messages. */
const char *slc_node_describe(const slc_node *n);

#endif
