/*
 * Workers, listeners and shutdown. Each worker thread owns one libev loop,
 * one SO_REUSEPORT listening socket and one upstream multi handle, so the
 * kernel spreads connections across cores and nothing on the request path
 * is shared between threads; the connections themselves are conn.c's.
 * What the workers do share is the connection limit: when it is reached, an
 * idle keep-alive connection is closed to make room before a new client is
 * refused, and SIGTERM (or sl_server_stop) drains every worker.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/server_internal.h"
#include "upstream/upstream.h"

static sl_worker *workers;
static int worker_count;

struct ev_loop *sl_worker_loop(sl_worker *w) { return w->loop; }
sl_upstream *sl_worker_upstream(sl_worker *w) { return w->upstream; }
const sl_table *sl_worker_table(sl_worker *w) { return w->cfg->table; }
int sl_worker_id(sl_worker *w) { return w->id; }
int sl_worker_count(void) { return worker_count; }
void *sl_worker_proxy_state(sl_worker *w) { return w->proxy_state; }
void sl_worker_set_proxy_state(sl_worker *w, void *state, void (*free_fn)(void *))
{
    w->proxy_state = state;
    w->proxy_state_free = free_fn;
}

static double ms(uint32_t v) { return (double)v / 1000.0; }

/* ---- accept ----------------------------------------------------------- */

static void format_peer(const struct sockaddr_storage *ss, char *out, size_t n)
{
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof host);
        port = ntohs(a->sin_port);
        snprintf(out, n, "%s:%d", host, port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof host);
        port = ntohs(a->sin6_port);
        snprintf(out, n, "[%s]:%d", host, port);
    } else {
        snprintf(out, n, "unix");
    }
}

/* This worker has no idle connection to give up: ask the one with the best
 * candidate (never authenticated before authenticated) to close one, so
 * the client's retry finds a slot. Another worker's connections are only
 * ever touched on its own thread. */
static void ask_peer_to_shed(sl_worker *self)
{
    for (int q = 0; q < SL_IDLE_QUEUES; q++) {
        for (int i = 0; i < worker_count; i++) {
            sl_worker *w = &workers[i];
            if (w == self || atomic_load_explicit(&w->idle_count[q], memory_order_relaxed) == 0)
                continue;
            atomic_fetch_add(&w->shed_requests, 1);
            ev_async_send(w->loop, &w->shed_async);
            return;
        }
    }
}

static void shed_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sl_worker *w = a->data;
    unsigned n = atomic_exchange(&w->shed_requests, 0);
    while (n-- > 0 && sl_srv_shed_idle(w))
        ;
}

/* Over the limit: a fast, explicit refusal beats a queue. Built per
 * refusal (workers share no mutable state); the length is computed, never
 * typed. */
static void refuse(int fd)
{
    static const char busy_body[] =
        "{\"error\":{\"type\":\"overloaded_error\",\"message\":\"too many connections\"}}\n";
    char busy[256];
    int busy_len = snprintf(busy, sizeof busy,
                            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\nRetry-After: 1\r\n\r\n%s",
                            sizeof busy_body - 1, busy_body);
    ssize_t ignored = send(fd, busy, (size_t)busy_len, MSG_NOSIGNAL);
    (void)ignored;
    close(fd);
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sl_worker *w = io->data;
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(io->fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                sl_log_warn("accept: %s", strerror(errno));
            return;
        }
        /* Slots held by idle keep-alive connections are the cheapest to
         * take back: the client of one can reconnect at no cost, while a
         * refused one has nothing yet. */
        if (sl_srv_conn_total() >= w->cfg->table->server.max_connections && !sl_srv_shed_idle(w)) {
            ask_peer_to_shed(w);
            refuse(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        char peer[64];
        format_peer(&ss, peer, sizeof peer);
        /* `listen` speaks TLS when the spec has `tls:`; listen_plain never. */
        sl_srv_conn_open(w, fd, peer, io == &w->accept_io && sl_srv_tls_enabled());
    }
}

/* ---- listen address ----------------------------------------------------- */

static int parse_listen(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon;
    memset(ss, 0, sizeof *ss);
    if (spec[0] == '[') {
        const char *end = strchr(spec, ']');
        if (!end || end[1] != ':' || (size_t)(end - spec - 1) >= sizeof host)
            return -1;
        memcpy(host, spec + 1, (size_t)(end - spec - 1));
        host[end - spec - 1] = '\0';
        colon = end + 1;
    } else {
        colon = strrchr(spec, ':');
        if (!colon || (size_t)(colon - spec) >= sizeof host)
            return -1;
        memcpy(host, spec, (size_t)(colon - spec));
        host[colon - spec] = '\0';
    }
    char *endp;
    long port = strtol(colon + 1, &endp, 10);
    if (*endp || port < 0 || port > 65535 || colon[1] == '\0')
        return -1;
    if (strcmp(host, "localhost") == 0)
        strcpy(host, "127.0.0.1");
    struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, host, &a4->sin_addr) == 1) {
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)port);
        *len = sizeof *a4;
        return 0;
    }
    if (inet_pton(AF_INET6, host, &a6->sin6_addr) == 1) {
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)port);
        *len = sizeof *a6;
        return 0;
    }
    return -1;
}

static int open_listener(struct sockaddr_storage *ss, socklen_t len, char *err, size_t errlen)
{
    int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (ss->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)ss, len) != 0 || listen(fd, 4096) != 0) {
        snprintf(err, errlen, "bind/listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* ---- workers and shutdown --------------------------------------------- */

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_worker *w = t->data;
    sl_log_warn("worker %d: drain deadline reached with %u connection(s) open", w->id,
                w->conn_count);
    while (w->conns)
        sl_srv_conn_close(w->conns);
    ev_break(loop, EVBREAK_ONE);
}

/* Stop accepting; idle connections close now, busy ones after their
 * response (after_response sees `stopping`). */
static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sl_worker *w = a->data;
    if (w->stopping)
        return;
    w->stopping = 1;
    ev_io_stop(loop, &w->accept_io);
    close(w->listen_fd);
    w->listen_fd = -1;
    if (w->plain_fd >= 0) {
        ev_io_stop(loop, &w->plain_io);
        close(w->plain_fd);
        w->plain_fd = -1;
    }
    sl_srv_close_idle(w);
    if (w->conn_count == 0) {
        ev_break(loop, EVBREAK_ONE);
        return;
    }
    ev_timer_init(&w->drain_timer, drain_timeout_cb, ms(w->cfg->drain_ms), 0.);
    w->drain_timer.data = w;
    ev_timer_start(loop, &w->drain_timer);
}

/* Handlers set up per-worker state on the worker's own thread, and every
 * worker has done so before the server says it is listening: start-up is
 * over when that line appears (tests arm fault injection on it). */
static pthread_mutex_t init_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t init_cv = PTHREAD_COND_INITIALIZER;
static int inits_done;

static void init_handlers(sl_worker *w)
{
    if (w->cfg->handlers->worker_init)
        w->cfg->handlers->worker_init(w);
    pthread_mutex_lock(&init_mu);
    inits_done++;
    pthread_cond_broadcast(&init_cv);
    pthread_mutex_unlock(&init_mu);
}

static void wait_for_inits(int n)
{
    pthread_mutex_lock(&init_mu);
    while (inits_done < n)
        pthread_cond_wait(&init_cv, &init_mu);
    pthread_mutex_unlock(&init_mu);
}

static void *worker_main(void *arg)
{
    sl_worker *w = arg;
    init_handlers(w);
    ev_run(w->loop, 0);
    return NULL;
}

void sl_server_stop(void)
{
    for (int i = 0; i < worker_count; i++)
        ev_async_send(workers[i].loop, &workers[i].stop_async);
}

static void signal_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    sl_log_info("signal %d: draining (deadline %u ms)", s->signum, workers[0].cfg->drain_ms);
    sl_server_stop();
    ev_signal_stop(loop, s);
}

/* SIGHUP re-reads the TLS certificate and key; open connections keep the
 * pair they started with. */
static void sighup_cb(struct ev_loop *loop, ev_signal *s, int revents) { sl_srv_tls_reload(); }

static void free_workers(void)
{
    for (int i = 0; i < worker_count; i++) {
        sl_worker *w = &workers[i];
        if (w->proxy_state_free)
            w->proxy_state_free(w->proxy_state);
        if (w->upstream)
            sl_upstream_free(w->upstream);
        if (w->listen_fd >= 0)
            close(w->listen_fd);
        if (w->plain_fd >= 0)
            close(w->plain_fd);
        if (w->loop)
            ev_loop_destroy(w->loop);
    }
    free(workers);
    workers = NULL;
    worker_count = 0;
}

static int start_worker(sl_worker *w, const sl_server_config *cfg, struct sockaddr_storage *ss,
                        socklen_t *sslen, char *err, size_t errlen)
{
    w->cfg = cfg;
    w->listen_fd = open_listener(ss, *sslen, err, errlen);
    if (w->listen_fd < 0)
        return -1;
    if (w->id == 0) {
        /* With port 0 the first bind picks the port; the others share it. */
        getsockname(w->listen_fd, (struct sockaddr *)ss, sslen);
    }
    w->loop = w->id == 0 ? ev_default_loop(EVFLAG_AUTO) : ev_loop_new(EVFLAG_AUTO);
    if (!w->loop) {
        snprintf(err, errlen, "cannot create event loop");
        return -1;
    }
    w->upstream = sl_upstream_new(w->loop);
    if (!w->upstream) {
        snprintf(err, errlen, "cannot create upstream client");
        return -1;
    }
    for (int q = 0; q < SL_IDLE_QUEUES; q++)
        atomic_init(&w->idle_count[q], 0);
    atomic_init(&w->shed_requests, 0);
    ev_io_init(&w->accept_io, accept_cb, w->listen_fd, EV_READ);
    w->accept_io.data = w;
    ev_io_start(w->loop, &w->accept_io);
    if (cfg->table->listen_plain) {
        struct sockaddr_storage ps;
        socklen_t pslen;
        if (parse_listen(cfg->table->listen_plain, &ps, &pslen) != 0) {
            snprintf(err, errlen, "cannot parse listen_plain address '%s'",
                     cfg->table->listen_plain);
            return -1;
        }
        w->plain_fd = open_listener(&ps, pslen, err, errlen);
        if (w->plain_fd < 0)
            return -1;
        ev_io_init(&w->plain_io, accept_cb, w->plain_fd, EV_READ);
        w->plain_io.data = w;
        ev_io_start(w->loop, &w->plain_io);
    }
    ev_async_init(&w->stop_async, stop_cb);
    w->stop_async.data = w;
    ev_async_start(w->loop, &w->stop_async);
    ev_async_init(&w->shed_async, shed_cb);
    w->shed_async.data = w;
    ev_async_start(w->loop, &w->shed_async);
    return 0;
}

int sl_server_run(const sl_server_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!cfg->handlers || !cfg->handlers->request) {
        snprintf(err, errlen, "no request handler registered");
        return -1;
    }
    if (parse_listen(cfg->listen, &ss, &sslen) != 0) {
        snprintf(err, errlen, "cannot parse listen address '%s' (want HOST:PORT or [V6]:PORT)",
                 cfg->listen);
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);

    int n = cfg->workers < 1 ? 1 : cfg->workers;
    workers = calloc((size_t)n, sizeof *workers);
    if (!workers) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    worker_count = n;
    for (int i = 0; i < n; i++) {
        workers[i].id = i;
        workers[i].listen_fd = -1;
        workers[i].plain_fd = -1;
    }
    if (sl_srv_tls_start(cfg, err, errlen) != 0) {
        free_workers();
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (start_worker(&workers[i], cfg, &ss, &sslen, err, errlen) != 0) {
            free_workers();
            sl_srv_tls_stop();
            return -1;
        }
    }

    ev_signal sigterm, sigint, sighup;
    ev_signal_init(&sigterm, signal_cb, SIGTERM);
    ev_signal_init(&sigint, signal_cb, SIGINT);
    ev_signal_init(&sighup, sighup_cb, SIGHUP);
    ev_signal_start(workers[0].loop, &sigterm);
    ev_signal_start(workers[0].loop, &sigint);
    ev_signal_start(workers[0].loop, &sighup);

    inits_done = 0;
    int started = 1;
    for (; started < worker_count; started++) {
        if (pthread_create(&workers[started].thread, NULL, worker_main, &workers[started]) != 0) {
            snprintf(err, errlen, "cannot start worker thread");
            sl_server_stop();
            break;
        }
    }
    init_handlers(&workers[0]);
    wait_for_inits(started);
    if (started == n) {
        char where[128];
        format_peer(&ss, where, sizeof where);
        sl_log_info("sluice listening on %s (%d worker%s, spec %.12s)", where, worker_count,
                    worker_count == 1 ? "" : "s", cfg->table->spec_sha256);
        /* A line tests and scripts can wait for. */
        fprintf(stderr, "sluice listening on %s\n", where);
        if (cfg->table->listen_plain)
            fprintf(stderr, "sluice plain HTTP on %s\n", cfg->table->listen_plain);
        fflush(stderr);
    }
    ev_run(workers[0].loop, 0);
    for (int i = 1; i < started; i++)
        pthread_join(workers[i].thread, NULL);
    ev_signal_stop(workers[0].loop, &sigterm);
    ev_signal_stop(workers[0].loop, &sigint);
    ev_signal_stop(workers[0].loop, &sighup);
    free_workers();
    sl_srv_tls_stop();
    if (started < n)
        return -1;
    sl_log_info("sluice stopped");
    return 0;
}
