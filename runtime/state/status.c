/*
 * Whether Redis answers, and how often it did not: process-wide counters
 * that /metrics reads. Linked into every gateway (a few atomics) so the
 * metrics handler needs no reference to the Redis module itself.
 */
#include "state/state.h"

#include <stdatomic.h>

#include "core/log.h"

static atomic_int mode = 1;
static atomic_uint_fast64_t errors, fallbacks;

void sl_state_mode_set(int up, const char *why)
{
    int was = atomic_exchange(&mode, up ? 1 : 0);
    if (was == (up ? 1 : 0))
        return;
    /* Once per transition, whichever worker saw it first. */
    if (up)
        sl_log_info("state: Redis reachable again; budgets and rate limits are shared");
    else
        sl_log_warn("state: Redis unreachable (%s); the spec's on_state_error policy applies", why);
}

int sl_state_mode(void) { return atomic_load(&mode); }
void sl_state_error_count(void) { atomic_fetch_add(&errors, 1); }
uint64_t sl_state_errors(void) { return atomic_load(&errors); }
void sl_state_fallback_count(void) { atomic_fetch_add(&fallbacks, 1); }
uint64_t sl_state_fallbacks(void) { return atomic_load(&fallbacks); }
