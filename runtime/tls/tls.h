/*
 * HTTPS for the gateway's listener: a BearSSL server engine per connection,
 * fed through the calls below by the server's connection code, which stays
 * in charge of the socket, the event loop and the buffers. The server
 * reaches this module only through sl_tls_server_ops, which only a table
 * generated from a spec with `tls:` refers to, so a gateway without TLS
 * links none of it.
 *
 * Policy, fixed: TLS 1.2 only (BearSSL has no 1.3), ECDHE key exchange
 * with AES-GCM or ChaCha20-Poly1305, ALPN "http/1.1", SNI accepted (one
 * certificate serves every name), no renegotiation, sessions resumed from
 * a process-wide cache. Memory per connection: see SL_TLS_CONN_BYTES;
 * with client certificates each connection also holds an X.509 validator
 * during its handshake.
 */
#ifndef SLUICE_TLS_H
#define SLUICE_TLS_H

#include <stddef.h>
#include <sys/types.h>

/* Incoming records may carry 16 KiB of plaintext (mainstream clients do
 * not negotiate smaller fragments), so the input buffer is full size; the
 * output side picks its own record size and 4 KiB keeps streamed tokens
 * prompt at a quarter of the memory. */
#define SL_TLS_IBUF (16384 + 325)
#define SL_TLS_OBUF (4096 + 85)

/* Sessions the process remembers for resumption (100 bytes each). */
#define SL_TLS_SESSIONS 4096

typedef struct sl_tls_ctx sl_tls_ctx;
typedef struct sl_tls_conn sl_tls_conn;

typedef struct sl_tls_ops {
    /* The process-wide context: the certificate chain and key read from
     * these files, and the session cache. NULL with `err` filled. */
    sl_tls_ctx *(*ctx_new)(const char *cert, const char *key, char *err, size_t errlen);
    /* Reads the files again; new connections use the new pair, open ones
     * keep theirs. On failure the old pair stays and `err` says why. Any
     * thread. */
    int (*ctx_reload)(sl_tls_ctx *ctx, char *err, size_t errlen);
    void (*ctx_free)(sl_tls_ctx *ctx);
    /* Client certificates (mTLS): from now on (and on every reload) the
     * CAs in `client_ca` are read with the pair, a certificate is asked
     * of every client and checked against them; with `require`, a client
     * without a valid one is refused in the handshake, otherwise it
     * carries on unauthenticated. -1 with `err` when the file is unusable. */
    int (*ctx_client_auth)(sl_tls_ctx *ctx, const char *client_ca, int require, char *err,
                           size_t errlen);

    /* A server engine for one accepted connection; NULL when out of
     * memory or without entropy. */
    sl_tls_conn *(*conn_new)(sl_tls_ctx *ctx);
    void (*conn_free)(sl_tls_conn *t);
    /* recv(2) and send(2) on the socket, with TLS in between: the same
     * return values and errno (EAGAIN when the socket would block; EPROTO
     * when the peer broke the protocol). recv also carries the handshake
     * forward. */
    ssize_t (*recv)(sl_tls_conn *t, int fd, void *buf, size_t len);
    ssize_t (*send)(sl_tls_conn *t, int fd, const void *buf, size_t len);
    /* Writes records the engine holds: 0 when none are left, 1 when the
     * socket would block, -1 on error. */
    int (*flush)(sl_tls_conn *t, int fd);
    /* The engine has records to write (wait for the socket to be writable). */
    int (*want_write)(const sl_tls_conn *t);
    /* Decrypted bytes the engine holds that recv has not returned yet. */
    int (*has_input)(const sl_tls_conn *t);
    int (*handshaking)(sl_tls_conn *t);
    /* Queues close_notify and writes what the socket takes now. */
    void (*close_notify)(sl_tls_conn *t, int fd);
    /* What the client asked for (SNI), or "" */
    const char *(*server_name)(const sl_tls_conn *t);
    /* Bytes one TLS connection costs, engine and buffers together. */
    size_t conn_bytes;
} sl_tls_ops;

extern const sl_tls_ops sl_tls_server_ops;

#endif
