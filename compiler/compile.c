/*
 * Front-end driver (see compile.h): runs load, spec and check in order and
 * stops early only when a stage has nothing usable to hand on.
 */
#include "compile.h"

#include <bearssl.h>

#include "check.h"
#include "yaml_load.h"

slc_spec *slc_compile(const char *src, size_t len, slc_arena *a, slc_diags *d)
{
    slc_node *root = slc_yaml_load(src, len, a, d);
    if (!root)
        return NULL;
    slc_spec *s = slc_spec_build(root, a, d);
    if (!s)
        return NULL;
    slc_check(s, a, d);
    return s;
}

void slc_sha256_hex(const void *data, size_t len, char out[65])
{
    br_sha256_context ctx;
    unsigned char sum[32];
    br_sha256_init(&ctx);
    br_sha256_update(&ctx, data, len);
    br_sha256_out(&ctx, sum);
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < 32; i++) {
        out[2 * i] = hex[sum[i] >> 4];
        out[2 * i + 1] = hex[sum[i] & 15];
    }
    out[64] = '\0';
}
