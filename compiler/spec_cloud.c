/*
 * A provider's settings for OAuth-token providers: Vertex AI (`project`,
 * `location`, `credentials`, `publisher`) and Azure with Entra ID (`auth:
 * entra`, `tenant_id`, `client_id`, `client_secret`), and `token_url` for
 * both. Read as written; check_cloud.c judges them. A client_secret that
 * is neither env:NAME nor file:PATH is a literal secret: its span is
 * never quoted in any diagnostic.
 */
#include <string.h>

#include "secret.h"
#include "spec_internal.h"

void slc_spec_read_cloud(slc_builder *b, const slc_node *v, const char *where, slc_provider_cloud *out,
                         bool vertex)
{
    slc_spec_str_field(b, v, "project", where, &out->project);
    slc_spec_str_field(b, v, "location", where, &out->location);
    /* credentials: is Vertex's key file here, AWS's for other kinds
     * (compiler/aws.c), whose other settings a vertex provider refuses */
    if (vertex) {
        slc_spec_str_field(b, v, "credentials", where, &out->credentials);
        static const char *const aws_only[] = {"region", "api"};
        for (size_t i = 0; i < 2; i++) {
            const slc_node *n = slc_map_get(v, aws_only[i]);
            if (n)
                slc_error(b->d, n->pos, "%s: %s applies to kind bedrock only", where, aws_only[i]);
        }
    }
    slc_spec_str_field(b, v, "publisher", where, &out->publisher);
    slc_spec_str_field(b, v, "auth", where, &out->auth);
    slc_spec_str_field(b, v, "tenant_id", where, &out->tenant_id);
    slc_spec_str_field(b, v, "client_id", where, &out->client_id);
    slc_spec_str_field(b, v, "token_url", where, &out->token_url);
    if (slc_spec_str_field(b, v, "client_secret", where, &out->client_secret) &&
        !slc_is_secret_ref(out->client_secret.s))
        slc_diags_redact(b->d, out->client_secret.pos, out->client_secret.end);
}
