/* mock-upstream: the project's own fake LLM provider, for end-to-end tests
 * and benchmarks. It listens on loopback and answers the OpenAI and
 * Anthropic APIs the gateway forwards to (see mock_api.c and the mock_*.c
 * pieces it names for shapes and the [[mock ...]] directives, mock_server.c
 * for the HTTP side). This file is
 * the command line: parse flags, bind, print the one "listening" line that
 * harnesses wait for, run until SIGTERM or SIGINT, and exit 0 so a harness
 * can tell a clean stop from a crash. */
#include "mock_upstream.h"
#include "mock_api_internal.h"

#include <ev.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_sigv4.h"

static void usage(FILE *f)
{
    fputs("usage: mock-upstream --listen HOST:PORT [--latency-ms N] [--jitter-ms N]\n"
          "                     [--seed N] [--no-auth] [--max-calls N] [--reject MODEL=PARAM]\n"
          "  --listen HOST:PORT  address to serve (port 0 picks a free one)\n"
          "  --latency-ms N      wait N ms before every API answer\n"
          "  --jitter-ms N       plus a random 0..N ms (reproducible with --seed)\n"
          "  --no-auth           accept requests that carry no provider key\n"
          "  --google-sa EMAIL=CERT.pem  serve Google's JWT grant at POST /token for the\n"
          "                      service account whose key the certificate holds\n"
          "  --entra TENANT:CLIENT_ID:SECRET  serve Entra ID's client-credentials grant\n"
          "                      at POST /TENANT/oauth2/v2.0/token\n"
          "  --token-ttl S       issued tokens live S seconds (default 3600)\n"
          "  --max-calls N       /__calls keeps about the newest N requests (default\n"
          "                      10000; 0 keeps none, for benchmarks)\n"
          "  --reject MODEL=PARAM  OpenAI-protocol requests for MODEL that carry PARAM\n"
          "                      get a 400 naming it, as OpenAI answers (repeatable)\n"
          "  --aws KEYID:SECRET --aws-region R --aws-date YYYYMMDDTHHMMSSZ [--aws-token T]\n"
          "                      Bedrock requests (/model/...) must be SigV4-signed with\n"
          "                      these test credentials at exactly this time, else 403\n"
          "  --aws-container-auth A --aws-expiration T  GET /aws/credentials hands the\n"
          "                      --aws credentials out as an ECS endpoint (Authorization A)\n"
          "Per-request behaviour: put [[mock key=value ...]] in the model name or the\n"
          "last user message; keys: chunks interval_ms status retry_after delay_ms\n"
          "first_byte_ms fail=reset|truncate|stall words.\n"
          "Control: GET /__calls (requests received), POST /__reset (forget them).\n",
          f);
}

static int parse_ms(const char *flag, const char *v, unsigned *out)
{
    char *e;
    unsigned long n = v ? strtoul(v, &e, 10) : 0;
    if (!v || !*v || *e || n > 3600000UL) {
        fprintf(stderr, "mock-upstream: %s wants milliseconds (0..3600000)\n", flag);
        return -1;
    }
    *out = (unsigned)n;
    return 0;
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    ev_break(loop, EVBREAK_ALL);
}

int main(int argc, char **argv)
{
    const char *listen_addr = NULL;
    mu_config cfg = {.max_calls = 10000};
    mu_aws aws = {.region = "us-east-1", .service = "bedrock", .date = "20241022T101500Z"};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--listen") && v) {
            listen_addr = v;
            i++;
        } else if (!strcmp(a, "--latency-ms")) {
            if (parse_ms(a, v, &cfg.latency_ms))
                return 2;
            i++;
        } else if (!strcmp(a, "--jitter-ms")) {
            if (parse_ms(a, v, &cfg.jitter_ms))
                return 2;
            i++;
        } else if (!strcmp(a, "--seed") && v) {
            cfg.seed = strtoul(v, NULL, 10);
            i++;
        } else if (!strcmp(a, "--max-calls") && v) {
            char *e;
            cfg.max_calls = strtol(v, &e, 10);
            if (!*v || *e || cfg.max_calls < 0) {
                fprintf(stderr, "mock-upstream: --max-calls wants a count >= 0\n");
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--reject") && v) {
            if (!strchr(v, '=') || cfg.nreject >= 16) {
                fprintf(stderr, "mock-upstream: --reject wants MODEL=PARAM (at most 16)\n");
                return 2;
            }
            cfg.reject[cfg.nreject++] = v;
            i++;
        } else if (!strcmp(a, "--aws") && v && strchr(v, ':')) {
            static char kid[128];
            snprintf(kid, sizeof kid, "%.*s", (int)(strchr(v, ':') - v), v);
            aws.key_id = kid;
            aws.secret = strchr(v, ':') + 1;
            i++;
        } else if (!strcmp(a, "--aws-region") && v) {
            aws.region = v;
            i++;
        } else if (!strcmp(a, "--aws-date") && v && strlen(v) == 16) {
            aws.date = v;
            i++;
        } else if (!strcmp(a, "--aws-container-auth") && v) {
            aws.container_auth = v;
            i++;
        } else if (!strcmp(a, "--aws-expiration") && v) {
            aws.expiration = v;
            i++;
        } else if (!strcmp(a, "--aws-token") && v) {
            aws.token = v;
            i++;
        } else if ((!strcmp(a, "--google-sa") || !strcmp(a, "--entra") || !strcmp(a, "--token-ttl")) && v) {
            int rc = a[2] == 'g' ? mu_oauth_google(v) : a[2] == 'e' ? mu_oauth_entra(v) : mu_oauth_ttl(v);
            if (rc != 0) {
                fprintf(stderr, "mock-upstream: %s: bad value (see --help)\n", a);
                return 2;
            }
            i++;
        } else if (!strcmp(a, "--no-auth")) {
            cfg.no_auth = 1;
        } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else {
            fprintf(stderr, "mock-upstream: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 2;
        }
    }
    if (!listen_addr) {
        usage(stderr);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    struct ev_loop *loop = ev_default_loop(EVFLAG_AUTO);
    mu_api_init(&cfg);
    mu_bedrock_config(&aws);
    char bound[128], err[256];
    mu_server *srv = mu_server_start(loop, listen_addr, bound, sizeof bound, err, sizeof err);
    if (!srv) {
        fprintf(stderr, "mock-upstream: cannot listen: %s\n", err);
        mu_api_free();
        return 1;
    }
    ev_signal sigterm, sigint;
    ev_signal_init(&sigterm, on_signal, SIGTERM);
    ev_signal_init(&sigint, on_signal, SIGINT);
    ev_signal_start(loop, &sigterm);
    ev_signal_start(loop, &sigint);

    fprintf(stderr, "mock-upstream listening on %s\n", bound);
    fflush(stderr);
    ev_run(loop, 0);

    ev_signal_stop(loop, &sigterm);
    ev_signal_stop(loop, &sigint);
    mu_server_stop(srv);
    mu_api_free();
    ev_loop_destroy(loop);
    return 0;
}
