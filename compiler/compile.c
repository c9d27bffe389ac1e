/*
 * Front-end driver (see compile.h): runs load, spec and check in order and
 * stops early only when a stage has nothing usable to hand on.
 */
#include "compile.h"

#include <bearssl.h>

#include <stdbool.h>
#include <string.h>

#include "check.h"
#include "secret.h"
#include "yaml_load.h"

/* Line and 1-based character column of byte `off`, counted the way the
 * diagnostics printer counts (UTF-8 continuation bytes add nothing). */
static slc_pos pos_at(const char *src, size_t off)
{
    slc_pos p = {1, 1};
    for (size_t i = 0; i < off; i++) {
        if (src[i] == '\n') {
            p.line++;
            p.col = 1;
        } else if (((unsigned char)src[i] & 0xC0) != 0x80) {
            p.col++;
        }
    }
    return p;
}

/* Length of the valid UTF-8 sequence at s[0..len), or 0. Rejects
 * overlongs, surrogates and code points past U+10FFFF, as libyaml would
 * only later and with less precise positions. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return 1;
    size_t n;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (len < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t k = 2; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* The spec is UTF-8 text: other encodings and stray bytes are reported
 * where they are, before the YAML parser gives a vaguer account. */
static bool check_encoding(const char *src, size_t len, slc_diags *d)
{
    const unsigned char *u = (const unsigned char *)src;
    slc_pos first = {1, 1}, whole = {0, 0};
    if ((len >= 2 && ((u[0] == 0xFE && u[1] == 0xFF) || (u[0] == 0xFF && u[1] == 0xFE))) ||
        (len >= 4 && u[0] == 0 && u[1] == 0 && u[2] == 0xFE && u[3] == 0xFF)) {
        slc_error(d, whole,
                  "the spec starts with a UTF-16 or UTF-32 byte-order mark; save it as UTF-8");
        return false;
    }
    size_t i = 0;
    if (len >= 3 && u[0] == 0xEF && u[1] == 0xBB && u[2] == 0xBF) {
        slc_warning(d, first,
                    "the spec starts with a UTF-8 byte-order mark; save it without one so its "
                    "bytes, hash and diffs match what reviewers see");
        i = 3;
    }
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (!n) {
            slc_error(d, pos_at(src, i),
                      "invalid UTF-8 (byte 0x%02X); the spec must be UTF-8 text", u[i]);
            return false;
        }
        i += n;
    }
    return true;
}

static bool within(slc_pos p, slc_pos from, slc_pos to)
{
    bool after = p.line > from.line || (p.line == from.line && p.col >= from.col);
    bool before = p.line < to.line || (p.line == to.line && p.col < to.col);
    return after && before;
}

/* Every credential-shaped token in the file, comments included: a key in
 * a comment is as leaked as one in a value. A provider's api_key has its
 * own, more specific error, so tokens inside one are left to it. */
static void check_secrets(const char *src, size_t len, const slc_spec *s, slc_diags *d)
{
    size_t pos = 0, off, tlen;
    const char *what;
    slc_pos at = {1, 1};
    size_t at_off = 0;
    while (pos < len && (what = slc_find_secret(src + pos, len - pos, &off, &tlen))) {
        size_t start = pos + off;
        /* Positions advance incrementally: one pass over the file. */
        slc_pos rel = pos_at(src + at_off, start - at_off);
        if (rel.line == 1) {
            at.col += rel.col - 1;
        } else {
            at.line += rel.line - 1;
            at.col = rel.col;
        }
        at_off = start;
        slc_pos end = {at.line, at.col + (uint32_t)tlen};
        pos = start + tlen;
        bool in_api_key = false;
        for (size_t i = 0; s && i < s->nproviders && !in_api_key; i++)
            in_api_key = s->providers[i].api_key.s &&
                         within(at, s->providers[i].api_key.pos, s->providers[i].api_key.end);
        if (in_api_key)
            continue;
        slc_error_redacted(d, at, end,
                           "this looks like %s; secrets do not belong in the spec (providers "
                           "read theirs with api_key: env:NAME), and a key that was committed "
                           "should be revoked",
                           what);
    }
}

slc_spec *slc_compile(const char *src, size_t len, slc_arena *a, slc_diags *d)
{
    if (!check_encoding(src, len, d))
        return NULL;
    slc_node *root = slc_yaml_load(src, len, a, d);
    if (!root) {
        check_secrets(src, len, NULL, d);
        return NULL;
    }
    slc_spec *s = slc_spec_build(root, a, d);
    if (s)
        slc_check(s, a, d);
    check_secrets(src, len, s, d);
    return s;
}

void slc_sha256_hex(const void *data, size_t len, char out[65])
{
    br_sha256_context ctx;
    unsigned char sum[32];
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, data, len);
    br_sha256_out(&ctx, sum);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
}
