/*
 * Fuzz target: records from a client into the TLS server engine glue
 * (runtime/tls/tls.c). The input is what a client sends on a fresh
 * connection, written to one end of a socket pair whose other end the
 * glue's recv drives (handshake replies, alerts, application data) until
 * the engine stops or the input runs out; then close_notify and free. The
 * seeds are real ClientHellos from openssl and curl and a plain HTTP
 * request. Inputs of odd length go to a context that asks for client
 * certificates (client_ca, optional), so Certificate messages reach the
 * X.509 validator. Nothing may crash, leak or hang.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/tls.h"

static sl_tls_ctx *ctx, *ctx_mtls;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sl_tls_ops *ops = &sl_tls_server_ops;
    if (!ctx) {
        char err[512];
        ctx = ops->ctx_new(TLS_FIXTURES "/ec.pem", TLS_FIXTURES "/ec.key", err, sizeof err);
        ctx_mtls = ops->ctx_new(TLS_FIXTURES "/ec.pem", TLS_FIXTURES "/ec.key", err, sizeof err);
        if (!ctx || !ctx_mtls ||
            ops->ctx_client_auth(ctx_mtls, TLS_FIXTURES "/ca.pem", 0, err, sizeof err) != 0)
            abort();
    }
    if (size > 65536)
        size = 65536;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        abort();
    size_t off = 0;
    while (off < size) {
        ssize_t n = write(sv[1], data + off, size - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
    shutdown(sv[1], SHUT_WR);
    sl_tls_conn *t = ops->conn_new(size % 2 ? ctx_mtls : ctx);
    if (!t)
        abort();
    char buf[4096];
    for (int i = 0; i < 256; i++) {
        ssize_t n = ops->recv(t, sv[0], buf, sizeof buf);
        if (n > 0 && !ops->handshaking(t)) {
            /* Application data: answer it the way the server would. */
            ops->send(t, sv[0], buf, (size_t)n);
            continue;
        }
        if (n > 0)
            abort(); /* no application data before the handshake */
        if (n == 0 || errno != EAGAIN)
            break;
        if (ops->flush(t, sv[0]) != 1)
            break;
    }
    (void)ops->has_input(t);
    (void)ops->server_name(t);
    ops->close_notify(t, sv[0]);
    ops->conn_free(t);
    close(sv[0]);
    close(sv[1]);
    return 0;
}
