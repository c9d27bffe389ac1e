/*
 * bench-curl-floor: libcurl alone, driven the way sluice's upstream module
 * (runtime/upstream/upstream.c and watch.c) drives it, and nothing else:
 * no server side, no parsing, no routing; the response body is counted and
 * dropped. What it spends per request and holds per in-flight transfer is
 * therefore the least any gateway that keeps libcurl as its upstream client
 * (this libcurl, these options) can spend or hold, to be read next to
 * nginx's whole proxy and sluice in the same bench/run.
 *
 * Mirrored from sluice, so the figures are libcurl's cost under sluice's
 * use of it: easy handles pooled (up to 1,024) and reused without
 * curl_easy_reset, with the per-transfer options set again on each use;
 * the URL parsed once into a CURLU; HTTP/1.1 with a 2 KiB receive buffer
 * and a 16 KiB upload buffer; the body as POSTFIELDS; the header list
 * sluice sends a plain OpenAI-kind provider (the empty "Expect:" first);
 * TCP_NODELAY, NOSIGNAL, MAXAGE_CONN 30, a prereq callback that refuses a
 * re-send; an empty CURLOPT_PROXY and NOPROXY when the environment names
 * no proxy; past 512 active transfers a fresh connection closed after use
 * (sluice's SL_UPSTREAM_REUSE_LIMIT); sockets opened and closed through
 * callbacks so a kept-alive socket stays in epoll between transfers
 * (sluice's parked watchers). Cheaper than sluice in what is not libcurl:
 * raw epoll instead of libev, one header list and one context per easy
 * handle made once instead of per request.
 *
 *   --closed C --requests N   C concurrent keep-alive transfers, N in all
 *                             (after --warmup W unmeasured ones): CPU per
 *                             request from getrusage
 *   --h2-tls CAFILE           HTTPS and HTTP/2 (ALPN) as sluice does for a
 *                             provider with `http2: on` and `tls: { ca: }`:
 *                             streams multiplexed (PIPEWAIT), the 16 KiB
 *                             receive buffer 7.88 needs over HTTP/2, TLS
 *                             sessions in a share, no fresh-connection rule
 *   --open RATE --seconds S   RATE new transfers per second for S seconds
 *                             against a slow upstream: peak in flight, RSS
 *                             at rest and at peak (VmHWM), bytes per
 *                             in-flight transfer
 * Output: key=value lines (bench/run records them).
 */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define POOL_MAX 1024   /* sluice's EASY_POOL_MAX */

static struct {
    const char *target, *path, *body_file, *version;
    int closed;            /* concurrency; 0 = open mode */
    long requests, warmup;
    double rate, seconds, max_seconds;
    int stop_after_warmup; /* SIGSTOP after the warm-up (bench/cpu-profile attaches perf) */
    int bare;              /* less than sluice: see --bare */
    long reuse_limit;      /* sluice's SL_UPSTREAM_REUSE_LIMIT; 0: none */
    long buffersize;       /* CURLOPT_BUFFERSIZE: sluice's 2 KiB over HTTP/1.1 */
    const char *h2_ca;     /* --h2-tls: HTTPS + HTTP/2 trusting this CA file */
} opt = {.target = "127.0.0.1:18501", .path = "/v1/chat/completions", .version = "0.1.0",
         .warmup = 2000, .seconds = 10, .max_seconds = 300, .reuse_limit = 512, .buffersize = 2048};

/* One per easy handle, made with it and kept while it is pooled. */
typedef struct slot {
    CURL *easy;
    int configured; /* --bare: the per-transfer options are set */
    long fresh;
    int sends;
    char errbuf[CURL_ERROR_SIZE];
} slot;

static CURLM *multi;
static CURLSH *share; /* --h2-tls: TLS sessions, as sluice's per-loop share */
static CURLU *url;
static struct curl_slist *headers;
static char *body;
static size_t body_len;

static slot *pool[POOL_MAX];
static unsigned pooled;

static int ep;
/* Per descriptor: the epoll events registered (0: not in epoll), whether
 * curl opened it through open_cb (a connection socket), and whether curl
 * has let go of it while it stays in the connection cache (parked). */
static uint32_t *fd_events;
static unsigned char *fd_opened, *fd_parked;
static int fd_max;

static double timer_due = -1; /* curl's next timeout (monotonic s), -1: none */

static long active, peak_active, started, done_n, ok_n, err_n, err_status, connections;
static long limit_n;          /* transfers to start in all (closed mode) */
/* Bytes malloc has handed out (mallinfo2), sampled as the number in
 * flight reaches new highs: libcurl's live allocations at the peak, apart
 * from what malloc keeps around them. */
static size_t heap_at_peak;
static long heap_sampled_at;
static unsigned long long body_bytes;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
    fprintf(stderr, "bench-curl-floor: %s\n", what);
    exit(1);
}

/* ---- curl -> epoll ---------------------------------------------------- */

static void ep_set(int fd, uint32_t ev)
{
    if (fd_events[fd] == ev)
        return;
    struct epoll_event e = {.events = ev, .data.fd = fd};
    int op = fd_events[fd] ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(ep, op, fd, &e) != 0) {
        /* Our record was stale (a descriptor closed without our callback). */
        op = op == EPOLL_CTL_MOD ? EPOLL_CTL_ADD : EPOLL_CTL_MOD;
        if (epoll_ctl(ep, op, fd, &e) != 0)
            die("epoll_ctl failed");
    }
    fd_events[fd] = ev;
}

static void ep_del(int fd)
{
    if (fd_events[fd])
        epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    fd_events[fd] = 0;
    fd_parked[fd] = 0;
}

/* As sluice's socket_cb: a connection socket curl lets go of stays armed
 * for reading (no epoll_ctl per request); its next transfer takes it over. */
static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    (void)userp;
    (void)socketp;
    if (fd < 0 || fd >= fd_max)
        die("descriptor out of range");
    if (what == CURL_POLL_REMOVE) {
        if (fd_opened[fd] && fd_events[fd]) {
            fd_parked[fd] = 1;
            ep_set(fd, EPOLLIN);
        } else {
            ep_del(fd);
        }
        return 0;
    }
    fd_parked[fd] = 0;
    ep_set(fd, (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0));
    return 0;
}

static int timer_cb(CURLM *m, long timeout_ms, void *userp)
{
    (void)m;
    (void)userp;
    timer_due = timeout_ms < 0 ? -1 : now_s() + (double)timeout_ms / 1000.0;
    return 0;
}

static curl_socket_t open_cb(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    (void)clientp;
    (void)purpose;
    curl_socket_t fd = socket(a->family, a->socktype, a->protocol);
    if (fd >= fd_max) {
        close(fd);
        return CURL_SOCKET_BAD;
    }
    if (fd >= 0) {
        fd_opened[fd] = 1;
        connections++;
    }
    return fd;
}

static int close_cb(void *clientp, curl_socket_t fd)
{
    (void)clientp;
    if (fd >= 0 && fd < fd_max) {
        fd_opened[fd] = 0;
        fd_parked[fd] = 0;
        fd_events[fd] = 0; /* close() takes it out of epoll */
    }
    return close(fd);
}

/* ---- transfers -------------------------------------------------------- */

static size_t header_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    return size * nmemb;
}

static size_t write_cb(char *p, size_t size, size_t nmemb, void *ud)
{
    (void)p;
    (void)ud;
    body_bytes += size * nmemb;
    return size * nmemb;
}

static int prereq_cb(void *ud, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    slot *s = ud;
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    return s->sends++ ? CURL_PREREQFUNC_ABORT : CURL_PREREQFUNC_OK;
}

/* As sluice's env_names_proxy: a proxy variable libcurl would read for
 * http:// or https:// URLs is set and not empty. */
static int env_names_proxy(void)
{
    static const char *const names[] = {"http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const char *v = getenv(names[i]);
        if (v && *v)
            return 1;
    }
    return 0;
}

static int no_proxy_env;

/* sluice's easy_constant. */
static slot *slot_new(void)
{
    slot *s = calloc(1, sizeof *s);
    if (!s || !(s->easy = curl_easy_init()))
        die("out of memory");
    CURL *e = s->easy;
    if (no_proxy_env) {
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_NOPROXY, "");
    }
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    if (!opt.bare)
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 30L);
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16384L);
    if (!opt.bare)
        curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, prereq_cb);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_cb);
    curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, close_cb);
    return s;
}

/* sluice's sl_xfer_start for a plain-HTTP/1.1 provider: every option that
 * may differ between transfers is set again on the kept handle. */
static void xfer_start(void)
{
    slot *s = pooled ? pool[--pooled] : slot_new();
    CURL *e = s->easy;
    s->sends = 0;
    s->errbuf[0] = '\0';
    long fresh = opt.reuse_limit > 0 && active >= opt.reuse_limit;
    if (opt.bare && s->configured) {
        /* --bare: the handle kept its options; only this one may change. */
        if (s->fresh != fresh) {
            curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh);
            curl_easy_setopt(e, CURLOPT_FORBID_REUSE, fresh);
            s->fresh = fresh;
        }
        goto add;
    }
    s->configured = 1;
    s->fresh = fresh;
    curl_easy_setopt(e, CURLOPT_CURLU, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, s);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, opt.h2_ca ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, opt.h2_ca ? 1L : 0L);
    if (opt.h2_ca) { /* sluice's sl_upstream_set_tls for `tls: { ca: }` */
        curl_easy_setopt(e, CURLOPT_CAINFO, opt.h2_ca);
        curl_easy_setopt(e, CURLOPT_CAPATH, (char *)NULL);
        curl_easy_setopt(e, CURLOPT_SHARE, share);
    }
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, 5000L); /* sluicec's defaults */
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 600000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, s);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, s);
    curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, fresh);
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, fresh);
    curl_easy_setopt(e, CURLOPT_BUFFERSIZE, opt.buffersize);
    curl_easy_setopt(e, CURLOPT_PREREQDATA, s);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, s->errbuf);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
add:
    if (curl_multi_add_handle(multi, e) != CURLM_OK)
        die("curl_multi_add_handle failed");
    started++;
    if (++active > peak_active) {
        peak_active = active;
        if (opt.rate > 0 && peak_active >= heap_sampled_at + 64) {
            heap_sampled_at = peak_active;
            heap_at_peak = mallinfo2().uordblks;
        }
    }
}

/* sluice's xfer_free: back to the pool, or gone past its size. */
static void xfer_end(slot *s)
{
    curl_multi_remove_handle(multi, s->easy);
    if (!opt.bare) {
        curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, (char *)NULL);
        curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, (struct curl_slist *)NULL);
    }
    if (pooled < POOL_MAX) {
        pool[pooled++] = s;
    } else {
        curl_easy_cleanup(s->easy);
        free(s);
    }
    active--;
}

static const char *first_error;

static void check_done(void)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        slot *s = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&s);
        long status = 0;
        curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &status);
        if (m->data.result == CURLE_OK && status == 200) {
            ok_n++;
        } else {
            err_n++;
            if (m->data.result == CURLE_OK)
                err_status++;
            if (!first_error) {
                static char why[CURL_ERROR_SIZE + 64];
                snprintf(why, sizeof why, "%s (status %ld)",
                         s->errbuf[0] ? s->errbuf : curl_easy_strerror(m->data.result), status);
                first_error = why;
            }
        }
        done_n++;
        xfer_end(s);
        /* Closed loop: the next request takes the place of this one. */
        if (opt.closed && started < limit_n)
            xfer_start();
    }
}

/* One pass of the loop: wait at most until curl's timeout or `until`. */
static void loop_once(double until)
{
    static struct epoll_event evs[512];
    double t = now_s(), due = until;
    if (timer_due >= 0 && (due < 0 || timer_due < due))
        due = timer_due;
    int ms = due < 0 ? 1000 : due <= t ? 0 : (int)ceil((due - t) * 1000.0);
    if (ms > 1000)
        ms = 1000;
    int n = epoll_wait(ep, evs, (int)(sizeof evs / sizeof *evs), ms);
    if (n < 0 && errno != EINTR)
        die("epoll_wait failed");
    int running;
    for (int i = 0; i < n; i++) {
        int fd = evs[i].data.fd;
        if (fd_parked[fd]) {
            /* An idle kept-alive connection became readable: the server
             * closed it. curl finds out when it next considers it. */
            ep_del(fd);
            continue;
        }
        uint32_t ev = evs[i].events;
        int action = (ev & (EPOLLIN | EPOLLHUP | EPOLLERR) ? CURL_CSELECT_IN : 0) |
                     (ev & (EPOLLOUT | EPOLLERR) ? CURL_CSELECT_OUT : 0);
        curl_multi_socket_action(multi, fd, action, &running);
        check_done();
    }
    if (timer_due >= 0 && now_s() >= timer_due) {
        timer_due = -1;
        curl_multi_socket_action(multi, CURL_SOCKET_TIMEOUT, 0, &running);
        check_done();
    }
}

/* ---- measurements ----------------------------------------------------- */

static long status_kb(const char *field)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t n = strlen(field);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, field, n) == 0 && line[n] == ':')
            v = atol(line + n + 1);
    if (f)
        fclose(f);
    return v;
}

typedef struct {
    double user, sys;
    long csw;
} usage;

static usage usage_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (usage){(double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
                   (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6, ru.ru_nvcsw + ru.ru_nivcsw};
}

/* Runs the loop until every started transfer has ended or `deadline`. */
static void drain(double deadline)
{
    while (active > 0 && now_s() < deadline)
        loop_once(deadline);
}

static void run_closed(void)
{
    double deadline = now_s() + opt.max_seconds;
    if (opt.warmup > 0) {
        limit_n = opt.warmup;
        for (int i = 0; i < opt.closed && started < limit_n; i++)
            xfer_start();
        drain(deadline);
        if (err_n)
            fprintf(stderr, "bench-curl-floor: %ld of %ld warm-up requests failed: %s\n", err_n, done_n,
                    first_error ? first_error : "?");
    }
    if (opt.stop_after_warmup)
        raise(SIGSTOP);
    started = done_n = ok_n = err_n = err_status = 0;
    body_bytes = 0;
    long conns0 = connections;
    limit_n = opt.requests;
    usage u0 = usage_now();
    double t0 = now_s();
    for (int i = 0; i < opt.closed && started < limit_n; i++)
        xfer_start();
    drain(deadline);
    double el = now_s() - t0;
    usage u1 = usage_now();
    double cpu = (u1.user - u0.user) + (u1.sys - u0.sys);
    long n = done_n ? done_n : 1;
    printf("mode=closed\nconcurrency=%d\nrequests=%ld\nok=%ld\nerrors=%ld\nerr_status=%ld\n", opt.closed, done_n,
           ok_n, err_n, err_status);
    printf("elapsed_s=%.3f\nrps=%.1f\n", el, el > 0 ? (double)done_n / el : 0);
    printf("cpu_us_per_req=%.2f\nuser_us_per_req=%.2f\nsys_us_per_req=%.2f\n", cpu * 1e6 / (double)n,
           (u1.user - u0.user) * 1e6 / (double)n, (u1.sys - u0.sys) * 1e6 / (double)n);
    printf("ctx_switches_per_req=%.3f\n", (double)(u1.csw - u0.csw) / (double)n);
    printf("new_connections=%ld\nresp_body_bytes=%llu\n", connections - conns0, body_bytes);
    printf("rss_kb=%ld\nhwm_kb=%ld\n", status_kb("VmRSS"), status_kb("VmHWM"));
    if (first_error)
        fprintf(stderr, "bench-curl-floor: first failure: %s\n", first_error);
}

static void run_open(void)
{
    long rest_kb = status_kb("VmRSS"), rest_hwm_kb = status_kb("VmHWM");
    size_t heap_rest = mallinfo2().uordblks;
    long total = (long)llround(opt.rate * opt.seconds);
    usage u0 = usage_now();
    double t0 = now_s();
    double deadline = t0 + opt.max_seconds;
    /* Transfer i is due at t0 + i / rate; due ones start each pass, and the
     * loop wakes at least each millisecond while sending. */
    while (started < total && now_s() < deadline) {
        double t = now_s();
        long due = (long)((t - t0) * opt.rate) + 1;
        if (due > total)
            due = total;
        while (started < due)
            xfer_start();
        loop_once(started < total ? t0 + (double)started / opt.rate : -1);
    }
    drain(deadline);
    double el = now_s() - t0;
    long unfinished = active;
    usage u1 = usage_now();
    long hwm = status_kb("VmHWM");
    printf("mode=open\nrate=%.0f\nseconds=%.1f\nsent=%ld\nok=%ld\nerrors=%ld\nerr_status=%ld\nunfinished=%ld\n",
           opt.rate, opt.seconds, started, ok_n, err_n + unfinished, err_status, unfinished);
    printf("success_pct=%.3f\n", started ? 100.0 * (double)ok_n / (double)started : 0);
    printf("peak_inflight=%ld\nelapsed_s=%.2f\n", peak_active, el);
    printf("cpu_us_per_req=%.2f\n",
           ((u1.user - u0.user) + (u1.sys - u0.sys)) * 1e6 / (double)(done_n ? done_n : 1));
    printf("new_connections=%ld\nresp_body_bytes=%llu\n", connections, body_bytes);
    printf("rss_rest_kb=%ld\nhwm_rest_kb=%ld\nhwm_kb=%ld\nrss_after_kb=%ld\n", rest_kb, rest_hwm_kb, hwm,
           status_kb("VmRSS"));
    if (peak_active > 0 && hwm >= 0 && rest_kb >= 0)
        printf("bytes_per_inflight=%.0f\n", (double)(hwm - rest_kb) * 1024.0 / (double)peak_active);
    if (heap_sampled_at > 0 && heap_at_peak > heap_rest)
        printf("heap_rest_kb=%zu\nheap_peak_kb=%zu\nheap_bytes_per_inflight=%.0f\n", heap_rest / 1024,
               heap_at_peak / 1024, (double)(heap_at_peak - heap_rest) / (double)heap_sampled_at);
    if (first_error)
        fprintf(stderr, "bench-curl-floor: first failure: %s\n", first_error);
}

/* ---- setup ------------------------------------------------------------ */

static void usage_exit(int rc)
{
    fprintf(rc ? stderr : stdout,
            "usage: bench-curl-floor [--target HOST:PORT] [--path P] [--body FILE]\n"
            "         (--closed C --requests N [--warmup W] [--stop-after-warmup]\n"
            "          | --open RATE [--seconds S]) [--max-seconds S] [--bare]\n"
            "         [--reuse-limit N] [--buffersize B] [--h2-tls CAFILE]\n"
            "libcurl driven as sluice drives it against bench-mock; key=value output.\n"
            "--bare: less than sluice does: options set once per handle, no header or\n"
            "prereq callback (how much of the floor is sluice's way of using libcurl).\n"
            "--reuse-limit N: past N active transfers a fresh connection, closed after\n"
            "use (sluice: 512); 0: connections always kept for reuse.\n"
            "--buffersize B: the receive buffer (sluice: 2048; libcurl takes 1024 and up).\n"
            "--h2-tls CAFILE: https:// and HTTP/2 through ALPN (a TLS terminator at\n"
            "--target), trusting CAFILE, as sluice does for `http2: on`: 16 KiB receive\n"
            "buffer, TLS sessions shared, no fresh-connection rule.\n");
    exit(rc);
}

static double num(const char *s, const char *name)
{
    char *e;
    double v = strtod(s, &e);
    if (*s == '\0' || *e != '\0' || !(v >= 0)) {
        fprintf(stderr, "bench-curl-floor: %s takes a number, not '%s'\n", name, s);
        exit(2);
    }
    return v;
}

static void read_body(void)
{
    static const char dflt[] = "{\"model\":\"bench-openai\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    if (!opt.body_file) {
        body = strdup(dflt);
        body_len = strlen(dflt);
        return;
    }
    FILE *f = fopen(opt.body_file, "rb");
    if (!f)
        die("cannot open --body file");
    size_t cap = 4096;
    body = malloc(cap);
    size_t n;
    while (body && (n = fread(body + body_len, 1, cap - body_len, f)) > 0) {
        body_len += n;
        if (body_len == cap)
            body = realloc(body, cap *= 2);
    }
    fclose(f);
    if (!body)
        die("out of memory");
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"target", required_argument, NULL, 't'},  {"path", required_argument, NULL, 'p'},
        {"body", required_argument, NULL, 'b'},    {"closed", required_argument, NULL, 'c'},
        {"requests", required_argument, NULL, 'n'}, {"warmup", required_argument, NULL, 'w'},
        {"open", required_argument, NULL, 'o'},    {"seconds", required_argument, NULL, 's'},
        {"max-seconds", required_argument, NULL, 'm'},
        {"stop-after-warmup", no_argument, NULL, 'S'}, {"help", no_argument, NULL, 'h'},
        {"bare", no_argument, NULL, 'B'},          {"reuse-limit", required_argument, NULL, 'R'},
        {"buffersize", required_argument, NULL, 'z'}, {"h2-tls", required_argument, NULL, 'H'},
        {NULL, 0, NULL, 0}};
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 't': opt.target = optarg; break;
        case 'p': opt.path = optarg; break;
        case 'b': opt.body_file = optarg; break;
        case 'c': opt.closed = (int)num(optarg, "--closed"); break;
        case 'n': opt.requests = (long)num(optarg, "--requests"); break;
        case 'w': opt.warmup = (long)num(optarg, "--warmup"); break;
        case 'o': opt.rate = num(optarg, "--open"); break;
        case 's': opt.seconds = num(optarg, "--seconds"); break;
        case 'm': opt.max_seconds = num(optarg, "--max-seconds"); break;
        case 'S': opt.stop_after_warmup = 1; break;
        case 'B': opt.bare = 1; break;
        case 'R': opt.reuse_limit = (long)num(optarg, "--reuse-limit"); break;
        case 'z': opt.buffersize = (long)num(optarg, "--buffersize"); break;
        case 'H':
            opt.h2_ca = optarg;
            opt.buffersize = 16384; /* upstream.c: 7.88 copies whole DATA frames into it */
            opt.reuse_limit = 0;    /* upstream.c: the fresh-connection rule is not for TLS */
            break;
        case 'h': usage_exit(0); break;
        default: usage_exit(2);
        }
    }
    if (optind != argc || (opt.closed > 0) == (opt.rate > 0))
        usage_exit(2);
    if (opt.closed > 0 && opt.requests <= 0) {
        fprintf(stderr, "bench-curl-floor: --closed needs --requests N\n");
        return 2;
    }
    if (opt.rate > 0 && (opt.seconds <= 0 || opt.rate * opt.seconds > 1e7)) {
        fprintf(stderr, "bench-curl-floor: --open needs --seconds S > 0 and at most 10 million transfers\n");
        return 2;
    }

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit failed");
    fd_max = rl.rlim_cur > 1048576 ? 1048576 : (int)rl.rlim_cur;
    fd_events = calloc((size_t)fd_max, sizeof *fd_events);
    fd_opened = calloc((size_t)fd_max, 1);
    fd_parked = calloc((size_t)fd_max, 1);
    if (!fd_events || !fd_opened || !fd_parked)
        die("out of memory");
    if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0)
        die("epoll_create1 failed");

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        die("curl_global_init failed");
    read_body();
    char u[512];
    snprintf(u, sizeof u, "%s://%s%s", opt.h2_ca ? "https" : "http", opt.target, opt.path);
    if (opt.h2_ca) {
        if (!(share = curl_share_init()))
            die("curl_share_init failed");
        curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
    }
    url = curl_url();
    if (!url || curl_url_set(url, CURLUPART_URL, u, 0) != CURLUE_OK)
        die("bad --target or --path");
    /* What sluice sends an OpenAI-kind provider without a key (bench.yaml):
     * upstream.c's own "Expect:" node, then provider.c's list. The request
     * id is sluice's shape (32 hex digits), one for all: the bytes on the
     * wire are the same. */
    no_proxy_env = !env_names_proxy();
    char ua[64];
    snprintf(ua, sizeof ua, "User-Agent: sluice/%s", opt.version);
    const char *lines[] = {"Expect:", "Content-Type: application/json", ua,
                           "x-request-id: 0123456789abcdef0123456789abcdef"};
    for (size_t i = 0; i < sizeof lines / sizeof *lines; i++)
        if (!(headers = curl_slist_append(headers, lines[i])))
            die("out of memory");
    if (!(multi = curl_multi_init()))
        die("curl_multi_init failed");
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, 10000L);
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);

    printf("libcurl=%s\nbare=%d\nreuse_limit=%ld\nbuffersize=%ld\nh2_tls=%d\n",
           curl_version_info(CURLVERSION_NOW)->version, opt.bare, opt.reuse_limit, opt.buffersize, opt.h2_ca != NULL);
    if (opt.closed)
        run_closed();
    else
        run_open();

    while (pooled) {
        slot *s = pool[--pooled];
        curl_easy_cleanup(s->easy);
        free(s);
    }
    curl_multi_cleanup(multi);
    curl_url_cleanup(url);
    curl_share_cleanup(share);
    curl_slist_free_all(headers);
    free(body);
    curl_global_cleanup();
    return err_n || active ? 1 : 0;
}
