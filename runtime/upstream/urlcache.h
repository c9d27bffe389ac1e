/*
 * Parsed upstream URLs, per worker (one sl_upstream), handed to libcurl as
 * CURLOPT_CURLU: libcurl 7.88 otherwise parses the URL string again on
 * every transfer (curl_url_set, then prints it back with curl_url_get).
 * A request's URL is one of a few per (provider, operation, model), so a
 * small table keyed by the string catches nearly all of them.
 */
#ifndef SLUICE_URLCACHE_H
#define SLUICE_URLCACHE_H

#include <curl/curl.h>
#include <stddef.h>

#define SL_URLCACHE_SLOTS 256

typedef struct sl_urlcache {
    struct {
        char *url;
        CURLU *h;
    } slot[SL_URLCACHE_SLOTS];
    unsigned used;
} sl_urlcache;

/* The parsed form of url, parsed on first use and kept until
 * sl_urlcache_free; NULL when the table is full, memory ran out or libcurl
 * refused the URL (then the caller sets CURLOPT_URL, and libcurl reports
 * the refusal as before). Easy handles only point at it: free the cache
 * after them. */
CURLU *sl_urlcache_get(sl_urlcache *c, const char *url);
void sl_urlcache_free(sl_urlcache *c);

#endif
