/*
 * `cache:` on model entries and keys, through every compiler stage in one
 * place: reading (called by spec.c for both owners), checking, lowering
 * into the table's cache rules, emitting them, and the lines `explain`
 * prints. The defaults live here and nowhere else.
 */
#ifndef SLC_CACHE_H
#define SLC_CACHE_H

#include "diag.h"
#include "mem.h"
#include "spec.h"
#include "table.h"
#include "yaml_load.h"

#define SLC_CACHE_TTL_MS 600000u                   /* 10m */
#define SLC_CACHE_MAX_BYTES (64ull * 1024 * 1024)  /* 64MiB */
#define SLC_CACHE_THRESHOLD 0.92

/* Reads `cache:` of `owner` (a model entry's or key's mapping) into out;
 * `where` names the owner ("model 'smart'"). */
void slc_cache_read(slc_diags *d, slc_arena *a, const slc_node *owner, const char *where, slc_cache *out);
/* Cross-references: the semantic provider exists and serves embeddings. */
void slc_cache_check(slc_spec *s, slc_diags *d);
/* Rules in spec order (entries, then keys); *n their count. malloc'd or NULL. */
sl_cache_rule *slc_cache_lower(const slc_spec *s, uint32_t *n);
/* The rule array and nothing else; the table's fields come from emit. */
void slc_cache_emit(const sl_table *t, slc_buf *out);
/* One line for diff: "none", "off", or the rule's settings. */
void slc_cache_describe(slc_buf *b, const slc_cache *c);
/* explain: "cache: ..." lines, or the JSON member value. */
void slc_cache_explain(const sl_table *t, int entry, int key, int json, slc_buf *out);

#endif
