/*
 * What the files of the check module share and nothing else uses: the
 * checker state, the lookups the rules have in common, and the rules
 * themselves, which slc_check (check.c) runs in a fixed order.
 */
#ifndef SLC_CHECK_INTERNAL_H
#define SLC_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"
#include "suggest.h"

typedef struct slc_checker {
    slc_spec *s;
    slc_arena *a;
    slc_diags *d;
    bool scope_errors;   /* some key scope did not resolve */
    slc_strmap model_ix; /* model name -> entry index */
    /* Entry indices sorted by name, for prefix ranges (glob scopes). */
    uint32_t *by_name;
    slc_strmap scope_cache; /* glob in a key's models -> into scope_sets */
    uint32_t **scope_sets;  /* per cached glob: count, then entry indices */
    size_t nscope_sets;
} slc_checker;

/* ---- shared lookups (check.c) ----------------------------------------- */

/* slc_name_at over the spec's providers and models, for slc_chk_hint. */
const char *slc_chk_provider_at(const void *spec, size_t i);
const char *slc_chk_model_at(const void *spec, size_t i);
bool slc_chk_str_eq(slc_str a, const char *b);
/* Index of the named provider or model entry, or -1. */
int slc_chk_find_provider(const slc_spec *s, slc_str name);
int slc_chk_find_model(const slc_checker *c, slc_str name);
/* " (did you mean 'x'?)" or "". */
const char *slc_chk_hint(slc_checker *c, const char *word, slc_name_at at, size_t n);

/* ---- rules ------------------------------------------------------------ */

/* check_models.c */
void slc_chk_targets(slc_checker *c);
void slc_chk_fallbacks(slc_checker *c);
void slc_chk_cycles(slc_checker *c);
void slc_chk_globs(slc_checker *c);
void slc_chk_unused(slc_checker *c);

/* check_keys.c */
void slc_chk_prices(slc_checker *c);
void slc_chk_keys(slc_checker *c);
void slc_chk_unreachable(slc_checker *c);
void slc_chk_priced(slc_checker *c);

/* check_catalog.c */
void slc_chk_catalog(slc_checker *c);

/* check_addr.c */
void slc_chk_listen(slc_checker *c);
/* `rest` is the URL after `http://`. */
bool slc_chk_url_host_is_loopback(const char *rest);

/* ---- check_cloud.c ------------------------------------------------------ */

struct slc_preset;
/* Vertex AI and Entra ID settings of provider p (preset ps); true when p
 * authenticates with a fetched token instead of api_key. */
bool slc_chk_cloud(slc_checker *c, slc_provider *p, const struct slc_preset *ps);

#endif
