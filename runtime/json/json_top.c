/*
 * The validating top-level scan (json_top.h): a recursive descent over the
 * RFC 8259 grammar with jansson's extra rules (strict UTF-8, no \u0000, no
 * duplicate member names, integers that fit in 64 bits, finite reals),
 * building no values. Where checking one of those rules exactly would cost
 * code (escaped names, surrogate pairs, long numbers, deep or very wide
 * objects) it answers "unsure" and the caller parses with jansson.
 */
#include "json/json_top.h"

#include <stdint.h>
#include <string.h>

#include "core/str.h"
#include "core/utf8.h"

#define MAX_DEPTH 64
#define MAX_MEMBERS 64 /* per object, for the duplicate check */

typedef struct scan {
    const char *p;
    size_t n;
    const char *const *names;
    size_t nnames;
    sl_json_span *out;
} scan;

/* Bytes a string run stops at: controls, the quote, the backslash, and
 * the start of any multi-byte sequence. */
static const unsigned char stop[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    ['"'] = 1, ['\\'] = 1,
    [0x80] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static size_t ws(const scan *s, size_t i)
{
    while (i < s->n && (s->p[i] == ' ' || s->p[i] == '\t' || s->p[i] == '\n' || s->p[i] == '\r'))
        i++;
    return i;
}

/* i at the opening quote. Returns the index after the closing quote, or 0
 * (never a valid end) when unsure; *escaped says whether it had escapes. */
static size_t string(const scan *s, size_t i, int *escaped)
{
    const unsigned char *p = (const unsigned char *)s->p;
    size_t n = s->n;
    *escaped = 0;
    i++;
    for (;;) {
        while (i < n && !stop[p[i]])
            i++;
        if (i >= n)
            return 0;
        unsigned char c = p[i];
        if (c == '"')
            return i + 1;
        if (c < 0x20)
            return 0;
        if (c >= 0x80) {
            size_t l = sl_utf8_seq_len(s->p + i, n - i);
            if (l < 2)
                return 0;
            i += l;
            continue;
        }
        /* a backslash */
        *escaped = 1;
        if (i + 1 >= n)
            return 0;
        c = p[i + 1];
        if (c == 'u') {
            if (i + 6 > n)
                return 0;
            unsigned v = 0;
            for (int k = 2; k < 6; k++) {
                int h = sl_hex_digit((unsigned char)s->p[i + k]);
                if (h < 0)
                    return 0;
                v = v * 16 + (unsigned)h;
            }
            /* jansson refuses \u0000 (no JSON_ALLOW_NUL) and checks
             * surrogate pairs: both left to it */
            if (v == 0 || (v >= 0xD800 && v <= 0xDFFF))
                return 0;
            i += 6;
        } else if (c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' || c == 'r' ||
                   c == 't') {
            i += 2;
        } else {
            return 0;
        }
    }
}

static size_t digits(const scan *s, size_t i)
{
    while (i < s->n && s->p[i] >= '0' && s->p[i] <= '9')
        i++;
    return i;
}

/* A number jansson stores without overflow: integers of up to 18 digits,
 * reals of up to 24 characters with an exponent of at most two digits
 * (below 1e130, far from a double's limit). 0 when unsure. */
static size_t number(const scan *s, size_t i)
{
    size_t start = i, d;
    int real = 0;
    if (i < s->n && s->p[i] == '-')
        i++;
    if (i < s->n && s->p[i] == '0') {
        i++;
    } else {
        d = digits(s, i);
        if (d == i)
            return 0;
        i = d;
    }
    size_t int_digits = i - start - (s->p[start] == '-');
    if (i < s->n && s->p[i] == '.') {
        d = digits(s, i + 1);
        if (d == i + 1)
            return 0;
        i = d;
        real = 1;
    }
    if (i < s->n && (s->p[i] == 'e' || s->p[i] == 'E')) {
        i++;
        if (i < s->n && (s->p[i] == '+' || s->p[i] == '-'))
            i++;
        d = digits(s, i);
        if (d == i || d - i > 2)
            return 0;
        i = d;
        real = 1;
    }
    if (real ? i - start > 24 : int_digits > 18)
        return 0;
    return i;
}

static size_t value(const scan *s, size_t i, int depth);

static size_t object(const scan *s, size_t i, int depth)
{
    sl_json_span keys[MAX_MEMBERS];
    size_t nkeys = 0;
    if (depth > MAX_DEPTH)
        return 0;
    i = ws(s, i + 1);
    if (i < s->n && s->p[i] == '}')
        return i + 1;
    for (;;) {
        if (i >= s->n || s->p[i] != '"' || nkeys == MAX_MEMBERS)
            return 0;
        int esc;
        size_t ke = string(s, i, &esc);
        if (!ke || esc) /* an escaped name may spell another: jansson decides */
            return 0;
        const char *k = s->p + i + 1;
        size_t kl = ke - i - 2;
        for (size_t j = 0; j < nkeys; j++)
            if (keys[j].end - keys[j].start == kl && memcmp(s->p + keys[j].start, k, kl) == 0)
                return 0; /* a duplicate: jansson refuses it, with its message */
        keys[nkeys++] = (sl_json_span){(size_t)(k - s->p), (size_t)(k - s->p) + kl};
        i = ws(s, ke);
        if (i >= s->n || s->p[i] != ':')
            return 0;
        i = ws(s, i + 1);
        size_t ve = value(s, i, depth);
        if (!ve)
            return 0;
        if (depth == 1)
            for (size_t j = 0; j < s->nnames; j++)
                if (strlen(s->names[j]) == kl && memcmp(s->names[j], k, kl) == 0)
                    s->out[j] = (sl_json_span){i, ve};
        i = ws(s, ve);
        if (i < s->n && s->p[i] == ',') {
            i = ws(s, i + 1);
            continue;
        }
        if (i < s->n && s->p[i] == '}')
            return i + 1;
        return 0;
    }
}

static size_t array(const scan *s, size_t i, int depth)
{
    if (depth > MAX_DEPTH)
        return 0;
    i = ws(s, i + 1);
    if (i < s->n && s->p[i] == ']')
        return i + 1;
    for (;;) {
        size_t ve = value(s, i, depth);
        if (!ve)
            return 0;
        i = ws(s, ve);
        if (i < s->n && s->p[i] == ',') {
            i = ws(s, i + 1);
            continue;
        }
        if (i < s->n && s->p[i] == ']')
            return i + 1;
        return 0;
    }
}

static size_t literal(const scan *s, size_t i, const char *word, size_t len)
{
    return s->n - i >= len && memcmp(s->p + i, word, len) == 0 ? i + len : 0;
}

/* i at the first byte of a value; the index after it, or 0 when unsure. */
static size_t value(const scan *s, size_t i, int depth)
{
    if (i >= s->n)
        return 0;
    int esc;
    switch (s->p[i]) {
    case '{': return object(s, i, depth + 1);
    case '[': return array(s, i, depth + 1);
    case '"': return string(s, i, &esc);
    case 't': return literal(s, i, "true", 4);
    case 'f': return literal(s, i, "false", 5);
    case 'n': return literal(s, i, "null", 4);
    default: return number(s, i);
    }
}

sl_json_top_result sl_json_top_scan(const char *p, size_t n, const char *const *names, size_t nnames,
                                    sl_json_span *out)
{
    scan s = {p, n, names, nnames, out};
    for (size_t j = 0; j < nnames; j++)
        out[j] = (sl_json_span){0, 0};
    size_t i = ws(&s, 0);
    if (i >= n || p[i] != '{')
        return SL_JSON_TOP_UNSURE;
    size_t e = object(&s, i, 1);
    if (!e || ws(&s, e) != n)
        return SL_JSON_TOP_UNSURE;
    return SL_JSON_TOP_OK;
}

int sl_json_span_plain_string(const char *p, sl_json_span s, const char **str, size_t *len)
{
    if (s.end < s.start + 2 || p[s.start] != '"' || memchr(p + s.start, '\\', s.end - s.start))
        return -1;
    *str = p + s.start + 1;
    *len = s.end - s.start - 2;
    return 0;
}

int sl_json_span_is_true(const char *p, sl_json_span s)
{
    return s.end == s.start + 4 && memcmp(p + s.start, "true", 4) == 0;
}
