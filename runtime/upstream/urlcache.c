/*
 * The per-worker table of parsed upstream URLs (see urlcache.h): open
 * addressing on an FNV-1a hash of the string, never more than three
 * quarters full, never evicting (a URL that does not fit is simply not
 * cached).
 */
#include "upstream/urlcache.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

CURLU *sl_urlcache_get(sl_urlcache *c, const char *url)
{
    unsigned i = hash(url) & (SL_URLCACHE_SLOTS - 1);
    while (c->slot[i].url) {
        if (strcmp(c->slot[i].url, url) == 0)
            return c->slot[i].h;
        i = (i + 1) & (SL_URLCACHE_SLOTS - 1);
    }
    if (c->used >= SL_URLCACHE_SLOTS / 4 * 3)
        return NULL;
    CURLU *h = curl_url();
    char *copy = strdup(url);
    /* The flags libcurl itself parses a CURLOPT_URL string with. */
    if (!h || !copy || curl_url_set(h, CURLUPART_URL, url, CURLU_GUESS_SCHEME | CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK) {
        curl_url_cleanup(h);
        free(copy);
        return NULL;
    }
    c->slot[i].url = copy;
    c->slot[i].h = h;
    c->used++;
    return h;
}

void sl_urlcache_free(sl_urlcache *c)
{
    for (unsigned i = 0; i < SL_URLCACHE_SLOTS; i++) {
        free(c->slot[i].url);
        curl_url_cleanup(c->slot[i].h);
    }
    memset(c, 0, sizeof *c);
}
