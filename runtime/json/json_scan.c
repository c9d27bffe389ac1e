/*
 * A skip-only JSON walker over validated input: it never builds values,
 * only steps over strings, numbers, literals and nested containers to find
 * where a top-level member's value starts and ends.
 */
#include "json/json_scan.h"

#include <string.h>

static size_t skip_ws(const char *p, size_t n, size_t i)
{
    while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r'))
        i++;
    return i;
}

/* Where the next '"' at or after i is, or n. */
static size_t next_quote(const char *p, size_t n, size_t i)
{
    const char *q = i < n ? memchr(p + i, '"', n - i) : NULL;
    return q ? (size_t)(q - p) : n;
}

/* i at an opening quote; returns the index after the closing quote. The
 * bytes between are found with memchr, not one at a time: string values
 * (message contents, completions) are most of a body, and this runs over
 * every request and response. A backslash escapes the byte after it; a
 * quote it escapes is skipped and the next one looked for. */
static size_t skip_string(const char *p, size_t n, size_t i, int *has_escape)
{
    i++;
    size_t q = next_quote(p, n, i);
    while (i < n) {
        const char *bs = i < q ? memchr(p + i, '\\', q - i) : NULL;
        if (!bs)
            return q < n ? q + 1 : n;
        if (has_escape)
            *has_escape = 1;
        i = (size_t)(bs - p) + 2;
        if (i > q) /* the escaped byte was the quote */
            q = next_quote(p, n, i);
    }
    return n;
}

static size_t skip_value(const char *p, size_t n, size_t i)
{
    if (i >= n)
        return n;
    if (p[i] == '"')
        return skip_string(p, n, i, NULL);
    if (p[i] == '{' || p[i] == '[') {
        int depth = 0;
        while (i < n) {
            char ch = p[i];
            if (ch == '"') {
                i = skip_string(p, n, i, NULL);
                continue;
            }
            if (ch == '{' || ch == '[')
                depth++;
            else if (ch == '}' || ch == ']') {
                depth--;
                if (depth == 0)
                    return i + 1;
            }
            i++;
        }
        return n;
    }
    /* number, true, false, null */
    while (i < n && p[i] != ',' && p[i] != '}' && p[i] != ']' && p[i] != ' ' && p[i] != '\t' &&
           p[i] != '\n' && p[i] != '\r')
        i++;
    return i;
}

int sl_json_find_member(const char *p, size_t n, const char *key, size_t *start, size_t *end)
{
    size_t klen = strlen(key);
    size_t i = skip_ws(p, n, 0);
    if (i >= n || p[i] != '{')
        return -1;
    i++;
    for (;;) {
        i = skip_ws(p, n, i);
        if (i >= n || p[i] == '}')
            return -1;
        if (p[i] != '"')
            return -1;
        int esc = 0;
        size_t ks = i + 1;
        size_t ke = skip_string(p, n, i, &esc);
        if (ke > n || ke < ks + 1)
            return -1;
        size_t kn = ke - 1 - ks;
        int match = !esc && kn == klen && memcmp(p + ks, key, klen) == 0;
        i = skip_ws(p, n, ke);
        if (i >= n || p[i] != ':')
            return -1;
        i = skip_ws(p, n, i + 1);
        size_t vs = i;
        size_t ve = skip_value(p, n, i);
        if (match) {
            *start = vs;
            *end = ve;
            return 0;
        }
        if (esc) {
            /* An escaped key might decode to `key`: let the caller use the
             * slow, exact path instead of guessing. */
            return -1;
        }
        i = skip_ws(p, n, ve);
        if (i < n && p[i] == ',') {
            i++;
            continue;
        }
        return -1;
    }
}

char *sl_json_quote(sl_arena *a, const char *s, size_t n)
{
    /* Worst case every byte becomes \u00XX. */
    char *out = sl_arena_alloc(a, n * 6 + 3);
    if (!out)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    out[o++] = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        switch (ch) {
        case '"': out[o++] = '\\'; out[o++] = '"'; break;
        case '\\': out[o++] = '\\'; out[o++] = '\\'; break;
        case '\n': out[o++] = '\\'; out[o++] = 'n'; break;
        case '\r': out[o++] = '\\'; out[o++] = 'r'; break;
        case '\t': out[o++] = '\\'; out[o++] = 't'; break;
        default:
            if (ch < 0x20) {
                out[o++] = '\\'; out[o++] = 'u'; out[o++] = '0'; out[o++] = '0';
                out[o++] = hex[ch >> 4]; out[o++] = hex[ch & 15];
            } else {
                out[o++] = (char)ch;
            }
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

char *sl_json_splice(sl_arena *a, const char *p, size_t n, size_t start, size_t end,
                     const char *repl, size_t rn, size_t *out_len)
{
    size_t len = n - (end - start) + rn;
    char *out = sl_arena_alloc(a, len + 1);
    if (!out)
        return NULL;
    memcpy(out, p, start);
    memcpy(out + start, repl, rn);
    memcpy(out + start + rn, p + end, n - end);
    out[len] = '\0';
    *out_len = len;
    return out;
}
