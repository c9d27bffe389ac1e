/*
 * `sluicec explain`: what a compiled spec does with one model name, told
 * the way the runtime will act on it. The matcher order and the attempt
 * plan are recomputed here from the checked spec with the same rules as
 * the generated DFA and runtime/route/route.c, so a reviewer can see the
 * result of a spec change without building or running a gateway.
 */
#ifndef SLC_EXPLAIN_H
#define SLC_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "spec.h"

/* The runtime's cap on attempts per request (runtime/proxy MAX_ATTEMPTS). */
#define SLC_PLAN_MAX 16

/* The entry the gateway would pick for `name` (exact names first, then
 * globs by descending literal prefix, then spec order), or -1. */
int slc_match_model(const slc_spec *s, const char *name, size_t len);

typedef struct slc_plan_step {
    uint32_t entry;
    uint32_t target;   /* index within the entry's targets */
} slc_plan_step;

/* The attempt plan of the first request after start: the same order as
 * sl_route_plan() with fresh balancing counters. Returns the step count. */
size_t slc_plan_first(const slc_spec *s, uint32_t entry, slc_plan_step *out, size_t max);

/* Writes the explanation for `name` (and key `key`, may be NULL) to out.
 * Returns 0 when an entry matches, 1 when none does, 2 when `key` names no
 * key (message in out). */
int slc_explain(const slc_spec *s, const char *name, const char *key, bool json, slc_buf *out);

/* Helpers shared with diff. */
void slc_fmt_duration(slc_buf *b, uint32_t ms);
void slc_fmt_money(slc_buf *b, int64_t micros);
void slc_fmt_retry_on(slc_buf *b, const slc_retry *r);

#endif
