/*
 * Workers, listeners and shutdown. Each worker thread owns one libev loop
 * and one upstream multi handle, and accepts on its own SO_REUSEPORT
 * listening socket, so the kernel spreads connections across cores and
 * nothing on the request path is shared between threads; the connections
 * themselves are conn.c's. What the workers do share is the connection
 * limit: when it is reached, an idle keep-alive connection is closed to make
 * room before a new client is refused. Listeners may also come from
 * systemd or from the instance this one replaces (server/handoff.h); then
 * their number need not match the worker count, and every listener is
 * still served, because a listener nobody accepts on is a queue the kernel
 * keeps filling. SIGTERM, sl_server_stop or a completed hand-off drains.
 */
#define _GNU_SOURCE /* accept4 */
#include <arpa/inet.h>
#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "server/handoff.h"
#include "server/listen.h"
#include "core/accesslog.h"
#include "server/server_internal.h"
#include "upstream/upstream.h"

static sl_worker *workers;
static int worker_count;
/* The process's listeners. A listener is closed by the last worker that
 * stops accepting on it (refs), never under another worker's watcher. */
static int listeners[SL_LISTEN_MAX];
static atomic_int listener_refs[SL_LISTEN_MAX];
static int listener_count;
static sl_handoff *handoff; /* worker 0's thread only */

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
        sl_listen_format(&ss, peer, sizeof peer);
        /* `listen` speaks TLS when the spec has `tls:`; listen_plain never. */
        sl_srv_conn_open(w, fd, peer, io != &w->plain_io && sl_srv_tls_enabled());
    }
}

/* ---- workers and shutdown --------------------------------------------- */

/* After the deadline, requests that were arriving get this long to be read
 * and answered; then everything closes. */
#define SL_DRAIN_LAST_MS 1000

static void drain_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_worker *w = t->data;
    if (!w->drain_final && sl_srv_drain_deadline(w) > 0) {
        w->drain_final = 1;
        ev_timer_set(&w->drain_timer, ms(SL_DRAIN_LAST_MS), 0.);
        ev_timer_start(loop, &w->drain_timer);
        return;
    }
    if (w->conn_count)
        sl_log_warn("worker %d: closing %u connection(s) at the end of the drain", w->id,
                    w->conn_count);
    while (w->conns)
        sl_srv_conn_close(w->conns);
    ev_break(loop, EVBREAK_ONE);
}

static void stop_accepting(sl_worker *w)
{
    for (int i = 0; i < w->nlisten; i++) {
        int j = w->listen_idx[i];
        ev_io_stop(w->loop, &w->accept_io[i]);
        if (atomic_fetch_sub(&listener_refs[j], 1) == 1) {
            /* Without a hand-off this resets what waits in the queue; with
             * one (or under systemd) another process holds the socket. */
            close(listeners[j]);
        }
    }
    w->nlisten = 0;
    if (w->plain_fd >= 0) {
        ev_io_stop(w->loop, &w->plain_io);
        close(w->plain_fd);
        w->plain_fd = -1;
    }
}

/* Stop accepting and drain. Connections keep being served: responses now
 * carry Connection: close, a keep-alive client gets its next request
 * answered (and then the close) rather than a connection closed under it,
 * and the deadline ends what is left. */
static void stop_cb(struct ev_loop *loop, ev_async *a, int revents)
{
    sl_worker *w = a->data;
    if (w->stopping)
        return;
    w->stopping = 1;
    if (w->id == 0) {
        sl_handoff_close(handoff);
        handoff = NULL;
    }
    stop_accepting(w);
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

/* glibc keeps freed memory in its heaps (only the top of each is given
 * back), so the requests of a burst would pin the burst's peak RSS for
 * the process's life. Once a second each worker compares the connections
 * it is busy with to the most it has been busy with since it last
 * trimmed; when a burst of at least SL_TRIM_MIN has more than halved,
 * malloc_trim returns the free pages to the system. A trim walks the
 * heap, so it runs once per burst, not once a second. */
#define SL_TRIM_MIN 256

static void trim_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)loop;
    (void)revents;
    sl_worker *w = t->data;
    uint32_t idle = 0;
    for (int q = 0; q < SL_IDLE_QUEUES; q++)
        idle += atomic_load_explicit(&w->idle_count[q], memory_order_relaxed);
    uint32_t busy = w->conn_count > idle ? w->conn_count - idle : 0;
    if (busy > w->busy_peak)
        w->busy_peak = busy;
    if (w->busy_peak >= SL_TRIM_MIN && busy < w->busy_peak / 2) {
#ifdef __GLIBC__
        malloc_trim(0);
#endif
        w->busy_peak = busy;
    }
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

static void handed_over(void *ud, long pid)
{
    sl_log_info("drain after hand-off to pid %ld (deadline %u ms)", pid, workers[0].cfg->drain_ms);
    sl_server_stop();
}

/* SIGHUP is the operator's reload: reopen the access log (logrotate) and
 * re-read the TLS certificate and key (open connections keep the pair they
 * started with). Once the loop runs it owns the signal. */
static void sighup_cb(struct ev_loop *loop, ev_signal *s, int revents)
{
    (void)loop;
    (void)s;
    (void)revents;
    sl_access_reopen();
    sl_srv_tls_reload();
}

static void free_workers(void)
{
    for (int i = 0; i < worker_count; i++) {
        sl_worker *w = &workers[i];
        if (w->proxy_state_free)
            w->proxy_state_free(w->proxy_state);
        if (w->upstream)
            sl_upstream_free(w->upstream);
        if (w->plain_fd >= 0)
            close(w->plain_fd);
        if (w->loop)
            ev_loop_destroy(w->loop);
        free(w->listen_idx);
        free(w->accept_io);
    }
    /* Listeners no stopped worker closed (start-up failed part way). */
    for (int j = 0; j < listener_count; j++)
        if (atomic_load(&listener_refs[j]) > 0)
            close(listeners[j]);
    listener_count = 0;
    free(workers);
    workers = NULL;
    worker_count = 0;
}

static int start_worker(sl_worker *w, const sl_server_config *cfg, char *err, size_t errlen)
{
    w->cfg = cfg;
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
    if (cfg->table->listen_plain) {
        /* The health-check listener is this process's own (SO_REUSEPORT),
         * not part of a hand-off: only the client listener is handed over. */
        struct sockaddr_storage ps;
        socklen_t pslen;
        if (sl_listen_parse(cfg->table->listen_plain, &ps, &pslen) != 0) {
            snprintf(err, errlen, "cannot parse listen_plain address '%s'", cfg->table->listen_plain);
            return -1;
        }
        w->plain_fd = sl_listen_open(&ps, pslen, err, errlen);
        if (w->plain_fd < 0)
            return -1;
        ev_io_init(&w->plain_io, accept_cb, w->plain_fd, EV_READ);
        w->plain_io.data = w;
        ev_io_start(w->loop, &w->plain_io);
    }
    ev_async_init(&w->stop_async, stop_cb);
    w->stop_async.data = w;
    ev_async_start(w->loop, &w->stop_async);
    /* Unreferenced: it never keeps a draining loop alive. */
    ev_timer_init(&w->trim_timer, trim_cb, 1., 1.);
    w->trim_timer.data = w;
    ev_timer_start(w->loop, &w->trim_timer);
    ev_unref(w->loop);
    ev_async_init(&w->shed_async, shed_cb);
    w->shed_async.data = w;
    ev_async_start(w->loop, &w->shed_async);
    return 0;
}

/* Every listener is served and every worker accepts: with N listeners and
 * M workers, pair k = 0 .. max(N, M) - 1 as (worker k % M, listener k % N).
 * Equal counts give each worker its own socket; more listeners than
 * workers (taken over from a bigger instance) give some workers several;
 * fewer (one systemd socket) let workers share one, the kernel handing
 * each connection to one accept. */
static int assign_listeners(char *err, size_t errlen)
{
    int m = worker_count, n = listener_count, k_max = n > m ? n : m;
    for (int i = 0; i < m; i++) {
        sl_worker *w = &workers[i];
        int cap = k_max / m + 1;
        w->listen_idx = calloc((size_t)cap, sizeof *w->listen_idx);
        w->accept_io = calloc((size_t)cap, sizeof *w->accept_io);
        if (!w->listen_idx || !w->accept_io) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
    }
    for (int j = 0; j < n; j++)
        atomic_init(&listener_refs[j], 0);
    for (int k = 0; k < k_max; k++) {
        sl_worker *w = &workers[k % m];
        int j = k % n, i = w->nlisten++;
        w->listen_idx[i] = j;
        atomic_fetch_add(&listener_refs[j], 1);
        ev_io_init(&w->accept_io[i], accept_cb, listeners[j], EV_READ);
        w->accept_io[i].data = w;
        ev_io_start(w->loop, &w->accept_io[i]);
    }
    return 0;
}

/* Fills `listeners` from the instance being replaced, from systemd, or by
 * binding one per worker. On a hand-off, *hc keeps the control connection
 * open for sl_handoff_commit. */
static int acquire_listeners(const sl_server_config *cfg, struct sockaddr_storage *ss,
                             socklen_t sslen, sl_handoff_client *hc, char *err, size_t errlen)
{
    char why[200];
    if (cfg->upgrade_from && *cfg->upgrade_from) {
        if (sl_handoff_connect(cfg->upgrade_from, hc, err, errlen) != 0)
            return -1;
        for (int j = 0; j < hc->nfds; j++) {
            if (!sl_listen_matches(hc->fds[j], ss, why, sizeof why)) {
                snprintf(err, errlen, "hand-off refused, pid %ld keeps serving: %s", hc->old_pid,
                         why);
                sl_handoff_refuse(hc, "listen address differs");
                return -1;
            }
        }
        memcpy(listeners, hc->fds, sizeof(int) * (size_t)hc->nfds);
        listener_count = hc->nfds;
        return 0;
    }
    int n = sl_listen_systemd(listeners, SL_LISTEN_MAX, err, errlen);
    if (n < 0)
        return -1;
    if (n > 0) {
        listener_count = n;
        for (int j = 0; j < n; j++) {
            if (!sl_listen_matches(listeners[j], ss, why, sizeof why)) {
                snprintf(err, errlen, "socket activation: %s", why);
                return -1;
            }
        }
        return 0;
    }
    for (int i = 0; i < worker_count; i++) {
        int fd = sl_listen_open(ss, sslen, err, errlen);
        if (fd < 0)
            return -1;
        listeners[listener_count++] = fd;
        if (i == 0) {
            /* With port 0 the first bind picks the port; the others share it. */
            getsockname(fd, (struct sockaddr *)ss, &sslen);
        }
    }
    return 0;
}

int sl_server_run(const sl_server_config *cfg, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    sl_handoff_client hc = {.conn = -1};
    int upgrading = cfg->upgrade_from && *cfg->upgrade_from;
    int controlled = cfg->control_path && *cfg->control_path;
    if (!cfg->handlers || !cfg->handlers->request) {
        snprintf(err, errlen, "no request handler registered");
        return -1;
    }
    if (sl_listen_parse(cfg->listen, &ss, &sslen) != 0) {
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
    listener_count = 0;
    for (int i = 0; i < n; i++)
        workers[i].id = i;
    for (int i = 0; i < n; i++)
        workers[i].plain_fd = -1;
    if (sl_srv_tls_start(cfg, err, errlen) != 0) {
        free_workers();
        return -1;
    }
    for (int i = 0; i < n; i++) {
        if (start_worker(&workers[i], cfg, err, errlen) != 0) {
            free_workers();
            sl_srv_tls_stop();
            return -1;
        }
    }
    /* A fresh start claims the control socket before binding, so a second
     * instance started by mistake fails here instead of sharing the port. */
    if (!upgrading && controlled) {
        handoff = sl_handoff_serve(workers[0].loop, cfg->control_path, handed_over, NULL, err,
                                   errlen);
        if (!handoff) {
            free_workers();
            sl_srv_tls_stop();
            return -1;
        }
    }
    if (acquire_listeners(cfg, &ss, sslen, &hc, err, errlen) != 0 ||
        assign_listeners(err, errlen) != 0) {
        sl_handoff_close(handoff);
        handoff = NULL;
        if (hc.conn >= 0)
            sl_handoff_refuse(&hc, "start-up failed");
        free_workers();
        sl_srv_tls_stop();
        return -1;
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
    char where[128];
    sl_listen_format(&ss, where, sizeof where);
    if (started < n && hc.conn >= 0)
        sl_handoff_refuse(&hc, "start-up failed");
    if (started == n && upgrading) {
        /* Serving already: from here on the old instance may go. */
        char why[256];
        if (sl_handoff_commit(&hc, why, sizeof why) != 0)
            sl_log_warn("hand-off: %s", why);
        else
            sl_log_info("hand-off: took %d listener(s) over from pid %ld", listener_count,
                        hc.old_pid);
        if (controlled) {
            handoff = sl_handoff_serve(workers[0].loop, cfg->control_path, handed_over, NULL, why,
                                       sizeof why);
            if (!handoff)
                sl_log_warn("no control socket, so no later hand-off: %s", why);
        }
    }
    if (handoff)
        sl_handoff_offer(handoff, listeners, listener_count, where);
    if (started == n) {
        sl_log_info("sluice listening on %s (%d worker%s, %d listener%s, spec %.12s)", where,
                    worker_count, worker_count == 1 ? "" : "s", listener_count,
                    listener_count == 1 ? "" : "s", cfg->table->spec_sha256);
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
    sl_handoff_close(handoff);
    handoff = NULL;
    ev_signal_stop(workers[0].loop, &sighup);
    free_workers();
    sl_srv_tls_stop();
    if (started < n)
        return -1;
    sl_log_info("sluice stopped");
    return 0;
}
