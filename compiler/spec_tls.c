/*
 * The spec's two `tls:` blocks, read for shape (see spec.h): the
 * listener's certificate and key next to `listen`, and a provider's trust
 * settings for its upstream (a private CA, a client certificate, and
 * `verify`). What the files hold is checked in tls.c, which reads them;
 * how the settings relate to the provider's URL is checked in check.c.
 */
#include <string.h>

#include "spec_internal.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

void slc_spec_read_tls(slc_builder *b, const slc_node *root, slc_spec *s)
{
    const slc_node *n = slc_spec_section(b, root, "tls", NULL);
    if (!n)
        return;
    static const char *const keys[] = {"cert", "key", "client_ca", "client_auth"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), "'tls'");
    s->tls.pos = n->pos;
    bool ok = true;
    if (!slc_map_get(n, "cert")) {
        slc_spec_missing(b, n, "'tls'", "cert");
        ok = false;
    } else {
        ok &= slc_spec_str_field(b, n, "cert", "'tls'", &s->tls.cert);
    }
    if (!slc_map_get(n, "key")) {
        slc_spec_missing(b, n, "'tls'", "key");
        ok = false;
    } else {
        ok &= slc_spec_str_field(b, n, "key", "'tls'", &s->tls.key);
    }
    slc_spec_str_field(b, n, "client_ca", "'tls'", &s->tls.client_ca);
    s->tls.client_required = true;
    if (slc_spec_str_field(b, n, "client_auth", "'tls'", &s->tls.client_auth)) {
        if (strcmp(s->tls.client_auth.s, "optional") == 0)
            s->tls.client_required = false;
        else if (strcmp(s->tls.client_auth.s, "require") != 0)
            slc_error(b->d, s->tls.client_auth.pos,
                      "'client_auth' in 'tls' must be require or optional, got '%s'",
                      s->tls.client_auth.s);
        if (!s->tls.client_ca.s && !slc_map_get(n, "client_ca"))
            slc_error(b->d, s->tls.client_auth.pos,
                      "'client_auth' in 'tls' needs 'client_ca' (the CAs client certificates are "
                      "checked against)");
    }
    s->tls.present = ok;
}

void slc_spec_read_provider_tls(slc_builder *b, const slc_node *provider, const char *where,
                                slc_provider_tls *out)
{
    out->verify = true;
    const slc_node *n = slc_spec_section(b, provider, "tls", where);
    if (!n)
        return;
    const char *twhere = slc_aprintf(b->a, "tls of %s", where);
    static const char *const keys[] = {"ca", "client_cert", "client_key", "verify"};
    slc_spec_check_keys(b, n, keys, COUNT(keys), twhere);
    out->present = true;
    out->pos = n->pos;
    slc_spec_str_field(b, n, "ca", twhere, &out->ca);
    slc_spec_str_field(b, n, "client_cert", twhere, &out->client_cert);
    slc_spec_str_field(b, n, "client_key", twhere, &out->client_key);
    slc_spec_bool_field(b, n, "verify", twhere, &out->verify, &out->verify_pos);
    /* A certificate without its key (or the reverse) cannot authenticate. */
    if (!slc_map_get(n, "client_key") != !slc_map_get(n, "client_cert"))
        slc_error(b->d, n->pos, "%s needs both client_cert and client_key (a client certificate "
                  "and its private key), or neither", twhere);
}
