/*
 * Iterative wildcard matching. Only the most recent star matters: when a
 * later literal fails, the star before it absorbs one more byte and the
 * match resumes from there. An earlier star never needs revisiting,
 * because whatever a later star can absorb covers any alternative split,
 * so the walk is bounded by pattern length times name length.
 */
#include "route/glob.h"

#include "table.h"

#include <string.h>

int sl_glob_match(const char *pattern, const char *name)
{
    const char *p = pattern, *n = name;
    const char *star = NULL; /* pattern position just after the last star */
    const char *mark = NULL; /* name position that star absorbs up to */
    while (*n) {
        if (*p == '*') {
            while (*p == '*')
                p++;
            if (!*p)
                return 1; /* a trailing star takes the rest */
            star = p;
            mark = n;
        } else if (*p && (*p == '?' || *p == *n)) {
            p++;
            n++;
        } else if (star) {
            p = star;
            n = ++mark;
        } else {
            return 0;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

size_t sl_glob_prefix_len(const char *pattern)
{
    return strcspn(pattern, "*?");
}

int sl_glob_is_glob(const char *pattern)
{
    return pattern[strcspn(pattern, "*?")] != '\0';
}

const sl_price *sl_price_for(const sl_table *t, uint16_t provider, const char *model)
{
    if (!model)
        return NULL;
    const sl_price *best = NULL;
    size_t best_prefix = 0;
    for (uint32_t i = 0; i < t->price_count; i++) {
        const sl_price *p = &t->prices[i];
        if (p->provider != provider)
            continue;
        if (strcmp(p->model, model) == 0)
            return p;
        if (!sl_glob_is_glob(p->model) || !sl_glob_match(p->model, model))
            continue;
        /* Strictly longer only: on a tie the earlier rule stays. */
        size_t pl = sl_glob_prefix_len(p->model);
        if (!best || pl > best_prefix) {
            best = p;
            best_prefix = pl;
        }
    }
    return best;
}
