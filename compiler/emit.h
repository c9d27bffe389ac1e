/*
 * Writes a checked spec out as the two generated files the gateway is built
 * from: sluice_table.c (the lowered table, lower.h, as const data) and
 * sluice_models.re (the re2c matcher from model names to entries). Output
 * depends on nothing but the spec and its hash: no dates, no paths, spec
 * order throughout, so the same spec gives the same bytes everywhere.
 */
#ifndef SLC_EMIT_H
#define SLC_EMIT_H

#include "mem.h"
#include "spec.h"
#include "table.h"

/* sluice_table.c for a lowered table (its spec_sha256 is printed too). */
void slc_emit_lowered(const sl_table *t, slc_buf *out);
/* Lowers `s` and prints it: slc_emit_lowered of slc_lower. */
void slc_emit_table(const slc_spec *s, const char *sha256_hex, slc_buf *out);
void slc_emit_models_re(const slc_spec *s, const char *sha256_hex, slc_buf *out);

/* Helpers exposed for tests. */
void slc_emit_c_string(slc_buf *out, const char *s, size_t len);
void slc_emit_re2c_pattern(slc_buf *out, const char *name);

#endif
