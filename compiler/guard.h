/*
 * Guardrails in the spec: `guardrails:` names sets of detectors (built-in
 * PII and secret shapes) and deny patterns with an action per direction;
 * model entries, keys and teams attach them by name. This module reads
 * that part of the tree, checks it, compiles deny patterns (literals and
 * a regular-expression subset) to re2c, and writes the guard table and one
 * re2c scanner per guardrail into the generated files. A spec without
 * `guardrails:` gets none of it, and its gateway links no guardrail code.
 */
#ifndef SLC_GUARD_H
#define SLC_GUARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "diag.h"
#include "mem.h"
#include "spec.h"
#include "table.h"
#include "yaml_load.h"

#define SLC_GUARD_MAX_RAILS 32
#define SLC_GUARD_MAX_PATTERN 1000
#define SLC_GUARD_MAX_REPEAT 255

typedef struct slc_guard_pat {
    slc_str text;        /* as written */
    bool regex;          /* written as /.../ or /.../i */
    const char *re2c;    /* the compiled re2c expression, NULL when rejected */
} slc_guard_pat;

typedef struct slc_guardrail {
    slc_str name;
    uint32_t detectors;  /* bit per SL_GDET_* */
    slc_guard_pat *deny;
    size_t ndeny;
    int request, response; /* SL_GUARD_* */
    bool restore;
    slc_pos restore_pos;
    bool used;
} slc_guardrail;

/* `guardrails: [a, b]` on one model entry, key or team. */
typedef struct slc_guard_refs {
    slc_str *names;
    size_t n;
    uint32_t mask;       /* check: bit per guardrail */
} slc_guard_refs;

typedef struct slc_guard_set {
    slc_guardrail *rails;
    size_t nrails;
    slc_guard_refs *models, *keys, *teams; /* parallel to the spec's arrays */
} slc_guard_set;

/* Reads `guardrails:` and every `guardrails:` list on entries, keys and
 * teams into s->guard (NULL when the spec uses none). Call after the rest
 * of the spec is built. */
void slc_guard_read(const slc_node *root, slc_spec *s, slc_arena *a, slc_diags *d);
/* Resolves references and reports unused guardrails. */
void slc_guard_check(slc_spec *s, slc_arena *a, slc_diags *d);

/* Compiles one deny pattern body (without slashes) to a re2c expression.
 * NULL with *err_off (byte offset into pat) and err filled when the
 * pattern is outside the supported subset. */
const char *slc_guard_regex(slc_arena *a, const char *pat, size_t len, bool icase, size_t *err_off,
                            char *err, size_t errlen);

/* The detector's spec name ("email") and placeholder type ("EMAIL"). */
const char *slc_guard_detector_name(int det);

/* Lowering: the guard table for a checked spec (malloc'd; scan functions
 * NULL, emit names them), or NULL without guardrails. */
sl_guard_spec *slc_guard_lower(const slc_spec *s);
void slc_guard_lower_free(sl_guard_spec *g);
/* sluice_table.c: the guard arrays, `static const sl_guard_spec sl_spec_guard`. */
void slc_guard_emit_table(const sl_guard_spec *g, uint32_t nmodels, uint32_t nkeys, uint32_t nteams,
                          slc_buf *out);
/* sluice_models.re: one scanner per guardrail. */
void slc_guard_emit_re(const slc_spec *s, slc_buf *out);
/* explain: the guardrails that apply to entry (and key, or -1). */
void slc_guard_explain(const slc_spec *s, int entry, int key, bool json, slc_buf *out);

#endif
