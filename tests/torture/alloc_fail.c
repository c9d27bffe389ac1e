/*
 * Allocation-failure injection for the gateway, loaded with LD_PRELOAD (in
 * the spirit of curl's "torture" tests). It stays inert unless
 * SLUICE_TORTURE_FAIL_AT is set. Then, once the process receives SIGUSR1
 * (the driver sends it when the gateway is up, so start-up is not what gets
 * tested), it counts the malloc/calloc/realloc calls made by the main thread
 * (with --workers 1 that is the only event-loop thread; the ledger writer
 * and libcurl helper threads stay out of the count so a given N hits the
 * same call site run after run) and makes call number N return NULL. N = 0
 * fails nothing and only counts.
 *
 * It also keeps the set of blocks those counted calls returned and that
 * are still live, so at exit it can say which allocations made after
 * arming were never freed, each with a short backtrace; and it prints a
 * backtrace when the process dies of a fatal signal. Everything is written
 * to stderr on lines starting with "torture:", for the driver to parse.
 *
 * Environment: SLUICE_TORTURE_FAIL_AT=N, SLUICE_TORTURE_THREADS=all to count
 * every thread instead of the main one.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <execinfo.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* glibc's own entry points: calling them avoids dlsym(RTLD_NEXT), which may
 * itself allocate while the interposed malloc is being resolved. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

#define FRAMES 8
#define TABLE_BITS 17
#define TABLE_SIZE (1u << TABLE_BITS)
#define TOMBSTONE ((void *)1)

typedef struct entry {
    void *ptr;
    uint64_t seq;
    size_t size;
    int nframes;
    void *frames[FRAMES];
} entry;

static int enabled;               /* SLUICE_TORTURE_FAIL_AT is set */
static int all_threads;
static uint64_t fail_at;
static pthread_t main_thread;
static atomic_int armed;
static atomic_uint_fast64_t seq;  /* counted calls since arming */
static atomic_int failed;         /* the Nth call has been failed */
static entry *table;              /* live blocks from counted calls */
static size_t live, dropped;
static atomic_flag lock = ATOMIC_FLAG_INIT;
static __thread int inside;       /* re-entrancy guard (backtrace, printing) */

static void say(const char *fmt, ...)
{
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof line - 1)
        n = (int)sizeof line - 1;
    if (n > 0) {
        ssize_t ignored = write(2, line, (size_t)n);
        (void)ignored;
    }
}

/* "module+0xoffset" per frame: the driver resolves them with addr2line. */
static void say_frames(void *const *frames, int n)
{
    for (int i = 0; i < n; i++) {
        Dl_info info;
        if (dladdr(frames[i], &info) && info.dli_fname) {
            say("torture:   #%d %s+0x%lx %s\n", i, info.dli_fname,
                (unsigned long)((uintptr_t)frames[i] - (uintptr_t)info.dli_fbase),
                info.dli_sname ? info.dli_sname : "?");
        } else {
            say("torture:   #%d %p\n", i, frames[i]);
        }
    }
}

static void lock_table(void)
{
    while (atomic_flag_test_and_set_explicit(&lock, memory_order_acquire))
        ;
}

static void unlock_table(void) { atomic_flag_clear_explicit(&lock, memory_order_release); }

static size_t slot_of(const void *p) { return ((uintptr_t)p >> 4) * 0x9E3779B97F4A7C15ull >> (64 - TABLE_BITS); }

static void track(void *p, size_t size, uint64_t n)
{
    void *frames[FRAMES + 2];
    int nf = 0;
    if (!inside) {
        inside = 1;
        nf = backtrace(frames, FRAMES + 2);
        inside = 0;
    }
    lock_table();
    size_t i = slot_of(p);
    for (size_t probes = 0; probes < TABLE_SIZE; probes++, i = (i + 1) & (TABLE_SIZE - 1)) {
        if (table[i].ptr == NULL || table[i].ptr == TOMBSTONE) {
            entry *e = &table[i];
            e->ptr = p;
            e->seq = n;
            e->size = size;
            /* Skip this function and the interposed allocator. */
            e->nframes = nf > 2 ? nf - 2 : 0;
            if (e->nframes)
                memcpy(e->frames, frames + 2, (size_t)e->nframes * sizeof *frames);
            live++;
            unlock_table();
            return;
        }
    }
    dropped++;
    unlock_table();
}

static void untrack(void *p)
{
    if (!p || !table || !atomic_load_explicit(&armed, memory_order_relaxed))
        return;
    lock_table();
    if (live) {
        size_t i = slot_of(p);
        for (size_t probes = 0; probes < TABLE_SIZE; probes++, i = (i + 1) & (TABLE_SIZE - 1)) {
            if (table[i].ptr == NULL)
                break;
            if (table[i].ptr == p) {
                table[i].ptr = TOMBSTONE;
                live--;
                break;
            }
        }
    }
    unlock_table();
}

/* Returns the call's number (>= 1) when this call is counted, else 0. */
static uint64_t counted(void)
{
    if (!enabled || inside || !atomic_load_explicit(&armed, memory_order_relaxed))
        return 0;
    if (!all_threads && !pthread_equal(pthread_self(), main_thread))
        return 0;
    return atomic_fetch_add(&seq, 1) + 1;
}

static int must_fail(uint64_t n, const char *fn, size_t size)
{
    if (n == 0 || n != fail_at)
        return 0;
    atomic_store(&failed, 1);
    inside = 1;
    void *frames[32];
    int nf = backtrace(frames, 32);
    say("torture: failing allocation %llu: %s(%zu)\n", (unsigned long long)n, fn, size);
    say_frames(frames + 1, nf - 1);
    inside = 0;
    errno = ENOMEM;
    return 1;
}

void *malloc(size_t size)
{
    uint64_t n = counted();
    if (must_fail(n, "malloc", size))
        return NULL;
    void *p = __libc_malloc(size);
    if (p && n)
        track(p, size, n);
    return p;
}

void *calloc(size_t nmemb, size_t size)
{
    uint64_t n = counted();
    if (must_fail(n, "calloc", nmemb * size))
        return NULL;
    void *p = __libc_calloc(nmemb, size);
    if (p && n)
        track(p, nmemb * size, n);
    return p;
}

void *realloc(void *old, size_t size)
{
    uint64_t n = counted();
    if (must_fail(n, "realloc", size))
        return NULL; /* old stays valid, as with a real failure */
    void *p = __libc_realloc(old, size);
    if (old && (p || size == 0))
        untrack(old);
    if (p && n)
        track(p, size, n);
    return p;
}

void free(void *p)
{
    untrack(p);
    __libc_free(p);
}

static void on_arm(int sig)
{
    (void)sig;
    atomic_store(&armed, 1);
}

static void on_fatal(int sig)
{
    inside = 1;
    void *frames[32];
    int nf = backtrace(frames, 32);
    say("torture: fatal signal %d after %llu counted allocation(s), failing #%llu%s\n", sig,
        (unsigned long long)atomic_load(&seq), (unsigned long long)fail_at,
        atomic_load(&failed) ? " (failed)" : " (not reached)");
    say_frames(frames, nf);
    signal(sig, SIG_DFL);
    raise(sig);
}

__attribute__((constructor)) static void torture_init(void)
{
    const char *at = getenv("SLUICE_TORTURE_FAIL_AT");
    if (!at)
        return;
    fail_at = strtoull(at, NULL, 10);
    const char *th = getenv("SLUICE_TORTURE_THREADS");
    all_threads = th && strcmp(th, "all") == 0;
    main_thread = pthread_self();
    table = mmap(NULL, TABLE_SIZE * sizeof *table, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (table == MAP_FAILED) {
        say("torture: cannot map the tracking table\n");
        table = NULL;
        return;
    }
    /* backtrace() loads libgcc on first use, which allocates: do it now. */
    void *warm[2];
    backtrace(warm, 2);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_arm;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGUSR1, &sa, NULL);
    sa.sa_handler = on_fatal;
    sa.sa_flags = SA_RESETHAND;
    sigaction(SIGSEGV, &sa, NULL);
    sigaction(SIGBUS, &sa, NULL);
    sigaction(SIGABRT, &sa, NULL);
    sigaction(SIGFPE, &sa, NULL);
    sigaction(SIGILL, &sa, NULL);
    enabled = 1;
}

/* Runs after main returns (exit()), once the gateway has freed what it
 * owns. A process killed by a signal never gets here, which the driver
 * notices by the missing summary line. */
__attribute__((destructor)) static void torture_fini(void)
{
    if (!enabled)
        return;
    inside = 1;
    lock_table();
    say("torture: summary armed=%d counted=%llu fail_at=%llu failed=%d live=%zu dropped=%zu\n",
        atomic_load(&armed), (unsigned long long)atomic_load(&seq), (unsigned long long)fail_at,
        atomic_load(&failed), live, dropped);
    size_t shown = 0;
    for (size_t i = 0; i < TABLE_SIZE && shown < 20; i++) {
        entry *e = &table[i];
        if (e->ptr == NULL || e->ptr == TOMBSTONE)
            continue;
        say("torture: live allocation %llu (%zu bytes) never freed:\n", (unsigned long long)e->seq,
            e->size);
        say_frames(e->frames, e->nframes);
        shown++;
    }
    unlock_table();
}
