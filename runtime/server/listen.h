/*
 * Where the listening sockets come from and what they listen on. A gateway
 * gets its listeners one of three ways: it binds them itself (one
 * SO_REUSEPORT socket per worker), systemd passes them (socket activation),
 * or the running instance hands them over (server/handoff.h). Whichever
 * way, they must listen on the address this binary was built or told to
 * serve: a spec without keys compiles only for a loopback address, so a
 * socket bound elsewhere by somebody else is refused, not served.
 */
#ifndef SLUICE_LISTEN_H
#define SLUICE_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

/* Most listeners one process holds (and hands over): one per worker at
 * most, and --workers is capped at 256. */
#define SL_LISTEN_MAX 256

/* "HOST:PORT" or "[V6]:PORT" ("localhost" means 127.0.0.1). 0 or -1. */
int sl_listen_parse(const char *spec, struct sockaddr_storage *ss, socklen_t *len);
/* 1 for 127.0.0.0/8 and ::1, the addresses a spec without keys may serve. */
int sl_listen_is_loopback(const struct sockaddr_storage *ss);
/* A non-blocking, close-on-exec, SO_REUSEPORT listening socket, or -1
 * with err filled. */
int sl_listen_open(const struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen);
/* "1.2.3.4:80", "[::1]:80" or "unix". */
void sl_listen_format(const struct sockaddr_storage *ss, char *out, size_t n);
/* 1 when fd is a listening TCP socket bound to exactly `want` (family,
 * address and port); otherwise 0 with `why` saying what it is instead. */
int sl_listen_matches(int fd, const struct sockaddr_storage *want, char *why, size_t whylen);
/* systemd socket activation (sd_listen_fds semantics): when LISTEN_PID is
 * this process, the LISTEN_FDS sockets starting at fd 3 are stored in fds
 * (made non-blocking and close-on-exec) and the variables are removed from
 * the environment. Returns how many (0 when not activated), -1 with err
 * filled when the variables are malformed or there are too many. */
int sl_listen_systemd(int *fds, int max, char *err, size_t errlen);

#endif
