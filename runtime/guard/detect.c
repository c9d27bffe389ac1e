/*
 * What the DFA cannot decide (see guard.h): the character before a match
 * (a DFA anchored at each position cannot look behind), checksums, and
 * shapes that are cheaper to check in C than to encode in the automaton.
 * Everything here reads a bounded neighbourhood of the match, so the scan
 * stays linear.
 */
#define _GNU_SOURCE /* memmem */
#include <arpa/inet.h>
#include <string.h>

#include "guard/guard.h"

static int is_alnum(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int token_char(int c)
{
    return is_alnum(c) || c == '_' || c == '-';
}

int sl_guard_luhn(const unsigned char *s, size_t n)
{
    int sum = 0, dbl = 0, digits = 0;
    for (size_t i = n; i-- > 0;) {
        if (!is_digit(s[i]))
            continue;
        int d = s[i] - '0';
        if (dbl && (d *= 2) > 9)
            d -= 9;
        sum += d;
        dbl = !dbl;
        digits++;
    }
    return digits > 0 && sum % 10 == 0;
}

/* ISO 13616: move the first four characters to the end, letters become
 * 10..35, and the number mod 97 is 1. Computed piecewise. */
int sl_guard_iban_ok(const unsigned char *s, size_t n)
{
    unsigned char c[40];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ' ')
            continue;
        if (k == sizeof c)
            return 0;
        c[k++] = s[i];
    }
    if (k < 15 || k > 34)
        return 0;
    unsigned rem = 0;
    for (size_t i = 0; i < k; i++) {
        unsigned char ch = c[(i + 4) % k];
        if (is_digit(ch))
            rem = (rem * 10 + (unsigned)(ch - '0')) % 97;
        else if (ch >= 'A' && ch <= 'Z')
            rem = (rem * 100 + (unsigned)(ch - 'A' + 10)) % 97;
        else
            return 0;
    }
    return rem == 1;
}

static int ssn_ok(const unsigned char *s)
{
    int area = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
    int group = (s[4] - '0') * 10 + (s[5] - '0');
    int serial = (s[7] - '0') * 1000 + (s[8] - '0') * 100 + (s[9] - '0') * 10 + (s[10] - '0');
    return area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
}

static size_t count_digits(const unsigned char *s, size_t n)
{
    size_t d = 0;
    for (size_t i = 0; i < n; i++)
        d += is_digit(s[i]);
    return d;
}

/* Written with separators, a card number is grouped the way cards print
 * it (4-4-4-4, 4-4-4-4-3, Amex 4-6-5, Diners 4-6-4, 4-4-5); other runs of
 * digit groups (account numbers, the tail of an IBAN) are not cards even
 * when the Luhn check passes by chance, as it does one time in ten. */
static int card_groups(const unsigned char *s, size_t n)
{
    static const char *const ok[] = {"4444", "44443", "465", "464", "445"};
    char g[20];
    size_t k = 0, run = 0;
    if (count_digits(s, n) == n)
        return 1; /* no separators */
    for (size_t i = 0; i <= n; i++) {
        if (i < n && is_digit(s[i])) {
            run++;
            continue;
        }
        if (k + 1 >= sizeof g || run > 9)
            return 0;
        g[k++] = (char)('0' + run);
        run = 0;
    }
    g[k] = '\0';
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(g, ok[i]) == 0)
            return 1;
    return 0;
}

static int ipv6_ok(const unsigned char *s, size_t *len)
{
    size_t n = *len;
    while (n > 2 && s[n - 1] == ':' && s[n - 2] != ':')
        n--; /* a colon that ends a sentence */
    if (n > 39)
        return 0;
    char buf[48];
    memcpy(buf, s, n);
    buf[n] = '\0';
    unsigned char addr[16];
    size_t hex = 0;
    for (size_t i = 0; i < n; i++)
        hex += s[i] != ':';
    /* "::1", "a::b" and "std::" are too short to be an address anyone
     * needs hidden, and too common in code to flag. */
    if (hex < 3 || inet_pton(AF_INET6, buf, addr) != 1)
        return 0;
    *len = n;
    return 1;
}

static int has_digit(const unsigned char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_digit(s[i]))
            return 1;
    return 0;
}

/* Each key shape's length after the token is extended (guard.c's DFA only
 * checks the prefix and a few characters). */
static int secret_ok(const unsigned char *s, size_t n)
{
#define PFX(p) (n >= sizeof(p) - 1 && memcmp(s, p, sizeof(p) - 1) == 0)
    if (PFX("eyJ"))
        return 1; /* JWT: the DFA checked all three parts */
    if (PFX("AKIA") || PFX("ASIA"))
        return n == 20;
    if (PFX("sk_live_") || PFX("rk_live_"))
        return n >= 24;
    if (PFX("sk-"))
        return n >= 23 && has_digit(s + 3, n - 3);
    if (PFX("github_pat_"))
        return n >= 33;
    if (PFX("gh"))
        return n == 40;
    if (PFX("AIza"))
        return n == 39;
    if (PFX("xox"))
        return n >= 15;
    return 0;
#undef PFX
}

/* A private key block: the DFA matched the BEGIN line; the block runs to
 * the matching END line, looked for within 64 KiB (a 16 kbit RSA key is
 * about 12 KiB). Without one, the BEGIN line alone is the match. */
static size_t pem_extent(const unsigned char *t, size_t n, size_t at, size_t len)
{
    size_t lim = n - at < 65536 ? n - at : 65536;
    const unsigned char *p = t + at;
    const unsigned char *e = memmem(p + len, lim - len, "-----END ", 9);
    if (!e)
        return len;
    const unsigned char *tail = memmem(e + 9, (size_t)(p + lim - (e + 9)), "PRIVATE KEY-----", 16);
    if (!tail)
        return len;
    return (size_t)(tail + 16 - p);
}

int sl_guard_validate(int rule, const unsigned char *t, size_t n, size_t at, size_t *len)
{
    const unsigned char *s = t + at;
    size_t l = *len;
    int before = at ? t[at - 1] : -1;
    int after = at + l < n ? t[at + l] : -1;
    if (rule >= SL_GDET_DENY)
        return rule;
    switch (rule) {
    case SL_GDET_EMAIL:
        if (before >= 0 && (token_char(before) || strchr("._%+", before)))
            return -1;
        return after >= 0 && (is_alnum(after) || after == '-' || after == '_') ? -1 : rule;
    case SL_GDET_PHONE: {
        if (before >= 0 && (is_alnum(before) || before == '+' || before == '-' || before == '.'))
            return -1;
        if (after >= 0 && (is_alnum(after) || (after == '-' && at + l + 1 < n && is_digit(t[at + l + 1]))))
            return -1;
        size_t d = count_digits(s, l);
        return d >= 7 && d <= 15 ? rule : -1;
    }
    case SL_GDET_CARD: {
        if ((before >= 0 && (is_alnum(before) || before == '-' || before == '.')) || (after >= 0 && is_alnum(after)))
            return -1;
        size_t d = count_digits(s, l);
        return d >= 13 && d <= 19 && card_groups(s, l) && sl_guard_luhn(s, l) ? rule : -1;
    }
    case SL_GDET_IBAN: {
        if (before >= 0 && is_alnum(before))
            return -1;
        /* The DFA's optional groups may have taken a following word:
         * try each end at a group boundary, longest first. */
        for (size_t e = l; e >= 15; e--) {
            int next = at + e < n ? t[at + e] : -1;
            if (next >= 0 && is_alnum(next))
                continue;
            if (s[e - 1] == ' ')
                continue;
            if (sl_guard_iban_ok(s, e)) {
                *len = e;
                return rule;
            }
        }
        return -1;
    }
    case SL_GDET_SSN:
        if ((before >= 0 && (is_alnum(before) || before == '-')) ||
            (after >= 0 && (is_alnum(after) || (after == '-' && at + l + 1 < n && is_digit(t[at + l + 1])))))
            return -1;
        return ssn_ok(s) ? rule : -1;
    case SL_GDET_IPV4:
        if ((before >= 0 && (is_alnum(before) || before == '.')) || (after >= 0 && is_alnum(after)) ||
            (after == '.' && at + l + 1 < n && is_digit(t[at + l + 1])))
            return -1;
        return rule;
    case SL_GDET_IPV6:
        if (before >= 0 && (is_alnum(before) || before == ':'))
            return -1;
        if (!ipv6_ok(s, len))
            return -1;
        after = at + *len < n ? t[at + *len] : -1;
        return after >= 0 && (is_alnum(after) || after == ':') ? -1 : rule;
    case SL_GDET_SECRETS: {
        if (before >= 0 && token_char(before))
            return -1;
        while (at + l < n && token_char(t[at + l]))
            l++;
        if (!secret_ok(s, l))
            return -1;
        *len = l;
        return rule;
    }
    case SL_GDET_PEM:
        *len = pem_extent(t, n, at, l);
        return SL_GDET_SECRETS;
    default:
        return -1;
    }
}
