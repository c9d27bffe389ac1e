/*
 * Event-stream decoding (see eventstream.h). The decoder keeps one growing
 * buffer and compacts it when a message is consumed, so a stream costs the
 * size of its largest message, not of the whole answer.
 */
#include "aws/eventstream.h"

#include <stdio.h>
#include <string.h>

uint32_t sl_es_crc32(uint32_t crc, const void *p, size_t n)
{
    const unsigned char *b = p;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= b[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void sl_es_init(sl_es_decoder *d) { memset(d, 0, sizeof *d); }

void sl_es_free(sl_es_decoder *d)
{
    sl_buf_free(&d->buf);
    memset(d, 0, sizeof *d);
}

int sl_es_feed(sl_es_decoder *d, const char *p, size_t n)
{
    if (d->off && d->off == d->buf.len) {
        sl_buf_clear(&d->buf);
        d->off = 0;
    } else if (d->off > 65536 && d->off * 2 > d->buf.len) {
        memmove(d->buf.data, d->buf.data + d->off, d->buf.len - d->off);
        d->buf.len -= d->off;
        d->off = 0;
    }
    return n ? sl_buf_append(&d->buf, p, n) : 0;
}

size_t sl_es_pending(const sl_es_decoder *d) { return d->buf.len - d->off; }

static int fail(sl_es_decoder *d, const char *why)
{
    d->failed = 1;
    snprintf(d->err, sizeof d->err, "%s", why);
    return -1;
}

/* Header value sizes by type (AWS event-stream encoding); -1: variable
 * (u16 length prefix), -2: unknown type. */
static int value_size(unsigned t)
{
    static const int sz[] = {0, 0, 1, 2, 4, 8, -1, -1, 8, 16};
    return t < sizeof sz / sizeof sz[0] ? sz[t] : -2;
}

static int parse_headers(sl_es_decoder *d, const unsigned char *h, size_t n, sl_es_msg *m)
{
    size_t i = 0;
    m->nheaders = 0;
    while (i < n) {
        size_t nl = h[i++];
        if (nl == 0 || i + nl + 1 > n)
            return fail(d, "event-stream header name runs past the headers");
        const char *name = (const char *)h + i;
        i += nl;
        unsigned type = h[i++];
        int vs = value_size(type);
        size_t vl;
        if (vs == -2)
            return fail(d, "event-stream header has an unknown value type");
        if (vs == -1) {
            if (i + 2 > n)
                return fail(d, "event-stream header value runs past the headers");
            vl = (size_t)h[i] << 8 | h[i + 1];
            i += 2;
        } else {
            vl = (size_t)vs;
        }
        if (i + vl > n)
            return fail(d, "event-stream header value runs past the headers");
        if (type == 7 && m->nheaders < SL_ES_MAX_HEADERS) {
            m->names[m->nheaders] = (sl_es_str){name, nl};
            m->values[m->nheaders++] = (sl_es_str){(const char *)h + i, vl};
        }
        i += vl;
    }
    return 0;
}

int sl_es_next(sl_es_decoder *d, sl_es_msg *m)
{
    if (d->failed)
        return -1;
    size_t avail = d->buf.len - d->off;
    if (avail < 12)
        return 0;
    const unsigned char *p = (const unsigned char *)d->buf.data + d->off;
    uint32_t total = be32(p), hlen = be32(p + 4);
    if (sl_es_crc32(0, p, 8) != be32(p + 8))
        return fail(d, "event-stream prelude CRC mismatch");
    if (total < 16 || total > SL_ES_MAX_MESSAGE || hlen > total - 16)
        return fail(d, "event-stream message length out of range");
    if (avail < total)
        return 0;
    if (sl_es_crc32(0, p, total - 4) != be32(p + total - 4))
        return fail(d, "event-stream message CRC mismatch");
    if (parse_headers(d, p + 12, hlen, m) != 0)
        return -1;
    m->payload = (const char *)p + 12 + hlen;
    m->payload_len = total - 16 - hlen;
    d->off += total;
    return 1;
}

sl_es_str sl_es_header(const sl_es_msg *m, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < m->nheaders; i++)
        if (m->names[i].n == n && memcmp(m->names[i].p, name, n) == 0)
            return m->values[i];
    return (sl_es_str){NULL, 0};
}

static int b64v(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

long sl_es_base64_decode(const char *s, size_t n, unsigned char *out)
{
    if (n % 4)
        return -1;
    long o = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int k = 0; k < 4; k++) {
            unsigned char c = (unsigned char)s[i + k];
            if (c == '=' && i + 4 == n && k >= 2) {
                v[k] = 0;
                pad++;
            } else if (pad || (v[k] = b64v(c)) < 0) {
                return -1;
            }
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return o;
}
