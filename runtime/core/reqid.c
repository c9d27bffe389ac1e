/*
 * Request ids (see reqid.h): validation of client-chosen ids and random
 * ones drawn from a per-thread buffer of getrandom(2) bytes.
 */
#include "core/reqid.h"

#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

int sl_reqid_acceptable(const char *v, size_t n)
{
    if (!v || n == 0 || n > SL_REQID_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

#define POOL (16 * 64)

static _Thread_local unsigned char pool[POOL];
static _Thread_local size_t pool_left;
static _Thread_local uint64_t fallback_count;

/* 16 bytes from the pool, refilled when empty. */
static void draw(unsigned char *b)
{
    if (pool_left < 16) {
        ssize_t got = getrandom(pool, sizeof pool, GRND_NONBLOCK);
        pool_left = got == (ssize_t)sizeof pool ? sizeof pool : 0;
    }
    if (pool_left >= 16) {
        memcpy(b, pool + (POOL - pool_left), 16);
        pool_left -= 16;
        return;
    }
    /* No kernel randomness (seccomp, very early boot): unique, not secret. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t a = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t c = ++fallback_count ^ ((uint64_t)(uintptr_t)&fallback_count << 16);
    memcpy(b, &a, 8);
    memcpy(b + 8, &c, 8);
}

void sl_reqid_random16(unsigned char *b) { draw(b); }

void sl_reqid_new(char *out)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[16];
    draw(b);
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[b[i] >> 4];
        out[2 * i + 1] = hex[b[i] & 15];
    }
    out[32] = '\0';
}

void sl_reqid_take(char *out, const char *v, size_t n)
{
    if (sl_reqid_acceptable(v, n)) {
        memcpy(out, v, n);
        out[n] = '\0';
    } else {
        sl_reqid_new(out);
    }
}
