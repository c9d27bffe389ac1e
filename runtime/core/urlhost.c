/*
 * The loopback rule for URL hosts (see urlhost.h): an IPv4 literal in
 * 127/8, the IPv6 literal ::1, or the names localhost and *.localhost,
 * which resolvers must answer with loopback (RFC 6761).
 */
#include "core/urlhost.h"

#include <arpa/inet.h>
#include <string.h>

bool sl_url_host_is_loopback(const char *rest)
{
    const char *at = rest + strcspn(rest, "/?#");
    const char *user = memchr(rest, '@', (size_t)(at - rest));
    if (user)
        rest = user + 1;
    char host[256];
    size_t n;
    if (rest[0] == '[') {
        n = strcspn(rest + 1, "]");
        rest++;
    } else {
        n = strcspn(rest, ":/?#");
    }
    if (n == 0 || n >= sizeof host)
        return false;
    memcpy(host, rest, n);
    host[n] = '\0';
    for (char *h = host; *h; h++)
        if (*h >= 'A' && *h <= 'Z')
            *h = (char)(*h - 'A' + 'a');
    unsigned char addr[16];
    if (inet_pton(AF_INET, host, addr) == 1)
        return addr[0] == 127;
    if (inet_pton(AF_INET6, host, addr) == 1) {
        static const unsigned char one[16] = {[15] = 1};
        return memcmp(addr, one, 16) == 0;
    }
    size_t hl = strlen(host);
    return strcmp(host, "localhost") == 0 ||
           (hl > 10 && strcmp(host + hl - 10, ".localhost") == 0);
}
