/*
 * Whether a URL's host is this machine (127.0.0.0/8, ::1, localhost or a
 * name under .localhost). sluicec and the gateway share this one rule:
 * the compiler warns about plain HTTP off loopback and refuses a
 * provider's `verify: false` off loopback; the gateway refuses a
 * --provider-url that would move such a provider off loopback.
 */
#ifndef SLUICE_CORE_URLHOST_H
#define SLUICE_CORE_URLHOST_H

#include <stdbool.h>

/* `rest` is the URL after "scheme://": [user@]host[:port][/path]. */
bool sl_url_host_is_loopback(const char *rest);

#endif
