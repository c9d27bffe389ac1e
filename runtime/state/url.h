/*
 * redis://HOST[:PORT][/DB]: the one parser of a Redis URL, linked into
 * sluicec (to check and split the spec's url) and into the gateway (for
 * `sluice --redis URL`). HOST is a name, an IPv4 address or [IPv6]; no
 * credentials (the password is `password: env:NAME`), no query.
 */
#ifndef SLUICE_STATE_URL_H
#define SLUICE_STATE_URL_H

#include <stddef.h>
#include <stdint.h>

#define SL_REDIS_HOST_MAX 256

/* 0, or -1 with a reason in err (which never repeats the URL, since it
 * might hold a password). */
int sl_redis_url_parse(const char *url, char host[SL_REDIS_HOST_MAX], uint16_t *port, uint32_t *db, char *err,
                       size_t errlen);

#endif
