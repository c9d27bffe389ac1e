/*
 * What upstream.c and curl_map.c share: the translation between libcurl and
 * sluice's terms, kept apart from the multi/libev glue in upstream.c.
 */
#ifndef SLUICE_UPSTREAM_INTERNAL_H
#define SLUICE_UPSTREAM_INTERNAL_H

#include <curl/curl.h>

#include "table.h"
#include "upstream/upstream.h"

/* The outcome a finished transfer's libcurl code stands for. */
sl_xfer_result sl_upstream_map_curl(CURLcode rc);

/* Sets a provider's `tls:` options on an easy handle. */
void sl_upstream_set_tls(CURL *e, const sl_provider_tls *t);

/* Whether a response header goes back to the client: on the allow-list
 * (pass_headers.c), a valid field name and a clean value of bounded size. */
int sl_upstream_header_passes(const char *name, size_t name_len, const char *v, size_t vlen);

#endif
