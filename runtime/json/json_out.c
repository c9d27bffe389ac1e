/*
 * Two passes over the value: one to size, one to write. Costs a second
 * walk of usually small documents; buys output that is complete or absent.
 */
#include "json/json_out.h"

#include <stdlib.h>

char *sl_json_dumps(const json_t *j, size_t flags)
{
    if (!j)
        return NULL;
    size_t n = json_dumpb(j, NULL, 0, flags);
    if (n == 0)
        return NULL;
    char *buf = malloc(n + 1);
    if (!buf)
        return NULL;
    if (json_dumpb(j, buf, n, flags) != n) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    return buf;
}

static void *alloc_retry(size_t n)
{
    for (int i = 0; i < 3; i++) {
        void *p = malloc(n);
        if (p)
            return p;
    }
    return NULL;
}

void sl_json_init(void)
{
    json_set_alloc_funcs(alloc_retry, free);
}
