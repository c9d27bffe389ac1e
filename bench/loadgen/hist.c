/* bench-loadgen's log-linear latency histogram (loadgen.h). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "loadgen.h"

static int bucket_of(uint64_t v)
{
    if (v < 2 * SUB)
        return (int)v;
    int shift = 63 - __builtin_clzll(v) - SUB_BITS; /* v >> shift lands in [SUB, 2 SUB) */
    int i = shift * SUB + (int)(v >> shift);
    return i < NBUCKETS ? i : NBUCKETS - 1;
}

static double bucket_mid(int i)
{
    if (i < 2 * SUB)
        return i;
    int shift = i / SUB - 1;
    uint64_t lo = (uint64_t)(i - shift * SUB) << shift;
    return (double)lo + (double)((1ull << shift) - 1) / 2.0;
}

void hist_add(hist *h, double us)
{
    uint64_t v = us < 0 ? 0 : (uint64_t)(us + 0.5);
    h->b[bucket_of(v)]++;
    h->n++;
    h->sum += (double)v;
    if (v > h->max)
        h->max = v;
}

double hist_pct(const hist *h, double p)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->n);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (int i = 0; i < NBUCKETS; i++) {
        seen += h->b[i];
        if (seen >= rank) {
            double m = bucket_mid(i);
            return m > (double)h->max ? (double)h->max : m;
        }
    }
    return (double)h->max;
}


void print_hist(const char *name, const hist *h)
{
    static const struct { const char *k; double p; } ps[] = {
        {"p50", 50}, {"p90", 90}, {"p99", 99}, {"p999", 99.9},
    };
    for (size_t i = 0; i < sizeof ps / sizeof ps[0]; i++)
        printf("%s_%s_us=%.0f\n", name, ps[i].k, hist_pct(h, ps[i].p));
    printf("%s_max_us=%llu\n", name, (unsigned long long)h->max);
    printf("%s_mean_us=%.0f\n", name, h->n ? h->sum / (double)h->n : 0);
    printf("%s_n=%llu\n", name, (unsigned long long)h->n);
}
