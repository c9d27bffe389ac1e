/*
 * Credential loading (see creds.h). A file source is read whole and its
 * trailing line break dropped (what `echo KEY > file` or a Kubernetes
 * secret mount gives); a value with any other control byte is refused,
 * since it goes into a header line.
 */
#include "aws/creds.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"

static sl_aws_creds *creds;
static uint32_t ncreds;
static const sl_table *table;

static void wipe_free(char *s)
{
    if (s) {
        memset(s, 0, strlen(s));
        free(s);
    }
}

void sl_aws_creds_shutdown(void)
{
    for (uint32_t i = 0; creds && i < ncreds; i++) {
        wipe_free(creds[i].key_id);
        wipe_free(creds[i].secret);
        wipe_free(creds[i].token);
    }
    free(creds);
    creds = NULL;
    ncreds = 0;
}

/* 1 read, 0 unset or empty, -1 unusable (err filled). */
static int read_source(const sl_provider *p, const char *src, char **out, char *err, size_t errlen)
{
    *out = NULL;
    char *v = NULL;
    if (strncmp(src, "env:", 4) == 0) {
        const char *e = getenv(src + 4);
        if (!e || !*e)
            return 0;
        v = strdup(e);
    } else if (strncmp(src, "file:", 5) == 0) {
        FILE *f = fopen(src + 5, "rb");
        if (!f) {
            snprintf(err, errlen, "provider '%s': cannot read credentials file %s", p->name, src + 5);
            return -1;
        }
        char buf[4096];
        size_t n = fread(buf, 1, sizeof buf - 1, f);
        fclose(f);
        while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
            n--;
        buf[n] = '\0';
        v = n ? strdup(buf) : NULL;
        memset(buf, 0, sizeof buf);
        if (!n)
            return 0;
    } else {
        snprintf(err, errlen, "provider '%s': credential source must be env:NAME or file:PATH", p->name);
        return -1;
    }
    if (!v) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (const unsigned char *q = (const unsigned char *)v; *q; q++)
        if (*q < 0x20 || *q == 0x7f) {
            wipe_free(v);
            snprintf(err, errlen, "provider '%s': %s holds a control character or line break", p->name, src);
            return -1;
        }
    *out = v;
    return 1;
}

int sl_aws_creds_init(const sl_table *t, char *err, size_t errlen)
{
    table = t;
    ncreds = t->provider_count;
    creds = calloc(ncreds ? ncreds : 1, sizeof *creds);
    if (!creds) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < ncreds; i++) {
        const sl_provider *p = &t->providers[i];
        const sl_provider_aws *a = p->aws;
        if (!a)
            continue;
        sl_aws_creds c = {0};
        int rk = read_source(p, a->key_id, &c.key_id, err, errlen);
        int rs = rk < 0 ? -1 : read_source(p, a->secret, &c.secret, err, errlen);
        int rt = rs < 0 || !a->token ? 0 : read_source(p, a->token, &c.token, err, errlen);
        if (rk < 0 || rs < 0 || rt < 0 || ((rk == 0 || rs == 0) && !p->optional) ||
            (rt == 0 && a->token && !a->token_optional)) {
            if (rk >= 0 && rs >= 0 && rt >= 0) {
                const char *which = rk == 0 ? a->key_id : rs == 0 ? a->secret : a->token;
                snprintf(err, errlen,
                         "provider '%s': AWS credential %s is not set or empty (set it, or mark the "
                         "provider optional: true in the spec)",
                         p->name, which);
            }
            wipe_free(c.key_id);
            wipe_free(c.secret);
            wipe_free(c.token);
            return -1;
        }
        if (rk == 0 || rs == 0) {
            sl_log_warn("provider '%s' (optional): AWS credential %s is not set; requests only it could "
                        "serve get 503",
                        p->name, rk == 0 ? a->key_id : a->secret);
            wipe_free(c.key_id);
            wipe_free(c.secret);
            wipe_free(c.token);
            continue;
        }
        creds[i] = c;
    }
    return 0;
}

const sl_aws_creds *sl_aws_creds_get(uint32_t provider)
{
    return creds && provider < ncreds && creds[provider].key_id ? &creds[provider] : NULL;
}

const sl_aws_creds *sl_aws_creds_find(const char *name)
{
    for (uint32_t i = 0; table && i < ncreds; i++)
        if (strcmp(table->providers[i].name, name) == 0)
            return sl_aws_creds_get(i);
    return NULL;
}
