/*
 * What the spec readers split across files share (spec.c, spec_fields.c,
 * spec_tls.c, and the section readers cache.c and guard.c use):
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

/* spec_fields.c: the field readers. `where` names the owner ("provider
 * 'openai'"), NULL at top level. */
bool slc_spec_want(slc_builder *b, const slc_node *n, slc_node_kind k, const char *what);
slc_str slc_spec_str_of(const slc_node *n);
/* Reports keys of `map` not in `allowed` (with a suggestion when one is
 * close); top-level `x-...` keys are the user's own. */
void slc_spec_check_keys(slc_builder *b, const slc_node *map, const char *const *allowed, size_t n,
                         const char *where);
const char *slc_spec_field_desc(slc_builder *b, const char *key, const char *where);
bool slc_spec_str_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        slc_str *out);
/* One of `names`: its index, or -1 when absent or not one of them. */
int slc_spec_enum_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        const char *const *names, size_t n);
void slc_spec_missing(slc_builder *b, const slc_node *map, const char *where, const char *key);
void slc_spec_duration_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                             uint32_t *out, bool positive);
bool slc_spec_money_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                          int64_t *out);
void slc_spec_size_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                         uint64_t *out, uint64_t max);
bool slc_spec_int_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                        int64_t *out, slc_pos *pos);
bool slc_spec_bool_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                         bool *out, slc_pos *pos);
void slc_spec_count_field(slc_builder *b, const slc_node *map, const char *key, const char *where,
                          uint32_t *out);
const slc_node *slc_spec_section(slc_builder *b, const slc_node *map, const char *key,
                                 const char *where);
bool slc_spec_valid_name(slc_builder *b, const slc_node *k, const char *what);

/* spec_cloud.c: a provider's Vertex AI and Entra ID settings. */
void slc_spec_read_cloud(slc_builder *b, const slc_node *provider, const char *where,
                         slc_provider_cloud *out, bool vertex);

/* spec_tls.c: the listener's top-level `tls:` and a provider's `tls:`. */
void slc_spec_read_tls(slc_builder *b, const slc_node *root, slc_spec *s);
void slc_spec_read_provider_tls(slc_builder *b, const slc_node *provider, const char *where,
                                slc_provider_tls *out);

/* aws.c: a bedrock provider's region:, credentials: and api:. */
void slc_spec_read_provider_aws(slc_builder *b, const slc_node *provider, const char *where,
                                slc_provider_aws *out);

#endif
