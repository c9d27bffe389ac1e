/*
 * OAuth2 token sources (see oauth.h): the per-worker caches and fetches,
 * and the transport that waits for a token. The credentials they use are
 * oauth_conf.c's.
 */
#include "auth/oauth.h"

#include <curl/curl.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/oauth_internal.h"
#include "auth/secret.h"
#include "core/log.h"

#define FETCH_BODY_MAX (64 * 1024)

/* ---- per-worker caches ---------------------------------------------------- */

typedef struct oxfer oxfer;

typedef struct source {
    sl_oauth_worker *w;
    const sl_oauth_conf *conf;
    char *auth;              /* "Authorization: Bearer <token>", or NULL */
    double renew_at, usable_until; /* ev_now() times */
    sl_xfer *fetch;          /* the one fetch in flight, or NULL */
    struct curl_slist *fetch_headers;
    char *fetch_body;
    char *resp;
    size_t resp_len;
    int resp_over;
    int status;
    double fetch_started;
    oxfer *head, *tail;      /* requests waiting for the fetch */
    unsigned nwait;
    unsigned fetches;
} source;

struct sl_oauth_worker {
    struct ev_loop *loop;
    sl_upstream *up;
    const sl_table *t;
    source *src;             /* per provider index */
    uint32_t n;
};

/* The worker whose thread this is: transports find their cache here. */
static _Thread_local sl_oauth_worker *current;

/* A request through the OAuth transport: waiting in its source's queue,
 * failing (a zero timer delivers on_done from the loop, never from inside
 * the caller), or running as a libcurl transfer. */
struct oxfer {
    source *s;
    sl_xfer_spec spec;
    const sl_xfer_callbacks *cb;
    void *ctx;
    struct curl_slist *headers; /* the caller's lines plus auth */
    sl_xfer *inner;
    oxfer *prev, *next;
    int queued;
    ev_timer fail;
    char why[256];
};

static void drop_token(source *s)
{
    if (s->auth)
        sl_secret_free(s->auth);
    s->auth = NULL;
}

static void fetch_clear(source *s)
{
    curl_slist_free_all(s->fetch_headers);
    s->fetch_headers = NULL;
    if (s->fetch_body)
        sl_secret_free(s->fetch_body);
    s->fetch_body = NULL;
    if (s->resp)
        sl_secret_wipe_free(s->resp, s->resp_len);
    s->resp = NULL;
    s->resp_len = 0;
    s->resp_over = 0;
    s->status = 0;
}

sl_oauth_worker *sl_oauth_worker_new(const sl_table *t, struct ev_loop *loop, sl_upstream *up)
{
    if (!sl_oauth_any())
        return NULL;
    sl_oauth_worker *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->src = calloc(t->provider_count, sizeof *w->src);
    if (!w->src) {
        free(w);
        return NULL;
    }
    w->loop = loop;
    w->up = up;
    w->t = t;
    w->n = t->provider_count;
    for (uint32_t i = 0; i < w->n; i++) {
        w->src[i].w = w;
        w->src[i].conf = sl_oauth_conf_at(i);
    }
    current = w;
    return w;
}

static void unqueue(oxfer *o)
{
    source *s = o->s;
    if (!o->queued)
        return;
    if (o->prev)
        o->prev->next = o->next;
    else
        s->head = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        s->tail = o->prev;
    o->prev = o->next = NULL;
    o->queued = 0;
    s->nwait--;
}

/* A header list holding the token: each line wiped, then freed. */
static void headers_free(struct curl_slist *l)
{
    for (struct curl_slist *h = l; h; h = h->next)
        explicit_bzero(h->data, strlen(h->data));
    curl_slist_free_all(l);
}

static void oxfer_free(oxfer *o)
{
    unqueue(o);
    ev_timer_stop(o->s->w->loop, &o->fail);
    headers_free(o->headers);
    free(o);
}

void sl_oauth_worker_free(sl_oauth_worker *w)
{
    if (!w)
        return;
    for (uint32_t i = 0; i < w->n; i++) {
        source *s = &w->src[i];
        if (s->fetch)
            sl_xfer_cancel(s->fetch);
        s->fetch = NULL;
        fetch_clear(s);
        while (s->head)
            oxfer_free(s->head); /* their exchanges are gone already */
        drop_token(s);
    }
    if (current == w)
        current = NULL;
    free(w->src);
    free(w);
}

unsigned sl_oauth_worker_fetches(const sl_oauth_worker *w, uint32_t i)
{
    return w && i < w->n ? w->src[i].fetches : 0;
}

/* ---- the transport --------------------------------------------------------- */

static void inner_head(void *ctx, const sl_xfer_head *h)
{
    oxfer *o = ctx;
    o->cb->on_head(o->ctx, h);
}

static size_t inner_data(void *ctx, const char *p, size_t n)
{
    oxfer *o = ctx;
    return o->cb->on_data(o->ctx, p, n);
}

static void inner_done(void *ctx, sl_xfer_result r, const char *detail)
{
    oxfer *o = ctx;
    const sl_xfer_callbacks *cb = o->cb;
    void *c = o->ctx;
    o->inner = NULL;
    oxfer_free(o);
    cb->on_done(c, r, detail);
}

static const sl_xfer_callbacks inner_cb = {inner_head, inner_data, inner_done};

static void fail_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    oxfer *o = t->data;
    const sl_xfer_callbacks *cb = o->cb;
    void *c = o->ctx;
    char why[sizeof o->why];
    memcpy(why, o->why, sizeof why);
    oxfer_free(o);
    cb->on_done(c, SL_XFER_AUTH, why);
}

static void fail_later(oxfer *o, const char *why)
{
    snprintf(o->why, sizeof o->why, "%s", why);
    ev_timer_set(&o->fail, 0., 0.);
    ev_timer_start(o->s->w->loop, &o->fail);
}

/* The caller's header lines and the token's, then the transfer. */
static void go(oxfer *o)
{
    struct curl_slist *l = NULL;
    int ok = 1;
    for (const struct curl_slist *h = o->spec.headers; h && ok; h = h->next) {
        struct curl_slist *n = curl_slist_append(l, h->data);
        ok = n != NULL;
        if (n)
            l = n;
    }
    struct curl_slist *n = ok ? curl_slist_append(l, o->s->auth) : NULL;
    if (!n) {
        curl_slist_free_all(l);
        fail_later(o, "out of memory");
        return;
    }
    o->headers = n;
    sl_xfer_spec spec = o->spec;
    spec.headers = o->headers;
    o->inner = sl_xfer_start(o->s->w->up, &spec, &inner_cb, o);
    if (!o->inner)
        fail_later(o, "out of memory");
}

static int token_usable(const source *s)
{
    return s->auth && ev_now(s->w->loop) < s->usable_until;
}

static void fetch_done_ok(source *s, double now)
{
    char *tok = NULL;
    int64_t secs = 0;
    char why[160];
    if (sl_oauth_parse_token(s->resp ? s->resp : "", s->resp_len, &tok, &secs, why, sizeof why) != 0) {
        char msg[256];
        snprintf(msg, sizeof msg, "no access token: the token endpoint's answer is unusable (%s)", why);
        sl_log_warn("provider '%s': token endpoint %s: %s", s->conf->p->name, s->conf->token_url, msg);
        for (oxfer *o; (o = s->head);) {
            unqueue(o);
            fail_later(o, msg);
        }
        return;
    }
    drop_token(s);
    size_t n = strlen(tok) + sizeof "Authorization: Bearer ";
    s->auth = malloc(n);
    if (s->auth)
        snprintf(s->auth, n, "Authorization: Bearer %s", tok);
    sl_secret_free(tok);
    /* Renew in the last tenth of the lifetime (5 minutes at most); stop
     * using it in the last quarter of that, so a request in flight still
     * carries a live token when it arrives. */
    double life = (double)secs, margin = life / 10 < 300 ? life / 10 : 300;
    s->renew_at = now + life - margin;
    s->usable_until = now + life - margin / 4;
    for (oxfer *o; (o = s->head);) {
        unqueue(o);
        if (s->auth)
            go(o);
        else
            fail_later(o, "out of memory");
    }
}

static void fetch_head(void *ctx, const sl_xfer_head *h)
{
    source *s = ctx;
    s->status = h->status;
}

static size_t fetch_data(void *ctx, const char *p, size_t n)
{
    source *s = ctx;
    if (s->resp_len + n > FETCH_BODY_MAX) {
        s->resp_over = 1;
        return 0;
    }
    /* Not realloc: the old block holds part of a token and is wiped. */
    char *q = malloc(s->resp_len + n + 1);
    if (!q)
        return 0;
    if (s->resp)
        memcpy(q, s->resp, s->resp_len);
    memcpy(q + s->resp_len, p, n);
    if (s->resp)
        sl_secret_wipe_free(s->resp, s->resp_len);
    s->resp = q;
    s->resp_len += n;
    s->resp[s->resp_len] = '\0';
    return n;
}

static void fetch_done(void *ctx, sl_xfer_result r, const char *detail)
{
    source *s = ctx;
    s->fetch = NULL;
    double now = s->fetch_started;
    char msg[256];
    if (r == SL_XFER_OK && s->status == 200) {
        fetch_done_ok(s, now);
        fetch_clear(s);
        return;
    }
    if (r == SL_XFER_OK) {
        char code[72];
        sl_oauth_error_code(s->resp ? s->resp : "", s->resp_len, code, sizeof code);
        snprintf(msg, sizeof msg, "no access token: the token endpoint answered HTTP %d%s%s%s", s->status,
                 code[0] ? " (" : "", code, code[0] ? ")" : "");
    } else {
        snprintf(msg, sizeof msg, "no access token: the token endpoint failed (%s)",
                 s->resp_over ? "answer over 64 KiB" : sl_xfer_result_name(r));
    }
    sl_log_warn("provider '%s': token endpoint %s: %s%s%s", s->conf->p->name, s->conf->token_url, msg,
                r == SL_XFER_OK ? "" : ": ", r == SL_XFER_OK ? "" : detail);
    fetch_clear(s);
    for (oxfer *o; (o = s->head);) {
        unqueue(o);
        fail_later(o, msg);
    }
}

static const sl_xfer_callbacks fetch_cb = {fetch_head, fetch_data, fetch_done};

/* Starts the one fetch; -1 when it cannot (memory). */
static int fetch_start(source *s)
{
    const sl_oauth_conf *c = s->conf;
    s->fetch_body = sl_oauth_form(c);
    struct curl_slist *h = s->fetch_body ? curl_slist_append(NULL, "Content-Type: application/x-www-form-urlencoded") : NULL;
    struct curl_slist *h2 = h ? curl_slist_append(h, "Accept: application/json") : NULL;
    struct curl_slist *h3 = h2 ? curl_slist_append(h2, "Expect:") : NULL;
    struct curl_slist *h4 = h3 ? curl_slist_append(h3, "User-Agent: sluice/" SLUICE_VERSION) : NULL;
    if (!h4) {
        curl_slist_free_all(h);
        fetch_clear(s);
        return -1;
    }
    s->fetch_headers = h4;
    /* The provider's connect timeout; a token endpoint that takes more
     * than 30 s to answer is down as far as waiting requests go. */
    sl_xfer_spec spec = {.url = c->token_url, .headers = s->fetch_headers, .body = s->fetch_body,
                         .body_len = strlen(s->fetch_body), .connect_ms = c->p->connect_ms,
                         .first_byte_ms = 30000, .idle_ms = 30000, .total_ms = 30000};
    s->fetch_started = ev_now(s->w->loop);
    s->fetch = sl_xfer_start(s->w->up, &spec, &fetch_cb, s);
    if (!s->fetch) {
        fetch_clear(s);
        return -1;
    }
    s->fetches++;
    return 0;
}

static source *source_of(const sl_provider *p)
{
    sl_oauth_worker *w = current;
    if (!w || !p || p < w->t->providers || p >= w->t->providers + w->n)
        return NULL;
    source *s = &w->src[p - w->t->providers];
    return s->conf ? s : NULL;
}

static void *oauth_start(struct ev_loop *loop, sl_upstream *up, const sl_xfer_spec *spec,
                         const sl_xfer_callbacks *cb, void *ctx)
{
    (void)loop;
    (void)up;
    source *s = source_of(spec->provider);
    if (!s)
        return NULL;
    oxfer *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->s = s;
    o->spec = *spec;
    o->cb = cb;
    o->ctx = ctx;
    ev_timer_init(&o->fail, fail_cb, 0., 0.);
    o->fail.data = o;
    double now = ev_now(s->w->loop);
    if (token_usable(s)) {
        if (now >= s->renew_at && !s->fetch && fetch_start(s) != 0)
            sl_log_warn("provider '%s': cannot start renewing its access token (out of memory)",
                        s->conf->p->name);
        go(o);
        return o;
    }
    if (s->nwait >= SL_OAUTH_MAX_WAITERS) {
        fail_later(o, "no access token: too many requests are waiting for one");
        return o;
    }
    if (!s->fetch && fetch_start(s) != 0) {
        fail_later(o, "no access token: out of memory");
        return o;
    }
    o->queued = 1;
    o->prev = s->tail;
    if (s->tail)
        s->tail->next = o;
    else
        s->head = o;
    s->tail = o;
    s->nwait++;
    return o;
}

static void oauth_cancel(void *xp)
{
    oxfer *o = xp;
    if (o->inner)
        sl_xfer_cancel(o->inner);
    o->inner = NULL;
    oxfer_free(o);
}

static void oauth_resume(void *xp)
{
    oxfer *o = xp;
    if (o->inner)
        sl_xfer_resume(o->inner);
}

const sl_transport sl_transport_oauth = {oauth_start, oauth_cancel, oauth_resume};

const sl_oauth_ops sl_oauth_module_ops = {
    .init = sl_oauth_init,
    .shutdown = sl_oauth_shutdown,
    .set_token_url = sl_oauth_set_token_url,
    .worker_new = sl_oauth_worker_new,
    .worker_free = sl_oauth_worker_free,
    .transport = &sl_transport_oauth,
};
