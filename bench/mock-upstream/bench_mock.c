/*
 * bench-mock: the upstream the benchmark puts behind every contender. It
 * answers POST .../chat/completions (OpenAI shape) and POST .../messages
 * (Anthropic shape) after a configurable delay, with a Content-Length body
 * of an exact size, or, when the request body says "stream": true, with a
 * chunked SSE stream of N events spaced T ms apart, one event per write so
 * a proxy that coalesces events is visible at the client. Every response is
 * prebuilt at start-up, so serving one costs a parse, a timer and a write;
 * that keeps the mock far from being the bottleneck (bench/run measures its
 * capacity with wrk). Unlike tests/mock-upstream it has no fault injection
 * or request log: it exists to be fast and predictable.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

enum { K_OPENAI, K_ANTHROPIC, K_COUNT };

#define MAX_REQUEST (1u << 20)

typedef struct {
    char *p;
    size_t n;
} piece;

/* Prebuilt responses, shared read-only by every thread. */
static piece full_keep[K_COUNT], full_close[K_COUNT];
static piece stream_first[K_COUNT]; /* headers + event 0 */
static piece *stream_next[K_COUNT]; /* events 1..n-1, chunk-framed; the last ends the body */
static int stream_events[K_COUNT];
static piece not_found;

static struct {
    const char *listen;
    int threads;
    double latency_ms, jitter_ms;
    size_t size;
    int sse_chunks;
    double sse_interval_ms;
} opt = {"127.0.0.1:18501", 1, 0, 0, 1400, 20, 20};

typedef struct worker {
    struct ev_loop *loop;
    int lfd;
    ev_io accept_io;
    uint64_t rng;
    pthread_t thread;
} worker;

typedef struct conn {
    worker *w;
    int fd;
    ev_io rio, wio;
    ev_timer tm;
    char *in;
    size_t in_len, in_cap;
    const char *out;
    size_t out_len, out_off;
    int kind, stream, next_event, close_after, busy;
    double stream_t0;         /* when event 0 went out */
} conn;

/* ---- prebuilt bodies --------------------------------------------------- */

static piece piece_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static piece piece_printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    piece pc = {0};
    int n = vasprintf(&pc.p, fmt, ap);
    va_end(ap);
    if (n < 0) {
        perror("bench-mock: vasprintf");
        exit(1);
    }
    pc.n = (size_t)n;
    return pc;
}

/* Filler text without characters JSON would need to escape. */
static char *filler(size_t n)
{
    static const char words[] = "lorem ipsum dolor sit amet consectetur adipiscing elit ";
    char *s = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        s[i] = words[i % (sizeof words - 1)];
    s[n] = 0;
    return s;
}

static piece full_body(int kind, size_t want)
{
    static const char *fmt[K_COUNT] = {
        "{\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion\",\"created\":1700000000,"
        "\"model\":\"bench-model\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
        "\"content\":\"%s\"},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":64,\"total_tokens\":76}}",
        "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"bench-model\","
        "\"content\":[{\"type\":\"text\",\"text\":\"%s\"}],\"stop_reason\":\"end_turn\","
        "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,\"output_tokens\":64}}",
    };
    size_t skeleton = strlen(fmt[kind]) - 2;
    char *fill = filler(want > skeleton ? want - skeleton : 0);
    piece b = piece_printf(fmt[kind], fill);
    free(fill);
    return b;
}

static piece chunk_frame(const char *event)
{
    return piece_printf("%zx\r\n%s\r\n", strlen(event), event);
}

static void build_responses(void)
{
    for (int k = 0; k < K_COUNT; k++) {
        piece body = full_body(k, opt.size);
        full_keep[k] = piece_printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                    "Content-Length: %zu\r\n\r\n%s", body.n, body.p);
        full_close[k] = piece_printf("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                     "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                                     body.n, body.p);
        free(body.p);
    }

    /* OpenAI: n-1 chunk events (the last carries finish_reason), then [DONE]. */
    int n = opt.sse_chunks < 2 ? 2 : opt.sse_chunks;
    char **ev = calloc((size_t)n + 8, sizeof *ev);
    for (int i = 0; i < n - 1; i++) {
        piece p = piece_printf(
            "data: {\"id\":\"chatcmpl-bench\",\"object\":\"chat.completion.chunk\","
            "\"created\":1700000000,\"model\":\"bench-model\",\"choices\":[{\"index\":0,"
            "\"delta\":{%s\"content\":\"tok%d \"},\"finish_reason\":%s}]}\n\n",
            i == 0 ? "\"role\":\"assistant\"," : "", i, i == n - 2 ? "\"stop\"" : "null");
        ev[i] = p.p;
    }
    ev[n - 1] = strdup("data: [DONE]\n\n");
    stream_events[K_OPENAI] = n;

    /* Anthropic: the fixed envelope events around at least one delta. */
    int deltas = n - 5 < 1 ? 1 : n - 5;
    int m = 0;
    char **aev = calloc((size_t)deltas + 8, sizeof *aev);
    aev[m++] = piece_printf("event: message_start\ndata: {\"type\":\"message_start\",\"message\":"
                            "{\"id\":\"msg_bench\",\"type\":\"message\",\"role\":\"assistant\","
                            "\"model\":\"bench-model\",\"content\":[],\"stop_reason\":null,"
                            "\"stop_sequence\":null,\"usage\":{\"input_tokens\":12,"
                            "\"output_tokens\":1}}}\n\n").p;
    aev[m++] = strdup("event: content_block_start\ndata: {\"type\":\"content_block_start\","
                      "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
    for (int i = 0; i < deltas; i++)
        aev[m++] = piece_printf("event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                                "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"tok%d \"}}\n\n",
                                i).p;
    aev[m++] = strdup("event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n");
    aev[m++] = piece_printf("event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
                            "{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},"
                            "\"usage\":{\"output_tokens\":%d}}\n\n", deltas).p;
    aev[m++] = strdup("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
    stream_events[K_ANTHROPIC] = m;

    char **all[K_COUNT] = {ev, aev};
    for (int k = 0; k < K_COUNT; k++) {
        int cnt = stream_events[k];
        piece c0 = chunk_frame(all[k][0]);
        stream_first[k] = piece_printf("HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                       "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n%s",
                                       c0.p);
        free(c0.p);
        stream_next[k] = calloc((size_t)cnt, sizeof(piece));
        for (int i = 1; i < cnt; i++) {
            piece c = chunk_frame(all[k][i]);
            if (i == cnt - 1) {
                stream_next[k][i] = piece_printf("%s0\r\n\r\n", c.p);
                free(c.p);
            } else {
                stream_next[k][i] = c;
            }
        }
        for (int i = 0; i < cnt; i++)
            free(all[k][i]);
        free(all[k]);
    }
    not_found = piece_printf("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                             "Content-Length: 21\r\n\r\n{\"error\":\"not found\"}");
}

/* ---- connections ------------------------------------------------------- */

static double rand01(worker *w)
{
    /* xorshift64*: cheap and per thread, no locking. */
    uint64_t x = w->rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    w->rng = x;
    return (double)((x * 2685821657736338717ull) >> 11) / 9007199254740992.0;
}

static void conn_close(conn *c)
{
    ev_io_stop(c->w->loop, &c->rio);
    ev_io_stop(c->w->loop, &c->wio);
    ev_timer_stop(c->w->loop, &c->tm);
    close(c->fd);
    free(c->in);
    free(c);
}

static void try_parse(conn *c);

static void response_done(conn *c)
{
    c->busy = 0;
    if (c->close_after) {
        conn_close(c);
        return;
    }
    ev_io_start(c->w->loop, &c->rio);
    if (c->in_len)
        try_parse(c);
}

static void after_write(conn *c)
{
    if (c->stream && c->next_event < stream_events[c->kind]) {
        /* Event i is due at t0 + i * interval, so gaps do not drift with
         * how long each write or wake-up took. */
        double due = c->stream_t0 + c->next_event * opt.sse_interval_ms / 1000.0;
        double wait = due - ev_time();
        ev_now_update(c->w->loop);
        ev_timer_set(&c->tm, wait > 0 ? wait : 0., 0.);
        ev_timer_start(c->w->loop, &c->tm);
        return;
    }
    response_done(c);
}

/* Sends what is left of c->out; on completion moves the exchange on. May free c. */
static void flush_out(conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ev_io_start(c->w->loop, &c->wio);
            return;
        }
        conn_close(c);
        return;
    }
    ev_io_stop(c->w->loop, &c->wio);
    after_write(c);
}

static void send_piece(conn *c, piece p)
{
    c->out = p.p;
    c->out_len = p.n;
    c->out_off = 0;
    flush_out(c);
}

static void write_cb(struct ev_loop *loop, ev_io *wio, int revents)
{
    flush_out((conn *)wio->data);
}

static void timer_cb(struct ev_loop *loop, ev_timer *t, int revents)
{
    conn *c = t->data;
    if (!c->stream) {
        send_piece(c, c->close_after ? full_close[c->kind] : full_keep[c->kind]);
    } else if (c->next_event == 0) {
        c->next_event = 1;
        c->stream_t0 = ev_time();
        send_piece(c, stream_first[c->kind]);
    } else {
        int i = c->next_event++;
        send_piece(c, stream_next[c->kind][i]);
    }
}

static int header_is(const char *line, size_t len, const char *name, const char **val, size_t *vlen)
{
    size_t nl = strlen(name);
    if (len <= nl || line[nl] != ':' || strncasecmp(line, name, nl) != 0)
        return 0;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    *val = v;
    *vlen = (size_t)(end - v);
    return 1;
}

/* "stream" : true anywhere in the body; the bench bodies are ours. */
static int wants_stream(const char *b, size_t n)
{
    const char *end = b + n;
    for (const char *p = memmem(b, n, "\"stream\"", 8); p; p = memmem(p + 1, (size_t)(end - p - 1), "\"stream\"", 8)) {
        const char *q = p + 8;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (q >= end || *q != ':')
            continue;
        q++;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r'))
            q++;
        if (end - q >= 4 && memcmp(q, "true", 4) == 0)
            return 1;
    }
    return 0;
}

static void try_parse(conn *c)
{
    char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!hend) {
        if (c->in_len >= 65536)
            conn_close(c);
        return;
    }
    size_t head_len = (size_t)(hend - c->in) + 4;
    char *line_end = memmem(c->in, head_len, "\r\n", 2);
    size_t clen = 0;
    int close_after = 0;
    /* Request line: METHOD SP PATH SP VERSION */
    char *sp1 = memchr(c->in, ' ', (size_t)(line_end - c->in));
    char *sp2 = sp1 ? memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1)) : NULL;
    if (!sp2) {
        conn_close(c);
        return;
    }
    if (line_end - sp2 - 1 == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
        close_after = 1;
    for (char *l = line_end + 2; l < hend;) {
        char *e = memmem(l, (size_t)(hend + 2 - l), "\r\n", 2);
        const char *v;
        size_t vl;
        if (header_is(l, (size_t)(e - l), "content-length", &v, &vl))
            clen = strtoul(v, NULL, 10);
        else if (header_is(l, (size_t)(e - l), "connection", &v, &vl))
            close_after = vl >= 5 && strncasecmp(v, "close", 5) == 0 ? 1
                          : (vl >= 10 && strncasecmp(v, "keep-alive", 10) == 0 ? 0 : close_after);
        l = e + 2;
    }
    if (clen > MAX_REQUEST) {
        conn_close(c);
        return;
    }
    if (c->in_len < head_len + clen)
        return; /* wait for the rest of the body */

    size_t path_len = (size_t)(sp2 - sp1 - 1);
    const char *path = sp1 + 1;
    const char *q = memchr(path, '?', path_len);
    if (q)
        path_len = (size_t)(q - path);
    int kind = -1;
    if (path_len >= 17 && memcmp(path + path_len - 17, "/chat/completions", 17) == 0)
        kind = K_OPENAI;
    else if (path_len >= 9 && memcmp(path + path_len - 9, "/messages", 9) == 0)
        kind = K_ANTHROPIC;
    int stream = kind >= 0 && wants_stream(c->in + head_len, clen);

    size_t used = head_len + clen;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;

    c->busy = 1;
    c->close_after = close_after;
    ev_io_stop(c->w->loop, &c->rio);
    if (kind < 0) {
        c->stream = 0;
        send_piece(c, not_found);
        return;
    }
    c->kind = kind;
    c->stream = stream;
    c->next_event = 0;
    double delay = opt.latency_ms + (opt.jitter_ms > 0 ? opt.jitter_ms * rand01(c->w) : 0);
    if (delay <= 0) {
        timer_cb(c->w->loop, &c->tm, 0);
        return;
    }
    ev_timer_set(&c->tm, delay / 1000.0, 0.);
    ev_timer_start(c->w->loop, &c->tm);
}

static void read_cb(struct ev_loop *loop, ev_io *rio, int revents)
{
    conn *c = rio->data;
    for (;;) {
        if (c->in_cap - c->in_len < 4096) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 8192;
            if (cap > MAX_REQUEST + 65536) {
                conn_close(c);
                return;
            }
            char *p = realloc(c->in, cap);
            if (!p) {
                conn_close(c);
                return;
            }
            c->in = p;
            c->in_cap = cap;
        }
        ssize_t n = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (n > 0) {
            c->in_len += (size_t)n;
            if ((size_t)n < c->in_cap - c->in_len + (size_t)n)
                break; /* short read: the socket is drained */
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        conn_close(c);
        return;
    }
    if (!c->busy)
        try_parse(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *aio, int revents)
{
    worker *w = aio->data;
    for (int i = 0; i < 256; i++) {
        int fd = accept4(w->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR && errno != ECONNABORTED)
                perror("bench-mock: accept");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->w = w;
        c->fd = fd;
        ev_io_init(&c->rio, read_cb, fd, EV_READ);
        ev_io_init(&c->wio, write_cb, fd, EV_WRITE);
        ev_init(&c->tm, timer_cb);
        c->rio.data = c->wio.data = c->tm.data = c;
        ev_io_start(loop, &c->rio);
    }
}

static int listen_socket(const char *spec)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || (size_t)(colon - spec) >= sizeof host) {
        fprintf(stderr, "bench-mock: --listen wants HOST:PORT\n");
        return -1;
    }
    memcpy(host, spec, (size_t)(colon - spec));
    host[colon - spec] = 0;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1))};
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "bench-mock: bad IPv4 address '%s'\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 4096) != 0) {
        fprintf(stderr, "bench-mock: cannot listen on %s: %s\n", spec, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

static void *worker_main(void *arg)
{
    worker *w = arg;
    ev_run(w->loop, 0);
    return NULL;
}

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench-mock [options]\n"
            "  --listen HOST:PORT     (default 127.0.0.1:18501)\n"
            "  --threads N            event-loop threads, SO_REUSEPORT (default 1)\n"
            "  --latency-ms MS        delay before the response / first event (default 0)\n"
            "  --jitter-ms MS         plus a uniform random 0..MS (default 0)\n"
            "  --size BYTES           non-streaming body size, e.g. 1400 or 10000 (default 1400)\n"
            "  --sse-chunks N         events per streamed response (default 20)\n"
            "  --sse-interval-ms MS   gap between streamed events (default 20)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"listen", required_argument, NULL, 'l'},     {"threads", required_argument, NULL, 't'},
        {"latency-ms", required_argument, NULL, 'L'}, {"jitter-ms", required_argument, NULL, 'J'},
        {"size", required_argument, NULL, 's'},       {"sse-chunks", required_argument, NULL, 'n'},
        {"sse-interval-ms", required_argument, NULL, 'i'}, {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (ch) {
        case 'l': opt.listen = optarg; break;
        case 't': opt.threads = atoi(optarg); break;
        case 'L': opt.latency_ms = atof(optarg); break;
        case 'J': opt.jitter_ms = atof(optarg); break;
        case 's': opt.size = strtoul(optarg, NULL, 10); break;
        case 'n': opt.sse_chunks = atoi(optarg); break;
        case 'i': opt.sse_interval_ms = atof(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (opt.threads < 1 || opt.threads > 64 || opt.sse_chunks < 1 || opt.latency_ms < 0 ||
        opt.jitter_ms < 0 || opt.sse_interval_ms < 0) {
        usage(stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    build_responses();

    worker *ws = calloc((size_t)opt.threads, sizeof *ws);
    for (int i = 0; i < opt.threads; i++) {
        worker *w = &ws[i];
        w->lfd = listen_socket(opt.listen);
        if (w->lfd < 0)
            return 1;
        w->loop = i == 0 ? ev_default_loop(0) : ev_loop_new(0);
        w->rng = 0x9E3779B97F4A7C15ull ^ ((uint64_t)(i + 1) * 0xD1B54A32D192ED03ull);
        ev_io_init(&w->accept_io, accept_cb, w->lfd, EV_READ);
        w->accept_io.data = w;
        ev_io_start(w->loop, &w->accept_io);
    }
    fprintf(stderr, "bench-mock: listening on %s (%d thread%s, latency %.1f+%.1f ms, size %zu, sse %d x %.1f ms)\n",
            opt.listen, opt.threads, opt.threads == 1 ? "" : "s", opt.latency_ms, opt.jitter_ms, opt.size,
            opt.sse_chunks, opt.sse_interval_ms);
    for (int i = 1; i < opt.threads; i++)
        pthread_create(&ws[i].thread, NULL, worker_main, &ws[i]);
    ev_run(ws[0].loop, 0);
    return 0;
}
