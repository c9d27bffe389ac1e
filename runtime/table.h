/*
 * The contract between sluicec's generated C and the sluice runtime.
 *
 * `sluicec build` turns a checked spec into one C file that defines a single
 * `const sl_table sl_spec` plus a re2c matcher for model names; everything
 * the runtime knows about providers, routes, keys and budgets comes from
 * here. All arrays are const and indexed by uint16/uint32 so the table lives
 * in .rodata and needs no start-up work. Bump SL_TABLE_ABI whenever a struct
 * below changes shape: the generated file asserts it at compile time, so a
 * stale build directory fails loudly instead of misreading the table.
 */
#ifndef SLUICE_TABLE_H
#define SLUICE_TABLE_H

#include <stddef.h>
#include <stdint.h>

#define SL_TABLE_ABI 10

typedef enum sl_kind {
    SL_KIND_OPENAI = 0,
    SL_KIND_ANTHROPIC = 1,
    SL_KIND_GEMINI = 2,
    SL_KIND_MOCK = 3,
    SL_KIND_BEDROCK = 4, /* AWS Bedrock runtime (InvokeModel, Converse), SigV4-signed */
    SL_KIND_VERTEX = 5,  /* Google Vertex AI: Gemini or Anthropic by model */
} sl_kind;

/* How an OpenAI-kind provider's URL is built. */
typedef enum sl_url_style {
    SL_URL_BASE = 0,   /* {base_url}/chat/completions */
    SL_URL_AZURE = 1,  /* {base_url}/openai/deployments/{deployment}/chat/completions?api-version= */
} sl_url_style;

/* Provider quirks a preset carries (bits of sl_provider.quirks). */
#define SL_QUIRK_NO_STREAM_OPTIONS 1u /* rejects stream_options: usage is not forced */

/* How sluice trusts a provider's https:// upstream (spec `tls:` of a
 * provider), handed to libcurl. Paths as the spec writes them: a relative
 * one is read in the gateway's working directory, at start and by libcurl
 * on each new connection; the key itself is never in the binary. */
typedef struct sl_provider_tls {
    const char *ca;          /* PEM CA bundle instead of the system's, or NULL */
    const char *client_cert; /* PEM client certificate (chain) for mTLS, or NULL */
    const char *client_key;  /* its private key, set exactly when client_cert is */
    uint8_t verify;          /* 0 only for loopback hosts (sluicec refuses others) */
} sl_provider_tls;

/* HTTP version to an upstream. AUTO: HTTP/2 when TLS negotiates it (ALPN),
 * else HTTP/1.1; ON: also HTTP/2 without TLS (prior knowledge, for h2c
 * servers); OFF: HTTP/1.1 only. HTTP/2 transfers to one host share
 * connections as streams instead of each holding a connection. */
typedef enum sl_http2 {
    SL_HTTP2_AUTO = 0,
    SL_HTTP2_ON = 1,
    SL_HTTP2_OFF = 2,
} sl_http2;

/* A bedrock provider's AWS settings (spec region:, credentials:, api:).
 * Credential sources are "env:NAME" or "file:PATH", read when sluice
 * starts (runtime/aws/creds.h); the secrets are never in the binary. */
enum { SL_AWS_API_AUTO = 0, SL_AWS_API_INVOKE = 1, SL_AWS_API_CONVERSE = 2 };
typedef struct sl_provider_aws {
    const char *region;
    const char *key_id, *secret;
    const char *token;       /* NULL: no session token */
    uint8_t token_optional;  /* the default env:AWS_SESSION_TOKEN: unset means none */
    uint8_t api;             /* SL_AWS_API_*: auto = InvokeModel for Anthropic models, else Converse */
    uint8_t container;       /* credentials: container: from the ECS/EKS endpoint, refreshed
                                (key_id, secret and token are then NULL) */
} sl_provider_aws;
/* A provider whose key is an OAuth2 access token the gateway fetches
 * itself (runtime/auth/oauth.h): Google's service-account JWT grant
 * (Vertex AI) or Entra ID's client-credentials grant (Azure). Secrets
 * are named here (a variable or a file), never held. */
typedef enum sl_oauth_grant {
    SL_OAUTH_GOOGLE_SA = 1, /* credentials: a service-account JSON key file */
    SL_OAUTH_ENTRA = 2,     /* tenant_id, client_id and client_secret */
} sl_oauth_grant;

/* The OAuth module's entry points (runtime/auth/oauth.h). Only a table
 * with an OAuth provider refers to them, so other gateways link none of
 * its code (token sources, JWT signing, key parsing). */
struct sl_oauth_ops;
extern const struct sl_oauth_ops sl_oauth_module_ops;

typedef struct sl_provider_oauth {
    const struct sl_oauth_ops *ops; /* &sl_oauth_module_ops in generated tables */
    uint8_t grant;            /* sl_oauth_grant */
    const char *credentials;  /* google: the key file's path, or NULL */
    const char *credentials_env; /* google: a variable holding that path, or NULL */
    const char *tenant_id;    /* entra */
    const char *client_id;    /* entra */
    const char *secret_env;   /* entra: client_secret from this variable, or NULL */
    const char *secret_file;  /* entra: ... or from this file, or NULL */
    const char *token_url;    /* the token endpoint instead of the grant's own, or NULL */
} sl_provider_oauth;

typedef struct sl_provider {
    const char *name;
    sl_kind kind;            /* the wire protocol (adapter) */
    const char *base_url;    /* no trailing slash; "" for mock */
    const char *api_key_env; /* environment variable name, or NULL */
    const char *api_key_file; /* or a file holding the key (read at start), or NULL */
    const sl_provider_oauth *oauth; /* a fetched bearer token instead of a key, or NULL */
    const char *project;     /* vertex: the Google Cloud project */
    const char *location;    /* vertex: its region, or "global" */
    uint8_t publisher;       /* vertex: 0 = by model (claude-* Anthropic), 1 = google, 2 = anthropic */
    /* From the spec's preset (compiler/presets.c); zero values mean the
     * protocol's own behaviour, so a plain `kind: openai` sets none. */
    const char *preset;      /* the `kind:` word when it names a preset, else NULL */
    const char *auth_format; /* header line for the key ("api-key: %s"); NULL = the kind's */
    const char *headers;     /* extra header lines, '\n'-separated, or NULL */
    uint32_t ops;            /* bit (1 << sl_op) per operation served; 0 = all the kind serves */
    uint32_t quirks;         /* SL_QUIRK_* */
    uint8_t url_style;       /* sl_url_style */
    const char *deployment;  /* azure: NULL = the upstream model name */
    const char *api_version; /* azure: the api-version query value */
    uint8_t optional;        /* may start without the variable: its requests get 503 */
    uint8_t responses;       /* serves POST {base_url}/responses: Responses requests pass through */
    uint32_t connect_ms;     /* TCP+TLS connect */
    uint32_t first_byte_ms;  /* request sent -> first response byte */
    uint32_t idle_ms;        /* longest silence between body chunks */
    uint32_t total_ms;       /* whole transfer cap */
    const sl_provider_tls *tls; /* NULL: libcurl's defaults (system CAs, verify) */
    sl_http2 http2;
    const sl_provider_aws *aws; /* kind bedrock only */
} sl_provider;

/* What the model catalog (catalog/) says about a target's model, decided
 * by sluicec per target. Without SL_CAP_KNOWN (a model the catalog lacks,
 * or a glob target) requests go as the client sent them. */
#define SL_CAP_KNOWN 0x1u
#define SL_CAP_TOOLS 0x2u            /* takes tool definitions */
#define SL_CAP_VISION 0x4u           /* takes image input */
#define SL_CAP_REASONING 0x8u
#define SL_CAP_CACHING 0x10u         /* prompt caching */
#define SL_CAP_MAX_COMPLETION 0x20u  /* OpenAI protocol: needs max_completion_tokens (rejects max_tokens) */
#define SL_CAP_MAX_TOKENS 0x80u      /* OpenAI protocol: needs max_tokens (may ignore the other) */
#define SL_CAP_NO_TEMPERATURE 0x40u  /* rejects temperature */
#define SL_CAP_EFFORT_MINIMAL 0x100u /* reasoning_effort values it accepts... */
#define SL_CAP_EFFORT_LOW 0x200u
#define SL_CAP_EFFORT_MEDIUM 0x400u
#define SL_CAP_EFFORT_HIGH 0x800u
#define SL_CAP_EFFORT_BUDGET 0x1000u /* ...or a thinking budget (Anthropic, Gemini) */
#define SL_CAP_EFFORTS 0x1f00u

typedef struct sl_target {
    uint16_t provider;   /* index into sl_table.providers */
    const char *model;   /* upstream model name; NULL = the name the client sent */
    uint32_t weight;     /* > 0 */
    uint32_t caps;       /* SL_CAP_*; 0 = unknown */
    uint32_t max_output; /* the model's output limit; 0 = unknown */
} sl_target;

/* What makes a failed attempt retryable. status_bits has bit (code) set for
 * each HTTP status code 0..639 that is retryable. */
typedef struct sl_retry {
    uint16_t attempts;        /* retries after the first try (default 2) */
    uint32_t backoff_ms;      /* first backoff; doubles each retry, with jitter */
    uint32_t backoff_cap_ms;  /* cap for backoff and for honoured Retry-After */
    uint8_t on_connect;       /* connect errors, resets before any byte */
    uint8_t on_timeout;       /* timeouts before the first byte */
    uint64_t status_bits[10];
} sl_retry;

typedef struct sl_model_entry {
    const char *name;          /* exact name, or the glob as written */
    uint8_t is_glob;           /* '*' and '?' wildcards */
    uint32_t target_first;     /* into sl_table.targets */
    uint32_t target_count;
    uint32_t fallback_first;   /* into sl_table.fallbacks */
    uint32_t fallback_count;
    sl_retry retry;
    /* Circuit breaker for this entry's targets: after cooldown_failures
     * consecutive failures a target is skipped for cooldown_ms, then one
     * probe decides. 0 = defaults (5 failures, 30 s). */
    uint32_t cooldown_failures;
    uint32_t cooldown_ms;
} sl_model_entry;

typedef enum sl_period {
    SL_PERIOD_NONE = 0,
    SL_PERIOD_DAY = 1,
    SL_PERIOD_WEEK = 2,   /* ISO weeks, Monday 00:00 UTC */
    SL_PERIOD_MONTH = 3,
    SL_PERIOD_TOTAL = 4,
} sl_period;

typedef struct sl_budget {
    int64_t usd_micros;   /* -1 = no USD limit */
    int64_t tokens;       /* -1 = no token limit */
    sl_period per;        /* SL_PERIOD_NONE = no budget at all */
} sl_budget;

typedef struct sl_limits {
    uint32_t rpm;  /* 0 = unlimited */
    uint32_t tpm;  /* 0 = unlimited */
} sl_limits;

typedef struct sl_team {
    const char *name;
    sl_budget budget;
    sl_limits limits;
} sl_team;

typedef struct sl_key {
    const char *name;
    uint8_t hash[32];        /* SHA-256 of the key the client presents */
    int32_t team;            /* index into sl_table.teams, -1 = none */
    uint8_t all_models;      /* no `models:` given: every entry */
    uint32_t scope_first;    /* into sl_table.scopes: allowed entry indices */
    uint32_t scope_count;
    sl_limits limits;
    sl_budget budget;
    int64_t expires_unix;    /* 0 = never */
    uint32_t cidr_first;     /* into sl_table.cidrs */
    uint32_t cidr_count;     /* 0 = any address */
} sl_key;

typedef struct sl_cidr {
    uint8_t family;     /* 4 or 6 */
    uint8_t prefix;     /* bits */
    uint8_t addr[16];   /* network order; v4 uses the first 4 bytes */
} sl_cidr;

/* Prices in micro-USD per million tokens (USD 3.00/Mtok = 3000000), so cost
 * in micro-USD is tokens * price / 1e6 with integer arithmetic. */
typedef struct sl_price {
    uint16_t provider;
    const char *model;
    int64_t input;
    int64_t output;
    int64_t cache_read;
    int64_t cache_write;
} sl_price;

typedef struct sl_server_limits {
    uint32_t max_header_bytes;   /* default 16 KiB */
    uint32_t max_headers;        /* default 100 */
    uint64_t max_body_bytes;     /* default 10 MiB */
    uint32_t header_timeout_ms;  /* default 10 s */
    uint32_t body_timeout_ms;    /* idle while reading a body, default 10 s */
    uint32_t keepalive_timeout_ms; /* default 75 s */
    uint32_t max_connections;    /* per process, default 10000 */
    uint32_t max_inflight;       /* upstream requests per process, default 10000 */
    uint32_t handshake_timeout_ms; /* TLS handshake, default 10 s */
    uint32_t max_handshakes;     /* TLS handshakes in progress per process, default 1024 */
} sl_server_limits;

/* The TLS module's entry points (runtime/tls/tls.h). Only a table whose
 * spec has `tls:` refers to them, so a gateway without TLS links no TLS
 * code: the linker leaves the module out of the static runtime library. */
struct sl_tls_ops;
extern const struct sl_tls_ops sl_tls_server_ops;

typedef enum sl_client_auth {
    SL_CLIENT_AUTH_NONE = 0,
    SL_CLIENT_AUTH_OPTIONAL = 1,  /* asked for; a client without a valid one carries on */
    SL_CLIENT_AUTH_REQUIRE = 2,   /* a client without a valid one is refused */
} sl_client_auth;

typedef struct sl_tls_spec {
    const char *cert;             /* PEM chain, server certificate first; read at start */
    const char *key;              /* PEM private key; never in the binary, only its path */
    const char *client_ca;        /* CAs of client certificates (mTLS), or NULL */
    sl_client_auth client_auth;   /* NONE exactly when client_ca is NULL */
    const struct sl_tls_ops *ops; /* &sl_tls_server_ops in generated tables */
} sl_tls_spec;

/* Shared state for replicas (runtime/state/state.h): Redis holds budgets
 * and rate limits for every replica. Only a table whose spec has
 * `state: { redis: ... }` refers to sl_state_redis_ops, so a gateway
 * without it links neither the module nor hiredis. */
struct sl_state_ops;
extern const struct sl_state_ops sl_state_redis_ops;

typedef enum sl_state_policy {
    SL_STATE_FAIL_CLOSED = 0,  /* Redis unreachable: budgeted or limited requests get 503 */
    SL_STATE_LOCAL = 1,        /* ... per-replica counters, each limit divided by replicas */
} sl_state_policy;

typedef struct sl_redis_spec {
    const char *host;             /* name or address, as in the URL */
    uint16_t port;
    uint32_t db;
    const char *password_env;     /* AUTH from this variable at start; NULL = none */
    const char *prefix;           /* of every key, e.g. "sluice:prod:" */
    uint32_t timeout_ms;          /* connect and each command */
    uint32_t lease_ms;            /* a reservation expires after this (a replica died) */
    sl_state_policy on_error;
    uint32_t replicas;            /* the local share is 1/replicas; 0 = not given (1) */
    uint8_t share_circuits;       /* an open circuit on one replica opens it on all */
    const struct sl_state_ops *ops; /* &sl_state_redis_ops in generated tables */
} sl_redis_spec;
/* Response caching (runtime/cache/). Like TLS, only a table whose spec has
 * `cache:` refers to the module's ops, so a gateway without it links no
 * cache code. One rule per `cache:` in the spec: a key's rule applies to
 * all of its requests and wins over the model entry's. */
struct sl_cache_ops;
extern const struct sl_cache_ops sl_cache_module_ops;

typedef enum sl_cache_mode {
    SL_CACHE_OFF = 0,        /* `cache: false`: a key opting out of its entries' caches */
    SL_CACHE_EXACT = 1,
    SL_CACHE_SEMANTIC = 2,
} sl_cache_mode;

typedef struct sl_cache_rule {
    uint8_t mode;              /* sl_cache_mode */
    uint8_t of_key;            /* the rule is a key's (owner = key index), else an entry's */
    uint8_t shared;            /* one answer for every key; else per key */
    uint8_t allow_temperature; /* cache requests without temperature 0 too */
    uint32_t owner;
    uint32_t ttl_ms;
    uint64_t max_bytes;        /* this rule's store: answers held, LRU beyond */
    int32_t sem_provider;      /* semantic: embeddings provider, else -1 */
    const char *sem_model;
    double threshold;          /* semantic: cosine similarity for a hit */
} sl_cache_rule;

/* Guardrails (runtime/guard/guard.h). Only a table whose spec has
 * `guardrails:` refers to sl_guard_runtime_ops, so a gateway without them
 * links no guardrail code. Each guardrail has its own generated re2c
 * scanner over its detectors and deny patterns. */
struct sl_guard_ops;
extern const struct sl_guard_ops sl_guard_runtime_ops;

enum {
    SL_GUARD_NONE = 0,   /* no action in this direction */
    SL_GUARD_LOG = 1,    /* count and record detector names */
    SL_GUARD_REDACT = 2, /* replace with typed placeholders */
    SL_GUARD_BLOCK = 3,  /* refuse with a 400 */
};

/* Built-in detectors, in the spec's spelling order. Rule numbers the
 * scanners return; SL_GDET_PEM is the "secrets" detector's private key
 * block, whose body C finds after the DFA matched its header. */
enum {
    SL_GDET_EMAIL = 0,
    SL_GDET_PHONE = 1,
    SL_GDET_CARD = 2,
    SL_GDET_IBAN = 3,
    SL_GDET_SSN = 4,
    SL_GDET_IPV4 = 5,
    SL_GDET_IPV6 = 6,
    SL_GDET_SECRETS = 7,
    SL_GDET_COUNT = 8,
    SL_GDET_PEM = 8,
    SL_GDET_DENY = 16,
};

/* The generated scanner of one guardrail: tries every rule at s (anchored)
 * against s..lim, where *lim is a NUL sentinel. Returns the rule (a
 * detector number SL_GDET_*, or SL_GDET_DENY + k for deny pattern k), with
 * the match length in *len, or -1. *partial is set when the scanner read up
 * to lim, so more text could have changed the answer. */
typedef int (*sl_guard_scan_fn)(const unsigned char *s, const unsigned char *lim, int *partial,
                                size_t *len);

typedef struct sl_guardrail {
    const char *name;
    uint32_t detectors;        /* bit (1 << SL_GDET_*) per built-in detector */
    uint32_t deny_count;       /* deny patterns, rules SL_GDET_DENY + 0.. */
    uint8_t request;           /* SL_GUARD_* on request text */
    uint8_t response;          /* SL_GUARD_* on response text */
    uint8_t restore;           /* redacted values restored in the response */
    sl_guard_scan_fn scan;
    /* For positions right after a letter or digit, where no built-in
     * detector may start: the deny patterns alone, or NULL when there are
     * none (such positions are skipped). */
    sl_guard_scan_fn scan_word;
} sl_guardrail;

typedef struct sl_guard_spec {
    const sl_guardrail *rails;  uint32_t rail_count;   /* at most 32 */
    /* Bit i: guardrail i applies. Indexed like the table's arrays. */
    const uint32_t *model_rails;  /* model_count entries */
    const uint32_t *key_rails;    /* key_count entries, or NULL */
    const uint32_t *team_rails;   /* team_count entries, or NULL */
    const struct sl_guard_ops *ops; /* &sl_guard_runtime_ops in generated tables */
} sl_guard_spec;

typedef struct sl_table {
    uint32_t abi;                 /* SL_TABLE_ABI */
    const char *spec_sha256;      /* 64 lowercase hex of the spec file bytes */
    const char *listen;           /* "127.0.0.1:4000", "[::1]:4000"; HTTPS when tls is set */
    const sl_tls_spec *tls;       /* NULL = plain HTTP */
    const char *listen_plain;     /* a second, plain HTTP listener, or NULL */
    const char *state;            /* SQLite path */
    const sl_redis_spec *redis;   /* NULL = budgets and limits are this process's own */
    sl_server_limits server;

    const sl_provider *providers;  uint32_t provider_count;
    const sl_model_entry *models;  uint32_t model_count;
    const sl_target *targets;      uint32_t target_count;
    const uint32_t *fallbacks;     uint32_t fallback_count; /* model entry indices */
    const sl_team *teams;          uint32_t team_count;
    const sl_key *keys;            uint32_t key_count;
    const uint32_t *scopes;        uint32_t scope_count;    /* model entry indices */
    const sl_cidr *cidrs;          uint32_t cidr_count;
    const sl_price *prices;        uint32_t price_count;
    const sl_cache_rule *cache_rules; uint32_t cache_rule_count;
    const struct sl_cache_ops *cache_ops; /* &sl_cache_module_ops when a rule caches */

    /* telemetry: OTLP/HTTP collector base URL and service.name; both NULL
     * when the spec asks for no traces. */
    const char *otlp_url;
    const char *service_name;

    /* How long stored Responses objects (store: true, previous_response_id)
     * are kept, in seconds; 0 = the default, 30 days. */
    uint32_t responses_retention_s;

    uint8_t has_admin;
    uint8_t admin_hash[32];

    const sl_guard_spec *guard;   /* NULL: the spec has no guardrails */

    /* Generated by re2c: the model entry for `name` (NUL-terminated, len
     * bytes, no embedded NUL), or -1. Exact names win over globs; among
     * globs the longest literal prefix wins, then spec order. */
    int (*match_model)(const char *name, size_t len);
} sl_table;

/* Defined by the generated file. */
extern const sl_table sl_spec;

#endif
