/*
 * kind: bedrock in the compiler: the checks on region:, credentials: and
 * api: (reading is in aws.c too, through spec_internal.h) and the default
 * base URL built from the region.
 */
#ifndef SLC_AWS_H
#define SLC_AWS_H

#include <stdbool.h>

#include "diag.h"
#include "mem.h"
#include "spec.h"

/* Reports bedrock settings on other kinds, a bedrock provider without a
 * region or with an api_key, and credential sources that are not env:NAME
 * or file:PATH (never quoting a literal). Fills the default sources. */
void slc_check_provider_aws(slc_diags *d, slc_provider *p, bool bedrock);
/* https://bedrock-runtime.{region}.amazonaws.com, or "" without a region. */
const char *slc_aws_base_url(slc_arena *a, const slc_provider *p);

#endif
