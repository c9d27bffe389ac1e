/*
 * A process-wide budget for bytes buffered on behalf of clients: request
 * bodies while they arrive and while their exchange runs, and (charged by
 * the proxy) upstream bodies held for translation or retry. Per-connection
 * limits cannot bound the total, because a thousand connections each within
 * max_body still add up to more memory than the host has; one shared counter
 * can, and refusing the one request that would cross it (503, retry later)
 * beats the kernel's OOM killer ending every request at once. Lock-free:
 * every worker thread reserves and releases on its own hot path.
 */
#ifndef SLUICE_MEMBUDGET_H
#define SLUICE_MEMBUDGET_H

#include <stddef.h>

/* The limit before sl_membudget_set_limit is called. sluice's main.c
 * raises it to four max-size bodies when max_body is larger than a quarter
 * of this, so a single maximal request always fits. */
#define SL_MEMBUDGET_DEFAULT ((size_t)256 << 20)

/* Charge n bytes. 0 when they fit under the limit, -1 (nothing charged)
 * when they would cross it. */
int sl_membudget_reserve(size_t n);
/* Give back bytes charged earlier; every reserve is matched by a release
 * of the same total. */
void sl_membudget_release(size_t n);
/* 0 = no limit (bytes are still counted). Lowering the limit below what is
 * in use refuses new reservations until enough is released. */
void sl_membudget_set_limit(size_t limit);
/* Bytes charged now, across all threads. */
size_t sl_membudget_used(void);

#endif
