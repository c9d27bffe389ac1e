/*
 * Glob matching, covering and overlap (see glob.h). Patterns are short, so
 * the quadratic dynamic programmes below are cheap and exact.
 */
#include "glob.h"

#include "route/glob.h"

#include <stdlib.h>
#include <string.h>

/* Matching itself is the runtime's (route/glob.c, linked through
 * sl_route_lib), so a name the compiler says a glob produces is a name the
 * gateway routes and prices by that glob. */
bool slc_is_glob(const char *s)
{
    return sl_glob_is_glob(s) != 0;
}

size_t slc_glob_prefix_len(const char *glob)
{
    return sl_glob_prefix_len(glob);
}

bool slc_glob_match(const char *g, const char *s)
{
    return sl_glob_match(g, s) != 0;
}

/* covers[i][j]: a[i..] covers b[j..]. A `*` in a absorbs any run of b's
 * tokens; `?` in a takes one b token that stands for one character (a
 * literal or `?`); a literal needs the same literal; b's `*` can only be
 * absorbed by a's `*`. */
bool slc_glob_covers(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), w = m + 1;
    unsigned char *t = calloc((n + 1) * w, 1);
    if (!t)
        abort();
    t[n * w + m] = 1;
    for (size_t i = n + 1; i-- > 0;) {
        for (size_t j = m + 1; j-- > 0;) {
            if (i == n && j == m)
                continue;
            unsigned char r = 0;
            if (i < n && a[i] == '*') {
                r = t[(i + 1) * w + j] || (j < m && t[i * w + j + 1]);
            } else if (i < n && j < m) {
                if (a[i] == '?')
                    r = b[j] != '*' && t[(i + 1) * w + j + 1];
                else
                    r = a[i] == b[j] && b[j] != '*' && b[j] != '?' && t[(i + 1) * w + j + 1];
            }
            t[i * w + j] = r;
        }
    }
    bool r = t[0];
    free(t);
    return r;
}

/* Reachability over (i, j) positions of both patterns while generating one
 * shared name character by character. */
bool slc_glob_overlap(const char *a, const char *b)
{
    size_t n = strlen(a), m = strlen(b), w = m + 1;
    unsigned char *t = calloc((n + 1) * w, 1);
    if (!t)
        abort();
    for (size_t i = n + 1; i-- > 0;) {
        for (size_t j = m + 1; j-- > 0;) {
            unsigned char r = 0;
            if (i == n && j == m) {
                r = 1;
            } else {
                if (i < n && a[i] == '*' && t[(i + 1) * w + j])
                    r = 1;
                if (j < m && b[j] == '*' && t[i * w + j + 1])
                    r = 1;
                if (!r && i < n && j < m) {
                    char ca = a[i], cb = b[j];
                    bool wa = ca == '*' || ca == '?', wb = cb == '*' || cb == '?';
                    if (wa || wb || ca == cb) {
                        size_t ni = ca == '*' ? i : i + 1;
                        size_t nj = cb == '*' ? j : j + 1;
                        /* Both staying put on stars is a no-op step. */
                        if ((ni != i || nj != j) && t[ni * w + nj])
                            r = 1;
                        else if (ni == i && nj == j)
                            r = t[(i + 1) * w + j] || t[i * w + j + 1];
                    }
                }
            }
            t[i * w + j] = r;
        }
    }
    bool r = t[0];
    free(t);
    return r;
}
