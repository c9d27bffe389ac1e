/*
 * e2e-mock-spec: `sluicec build` for planner.test.mjs, which compares
 * `sluicec explain` with what a gateway built from the same spec really
 * sends upstream, for every example and test spec. Those specs name real
 * clouds, local servers and the in-process mock provider, so this tool
 * compiles the spec with sluicec's own front end and lowering, then
 * adjusts the lowered table before printing it, touching nothing the
 * planner reads (targets, weights, fallbacks, entries, matcher):
 *
 *  - every provider goes to tests/mock-upstream on the e2e port, as an
 *    Anthropic-kind provider if it is one and an OpenAI-kind one
 *    otherwise, with an API key variable of its own (no key file, no OAuth
 *    token), so the key on a call the mock records names the provider
 *    that made it, over plain
 *    HTTP/1.1 (the mock speaks nothing else; the HTTP version and the
 *    provider's tls: are no planner input), and the gateway listens on
 *    plain HTTP too;
 *  - every client key gets a known secret, no address restriction and no
 *    expiry, so the test can use any of them;
 *  - backoffs become 1 ms (retries keep their count) and cooldown needs
 *    1000 failures, so a request whose every attempt fails is quick and no
 *    circuit opened by the test's own failures reorders its retries;
 *  - shared state (`state: { redis: ... }`) is dropped: budgets and
 *    limits stay in the gateway, which plans exactly the same, and needs
 *    no Redis to start.
 *
 * usage: e2e-mock-spec build SPEC -o DIR [--quiet]   (as sluicec build)
 *        e2e-mock-spec manifest SPEC                  (JSON on stdout: the
 *            providers with their key variable and key, the entries, and
 *            the client keys with their secret)
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "compile.h"
#include "emit.h"
#include "lower.h"

/* tests/e2e/lib/harness.mjs MOCK_PORT: a placeholder the harness re-points
 * at the running mock with --provider-url */
#define MOCK "http://127.0.0.1:18431"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    slc_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        slc_buf_put(&b, chunk, n);
    fclose(f);
    slc_buf_putc(&b, '\0');
    *len = b.len - 1;
    return b.p;
}

static void key_hash(const char *secret, uint8_t out[32])
{
    char hex[65];
    slc_sha256_hex(secret, strlen(secret), hex);
    for (size_t i = 0; i < 32; i++) {
        unsigned v;
        sscanf(hex + 2 * i, "%2x", &v);
        out[i] = (uint8_t)v;
    }
}

static void retarget(slc_lowered *l, slc_arena *a)
{
    for (uint32_t i = 0; i < l->t.provider_count; i++) {
        sl_provider *p = &l->providers[i];
        p->kind = p->kind == SL_KIND_ANTHROPIC ? SL_KIND_ANTHROPIC : SL_KIND_OPENAI;
        p->base_url = p->kind == SL_KIND_ANTHROPIC ? MOCK : MOCK "/v1";
        p->api_key_env = slc_aprintf(a, "SLUICE_PLAN_KEY_%u", i);
        p->api_key_file = NULL; /* a key of its own, not a file's or a token */
        p->oauth = NULL;
        p->tls = NULL; /* the mock speaks plain HTTP/1.1 */
        p->aws = NULL; /* bedrock, now OpenAI-kind: a key of its own, no AWS credentials */
        p->http2 = SL_HTTP2_AUTO;
    }
    l->t.tls = NULL; /* and so does the gateway to the test */
    l->t.listen_plain = NULL;
    for (uint32_t i = 0; i < l->t.key_count; i++) {
        sl_key *k = &l->keys[i];
        char secret[32];
        snprintf(secret, sizeof secret, "plan-key-%u", i);
        key_hash(secret, k->hash);
        k->cidr_count = 0;
        k->expires_unix = 0;
    }
    for (uint32_t i = 0; i < l->t.model_count; i++) {
        sl_model_entry *e = &l->models[i];
        e->retry.backoff_ms = 1;
        e->retry.backoff_cap_ms = 1;
        e->cooldown_failures = 1000;
    }
    l->t.redis = NULL;
}

static void manifest(const slc_spec *s, const sl_table *t)
{
    slc_buf b = {0};
    slc_buf_puts(&b, "{\"providers\":[");
    for (uint32_t i = 0; i < t->provider_count; i++) {
        slc_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        slc_buf_json_string(&b, t->providers[i].name, strlen(t->providers[i].name));
        slc_buf_printf(&b, ",\"env\":\"%s\",\"key\":\"plan-provider-%u\"}", t->providers[i].api_key_env, i);
    }
    slc_buf_puts(&b, "],\"entries\":[");
    for (uint32_t i = 0; i < t->model_count; i++) {
        slc_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        slc_buf_json_string(&b, t->models[i].name, strlen(t->models[i].name));
        slc_buf_printf(&b, ",\"glob\":%s,\"reachable\":%s}", t->models[i].is_glob ? "true" : "false",
                       s->models[i].emitted ? "true" : "false");
    }
    slc_buf_puts(&b, "],\"keys\":[");
    for (uint32_t i = 0; i < t->key_count; i++) {
        slc_buf_puts(&b, i ? ",{\"name\":" : "{\"name\":");
        slc_buf_json_string(&b, t->keys[i].name, strlen(t->keys[i].name));
        slc_buf_printf(&b, ",\"secret\":\"plan-key-%u\"}", i);
    }
    slc_buf_puts(&b, "]}\n");
    fwrite(b.p, 1, b.len, stdout);
    slc_buf_free(&b);
}

static int write_file(const char *dir, const char *name, const slc_buf *content)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(content->p, 1, content->len, f) != content->len || fclose(f) != 0) {
        fprintf(stderr, "e2e-mock-spec: cannot write '%s': %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *cmd = argc > 2 ? argv[1] : "", *spec = argc > 2 ? argv[2] : NULL, *dir = NULL;
    for (int i = 3; i < argc; i++)
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc)
            dir = argv[++i];
    bool build = strcmp(cmd, "build") == 0;
    if (!spec || (!build && strcmp(cmd, "manifest") != 0) || (build && !dir)) {
        fprintf(stderr, "usage: e2e-mock-spec build SPEC -o DIR [--quiet]\n"
                        "       e2e-mock-spec manifest SPEC\n");
        return 2;
    }
    size_t len;
    char *src = slurp(spec, &len);
    if (!src) {
        fprintf(stderr, "e2e-mock-spec: cannot read '%s': %s\n", spec, strerror(errno));
        return 2;
    }
    slc_arena a = {0};
    slc_diags *d = slc_diags_new(spec, src, len);
    slc_spec *s = slc_compile(src, len, &a, d);
    slc_diags_print(d, stderr);
    int rc = !s || slc_diags_errors(d) ? 1 : 0;
    if (rc == 0) {
        char sha[65];
        slc_sha256_hex(src, len, sha);
        slc_lowered l;
        slc_lower(s, sha, &l);
        retarget(&l, &a);
        if (build) {
            slc_buf table = {0}, re = {0};
            slc_emit_lowered(&l.t, &table);
            slc_emit_models_re(s, sha, &re);
            mkdir(dir, 0777);
            if (write_file(dir, "sluice_table.c", &table) || write_file(dir, "sluice_models.re", &re))
                rc = 2;
            slc_buf_free(&table);
            slc_buf_free(&re);
        } else {
            manifest(s, &l.t);
        }
        slc_lowered_free(&l);
    }
    slc_diags_free(d);
    slc_arena_free(&a);
    free(src);
    return rc;
}
