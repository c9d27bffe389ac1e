/*
 * What the spec readers split across files share (spec.c, spec_tls.c):
 * the builder and the field readers, which report shape problems with the
 * name of the thing a field belongs to and return false when a field is
 * absent or unusable.
 */
#ifndef SLC_SPEC_INTERNAL_H
#define SLC_SPEC_INTERNAL_H

#include "spec.h"

typedef struct slc_builder {
    slc_arena *a;
    slc_diags *d;
} slc_builder;

bool slc_spec_str_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        slc_str *out);
bool slc_spec_bool_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                         bool *out, slc_pos *pos);
void slc_spec_check_keys(slc_builder *b, const slc_node *map, const char *const *allowed, size_t n,
                         const char *where);
const slc_node *slc_spec_section(slc_builder *b, const slc_node *map, const char *key,
                                 const char *where);
void slc_spec_missing(slc_builder *b, const slc_node *map, const char *where, const char *key);

/* spec_tls.c: the listener's top-level `tls:` and a provider's `tls:`. */
void slc_spec_read_tls(slc_builder *b, const slc_node *root, slc_spec *s);
void slc_spec_read_provider_tls(slc_builder *b, const slc_node *provider, const char *where,
                                slc_provider_tls *out);

#endif
