/*
 * AWS credentials of the spec's Bedrock providers, read once at start from
 * the sources the spec names (`env:NAME` or `file:PATH`; by default
 * AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and, when set,
 * AWS_SESSION_TOKEN). Secrets live only in this process's memory: never in
 * the binary, logs, errors or metrics (errors name the source, not the
 * value).
 */
#ifndef SLUICE_AWS_CREDS_H
#define SLUICE_AWS_CREDS_H

#include <stddef.h>
#include <stdint.h>

#include "table.h"

typedef struct sl_aws_creds {
    char *key_id, *secret, *token; /* token NULL: none */
} sl_aws_creds;

/* Loads every bedrock provider's credentials. A missing or empty source
 * stops the start (-1 with err naming provider and source) unless the
 * provider is optional (then it has none, and a warning is logged). */
int sl_aws_creds_init(const sl_table *t, char *err, size_t errlen);
void sl_aws_creds_shutdown(void);
/* Provider i's credentials, or NULL (not bedrock, or optional and unset). */
const sl_aws_creds *sl_aws_creds_get(uint32_t provider);
/* The same by provider name (adapters see a provider, not its index). */
const sl_aws_creds *sl_aws_creds_find(const char *name);

#endif
