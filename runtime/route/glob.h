/*
 * Model-name globs at run time: `*` matches any run of bytes (including
 * none), `?` exactly one byte, everything else itself. The generated DFA
 * matches model entries; this serves the tables that are searched by
 * scanning instead, such as prices keyed by provider/model pattern, with
 * the same precedence the DFA uses: an exact name wins, then the glob with
 * the longest literal prefix, then spec order.
 */
#ifndef SLUICE_GLOB_H
#define SLUICE_GLOB_H

#include <stddef.h>
#include <stdint.h>

/* 1 when `name` matches `pattern`, else 0. Linear in memory, at most
 * O(len(pattern) * len(name)) steps: no exponential backtracking however
 * many stars the pattern has. */
int sl_glob_match(const char *pattern, const char *name);
/* Bytes before the first wildcard (strlen when there is none). */
size_t sl_glob_prefix_len(const char *pattern);
/* 1 when the pattern has a wildcard. */
int sl_glob_is_glob(const char *pattern);

/* The price row of provider/model by the precedence above, or NULL. Here,
 * in the route library sluicec links too, so `sluicec explain` shows the
 * price the gateway charges by the gateway's own rule. */
struct sl_table;
struct sl_price;
const struct sl_price *sl_price_for(const struct sl_table *t, uint16_t provider, const char *model);

#endif
