/*
 * Process-wide proxy state (see proxy.h): set up once before the workers
 * start, read by every worker without locks afterwards.
 */
#include "proxy/proxy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/oauth.h"
#include "auth/secret.h"
#include "aws/creds.h"
#include "core/log.h"
#include "govern/govern.h"
#include "providers/provider.h"
#include "route/health.h"
#include "rstore/rstore.h"
#include "state/state.h"
#include "trace/trace.h"

typedef struct proxy_worker {
    sl_router *router;
    sl_ledger_notifier *notifier;
    sl_metrics_shard *metrics;
    struct sl_state_worker *state;
    const sl_state_ops *state_ops;
    sl_oauth_worker *oauth;  /* this worker's access tokens (auth/oauth.h) */
} proxy_worker;

static sl_ledger *ledger;
static int ledger_wait = SL_LEDGER_WAIT_BUDGET;
static int no_metrics;
static const sl_state_ops *shared_state_ops; /* set when the spec has state: { redis: ... } */
static char **provider_auth;   /* per provider: auth header line, or NULL */
static const sl_oauth_ops *oauth_ops; /* set when a provider fetches OAuth tokens */
static uint32_t provider_count;

/* The provider's secret as its adapter presents it, from its variable
 * or its file (auth/secret.h). A missing (unset or empty) variable, or a
 * missing or empty file, stops the start, naming it: otherwise every
 * request would go upstream unauthenticated and the client would see only
 * the provider's 401. A provider the spec marks optional starts without
 * its variable; the planner then leaves it out (sl_proxy_provider_keyless).
 * OAuth providers' tokens are auth/oauth.c's. */
static int load_secret(const sl_provider *p, uint32_t i, char *err, size_t errlen)
{
    const char *fmt = sl_provider_auth_format(p);
    if ((!p->api_key_env && !p->api_key_file) || !fmt)
        return 0;
    char why[512];
    int unset = 0;
    char *v = sl_secret_value(p->api_key_env, p->api_key_file, &unset, why, sizeof why);
    if (!v && unset && p->optional) {
        sl_log_warn("provider '%s' (optional): %s; requests only it could serve get 503", p->name, why);
        return 0;
    }
    if (!v) {
        /* A file is named in the message, never quoted. */
        snprintf(err, errlen, "provider '%s': %s%s%s", p->name, p->api_key_env ? "" : "api_key: ", why,
                 unset ? " (set it, or mark the provider optional: true in the spec)" : "");
        return -1;
    }
    size_t n = strlen(fmt) + strlen(v) + 1;
    provider_auth[i] = malloc(n);
    if (provider_auth[i])
        snprintf(provider_auth[i], n, fmt, v);
    sl_secret_free(v);
    if (!provider_auth[i]) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    return 0;
}

int sl_proxy_init(const sl_table *t, const sl_proxy_options *opt, char *err, size_t errlen)
{
    ledger_wait = opt->ledger_wait;
    no_metrics = opt->no_metrics;
    /* Secrets first: a gateway that cannot start touches no state. */
    provider_count = t->provider_count;
    provider_auth = calloc(t->provider_count ? t->provider_count : 1, sizeof *provider_auth);
    if (!provider_auth) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (uint32_t i = 0; i < t->provider_count; i++)
        if (load_secret(&t->providers[i], i, err, errlen) != 0)
            return -2;
    oauth_ops = sl_oauth_ops_of(t);
    if (oauth_ops && oauth_ops->init(t, err, errlen) != 0)
        return -2;
    if (sl_aws_creds_init(t, err, errlen) != 0)
        return -2;
    if (t->redis) {
        shared_state_ops = t->redis->ops;
        int rc = shared_state_ops->init(t, opt->state_path, err, errlen);
        if (rc != 0)
            return rc;
    }
    if (opt->state_path && *opt->state_path) {
        ledger = sl_ledger_open(opt->state_path, err, errlen);
        if (!ledger)
            return -1;
        /* Stored Responses objects: same file, written by the ledger's
         * thread (rstore/rstore.h). */
        if (sl_rstore_open(opt->state_path, t->responses_retention_s, err, errlen) != 0)
            return -1;
    }
    if (sl_gov_init(t, ledger ? sl_ledger_restore : NULL, ledger) != 0) {
        snprintf(err, errlen, "cannot restore spend from the ledger");
        return -1;
    }
    if (ledger && sl_ledger_start(ledger) != 0) {
        snprintf(err, errlen, "cannot start the ledger thread");
        return -1;
    }
    if (sl_auth_init(t) != 0 || sl_health_init(t) != 0 || sl_metrics_init(t) != 0) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (t->otlp_url &&
        sl_trace_start(opt->otlp_url ? opt->otlp_url : t->otlp_url, t->service_name, err, errlen) != 0)
        return -1;
    return 0;
}

void sl_proxy_shutdown(void)
{
    sl_trace_stop(); /* sends queued spans */
    sl_ledger_close(ledger); /* flushes queued rows */
    ledger = NULL;
    sl_rstore_close();
    sl_gov_shutdown();
    if (shared_state_ops)
        shared_state_ops->shutdown();
    sl_auth_shutdown();
    sl_health_shutdown();
    sl_metrics_shutdown();
    for (uint32_t i = 0; provider_auth && i < provider_count; i++)
        sl_secret_free(provider_auth[i]);
    if (oauth_ops)
        oauth_ops->shutdown();
    free(provider_auth);
    provider_auth = NULL;
    sl_aws_creds_shutdown();
}

static void worker_free(void *p)
{
    proxy_worker *pw = p;
    if (!pw)
        return;
    if (pw->state)
        pw->state_ops->worker_free(pw->state); /* sends the last settlements */
    if (pw->oauth)
        oauth_ops->worker_free(pw->oauth);
    sl_router_free(pw->router);
    sl_ledger_notifier_detach(pw->notifier);
    free(pw);
}

void sl_proxy_worker_init(sl_worker *w)
{
    proxy_worker *pw = calloc(1, sizeof *pw);
    if (pw) {
        pw->router = sl_router_new(sl_worker_table(w));
        pw->metrics = no_metrics ? NULL : sl_metrics_shard_for(sl_worker_id(w));
        if (ledger)
            pw->notifier = sl_ledger_notifier_new(ledger, sl_worker_loop(w));
        const sl_table *t = sl_worker_table(w);
        if (oauth_ops)
            pw->oauth = oauth_ops->worker_new(t, sl_worker_loop(w), sl_worker_upstream(w));
        if (t->redis) {
            pw->state_ops = t->redis->ops;
            pw->state = pw->state_ops->worker_new(t, sl_worker_loop(w), sl_worker_id(w));
        }
    }
    sl_worker_set_proxy_state(w, pw, worker_free);
}

sl_ledger *sl_proxy_ledger(void) { return ledger; }
int sl_proxy_ledger_wait(void) { return ledger_wait; }

sl_ledger_notifier *sl_proxy_notifier(sl_worker *w)
{
    proxy_worker *pw = sl_worker_proxy_state(w);
    return pw ? pw->notifier : NULL;
}

sl_router *sl_proxy_router(sl_worker *w)
{
    proxy_worker *pw = sl_worker_proxy_state(w);
    return pw ? pw->router : NULL;
}

struct sl_state_worker *sl_proxy_state(sl_worker *w)
{
    proxy_worker *pw = sl_worker_proxy_state(w);
    return pw ? pw->state : NULL;
}

sl_metrics_shard *sl_proxy_metrics(sl_worker *w)
{
    proxy_worker *pw = sl_worker_proxy_state(w);
    return pw ? pw->metrics : NULL;
}

const char *sl_proxy_provider_keyless(const sl_table *t, uint32_t provider)
{
    if (provider >= t->provider_count)
        return NULL;
    const sl_provider *p = &t->providers[provider];
    if (p->aws) /* bedrock: AWS credentials instead of a key */
        return sl_aws_creds_have(provider) ? NULL
               : p->aws->container ? "AWS_CONTAINER_CREDENTIALS_FULL_URI"
               : p->aws->key_id + (strncmp(p->aws->key_id, "env:", 4) ? 0 : 4);
    if (!p->api_key_env || !sl_provider_auth_format(p) || sl_proxy_auth_line(provider))
        return NULL;
    return p->api_key_env;
}

const char *sl_proxy_auth_line(uint32_t provider)
{
    return provider_auth && provider < provider_count ? provider_auth[provider] : NULL;
}
