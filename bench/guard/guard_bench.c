/*
 * Guardrail scanner cost: CPU nanoseconds per KiB of text scanned, for one
 * guardrail with every built-in detector and 50 deny patterns, for the
 * detectors alone and for the patterns alone (bench/guard/guard.yaml), on
 * whole texts and on the same text arriving as a stream of 24-byte deltas.
 * The text is English prose with a little PII sprinkled in (about one item
 * per KiB), the shape of a chat request.
 *
 *   build/bench/guard-bench [KiB] [rounds]     (defaults: 256 KiB, 20 rounds)
 *
 * Thread CPU time (CLOCK_THREAD_CPUTIME_ID), median of the rounds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guard/guard.h"
#include "table.h"

static const char *const prose[] = {
    "The quarterly review covers the migration of the billing service to the new cluster. ",
    "Please summarise the attached notes and list the open questions for the team. ",
    "We agreed to ship the feature behind a flag and to measure latency before rollout. ",
    "Could you rewrite this paragraph in a friendlier tone, keeping it under 80 words? ",
    "The customer asked whether the export can run nightly and what it would cost. ",
    "Here is the stack trace from yesterday: ValueError in parse_config at line 42. ",
};
static const char *const pii[] = {
    "Contact jane.doe@example.com for details. ", "Call +1 415 555 2671 after 5pm. ",
    "Card 4111 1111 1111 1111 was declined. ", "Server 10.20.30.40 is down. ",
};

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median ns per KiB of scanning `text` with `rails`, whole (piece 0) or in pieces. */
static double run(uint32_t rails, const char *text, size_t n, size_t piece, int rounds)
{
    double *t = calloc((size_t)rounds, sizeof *t);
    sl_buf out = {0}, held = {0};
    for (int r = 0; r < rounds; r++) {
        sl_guard_req *g = sl_guard_req_new(sl_spec.guard, rails);
        double t0 = now_ns();
        size_t used;
        if (!piece) {
            sl_buf_clear(&out);
            if (sl_guard_text(g, SL_GUARD_REQUEST, text, n, 1, &out, &used) != 0)
                abort();
        } else {
            sl_buf_clear(&held);
            for (size_t off = 0; off < n; off += piece) {
                size_t k = n - off < piece ? n - off : piece;
                sl_buf_append(&held, text + off, k);
                sl_buf_clear(&out);
                if (sl_guard_text(g, SL_GUARD_REQUEST, held.data, held.len, off + k == n, &out, &used) != 0)
                    abort();
                memmove(held.data, held.data + used, held.len - used);
                held.len -= used;
            }
        }
        t[r] = (now_ns() - t0) / ((double)n / 1024.0);
        sl_guard_req_free(g);
    }
    qsort(t, (size_t)rounds, sizeof *t, cmp);
    double m = t[rounds / 2];
    free(t);
    sl_buf_free(&out);
    sl_buf_free(&held);
    return m;
}

int main(int argc, char **argv)
{
    size_t kib = argc > 1 ? strtoul(argv[1], NULL, 10) : 256;
    int rounds = argc > 2 ? atoi(argv[2]) : 20;
    if (kib == 0 || rounds <= 0)
        return 2;
    size_t n = kib * 1024;
    char *text = malloc(n + 256);
    size_t len = 0, k = 0;
    while (len < n) {
        const char *s = (k % 12 == 11) ? pii[(k / 12) % 4] : prose[k % 6];
        size_t l = strlen(s);
        memcpy(text + len, s, l);
        len += l;
        k++;
    }
    len = n;
    text[len] = '\0';
    const sl_guard_spec *g = sl_spec.guard;
    printf("guardrail scan, %zu KiB of prose with PII, median of %d rounds, CPU ns per KiB\n", kib, rounds);
    for (uint32_t i = 0; i < g->rail_count; i++)
        printf("  %-10s (%u detectors, %2u deny patterns): whole %8.0f   stream of 24-byte deltas %8.0f\n",
               g->rails[i].name, (unsigned)__builtin_popcount(g->rails[i].detectors), g->rails[i].deny_count,
               run(1u << i, text, len, 0, rounds), run(1u << i, text, len, 24, rounds));
    free(text);
    return 0;
}
