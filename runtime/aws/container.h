/*
 * Opt-in AWS credentials from the ECS/EKS container credentials endpoint
 * (spec `credentials: container`): AWS_CONTAINER_CREDENTIALS_FULL_URI, or
 * AWS_CONTAINER_CREDENTIALS_RELATIVE_URI under http://169.254.170.2, with
 * AWS_CONTAINER_AUTHORIZATION_TOKEN(_FILE) as the Authorization header.
 * A plain-HTTP full URI must be a loopback or the ECS/EKS agent address,
 * as AWS's SDKs require. Answers are {AccessKeyId, SecretAccessKey, Token,
 * Expiration}; nothing of them is ever logged.
 */
#ifndef SLUICE_AWS_CONTAINER_H
#define SLUICE_AWS_CONTAINER_H

#include <stddef.h>
#include <time.h>

#include "aws/creds.h"

/* Fetches credentials now (blocking, 5 s timeout). 0 with *c filled and
 * *expires set (0 = no expiry given), or -1 with err (no secret in it). */
int sl_aws_container_fetch(sl_aws_creds *c, time_t *expires, char *err, size_t errlen);

#endif
