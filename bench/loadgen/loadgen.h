/*
 * What bench-loadgen's files share: the latency histogram (hist.c), one
 * connection's exchange state and the response parser that advances it
 * (response.c), and the monotonic clock everything is timed with. The
 * scheduler, connections and main() are in loadgen.c.
 */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <ev.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- log-linear histogram of microseconds (< 0.1% bucket error) ------- */

#define SUB_BITS 10
#define SUB (1 << SUB_BITS)
#define NBUCKETS (SUB * 40)

typedef struct {
    uint64_t b[NBUCKETS];
    uint64_t n, max;
    double sum;
} hist;

void hist_add(hist *h, double us);
/* The p-th percentile (0..100), from the bucket's midpoint, capped at max. */
double hist_pct(const hist *h, double p);
/* Prints name's percentiles, max, mean and count as key=value lines. */
void print_hist(const char *name, const hist *h);

/* ---- one connection and its exchange in progress ---------------------- */

enum { C_CONNECTING, C_SENDING, C_READING, C_IDLE };
enum { P_HEAD, P_BODY_LEN, P_BODY_EOF, P_CHUNK_SIZE, P_CHUNK_DATA, P_CHUNK_CRLF, P_TRAILER, P_DONE };

typedef struct conn {
    int fd, state;
    ev_io io;
    struct conn *prev, *next; /* idle list, or active list */
    int on_idle;
    unsigned served;          /* requests completed on this connection */
    /* the exchange in progress */
    double intended, deadline;
    size_t sent;
    int retried;
    char head[16384];
    size_t head_len;
    int phase, status, chunked, close_after, got_bytes;
    uint64_t remaining;
    int chunk_size_digits, in_ext;
    int trailer_line_len;
    /* SSE accounting */
    int got_body, prev_nl, events, arrivals;
    double last_arrival;
} conn;

/* Time to first body byte, recorded by the parser as body bytes arrive. */
extern hist h_ttfb;

/* Feeds received bytes through the response state machine. Returns 1 when
 * the response is complete, 0 for more, -1 on a framing error. */
int feed(conn *c, const char *p, size_t n);

static inline double mono(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
