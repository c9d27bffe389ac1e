/*
 * `sluicec diff`: what a spec change does to routing, in the terms a
 * reviewer thinks in (entries, targets, weights, fallbacks, retries, keys,
 * budgets, prices) rather than as a text diff of YAML. Whether anything
 * changed at all is decided by the generated tables themselves, so a
 * reformatted or re-commented spec is reported as identical.
 */
#ifndef SLC_DIFF_H
#define SLC_DIFF_H

#include <stdbool.h>

#include "mem.h"
#include "spec.h"

/* Writes the changes from `a` to `b` to out. Returns true when the tables
 * emit would generate differ (ignoring the spec hash). */
bool slc_diff(const slc_spec *a, const slc_spec *b, bool json, slc_buf *out);

#endif
