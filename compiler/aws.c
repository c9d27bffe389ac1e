/*
 * AWS Bedrock settings of a provider (see aws.h and spec_internal.h):
 *
 *   bedrock:
 *     kind: bedrock
 *     region: us-east-1                  # required (signing scope, default URL)
 *     credentials:                       # optional; default AWS_ACCESS_KEY_ID,
 *       access_key_id: env:MY_KEY_ID     #   AWS_SECRET_ACCESS_KEY and, when set,
 *       secret_access_key: file:/run/secrets/aws_secret   # AWS_SESSION_TOKEN
 *       session_token: env:MY_TOKEN
 *     api: auto | invoke | converse      # default auto: InvokeModel for anthropic.*
 *
 * `credentials: container` opts in to the ECS/EKS credentials endpoint
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI), refreshed by the
 * gateway before the credentials expire.
 *
 * Secrets are never written in the spec: a source that is not env:NAME or
 * file:PATH is an error whose message never quotes it.
 */
#include "aws.h"

#include <stdio.h>
#include <string.h>

#include "secret.h"
#include "spec_internal.h"
#include "table.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static bool literal(const slc_str *s)
{
    return s->s && !slc_is_secret_ref(s->s);
}

void slc_spec_read_provider_aws(slc_builder *b, const slc_node *v, const char *where, slc_provider_aws *out)
{
    slc_spec_str_field(b, v, "region", where, &out->region);
    static const char *const apis[] = {"auto", "invoke", "converse"}; /* SL_AWS_API_* order */
    int api = slc_spec_enum_field(b, v, "api", where, apis, COUNT(apis));
    out->api = api < 0 ? SL_AWS_API_AUTO : api;
    const slc_node *c = slc_map_get(v, "credentials");
    if (!c)
        return;
    out->credentials_pos = c->pos;
    const char *cwhere = slc_aprintf(b->a, "credentials of %s", where);
    if (c->kind == SLC_NODE_SCALAR && strcmp(c->str, "container") == 0) {
        out->container = true; /* opted in: the ECS/EKS credentials endpoint */
        return;
    }
    if (c->kind == SLC_NODE_SCALAR) {
        slc_error(b->d, c->pos,
                  "%s must be a mapping (access_key_id, secret_access_key, session_token) or 'container'",
                  cwhere);
        out->credentials_pos = (slc_pos){0}; /* reported: nothing more to say about it */
        return;
    }
    if (!slc_spec_want(b, c, SLC_NODE_MAP, cwhere))
        return;
    static const char *const keys[] = {"access_key_id", "secret_access_key", "session_token"};
    slc_spec_check_keys(b, c, keys, COUNT(keys), cwhere);
    slc_str *dst[] = {&out->key_id, &out->secret, &out->token};
    for (size_t i = 0; i < COUNT(keys); i++) {
        if (!slc_spec_str_field(b, c, keys[i], cwhere, dst[i]))
            continue;
        if (literal(dst[i]))
            slc_diags_redact(b->d, dst[i]->pos, dst[i]->end); /* never quoted, whatever the error */
    }
}

static bool region_ok(slc_str r)
{
    if (!r.len)
        return false;
    for (size_t i = 0; i < r.len; i++) {
        char ch = r.s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return false;
    }
    return true;
}

/* One credential source: the shared secret-reference check, its messages
 * naming "credentials KEY". */
static void check_source(slc_diags *d, const slc_provider *p, const slc_str *s, const char *key)
{
    if (!s->s)
        return;
    char what[64];
    snprintf(what, sizeof what, "credentials %s", key);
    const char *env = NULL, *file = NULL;
    slc_check_secret_ref(d, p->name.s, *s, what, false, &env, &file);
}

void slc_check_provider_aws(slc_diags *d, slc_provider *p, bool bedrock)
{
    slc_provider_aws *a = &p->aws;
    const char *name = p->name.s;
    if (!bedrock) {
        if (a->region.s)
            slc_error(d, a->region.pos, "provider '%s': region applies to kind bedrock only", name);
        if (a->credentials_pos.line)
            slc_error(d, a->credentials_pos, "provider '%s': credentials applies to kind bedrock only", name);
        return;
    }
    if (!a->region.s)
        slc_error(d, p->name.pos,
                  "provider '%s': kind bedrock needs region (such as us-east-1): it is part of every "
                  "request's signature and of the default base URL "
                  "https://bedrock-runtime.{region}.amazonaws.com",
                  name);
    else if (!region_ok(a->region))
        slc_error(d, a->region.pos,
                  "provider '%s': region '%s' must be lowercase letters, digits and '-' (such as "
                  "us-east-1)",
                  name, a->region.s);
    if (p->api_key.s)
        slc_error_redacted(d, p->api_key.pos, p->api_key.end,
                           "provider '%s': kind bedrock signs requests with AWS credentials, not an "
                           "api_key (credentials:, by default AWS_ACCESS_KEY_ID and "
                           "AWS_SECRET_ACCESS_KEY)",
                           name);
    if (a->credentials_pos.line && !a->container) {
        if (!a->key_id.s || !a->secret.s)
            slc_error(d, a->credentials_pos,
                      "provider '%s': credentials needs access_key_id and secret_access_key (env:NAME "
                      "or file:PATH)",
                      name);
        check_source(d, p, &a->key_id, "access_key_id");
        check_source(d, p, &a->secret, "secret_access_key");
        check_source(d, p, &a->token, "session_token");
    }
}

const char *slc_aws_base_url(slc_arena *a, const slc_provider *p)
{
    return p->aws.region.s ? slc_aprintf(a, "https://bedrock-runtime.%s.amazonaws.com", p->aws.region.s) : "";
}
