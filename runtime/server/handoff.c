/*
 * The listener hand-off (protocol in handoff.h). Two rules shape it. The
 * old instance gives up nothing before the new one confirms, so every
 * failure mode of the new binary (crash, wrong address, slow start) leaves
 * the old one serving. And the control socket is only reachable by the
 * service's own user: it is created under a temporary name, made 0600
 * before it listens (a connect before listen() is refused, so there is no
 * window with a wider mode), renamed over the public path in one step, and
 * each peer's uid is checked again with SO_PEERCRED. A SEQPACKET socket
 * keeps message boundaries, so descriptors never straddle two reads.
 */
#define _GNU_SOURCE /* struct ucred, MSG_CMSG_CLOEXEC */
#include "server/handoff.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"

/* Descriptors per message: well under the kernel's SCM_MAX_FD (253). */
#define SL_HANDOFF_BATCH 64
/* How long the old instance waits for READY: a new binary restoring a
 * large ledger may take a while, and the old one serves meanwhile. */
#define SL_HANDOFF_READY_S 60.0
/* Bounds on the blocking steps of either side. */
#define SL_HANDOFF_IO_S 10

struct sl_handoff {
    struct ev_loop *loop;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    dev_t dev;
    ino_t ino;
    int lfd;
    ev_io accept_io;
    int conn; /* the hand-off in progress, or -1 */
    ev_io conn_io;
    ev_timer conn_timer;
    int fds[SL_LISTEN_MAX];
    int n;
    char listen[128];
    sl_handoff_taken_fn taken;
    void *ud;
};

static void io_timeouts(int fd, int seconds)
{
    struct timeval tv = {.tv_sec = seconds};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

static int send_fds(int fd, const char *msg, const int *fds, int n)
{
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = strlen(msg)};
    union {
        char buf[CMSG_SPACE(sizeof(int) * SL_HANDOFF_BATCH)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n > 0) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
    }
    return sendmsg(fd, &mh, MSG_NOSIGNAL) == (ssize_t)iov.iov_len ? 0 : -1;
}

/* ---- the running instance ---------------------------------------------- */

static void end_conn(sl_handoff *h)
{
    if (h->conn < 0)
        return;
    ev_io_stop(h->loop, &h->conn_io);
    ev_timer_stop(h->loop, &h->conn_timer);
    close(h->conn);
    h->conn = -1;
}

static void stop_serving(sl_handoff *h)
{
    end_conn(h);
    if (h->lfd >= 0) {
        ev_io_stop(h->loop, &h->accept_io);
        close(h->lfd);
        h->lfd = -1;
    }
}

static void conn_timeout_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    sl_handoff *h = t->data;
    sl_log_warn("hand-off: no answer from the new instance in %.0f s; still serving",
                SL_HANDOFF_READY_S);
    end_conn(h);
}

static void conn_read_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sl_handoff *h = io->data;
    char msg[256];
    ssize_t n = recv(h->conn, msg, sizeof msg - 1, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (n <= 0) {
        sl_log_warn("hand-off: the new instance went away before taking over; still serving");
        end_conn(h);
        return;
    }
    msg[n] = '\0';
    msg[strcspn(msg, "\n")] = '\0';
    long pid = 0;
    if (sscanf(msg, "READY pid=%ld", &pid) == 1) {
        /* No second hand-off from an instance that is leaving; the new one
         * puts its own control socket at the path. */
        int conn = h->conn;
        h->conn = -1;
        ev_io_stop(loop, &h->conn_io);
        ev_timer_stop(loop, &h->conn_timer);
        stop_serving(h);
        if (send_fds(conn, "DRAINING\n", NULL, 0) != 0)
            sl_log_warn("hand-off: cannot confirm to pid %ld: %s", pid, strerror(errno));
        close(conn);
        sl_log_info("hand-off: pid %ld serves the listeners now; draining", pid);
        h->taken(h->ud, pid);
        return;
    }
    if (strncmp(msg, "REFUSE ", 7) == 0)
        sl_log_warn("hand-off refused by the new instance: %s; still serving", msg + 7);
    else
        sl_log_warn("hand-off: unexpected answer from the new instance; still serving");
    end_conn(h);
}

static int peer_allowed(int fd)
{
    struct ucred cred;
    socklen_t l = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &l) != 0)
        return 0;
    return cred.uid == geteuid() || cred.uid == 0;
}

static void accept_cb(struct ev_loop *loop, ev_io *io, int revents)
{
    sl_handoff *h = io->data;
    int fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
    if (fd < 0)
        return;
    if (!peer_allowed(fd)) {
        sl_log_warn("hand-off: refused a control connection from another user");
        close(fd);
        return;
    }
    if (h->conn >= 0 || h->n == 0) {
        send_fds(fd, "BUSY\n", NULL, 0);
        close(fd);
        return;
    }
    io_timeouts(fd, SL_HANDOFF_IO_S);
    char hello[256];
    snprintf(hello, sizeof hello, "SLUICE-HANDOFF 1 pid=%ld fds=%d listen=%s\n", (long)getpid(),
             h->n, h->listen);
    int first = h->n < SL_HANDOFF_BATCH ? h->n : SL_HANDOFF_BATCH;
    int rc = send_fds(fd, hello, h->fds, first);
    for (int off = first; rc == 0 && off < h->n; off += SL_HANDOFF_BATCH) {
        int k = h->n - off < SL_HANDOFF_BATCH ? h->n - off : SL_HANDOFF_BATCH;
        rc = send_fds(fd, "+", h->fds + off, k);
    }
    if (rc != 0) {
        /* A peer that only checked whether anyone answers (a second
         * instance started by mistake) hangs up at once: not worth a warning. */
        sl_log(errno == EPIPE || errno == ECONNRESET ? SL_LOG_DEBUG : SL_LOG_WARN,
               "hand-off: cannot send the listeners: %s", strerror(errno));
        close(fd);
        return;
    }
    sl_log_info("hand-off: %d listener(s) offered to a new instance", h->n);
    h->conn = fd;
    ev_io_init(&h->conn_io, conn_read_cb, fd, EV_READ);
    h->conn_io.data = h;
    ev_io_start(loop, &h->conn_io);
    ev_timer_init(&h->conn_timer, conn_timeout_cb, SL_HANDOFF_READY_S, 0.);
    h->conn_timer.data = h;
    ev_timer_start(loop, &h->conn_timer);
}

/* 1 when something accepts connections at path. */
static int path_is_live(const char *path)
{
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return 0;
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    int live = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return live;
}

void sl_handoff_offer(sl_handoff *h, const int *fds, int n, const char *listen_addr)
{
    h->n = n > SL_LISTEN_MAX ? SL_LISTEN_MAX : n;
    memcpy(h->fds, fds, sizeof(int) * (size_t)h->n);
    snprintf(h->listen, sizeof h->listen, "%s", listen_addr);
}

sl_handoff *sl_handoff_serve(struct ev_loop *loop, const char *path, sl_handoff_taken_fn taken,
                             void *ud, char *err, size_t errlen)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    char tmp[sizeof a.sun_path];
    if (strlen(path) + 24 >= sizeof a.sun_path) {
        snprintf(err, errlen, "control socket path '%s' is too long (at most %zu bytes)", path,
                 sizeof a.sun_path - 25);
        return NULL;
    }
    if (path_is_live(path)) {
        snprintf(err, errlen,
                 "another sluice instance answers on control socket %s (to replace it, start "
                 "this one with --upgrade-from %s)", path, path);
        return NULL;
    }
    sl_handoff *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->conn = -1;
    h->taken = taken;
    h->ud = ud;
    snprintf(h->path, sizeof h->path, "%s", path);
    snprintf(tmp, sizeof tmp, "%s.%ld.new", path, (long)getpid());
    memcpy(a.sun_path, tmp, sizeof tmp);
    unlink(tmp);
    h->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (h->lfd < 0 || bind(h->lfd, (struct sockaddr *)&a, sizeof a) != 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        goto fail;
    }
    struct stat st;
    if (chmod(tmp, 0600) != 0 || listen(h->lfd, 4) != 0 || rename(tmp, path) != 0 ||
        stat(path, &st) != 0) {
        snprintf(err, errlen, "control socket %s: %s", path, strerror(errno));
        unlink(tmp);
        goto fail;
    }
    h->dev = st.st_dev;
    h->ino = st.st_ino;
    ev_io_init(&h->accept_io, accept_cb, h->lfd, EV_READ);
    h->accept_io.data = h;
    ev_io_start(loop, &h->accept_io);
    return h;
fail:
    if (h->lfd >= 0)
        close(h->lfd);
    free(h);
    return NULL;
}

void sl_handoff_close(sl_handoff *h)
{
    if (!h)
        return;
    stop_serving(h);
    struct stat st;
    if (stat(h->path, &st) == 0 && st.st_dev == h->dev && st.st_ino == h->ino)
        unlink(h->path);
    free(h);
}

/* ---- the new instance --------------------------------------------------- */

/* One message and the descriptors it carries (appended to c->fds). */
static ssize_t recv_fds(sl_handoff_client *c, char *buf, size_t cap, char *err, size_t errlen)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * SL_HANDOFF_BATCH)];
        struct cmsghdr align;
    } u;
    struct iovec iov = {.iov_base = buf, .iov_len = cap - 1};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    ssize_t n = recvmsg(c->conn, &mh, MSG_CMSG_CLOEXEC);
    if (n <= 0) {
        snprintf(err, errlen, "the running instance closed the control connection%s%s",
                 n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
        return -1;
    }
    buf[n] = '\0';
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        int k = (int)((cm->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *got = (int *)CMSG_DATA(cm);
        for (int i = 0; i < k; i++) {
            if (c->nfds < SL_LISTEN_MAX)
                c->fds[c->nfds++] = got[i];
            else
                close(got[i]);
        }
    }
    if (mh.msg_flags & MSG_CTRUNC) {
        snprintf(err, errlen, "listeners lost in transit (descriptor limit reached?)");
        return -1;
    }
    return n;
}

static void release(sl_handoff_client *c)
{
    for (int i = 0; i < c->nfds; i++)
        close(c->fds[i]);
    c->nfds = 0;
    if (c->conn >= 0)
        close(c->conn);
    c->conn = -1;
}

int sl_handoff_connect(const char *path, sl_handoff_client *c, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        snprintf(err, errlen, "control socket path '%s' is too long", path);
        return -1;
    }
    snprintf(a.sun_path, sizeof a.sun_path, "%s", path);
    char msg[256];
    int want = 0;
    /* BUSY is transient (the old instance is still starting, or finishing
     * with another peer, such as a mistaken second start probing the
     * path): ask again for a few seconds before giving up. */
    for (int attempt = 0;; attempt++) {
        c->conn = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
        if (c->conn < 0 || connect(c->conn, (struct sockaddr *)&a, sizeof a) != 0) {
            snprintf(err, errlen, "no running instance answers on %s: %s", path, strerror(errno));
            release(c);
            return -1;
        }
        io_timeouts(c->conn, SL_HANDOFF_IO_S);
        if (recv_fds(c, msg, sizeof msg, err, errlen) < 0)
            goto fail;
        if (strncmp(msg, "BUSY", 4) != 0)
            break;
        release(c);
        if (attempt == 40) {
            snprintf(err, errlen, "the running instance is still starting or already handing over");
            return -1;
        }
        usleep(50 * 1000);
    }
    if (sscanf(msg, "SLUICE-HANDOFF 1 pid=%ld fds=%d listen=%127s", &c->old_pid, &want,
               c->listen) != 3 || want < 1 || want > SL_LISTEN_MAX) {
        snprintf(err, errlen, "%s does not speak this hand-off protocol", path);
        goto fail;
    }
    while (c->nfds < want) {
        if (recv_fds(c, msg, sizeof msg, err, errlen) < 0)
            goto fail;
        if (msg[0] != '+') {
            snprintf(err, errlen, "hand-off: unexpected message from the running instance");
            goto fail;
        }
    }
    if (c->nfds != want) {
        snprintf(err, errlen, "hand-off: %d listener(s) announced, %d received", want, c->nfds);
        goto fail;
    }
    return 0;
fail:
    release(c);
    return -1;
}

void sl_handoff_refuse(sl_handoff_client *c, const char *why)
{
    char msg[256];
    snprintf(msg, sizeof msg, "REFUSE %s\n", why);
    send_fds(c->conn, msg, NULL, 0);
    release(c);
}

int sl_handoff_commit(sl_handoff_client *c, char *err, size_t errlen)
{
    char msg[64];
    snprintf(msg, sizeof msg, "READY pid=%ld\n", (long)getpid());
    int rc = -1;
    if (send_fds(c->conn, msg, NULL, 0) != 0) {
        snprintf(err, errlen, "cannot tell pid %ld to drain: %s", c->old_pid, strerror(errno));
    } else {
        ssize_t n = recv(c->conn, msg, sizeof msg - 1, 0);
        if (n > 0 && strncmp(msg, "DRAINING", 8) == 0)
            rc = 0;
        else
            snprintf(err, errlen, "pid %ld did not confirm that it drains", c->old_pid);
    }
    close(c->conn);
    c->conn = -1;
    return rc;
}
