/*
 * AWS credentials of the spec's Bedrock providers, read once at start from
 * the sources the spec names (`env:NAME` or `file:PATH`; by default
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when set,
 * AWS_SESSION_TOKEN), or opted in, from the container credentials endpoint
 * (aws/container.h). Secrets live only in this process's memory: never in
 * the binary, logs, errors or metrics (errors name the source, not the
 * value).
 */
#ifndef SLUICE_AWS_CREDS_H
#define SLUICE_AWS_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "core/arena.h"
#include "table.h"

typedef struct sl_aws_creds {
    char *key_id, *secret, *token; /* token NULL: none */
} sl_aws_creds;

/* Loads every bedrock provider's credentials (and, for `credentials:
 * container`, starts the refresh thread). A missing or empty source, or a
 * container endpoint that fails, stops the start (-1 with err naming
 * provider and source) unless the provider is optional (then it has none,
 * and a warning is logged). */
int sl_aws_creds_init(const sl_table *t, char *err, size_t errlen);
/* Stops the refresh thread and wipes every secret. */
void sl_aws_creds_shutdown(void);
/* Does provider i have credentials (else: not bedrock, or optional and unset)? */
int sl_aws_creds_have(uint32_t provider);
/* Copies the named provider's current credentials into the arena (the
 * refresh thread may replace them at any time). 0, or -1 when it has none
 * or memory runs out. */
int sl_aws_creds_copy(const char *name, sl_arena *a, sl_aws_creds *out);

#endif
