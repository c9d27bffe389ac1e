/*
 * Lookup cost of a generated model matcher: links against one spec's
 * generated table and DFA and times sl_spec.match_model() over names that
 * hit every entry (globs filled in) plus names that miss. Prints entries,
 * names and nanoseconds per lookup (the fastest of several samples).
 * With an argument W, only W of those names spread evenly over the spec
 * are looked up: the same working set at every spec size, which separates
 * what the matcher costs from what a working set of 12,000 names costs in
 * cache misses. Built and run by bench/compiler/run.sh.
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "table.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t n = sl_spec.model_count, total = n + n / 4 + 1;
    char **names = calloc(total, sizeof *names);
    size_t *lens = calloc(total, sizeof *lens);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *m = sl_spec.models[i].name;
        char *s = malloc(strlen(m) * 8 + 16), *o = s;
        for (const char *p = m; *p; p++) {
            if (*p == '*')
                o += sprintf(o, "mini-%zu", i);
            else if (*p == '?')
                *o++ = 'q';
            else
                *o++ = *p;
        }
        *o = '\0';
        names[k] = s;
        lens[k++] = strlen(s);
    }
    for (size_t i = 0; i <= n / 4; i++) {
        names[k] = malloc(32);
        snprintf(names[k], 32, "zz-no-such-model-%zu", i);
        lens[k] = strlen(names[k]);
        k++;
    }
    if (argc > 1) {
        size_t w = strtoul(argv[1], NULL, 10);
        if (w > 0 && w < k) {
            for (size_t i = 0; i < w; i++) {
                names[i] = names[i * k / w];
                lens[i] = lens[i * k / w];
            }
            k = w;
        }
    }
    /* The fastest of 20 samples of at least 25 ms each: on a shared
     * machine the minimum is what the code costs, the mean is what the
     * neighbours cost. */
    volatile long sink = 0;
    double best = 1e30;
    for (int sample = 0; sample < 20; sample++) {
        size_t rounds = 0;
        double t0 = now(), t1;
        do {
            for (size_t i = 0; i < k; i++)
                sink += sl_spec.match_model(names[i], lens[i]);
            rounds++;
            t1 = now();
        } while (t1 - t0 < 0.025);
        double ns = (t1 - t0) * 1e9 / (double)(rounds * k);
        if (ns < best)
            best = ns;
    }
    printf("entries %zu, names %zu, %.1f ns per lookup (fastest of 20 samples)\n", n, k, best);
    return sink == 42 ? 1 : 0;
}
