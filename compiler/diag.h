/*
 * Diagnostics in the shape C compilers use, so editors and CI annotators
 * that understand `FILE:LINE:COL: error: MESSAGE` pick them up unchanged.
 * Modules report into an slc_diags as they go; nothing is printed until the
 * run ends, when everything is sorted into source order, each message is
 * shown with its source line and a caret, and a summary line closes it.
 */
#ifndef SLC_DIAG_H
#define SLC_DIAG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* 1-based line and column (columns count characters, as libyaml does);
 * line 0 means "the file as a whole". */
typedef struct slc_pos {
    uint32_t line;
    uint32_t col;
} slc_pos;

typedef enum slc_severity {
    SLC_NOTE = 0,
    SLC_WARNING = 1,
    SLC_ERROR = 2,
} slc_severity;

typedef struct slc_diags slc_diags;

/* `file` is shown as given; `src` (not copied, must outlive the diags) is
 * where source lines are quoted from. */
slc_diags *slc_diags_new(const char *file, const char *src, size_t len);
void slc_diags_free(slc_diags *d);

void slc_diag(slc_diags *d, slc_severity sev, slc_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define slc_error(d, pos, ...) slc_diag((d), SLC_ERROR, (pos), __VA_ARGS__)
#define slc_warning(d, pos, ...) slc_diag((d), SLC_WARNING, (pos), __VA_ARGS__)
/* A note sorts right after the diagnostic reported before it. */
#define slc_note(d, pos, ...) slc_diag((d), SLC_NOTE, (pos), __VA_ARGS__)

/* Never show the source text [pos, end) (an end on a later line: to the
 * end of its line) in any message's quoted line: a readers calls it for a
 * literal secret before checks that may report something else on the
 * same line. */
void slc_diags_redact(slc_diags *d, slc_pos pos, slc_pos end);

/* Like slc_error, but the quoted source line has the columns [pos.col,
 * end.col) replaced by '*': used when the offending text is a secret that
 * must not reach logs. An end on a later line masks to the end of line. */
void slc_error_redacted(slc_diags *d, slc_pos pos, slc_pos end, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

size_t slc_diags_errors(const slc_diags *d);
size_t slc_diags_warnings(const slc_diags *d);
size_t slc_diags_count(const slc_diags *d);
/* The message text of the i-th diagnostic in report order (for tests). */
const char *slc_diags_message(const slc_diags *d, size_t i, slc_severity *sev, slc_pos *pos);

/* Everything reported, in source order. */
void slc_diags_print(slc_diags *d, FILE *out);
/* Everything reported, in source order, one JSON object per line:
 * {"file":..,"line":..,"column":..,"severity":..,"message":..}. Line and
 * column are 0 for diagnostics about the file as a whole. */
void slc_diags_print_json(slc_diags *d, FILE *out);
/* `2 errors, 1 warning generated.`; prints nothing when both are zero. */
void slc_diags_summary(FILE *out, size_t errors, size_t warnings);

#endif
