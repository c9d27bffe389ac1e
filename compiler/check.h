/*
 * Semantic rules over a shape-checked spec: names resolve, fallbacks do not
 * loop, secrets are references rather than values, keys are hashes, a
 * gateway without keys stays on loopback, globs do not hide one another.
 * On the way it resolves every reference to an index and fills defaults
 * (base URLs, CIDRs, hash bytes) so emit only has to write the result out.
 */
#ifndef SLC_CHECK_H
#define SLC_CHECK_H

#include "diag.h"
#include "mem.h"
#include "spec.h"

/* Reports into `d`; the spec is fit for emit only when `d` has no errors. */
void slc_check(slc_spec *s, slc_arena *a, slc_diags *d);

/* Splits `HOST:PORT` / `[V6]:PORT`; false when malformed. */
typedef struct slc_listen {
    char host[256];
    unsigned port;
    int loopback;
} slc_listen;
int slc_parse_listen(const char *s, slc_listen *out);

/* `ADDR` or `ADDR/PREFIX`, v4 or v6. Returns -1 when malformed, 1 when host
 * bits were set (and cleared), 0 otherwise. */
int slc_parse_cidr(const char *s, uint8_t *family, uint8_t *prefix, uint8_t addr[16]);

#endif
