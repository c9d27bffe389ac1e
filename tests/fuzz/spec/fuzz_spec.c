/*
 * libFuzzer target for sluicec's front end: arbitrary bytes as a spec file
 * through load, spec, check, diagnostics (text and JSON) and, when the spec
 * is clean, emit and explain. Built with -DSLUICE_FUZZ=ON under clang; see
 * tests/fuzz/spec/README.md for running it.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"
#include "diff.h"
#include "emit.h"
#include "explain.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The driver reads files with a trailing NUL in mind nowhere, so the
     * input is passed as is, without one, as read_file would give it. */
    char *src = malloc(size ? size : 1);
    if (size)
        memcpy(src, data, size);
    slc_arena a = {0};
    slc_diags *d = slc_diags_new("fuzz.yaml", src, size);
    slc_spec *s = slc_compile(src, size, &a, d);
    FILE *null = fopen("/dev/null", "w");
    slc_diags_print(d, null);
    slc_diags_print_json(d, null);
    if (s && slc_diags_errors(d) == 0) {
        char sha[65];
        slc_sha256_hex(src, size, sha);
        slc_buf t = {0}, r = {0}, x = {0};
        slc_emit_table(s, sha, &t);
        slc_emit_models_re(s, sha, &r);
        for (size_t i = 0; i < s->nmodels && i < 4; i++) {
            slc_explain(s, s->models[i].name.s, s->nkeys ? s->keys[0].name.s : NULL, i & 1, &x);
            slc_buf_free(&x);
        }
        slc_explain(s, "gpt-4o", NULL, false, &x);
        slc_buf_free(&x);
        slc_diff(s, s, true, &x);
        slc_buf_free(&x);
        slc_buf_free(&t);
        slc_buf_free(&r);
    }
    fclose(null);
    slc_diags_free(d);
    slc_arena_free(&a);
    free(src);
    return 0;
}
