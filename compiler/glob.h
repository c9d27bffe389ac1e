/*
 * Model-name globs: `*` matches any run of characters, `?` exactly one.
 * The compiler needs more than matching: whether one glob covers everything
 * another matches (shadowing, key scopes), whether two globs can match the
 * same name (ambiguity), and the literal prefix that orders globs in the
 * generated matcher.
 */
#ifndef SLC_GLOB_H
#define SLC_GLOB_H

#include <stdbool.h>
#include <stddef.h>

bool slc_is_glob(const char *s);
/* Characters before the first wildcard. */
size_t slc_glob_prefix_len(const char *glob);
bool slc_glob_match(const char *glob, const char *name);
/* True when every name `b` matches is also matched by `a` (b may itself be
 * a glob or a plain name). Sound; may miss exotic covers by luck of the
 * alphabet, which only costs a missed warning. */
bool slc_glob_covers(const char *a, const char *b);
/* True when some name matches both. */
bool slc_glob_overlap(const char *a, const char *b);

#endif
