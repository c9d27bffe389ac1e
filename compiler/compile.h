/*
 * The whole front end in one call: YAML -> spec -> checks, plus the spec's
 * SHA-256. `sluicec` and the tests both go through here so they cannot
 * disagree on what a spec means.
 */
#ifndef SLC_COMPILE_H
#define SLC_COMPILE_H

#include <stddef.h>

#include "diag.h"
#include "mem.h"
#include "spec.h"

/* Returns the checked spec, or NULL when the tree could not be read at all.
 * The spec may only be emitted when `d` holds no errors. */
slc_spec *slc_compile(const char *src, size_t len, slc_arena *a, slc_diags *d);

/* The checks that read files the spec names (tls: cert and key), relative
 * to the directory of `spec_path`; fills their resolved paths. Run after
 * slc_compile when the spec came from a file. */
void slc_check_files(slc_spec *s, const char *spec_path, slc_arena *a, slc_diags *d);

/* 64 lowercase hex digits and a NUL. */
void slc_sha256_hex(const void *data, size_t len, char out[65]);

#endif
