/*
 * The layer between a connection's socket and its buffers: plain recv and
 * send, or the TLS module's, for connections accepted on an HTTPS
 * listener. conn.c and respond.c read and write only through here, so the
 * connection state machine is the same for both. This file owns the
 * process's TLS context (certificate pair and session cache), the count of
 * handshakes in progress, and reloading the pair on SIGHUP. It reaches the
 * TLS module only through the table's ops pointer, so a gateway whose spec
 * has no `tls:` links no TLS code.
 */
#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>

#include "core/log.h"
#include "server/server_internal.h"
#include "tls/tls.h"

static const sl_tls_ops *ops;
static sl_tls_ctx *ctx;
static atomic_uint handshakes;
static uint32_t max_handshakes, handshake_ms;

int sl_srv_tls_start(const sl_server_config *cfg, char *err, size_t errlen)
{
    const sl_tls_spec *spec = cfg->table->tls;
    if (!spec)
        return 0;
    ops = spec->ops;
    const char *cert = cfg->tls_cert ? cfg->tls_cert : spec->cert;
    const char *key = cfg->tls_key ? cfg->tls_key : spec->key;
    char why[512];
    ctx = ops->ctx_new(cert, key, why, sizeof why);
    if (!ctx) {
        snprintf(err, errlen, "tls: %s", why);
        return -1;
    }
    if (spec->client_ca &&
        ops->ctx_client_auth(ctx, spec->client_ca, spec->client_auth == SL_CLIENT_AUTH_REQUIRE, why,
                             sizeof why) != 0) {
        snprintf(err, errlen, "tls: client_ca: %s", why);
        ops->ctx_free(ctx);
        ctx = NULL;
        return -1;
    }
    atomic_init(&handshakes, 0);
    max_handshakes = cfg->table->server.max_handshakes;
    handshake_ms = cfg->table->server.handshake_timeout_ms;
    sl_log_info("tls: %s and its key loaded (TLS 1.2, %zu bytes per connection)%s%s%s", cert,
                ops->conn_bytes, spec->client_ca ? "; client certificates from " : "",
                spec->client_ca ? spec->client_ca : "",
                !spec->client_ca ? ""
                : spec->client_auth == SL_CLIENT_AUTH_REQUIRE ? " required" : " optional");
    return 0;
}

void sl_srv_tls_stop(void)
{
    if (ctx)
        ops->ctx_free(ctx);
    ctx = NULL;
}

void sl_srv_tls_reload(void)
{
    if (!ctx)
        return;
    char why[512];
    if (ops->ctx_reload(ctx, why, sizeof why) == 0)
        sl_log_info("tls: certificate and key reloaded; new connections use them");
    else
        sl_log_warn("tls: reload failed, still serving the previous certificate: %s", why);
}

int sl_srv_tls_enabled(void) { return ctx != NULL; }

int sl_srv_tls_attach(sl_conn *c)
{
    if (atomic_fetch_add(&handshakes, 1) >= max_handshakes) {
        atomic_fetch_sub(&handshakes, 1);
        sl_log(SL_LOG_DEBUG, "client %s: too many TLS handshakes in progress", c->peer);
        return -1;
    }
    c->tls = ops->conn_new(ctx);
    if (!c->tls) {
        atomic_fetch_sub(&handshakes, 1);
        return -1;
    }
    c->handshaking = 1;
    sl_srv_timer_arm(c, handshake_ms);
    return 0;
}

void sl_srv_tls_detach(sl_conn *c)
{
    if (!c->tls)
        return;
    if (c->handshaking)
        atomic_fetch_sub(&handshakes, 1);
    else if (!c->broken)
        ops->close_notify(c->tls, c->fd);
    ops->conn_free(c->tls);
    c->tls = NULL;
}

static void after_io(sl_conn *c)
{
    if (c->handshaking && !ops->handshaking(c->tls)) {
        c->handshaking = 0;
        atomic_fetch_sub(&handshakes, 1);
        /* The request head gets its own full timeout from here. */
        sl_srv_timer_arm(c, c->w->cfg->table->server.header_timeout_ms);
    }
    if (ops->want_write(c->tls) && !ev_is_active(&c->wio))
        ev_io_start(c->w->loop, &c->wio);
}

/* A client that speaks plain HTTP to the HTTPS port gets a plain answer
 * saying so and a clean close (as nginx does), not a reset it cannot
 * explain: a TLS connection starts with a handshake record (0x16), an
 * HTTP request with a letter. */
static int sniff_plaintext(sl_conn *c)
{
    unsigned char b;
    ssize_t k = recv(c->fd, &b, 1, MSG_PEEK);
    if (k <= 0)
        return 0; /* EOF or nothing yet: the engine's recv reports it */
    c->sniffed = 1;
    if (b == 0x16)
        return 0;
    atomic_fetch_sub(&handshakes, 1);
    c->handshaking = 0;
    ops->conn_free(c->tls);
    c->tls = NULL;
    sl_srv_conn_fail(c, 400, "this port speaks HTTPS; use https://");
    return 1;
}

ssize_t sl_srv_recv(sl_conn *c, void *buf, size_t len)
{
    if (!c->tls)
        return recv(c->fd, buf, len, 0);
    if (!c->sniffed && sniff_plaintext(c)) {
        errno = EAGAIN;
        return -1;
    }
    ssize_t n = ops->recv(c->tls, c->fd, buf, len);
    int saved = errno;
    after_io(c);
    errno = saved;
    if (n < 0 && errno == EPROTO)
        sl_log(SL_LOG_DEBUG, "client %s: TLS error, closing", c->peer);
    return n;
}

ssize_t sl_srv_send(sl_conn *c, const void *buf, size_t len)
{
    if (!c->tls)
        return send(c->fd, buf, len, MSG_NOSIGNAL);
    return ops->send(c->tls, c->fd, buf, len);
}

int sl_srv_send_records(sl_conn *c)
{
    if (!c->tls)
        return 0;
    return ops->flush(c->tls, c->fd);
}

void sl_srv_read_resume(sl_conn *c)
{
    if (!ev_is_active(&c->rio))
        ev_io_start(c->w->loop, &c->rio);
    /* Bytes the engine already decrypted wake nobody on the socket. */
    if (c->tls && ops->has_input(c->tls))
        ev_feed_event(c->w->loop, &c->rio, EV_READ);
}

void sl_srv_tls_close_write(sl_conn *c)
{
    if (c->tls && !c->handshaking && !c->broken)
        ops->close_notify(c->tls, c->fd);
}
