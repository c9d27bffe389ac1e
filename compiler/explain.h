/*
 * `sluicec explain`: what a compiled spec does with one model name, told
 * the way the runtime will act on it. The attempt plan and the upstream
 * model names come from the gateway's own code (runtime/route, linked in)
 * run on the lowered table, so they cannot drift from what the gateway
 * does. Only the name matcher is recomputed here, because the gateway's
 * is generated re2c; tests hold the two to the same answers.
 */
#ifndef SLC_EXPLAIN_H
#define SLC_EXPLAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mem.h"
#include "spec.h"

/* The entry the gateway would pick for `name` (exact names first, then
 * globs by descending literal prefix, then spec order), or -1. */
int slc_match_model(const slc_spec *s, const char *name, size_t len);

/* Writes the explanation for `name` (and key `key`, may be NULL) to out.
 * Returns 0 when an entry matches, 1 when none does, 2 when `key` names no
 * key (message in out). */
int slc_explain(const slc_spec *s, const char *name, const char *key, bool json, slc_buf *out);

/* Helpers shared with diff. */
void slc_fmt_duration(slc_buf *b, uint32_t ms);
void slc_fmt_money(slc_buf *b, int64_t micros);
void slc_fmt_retry_on(slc_buf *b, const slc_retry *r);

#endif
