/*
 * The libev side of libcurl's multi interface: curl says which sockets it
 * wants watched (socket callback) and when it next needs a timeout (timer
 * callback); we mirror that into ev_io and ev_timer watchers and hand
 * events back with curl_multi_socket_action, then let upstream.c collect
 * finished transfers. Also the multi handles of a loop: the first, and the
 * extra ones HTTP/1.1 over TLS is spread over, freed when left idle.
 */
#include <curl/curl.h>
#include <ev.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "upstream/upstream.h"
#include "upstream/upstream_internal.h"
#include "upstream/urlcache.h"

/* ---- curl -> libev ---------------------------------------------------- */

/* curl could not finish its work (out of memory, or our socket callback
 * failed): nothing would wake the transfers again until a watchdog fired,
 * so ask curl to run its timeouts again shortly. */
static void rearm_after_error(sl_upstream *u, CURLMcode rc)
{
    if (rc == CURLM_OK)
        return;
    ev_timer_stop(u->loop, &u->timer);
    ev_timer_set(&u->timer, 0.01, 0.);
    ev_timer_start(u->loop, &u->timer);
}

static void watch_drop(sl_upstream *u, sock_watch *sw)
{
    ev_io_stop(u->loop, &sw->io);
    if ((size_t)sw->fd < u->nbyfd && u->byfd[sw->fd] == sw)
        u->byfd[sw->fd] = NULL;
    free(sw);
}

static void io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    sock_watch *sw = (sock_watch *)w;
    sl_upstream *u = sw->u;
    if (sw->parked) {
        /* An idle cached connection became readable: the server closed it
         * (or sent something unasked). curl finds out by itself when it
         * next considers reusing it; stop watching so a closed socket
         * does not wake the loop over and over. */
        watch_drop(u, sw);
        return;
    }
    int action = (revents & EV_READ ? CURL_CSELECT_IN : 0) | (revents & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    u->in_action = 1;
    CURLMcode rc = curl_multi_socket_action(u->multi, sw->fd, action, &running);
    u->in_action = 0;
    sl_upstream_check_done(u);
    rearm_after_error(u, rc);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_upstream *u = t->data;
    int running;
    u->in_action = 1;
    CURLMcode rc = curl_multi_socket_action(u->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    for (unsigned i = 0; i < u->lost_count; i++)
        curl_multi_socket_action(u->multi, u->lost[i], CURL_CSELECT_IN | CURL_CSELECT_OUT, &running);
    u->in_action = 0;
    sl_upstream_check_done(u);
    if (u->lost_count && u->active == 0)
        u->lost_count = 0;
    rearm_after_error(u, u->lost_count ? CURLM_OUT_OF_MEMORY : rc);
}

/* Remembers sw as fd's watcher; 0, or -1 when the table cannot grow (then
 * the watcher is freed at CURL_POLL_REMOVE as before). */
static int watch_index(sl_upstream *u, curl_socket_t fd, sock_watch *sw)
{
    if (fd < 0)
        return -1;
    if ((size_t)fd >= u->nbyfd) {
        size_t n = u->nbyfd ? u->nbyfd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        sock_watch **nb = realloc(u->byfd, n * sizeof *nb);
        if (!nb)
            return -1;
        memset(nb + u->nbyfd, 0, (n - u->nbyfd) * sizeof *nb);
        u->byfd = nb;
        u->nbyfd = n;
    }
    u->byfd[fd] = sw;
    return 0;
}

/* Marks fd as a connection socket curl opened (1) or closed (0); -1 when
 * the table cannot grow (the socket is then never parked). */
static int opened_mark(sl_upstream *u, curl_socket_t fd, unsigned char v)
{
    if (fd < 0)
        return -1;
    if ((size_t)fd >= u->nopened) {
        if (!v)
            return 0;
        size_t n = u->nopened ? u->nopened : 64;
        while (n <= (size_t)fd)
            n *= 2;
        unsigned char *no = realloc(u->opened, n);
        if (!no)
            return -1;
        memset(no + u->nopened, 0, n - u->nopened);
        u->opened = no;
        u->nopened = n;
    }
    u->opened[fd] = v;
    return 0;
}

static int opened_by_curl(const sl_upstream *u, curl_socket_t fd)
{
    return fd >= 0 && (size_t)fd < u->nopened && u->opened[fd];
}

/* curl asks for a socket's events when a transfer starts on a connection
 * and says CURL_POLL_REMOVE when it ends, even though the connection stays
 * open in its cache. Stopping and freeing the watcher there and making a
 * new one for the next transfer cost an epoll_ctl per request (libev
 * re-adds the descriptor and the kernel answers EEXIST). So a watcher
 * whose socket curl lets go of is parked: it stays armed for reading,
 * and the next transfer on that connection takes it over without touching
 * epoll. It goes away when curl closes the socket (sl_upstream_close_cb) or when the
 * idle socket becomes readable (io_cb).
 *
 * Only a connection socket is parked: one curl opened through
 * sl_upstream_open_cb and will close through sl_upstream_close_cb, which
 * drops the watcher. Not every socket curl reports is one: 7.88's threaded
 * resolver reports its socketpair, says CURL_POLL_REMOVE and then closes
 * it with a plain close(), never calling CURLOPT_CLOSESOCKETFUNCTION. A
 * watcher parked on it stayed active on a closed descriptor; once the
 * number was reused and that socket closed, libev re-armed epoll for the
 * stale watcher's events on a closed descriptor and aborted ("invalid fd
 * found in epoll_ctl"). */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    sl_upstream *u = userp;
    sock_watch *sw = socketp;
    if (what == CURL_POLL_REMOVE) {
        for (unsigned i = 0; i < u->lost_count; i++)
            if (u->lost[i] == fd)
                u->lost[i] = u->lost[--u->lost_count];
        if (sw) {
            curl_multi_assign(u->multi, fd, NULL);
            if ((size_t)fd < u->nbyfd && u->byfd[fd] == sw && opened_by_curl(u, fd)) {
                sw->parked = 1;
                if (sw->io.events != EV_READ) {
                    ev_io_stop(u->loop, &sw->io);
                    ev_io_set(&sw->io, fd, EV_READ);
                    ev_io_start(u->loop, &sw->io);
                }
            } else {
                watch_drop(u, sw);
            }
        }
        return 0;
    }
    int events = (what & CURL_POLL_IN ? EV_READ : 0) | (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!sw && fd >= 0 && (size_t)fd < u->nbyfd && u->byfd[fd]) {
        sw = u->byfd[fd];
        if (sw->parked && opened_by_curl(u, fd)) {
            sw->parked = 0; /* this connection's next transfer */
            curl_multi_assign(u->multi, fd, sw);
        } else {
            /* Not a watcher this socket may inherit (a leftover of an
             * earlier socket with this number): a fresh one below. */
            watch_drop(u, sw);
            sw = NULL;
        }
    }
    if (!sw) {
        sw = calloc(1, sizeof *sw);
        if (!sw) {
            /* Poll this socket from the timer instead of losing it. */
            unsigned i = 0;
            while (i < u->lost_count && u->lost[i] != fd)
                i++;
            if (i == u->lost_count && u->lost_count < sizeof u->lost / sizeof *u->lost)
                u->lost[u->lost_count++] = fd;
            rearm_after_error(u, CURLM_OUT_OF_MEMORY);
            return 0;
        }
        sw->u = u;
        sw->fd = fd;
        ev_io_init(&sw->io, io_cb, fd, events);
        curl_multi_assign(u->multi, fd, sw);
        watch_index(u, fd, sw);
        ev_io_start(u->loop, &sw->io);
        return 0;
    }
    if (sw->io.events != events || !ev_is_active(&sw->io)) {
        ev_io_stop(u->loop, &sw->io);
        ev_io_set(&sw->io, fd, events);
        ev_io_start(u->loop, &sw->io);
    }
    return 0;
}

curl_socket_t sl_upstream_open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    sl_upstream *u = clientp;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
    if (fd != CURL_SOCKET_BAD)
        opened_mark(u, fd, 1);
    return fd;
}

static void watch_forget_fd(sl_upstream *u, curl_socket_t fd)
{
    opened_mark(u, fd, 0);
    if (fd >= 0 && (size_t)fd < u->nbyfd && u->byfd[fd])
        watch_drop(u, u->byfd[fd]);
}

/* curl closes a socket (CURLOPT_CLOSESOCKETFUNCTION): its watcher, parked
 * or not, must go first (libev must not watch a closed descriptor, whose
 * number the next accept may reuse). The connection's multi handle is the
 * one whose easy handle opened it (clientp); any other multi handle of
 * this loop holding a watcher for the number drops it too: the number is
 * about to be free, and a watcher left on it would outlive its socket. */
int sl_upstream_close_cb(void *clientp, curl_socket_t fd)
{
    sl_upstream *u = clientp;
    watch_forget_fd(u, fd);
    for (sl_upstream *s = u->first; s; s = s->next_shard)
        if (s != u)
            watch_forget_fd(s, fd);
    return close(fd);
}

static int multi_timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    sl_upstream *u = userp;
    ev_timer_stop(u->loop, &u->timer); /* also drops a fed, not yet run, "now" */
    if (timeout_ms == 0 && ev_depth(u->loop) > 0) {
        /* "As soon as possible" (a transfer was just added): fed as a
         * timer event, it runs once the current callback returns, in the
         * same round of callbacks, never re-entering curl from its own
         * callback. A zero timer took one more trip through the loop, an
         * epoll_wait of its own per request at low concurrency. Outside
         * ev_run (start-up) nothing would run a fed event, so a timer. */
        ev_feed_event(u->loop, &u->timer, EV_TIMER);
    } else if (timeout_ms >= 0) {
        ev_timer_set(&u->timer, (double)timeout_ms / 1000.0, 0.);
        ev_timer_start(u->loop, &u->timer);
    }
    return 0;
}

static void reap_cb(struct ev_loop *loop, ev_timer *t, int revents);

static sl_upstream *multi_new(struct ev_loop *loop)
{
    sl_upstream *u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->loop = loop;
    u->multi = curl_multi_init();
    if (!u->multi) {
        free(u);
        return NULL;
    }
    ev_init(&u->timer, timer_cb);
    u->timer.data = u;
    u->first = u;
    ev_timer_init(&u->reap, reap_cb, SL_UPSTREAM_SHARD_IDLE_S, 0.);
    u->reap.data = u;
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(u->multi, CURLMOPT_SOCKETDATA, u);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERFUNCTION, multi_timer_cb);
    curl_multi_setopt(u->multi, CURLMOPT_TIMERDATA, u);
    /* Keep warm connections to each provider for bursts. */
    curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS, 10000L);
    /* HTTP/2 transfers to one host become streams of one connection. */
    curl_multi_setopt(u->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    return u;
}

sl_upstream *sl_upstream_new(struct ev_loop *loop)
{
    sl_upstream *u = multi_new(loop);
    if (!u)
        return NULL;
    /* libcurl 7.88 keeps TLS sessions per easy handle, so every new
     * connection from a fresh (or differently pooled) handle did a full
     * handshake: certificate chain verified here, signed by the server.
     * A share of this loop's handles resumes them instead. Only this
     * loop's thread touches it, so it needs no lock callbacks. */
    u->share = curl_share_init();
    if (u->share)
        curl_share_setopt(u->share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    return u;
}

static void multi_free(sl_upstream *u)
{
    while (u->pooled)
        curl_easy_cleanup(u->pool[--u->pooled]);
    curl_multi_cleanup(u->multi);
    sl_urlcache_free(&u->urls);
    for (size_t i = 0; i < u->nbyfd; i++)
        if (u->byfd[i])
            watch_drop(u, u->byfd[i]);
    free(u->byfd);
    free(u->opened);
    /* After the cleanup, which may still set curl's timer (an extra multi
     * handle goes while the loop runs on). */
    ev_timer_stop(u->loop, &u->timer);
    ev_timer_stop(u->loop, &u->reap);
    free(u);
}

void sl_upstream_free(sl_upstream *u)
{
    if (!u)
        return;
    while (u->next_shard) {
        sl_upstream *s = u->next_shard;
        u->next_shard = s->next_shard;
        multi_free(s);
    }
    CURLSH *share = u->share;
    multi_free(u);
    if (share)
        curl_share_cleanup(share);
}

unsigned sl_upstream_active(const sl_upstream *u) { return u->all_active; }

/* libcurl 7.88 walks its whole connection cache twice per transfer that
 * keeps its connection: to find an idle one for the next (ConnectionExists
 * visits every connection to the host, busy ones included) and in
 * curl_multi_remove_handle (close_connect_only, up to the one this handle
 * used). Over HTTP/1.1 every transfer in flight holds a connection, so at
 * thousands in flight those walks were most of the gateway's CPU, and
 * plain HTTP avoids them by not keeping connections past
 * SL_UPSTREAM_REUSE_LIMIT. Over TLS that costs a handshake per request and
 * a closed connection in TIME-WAIT; so HTTP/1.1-over-TLS transfers are
 * spread over more multi handles of this loop instead, each with its own
 * connection cache of a few hundred. The first with room is taken, so
 * connections are reused where transfers just finished and extra handles
 * left idle when the load drops are freed by reap_cb. */
sl_upstream *sl_upstream_shard_for(sl_upstream *u)
{
    sl_upstream *last = u;
    for (sl_upstream *s = u; s; s = s->next_shard) {
        if (s->active < SL_UPSTREAM_SHARD_ACTIVE) {
            ev_timer_stop(s->loop, &s->reap);
            return s;
        }
        last = s;
    }
    sl_upstream *s = multi_new(u->loop);
    if (!s)
        return u; /* the first one takes it: slower, still correct */
    s->first = u;
    s->share = u->share;
    last->next_shard = s;
    return s;
}

static void reap_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_upstream *s = t->data;
    (void)loop;
    (void)revents;
    if (s->active)
        return;
    sl_upstream *p = s->first;
    while (p->next_shard != s)
        p = p->next_shard;
    p->next_shard = s->next_shard;
    s->share = NULL; /* the first one's */
    multi_free(s);
}
