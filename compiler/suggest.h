/*
 * "Did you mean" for misspelt names: picks the closest candidate by edit
 * distance (a swap of two neighbouring letters counts as one edit, since
 * that is the commonest typo), or none when nothing is close enough for
 * the hint to help rather than mislead.
 */
#ifndef SLC_SUGGEST_H
#define SLC_SUGGEST_H

#include <stddef.h>

size_t slc_edit_distance(const char *a, size_t alen, const char *b, size_t blen);

/* The best of `n` candidates for `word`, or NULL. Ties go to the earlier
 * candidate so suggestions are stable. */
const char *slc_suggest(const char *word, const char *const *candidates, size_t n);

/* Callback form for candidates that live inside other structs. */
typedef const char *(*slc_name_at)(const void *ctx, size_t i);
const char *slc_suggest_fn(const char *word, slc_name_at at, const void *ctx, size_t n);

#endif
