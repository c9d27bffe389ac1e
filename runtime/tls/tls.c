/*
 * The BearSSL server engine behind sl_tls_server_ops (see tls.h). Each
 * connection owns an engine and its two buffers; records move between the
 * engine and the non-blocking socket only inside recv, send and flush, so
 * the connection code keeps its own loop, timers and buffers and never
 * blocks. The certificate pair is reference-counted: a SIGHUP reload
 * publishes a new pair for new connections while open ones finish on the
 * pair they were handed. The session cache is BearSSL's LRU behind a lock,
 * shared by all workers, because a reconnecting client lands on whichever
 * worker the kernel picks.
 */
#include "tls/tls.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <bearssl.h>

#include "tls/pem.h"

typedef struct keypair {
    atomic_uint refs;
    sl_tls_chain chain;
    sl_tls_key key;
    sl_tls_anchors client_cas; /* n == 0: no client certificates asked */
} keypair;

typedef struct locked_cache {
    const br_ssl_session_cache_class *vtable; /* first: BearSSL passes &vtable */
    br_ssl_session_cache_lru lru;
    pthread_mutex_t mu;
    unsigned char store[SL_TLS_SESSIONS * 100];
} locked_cache;

struct sl_tls_ctx {
    char *cert_path, *key_path;
    char *client_ca_path; /* NULL: no client certificates */
    int client_required;
    pthread_mutex_t mu; /* guards cur */
    keypair *cur;
    locked_cache cache;
};

struct sl_tls_conn {
    br_ssl_server_context sc;
    br_x509_minimal_context *xc; /* validates the client's certificate (mTLS only) */
    keypair *kp;
    int up; /* the handshake completed once */
    unsigned char ibuf[SL_TLS_IBUF];
    unsigned char obuf[SL_TLS_OBUF];
};

/* ---- session cache -------------------------------------------------- */

static void cache_save(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                       const br_ssl_session_parameters *params)
{
    locked_cache *c = (locked_cache *)(void *)ctx;
    pthread_mutex_lock(&c->mu);
    c->lru.vtable->save(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->mu);
}

static int cache_load(const br_ssl_session_cache_class **ctx, br_ssl_server_context *sc,
                      br_ssl_session_parameters *params)
{
    locked_cache *c = (locked_cache *)(void *)ctx;
    pthread_mutex_lock(&c->mu);
    int ok = c->lru.vtable->load(&c->lru.vtable, sc, params);
    pthread_mutex_unlock(&c->mu);
    return ok;
}

static const br_ssl_session_cache_class locked_cache_class = {
    .context_size = sizeof(locked_cache),
    .save = cache_save,
    .load = cache_load,
};

/* ---- certificate pairs ----------------------------------------------- */

static void keypair_put(keypair *kp)
{
    if (kp && atomic_fetch_sub(&kp->refs, 1) == 1) {
        sl_tls_chain_free(&kp->chain);
        sl_tls_key_free(&kp->key);
        sl_tls_anchors_free(&kp->client_cas);
        free(kp);
    }
}

static keypair *keypair_load(const char *cert, const char *key, const char *client_ca, char *err,
                             size_t errlen)
{
    keypair *kp = calloc(1, sizeof *kp);
    if (!kp) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    atomic_init(&kp->refs, 1);
    if (sl_tls_read_chain(cert, &kp->chain, err, errlen) != 0) {
        free(kp);
        return NULL;
    }
    if (sl_tls_read_key(key, &kp->key, err, errlen) != 0) {
        sl_tls_chain_free(&kp->chain);
        free(kp);
        return NULL;
    }
    if (sl_tls_key_matches(&kp->chain.certs[0], &kp->key) != 1) {
        snprintf(err, errlen, "the private key in '%s' does not belong to the first certificate in '%s'",
                 key, cert);
        keypair_put(kp);
        return NULL;
    }
    if (client_ca && sl_tls_read_anchors(client_ca, &kp->client_cas, err, errlen) != 0) {
        keypair_put(kp);
        return NULL;
    }
    return kp;
}

static keypair *keypair_get(sl_tls_ctx *ctx)
{
    pthread_mutex_lock(&ctx->mu);
    keypair *kp = ctx->cur;
    atomic_fetch_add(&kp->refs, 1);
    pthread_mutex_unlock(&ctx->mu);
    return kp;
}

static void ctx_free(sl_tls_ctx *ctx)
{
    if (!ctx)
        return;
    keypair_put(ctx->cur);
    pthread_mutex_destroy(&ctx->mu);
    pthread_mutex_destroy(&ctx->cache.mu);
    free(ctx->cert_path);
    free(ctx->key_path);
    free(ctx->client_ca_path);
    free(ctx);
}

static sl_tls_ctx *ctx_new(const char *cert, const char *key, char *err, size_t errlen)
{
    sl_tls_ctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx || !(ctx->cert_path = strdup(cert)) || !(ctx->key_path = strdup(key))) {
        if (ctx) {
            free(ctx->cert_path);
            free(ctx);
        }
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&ctx->mu, NULL);
    pthread_mutex_init(&ctx->cache.mu, NULL);
    ctx->cache.vtable = &locked_cache_class;
    br_ssl_session_cache_lru_init(&ctx->cache.lru, ctx->cache.store, sizeof ctx->cache.store);
    if (!(ctx->cur = keypair_load(cert, key, NULL, err, errlen))) {
        ctx_free(ctx);
        return NULL;
    }
    return ctx;
}

static int ctx_reload(sl_tls_ctx *ctx, char *err, size_t errlen)
{
    keypair *kp = keypair_load(ctx->cert_path, ctx->key_path, ctx->client_ca_path, err, errlen);
    if (!kp)
        return -1;
    pthread_mutex_lock(&ctx->mu);
    keypair *old = ctx->cur;
    ctx->cur = kp;
    pthread_mutex_unlock(&ctx->mu);
    keypair_put(old);
    return 0;
}

static int ctx_client_auth(sl_tls_ctx *ctx, const char *client_ca, int require, char *err,
                           size_t errlen)
{
    char *path = strdup(client_ca);
    if (!path) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    free(ctx->client_ca_path);
    ctx->client_ca_path = path;
    ctx->client_required = require;
    return ctx_reload(ctx, err, errlen);
}

/* ---- connections ------------------------------------------------------ */

static const uint16_t suites_rsa[] = {
    BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const uint16_t suites_ec[] = {
    BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
    BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
    BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
};
static const char *alpn[] = {"http/1.1"};

static void conn_free(sl_tls_conn *t)
{
    if (!t)
        return;
    keypair_put(t->kp);
    free(t->xc);
    /* Session keys live in the engine. */
    volatile unsigned char *p = (volatile unsigned char *)&t->sc;
    for (size_t i = 0; i < sizeof t->sc; i++)
        p[i] = 0;
    free(t);
}

static sl_tls_conn *conn_new(sl_tls_ctx *ctx)
{
    sl_tls_conn *t = malloc(sizeof *t);
    if (!t)
        return NULL;
    t->kp = keypair_get(ctx);
    t->up = 0;
    t->xc = NULL;
    const sl_tls_chain *ch = &t->kp->chain;
    const sl_tls_key *k = &t->kp->key;
    br_ssl_engine_context *e = &t->sc.eng;
    if (k->type == BR_KEYTYPE_RSA) {
        br_ssl_server_init_full_rsa(&t->sc, ch->certs, ch->n, &k->rsa);
        br_ssl_engine_set_suites(e, suites_rsa, sizeof suites_rsa / sizeof suites_rsa[0]);
    } else {
        br_ssl_server_init_full_ec(&t->sc, ch->certs, ch->n, BR_KEYTYPE_EC, &k->ec);
        br_ssl_engine_set_suites(e, suites_ec, sizeof suites_ec / sizeof suites_ec[0]);
    }
    br_ssl_engine_set_versions(e, BR_TLS12, BR_TLS12);
    br_ssl_engine_add_flags(e, BR_OPT_NO_RENEGOTIATION);
    br_ssl_engine_set_protocol_names(e, alpn, 1);
    br_ssl_server_set_cache(&t->sc, &ctx->cache.vtable);
    const sl_tls_anchors *cas = &t->kp->client_cas;
    if (cas->n) {
        /* CertificateRequest names these CAs; the minimal validator checks
         * the chain against them (and the dates), and the engine the
         * client's CertificateVerify signature. */
        if (!(t->xc = malloc(sizeof *t->xc))) {
            conn_free(t);
            return NULL;
        }
        br_x509_minimal_init_full(t->xc, cas->tas, cas->n);
        br_ssl_engine_set_x509(e, &t->xc->vtable);
        br_ssl_server_set_trust_anchor_names_alt(&t->sc, cas->tas, cas->n);
        br_ssl_engine_set_default_rsavrfy(e);
        br_ssl_engine_set_default_ecdsa(e);
        if (!ctx->client_required)
            br_ssl_engine_add_flags(e, BR_OPT_TOLERATE_NO_CLIENT_AUTH);
    }
    br_ssl_engine_set_buffers_bidi(e, t->ibuf, sizeof t->ibuf, t->obuf, sizeof t->obuf);
    if (!br_ssl_server_reset(&t->sc)) {
        conn_free(t);
        return NULL;
    }
    return t;
}

/* One write of pending records. 1 written, 0 would block, -1 error. */
static int write_records(sl_tls_conn *t, int fd)
{
    br_ssl_engine_context *e = &t->sc.eng;
    size_t len;
    unsigned char *buf = br_ssl_engine_sendrec_buf(e, &len);
    for (;;) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n > 0) {
            br_ssl_engine_sendrec_ack(e, (size_t)n);
            return 1;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        return -1;
    }
}

/* The engine stopped: a clean close_notify reads as EOF, anything else as
 * a protocol error. */
static ssize_t closed(const sl_tls_conn *t)
{
    if (br_ssl_engine_last_error(&t->sc.eng) == BR_ERR_OK)
        return 0;
    errno = EPROTO;
    return -1;
}

static ssize_t tls_recv(sl_tls_conn *t, int fd, void *out, size_t len)
{
    br_ssl_engine_context *e = &t->sc.eng;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st == BR_SSL_CLOSED)
            return closed(t);
        if (st & BR_SSL_RECVAPP) {
            size_t alen;
            unsigned char *app = br_ssl_engine_recvapp_buf(e, &alen);
            size_t n = alen < len ? alen : len;
            memcpy(out, app, n);
            br_ssl_engine_recvapp_ack(e, n);
            return (ssize_t)n;
        }
        /* Handshake replies go out before more input is read. */
        if (st & BR_SSL_SENDREC) {
            int w = write_records(t, fd);
            if (w < 0)
                return -1;
            if (w > 0)
                continue;
        }
        if (st & BR_SSL_RECVREC) {
            size_t rlen;
            unsigned char *rec = br_ssl_engine_recvrec_buf(e, &rlen);
            ssize_t n = recv(fd, rec, rlen, 0);
            if (n > 0) {
                br_ssl_engine_recvrec_ack(e, (size_t)n);
                continue;
            }
            if (n < 0 && errno == EINTR)
                continue;
            return n; /* 0: the peer closed without close_notify; -1: errno */
        }
        errno = EAGAIN; /* waiting for the socket to take records */
        return -1;
    }
}

static ssize_t tls_send(sl_tls_conn *t, int fd, const void *data, size_t len)
{
    br_ssl_engine_context *e = &t->sc.eng;
    size_t done = 0;
    for (;;) {
        unsigned st = br_ssl_engine_current_state(e);
        if (st == BR_SSL_CLOSED) {
            errno = EPIPE;
            return -1;
        }
        if (st & BR_SSL_SENDREC) {
            int w = write_records(t, fd);
            if (w < 0)
                return -1;
            if (w > 0)
                continue;
            break;
        }
        if (done == len)
            return (ssize_t)done;
        if (!(st & BR_SSL_SENDAPP))
            break;
        size_t alen;
        unsigned char *app = br_ssl_engine_sendapp_buf(e, &alen);
        size_t n = alen < len - done ? alen : len - done;
        memcpy(app, (const unsigned char *)data + done, n);
        br_ssl_engine_sendapp_ack(e, n);
        done += n;
        if (done == len)
            br_ssl_engine_flush(e, 0); /* no more coming now: seal the record */
    }
    if (done)
        return (ssize_t)done;
    errno = EAGAIN;
    return -1;
}

static int tls_flush(sl_tls_conn *t, int fd)
{
    while (br_ssl_engine_current_state(&t->sc.eng) & BR_SSL_SENDREC) {
        int w = write_records(t, fd);
        if (w <= 0)
            return w < 0 ? -1 : 1;
    }
    return 0;
}

static int want_write(const sl_tls_conn *t)
{
    return (br_ssl_engine_current_state(&t->sc.eng) & BR_SSL_SENDREC) != 0;
}

static int has_input(const sl_tls_conn *t)
{
    return (br_ssl_engine_current_state(&t->sc.eng) & BR_SSL_RECVAPP) != 0;
}

/* Application data flows only after the handshake; once it has flowed
 * the connection counts as up even while its output buffer is full. */
static int handshaking(sl_tls_conn *t)
{
    unsigned st = br_ssl_engine_current_state(&t->sc.eng);
    if (st != BR_SSL_CLOSED && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP)))
        t->up = 1;
    return !t->up;
}

static void close_notify(sl_tls_conn *t, int fd)
{
    br_ssl_engine_close(&t->sc.eng);
    tls_flush(t, fd);
}

static const char *server_name(const sl_tls_conn *t)
{
    return br_ssl_engine_get_server_name(&t->sc.eng);
}

const sl_tls_ops sl_tls_server_ops = {
    .ctx_new = ctx_new,
    .ctx_reload = ctx_reload,
    .ctx_free = ctx_free,
    .ctx_client_auth = ctx_client_auth,
    .conn_new = conn_new,
    .conn_free = conn_free,
    .recv = tls_recv,
    .send = tls_send,
    .flush = tls_flush,
    .want_write = want_write,
    .has_input = has_input,
    .handshaking = handshaking,
    .close_notify = close_notify,
    .server_name = server_name,
    .conn_bytes = sizeof(struct sl_tls_conn),
};
