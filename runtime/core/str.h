/*
 * Small string helpers for the request path. A bounded string copy: what
 * snprintf(dst, cap, "%s", src) does (at most cap - 1 bytes, always
 * terminated), without printf's format parsing, for the fixed-size fields
 * filled on every request; and a hex digit's value.
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

/* The value of hex digit c (either case), or -1. */
static inline int sl_hex_digit(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
