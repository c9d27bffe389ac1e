/*
 * OAuth2 access tokens as provider keys (Vertex AI's service accounts,
 * Azure's Entra ID). At start, sl_oauth_init reads every such provider's
 * secret (the service-account key file, the client secret) once, so a
 * broken or missing one stops the start naming the provider and the file
 * or variable. Tokens are then fetched on demand, over the worker's own
 * libcurl multi on its libev loop, never blocking it.
 *
 * The cache is per worker, not shared: each worker holds its own token
 * per provider and fetches it on its own loop, so no lock, no cross-thread
 * wake-up and no token handed between threads. The cost is one token
 * fetch per worker per token lifetime (an hour for Google and Entra),
 * which the token endpoints are built for.
 *
 * Within a worker a provider has at most one fetch in flight: requests
 * that find no usable token wait for it (at most SL_OAUTH_MAX_WAITERS;
 * more are refused at once), and all of them go on, or fail, when it
 * ends. A token is renewed before it expires: a request in the last tenth
 * of its lifetime (at most 5 minutes) still uses it and starts the
 * renewal; in the last fortieth it is no longer used at all. A failed
 * fetch fails the waiting requests with 502 naming the provider and what
 * the token endpoint did (its HTTP status and OAuth error code, or the
 * transport failure); the next request tries again.
 *
 * Tokens and secrets never reach a log line, a trace, a metric or an
 * error message; their memory is wiped when freed.
 */
#ifndef SLUICE_OAUTH_H
#define SLUICE_OAUTH_H

#include <stddef.h>

#include "providers/provider.h"
#include "table.h"

struct ev_loop;

#define SL_OAUTH_MAX_WAITERS 1024

/* Reads every OAuth provider's credentials. 0, or -1 with err naming the
 * provider and the file or variable (never its content). */
int sl_oauth_init(const sl_table *t, char *err, size_t errlen);
void sl_oauth_shutdown(void);
/* `sluice --token-url NAME=URL` (before sl_oauth_init): provider NAME
 * fetches its tokens from URL (https://, or http:// to loopback). `arg`
 * must outlive the process's start (argv does). 0, or -1 with err. */
int sl_oauth_set_token_url(const sl_provider *provs, uint32_t n, const char *arg, char *err, size_t errlen);

/* Per-worker token caches: made on the worker's thread before it serves
 * (sl_oauth_worker_new, NULL when memory runs out or no provider uses
 * OAuth), freed after its loop stopped and before its upstream is. */
typedef struct sl_oauth_worker sl_oauth_worker;
sl_oauth_worker *sl_oauth_worker_new(const sl_table *t, struct ev_loop *loop, sl_upstream *up);
void sl_oauth_worker_free(sl_oauth_worker *w);
/* Token fetches this worker started for provider index i (tests). */
unsigned sl_oauth_worker_fetches(const sl_oauth_worker *w, uint32_t i);

/* What the rest of the runtime calls, through a provider's
 * `oauth->ops` (table.h): the functions above and the transport. */
typedef struct sl_oauth_ops {
    int (*init)(const sl_table *t, char *err, size_t errlen);
    void (*shutdown)(void);
    int (*set_token_url)(const sl_provider *provs, uint32_t n, const char *arg, char *err, size_t errlen);
    sl_oauth_worker *(*worker_new)(const sl_table *t, struct ev_loop *loop, sl_upstream *up);
    void (*worker_free)(sl_oauth_worker *w);
    const sl_transport *transport;
} sl_oauth_ops;

/* The OAuth module's ops for `t`'s providers: NULL when none fetches
 * tokens (then the module is not linked at all). Inline, so asking does
 * not link the module either. */
static inline const sl_oauth_ops *sl_oauth_ops_of(const sl_table *t)
{
    for (uint32_t i = 0; i < t->provider_count; i++)
        if (t->providers[i].oauth)
            return t->providers[i].oauth->ops;
    return NULL;
}

/* The transport of requests to an OAuth provider (spec->provider set):
 * adds `Authorization: Bearer <token>` to the request once the worker has
 * a token, then goes through libcurl. A failure to get one ends the
 * transfer with SL_XFER_AUTH and the reason as its detail. */
extern const sl_transport sl_transport_oauth;

#endif
