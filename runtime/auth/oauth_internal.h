/*
 * What the two halves of the OAuth module share (oauth_conf.c: the
 * credentials read at start; oauth.c: the per-worker caches and the
 * transport) and nothing else uses.
 */
#ifndef SLUICE_OAUTH_INTERNAL_H
#define SLUICE_OAUTH_INTERNAL_H

#include <stdint.h>

#include "auth/oauth.h"
#include "auth/oauth_parse.h"

/* One OAuth provider's credentials, read-only once serving. */
typedef struct sl_oauth_conf {
    const sl_provider *p;
    sl_sa_key sa;      /* google */
    char *secret;      /* entra client secret */
    char *token_url;   /* where tokens come from */
} sl_oauth_conf;

/* Provider index i's credentials, or NULL when it has no OAuth grant. */
const sl_oauth_conf *sl_oauth_conf_at(uint32_t i);
/* Does any provider fetch tokens? */
int sl_oauth_any(void);
/* The grant's form body, malloc'd (it holds the signed assertion or the
 * client secret: wipe before freeing); NULL when memory runs out. */
char *sl_oauth_form(const sl_oauth_conf *c);

#endif
