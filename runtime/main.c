/*
 * sluice: the gateway binary. Parses flags, loads provider secrets from the
 * environment (through the proxy), registers the proxy as the server's
 * handler set, and runs the server on the spec that was compiled in. The
 * only file allowed to exit().
 */
#include <curl/curl.h>
#include <errno.h>
#include <ev.h>
#include <getopt.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/oauth.h"
#include "core/accesslog.h"
#include "core/log.h"
#include "core/membudget.h"
#include "json/json_out.h"
#include "proxy/dispatch.h"
#include "providers/provider.h"
#include "proxy/proxy.h"
#include "server/listen.h"
#include "server/server.h"
#include "state/state.h"
#include "state/url.h"
#include "table.h"

/* libev aborts the process when its own allocation fails; a transient
 * shortage (one failed realloc) deserves a second try first. */
static void *ev_alloc_retry(void *ptr, long size)
{
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    for (int i = 0; i < 3; i++) {
        void *p = realloc(ptr, (size_t)size);
        if (p)
            return p;
    }
    fprintf(stderr, "sluice: out of memory in the event loop\n");
    abort();
}

/* The request path: the endpoint table sees every head (and refuses what
 * cannot succeed before any body byte is read), then every request. */
static const sl_handlers proxy_handlers = {
    .worker_init = sl_proxy_worker_init,
    .head = sl_dispatch_head,
    .request = sl_dispatch_request,
};

/* "268435456", "256M", "256MiB", "1G": bytes, binary multiples. -1 when
 * it does not parse. */
static int parse_bytes(const char *s, size_t *out)
{
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || errno || s[0] == '-')
        return -1;
    unsigned shift = 0;
    if (*end == 'K' || *end == 'k') shift = 10;
    else if (*end == 'M' || *end == 'm') shift = 20;
    else if (*end == 'G' || *end == 'g') shift = 30;
    if (shift) {
        end++;
        if (strcmp(end, "iB") == 0 || strcmp(end, "B") == 0)
            end += strlen(end);
    }
    if (*end || v > (SIZE_MAX >> shift))
        return -1;
    *out = (size_t)v << shift;
    return 0;
}

static void on_sighup(int sig)
{
    (void)sig;
    sl_access_reopen();
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: sluice [options]\n"
            "\n"
            "Runs the LLM gateway compiled from spec %.12s.\n"
            "\n"
            "  --listen ADDR:PORT   listen address (spec: %s); [V6]:PORT for IPv6, port 0 picks one\n"
            "  --state PATH         SQLite state file (spec: %s)\n"
            "  --tls-cert PATH      PEM certificate chain instead of the spec's (spec has tls:)\n"
            "  --tls-key PATH       PEM private key instead of the spec's; SIGHUP re-reads both\n"
            "  --ledger MODE        budget (default): responses to keys with a budget (their own or\n"
            "                       their team's) end only after their spend row is committed, other\n"
            "                       rows follow within ~5 ms; commit: every response waits; async:\n"
            "                       none waits; off: no ledger (budgets restart from zero) and no\n"
            "                       stored Responses objects; a stored response always waits\n"
            "  --workers N          event-loop threads (default: number of CPUs)\n"
            "  --drain-timeout MS   how long a drain (SIGTERM or a hand-off) waits for in-flight\n"
            "                       requests, streams and idle keep-alive clients (default 10000)\n"
            "  --control PATH       control socket a newer binary takes the listeners over from\n"
            "                       (mode 0600; default: the state file's path + .ctl; off = none)\n"
            "  --upgrade-from PATH  take the listening sockets over from the instance whose control\n"
            "                       socket is PATH, then tell it to drain: a rollout loses nothing\n"
            "                       (LISTEN_FDS from systemd socket activation is honoured too)\n"
            "  --listen-plain ADDR:PORT\n"
            "                       the plain health-check listener next to HTTPS (spec:\n"
            "                       listen_plain)\n"
            "  --provider-url NAME=URL\n"
            "                       send provider NAME's traffic to URL instead of the spec's\n"
            "                       base_url (a staging upstream, a local test server); repeatable\n"
            "  --token-url NAME=URL fetch provider NAME's OAuth tokens (kind vertex, auth: entra)\n"
            "                       from URL instead (a sovereign cloud, a test server); repeatable\n"
            "  --providers          print each provider: name, kind, base URL (after --provider-url),\n"
            "                       key variable; then exit\n"
            "  --max-buffered BYTES request body bytes held in memory across all connections\n"
            "                       (default 256MiB, at least 4 x max_body; 0 = no limit); a\n"
            "                       request that does not fit gets 503 with Retry-After\n"
            "  --quiet              no access log lines\n"
            "  --log-format FORMAT  access log as text (default) or json (one object per line)\n"
            "  --access-log FILE    access log to FILE instead of stderr; SIGHUP reopens it\n"
            "  --redis URL          redis://HOST:PORT/DB instead of the spec's state.redis.url\n"
            "                       (only for a spec with state: { redis: ... })\n"
            "  --otlp URL           OTLP/HTTP collector base URL for traces, instead of the spec's\n"
            "                       telemetry.otlp (only for a spec with telemetry:)\n"
            "  --no-metrics         record no request metrics (GET /metrics keeps the gauges)\n"
            "  --log-level LEVEL    error | warn | info | debug (default info)\n"
            "  --version            print version and the spec's SHA-256, then exit\n"
            "  --help               this text\n",
            sl_spec.spec_sha256, sl_spec.listen, sl_spec.state);
}

int main(int argc, char **argv)
{
    enum { O_LISTEN = 1000, O_STATE, O_WORKERS, O_DRAIN, O_QUIET, O_LOGLEVEL, O_VERSION, O_HELP,
           O_LEDGER, O_MAX_BUFFERED, O_CONTROL, O_UPGRADE_FROM, O_NO_METRICS, O_TLS_CERT, O_TLS_KEY,
           O_LOG_FORMAT, O_ACCESS_LOG, O_OTLP, O_PROVIDER_URL, O_TOKEN_URL, O_PROVIDERS, O_LISTEN_PLAIN, O_REDIS };
    const char *otlp = NULL;
    sl_access_format log_format = SL_ACCESS_TEXT;
    const char *access_log = NULL;
    int no_metrics = 0;
    int ledger_wait = SL_LEDGER_WAIT_BUDGET;
    static const struct option opts[] = {
        {"listen", required_argument, NULL, O_LISTEN},
        {"listen-plain", required_argument, NULL, O_LISTEN_PLAIN},
        {"state", required_argument, NULL, O_STATE},
        {"workers", required_argument, NULL, O_WORKERS},
        {"drain-timeout", required_argument, NULL, O_DRAIN},
        {"quiet", no_argument, NULL, O_QUIET},
        {"log-level", required_argument, NULL, O_LOGLEVEL},
        {"version", no_argument, NULL, O_VERSION},
        {"help", no_argument, NULL, O_HELP},
        {"ledger", required_argument, NULL, O_LEDGER},
        {"max-buffered", required_argument, NULL, O_MAX_BUFFERED},
        {"control", required_argument, NULL, O_CONTROL},
        {"upgrade-from", required_argument, NULL, O_UPGRADE_FROM},
        {"no-metrics", no_argument, NULL, O_NO_METRICS},
        {"tls-cert", required_argument, NULL, O_TLS_CERT},
        {"tls-key", required_argument, NULL, O_TLS_KEY},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"access-log", required_argument, NULL, O_ACCESS_LOG},
        {"otlp", required_argument, NULL, O_OTLP},
        {"provider-url", required_argument, NULL, O_PROVIDER_URL},
        {"token-url", required_argument, NULL, O_TOKEN_URL},
        {"providers", no_argument, NULL, O_PROVIDERS},
        {"redis", required_argument, NULL, O_REDIS},
        {NULL, 0, NULL, 0},
    };
    if (sl_spec.abi != SL_TABLE_ABI) {
        fprintf(stderr, "sluice: compiled table ABI %u does not match runtime ABI %d\n", sl_spec.abi,
                SL_TABLE_ABI);
        return 2;
    }
    /* The compiled table is read-only; the gateway runs on a copy whose
     * providers --provider-url may re-point. */
    static sl_table table;
    table = sl_spec;
    sl_provider *providers = calloc(sl_spec.provider_count ? sl_spec.provider_count : 1, sizeof *providers);
    if (!providers) {
        fprintf(stderr, "sluice: out of memory\n");
        return 1;
    }
    if (sl_spec.provider_count)
        memcpy(providers, sl_spec.providers, sl_spec.provider_count * sizeof *providers);
    table.providers = providers;
    int list_providers = 0;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* Enough for four bodies of the largest size the spec allows, so one
     * maximal request always fits however max_body is set. */
    size_t max_buffered = SL_MEMBUDGET_DEFAULT;
    if (sl_spec.server.max_body_bytes > max_buffered / 4)
        max_buffered = (size_t)sl_spec.server.max_body_bytes * 4;
    sl_server_config cfg = {
        .table = &table,
        .handlers = &proxy_handlers,
        .listen = sl_spec.listen,
        .state_path = sl_spec.state,
        .workers = ncpu > 0 ? (int)ncpu : 1,
        .drain_ms = 10000,
    };
    const char *control = NULL;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case O_LISTEN: cfg.listen = optarg; break;
        case O_LISTEN_PLAIN:
            if (!table.listen_plain) {
                fprintf(stderr, "sluice: --listen-plain: this spec has no listen_plain (it needs tls:)\n");
                return 2;
            }
            table.listen_plain = optarg;
            break;
        case O_STATE: cfg.state_path = optarg; break;
        case O_TLS_CERT:
        case O_TLS_KEY:
            if (!sl_spec.tls) {
                fprintf(stderr, "sluice: --tls-cert/--tls-key need a spec with 'tls:'\n");
                return 2;
            }
            *(c == O_TLS_CERT ? &cfg.tls_cert : &cfg.tls_key) = optarg;
            break;
        case O_WORKERS:
            cfg.workers = atoi(optarg);
            if (cfg.workers < 1 || cfg.workers > 256) {
                fprintf(stderr, "sluice: --workers must be 1..256\n");
                return 2;
            }
            break;
        case O_DRAIN: cfg.drain_ms = (uint32_t)strtoul(optarg, NULL, 10); break;
        case O_QUIET: sl_log_access = 0; break;
        case O_NO_METRICS: no_metrics = 1; break;
        case O_LOG_FORMAT:
            if (strcmp(optarg, "text") == 0) log_format = SL_ACCESS_TEXT;
            else if (strcmp(optarg, "json") == 0) log_format = SL_ACCESS_JSON;
            else {
                fprintf(stderr, "sluice: --log-format must be text or json\n");
                return 2;
            }
            break;
        case O_ACCESS_LOG: access_log = optarg; break;
        case O_OTLP:
            if (!sl_spec.otlp_url) {
                fprintf(stderr, "sluice: --otlp needs a spec with telemetry: (this one has no tracing)\n");
                return 2;
            }
            if (strncmp(optarg, "http://", 7) != 0 && strncmp(optarg, "https://", 8) != 0) {
                fprintf(stderr, "sluice: --otlp wants an http:// or https:// URL\n");
                return 2;
            }
            otlp = optarg;
            break;
        case O_LOGLEVEL:
            if (strcmp(optarg, "error") == 0) sl_log_threshold = SL_LOG_ERROR;
            else if (strcmp(optarg, "warn") == 0) sl_log_threshold = SL_LOG_WARN;
            else if (strcmp(optarg, "info") == 0) sl_log_threshold = SL_LOG_INFO;
            else if (strcmp(optarg, "debug") == 0) sl_log_threshold = SL_LOG_DEBUG;
            else {
                fprintf(stderr, "sluice: unknown log level '%s'\n", optarg);
                return 2;
            }
            break;
        case O_VERSION:
            printf("sluice %s\nspec sha256: %s\n", SLUICE_VERSION, sl_spec.spec_sha256);
            return 0;
        case O_HELP: usage(stdout); return 0;
        case O_LEDGER:
            if (strcmp(optarg, "commit") == 0) ledger_wait = SL_LEDGER_WAIT_ALL;
            else if (strcmp(optarg, "budget") == 0) ledger_wait = SL_LEDGER_WAIT_BUDGET;
            else if (strcmp(optarg, "async") == 0) ledger_wait = SL_LEDGER_WAIT_NONE;
            else if (strcmp(optarg, "off") == 0) cfg.state_path = "";
            else {
                fprintf(stderr, "sluice: --ledger must be budget, commit, async or off\n");
                return 2;
            }
            break;
        case O_MAX_BUFFERED:
            if (parse_bytes(optarg, &max_buffered) != 0) {
                fprintf(stderr, "sluice: --max-buffered wants a byte count such as 268435456 or 256MiB\n");
                return 2;
            }
            break;
        case O_CONTROL: control = optarg; break;
        case O_UPGRADE_FROM: cfg.upgrade_from = optarg; break;
        case O_PROVIDER_URL: {
            char why[300];
            if (sl_provider_set_url(providers, table.provider_count, optarg, why, sizeof why) != 0) {
                fprintf(stderr, "sluice: %s\n", why);
                return 2;
            }
            break;
        }
        case O_TOKEN_URL: {
            char why[300];
            const sl_oauth_ops *oo = sl_oauth_ops_of(&table);
            if (!oo)
                snprintf(why, sizeof why, "--token-url: no provider of this spec fetches OAuth tokens "
                                          "(kind vertex, or azure with auth: entra)");
            if (!oo || oo->set_token_url(providers, table.provider_count, optarg, why, sizeof why) != 0) {
                fprintf(stderr, "sluice: %s\n", why);
                return 2;
            }
            break;
        }
        case O_PROVIDERS: list_providers = 1; break;
        case O_REDIS: {
            static sl_redis_spec redis;
            static char host[SL_REDIS_HOST_MAX];
            char why[160];
            if (!sl_spec.redis) {
                fprintf(stderr, "sluice: --redis needs a spec with state: { redis: ... }\n");
                return 2;
            }
            redis = *sl_spec.redis;
            if (redis.ops->parse_url(optarg, host, &redis.port, &redis.db, why, sizeof why) != 0) {
                fprintf(stderr, "sluice: --redis: the URL %s\n", why);
                return 2;
            }
            redis.host = host;
            table.redis = &redis;
            break;
        }
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sluice: unexpected argument '%s' (the spec is compiled in; see --help)\n",
                argv[optind]);
        return 2;
    }
    /* The compiler accepts a spec without keys only for a loopback listen;
     * --listen must not undo that. (Sockets from systemd or a hand-off must
     * match this address, so this covers them too.) */
    struct sockaddr_storage where;
    socklen_t where_len;
    if (table.key_count == 0 && table.listen_plain &&
        (sl_listen_parse(table.listen_plain, &where, &where_len) != 0 || !sl_listen_is_loopback(&where))) {
        fprintf(stderr, "sluice: --listen-plain %s: this spec has no keys, so it listens only on a "
                        "loopback address\n", table.listen_plain);
        return 2;
    }
    if (table.key_count == 0 && sl_listen_parse(cfg.listen, &where, &where_len) == 0 &&
        !sl_listen_is_loopback(&where)) {
        fprintf(stderr,
                "sluice: --listen %s: this spec has no keys, so it serves anyone and listens only on a "
                "loopback address (add keys: to the spec to serve a network)\n",
                cfg.listen);
        return 2;
    }
    if (list_providers) {
        /* Tab-separated, one line each: for operators and scripts (the
         * e2e harness maps its mock upstream's port through it). */
        for (uint32_t i = 0; i < table.provider_count; i++)
            printf("%s\t%s\t%s\t%s\n", providers[i].name, sl_provider_ops_of(providers[i].kind)->kind,
                   *providers[i].base_url ? providers[i].base_url : "-",
                   providers[i].api_key_env ? providers[i].api_key_env
                   : providers[i].aws && providers[i].aws->container ? "container"
                   : providers[i].aws      ? providers[i].aws->key_id /* bedrock: its key id's source */
                                           : "-");
        return 0;
    }
    {
        char why[1024];
        if (sl_provider_check_tls(providers, table.provider_count, why, sizeof why) != 0) {
            fprintf(stderr, "sluice: %s\n", why);
            return 2;
        }
    }
    /* The control socket lives next to the state the instance owns, so two
     * gateways with their own state never share one. */
    char control_default[4096];
    if (control && strcmp(control, "off") == 0) {
        cfg.control_path = NULL;
    } else if (control) {
        cfg.control_path = control;
    } else if (cfg.state_path && *cfg.state_path) {
        snprintf(control_default, sizeof control_default, "%s.ctl", cfg.state_path);
        cfg.control_path = control_default;
    }
    char err[256] = "";
    if (sl_access_setup(log_format, access_log, err, sizeof err) != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    /* logrotate's postrotate sends SIGHUP; without --access-log it is
     * ignored rather than fatal. The reopen is async-signal-safe. Once the
     * server's loop runs, its own SIGHUP watcher does this and the TLS
     * reload. */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sighup;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGHUP, &sa, NULL);
    sl_membudget_set_limit(max_buffered);
    ev_set_allocator(ev_alloc_retry);
    sl_json_init();
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) {
        fprintf(stderr, "sluice: curl initialisation failed\n");
        return 1;
    }
    sl_proxy_options popt = {.state_path = cfg.state_path, .ledger_wait = ledger_wait,
                                .no_metrics = no_metrics, .otlp_url = otlp};
    int prc = sl_proxy_init(&table, &popt, err, sizeof err);
    if (prc != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return prc == -2 ? 2 : 1; /* 2: the operator's configuration (a missing key) */
    }
    int rc = sl_server_run(&cfg, err, sizeof err);
    sl_proxy_shutdown();
    curl_global_cleanup();
    if (rc != 0) {
        fprintf(stderr, "sluice: %s\n", err);
        return 1;
    }
    return 0;
}
