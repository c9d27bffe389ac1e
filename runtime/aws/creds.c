/*
 * Credential loading (see creds.h). A file source is read whole and its
 * trailing line break dropped (what `echo KEY > file` or a Kubernetes
 * secret mount gives); a value with any other control byte is refused,
 * since it goes into a header line.
 *
 * Providers with `credentials: container` are fetched at start and then
 * by one refresh thread, five minutes before they expire (at most every
 * 5 s when the endpoint fails or hands out credentials that expire sooner).
 * Workers copy the credentials they sign with under a mutex, so a refresh
 * swaps them between two requests, never during one.
 */
#include "aws/creds.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth/secret.h"
#include "aws/container.h"
#include "core/log.h"

enum { REFRESH_BEFORE_S = 300, RETRY_S = 5 };

typedef struct slot {
    sl_aws_creds c;
    int container;
    time_t refresh_at; /* container: when to fetch again (CLOCK_MONOTONIC seconds) */
} slot;

static slot *slots;
static uint32_t nslots;
static const sl_table *table;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv;
static pthread_t refresher;
static int refreshing, stopping;

static void creds_free(sl_aws_creds *c)
{
    sl_secret_free(c->key_id);
    sl_secret_free(c->secret);
    sl_secret_free(c->token);
    memset(c, 0, sizeof *c);
}

void sl_aws_creds_shutdown(void)
{
    if (refreshing) {
        pthread_mutex_lock(&mu);
        stopping = 1;
        pthread_cond_signal(&cv);
        pthread_mutex_unlock(&mu);
        pthread_join(refresher, NULL);
        pthread_cond_destroy(&cv);
        refreshing = 0;
    }
    for (uint32_t i = 0; slots && i < nslots; i++)
        creds_free(&slots[i].c);
    free(slots);
    slots = NULL;
    nslots = 0;
    stopping = 0;
}

/* 1 read, 0 unset or empty variable, -1 unusable (err filled). The
 * reading and its rules are auth/secret.c's (an empty file is an error, as
 * for every file secret); AWS adds: no control bytes at all. */
static int read_source(const sl_provider *p, const char *src, char **out, char *err, size_t errlen)
{
    *out = NULL;
    int env = strncmp(src, "env:", 4) == 0;
    if (!env && strncmp(src, "file:", 5) != 0) {
        snprintf(err, errlen, "provider '%s': credential source must be env:NAME or file:PATH", p->name);
        return -1;
    }
    char why[512];
    int unset = 0;
    char *v = sl_secret_value(env ? src + 4 : NULL, env ? NULL : src + 5, &unset, why, sizeof why);
    if (!v) {
        if (unset)
            return 0;
        snprintf(err, errlen, "provider '%s': credentials: %s", p->name, why);
        return -1;
    }
    for (const unsigned char *q = (const unsigned char *)v; *q; q++)
        if (*q < 0x20 || *q == 0x7f) {
            sl_secret_free(v);
            snprintf(err, errlen, "provider '%s': %s holds a control character or line break", p->name, src);
            return -1;
        }
    *out = v;
    return 1;
}

static time_t mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

/* When to fetch again, on the monotonic clock: five minutes before the
 * expiry (the expiry is wall-clock time, so the time left is measured
 * now), not sooner than RETRY_S, hourly when the endpoint gives none. */
static time_t next_refresh(time_t expires)
{
    time_t left = expires ? expires - time(NULL) - REFRESH_BEFORE_S : 3600;
    return mono_now() + (left > RETRY_S ? left : RETRY_S);
}

static void *refresh_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&mu);
    while (!stopping) {
        time_t due = 0;
        for (uint32_t i = 0; i < nslots; i++)
            if (slots[i].container && (!due || slots[i].refresh_at < due))
                due = slots[i].refresh_at;
        /* Monotonic: a wall-clock step must not stall or rush the wait. */
        struct timespec ts = {.tv_sec = due > mono_now() ? due : mono_now() + 1};
        pthread_cond_timedwait(&cv, &mu, &ts);
        for (uint32_t i = 0; i < nslots && !stopping; i++) {
            if (!slots[i].container || slots[i].refresh_at > mono_now())
                continue;
            pthread_mutex_unlock(&mu);
            sl_aws_creds fresh = {0};
            time_t expires = 0;
            char err[256];
            int rc = sl_aws_container_fetch(&fresh, &expires, err, sizeof err);
            pthread_mutex_lock(&mu);
            if (rc == 0) {
                creds_free(&slots[i].c);
                slots[i].c = fresh;
                slots[i].refresh_at = next_refresh(expires);
            } else {
                sl_log_warn("provider '%s': refreshing AWS credentials failed (the current ones are kept): %s",
                            table->providers[i].name, err);
                slots[i].refresh_at = mono_now() + RETRY_S;
            }
        }
    }
    pthread_mutex_unlock(&mu);
    return NULL;
}

static int load_container(const sl_provider *p, slot *s, char *err, size_t errlen)
{
    time_t expires = 0;
    char why[256];
    if (sl_aws_container_fetch(&s->c, &expires, why, sizeof why) != 0) {
        if (p->optional) {
            sl_log_warn("provider '%s' (optional): %s; requests only it could serve get 503", p->name, why);
            return 0;
        }
        snprintf(err, errlen, "provider '%s': %s", p->name, why);
        return -1;
    }
    s->container = 1;
    s->refresh_at = next_refresh(expires);
    return 0;
}

int sl_aws_creds_init(const sl_table *t, char *err, size_t errlen)
{
    table = t;
    nslots = t->provider_count;
    slots = calloc(nslots ? nslots : 1, sizeof *slots);
    if (!slots) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    int containers = 0;
    for (uint32_t i = 0; i < nslots; i++) {
        const sl_provider *p = &t->providers[i];
        const sl_provider_aws *a = p->aws;
        if (!a)
            continue;
        if (a->container) {
            if (load_container(p, &slots[i], err, errlen) != 0)
                return -1;
            containers += slots[i].container;
            continue;
        }
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
            creds_free(&c);
            return -1;
        }
        if (rk == 0 || rs == 0) {
            sl_log_warn("provider '%s' (optional): AWS credential %s is not set; requests only it could "
                        "serve get 503",
                        p->name, rk == 0 ? a->key_id : a->secret);
            creds_free(&c);
            continue;
        }
        slots[i].c = c;
    }
    if (containers) {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&cv, &ca);
        pthread_condattr_destroy(&ca);
        if (pthread_create(&refresher, NULL, refresh_main, NULL) != 0) {
            pthread_cond_destroy(&cv);
            snprintf(err, errlen, "cannot start the AWS credentials refresh thread");
            return -1;
        }
        refreshing = 1;
    }
    return 0;
}

int sl_aws_creds_have(uint32_t provider)
{
    pthread_mutex_lock(&mu);
    int have = slots && provider < nslots && slots[provider].c.key_id;
    pthread_mutex_unlock(&mu);
    return have;
}

int sl_aws_creds_copy(const char *name, sl_arena *a, sl_aws_creds *out)
{
    int rc = -1;
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&mu);
    for (uint32_t i = 0; table && slots && i < nslots; i++) {
        const sl_aws_creds *c = &slots[i].c;
        if (strcmp(table->providers[i].name, name) != 0 || !c->key_id)
            continue;
        out->key_id = sl_arena_strndup(a, c->key_id, strlen(c->key_id));
        out->secret = sl_arena_strndup(a, c->secret, strlen(c->secret));
        out->token = c->token ? sl_arena_strndup(a, c->token, strlen(c->token)) : NULL;
        rc = out->key_id && out->secret && (!c->token || out->token) ? 0 : -1;
        break;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}
