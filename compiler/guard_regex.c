/*
 * Deny patterns -> re2c (see guard.h). The subset is what a DFA can do in
 * one left-to-right pass: literals, escapes (\d \w \s and their negations,
 * \t \n \r \f \v \xHH, escaped punctuation), classes with ranges and
 * negation, `.`, groups ( ) and (?: ), alternation, the quantifiers
 * ? * + {n} {n,} {n,m} (m at most SLC_GUARD_MAX_REPEAT), and a leading (?i)
 * for case-insensitive matching. Anchors, word boundaries, lookaround,
 * backreferences and lazy or possessive quantifiers have no DFA meaning and
 * are refused with the offset of the offending character, as is a pattern
 * that can match empty text (it would match everywhere).
 *
 * Every single character is emitted as a byte class in \xHH form: that
 * keeps the output free of re2c escaping rules, and no class ever contains
 * NUL, which the scanners use as their end sentinel.
 */
#include <stdio.h>
#include <string.h>

#include "guard.h"

typedef struct rx {
    const unsigned char *p;
    size_t len, i;
    bool icase;
    slc_buf out;
    size_t err_off;
    char *err;
    size_t errlen;
    bool failed;
} rx;

typedef struct cset {
    uint8_t bits[32];
} cset;

static void cs_add(cset *c, unsigned ch)
{
    if (ch != 0) /* NUL is the scanners' sentinel */
        c->bits[ch >> 3] |= (uint8_t)(1u << (ch & 7));
}

static bool cs_has(const cset *c, unsigned ch)
{
    return c->bits[ch >> 3] & (1u << (ch & 7));
}

static void cs_range(cset *c, unsigned lo, unsigned hi)
{
    for (unsigned ch = lo; ch <= hi; ch++)
        cs_add(c, ch);
}

static void cs_invert(cset *c)
{
    for (size_t i = 0; i < 32; i++)
        c->bits[i] = (uint8_t)~c->bits[i];
    c->bits[0] &= 0xFE; /* never NUL */
}

static void cs_fold(cset *c)
{
    for (unsigned ch = 'a'; ch <= 'z'; ch++)
        if (cs_has(c, ch) || cs_has(c, ch - 32)) {
            cs_add(c, ch);
            cs_add(c, ch - 32);
        }
}

static bool cs_empty(const cset *c)
{
    for (size_t i = 0; i < 32; i++)
        if (c->bits[i])
            return false;
    return true;
}

static void cs_emit(rx *r, cset c)
{
    if (r->icase)
        cs_fold(&c);
    slc_buf_putc(&r->out, '[');
    for (unsigned ch = 1; ch < 256; ch++) {
        if (!cs_has(&c, ch))
            continue;
        unsigned hi = ch;
        while (hi + 1 < 256 && cs_has(&c, hi + 1))
            hi++;
        if (hi == ch)
            slc_buf_printf(&r->out, "\\x%02X", ch);
        else
            slc_buf_printf(&r->out, "\\x%02X-\\x%02X", ch, hi);
        ch = hi;
    }
    slc_buf_puts(&r->out, "] ");
}

static bool fail(rx *r, size_t off, const char *msg)
{
    if (!r->failed) {
        r->failed = true;
        r->err_off = off;
        snprintf(r->err, r->errlen, "%s", msg);
    }
    return false;
}

static int peek(const rx *r)
{
    return r->i < r->len ? r->p[r->i] : -1;
}

static void shorthand(cset *c, int e)
{
    switch (e | 0x20) {
    case 'd':
        cs_range(c, '0', '9');
        break;
    case 'w':
        cs_range(c, '0', '9');
        cs_range(c, 'a', 'z');
        cs_range(c, 'A', 'Z');
        cs_add(c, '_');
        break;
    default: /* s */
        cs_add(c, ' ');
        cs_range(c, '\t', '\r');
        break;
    }
    if (e >= 'A' && e <= 'Z')
        cs_invert(c);
}

static int hexval(int ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if ((ch | 0x20) >= 'a' && (ch | 0x20) <= 'f')
        return (ch | 0x20) - 'a' + 10;
    return -1;
}

/* An escape after '\' (r->i at the escaped character): one byte into *ch,
 * or a class into *set (returns 2). 1 for a byte, 0 after an error. */
static int escape(rx *r, int *ch, cset *set, bool in_class)
{
    size_t at = r->i - 1;
    int e = peek(r);
    if (e < 0)
        return fail(r, at, "a pattern cannot end with '\\'");
    r->i++;
    switch (e) {
    case 'd': case 'D': case 'w': case 'W': case 's': case 'S':
        memset(set, 0, sizeof *set);
        shorthand(set, e);
        return 2;
    case 'n': *ch = '\n'; return 1;
    case 't': *ch = '\t'; return 1;
    case 'r': *ch = '\r'; return 1;
    case 'f': *ch = '\f'; return 1;
    case 'v': *ch = '\v'; return 1;
    case 'x': {
        int h1 = r->i < r->len ? hexval(r->p[r->i]) : -1;
        int h2 = r->i + 1 < r->len ? hexval(r->p[r->i + 1]) : -1;
        if (h1 < 0 || h2 < 0)
            return fail(r, at, "\\x needs two hex digits");
        r->i += 2;
        *ch = h1 * 16 + h2;
        if (*ch == 0)
            return fail(r, at, "NUL (\\x00) cannot be matched");
        return 1;
    }
    case 'b': case 'B':
        return fail(r, at, in_class ? "\\b in a class is not supported"
                                    : "word boundaries (\\b, \\B) are not supported by the DFA subset");
    case 'A': case 'z': case 'Z':
        return fail(r, at, "anchors are not supported: patterns match anywhere in the text");
    default:
        break;
    }
    if (e >= '0' && e <= '9')
        return fail(r, at, "backreferences and octal escapes are not supported");
    if ((e >= 'a' && e <= 'z') || (e >= 'A' && e <= 'Z') || e >= 0x80)
        return fail(r, at, "unknown escape");
    *ch = e; /* escaped punctuation stands for itself */
    return 1;
}

static bool parse_class(rx *r)
{
    size_t open = r->i - 1;
    cset c = {0};
    bool neg = false;
    if (peek(r) == '^') {
        neg = true;
        r->i++;
    }
    bool first = true;
    for (;;) {
        int ch = peek(r);
        if (ch < 0)
            return fail(r, open, "unterminated character class (missing ']')");
        if (ch == ']' && !first) {
            r->i++;
            break;
        }
        first = false;
        size_t at = r->i;
        r->i++;
        int lo;
        if (ch >= 0x80)
            return fail(r, at, "non-ASCII characters in a class are not supported (use alternation)");
        if (ch == '\\') {
            cset sh;
            int k = escape(r, &lo, &sh, true);
            if (!k)
                return false;
            if (k == 2) {
                for (size_t i = 0; i < 32; i++)
                    c.bits[i] |= sh.bits[i];
                continue;
            }
        } else if (ch == '[' && peek(r) == ':') {
            return fail(r, at, "POSIX classes ([:alpha:]) are not supported (use ranges)");
        } else {
            lo = ch;
        }
        if (peek(r) == '-' && r->i + 1 < r->len && r->p[r->i + 1] != ']') {
            size_t dash = r->i;
            r->i++;
            int hi = peek(r);
            r->i++;
            if (hi == '\\') {
                cset sh;
                int k = escape(r, &hi, &sh, true);
                if (!k)
                    return false;
                if (k == 2)
                    return fail(r, dash, "a range cannot end in a class shorthand");
            } else if (hi >= 0x80) {
                return fail(r, dash + 1, "non-ASCII characters in a class are not supported (use alternation)");
            }
            if (hi < lo)
                return fail(r, dash, "range out of order");
            cs_range(&c, (unsigned)lo, (unsigned)hi);
        } else {
            cs_add(&c, (unsigned)lo);
        }
    }
    if (neg) {
        cs_invert(&c);
        c.bits['\n' >> 3] &= (uint8_t)~(1u << ('\n' & 7));
    }
    if (cs_empty(&c))
        return fail(r, open, "the class matches no character");
    cs_emit(r, c);
    return true;
}

static bool parse_alt(rx *r, bool *nullable, int depth);

/* One atom; *nullable when it can match empty. */
static bool parse_atom(rx *r, bool *nullable)
{
    size_t at = r->i;
    int ch = peek(r);
    r->i++;
    *nullable = false;
    cset c = {0};
    switch (ch) {
    case '(': {
        if (peek(r) == '?') {
            if (r->i + 1 < r->len && r->p[r->i + 1] == ':') {
                r->i += 2;
            } else if (r->i + 1 < r->len && strchr("=!<", r->p[r->i + 1])) {
                return fail(r, at, "lookaround is not supported by the DFA subset");
            } else if (r->i + 1 < r->len && r->p[r->i + 1] == 'i') {
                return fail(r, at, "(?i) is allowed only at the start of the pattern");
            } else {
                return fail(r, at, "only (...) and (?:...) groups are supported");
            }
        }
        if (peek(r) == ')')
            return fail(r, at, "empty group");
        slc_buf_puts(&r->out, "( ");
        if (!parse_alt(r, nullable, 1))
            return false;
        if (peek(r) != ')')
            return fail(r, at, "unbalanced '(' (missing ')')");
        r->i++;
        slc_buf_puts(&r->out, ") ");
        return true;
    }
    case '[':
        return parse_class(r);
    case '.':
        cs_range(&c, 1, 255);
        c.bits['\n' >> 3] &= (uint8_t)~(1u << ('\n' & 7));
        cs_emit(r, c);
        return true;
    case '\\': {
        int b;
        int k = escape(r, &b, &c, false);
        if (!k)
            return false;
        if (k == 1)
            cs_add(&c, (unsigned)b);
        cs_emit(r, c);
        return true;
    }
    case '^':
    case '$':
        return fail(r, at, "anchors (^, $) are not supported: patterns match anywhere in the text");
    case '*':
    case '+':
    case '?':
    case '{':
        return fail(r, at, "quantifier with nothing to repeat");
    case ')':
        return fail(r, at, "unbalanced ')'");
    default:
        cs_add(&c, (unsigned)ch);
        cs_emit(r, c);
        return true;
    }
}

static bool read_count(rx *r, unsigned *v)
{
    if (peek(r) < '0' || peek(r) > '9')
        return false;
    unsigned n = 0;
    while (peek(r) >= '0' && peek(r) <= '9') {
        n = n * 10 + (unsigned)(peek(r) - '0');
        if (n > 100000)
            n = 100000;
        r->i++;
    }
    *v = n;
    return true;
}

/* A quantifier after an atom, if any. */
static bool parse_quant(rx *r, bool *nullable, bool *had)
{
    size_t at = r->i;
    int ch = peek(r);
    *had = false;
    if (ch == '*' || ch == '+' || ch == '?') {
        r->i++;
        slc_buf_printf(&r->out, "%c ", ch);
        if (ch != '+')
            *nullable = true;
    } else if (ch == '{') {
        r->i++;
        unsigned lo = 0, hi = 0;
        bool has_lo = read_count(r, &lo), unbounded = false;
        if (peek(r) == ',') {
            r->i++;
            if (!read_count(r, &hi))
                unbounded = true;
        } else {
            hi = lo;
        }
        if (!has_lo || peek(r) != '}')
            return fail(r, at, "expected {n}, {n,} or {n,m}");
        r->i++;
        if (lo > SLC_GUARD_MAX_REPEAT || (!unbounded && hi > SLC_GUARD_MAX_REPEAT)) {
            char msg[96];
            snprintf(msg, sizeof msg, "repetition counts above %d are not supported", SLC_GUARD_MAX_REPEAT);
            return fail(r, at, msg);
        }
        if (!unbounded && hi < lo)
            return fail(r, at, "repetition range out of order");
        if (!unbounded && hi == 0)
            return fail(r, at, "{0} repeats nothing");
        if (unbounded)
            slc_buf_printf(&r->out, "{%u,} ", lo);
        else if (lo == hi)
            slc_buf_printf(&r->out, "{%u} ", lo);
        else
            slc_buf_printf(&r->out, "{%u,%u} ", lo, hi);
        if (lo == 0)
            *nullable = true;
    } else {
        return true;
    }
    *had = true;
    int nx = peek(r);
    if (nx == '?')
        return fail(r, r->i, "lazy quantifiers have no meaning for a DFA (remove the '?')");
    if (nx == '+')
        return fail(r, r->i, "possessive quantifiers are not supported");
    if (nx == '*' || nx == '{')
        return fail(r, r->i, "a quantifier cannot follow a quantifier");
    return true;
}

static bool parse_concat(rx *r, bool *nullable, int depth)
{
    *nullable = true;
    size_t start = r->i;
    while (r->i < r->len && peek(r) != '|' && !(depth && peek(r) == ')')) {
        bool n, had;
        slc_buf_puts(&r->out, "( ");
        if (!parse_atom(r, &n))
            return false;
        slc_buf_puts(&r->out, ") ");
        if (!parse_quant(r, &n, &had))
            return false;
        *nullable = *nullable && n;
    }
    if (r->i == start)
        return fail(r, start, "empty alternative");
    return true;
}

static bool parse_alt(rx *r, bool *nullable, int depth)
{
    if (depth > 32)
        return fail(r, r->i, "groups nested too deeply");
    bool n;
    if (!parse_concat(r, &n, depth))
        return false;
    *nullable = n;
    while (peek(r) == '|') {
        r->i++;
        slc_buf_puts(&r->out, "| ");
        if (!parse_concat(r, &n, depth))
            return false;
        *nullable = *nullable || n;
    }
    return true;
}

const char *slc_guard_regex(slc_arena *a, const char *pat, size_t len, bool icase, size_t *err_off,
                            char *err, size_t errlen)
{
    rx r = {.p = (const unsigned char *)pat, .len = len, .icase = icase, .err = err, .errlen = errlen};
    const char *res = NULL;
    bool nullable = false;
    if (len == 0) {
        fail(&r, 0, "empty pattern");
    } else if (len > SLC_GUARD_MAX_PATTERN) {
        char msg[64];
        snprintf(msg, sizeof msg, "patterns are limited to %d characters", SLC_GUARD_MAX_PATTERN);
        fail(&r, SLC_GUARD_MAX_PATTERN, msg);
    } else if (memchr(pat, '\0', len)) {
        fail(&r, (size_t)((const char *)memchr(pat, '\0', len) - pat), "NUL cannot be matched");
    } else if (parse_alt(&r, &nullable, 0)) {
        if (r.i < len)
            fail(&r, r.i, "unbalanced ')'");
        else if (nullable)
            fail(&r, 0, "the pattern can match empty text (it would match everywhere)");
        else
            res = slc_strndup(a, r.out.p, r.out.len);
    }
    if (!res)
        *err_off = r.err_off;
    slc_buf_free(&r.out);
    return res;
}
