/*
 * bench-loadgen: an open-loop HTTP/1.1 load generator. Request i is due at
 * start + i/rate whatever happened to earlier requests, and its latency is
 * measured from that intended time, not from when a connection happened to
 * be free: a stalled server therefore shows up as queueing delay in the
 * percentiles instead of silently lowering the offered load (coordinated
 * omission). Connections are kept alive and reused; a new one is opened
 * when none is idle, up to --connections, after which due requests wait in
 * a queue (and that wait counts). For SSE responses it also records the
 * time to the first body byte, the gaps between reads that completed at
 * least one event, and per response how many events arrived and in how many
 * separate reads: events == reads means no event was held back and merged
 * with the next one. Output is `key=value` lines for bench/run.
 *
 * This file: options, scheduling, connections and main(); the histogram is
 * in hist.c, the response parser in response.c (shared: loadgen.h).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "loadgen.h"

/* ---- options and global state ----------------------------------------- */

static struct {
    struct sockaddr_in addr;
    const char *target, *path, *body_file, *label;
    char *extra_headers;
    double rate, duration, timeout;
    int max_conns;
} opt = {.path = "/v1/chat/completions", .label = "run", .rate = 100, .duration = 5, .timeout = 30, .max_conns = 1024};

static char *request;
static size_t request_len;

static struct ev_loop *loop;
static ev_timer tick, sweep;
static double t_start, t_end_sched;
static uint64_t total_sched, next_i;
static conn *idle_head, *active_head;
static int open_conns, peak_conns;
static uint64_t inflight, peak_inflight;

/* pending queue of intended times (ring buffer) */
static double *pq;
static size_t pq_cap, pq_head, pq_len;

static struct {
    uint64_t sent, ok, err_connect, err_status, err_timeout, err_reset, err_parse, retried;
    uint64_t status_counts[6];
    uint64_t resp_bytes;
    int ev_min, ev_max, arr_min, arr_max;
    uint64_t coalesced;
    uint64_t streams, events; /* events: over every completed stream */
} st = {.ev_min = 1 << 30, .arr_min = 1 << 30};

hist h_ttfb;
/* h_evgap: the same gaps per event: a read that completed k events counts
 * k gaps of gap/k, so events merged into one read do not shift the
 * distribution towards two-event gaps. */
static hist h_lat, h_gap, h_evgap;


/* ---- lists -------------------------------------------------------------- */

static void list_del(conn **head, conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        *head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void list_push(conn **head, conn *c)
{
    c->prev = NULL;
    c->next = *head;
    if (*head)
        (*head)->prev = c;
    *head = c;
}

static void pq_push(double t)
{
    if (pq_len == pq_cap) {
        size_t cap = pq_cap ? pq_cap * 2 : 1024;
        double *n = malloc(cap * sizeof *n);
        for (size_t i = 0; i < pq_len; i++)
            n[i] = pq[(pq_head + i) % pq_cap];
        free(pq);
        pq = n;
        pq_cap = cap;
        pq_head = 0;
    }
    pq[(pq_head + pq_len) % pq_cap] = t;
    pq_len++;
}

static double pq_pop(void)
{
    double t = pq[pq_head];
    pq_head = (pq_head + 1) % pq_cap;
    pq_len--;
    return t;
}

/* ---- connections -------------------------------------------------------- */

static void io_cb(struct ev_loop *l, ev_io *w, int revents);
static void maybe_stop(void);
static void start_on(conn *c, double intended, int retried);
static void dispatch(double intended, int fresh, int retried);

static void set_events(conn *c, int events)
{
    ev_io_stop(loop, &c->io);
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(loop, &c->io);
}

static void conn_free(conn *c)
{
    ev_io_stop(loop, &c->io);
    if (c->on_idle)
        list_del(&idle_head, c);
    else
        list_del(&active_head, c);
    close(c->fd);
    free(c);
    open_conns--;
}

/* Queued requests take idle connections, then new ones while allowed. */
static void drain_queue(void)
{
    while (pq_len && (idle_head || open_conns < opt.max_conns))
        dispatch(pq_pop(), 0, 0);
}

static void finish(conn *c, int outcome)
{
    /* outcome: 0 ok, else an error already counted */
    inflight--;
    if (outcome == 0) {
        double now = mono();
        st.ok++;
        hist_add(&h_lat, (now - c->intended) * 1e6);
        if (c->got_body && c->events > 0) {
            st.streams++;
            st.events += (uint64_t)c->events;
            if (c->events < st.ev_min) st.ev_min = c->events;
            if (c->events > st.ev_max) st.ev_max = c->events;
            if (c->arrivals < st.arr_min) st.arr_min = c->arrivals;
            if (c->arrivals > st.arr_max) st.arr_max = c->arrivals;
            if (c->arrivals < c->events)
                st.coalesced++;
        }
    }
    c->served++;
    maybe_stop();
    if (outcome != 0 || c->close_after) {
        conn_free(c);
        drain_queue();
        return;
    }
    if (pq_len) {
        inflight++;
        start_on(c, pq_pop(), 0);
        return;
    }
    list_del(&active_head, c);
    list_push(&idle_head, c);
    c->on_idle = 1;
    c->state = C_IDLE;
    set_events(c, EV_READ);
}

/* A reused keep-alive connection the server had already closed fails
 * before any response byte: retry once on a fresh connection, as HTTP
 * clients do, instead of blaming the server. */
static void fail(conn *c, uint64_t *counter)
{
    int can_retry = c->served > 0 && !c->got_bytes && !c->retried && counter == &st.err_reset;
    double intended = c->intended;
    if (can_retry) {
        st.retried++;
        inflight--;
        c->close_after = 1;
        conn_free(c);
        dispatch(intended, 0, 1);
        return;
    }
    (*counter)++;
    finish(c, 1);
}

static conn *conn_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&opt.addr, sizeof opt.addr) != 0 && errno != EINPROGRESS) {
        close(fd);
        return NULL;
    }
    conn *c = calloc(1, sizeof *c);
    c->fd = fd;
    c->state = C_CONNECTING;
    ev_io_init(&c->io, io_cb, fd, EV_WRITE);
    c->io.data = c;
    ev_io_start(loop, &c->io);
    list_push(&active_head, c);
    open_conns++;
    if (open_conns > peak_conns)
        peak_conns = open_conns;
    return c;
}

static void reset_exchange(conn *c, double intended, int retried)
{
    c->intended = intended;
    c->deadline = intended + opt.timeout;
    c->sent = 0;
    c->retried = retried;
    c->head_len = 0;
    c->phase = P_HEAD;
    c->status = 0;
    c->chunked = 0;
    c->close_after = 0;
    c->got_bytes = 0;
    c->remaining = 0;
    c->chunk_size_digits = 0;
    c->trailer_line_len = 0;
    c->in_ext = 0;
    c->got_body = 0;
    c->prev_nl = 0;
    c->events = 0;
    c->arrivals = 0;
    c->last_arrival = 0;
}

static void try_send(conn *c)
{
    while (c->sent < request_len) {
        ssize_t n = send(c->fd, request + c->sent, request_len - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            set_events(c, EV_WRITE);
            return;
        }
        fail(c, &st.err_reset);
        return;
    }
    c->state = C_READING;
    set_events(c, EV_READ);
}

static void start_on(conn *c, double intended, int retried)
{
    reset_exchange(c, intended, retried);
    c->state = C_SENDING;
    try_send(c);
}

/* Puts a request on a connection, or queues it. fresh: a newly due request
 * (counted as sent); retried: the one retry after a stale connection. */
static void dispatch(double intended, int fresh, int retried)
{
    if (fresh)
        st.sent++;
    inflight++;
    if (inflight + pq_len > peak_inflight)
        peak_inflight = inflight + pq_len;
    if (idle_head) {
        conn *c = idle_head;
        list_del(&idle_head, c);
        c->on_idle = 0;
        list_push(&active_head, c);
        start_on(c, intended, retried);
        return;
    }
    if (open_conns < opt.max_conns) {
        conn *c = conn_open();
        if (!c) {
            st.err_connect++;
            inflight--;
            return;
        }
        reset_exchange(c, intended, retried);
        return;
    }
    inflight--;
    pq_push(intended);
    if (inflight + pq_len > peak_inflight)
        peak_inflight = inflight + pq_len;
}

static void on_readable(conn *c)
{
    char buf[65536];
    for (;;) {
        ssize_t n = recv(c->fd, buf, sizeof buf, 0);
        if (n > 0) {
            if (c->state == C_IDLE) {
                /* unsolicited bytes on an idle connection */
                conn_free(c);
                drain_queue();
                return;
            }
            c->got_bytes = 1;
            st.resp_bytes += (uint64_t)n;
            int before = c->events;
            int r = feed(c, buf, (size_t)n);
            if (c->events > before) {
                double now = mono();
                if (c->arrivals > 0) {
                    double gap = (now - c->last_arrival) * 1e6;
                    int k = c->events - before;
                    hist_add(&h_gap, gap);
                    for (int i = 0; i < k; i++)
                        hist_add(&h_evgap, gap / k);
                }
                c->arrivals++;
                c->last_arrival = now;
            }
            if (r < 0) {
                fail(c, &st.err_parse);
                return;
            }
            if (r == 1) {
                if (c->status == 200) {
                    st.status_counts[2]++;
                    finish(c, 0);
                } else {
                    st.status_counts[c->status / 100 < 6 ? c->status / 100 : 0]++;
                    st.err_status++;
                    if (st.err_status <= 3)
                        fprintf(stderr, "bench-loadgen: %s: status %d\n", opt.label, c->status);
                    c->close_after = 1;
                    finish(c, 1);
                }
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        /* EOF or error */
        if (c->state == C_IDLE) {
            conn_free(c);
            drain_queue();
            return;
        }
        if (n == 0 && c->phase == P_BODY_EOF) {
            st.status_counts[c->status == 200 ? 2 : 0]++;
            c->close_after = 1;
            if (c->status == 200)
                finish(c, 0);
            else {
                st.err_status++;
                finish(c, 1);
            }
            return;
        }
        fail(c, &st.err_reset);
        return;
    }
}

static void io_cb(struct ev_loop *l, ev_io *w, int revents)
{
    conn *c = w->data;
    if (c->state == C_CONNECTING) {
        int err = 0;
        socklen_t el = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err) {
            if (st.err_connect < 3)
                fprintf(stderr, "bench-loadgen: %s: connect: %s\n", opt.label, strerror(err));
            fail(c, &st.err_connect);
            return;
        }
        c->state = C_SENDING;
        try_send(c);
        return;
    }
    if (c->state == C_SENDING && (revents & EV_WRITE)) {
        try_send(c);
        return;
    }
    if (revents & EV_READ)
        on_readable(c);
}

/* ---- scheduling ---------------------------------------------------------- */

static void maybe_stop(void)
{
    if (next_i >= total_sched && inflight == 0 && pq_len == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void tick_cb(struct ev_loop *l, ev_timer *t, int revents)
{
    double now = mono();
    while (next_i < total_sched) {
        double due = t_start + (double)next_i / opt.rate;
        if (due > now) {
            ev_now_update(loop);
            ev_timer_set(&tick, due - now, 0.);
            ev_timer_start(loop, &tick);
            return;
        }
        next_i++;
        dispatch(due, 1, 0);
    }
    maybe_stop();
}

static void sweep_cb(struct ev_loop *l, ev_timer *t, int revents)
{
    double now = mono();
    for (conn *c = active_head, *nx; c; c = nx) {
        nx = c->next;
        if (c->deadline && now > c->deadline) {
            c->close_after = 1;
            st.err_timeout++;
            finish(c, 1);
        }
    }
    /* queued requests can time out too */
    while (pq_len && now > pq[pq_head] + opt.timeout) {
        pq_pop();
        st.err_timeout++;
    }
    maybe_stop();
    if (next_i >= total_sched && now > t_end_sched + opt.timeout + 1)
        ev_break(loop, EVBREAK_ALL); /* hard bound on run time */
}

/* ---- main ------------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    size_t r;
    while ((r = fread(s + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap)
            s = realloc(s, cap *= 2);
    }
    fclose(f);
    *len = n;
    return s;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-loadgen --target HOST:PORT [options]\n"
            "  --path PATH          request path (default /v1/chat/completions)\n"
            "  --body FILE          JSON request body (default: a small OpenAI chat request)\n"
            "  --header 'K: V'      extra request header (repeatable)\n"
            "  --rate RPS           requests per second, open loop (default 100)\n"
            "  --duration S         seconds of sending (default 5)\n"
            "  --connections N      most connections to open (default 1024)\n"
            "  --timeout S          per-request deadline from its intended time (default 30)\n"
            "  --label NAME         prefix for messages\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"target", required_argument, NULL, 'T'},   {"path", required_argument, NULL, 'p'},
        {"body", required_argument, NULL, 'b'},     {"header", required_argument, NULL, 'H'},
        {"rate", required_argument, NULL, 'r'},     {"duration", required_argument, NULL, 'd'},
        {"connections", required_argument, NULL, 'c'}, {"timeout", required_argument, NULL, 't'},
        {"label", required_argument, NULL, 'l'},    {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    size_t hdr_len = 0;
    opt.extra_headers = calloc(1, 1);
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'T': opt.target = optarg; break;
        case 'p': opt.path = optarg; break;
        case 'b': opt.body_file = optarg; break;
        case 'H': {
            size_t l = strlen(optarg);
            opt.extra_headers = realloc(opt.extra_headers, hdr_len + l + 3);
            memcpy(opt.extra_headers + hdr_len, optarg, l);
            memcpy(opt.extra_headers + hdr_len + l, "\r\n", 3);
            hdr_len += l + 2;
            break;
        }
        case 'r': opt.rate = atof(optarg); break;
        case 'd': opt.duration = atof(optarg); break;
        case 'c': opt.max_conns = atoi(optarg); break;
        case 't': opt.timeout = atof(optarg); break;
        case 'l': opt.label = optarg; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!opt.target || opt.rate <= 0 || opt.duration <= 0 || opt.max_conns < 1 || opt.timeout <= 0 ||
        opt.rate * opt.duration > 1e8) {
        usage(stderr);
        return 2;
    }
    const char *colon = strrchr(opt.target, ':');
    char host[64];
    if (!colon || (size_t)(colon - opt.target) >= sizeof host) {
        fprintf(stderr, "bench-loadgen: --target wants HOST:PORT\n");
        return 2;
    }
    memcpy(host, opt.target, (size_t)(colon - opt.target));
    host[colon - opt.target] = 0;
    opt.addr.sin_family = AF_INET;
    opt.addr.sin_port = htons((uint16_t)atoi(colon + 1));
    if (inet_pton(AF_INET, host, &opt.addr.sin_addr) != 1) {
        fprintf(stderr, "bench-loadgen: bad IPv4 address '%s'\n", host);
        return 2;
    }

    size_t body_len;
    char *body;
    if (opt.body_file) {
        body = read_file(opt.body_file, &body_len);
        if (!body) {
            fprintf(stderr, "bench-loadgen: cannot read %s: %s\n", opt.body_file, strerror(errno));
            return 2;
        }
    } else {
        body = strdup("{\"model\":\"bench-openai\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}");
        body_len = strlen(body);
    }
    request_len = (size_t)asprintf(&request,
                                   "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                                   "Content-Length: %zu\r\n%s\r\n",
                                   opt.path, opt.target, body_len, opt.extra_headers);
    request = realloc(request, request_len + body_len);
    memcpy(request + request_len, body, body_len);
    request_len += body_len;

    /* Thousands of connections need thousands of descriptors. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && (rlim_t)opt.max_conns + 64 > rl.rlim_cur)
        fprintf(stderr, "bench-loadgen: warning: %d connections but only %llu descriptors\n",
                opt.max_conns, (unsigned long long)rl.rlim_cur);
    signal(SIGPIPE, SIG_IGN);

    loop = ev_default_loop(EVFLAG_AUTO);
    total_sched = (uint64_t)llround(opt.rate * opt.duration);
    t_start = mono() + 0.01;
    t_end_sched = t_start + opt.duration;
    ev_timer_init(&tick, tick_cb, 0.01, 0.);
    ev_timer_start(loop, &tick);
    ev_timer_init(&sweep, sweep_cb, 0.1, 0.1);
    ev_timer_start(loop, &sweep);
    ev_run(loop, 0);
    double elapsed = mono() - t_start;

    /* whatever is still open at the hard bound timed out */
    for (conn *c = active_head; c; c = c->next)
        if (c->state != C_IDLE && c->deadline)
            st.err_timeout++;
    st.err_timeout += pq_len;

    uint64_t errors = st.err_connect + st.err_status + st.err_timeout + st.err_reset + st.err_parse;
    printf("label=%s\n", opt.label);
    printf("rate=%.0f\nduration_s=%.1f\nelapsed_s=%.2f\n", opt.rate, opt.duration, elapsed);
    printf("sent=%llu\nok=%llu\nerrors=%llu\n", (unsigned long long)st.sent, (unsigned long long)st.ok,
           (unsigned long long)errors);
    printf("err_connect=%llu\nerr_status=%llu\nerr_timeout=%llu\nerr_reset=%llu\nerr_parse=%llu\nretried=%llu\n",
           (unsigned long long)st.err_connect, (unsigned long long)st.err_status,
           (unsigned long long)st.err_timeout, (unsigned long long)st.err_reset,
           (unsigned long long)st.err_parse, (unsigned long long)st.retried);
    printf("status_4xx=%llu\nstatus_5xx=%llu\n", (unsigned long long)st.status_counts[4],
           (unsigned long long)st.status_counts[5]);
    printf("success_pct=%.3f\n", st.sent ? 100.0 * (double)st.ok / (double)st.sent : 0);
    printf("achieved_rps=%.1f\n", opt.duration > 0 ? (double)st.ok / opt.duration : 0);
    printf("peak_inflight=%llu\npeak_conns=%d\n", (unsigned long long)peak_inflight, peak_conns);
    printf("resp_bytes=%llu\n", (unsigned long long)st.resp_bytes);
    print_hist("lat", &h_lat);
    if (st.streams) {
        print_hist("ttfb", &h_ttfb);
        print_hist("gap", &h_gap);
        print_hist("evgap", &h_evgap);
        printf("streams=%llu\nevents_min=%d\nevents_max=%d\nreads_min=%d\nreads_max=%d\ncoalesced=%llu\n",
               (unsigned long long)st.streams, st.ev_min, st.ev_max, st.arr_min, st.arr_max,
               (unsigned long long)st.coalesced);
        printf("events=%llu\n", (unsigned long long)st.events);
    }
    return 0;
}
