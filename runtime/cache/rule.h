/*
 * Which cache rule applies to a request: the key's `cache:` when it has
 * one (including `cache: false`, which opts the key out), else the model
 * entry's. Header-only so that sluicec's explain answers with the very
 * code the gateway runs, without linking the cache module.
 */
#ifndef SLUICE_CACHE_RULE_H
#define SLUICE_CACHE_RULE_H

#include "table.h"

/* The rule index, or -1 when nothing is cached for entry and key (-1: an
 * open gateway). An OFF rule yields -1. */
static inline int sl_cache_rule_for(const sl_table *t, int entry, int key)
{
    int by_entry = -1, by_key = -1;
    for (uint32_t i = 0; i < t->cache_rule_count; i++) {
        const sl_cache_rule *r = &t->cache_rules[i];
        if (r->of_key && key >= 0 && r->owner == (uint32_t)key)
            by_key = (int)i;
        else if (!r->of_key && entry >= 0 && r->owner == (uint32_t)entry)
            by_entry = (int)i;
    }
    int i = by_key >= 0 ? by_key : by_entry;
    return i >= 0 && t->cache_rules[i].mode != SL_CACHE_OFF ? i : -1;
}

#endif
