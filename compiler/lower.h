/*
 * Lowering: a checked spec -> the runtime's routing table (runtime/table.h)
 * in memory. This is the one place that decides what a spec turns into:
 * emit prints the lowered table as C, and explain and diff run the
 * gateway's own planner (runtime/route) on it, so what sluicec reports is
 * what the gateway built from the same spec will do.
 */
#ifndef SLC_LOWER_H
#define SLC_LOWER_H

#include <stddef.h>
#include <stdint.h>

#include "route/route.h"
#include "spec.h"
#include "table.h"

/* The runtime's cap on attempts per request (runtime/proxy MAX_ATTEMPTS). */
#define SLC_PLAN_MAX SL_ROUTE_PLAN_MAX

/* `t` is the table; the arrays behind it are owned here (writable, so a
 * tool can adjust a lowered table before printing it). Strings point into
 * the spec and at the hash passed to slc_lower, which must outlive it.
 * t.match_model is NULL: the matcher exists only as generated re2c, and
 * sluicec matches names with slc_match_model (explain.h). */
typedef struct slc_lowered {
    sl_table t;
    sl_provider *providers;
    sl_provider_tls *provider_tls; /* one per provider; used where tls: is set */
    sl_provider_aws *provider_aws; /* one per provider; used by kind bedrock */
    sl_provider_oauth *provider_oauth; /* one per provider; used for Vertex AI and Entra ID */
    sl_model_entry *models;
    sl_target *targets;
    uint32_t *fallbacks;
    sl_team *teams;
    sl_key *keys;
    uint32_t *scopes;
    sl_cidr *cidrs;
    sl_price *prices;
    sl_tls_spec tls;
    sl_redis_spec redis;
    sl_cache_rule *cache_rules;
} slc_lowered;

/* `s` must be checked and free of errors. Out of memory aborts, as
 * everywhere in the compiler. */
void slc_lower(const slc_spec *s, const char *sha256_hex, slc_lowered *out);
void slc_lowered_free(slc_lowered *l);

/* The attempt plan of the first request after start: sl_route_plan with
 * fresh balancing counters. Returns the step count (at most SLC_PLAN_MAX). */
size_t slc_plan_first(const sl_table *t, uint32_t entry, sl_attempt out[SLC_PLAN_MAX]);

#endif
