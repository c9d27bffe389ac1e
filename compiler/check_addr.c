/*
 * Addresses in the spec (see check.c): the listen address and the rule
 * that a gateway without keys stays on loopback, allow_ips CIDRs, and
 * whether a provider's plain-HTTP base URL leaves the machine.
 */
#include <arpa/inet.h>
#include <string.h>

#include "check_internal.h"
#include "core/urlhost.h"

bool slc_chk_url_host_is_loopback(const char *rest)
{
    return sl_url_host_is_loopback(rest);
}

int slc_parse_listen(const char *s, slc_listen *out)
{
    memset(out, 0, sizeof *out);
    const char *colon = strrchr(s, ':');
    if (!colon || colon == s)
        return -1;
    size_t hlen = (size_t)(colon - s);
    const char *host = s;
    if (s[0] == '[') {
        if (hlen < 3 || s[hlen - 1] != ']')
            return -1;
        host = s + 1;
        hlen -= 2;
    } else if (memchr(s, ':', hlen)) {
        return -1; /* a bare v6 address is ambiguous with the port */
    }
    if (hlen >= sizeof out->host)
        return -1;
    memcpy(out->host, host, hlen);
    out->host[hlen] = '\0';
    const char *p = colon + 1;
    unsigned port = 0;
    if (!*p)
        return -1;
    for (; *p; p++) {
        if (*p < '0' || *p > '9' || port > 65535)
            return -1;
        port = port * 10 + (unsigned)(*p - '0');
    }
    if (port == 0 || port > 65535)
        return -1;
    out->port = port;
    unsigned char addr[16];
    if (s[0] == '[') {
        if (inet_pton(AF_INET6, out->host, addr) != 1)
            return -1;
        static const unsigned char one[16] = {[15] = 1};
        out->loopback = memcmp(addr, one, 16) == 0;
    } else if (inet_pton(AF_INET, out->host, addr) == 1) {
        out->loopback = addr[0] == 127;
    } else {
        for (const char *h = out->host; *h; h++)
            if (!((*h >= 'a' && *h <= 'z') || (*h >= 'A' && *h <= 'Z') || (*h >= '0' && *h <= '9') ||
                  *h == '-' || *h == '.'))
                return -1;
        out->loopback = strcmp(out->host, "localhost") == 0;
    }
    return 0;
}

int slc_parse_cidr(const char *s, uint8_t *family, uint8_t *prefix, uint8_t addr[16])
{
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof buf)
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = '\0';
    memset(addr, 0, 16);
    unsigned max;
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *family = 4;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, addr) == 1) {
        *family = 6;
        max = 128;
    } else {
        return -1;
    }
    unsigned bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (!*p || strlen(p) > 3)
            return -1;
        bits = 0;
        for (; *p; p++) {
            if (*p < '0' || *p > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*p - '0');
        }
        if (bits > max)
            return -1;
    }
    *prefix = (uint8_t)bits;
    int masked = 0;
    for (unsigned i = 0; i < max / 8; i++) {
        unsigned keep = bits >= (i + 1) * 8 ? 8 : bits > i * 8 ? bits - i * 8 : 0;
        uint8_t mask = (uint8_t)(keep ? 0xFFu << (8 - keep) : 0);
        if (addr[i] & ~mask)
            masked = 1;
        addr[i] &= mask;
    }
    return masked;
}

/* One listen address; false (reported) when malformed. */
static bool listen_addr(slc_checker *c, const char *field, const slc_str *v, slc_listen *l)
{
    if (slc_parse_listen(v->s, l) == 0)
        return true;
    const char *colon = strchr(v->s, ':');
    bool bare_v6 = v->s[0] != '[' && colon && strchr(colon + 1, ':');
    slc_error(c->d, v->pos, "%s '%s' must be HOST:PORT or [IPV6]:PORT%s", field, v->s,
              bare_v6 ? " (put IPv6 addresses in brackets, like [::1]:4000)" : "");
    return false;
}

/* Keys travel in request headers: on plain HTTP off loopback anyone on the
 * path can read and replay them. */
static void check_plaintext(slc_checker *c, const char *field, const slc_str *v, const slc_listen *l,
                            const char *remedy)
{
    slc_spec *s = c->s;
    if (l->loopback || !s->has_keys_section || s->allow_plaintext)
        return;
    slc_error(c->d, v->pos,
              "%s '%s' serves plain HTTP on an address that is not loopback, and clients send "
              "their keys in request headers: anyone on the network path can read and reuse "
              "them; %s",
              field, v->s, remedy);
}

void slc_chk_listen(slc_checker *c)
{
    slc_spec *s = c->s;
    slc_listen l, p;
    bool ok = listen_addr(c, "listen", &s->listen, &l);
    if (ok && !s->has_keys_section && !l.loopback)
        slc_error(c->d, s->listen.pos,
                  "listen '%s' is not a loopback address, but the spec has no 'keys': anyone who "
                  "can reach the port could spend your provider credit",
                  s->listen.s);
    if (ok && !s->tls.present)
        check_plaintext(c, "listen", &s->listen, &l,
                        "add 'tls:' (or, when a TLS proxy in front terminates HTTPS, write "
                        "'allow_plaintext: true')");
    if (!s->listen_plain.s)
        return;
    if (!s->tls.present) {
        if (s->tls.pos.line != 0)
            return; /* a broken `tls:` block, already reported */
        slc_error(c->d, s->listen_plain.pos,
                  "'listen_plain' adds a plain HTTP listener next to an HTTPS one, but the spec "
                  "has no 'tls:' ('listen' is already plain HTTP)");
        return;
    }
    if (!listen_addr(c, "listen_plain", &s->listen_plain, &p))
        return;
    if (ok && p.port == l.port && strcmp(p.host, l.host) == 0)
        slc_error(c->d, s->listen_plain.pos, "listen_plain '%s' is the same address as 'listen'",
                  s->listen_plain.s);
    if (!s->has_keys_section && !p.loopback)
        slc_error(c->d, s->listen_plain.pos,
                  "listen_plain '%s' is not a loopback address, but the spec has no 'keys': "
                  "anyone who can reach the port could spend your provider credit",
                  s->listen_plain.s);
    check_plaintext(c, "listen_plain", &s->listen_plain, &p,
                    "keep it on loopback (it is meant for local health checks), or write "
                    "'allow_plaintext: true'");
}
