/*
 * The typed spec: what the YAML tree means, with the positions needed to
 * report problems. slc_spec_build checks shape only (known keys, value
 * types, required fields, the format version, unit syntax) and fills in
 * defaults; rules that relate one part of the spec to another belong to
 * check. Strings are as written; names index nothing until check resolves
 * them.
 */
#ifndef SLC_SPEC_H
#define SLC_SPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "diag.h"
#include "mem.h"
#include "yaml_load.h"

#define SLC_SPEC_VERSION 1

typedef struct slc_str {
    const char *s;     /* NULL when absent */
    size_t len;
    slc_pos pos;
    slc_pos end;
} slc_str;

typedef enum slc_kind {
    SLC_KIND_OPENAI = 0,
    SLC_KIND_ANTHROPIC = 1,
    SLC_KIND_GEMINI = 2,
    SLC_KIND_MOCK = 3,
    SLC_KIND_BEDROCK = 4,
    SLC_KIND_VERTEX = 5,
} slc_kind;

/* Settings of the OAuth-token providers (compiler/spec_cloud.c):
 * Vertex AI's project, location and service-account key, Azure's
 * `auth: entra` with its app registration. As written; check_cloud.c
 * judges them. */
typedef struct slc_provider_cloud {
    slc_str project, location, credentials, publisher;
    slc_str auth, tenant_id, client_id, client_secret, token_url;
    const char *credentials_path, *credentials_env;  /* check: credentials split */
    const char *secret_env, *secret_file;            /* check: client_secret split */
    int publisher_code;                              /* check: 0 by model, 1 google, 2 anthropic */
    bool entra;                                      /* check: auth: entra */
} slc_provider_cloud;

/* A provider's `tls:`: how sluice trusts its upstream. Paths as written;
 * slc_check_files reads them (relative ones next to the spec). */
typedef struct slc_provider_tls {
    bool present;
    slc_pos pos;
    slc_str ca;              /* PEM CA bundle instead of the system's */
    slc_str client_cert;     /* PEM client certificate for mTLS, and its key */
    slc_str client_key;
    bool verify;             /* default true; false only for loopback hosts */
    slc_pos verify_pos;      /* line 0: not written */
} slc_provider_tls;

/* A bedrock provider's AWS settings (compiler/aws.c). Credential sources
 * as written: `env:NAME` or `file:PATH`; a literal is an error. */
typedef struct slc_provider_aws {
    slc_str region;
    slc_pos credentials_pos;    /* line 0: no credentials: (the AWS_* defaults) */
    slc_str key_id, secret, token;
    int api;                    /* SL_AWS_API_* */
    bool container;             /* credentials: container */
} slc_provider_aws;

typedef struct slc_provider {
    slc_str name;
    slc_kind kind;         /* the wire protocol of its preset */
    int preset;            /* index into compiler/presets.c's table, -1 = unknown */
    slc_str kind_word;     /* `kind:` as written: a preset name */
    slc_str resource;      /* azure: {resource}.openai.azure.com */
    slc_str deployment;    /* azure: the deployment; absent = the target's model name */
    slc_str api_version;   /* azure: api-version */
    slc_provider_aws aws;  /* bedrock: region, credentials, api */
    slc_str base_url;      /* check fills the kind's default */
    slc_str api_key;       /* as written; check turns `env:NAME` into env */
    const char *api_key_env;
    const char *api_key_file; /* check: `file:PATH` */
    slc_provider_cloud cloud;
    bool optional;         /* may start without its key (requests to it get 503) */
    slc_pos optional_pos;
    /* Serves the Responses API itself (POST {base_url}/responses), so
     * Responses requests pass through untranslated. check fills the
     * default: true for kind openai at api.openai.com, else false. */
    bool responses;
    slc_pos responses_pos;   /* line 0: not written */
    uint32_t connect_ms, first_byte_ms, idle_ms, total_ms;
    slc_provider_tls tls;
    int http2;             /* sl_http2 */
    slc_pos http2_pos;     /* line 0: not written */
    bool used;
} slc_provider;

typedef struct slc_target {
    slc_pos pos;
    slc_str provider;
    slc_str model;         /* s == NULL: the name the client sent */
    int64_t weight;
    slc_pos weight_pos;
    int provider_idx;      /* check */
    const struct slc_cat_model *cat; /* check: the catalog's entry for its model, or NULL */
} slc_target;

typedef struct slc_retry {
    int64_t attempts;
    slc_pos attempts_pos;
    uint32_t backoff_ms, cap_ms;
    bool on_connect, on_timeout;
    uint64_t status_bits[10];
} slc_retry;

/* `cache:` on a model entry or a key (compiler/cache.c). */
typedef enum slc_cache_mode {
    SLC_CACHE_NONE = 0,      /* no `cache:` */
    SLC_CACHE_OFF = 1,       /* `cache: false` */
    SLC_CACHE_EXACT = 2,
    SLC_CACHE_SEMANTIC = 3,
} slc_cache_mode;

typedef struct slc_cache {
    slc_cache_mode mode;
    slc_pos pos;
    uint32_t ttl_ms;
    uint64_t max_bytes;
    bool shared;             /* scope: shared (every key) rather than key */
    bool allow_temperature;
    slc_str sem_provider, sem_model;
    double threshold;
    int sem_provider_idx;    /* check; -1 */
} slc_cache;

typedef struct slc_model {
    slc_str name;
    bool is_glob;
    slc_target *targets;
    size_t ntargets;
    slc_str *fallbacks;
    size_t nfallbacks;
    uint32_t *fallback_idx; /* check */
    slc_retry retry;
    /* Circuit breaker; 0 = the runtime's default (5 failures, 30 s). */
    uint32_t cooldown_failures, cooldown_ms;
    slc_cache cache;
    bool emitted;          /* check clears it for globs that can never match */
} slc_model;

typedef enum slc_period {
    SLC_PERIOD_NONE = 0,
    SLC_PERIOD_DAY = 1,
    SLC_PERIOD_WEEK = 2,
    SLC_PERIOD_MONTH = 3,
    SLC_PERIOD_TOTAL = 4,
} slc_period;

typedef struct slc_budget {
    bool present;
    slc_pos pos;
    int64_t usd_micros;    /* -1 = none */
    int64_t tokens;        /* -1 = none */
    slc_str per;
    slc_period period;     /* check */
} slc_budget;

typedef struct slc_limits {
    uint32_t rpm, tpm;
} slc_limits;

typedef struct slc_team {
    slc_str name;
    slc_budget budget;
    slc_limits limits;
} slc_team;

typedef struct slc_cidr {
    slc_str text;
    uint8_t family, prefix;
    uint8_t addr[16];
} slc_cidr;

typedef struct slc_key {
    slc_str name;
    slc_str hash;
    uint8_t hash_bytes[32];  /* check */
    slc_str team;
    int team_idx;            /* check; -1 none */
    bool all_models;
    slc_str *models;
    size_t nmodels;
    uint32_t *scope;         /* check: entry indices, ascending */
    size_t nscope;
    slc_limits limits;
    slc_budget budget;
    slc_str expires;
    int64_t expires_unix;
    slc_cidr *cidrs;
    size_t ncidrs;
    slc_cache cache;
} slc_key;

typedef struct slc_price {
    slc_str key;             /* provider/model as written */
    slc_str provider;        /* split from key */
    slc_str model;
    int provider_idx;        /* check */
    int64_t input, output, cache_read, cache_write;
    bool from_catalog;       /* check added it from catalog/ (the spec gave none) */
} slc_price;

typedef struct slc_server {
    uint32_t max_header_bytes;
    uint32_t max_headers;
    uint64_t max_body_bytes;
    uint32_t header_timeout_ms;
    uint32_t body_timeout_ms;
    uint32_t keepalive_timeout_ms;
    uint32_t max_connections;
    uint32_t max_inflight;
    uint32_t handshake_timeout_ms;
    uint32_t max_handshakes;
} slc_server;

/* `tls:` next to `listen`: the listener speaks HTTPS with this chain and
 * key. Paths as written, and emitted so (the generated table must not
 * depend on where the spec sits); slc_check_files reads relative ones
 * next to the spec. */
typedef struct slc_tls {
    bool present;
    slc_pos pos;
    slc_str cert, key;
    slc_str client_ca;       /* CAs of client certificates (mTLS), or s == NULL */
    slc_str client_auth;     /* "require" (default with client_ca) or "optional" */
    bool client_required;
} slc_tls;

/* `telemetry:`: where traces go. Absent = no tracing code is active. */
typedef struct slc_telemetry {
    bool present;
    slc_str otlp;            /* OTLP/HTTP base URL; /v1/traces is appended */
    slc_str service_name;    /* default "sluice" */
} slc_telemetry;

/* `state: { redis: ... }`: replicas share budgets and rate limits through
 * Redis (runtime/state). compiler/state.c reads and checks it; the URL is
 * split into host, port and database here so the runtime parses nothing. */
typedef enum slc_state_policy {
    SLC_STATE_FAIL_CLOSED = 0,  /* Redis unreachable: budgeted requests get 503 */
    SLC_STATE_LOCAL = 1,        /* ... fall back to per-replica counters, budget / replicas */
} slc_state_policy;

typedef struct slc_redis {
    bool present;
    slc_pos pos;
    slc_str url;
    const char *host;
    uint16_t port;
    uint32_t db;
    slc_str password;           /* env:NAME as written */
    const char *password_env;
    slc_str prefix;             /* default "sluice:" */
    uint32_t timeout_ms;        /* connect and each command; default 100 ms */
    uint32_t lease_ms;          /* a reservation's expiry; default 15 min */
    slc_state_policy on_error;
    uint32_t replicas;          /* 0 = not given */
    bool share_circuits;        /* one replica's open circuit cools the target for all */
} slc_redis;

typedef struct slc_spec {
    slc_pos pos;
    slc_str listen;
    slc_tls tls;
    slc_str listen_plain;    /* s == NULL: none */
    bool allow_plaintext;
    slc_pos allow_plaintext_pos;
    slc_str state;           /* the SQLite file, whichever form `state:` takes */
    slc_redis redis;
    slc_server server;
    slc_provider *providers;
    size_t nproviders;
    slc_model *models;
    size_t nmodels;
    slc_team *teams;
    size_t nteams;
    slc_key *keys;
    size_t nkeys;
    slc_price *prices;
    size_t nprices;
    bool has_admin;
    slc_str admin_hash;
    uint8_t admin_hash_bytes[32];
    slc_pos keys_pos;        /* the `keys:` entry, when present */
    bool has_keys_section;
    slc_telemetry telemetry;
    struct slc_guard_set *guard; /* guard.h; NULL without guardrails */
    /* `responses: { retention: 30d }`: how long stored Responses objects
     * are kept; 0 = not written (the runtime's default). */
    uint32_t responses_retention_s;
} slc_spec;

/* Returns the spec, or NULL when the root is unusable. Shape errors are
 * reported and the spec is still returned with what could be read, so
 * check can report further problems in one run. */
slc_spec *slc_spec_build(const slc_node *root, slc_arena *a, slc_diags *d);

const char *slc_kind_name(slc_kind k);

/* `state:` as a file name (the SQLite ledger) or as a mapping
 * `{ file: ..., redis: { url, password, prefix, timeout, lease,
 * on_state_error, replicas } }`; shape and value checks (compiler/state.c). */
void slc_state_read(const slc_node *root, slc_spec *s, slc_arena *a, slc_diags *d);

#endif
