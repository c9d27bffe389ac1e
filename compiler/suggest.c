/*
 * Edit distance and suggestion picking for "did you mean" hints (see
 * suggest.h).
 */
#include "suggest.h"

#include <stdlib.h>
#include <string.h>

/* Optimal string alignment distance: Levenshtein plus adjacent swaps. */
size_t slc_edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t w = blen + 1;
    size_t *d = malloc((alen + 1) * w * sizeof *d);
    if (!d)
        abort();
    for (size_t i = 0; i <= alen; i++)
        d[i * w] = i;
    for (size_t j = 0; j <= blen; j++)
        d[j] = j;
    for (size_t i = 1; i <= alen; i++) {
        for (size_t j = 1; j <= blen; j++) {
            size_t cost = a[i - 1] != b[j - 1];
            size_t best = d[(i - 1) * w + j] + 1;
            if (d[i * w + j - 1] + 1 < best)
                best = d[i * w + j - 1] + 1;
            if (d[(i - 1) * w + j - 1] + cost < best)
                best = d[(i - 1) * w + j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                d[(i - 2) * w + j - 2] + 1 < best)
                best = d[(i - 2) * w + j - 2] + 1;
            d[i * w + j] = best;
        }
    }
    size_t r = d[alen * w + blen];
    free(d);
    return r;
}

const char *slc_suggest_fn(const char *word, slc_name_at at, const void *ctx, size_t n)
{
    size_t wlen = strlen(word);
    const char *best = NULL;
    size_t best_d = (size_t)-1;
    for (size_t i = 0; i < n; i++) {
        const char *c = at(ctx, i);
        if (!c)
            continue;
        size_t clen = strlen(c);
        size_t longest = wlen > clen ? wlen : clen;
        /* About one edit per three letters: beyond that the "suggestion"
         * is usually an unrelated name. */
        size_t limit = longest / 3 ? longest / 3 : 1;
        size_t dist = slc_edit_distance(word, wlen, c, clen);
        if (dist == 0 || dist > limit || dist >= longest)
            continue;
        if (dist < best_d) {
            best_d = dist;
            best = c;
        }
    }
    return best;
}

static const char *array_at(const void *ctx, size_t i)
{
    return ((const char *const *)ctx)[i];
}

const char *slc_suggest(const char *word, const char *const *candidates, size_t n)
{
    return slc_suggest_fn(word, array_at, candidates, n);
}
