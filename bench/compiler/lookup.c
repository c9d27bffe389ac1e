/*
 * Lookup cost of a generated model matcher: links against one spec's
 * generated table and DFA and times sl_spec.match_model() over names that
 * hit every entry (globs filled in) plus names that miss. Prints entries,
 * names and nanoseconds per lookup. Built and run by bench/compiler/run.sh.
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

int main(void)
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
    volatile long sink = 0;
    size_t rounds = 0;
    double t0 = now(), t1;
    do {
        for (size_t i = 0; i < k; i++)
            sink += sl_spec.match_model(names[i], lens[i]);
        rounds++;
        t1 = now();
    } while (t1 - t0 < 0.5);
    printf("entries %zu, names %zu, %.1f ns per lookup\n", n, k,
           (t1 - t0) * 1e9 / (double)(rounds * k));
    return sink == 42 ? 1 : 0;
}
