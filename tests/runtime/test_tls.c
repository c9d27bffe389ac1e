/*
 * Tests for the TLS module (runtime/tls): the PEM loader reads chains and
 * RSA/EC keys and tells a matching key from a foreign one, with an error
 * sentence for every unusable file; the server engine glue completes a
 * handshake with a BearSSL client over a non-blocking socket pair, carries
 * application data both ways, negotiates TLS 1.2 with an ECDHE AEAD suite
 * and ALPN http/1.1, refuses a client limited to TLS 1.0/1.1, asks for
 * client certificates against client_ca (required: refused without one or
 * with one from another CA; optional: served either way), and a reload
 * with a key that does not match keeps the pair that was serving. The
 * certificates are the compiler's golden fixtures (tests/compiler/bad/tls).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tls/pem.h"
#include "tls/tls.h"

#define F(name) TLS_FIXTURES "/" name

static void reads_chains_and_keys(void **state)
{
    char err[512];
    sl_tls_chain ch;
    sl_tls_key k;
    assert_int_equal(sl_tls_read_chain(F("rsa-chain.pem"), &ch, err, sizeof err), 0);
    assert_int_equal(ch.n, 3);
    assert_int_equal(sl_tls_read_key(F("rsa.key"), &k, err, sizeof err), 0);
    assert_int_equal(k.type, BR_KEYTYPE_RSA);
    assert_int_equal(sl_tls_key_matches(&ch.certs[0], &k), 1);
    sl_tls_key_free(&k);
    assert_int_equal(sl_tls_read_key(F("ec.key"), &k, err, sizeof err), 0);
    assert_int_equal(k.type, BR_KEYTYPE_EC);
    assert_int_equal(sl_tls_key_matches(&ch.certs[0], &k), 0); /* EC key, RSA certificate */
    sl_tls_chain_free(&ch);
    assert_int_equal(sl_tls_read_chain(F("ec.pem"), &ch, err, sizeof err), 0);
    assert_int_equal(ch.n, 1);
    assert_int_equal(sl_tls_key_matches(&ch.certs[0], &k), 1);
    sl_tls_chain_free(&ch);
    sl_tls_key_free(&k);
}

static void unusable_files_say_why(void **state)
{
    char err[512];
    sl_tls_chain ch;
    sl_tls_key k;
    assert_int_equal(sl_tls_read_chain(F("missing.pem"), &ch, err, sizeof err), -1);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(sl_tls_read_chain(F("garbage.pem"), &ch, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds no PEM block"));
    assert_int_equal(sl_tls_read_chain(F("ec.key"), &ch, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds no certificate"));
    assert_int_equal(sl_tls_read_key(F("ec.pem"), &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds no private key"));
    assert_int_equal(sl_tls_read_key(F("encrypted.key"), &k, err, sizeof err), -1);
    assert_non_null(strstr(err, "encrypted"));
}

/* client_ca: every certificate of a bundle becomes a CA trust anchor with
 * its encoded name and its own copy of the public key. */
static void reads_trust_anchors(void **state)
{
    char err[512];
    sl_tls_anchors a;
    assert_int_equal(sl_tls_read_anchors(F("rsa-chain.pem"), &a, err, sizeof err), 0);
    assert_int_equal(a.n, 3);
    for (size_t i = 0; i < a.n; i++) {
        assert_int_equal(a.tas[i].flags, BR_X509_TA_CA);
        assert_true(a.tas[i].dn.len > 0);
    }
    assert_int_equal(a.tas[0].pkey.key_type, BR_KEYTYPE_RSA);
    assert_int_equal(a.tas[2].pkey.key_type, BR_KEYTYPE_EC); /* the test root */
    sl_tls_anchors_free(&a);
    assert_int_equal(sl_tls_read_anchors(F("garbage.pem"), &a, err, sizeof err), -1);
    assert_non_null(strstr(err, "holds no PEM block"));
    assert_int_equal(a.n, 0);
}

/* ---- a BearSSL client on the other end of a socket pair ---------------- */

typedef struct client {
    br_ssl_client_context cc;
    br_x509_minimal_context unused;
    br_x509_knownkey_context kk;
    unsigned char q[BR_EC_KBUF_PUB_MAX_SIZE];
    unsigned char buf[BR_SSL_BUFSIZE_BIDI];
    int fd;
} client;

static void no_dn(void *ctx, const void *b, size_t n) {}

static void client_init(client *c, int fd, unsigned vmin, unsigned vmax)
{
    char err[256];
    sl_tls_chain ch;
    assert_int_equal(sl_tls_read_chain(F("ec.pem"), &ch, err, sizeof err), 0);
    br_x509_decoder_context dc;
    br_x509_decoder_init(&dc, no_dn, NULL);
    br_x509_decoder_push(&dc, ch.certs[0].data, ch.certs[0].data_len);
    const br_x509_pkey *pk = br_x509_decoder_get_pkey(&dc);
    assert_non_null(pk);
    memcpy(c->q, pk->key.ec.q, pk->key.ec.qlen);
    br_ec_public_key pub = {.curve = pk->key.ec.curve, .q = c->q, .qlen = pk->key.ec.qlen};
    sl_tls_chain_free(&ch);
    /* Trust exactly the server's key: chain validation is not under test. */
    br_x509_knownkey_init_ec(&c->kk, &pub, BR_KEYTYPE_KEYX | BR_KEYTYPE_SIGN);
    br_ssl_client_init_full(&c->cc, &c->unused, NULL, 0);
    br_ssl_engine_set_x509(&c->cc.eng, &c->kk.vtable);
    br_ssl_engine_set_versions(&c->cc.eng, vmin, vmax);
    static const char *alpn[] = {"h2", "http/1.1"};
    br_ssl_engine_set_protocol_names(&c->cc.eng, alpn, 2);
    br_ssl_engine_set_buffer(&c->cc.eng, c->buf, sizeof c->buf, 1);
    assert_true(br_ssl_client_reset(&c->cc, "localhost", 0));
    c->fd = fd;
}

/* Moves records between the client engine and the socket; 1 on progress. */
static int client_pump(client *c)
{
    br_ssl_engine_context *e = &c->cc.eng;
    int progress = 0;
    unsigned st = br_ssl_engine_current_state(e);
    size_t len;
    if (st & BR_SSL_SENDREC) {
        unsigned char *b = br_ssl_engine_sendrec_buf(e, &len);
        ssize_t n = send(c->fd, b, len, MSG_NOSIGNAL);
        if (n > 0) {
            br_ssl_engine_sendrec_ack(e, (size_t)n);
            progress = 1;
        }
    }
    if (st & BR_SSL_RECVREC) {
        unsigned char *b = br_ssl_engine_recvrec_buf(e, &len);
        ssize_t n = recv(c->fd, b, len, 0);
        if (n > 0) {
            br_ssl_engine_recvrec_ack(e, (size_t)n);
            progress = 1;
        }
    }
    return progress;
}

typedef struct pair {
    const sl_tls_ops *ops;
    sl_tls_ctx *ctx;
    sl_tls_conn *t;
    int sfd, cfd;
} pair;

static void pair_open(pair *p)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p->sfd = sv[0];
    p->cfd = sv[1];
    p->ops = &sl_tls_server_ops;
    char err[512];
    p->ctx = p->ops->ctx_new(F("ec.pem"), F("ec.key"), err, sizeof err);
    assert_non_null(p->ctx);
    p->t = p->ops->conn_new(p->ctx);
    assert_non_null(p->t);
}

static void pair_close(pair *p)
{
    p->ops->conn_free(p->t);
    p->ops->ctx_free(p->ctx);
    close(p->sfd);
    close(p->cfd);
}

/* Runs both sides until the server's recv returns data or fails. */
static ssize_t drive(pair *p, client *c, char *buf, size_t len)
{
    for (int i = 0; i < 10000; i++) {
        client_pump(c);
        ssize_t n = p->ops->recv(p->t, p->sfd, buf, len);
        if (n >= 0 || errno != EAGAIN)
            return n;
        if (br_ssl_engine_current_state(&c->cc.eng) == BR_SSL_CLOSED && !client_pump(c))
            return -2;
    }
    return -3;
}

static void handshake_and_data(void **state)
{
    pair p;
    pair_open(&p);
    static client c;
    client_init(&c, p.cfd, BR_TLS10, BR_TLS12);
    assert_true(p.ops->handshaking(p.t));
    /* The client's request goes in as soon as the engine takes app data. */
    static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
    br_ssl_engine_context *ce = &c.cc.eng;
    for (int i = 0; i < 10000 && !(br_ssl_engine_current_state(ce) & BR_SSL_SENDAPP); i++) {
        client_pump(&c);
        char tmp[1];
        p.ops->recv(p.t, p.sfd, tmp, 0);
    }
    assert_true(br_ssl_engine_current_state(ce) & BR_SSL_SENDAPP);
    size_t alen;
    unsigned char *ab = br_ssl_engine_sendapp_buf(ce, &alen);
    memcpy(ab, req, sizeof req - 1);
    br_ssl_engine_sendapp_ack(ce, sizeof req - 1);
    br_ssl_engine_flush(ce, 0);
    char got[256];
    ssize_t n = drive(&p, &c, got, sizeof got);
    assert_int_equal(n, sizeof req - 1);
    assert_memory_equal(got, req, sizeof req - 1);
    assert_false(p.ops->handshaking(p.t));
    assert_string_equal(p.ops->server_name(p.t), "localhost");

    br_ssl_session_parameters sp;
    br_ssl_engine_get_session_parameters(ce, &sp);
    assert_int_equal(sp.version, BR_TLS12);
    assert_true(sp.cipher_suite == BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 ||
                sp.cipher_suite == BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 ||
                sp.cipher_suite == BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256);
    assert_string_equal(br_ssl_engine_get_selected_protocol(ce), "http/1.1");

    /* A response larger than one output record arrives whole. */
    static char resp[20000];
    memset(resp, 'x', sizeof resp);
    size_t sent = 0, seen = 0;
    for (int i = 0; i < 100000 && seen < sizeof resp; i++) {
        if (sent < sizeof resp) {
            ssize_t k = p.ops->send(p.t, p.sfd, resp + sent, sizeof resp - sent);
            if (k > 0)
                sent += (size_t)k;
        }
        assert_true(p.ops->flush(p.t, p.sfd) >= 0);
        client_pump(&c);
        if (br_ssl_engine_current_state(ce) & BR_SSL_RECVAPP) {
            unsigned char *b = br_ssl_engine_recvapp_buf(ce, &alen);
            for (size_t j = 0; j < alen; j++)
                assert_int_equal(b[j], 'x');
            seen += alen;
            br_ssl_engine_recvapp_ack(ce, alen);
        }
    }
    assert_int_equal(seen, sizeof resp);
    p.ops->close_notify(p.t, p.sfd);
    pair_close(&p);
}

static void old_versions_refused(void **state)
{
    pair p;
    pair_open(&p);
    static client c;
    client_init(&c, p.cfd, BR_TLS10, BR_TLS11);
    char got[64];
    ssize_t n = drive(&p, &c, got, sizeof got);
    assert_true(n == -1 || n == -2);
    if (n == -1)
        assert_int_equal(errno, EPROTO);
    pair_close(&p);
}

/* ---- client certificates (client_ca) -------------------------------- */

/* The client presents ec.pem with its issuer (inter.pem) and ec.key; the
 * server trusts `client_ca` and may require a certificate. Returns what
 * the server's recv got once the client sent a request: > 0 served,
 * -1/-2 refused in the handshake. */
static ssize_t mtls_case(const char *client_ca, int require, int present)
{
    char err[512];
    pair p = {.ops = &sl_tls_server_ops};
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv), 0);
    p.sfd = sv[0];
    p.cfd = sv[1];
    p.ctx = p.ops->ctx_new(F("ec.pem"), F("ec.key"), err, sizeof err);
    assert_non_null(p.ctx);
    assert_int_equal(p.ops->ctx_client_auth(p.ctx, client_ca, require, err, sizeof err), 0);
    p.t = p.ops->conn_new(p.ctx);
    assert_non_null(p.t);

    static client c;
    client_init(&c, p.cfd, BR_TLS12, BR_TLS12);
    sl_tls_chain leaf, inter;
    sl_tls_key key;
    assert_int_equal(sl_tls_read_chain(F("ec.pem"), &leaf, err, sizeof err), 0);
    assert_int_equal(sl_tls_read_chain(F("inter.pem"), &inter, err, sizeof err), 0);
    assert_int_equal(sl_tls_read_key(F("ec.key"), &key, err, sizeof err), 0);
    br_x509_certificate chain[2] = {leaf.certs[0], inter.certs[0]};
    if (present) {
        br_ssl_client_set_single_ec(&c.cc, chain, 2, &key.ec, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
                                    br_ec_get_default(), br_ecdsa_sign_asn1_get_default());
        assert_true(br_ssl_client_reset(&c.cc, "localhost", 0));
    }
    static const char req[] = "GET / HTTP/1.1\r\n\r\n";
    br_ssl_engine_context *ce = &c.cc.eng;
    for (int i = 0; i < 10000 && br_ssl_engine_current_state(ce) != BR_SSL_CLOSED &&
                    !(br_ssl_engine_current_state(ce) & BR_SSL_SENDAPP);
         i++) {
        client_pump(&c);
        char tmp[1];
        if (p.ops->recv(p.t, p.sfd, tmp, 0) < 0 && errno != EAGAIN)
            break;
    }
    if (br_ssl_engine_current_state(ce) & BR_SSL_SENDAPP) {
        size_t alen;
        unsigned char *ab = br_ssl_engine_sendapp_buf(ce, &alen);
        memcpy(ab, req, sizeof req - 1);
        br_ssl_engine_sendapp_ack(ce, sizeof req - 1);
        br_ssl_engine_flush(ce, 0);
    }
    char got[64];
    ssize_t n = drive(&p, &c, got, sizeof got);
    pair_close(&p);
    sl_tls_chain_free(&leaf);
    sl_tls_chain_free(&inter);
    sl_tls_key_free(&key);
    return n;
}

static void client_certificates(void **state)
{
    /* ca.pem is the root of ec.pem's chain. */
    assert_int_equal(mtls_case(F("ca.pem"), 1, 1), 18);
    ssize_t n = mtls_case(F("ca.pem"), 1, 0); /* required, none sent */
    assert_true(n == -1 || n == -2);
    assert_int_equal(mtls_case(F("ca.pem"), 0, 0), 18); /* optional: served */
    /* A CA that did not issue the chain (ec.pem itself as the only CA). */
    n = mtls_case(F("ec.pem"), 1, 1);
    assert_true(n == -1 || n == -2);
    n = mtls_case(F("ec.pem"), 0, 1); /* optional: an invalid one is ignored */
    assert_int_equal(n, 18);
}

static void reload_keeps_a_working_pair(void **state)
{
    char err[512];
    const sl_tls_ops *ops = &sl_tls_server_ops;
    sl_tls_ctx *ctx = ops->ctx_new(F("ec.pem"), F("rsa.key"), err, sizeof err);
    assert_null(ctx);
    assert_non_null(strstr(err, "does not belong"));
    ctx = ops->ctx_new(F("ec.pem"), F("ec.key"), err, sizeof err);
    assert_non_null(ctx);
    assert_int_equal(ops->ctx_reload(ctx, err, sizeof err), 0);
    sl_tls_conn *t = ops->conn_new(ctx);
    assert_non_null(t);
    ops->ctx_free(ctx); /* the connection holds its pair */
    ops->conn_free(t);
}

static void memory_per_connection(void **state)
{
    size_t n = sl_tls_server_ops.conn_bytes;
    printf("TLS connection: %zu bytes (buffers %d + %d)\n", n, SL_TLS_IBUF, SL_TLS_OBUF);
    assert_true(n >= SL_TLS_IBUF + SL_TLS_OBUF);
    assert_true(n < SL_TLS_IBUF + SL_TLS_OBUF + 8192);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_chains_and_keys),
        cmocka_unit_test(unusable_files_say_why),
        cmocka_unit_test(reads_trust_anchors),
        cmocka_unit_test(handshake_and_data),
        cmocka_unit_test(client_certificates),
        cmocka_unit_test(old_versions_refused),
        cmocka_unit_test(reload_keeps_a_working_pair),
        cmocka_unit_test(memory_per_connection),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
