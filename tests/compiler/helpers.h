/*
 * Shared scaffolding for the compiler's cmocka tests: compile a spec held
 * in a string and look at what was reported, without touching the disk.
 */
#ifndef SLC_TEST_HELPERS_H
#define SLC_TEST_HELPERS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "compile.h"
#include "diag.h"
#include "mem.h"

typedef struct compiled {
    slc_arena arena;
    slc_diags *diags;
    slc_spec *spec;
} compiled;

static inline compiled *compile_str(const char *src)
{
    compiled *c = calloc(1, sizeof *c);
    c->diags = slc_diags_new("t.yaml", src, strlen(src));
    c->spec = slc_compile(src, strlen(src), &c->arena, c->diags);
    return c;
}

static inline void compiled_free(compiled *c)
{
    slc_diags_free(c->diags);
    slc_arena_free(&c->arena);
    free(c);
}

/* True when some diagnostic of severity `sev` contains `needle`. */
static inline int has_diag(compiled *c, slc_severity sev, const char *needle)
{
    slc_severity s;
    const char *m;
    for (size_t i = 0; (m = slc_diags_message(c->diags, i, &s, NULL)); i++)
        if (s == sev && strstr(m, needle))
            return 1;
    return 0;
}

static inline void dump_diags(compiled *c)
{
    slc_diags_print(c->diags, stderr);
}

#define assert_clean(c)                                                                         \
    do {                                                                                        \
        if (slc_diags_count((c)->diags))                                                        \
            dump_diags(c);                                                                      \
        assert_int_equal(slc_diags_count((c)->diags), 0);                                       \
        assert_non_null((c)->spec);                                                             \
    } while (0)

#define assert_error(c, needle) assert_true(has_diag((c), SLC_ERROR, (needle)))
#define assert_warning(c, needle) assert_true(has_diag((c), SLC_WARNING, (needle)))

#define SPEC_HEAD "sluice: 1\nproviders:\n  demo: { kind: mock }\n"

#endif
