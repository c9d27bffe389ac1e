/*
 * Bounded string copy: what snprintf(dst, cap, "%s", src) does (at most
 * cap - 1 bytes, always terminated), without printf's format parsing, for
 * the fixed-size fields filled on every request.
 */
#ifndef SLUICE_STR_H
#define SLUICE_STR_H

#include <stddef.h>
#include <string.h>

/* Copies src (NULL: "") into dst of cap > 0 bytes, cut to fit. */
static inline void sl_str_copy(char *dst, size_t cap, const char *src)
{
    size_t n = src ? strnlen(src, cap - 1) : 0;
    if (n)
        memcpy(dst, src, n);
    dst[n] = '\0';
}

#endif
