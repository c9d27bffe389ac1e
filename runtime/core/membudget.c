/*
 * The budget is two atomics: the limit, read on every reservation, and the
 * bytes in use, moved by compare-and-swap so that two threads racing for the
 * last bytes cannot both win and push the total over the limit.
 */
#include "core/membudget.h"

#include <stdatomic.h>

static atomic_size_t budget_limit = SL_MEMBUDGET_DEFAULT;
static atomic_size_t budget_used;

int sl_membudget_reserve(size_t n)
{
    size_t limit = atomic_load_explicit(&budget_limit, memory_order_relaxed);
    size_t cur = atomic_load_explicit(&budget_used, memory_order_relaxed);
    for (;;) {
        if (limit != 0 && (n > limit || cur > limit - n))
            return -1;
        if (atomic_compare_exchange_weak_explicit(&budget_used, &cur, cur + n, memory_order_relaxed,
                                                  memory_order_relaxed))
            return 0;
    }
}

void sl_membudget_release(size_t n)
{
    atomic_fetch_sub_explicit(&budget_used, n, memory_order_relaxed);
}

void sl_membudget_set_limit(size_t limit)
{
    atomic_store_explicit(&budget_limit, limit, memory_order_relaxed);
}

size_t sl_membudget_used(void)
{
    return atomic_load_explicit(&budget_used, memory_order_relaxed);
}
