/*
 * Listening sockets: parsing the listen address, binding, recognising the
 * sockets systemd passes, and checking that a socket someone else opened
 * (systemd or the instance handing over) is bound where this binary is
 * meant to listen. systemd's protocol is four environment variables and a
 * fixed first descriptor, so it is implemented here in a few lines instead
 * of linking libsystemd into every gateway (air-gapped builds carry no
 * library they do not need).
 */
#define _GNU_SOURCE
#include "server/listen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* First descriptor systemd passes (SD_LISTEN_FDS_START). */
#define SL_SYSTEMD_FIRST_FD 3

int sl_listen_is_loopback(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)ss)->sin_addr.s_addr) >> 24) == 127;
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

int sl_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon;
    memset(ss, 0, sizeof *ss);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    char *endp;
    long port = strtol(colon + 1, &endp, 10);
    if (*endp || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

int sl_listen_open(const struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (const struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "bind/listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void sl_listen_format(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        snprintf(out, n, "%s:%d", host, ntohs(a->sin_port));
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        snprintf(out, n, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        snprintf(out, n, "unix");
    }
}

static int same_addr(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    if (a->ss_family == AF_INET6) {
        const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof x->sin6_addr) == 0;
    }
    return 0;
}

int sl_listen_matches(int fd, const struct sockaddr_storage *want, char *why, size_t whylen)
{
    int type = 0, listening = 0;
    socklen_t l = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l) != 0 || type != SOCK_STREAM) {
        snprintf(why, whylen, "descriptor %d is not a stream socket", fd);
        return 0;
    }
    l = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &l) != 0 || !listening) {
        snprintf(why, whylen, "descriptor %d is not listening", fd);
        return 0;
    }
    struct sockaddr_storage got;
    socklen_t gl = sizeof got;
    memset(&got, 0, sizeof got);
    if (getsockname(fd, (struct sockaddr *)&got, &gl) != 0) {
        snprintf(why, whylen, "getsockname: %s", strerror(errno));
        return 0;
    }
    if (!same_addr(&got, want)) {
        char g[80], w[80];
        sl_listen_format(&got, g, sizeof g);
        sl_listen_format(want, w, sizeof w);
        snprintf(why, whylen, "socket listens on %s, this gateway on %s", g, w);
        return 0;
    }
    return 1;
}

static int parse_count(const char *s, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 0)
        return -1;
    *out = v;
    return 0;
}

int sl_listen_systemd(int *fds, int max, char *err, size_t errlen)
{
    const char *pid_s = getenv("LISTEN_PID"), *n_s = getenv("LISTEN_FDS");
    if (!pid_s || !n_s)
        return 0;
    long pid, n;
    if (parse_count(pid_s, &pid) != 0 || parse_count(n_s, &n) != 0) {
        snprintf(err, errlen, "LISTEN_PID/LISTEN_FDS are not numbers");
        return -1;
    }
    if (pid != (long)getpid())
        return 0; /* meant for another process (a parent that exec'd us) */
    /* Descriptors are for this process only: children must not see them. */
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    if (n > max) {
        snprintf(err, errlen, "systemd passed %ld sockets, at most %d are served", n, max);
        return -1;
    }
    for (int i = 0; i < (int)n; i++) {
        int fd = SL_SYSTEMD_FIRST_FD + i;
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
            fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            snprintf(err, errlen, "systemd socket %d: %s", fd, strerror(errno));
            return -1;
        }
        fds[i] = fd;
    }
    return (int)n;
}
